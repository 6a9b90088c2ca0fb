"""The generic sampler on an interval: PINV in a mapped variable, checked by QUADPACK.

The inverse CDF of the density in the mapped variable
(:mod:`symfisher.families.density_map`) is built by UNU.RAN's PINV, its u-error
is measured by adaptive quadrature at ``CHECK_POINTS`` quantiles, and the mass
within float64 rounding of a finite end is estimated and stated.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from symfisher.families.density_map import _Map, _mode_and_width, _tail_end
from symfisher.families.sampler_info import (
    CHECK_POINTS,
    MAX_PRECISE,
    NEAR_END,
    NEAR_END_DPS,
    STATED_ERROR,
    U_RESOLUTION,
    SamplerInfo,
    _Table,
    _Unservable,
)


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
