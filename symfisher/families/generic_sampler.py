r"""A sampler for a family that was defined without one.

:func:`default_sampler` builds ``sample(key, theta, shape)`` from the family's own
SymPy log-density (turned into a numeric function by :func:`sympy.lambdify`, never
by evaluating text). Three methods, chosen by the support at the given
:math:`\theta`:

=====================  ===========================================================
support                method and stated error
=====================  ===========================================================
finite (any number     exact: categorical over the enumerated support points with
of variables)          the closed-form log-probabilities (Gumbel-max, in JAX;
                       jit-, vmap- and shard-able)
integers with an       truncated inverse CDF: the mass function is summed outward
infinite end           until a geometric bound on the tail beyond the cut,
                       :math:`p_K\,r/(1-r)` with :math:`r` the largest ratio
                       :math:`p_{k+1}/p_k` over the last terms, is below
                       ``COUNT_TAIL`` (1e-12) of the mass; the bound is a proof for
                       tails whose ratio does not increase beyond the cut
                       (log-concave: Poisson, negative binomial, geometric) and a
                       numerical estimate otherwise; no bound within
                       ``MAX_TERMS`` terms raises :class:`FamilyError`
one-dimensional        inverse CDF by polynomial interpolation (UNU.RAN's PINV via
interval               :class:`scipy.stats.sampling.NumericalInversePolynomial`,
                       u-resolution ``U_RESOLUTION`` = 1e-12) of the density in a
                       mapped variable :math:`x = x(\tau)` (logistic map on a
                       bounded interval, exponential on a half-line, sinh on the
                       line), which makes integrable poles at an end bounded and
                       power-law tails exponential; the mapped density is followed
                       out to ``exp(TAIL_LOG)`` = e^-80 of its peak
=====================  ===========================================================

Where float64 cannot evaluate the log-density (NaN or overflow far out in a tail,
``1 - erfc(z)/2`` rounding to 0, ``1 - x**a`` near 1), it is evaluated in
``NEAR_END_DPS`` = 40 digits by mpmath (``lambdify(..., "mpmath")`` of the same
expression). The density must integrate to 1 over the range found around its
mode (to 1e-6): a second mode far from the first (the density vanishing in
float64 between them) or an unnormalised density is refused, not half sampled.

The stated error is the u-error :math:`\sup_u |F(x(u)) - u|` of the sampled
distribution's quantile function against the family's CDF :math:`F`:
``STATED_ERROR`` = 1e-10 for both numeric methods (for counts: the tail cut plus
the rounding of the cumulative sums, measured at 1e-13 for 8000 terms). For
continuous supports it is
checked at every parameter point, independently of PINV's own bound, by adaptive
QUADPACK integration of the density at ``CHECK_POINTS`` quantiles (the measured
maximum is recorded); a point where it fails raises :class:`FamilyError`.

Uniforms come from the JAX key (53 random bits per draw, ``u = (k + 1/2) / 2^53``),
so draws are deterministic for a given key; the numeric methods run on the host
through :func:`jax.pure_callback` and so also work under ``jit`` and ``vmap``
(not under ``grad``: a sample is not differentiable in :math:`\theta` here).
Draws are float64 (or the dtype of ``theta``): where the exact quantile lies within
one float64 spacing of a finite end of the support, it is not representable and
the draw is the nearest float inside the support at which the family's float64
log-density is finite (so that kernels evaluated at it are). Likewise where the density
itself cannot be evaluated within :math:`2^{-40}` (relative) of a finite end
(Kumaraswamy's :math:`1 - x^a` rounds to 0 one float below 1), the mass beyond
the last computable point is cut. The mass of such a sliver (about
:math:`(2^{-53})^{b}` for a Beta(a, b) near 1) is not counted in the u-error but
is estimated from the tail's local decay and stated (``SamplerInfo.sliver``);
above ``MAX_SLIVER`` (1e-6) the point is refused.

Where no sampler can be built (several continuous variables, a support that is
not an interval, a finite set or a range of integers, a density that cannot be
evaluated numerically, a tail that cannot be bounded), :class:`FamilyError` says
so and names what to pass instead: ``sampler=`` with the signature
``sample(key, theta, shape) -> array``.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.continuous_table import _continuous_table
from symfisher.families.count_table import _count_table
from symfisher.families.family import Family
from symfisher.families.finite_sampler import _FiniteJax
from symfisher.families.normalizer import at_point, unnormalized
from symfisher.families.sampler_info import (
    _PASS,
    CHECK_POINTS,
    COUNT_TAIL,
    MAX_FINITE,
    MAX_SLIVER,
    MAX_TERMS,
    STATED_ERROR,
    TAIL_LOG,
    U_RESOLUTION,
    SamplerInfo,
    _finite,
    _Table,
    _Unservable,
)

__all__ = [
    "CHECK_POINTS",
    "COUNT_TAIL",
    "MAX_FINITE",
    "MAX_SLIVER",
    "MAX_TERMS",
    "STATED_ERROR",
    "TAIL_LOG",
    "U_RESOLUTION",
    "GenericSampler",
    "SamplerInfo",
    "default_sampler",
    "with_sampler",
]

_CACHE_SIZE = 64


def default_sampler(family: Family) -> GenericSampler:
    """The generic sampler of ``family`` (cached by the family's definition).

    Raises:
      FamilyError: when no generic sampler can serve the family; the message
        says what to pass instead.
    """
    key = family.definition_hash()
    with _LOCK:
        s = _SAMPLERS.get(key)
    if s is None:
        s = GenericSampler(family)
        with _LOCK:
            s = _SAMPLERS.setdefault(key, s)
    return s


def with_sampler(family: Family) -> Family:
    """``family`` itself when it has a sampler, else a copy with the generic one."""
    if family.sampler is not None:
        return family
    from dataclasses import replace

    return replace(family, sampler=default_sampler(family))


_LOCK = threading.Lock()
_SAMPLERS: dict[str, GenericSampler] = {}


class GenericSampler:
    r"""``sample(key, theta, shape)`` for a family from its log-density alone.

    See the module docstring for the methods and their errors. ``info(theta)``
    builds (and caches) the tables for one parameter point outside ``jit`` and
    raises :class:`FamilyError` where the point cannot be served.
    """

    def __init__(self, family: Family) -> None:
        self.family_name = family.name
        self.params = tuple(family.params)
        self.variables = tuple(family.variables)
        self.supports = tuple(family.supports)
        self.log_density = family.log_density
        self._tables: OrderedDict[bytes, _Table] = OrderedDict()
        self._lock = threading.Lock()
        self._finite = None
        if all(_finite(s, family.name) is not None for s in self.supports):
            self._finite = _FiniteJax(family)
            self.kind = "finite"
        elif len(self.variables) != 1:
            raise FamilyError(
                f"{family.name}: no generic sampler for {len(self.variables)} "
                "variables with a support that is not finite (only one-dimensional "
                f"continuous or count supports and finite ones are served); {_PASS}"
            )
        else:
            sup = self.supports[0]
            if isinstance(sup, sp.Range) or (
                isinstance(sup, sp.FiniteSet) and sup.free_symbols
            ):
                self.kind = "count"
            elif isinstance(sup, sp.Interval):
                self.kind = "continuous"
            else:
                raise FamilyError(
                    f"{family.name}: no generic sampler for the support {sup} (served: "
                    f"an interval, a range of integers or a finite set); {_PASS}"
                )
            x = self.variables[0]
            # a quadrature normaliser: f(x) numerically, log Z once per point
            base = unnormalized(self.log_density)
            log_z = _LogZ(base - self.log_density, self.params)
            try:
                self._logp = log_z.subtracted(
                    sp.lambdify(
                        [x, *self.params],
                        _log_gamma_forms(base),
                        modules=["scipy", "numpy"],
                        dummify=True,
                    )
                )
                # near a finite end float64 loses the density (1 - x**a): there
                # it is evaluated at NEAR_END_DPS digits instead
                self._logp_mp = log_z.subtracted(
                    sp.lambdify(
                        [x, *self.params],
                        _log_gamma_forms(base),
                        modules="mpmath",
                        dummify=True,
                    )
                )
            except Exception as e:
                raise FamilyError(
                    f"{family.name}: the log-density cannot be evaluated numerically "
                    f"for the generic sampler ({type(e).__name__}: {e}); {_PASS}"
                ) from e
        self.__name__ = f"generic_sampler_{family.name}"

    # -- public ------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The method, in words (without the per-point detail)."""
        return {
            "finite": "exact categorical over the enumerated support",
            "count": f"truncated inverse CDF (tail < {COUNT_TAIL:.0e}, "
            f"u-error ≤ {STATED_ERROR:.0e})",
            "continuous": "inverse CDF by PINV polynomial interpolation "
            f"(u-error ≤ {STATED_ERROR:.0e})",
        }[self.kind]

    @property
    def stated_error(self) -> float:
        """The u-error claimed (0 for the exact method)."""
        return 0.0 if self.kind == "finite" else STATED_ERROR

    def info(self, theta: Any) -> SamplerInfo:
        """Build (or fetch) the tables at ``theta``; what the sampler does there.

        Raises:
          FamilyError: naming the point when no accurate sampler can be built there.
        """
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        if self.kind == "finite":
            assert self._finite is not None
            return self._finite.info()
        return self._table(theta).info

    def __call__(
        self, key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        """Draw samples of shape ``shape + event_shape`` at parameter ``theta``."""
        theta = jnp.asarray(theta)
        if not jnp.issubdtype(theta.dtype, jnp.floating):
            theta = theta.astype(jnp.result_type(float))
        shape = tuple(int(s) for s in shape)
        if self.kind == "finite":
            assert self._finite is not None
            return self._finite.sample(key, theta, shape)
        bits = jax.random.bits(key, (*shape, 2), dtype=jnp.uint32)
        # theta and the draws cross to the host as raw 32-bit words: a float64
        # argument can arrive there as float32 when the callback runs where
        # x64 is off (outside a ``jax.enable_x64`` context)
        given = theta.dtype
        wide = given == jnp.float64
        if not wide:
            theta = theta.astype(jnp.float32)
        words = jax.lax.bitcast_convert_type(theta, jnp.uint32)
        out = jax.ShapeDtypeStruct((*shape, 2) if wide else shape, jnp.uint32)
        host = functools.partial(self._host, wide=wide)
        got = jax.pure_callback(host, out, words, bits, vmap_method="sequential")
        return jax.lax.bitcast_convert_type(got, theta.dtype).astype(given)

    def __repr__(self) -> str:
        return f"<generic sampler of {self.family_name}: {self.method}>"

    # -- host side ---------------------------------------------------------------
    def _host(self, words: np.ndarray, bits: np.ndarray, wide: bool) -> np.ndarray:
        dtype = np.float64 if wide else np.float32
        words = np.ascontiguousarray(np.asarray(words, dtype=np.uint32))
        theta = words.view(dtype).reshape(-1).astype(np.float64)
        u = _uniforms(np.asarray(bits, dtype=np.uint32))
        x = np.ascontiguousarray(self._table(theta).quantile(u), dtype=dtype)
        return x.view(np.uint32).reshape(*u.shape, 2) if wide else x.view(np.uint32)

    def _table(self, theta: np.ndarray) -> _Table:
        k = theta.tobytes()
        with self._lock:
            t = self._tables.get(k)
            if t is not None:
                self._tables.move_to_end(k)
                return t
        point = dict(zip(self.params, theta.tolist(), strict=True))
        where = ", ".join(f"{p}={v:.6g}" for p, v in point.items())
        sup = self.supports[0].xreplace({p: sp.Float(v) for p, v in point.items()})
        logp = _vectorised(self._logp, theta)
        try:
            if self.kind == "count" or isinstance(sup, sp.FiniteSet | sp.Range):
                t = _count_table(sup, logp)
            else:
                t = _continuous_table(sup, logp, self._logp_mp, theta)
        except _Unservable as e:
            raise FamilyError(
                f"{self.family_name}: the generic sampler cannot serve the point "
                f"{where}: {e}; {_PASS}"
            ) from None
        with self._lock:
            self._tables[k] = t
            while len(self._tables) > _CACHE_SIZE:
                self._tables.popitem(last=False)
        return t


class _LogZ:
    r""":math:`\log Z(\theta)` of a quadrature normaliser, 30 digits, cached per point.

    ``expr`` is :math:`\log Z` as an expression in the parameters (0 for a
    family without a quadrature normaliser: nothing is computed then).
    """

    def __init__(self, expr: sp.Expr, params: tuple[sp.Symbol, ...]) -> None:
        self.expr, self.params = expr, params
        self._values: dict[tuple, float] = {}

    def __call__(self, *theta: Any) -> float:
        key = tuple(float(t) for t in theta)
        if key not in self._values:
            point = dict(zip(self.params, key, strict=True))
            self._values[key] = float(at_point(self.expr, point, 30))
        return self._values[key]

    def subtracted(self, f: Callable) -> Callable:
        """``f(x, *theta) - log Z(theta)`` (``f`` itself when there is no normaliser)."""
        if self.expr == 0:
            return f
        return lambda x, *theta: f(x, *theta) - self(*theta)


def _log_gamma_forms(expr: sp.Expr) -> sp.Expr:
    """``log(gamma(z))`` as ``loggamma(z)`` (also factorial, binomial, beta).

    Equal where the logarithm is real; the right side does not overflow for
    large ``z`` (``gamma(172.0)`` is ``inf`` in float64).
    """

    def lg(z: sp.Expr) -> sp.Expr:
        return sp.loggamma(z, evaluate=False)

    def rewrite(e: sp.Expr) -> sp.Expr:
        (a,) = e.args
        if isinstance(a, sp.gamma):
            return lg(a.args[0])
        if isinstance(a, sp.factorial):
            return lg(a.args[0] + 1)
        if isinstance(a, sp.binomial):
            n, k = a.args
            return lg(n + 1) - lg(k + 1) - lg(n - k + 1)
        if isinstance(a, sp.beta):
            u, v = a.args
            return lg(u) + lg(v) - lg(u + v)
        return e

    return expr.replace(lambda e: isinstance(e, sp.log), rewrite)


def _uniforms(bits: np.ndarray) -> np.ndarray:
    """``(k + 1/2) / 2^53`` in (0, 1) from two 32-bit words per draw."""
    hi = bits[..., 0].astype(np.uint64) >> np.uint64(5)  # 27 bits
    lo = bits[..., 1].astype(np.uint64) >> np.uint64(6)  # 26 bits
    k = (hi << np.uint64(26)) | lo
    return (k.astype(np.float64) + 0.5) * 2.0**-53


def _vectorised(f: Callable, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> f(x, *theta)`` as float64 arrays; NaN becomes -inf (no mass)."""
    args = [float(v) for v in theta]

    def g(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = np.asarray(f(x, *args), dtype=np.float64)
        v = np.broadcast_to(v, x.shape).copy()
        v[np.isnan(v)] = -np.inf
        return v

    return g
