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
import itertools
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.family import Family, finite_values
from symfisher.families.normalizer import at_point, unnormalized

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

STATED_ERROR = 1e-10
"""Stated bound on the u-error :math:`\\sup_u |F(x(u)) - u|` of the numeric methods."""
U_RESOLUTION = 1e-12
"""u-resolution asked of PINV (it must hold ``STATED_ERROR`` with room to spare)."""
COUNT_TAIL = 1e-12
"""Bound on the relative mass cut off a count support's infinite tail(s)."""
CHECK_POINTS = 101
"""Evenly spaced quantiles (plus ten in the tails) at which a continuous inverse CDF
is checked by quadrature."""
MAX_FINITE = 2**20
"""Most points of a finite support that are enumerated (beyond: FamilyError)."""
MAX_TERMS = 2**22
"""Most terms summed for a count support before its tail counts as unbounded."""
TAIL_LOG = -80.0
"""The mapped density is followed out to ``exp(TAIL_LOG)`` of its maximum."""
MAX_SLIVER = 1e-6
NEGLIGIBLE = 1e-14
"""Mass (relative to the peak) beyond a last computable point that is cut anywhere."""
"""Most mass (relative to the peak) allowed within float64 rounding of an end."""
NEAR_END = 2.0**-20
"""Within this (relative) distance of a finite end the density is evaluated in
``NEAR_END_DPS`` digits: float64 loses it there (``1 - x**a`` for x near 1)."""
NEAR_END_DPS = 40
MAX_PRECISE = 4096
"""Most points of one evaluation that are redone in ``NEAR_END_DPS`` digits."""
_CACHE_SIZE = 64

_PASS = (
    "pass sampler=sample (a function sample(key, theta, shape) -> array of shape "
    "shape + event_shape, seeded by the JAX key) to define_family"
)


@dataclass(frozen=True)
class SamplerInfo:
    """What the generic sampler does at one parameter point.

    Attributes:
      method: ``"exact categorical"``, ``"truncated inverse CDF"`` or
        ``"inverse CDF (PINV)"``.
      stated_error: the bound claimed on the u-error.
      measured_error: the largest u-error measured by quadrature (continuous
        supports), or ``None``.
      detail: one line: points enumerated, tail cut, mapping, total mass.
      sliver: mass within float64 rounding of a finite end (continuous
        supports), where draws are the nearest float inside; it adds to the
        u-error there.
    """

    method: str
    stated_error: float
    measured_error: float | None
    detail: str
    sliver: float = 0.0

    def describe(self) -> str:
        """One line for reports."""
        err = (
            "exact up to rounding"
            if self.stated_error == 0
            else f"u-error ≤ {self.stated_error:.0e}"
        )
        if self.measured_error is not None:
            err += f" (measured {self.measured_error:.1e})"
        return f"generic sampler, {self.method}: {err}; {self.detail}"


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


def _finite(s: sp.Set, name: str) -> tuple[sp.Expr, ...] | None:
    """The points of a finite support, without enumerating a huge range.

    Raises:
      FamilyError: for a finite support of more than ``MAX_FINITE`` points.
    """
    if isinstance(s, sp.Range):
        size = s.size
        if not (size.is_finite and size.is_number):
            return None
        if int(size) > MAX_FINITE:
            raise FamilyError(
                f"{name}: the support {s} has {int(size)} points, more than the "
                f"generic sampler enumerates ({MAX_FINITE}); {_PASS}"
            )
    return finite_values(s)


class _Unservable(Exception):
    """This point cannot be sampled accurately (turned into a FamilyError)."""


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


# -- finite supports: exact, in JAX ------------------------------------------------
class _FiniteJax:
    """Categorical over the product of finite supports, logits from lambdify (JAX)."""

    def __init__(self, family: Family) -> None:
        values = [_finite(s, family.name) for s in family.supports]
        n = math.prod(len(v) for v in values)  # type: ignore[arg-type]
        if n > MAX_FINITE:
            raise FamilyError(
                f"{family.name}: the support has {n} points, more than the generic "
                f"sampler enumerates ({MAX_FINITE}); {_PASS}"
            )
        points = list(itertools.product(*values))  # type: ignore[arg-type]
        exprs = []
        for pt in points:
            e = family.log_density.xreplace(
                dict(zip(family.variables, pt, strict=True))
            )
            exprs.append(e)
        self.n = n
        self.multi = len(family.variables) > 1
        self.points = np.array([[float(v) for v in pt] for pt in points])
        try:
            self._fn = sp.lambdify([list(family.params)], exprs, modules="jax")
            probe = self._fn(jnp.ones(len(family.params)))
            jnp.stack([jnp.asarray(v, dtype=float) for v in probe])
        except Exception as e:
            raise FamilyError(
                f"{family.name}: the log-probabilities cannot be evaluated in JAX "
                f"for the generic sampler ({type(e).__name__}: {e}); {_PASS}"
            ) from e

    def logits(self, theta: jax.Array) -> jax.Array:
        vals = self._fn(theta)
        return jnp.stack(
            [jnp.broadcast_to(jnp.asarray(v, dtype=theta.dtype), ()) for v in vals]
        )

    def sample(
        self, key: jax.Array, theta: jax.Array, shape: tuple[int, ...]
    ) -> jax.Array:
        idx = jax.random.categorical(key, self.logits(theta), shape=shape)
        pts = jnp.asarray(self.points, dtype=theta.dtype)
        out = pts[idx]
        return out if self.multi else out[..., 0]

    def info(self) -> SamplerInfo:
        return SamplerInfo(
            "exact categorical",
            0.0,
            None,
            f"{self.n} support points, Gumbel-max on the closed-form log-probabilities",
        )


# -- per-point tables ---------------------------------------------------------------
class _Table:
    info: SamplerInfo

    def quantile(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _CountTable(_Table):
    def __init__(self, values: np.ndarray, cdf: np.ndarray, info: SamplerInfo):
        self.values, self.cdf, self.info = values, cdf, info

    def quantile(self, u: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.cdf, u, side="right")
        return self.values[np.minimum(i, len(self.values) - 1)]


def _count_table(sup: sp.Set, logp: Callable) -> _CountTable:
    """Inverse CDF over the integers of ``sup`` (a range or a finite set)."""
    try:
        vals = _finite(sup, "")
    except FamilyError as e:
        raise _Unservable(str(e).split(": ", 1)[1]) from None
    truncated = False
    if vals is not None and len(vals) <= MAX_FINITE:
        xs = np.array([float(v) for v in vals])
        lp = logp(xs)
        detail = f"{len(xs)} support points, exact sums"
    elif isinstance(sup, sp.Range):
        xs, lp, cut = _scan_range(sup, logp)
        truncated = True
        detail = (
            f"{len(xs)} terms from {xs[0]:.0f} to {xs[-1]:.0f}; the tail beyond the "
            f"cut is bounded by {f'{cut:.1e}' if cut > 0 else '< 1e-300'} of the mass"
        )
    else:
        raise _Unservable(f"support {sup} is not a range of integers")
    m = np.max(lp)
    if not np.isfinite(m):
        raise _Unservable("the mass function is zero, NaN or infinite on the support")
    p = np.exp(lp - m)
    c = np.cumsum(p)
    total = c[-1]
    cdf = c / total
    cdf[-1] = 1.0
    info = SamplerInfo(
        "truncated inverse CDF" if truncated else "exact inverse CDF",
        STATED_ERROR if truncated else 0.0,
        None,
        detail,
    )
    return _CountTable(xs, cdf, info)


def _scan_range(sup: sp.Range, logp: Callable) -> tuple[np.ndarray, np.ndarray, float]:
    """Terms of a range with an infinite end, summed outward until the tail is bounded."""
    step = int(sup.step)
    lo, hi = sup.inf, sup.sup
    if lo.is_finite:
        start, dirs = int(lo), [+1]
    elif hi.is_finite:
        start, dirs = int(hi), [-1]
    else:
        start, dirs = 0, [+1, -1]
    step = abs(step)
    sides: dict[int, list[np.ndarray]] = {d: [] for d in dirs}
    lps: dict[int, list[np.ndarray]] = {d: [] for d in dirs}
    done = dict.fromkeys(dirs, False)
    tails = dict.fromkeys(dirs, 0.0)
    block, count = 256, 0
    nxt = {d: (start if d == +1 else start - step) for d in dirs}
    while not all(done.values()):
        for d in dirs:
            if done[d]:
                continue
            ks = nxt[d] + d * step * np.arange(block)
            nxt[d] = int(ks[-1]) + d * step
            sides[d].append(ks.astype(np.float64))
            lps[d].append(logp(ks.astype(np.float64)))
            count += block
        allp = np.concatenate([np.concatenate(v) for v in lps.values()])
        m = np.max(allp)
        if not np.isfinite(m):
            if m == np.inf or count > MAX_TERMS:
                raise _Unservable("the mass function is zero, NaN or infinite")
            block *= 2
            continue
        log_total = m + np.log(np.sum(np.exp(allp - m)))
        for d in dirs:
            if done[d]:
                continue
            lp = np.concatenate(lps[d])
            tail = lp[-max(16, len(lp) // 4) :]
            with np.errstate(all="ignore"):
                ratios = np.diff(tail)  # log p_{k+1} - log p_k, outward
            if np.all(np.isneginf(tail)):
                finite = lp[np.isfinite(lp)]
                if len(finite) >= 2 and finite[-1] >= finite[-2]:
                    raise _Unservable(
                        "the mass function turns from increasing to zero or NaN far "
                        "out (an overflow?)"
                    )
                bound = 0.0
            elif np.any(~np.isfinite(ratios)) or np.any(ratios >= 0):
                bound = np.inf
            else:
                r = float(np.exp(np.max(ratios)))
                bound = float(np.exp(tail[-1] - log_total) * r / (1 - r))
            if bound < COUNT_TAIL / 4:
                tails[d] = bound
                done[d] = True
        if count > MAX_TERMS and not all(done.values()):
            raise _Unservable(
                f"the tail of the mass function could not be bounded below "
                f"{COUNT_TAIL:.0e} within {MAX_TERMS} terms (a heavy tail)"
            )
        block *= 2
    parts_x, parts_l = [], []
    for d in sorted(dirs):
        x = np.concatenate(sides[d])
        lp = np.concatenate(lps[d])
        if d < 0:
            x, lp = x[::-1], lp[::-1]
        parts_x.append(x)
        parts_l.append(lp)
    cut = float(sum(tails.values()))
    return np.concatenate(parts_x), np.concatenate(parts_l), cut


# -- continuous supports: PINV in a mapped variable ---------------------------------
class _Map:
    """``x = x(t)`` from the real line onto the support, with ``log |x'(t)|``."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        if np.isfinite(lo) and np.isfinite(hi):
            self.kind = "logistic"
        elif np.isfinite(lo):
            self.kind = "exp"
        elif np.isfinite(hi):
            self.kind = "-exp"
        else:
            self.kind = "sinh"
        self.c, self.s = 0.0, 1.0  # the sinh map's centre and scale

    def x(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.kind == "logistic":
                # from the nearer end, so that both ends keep relative precision
                w = self.hi - self.lo
                return np.where(
                    t < 0,
                    self.lo + w * _expit(t),
                    self.hi - w * _expit(-t),
                )
            if self.kind == "exp":
                return self.lo + np.exp(t)
            if self.kind == "-exp":
                return self.hi - np.exp(t)
            return self.c + self.s * np.sinh(t)

    def log_jac(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.kind == "logistic":
                return (
                    np.log(self.hi - self.lo)
                    - np.logaddexp(0.0, t)
                    - np.logaddexp(0.0, -t)
                )
            if self.kind in ("exp", "-exp"):
                return np.asarray(t, dtype=np.float64)
            a = np.abs(t)
            return np.log(self.s) + a + np.log1p(np.exp(-2 * a)) - np.log(2.0)


def _expit(t: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.exp(-np.logaddexp(0.0, -np.asarray(t, dtype=np.float64)))


class _ContinuousTable(_Table):
    def __init__(self, gen: Any, mp: _Map, tau: tuple[float, float], info: SamplerInfo):
        self.gen, self.map, self.tau, self.info = gen, mp, tau, info
        lo, hi = mp.lo, mp.hi
        # closed support ends (open ones exclude the end itself)
        self.lo_in = np.nextafter(lo, np.inf) if np.isfinite(lo) else -np.inf
        self.hi_in = np.nextafter(hi, -np.inf) if np.isfinite(hi) else np.inf

    def quantile(self, u: np.ndarray) -> np.ndarray:
        t0, w = self.tau
        with np.errstate(all="ignore"):
            t = t0 + w * np.asarray(self.gen.ppf(np.ravel(u))).reshape(np.shape(u))
        return np.clip(self.map.x(t), self.lo_in, self.hi_in)


class _Dist:
    """The density of ``tau`` for PINV: scalar ``logpdf``."""

    def __init__(self, logg: Callable) -> None:
        self._logg = logg

    def logpdf(self, tau: float) -> float:
        return float(self._logg(np.asarray([tau]))[0])


def _continuous_table(
    sup: sp.Interval, logp: Callable, logp_mp: Callable, theta: np.ndarray
) -> _ContinuousTable:
    import mpmath
    from scipy import integrate
    from scipy.stats.sampling import NumericalInversePolynomial

    lo, hi = float(sup.inf), float(sup.sup)
    if not lo < hi:
        raise _Unservable(f"the support {sup} is empty or a point")
    mp = _Map(lo, hi)
    if mp.kind == "sinh":
        # centre and scale from the density itself: mode and half-width in x
        c, s = _mode_and_width(logp, np.sinh)
        mp.c, mp.s = c, s

    args = [mpmath.mpf(float(v)) for v in theta]

    def precise(t: float) -> float:
        """The log-density at x(t), x and log p in NEAR_END_DPS digits."""
        with mpmath.workdps(NEAR_END_DPS):
            tm = mpmath.mpf(float(t))
            if mp.kind == "logistic":
                wd = mpmath.mpf(hi) - mpmath.mpf(lo)
                xm = (
                    lo + wd / (1 + mpmath.exp(-tm))
                    if t < 0
                    else hi - wd / (1 + mpmath.exp(tm))
                )
            elif mp.kind == "exp":
                xm = lo + mpmath.exp(tm)
            elif mp.kind == "-exp":
                xm = hi - mpmath.exp(tm)
            else:
                xm = mp.c + mp.s * mpmath.sinh(tm)
            try:
                v = logp_mp(xm, *args)
                return float(mpmath.re(v)) if mpmath.im(v) == 0 else -np.inf
            except (ValueError, ZeroDivisionError, OverflowError):
                return -np.inf

    ends_f = [e for e in (lo, hi) if np.isfinite(e)]

    def logg(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        xs = mp.x(t)
        v = logp(xs)
        # where float64 fails (NaN, overflow, 1 - erfc(z)/2 = 0) or is about to
        # (near a finite end), evaluate in NEAR_END_DPS digits instead
        near = ~np.isfinite(v)
        for e in ends_f:
            near |= np.abs(xs - e) <= NEAR_END * max(1.0, abs(e))
        for i in np.flatnonzero(near)[:MAX_PRECISE]:
            v.flat[i] = precise(float(t.flat[i]))
        v = v + mp.log_jac(t)
        v[~np.isfinite(v) & (v > 0)] = -np.inf  # overflow: treat as no mass
        return v

    t0, w = _mode_and_width(logg, lambda t: t)
    lmax = float(logg(np.asarray([t0]))[0])
    if not np.isfinite(lmax):
        raise _Unservable("the density is zero, NaN or infinite at its mode")

    def log_tau(tau: np.ndarray) -> np.ndarray:
        return logg(t0 + w * np.asarray(tau, dtype=np.float64)) - lmax

    def tau_to_x(tau: np.ndarray) -> np.ndarray:
        return mp.x(t0 + w * np.asarray(tau, dtype=np.float64))

    (lo_tau, lo_sliver), (hi_tau, hi_sliver) = (
        _tail_end(log_tau, sgn, tau_to_x, (lo, hi)) for sgn in (-1.0, 1.0)
    )
    ends = (lo_tau, hi_tau)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = NumericalInversePolynomial(
                _Dist(log_tau),
                center=0.0,
                domain=ends,
                u_resolution=U_RESOLUTION,
            )
    except Exception as e:
        raise _Unservable(
            f"no inverse CDF of the density could be built ({type(e).__name__}: {e})"
        ) from None

    # independent check of the u-error: QUADPACK between sorted quantiles
    u = np.concatenate(
        [
            [1e-10, 1e-8, 1e-6, 1e-4, 1e-3],
            (np.arange(1, CHECK_POINTS + 1)) / (CHECK_POINTS + 1),
            1 - np.array([1e-3, 1e-4, 1e-6, 1e-8, 1e-10]),
        ]
    )
    u.sort()
    with np.errstate(all="ignore"):
        taus = np.asarray(gen.ppf(u), dtype=np.float64)

    def g(tau: float) -> float:
        return float(np.exp(log_tau(np.asarray([tau]))[0]))

    edges = [ends[0], *taus.tolist(), ends[1]]
    pieces = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in itertools.pairwise(edges):
            if a == b:
                pieces.append(0.0)
                continue
            val, _ = integrate.quad(g, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)
            pieces.append(val)
    z = float(np.sum(pieces))
    if not (np.isfinite(z) and z > 0):
        raise _Unservable("the density's integral is zero or not finite")
    total = math.exp(float(np.log(z) + lmax + np.log(w)))
    if abs(total - 1.0) > 1e-6:
        raise _Unservable(
            f"the density integrates to {total:.10g}, not 1, over the range the "
            "sampler found around its mode (another mode far away, or a density "
            "that is not normalised)"
        )
    cdf = np.cumsum(pieces)[:-1] / z
    measured = float(np.max(np.abs(cdf - u)))
    if not measured <= STATED_ERROR:
        raise _Unservable(
            f"the inverse CDF misses its stated u-error {STATED_ERROR:.0e}: measured "
            f"{measured:.2e} by quadrature (a density with a jump, several separated "
            "modes or an unbounded tail?)"
        )
    log_z = float(np.log(z) + lmax + np.log(w))  # log of the density's total mass
    # mass cut where the density could not be computed, plus the mass within
    # one float64 spacing of a finite end (draws there are that nearest float)
    sliver = (lo_sliver + hi_sliver) / z + _end_mass(gen, mp, t0, w, ends)
    if sliver > 1e-12:
        detail_sliver = (
            f"; about {sliver:.0e} of the mass lies within float64 rounding of a "
            "finite end, where draws are the nearest float inside (not in the u-error)"
        )
    else:
        detail_sliver = ""
    detail = (
        f"{mp.kind} map of the support, checked at {len(u)} quantiles by QUADPACK; "
        f"the density integrates to {math.exp(log_z):.12g}{detail_sliver}"
    )
    info = SamplerInfo("inverse CDF (PINV)", STATED_ERROR, measured, detail, sliver)
    table = _ContinuousTable(gen, mp, (t0, w), info)
    # draws stay where the family's own float64 log-density is finite, so that
    # kernels evaluated at them are (within the stated sliver at an end)
    if np.isfinite(lo):
        table.lo_in = _last_finite(
            logp, table.lo_in, table.quantile(np.array([0.5]))[0]
        )
    if np.isfinite(hi):
        table.hi_in = _last_finite(
            logp, table.hi_in, table.quantile(np.array([0.5]))[0]
        )
    return table


def _last_finite(logp: Callable, edge: float, inner: float) -> float:
    """The float nearest ``edge`` (towards ``inner``) where ``logp`` is finite."""
    if np.isfinite(logp(np.asarray([edge]))[0]) or not np.isfinite(
        logp(np.asarray([inner]))[0]
    ):
        return edge
    # bisection over the floats between them, by their integer representation
    a, b = np.float64(inner).view(np.int64), np.float64(edge).view(np.int64)
    if np.sign(inner) != np.sign(edge) and inner != 0 and edge != 0:
        return edge  # keep it simple across zero
    while abs(int(b) - int(a)) > 1:
        m = np.int64((int(a) + int(b)) // 2)
        if np.isfinite(logp(np.asarray([m.view(np.float64)]))[0]):
            a = m
        else:
            b = m
    return float(np.int64(a).view(np.float64))


def _end_mass(
    gen: Any, mp: _Map, t0: float, w: float, ends: tuple[float, float]
) -> float:
    """PINV's mass between each finite end and the nearest float inside it."""
    out = 0.0
    for e, inward, upper in ((mp.lo, np.inf, False), (mp.hi, -np.inf, True)):
        if not np.isfinite(e):
            continue
        x_in = float(np.nextafter(e, inward))
        with np.errstate(all="ignore"):
            if mp.kind == "logistic":
                q = np.float64(abs(x_in - e) / (mp.hi - mp.lo))
                t = np.log((1 - q) / q) if upper else np.log(q / (1 - q))
            else:
                t = np.log(np.float64(abs(x_in - e)))
            tau = float(np.clip((t - t0) / w, ends[0], ends[1]))
        if not np.isfinite(tau):
            continue
        c = float(np.asarray(gen.cdf(tau)))
        out += (1.0 - c) if upper else c
    return max(out, 0.0)


def _tail_end(
    log_tau: Callable, sgn: float, to_x: Callable, ends: tuple[float, float]
) -> tuple[float, float]:
    """Where the standardised density falls below ``exp(TAIL_LOG)``, and the sliver.

    Returns ``(tau, sliver)``: ``sliver`` estimates the (relative) mass beyond
    ``tau`` that float64 cannot resolve because ``x`` rounds to a finite end of
    the support there (0 when the tail is followed to ``exp(TAIL_LOG)``).

    Raises:
      _Unservable: when the density stops being computable (NaN, zero or
        infinite) away from a finite end while still above
        ``exp(TAIL_LOG / 2)``, when the unresolvable sliver exceeds
        ``MAX_SLIVER``, or when the density has not fallen to ``exp(TAIL_LOG)``
        by ``|tau| = 1e6`` (a tail too heavy to bound).
    """

    def at(t: float) -> float:
        return float(log_tau(np.asarray([t]))[0])

    tau, step, prev = 0.0, 0.5, 0.0
    while abs(tau) < 1e6:
        last = tau
        tau += sgn * step
        v = at(tau)
        if np.isfinite(v) and v < TAIL_LOG:
            return tau, 0.0
        if not np.isfinite(v):
            # the last computable point, by bisection
            good, bad = last, tau
            for _ in range(60):
                mid = 0.5 * (good + bad)
                if np.isfinite(at(mid)):
                    good = mid
                else:
                    bad = mid
            v_edge = at(good)
            # the mass beyond, from the tail's local decay (relative to the peak)
            h = 1e-3 * max(1.0, abs(good))
            slope = abs(v_edge - at(good - sgn * h)) / h
            sliver = float(np.exp(v_edge) / max(slope, 1e-3))
            if v_edge < TAIL_LOG / 2 or sliver < NEGLIGIBLE:
                return good, sliver
            x_bad = float(to_x(np.asarray([bad]))[0])
            # within 2^-40 (relative) of a finite end, float64 cannot resolve the
            # density (1 - x**a rounds to 0 one float below 1): a sliver
            near = x_bad in ends or any(
                np.isfinite(e) and abs(x_bad - e) <= 2.0**-40 * max(1.0, abs(e))
                for e in ends
            )
            if not near:
                raise _Unservable(
                    f"the density cannot be evaluated at x = {x_bad:.17g} although "
                    f"the density nearby is exp({v_edge:.0f}) of its peak (is it "
                    "positive and finite on all of its declared support?)"
                )
            if sliver > MAX_SLIVER and not np.isfinite(x_bad):
                raise _Unservable(
                    f"the density's tail could not be bounded: about {sliver:.1e} "
                    "of the mass (relative to the peak) lies beyond the largest "
                    "float64"
                )
            if sliver > MAX_SLIVER:
                raise _Unservable(
                    f"about {sliver:.1e} of the mass (relative to the peak) lies "
                    f"within float64 rounding of the end x = {x_bad:.17g}, where "
                    "draws cannot be told apart"
                )
            return good, sliver
        prev = v
        step *= 1.25
    raise _Unservable(
        "the density's tail could not be bounded (still above "
        f"exp({TAIL_LOG:.0f}) of its peak a million widths out; last exp({prev:.0f}))"
    )


def _mode_and_width(h: Callable, to_x: Callable) -> tuple[float, float]:
    """Mode ``m`` of ``h`` (a log-density in ``t``) and a half-width ``w > 0``.

    ``h`` is taken over ``t``; ``to_x`` maps the search grid (a sinh grid in the
    centring pass, the identity otherwise).
    """
    from scipy import optimize

    grid_t = np.linspace(-45.0, 45.0, 3601)
    pts = to_x(grid_t)
    vals = h(pts)
    if not np.any(np.isfinite(vals)):
        raise _Unservable("the density is zero or not finite everywhere on a grid")
    i = int(np.nanargmax(np.where(np.isfinite(vals), vals, -np.inf)))
    a = pts[max(i - 1, 0)]
    b = pts[min(i + 1, len(pts) - 1)]
    best_x, best_v = float(pts[i]), float(vals[i])
    if a < b:
        res = optimize.minimize_scalar(
            lambda z: (
                -float(h(np.asarray([z]))[0])
                if np.isfinite(h(np.asarray([z]))[0])
                else np.inf
            ),
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-12 * max(1.0, abs(best_x))},
        )
        if res.success and -res.fun >= best_v:
            best_x, best_v = float(res.x), float(-res.fun)
    # half-width: where h has dropped by 1 on each side (doubling, then bisection)
    widths = []
    for sgn in (-1.0, 1.0):
        d = 1e-6 * max(1.0, abs(best_x))
        found = False
        for _ in range(200):
            v = h(np.asarray([best_x + sgn * d]))[0]
            if not (v > best_v - 1.0):
                found = True
                break
            d *= 2.0
            if d > 1e30:
                break
        if not found:
            continue
        lo_d, hi_d = d / 2, d
        for _ in range(40):
            mid = 0.5 * (lo_d + hi_d)
            if h(np.asarray([best_x + sgn * mid]))[0] > best_v - 1.0:
                lo_d = mid
            else:
                hi_d = mid
        widths.append(hi_d)
    w = float(np.mean(widths)) if widths else 1.0
    if not (np.isfinite(w) and w > 0):
        w = 1.0
    return best_x, w
