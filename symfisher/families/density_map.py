r"""The mapped variable of the continuous generic sampler and where its mass lies.

:class:`_Map` takes the real line onto a support (:math:`x = x(t)`: logistic,
exponential or sinh); :func:`_mode_and_width` and :func:`_tail_end` find the
mode, the width and the tail ends of a log-density along it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from symfisher.families.sampler_info import (
    MAX_SLIVER,
    NEGLIGIBLE,
    TAIL_LOG,
    _Unservable,
)


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
