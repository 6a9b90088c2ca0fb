r"""Fisher approximations next to the truth, numerically: diagonal, K-FAC, empirical.

For a true Fisher :math:`F`, an approximation :math:`\tilde F` and a gradient
:math:`g`, the errors reported are

.. math::
   e_F = \frac{\|\tilde F - F\|_F}{\|F\|_F}, \qquad
   \cos\angle(F^{+} g, \tilde F^{+} g), \qquad
   e_{ng} = \frac{\|\tilde F^{+} g - F^{+} g\|}{\|F^{+} g\|},

with :math:`^{+}` the (damped) pseudo-inverse, since softmax Fishers are singular.
The empirical Fisher is :math:`\hat F_{emp} = \frac1B \sum_b s_b s_b^\top` with
:math:`s_b = \nabla_\theta \log\pi(a_b \mid s_b)` at the *observed* actions: it
matches :math:`F` only when those actions are drawn from :math:`\pi_\theta` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import jax.numpy as jnp


@dataclass(frozen=True)
class ApproxError:
    """How far an approximation is from the true Fisher (see the module formulas)."""

    name: str
    frobenius: float
    relative_frobenius: float
    ng_cosine: float
    ng_relative_error: float

    def row(self) -> dict[str, Any]:
        """Plain dict for tables."""
        return {
            "approximation": self.name,
            "||F~ - F||_F / ||F||_F": self.relative_frobenius,
            "cos(F+g, F~+g)": self.ng_cosine,
            "||F~+g - F+g|| / ||F+g||": self.ng_relative_error,
        }


def _solve(F: jnp.ndarray, g: jnp.ndarray, damping: float) -> jnp.ndarray:
    P = F.shape[0]
    return jnp.linalg.pinv(F + damping * jnp.eye(P, dtype=F.dtype), hermitian=True) @ g


def approximation_error(
    name: str, F: Any, F_approx: Any, g: Any, damping: float = 0.0
) -> ApproxError:
    """Frobenius and natural-gradient-direction errors of ``F_approx`` against ``F``.

    Raises:
      ValueError: naming the shapes when ``F``, ``F_approx`` and ``g`` disagree.
    """
    F, A, g = jnp.asarray(F), jnp.asarray(F_approx), jnp.asarray(g).reshape(-1)
    if F.ndim != 2 or F.shape != A.shape or F.shape[0] != F.shape[1]:
        raise ValueError(
            f"F and F_approx must be the same square matrix shape; got {F.shape} "
            f"and {A.shape}"
        )
    if g.shape[0] != F.shape[0]:
        raise ValueError(f"g has {g.shape[0]} entries but F is {F.shape}")
    fro = float(jnp.linalg.norm(A - F))
    ng, na = _solve(F, g, damping), _solve(A, g, damping)
    cos = float(ng @ na / (jnp.linalg.norm(ng) * jnp.linalg.norm(na)))
    rel = float(jnp.linalg.norm(na - ng) / jnp.linalg.norm(ng))
    return ApproxError(name, fro, fro / float(jnp.linalg.norm(F)), cos, rel)


def empirical_fisher(scores: Any) -> jnp.ndarray:
    r""":math:`\frac1B\sum_b s_b s_b^\top` from per-sample scores of shape ``(B, ...)``."""
    s = jnp.asarray(scores)
    s = s.reshape(s.shape[0], -1)
    return s.T @ s / s.shape[0]


def compare_approximations(
    k: ModuleType,
    theta: Any,
    states: Any,
    g: Any,
    actions: Any | None = None,
    damping: float = 0.0,
) -> list[ApproxError]:
    r"""Diagonal, K-FAC and (with ``actions``) empirical Fisher against the exact one.

    Args:
      k: a generated policy kernel module (``symfisher.kernels("linear_softmax")``).
      theta: the policy parameters (the kernel's matrix layout).
      states: a batch of states.
      g: a gradient (``theta``'s shape) for the natural-gradient direction errors.
      actions: observed actions, one per state, for the empirical Fisher.
      damping: :math:`\lambda` added to every matrix before the pseudo-inverse.
    """
    F = k.fisher(theta, states)
    out = [
        approximation_error(
            "diagonal",
            F,
            jnp.diag(k.fisher_diag(theta, states).reshape(-1)),
            g,
            damping,
        ),
        approximation_error("K-FAC", F, k.kfac_fisher(theta, states), g, damping),
    ]
    if actions is not None:
        emp = empirical_fisher(k.score(theta, states, actions))
        out.append(approximation_error("empirical", F, emp, g, damping))
    return out
