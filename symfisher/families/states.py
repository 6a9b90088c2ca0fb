r"""State distributions :math:`d(s)` of a state-conditioned policy, symbolic and sampled.

The policy Fisher is :math:`F = \mathbb E_{s\sim d}[F(s)]`. Two symbolic forms:

- :class:`GaussianStates`, :math:`s \sim \mathcal N(m, \Sigma)`: polynomials in
  :math:`s` have exact expectations from the moment generating function
  :math:`M(t) = e^{t^\top m + \frac12 t^\top \Sigma t}`,
  :math:`\mathbb E[s^\alpha] = \partial^\alpha M(0)` (so :math:`\mathbb E[s s^\top] =
  \Sigma + m m^\top`); anything else is *unresolved* (use state samples);
- :class:`FiniteStates`, :math:`s \in \{s_1..s_S\}` with probabilities
  :math:`\rho_i`: :math:`\mathbb E[f] = \sum_i \rho_i f(s_i)`, always exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symfisher.families.family import Cumulants

GAUSSIAN_MOMENTS = "Gaussian state moments (E[s^a] = d^a exp(t.m + t.S.t/2) at t = 0)"
FINITE_STATES = "exact sum over the finite state distribution"


class NotPolynomialInStates(Exception):
    """An expectation over Gaussian states of a non-polynomial function."""


@dataclass(frozen=True)
class GaussianStates:
    r""":math:`s \sim \mathcal N(m, \Sigma)` over the state symbols.

    Attributes:
      symbols: the state variables :math:`s_1..s_n`.
      mean: :math:`m` (``n x 1``).
      cov: :math:`\Sigma` (``n x n``, symmetric).
      params: free symbols of ``mean`` and ``cov`` (the distribution's parameters).
      domains: one set per entry of ``params``.
      default: values of ``params`` used to sample (a positive-definite :math:`\Sigma`).
    """

    symbols: tuple[sp.Symbol, ...]
    mean: sp.Matrix
    cov: sp.Matrix
    params: tuple[sp.Symbol, ...]
    domains: tuple[sp.Set, ...]
    default: tuple[float, ...]

    method = GAUSSIAN_MOMENTS

    @property
    def description(self) -> str:
        """One line for tables."""
        m = "0" if self.mean.is_zero_matrix else sp.sstr(list(self.mean))
        return f"s ~ N({m}, Sigma), Sigma = {sp.sstr(self.cov.tolist())}"

    def expect(self, exprs: Sequence[sp.Expr]) -> list[sp.Expr]:
        r""":math:`\mathbb E_s[f]` for polynomials :math:`f` in the state symbols.

        Raises:
          NotPolynomialInStates: when some ``f`` is not a polynomial in :math:`s`.
        """
        from symfisher.families.moments import NotPolynomial, polynomial_moments

        c = self.cumulants()
        try:
            return polynomial_moments(
                c.atoms, c.t, c.K, dict.fromkeys(c.t, 0), set(self.symbols), exprs
            )
        except NotPolynomial as e:
            raise NotPolynomialInStates(
                f"not a polynomial in the states {self.symbols}"
            ) from e

    def cumulants(self) -> Cumulants:
        r""":math:`K(t) = t^\top m + \tfrac12 t^\top \Sigma t` of the atoms :math:`s_i`."""
        t = tuple(sp.Symbol(f"t_{i}", real=True) for i in range(len(self.symbols)))
        tv = sp.Matrix(t)
        K = (tv.T * self.mean)[0, 0] + sp.expand((tv.T * self.cov * tv)[0, 0]) / 2
        return Cumulants(atoms=self.symbols, t=t, K=K)

    def values(self, at: Mapping[sp.Symbol, float] | None = None) -> dict[str, Any]:
        """Numeric mean and covariance at ``at`` (default :attr:`default`)."""
        import numpy as np

        sub = dict(zip(self.params, self.default, strict=True)) | dict(at or {})
        mean = np.array([float(v) for v in self.mean.subs(sub)], dtype=np.float64)
        cov = np.array(self.cov.subs(sub).tolist(), dtype=np.float64)
        return {"mean": mean, "cov": cov}

    def sample(self, key: Any, n: int, at: Mapping[sp.Symbol, float] | None = None):
        """``n`` states, shape ``(n, len(symbols))``, at the distribution's values."""
        import jax
        import jax.numpy as jnp

        v = self.values(at)
        mean = jnp.asarray(v["mean"])
        return jax.random.multivariate_normal(
            key, mean, jnp.asarray(v["cov"]), (n,), dtype=mean.dtype
        )


@dataclass(frozen=True)
class FiniteStates:
    r""":math:`s = s_i` with probability :math:`\rho_i`, :math:`i = 1..S`.

    Attributes:
      symbols: the state variables.
      support: the states, one tuple of values per state.
      probs: their probabilities (expressions in ``params``; they sum to 1).
      params: free symbols of ``probs``.
      domains: one set per entry of ``params``.
      default: values of ``params`` used to sample.
    """

    symbols: tuple[sp.Symbol, ...]
    support: tuple[tuple[sp.Expr, ...], ...]
    probs: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...]
    domains: tuple[sp.Set, ...]
    default: tuple[float, ...]

    method = FINITE_STATES

    @property
    def description(self) -> str:
        """One line for tables."""
        states = ", ".join(
            f"{sp.sstr(list(s))} w.p. {sp.sstr(p)}"
            for s, p in zip(self.support, self.probs, strict=True)
        )
        return f"s in {{{states}}}"

    def expect(self, exprs: Sequence[sp.Expr]) -> list[sp.Expr]:
        r""":math:`\sum_i \rho_i f(s_i)` for every ``f``."""
        out = []
        for f in exprs:
            total = sp.Integer(0)
            for s, p in zip(self.support, self.probs, strict=True):
                total += p * f.subs(dict(zip(self.symbols, s, strict=True)))
            out.append(total)
        return out

    def values(self, at: Mapping[sp.Symbol, float] | None = None) -> dict[str, Any]:
        """Numeric support ``(S, n)`` and probabilities ``(S,)``."""
        import numpy as np

        sub = dict(zip(self.params, self.default, strict=True)) | dict(at or {})
        support = np.array(
            [[float(v) for v in s] for s in self.support], dtype=np.float64
        )
        probs = np.array([float(p.subs(sub)) for p in self.probs], dtype=np.float64)
        return {"support": support, "probs": probs}

    def sample_index(
        self, key: Any, n: int, at: Mapping[sp.Symbol, float] | None = None
    ):
        """``n`` state indices into :attr:`support`, drawn with :attr:`probs`."""
        import jax
        import jax.numpy as jnp

        probs = jnp.asarray(self.values(at)["probs"])
        return jax.random.categorical(key, jnp.log(probs), shape=(n,))
