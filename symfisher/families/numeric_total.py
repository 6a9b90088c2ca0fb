r"""Numeric totals of a density over its support, in 30-digit mpmath arithmetic.

:math:`\sum_{x} e^{\log p(x)}` or :math:`\int e^{\log p(x)}\,dx` at one
parameter point, for :mod:`symfisher.families.normalization` (and the
quadrature normaliser of :mod:`symfisher.families.normalizer`):

* :func:`_count_sum`: a sum over a range of integers, outwards from the mode
  (:func:`_count_start`), each side by :func:`_one_sided` with a geometric
  tail bound, or an Euler–Maclaurin rest (:func:`_euler_maclaurin_tail`) for
  power-law decay and long ranges;
* :func:`_quad`: tanh–sinh quadrature over an interval, split at 0, the
  parameter values, the mode and the kinks of ``Abs``/``sign``/``Heaviside``
  (:func:`_kinks`), with a far-tail divergence test at infinite ends
  (:func:`_heavy_end`) and a power-law end piece at finite ends
  (:func:`_end_segment`);
* helpers: :func:`_mp` (an mpmath function of an expression), :func:`_guarded`
  (the integrand, 0 below ``LOG_FLOOR``) and :func:`_end` (a support's end as
  an mpmath number).

``DPS`` and ``MAX_TERMS`` are defined here, where they are read, and
re-exported by :mod:`symfisher.families.normalization`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import mpmath
import numpy as np
import sympy as sp

from symfisher.families.points import mode_points, real_values

#: Working precision (decimal digits) of the numeric check.
DPS = 30
#: Most terms of a count sum before it is declared non-convergent.
MAX_TERMS = 2_000


def _mp(expr: sp.Expr, x: sp.Symbol) -> Callable:
    return sp.lambdify([x], expr, modules="mpmath", dummify=True)


def _count_sum(
    logp: sp.Expr, x: sp.Symbol, support: sp.Set
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r"""Sum over a range of integers (one- or two-sided, or finite but long).

    The sum starts at the mode :math:`c` (a float64 scan) and runs outwards:
    :math:`\sum_{j \ge c}` and, reflected, :math:`\sum_{j < c}`, each by
    :func:`_one_sided`. The cost is bounded whatever the range: no recursion,
    at most ``2 * MAX_TERMS`` terms per side, the rest by Euler-Maclaurin.
    """
    lo = None if support.inf == -sp.oo else int(support.inf)
    hi = None if support.sup == sp.oo else int(support.sup)
    c = _count_start(logp, x, lo, hi)
    up, e_up = _one_sided(logp, x, c, hi)
    if lo is not None and c <= lo:
        return up, e_up
    # j = -i for i from 1 - c up to -lo
    down, e_down = _one_sided(logp.subs(x, -x), x, 1 - c, None if lo is None else -lo)
    return up + down, e_up + e_down


def _count_start(logp: sp.Expr, x: sp.Symbol, lo: int | None, hi: int | None) -> int:
    """An integer in ``[lo, hi]`` near the mode: a float64 scan, then a local search.

    Only where the sum starts depends on it, not the value of the sum.
    """
    t = np.linspace(-60.0, 60.0, 2001)
    if lo is not None and hi is not None:
        grid = lo + (hi - lo) / (1.0 + np.exp(-t / 4))
    elif lo is not None:
        grid = lo + np.expm1(t / 2).clip(0)
    elif hi is not None:
        grid = hi - np.expm1(t / 2).clip(0)
    else:
        grid = np.sinh(t / 2)
    cands = {int(v) for v in np.round(grid) if np.isfinite(v)}
    cands |= {v for v in (lo, hi, 0) if v is not None}
    cands = sorted(
        v for v in cands if (lo is None or v >= lo) and (hi is None or v <= hi)
    )
    f = sp.lambdify([x], logp, modules=["scipy", "numpy"], dummify=True)

    def value(k: int) -> float:
        with np.errstate(all="ignore"):
            try:
                v = float(real_values(f(float(k))))
            except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                return -np.inf
        return v if np.isfinite(v) or v == np.inf else -np.inf

    vals = [value(k) for k in cands]
    i = int(np.argmax(vals))
    if not np.isfinite(vals[i]):
        return cands[i]
    left, right = cands[max(i - 1, 0)], cands[min(i + 1, len(cands) - 1)]
    best = cands[i]
    while right - left > 2:  # ternary search on the integers between neighbours
        m1, m2 = left + (right - left) // 3, right - (right - left) // 3
        if value(m1) < value(m2):
            left = m1 + 1
        else:
            right = m2 - 1
    for k in range(left, right + 1):
        if value(k) > value(best):
            best = k
    return best


def _one_sided(
    logp: sp.Expr, x: sp.Symbol, k: int, end: int | None
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`\sum_{j=k}^{\text{end}} p(j)` (``end=None``: to infinity), bounded tail.

    Terms are added from ``k`` until a term is below :math:`10^{-(DPS+5)}` of
    the sum with a ratio :math:`r` of consecutive terms under 1 that has
    stopped growing; the tail is then bounded by the geometric series
    :math:`p_j\, r / (1 - r)`, which is the error estimate. After
    ``MAX_TERMS`` terms, at most ``MAX_TERMS`` more are added exactly, and a
    longer rest goes to :func:`_euler_maclaurin_tail`.
    """
    dens = _mp(sp.exp(logp), x)
    total, last, ratio = mpmath.mpf(0), None, None
    eps = mpmath.mpf(10) ** (-(DPS + 5))
    for _ in range(MAX_TERMS):
        if end is not None and k > end:
            return total, mpmath.mpf(0)
        term = mpmath.re(dens(k))
        total += term
        if last is not None and last > 0:
            r = term / last
            settled = r < 1 and (ratio is None or r <= ratio * (1 + eps))
            if settled and term <= eps * abs(total):
                return total, term * r / (1 - r)
            ratio = r
        last = term
        k += 1
    if end is not None and end - k < MAX_TERMS:  # a short rest: exactly
        rest = mpmath.fsum(mpmath.re(dens(j)) for j in range(k, end + 1))
        return total + rest, mpmath.mpf(0)
    tail, err = _euler_maclaurin_tail(logp, x, k, end)
    return total + tail, err


def _euler_maclaurin_tail(
    logp: sp.Expr, x: sp.Symbol, k: int, end: int | None = None
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r"""Rest :math:`\sum_{j=k}^{n} p(j)` of a slowly decaying or long sum.

    .. math:: \sum_{j=k}^{n} p(j) \approx \int_k^n p + \tfrac12 (p(k) + p(n))
       + \tfrac1{12} (p'(n) - p'(k))

    with :math:`n = \infty` (and its terms 0) for ``end=None``. The next
    Euler-Maclaurin terms, :math:`|p^{(3)}|/720` at both ends, plus the
    quadrature error is the error estimate. Where :math:`x\,p(x)` does not
    vanish far out an infinite sum diverges and the error is infinite.
    """
    d1, d2, d3 = (sp.diff(logp, x, n) for n in (1, 2, 3))
    lp, l1, l2, l3 = (_mp(e, x) for e in (logp, d1, d2, d3))

    def terms(j: int) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
        pj = mpmath.exp(mpmath.re(lp(j)))
        a1, a2, a3 = (mpmath.re(f(j)) for f in (l1, l2, l3))
        return pj, pj * a1, abs(pj * (a3 + 3 * a1 * a2 + a1**3))

    p0, dp0, e0 = terms(k)
    fk = mpmath.mpf(k)
    fn = mpmath.inf if end is None else mpmath.mpf(end)
    inner = {mpmath.mpf(v) for v in mode_points(logp, x, float(fk), float(fn), 2001)}
    inner |= set(_kinks(logp, x, fk, fn))
    pts = [fk, *sorted(p for p in inner if fk < p < fn), fn]
    integral, qerr = mpmath.quad(_guarded(logp, x), pts, error=True)
    tail = mpmath.re(integral) + p0 / 2 - dp0 / 12
    err = e0 / 720 + qerr
    if end is None:
        if _heavy_end(logp, x, fk, mpmath.inf):
            err = mpmath.inf
    else:
        pn, dpn, en = terms(end)
        tail += pn / 2 + dpn / 12
        err += en / 720
    return tail, err


def _quad(
    logp: sp.Expr,
    x: sp.Symbol,
    support: sp.Interval,
    point: Mapping[sp.Symbol, float],
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`\int e^{\log p}` over ``support`` by tanh–sinh, segment by segment.

    A segment at a finite end :math:`a` is integrated in :math:`y = x - a` (or
    :math:`b - x`), substituted exactly, by :func:`_end_segment`, so that
    singular ends such as :math:`(1 - x)^{-1/2}` keep their precision and
    integrable singularities are told from divergent ones.
    """
    a, b = support.inf, support.sup
    fa, fb = _end(a), _end(b)
    if _heavy_end(logp, x, fa, fb):
        return mpmath.inf, mpmath.inf
    inner = {mpmath.mpf(0), *(mpmath.mpf(v) for v in point.values())}
    inner |= {mpmath.mpf(v) for v in mode_points(logp, x, float(fa), float(fb), 2001)}
    inner |= set(_kinks(logp, x, fa, fb))
    pts = [fa, *sorted(p for p in inner if fa < p < fb), fb]
    if len(pts) == 2:  # an end segment needs a finite length
        if not (mpmath.isinf(fa) or mpmath.isinf(fb)):
            pts = [fa, (fa + fb) / 2, fb]
        elif not mpmath.isinf(fa):
            pts = [fa, fa + 1, fb]
        elif not mpmath.isinf(fb):
            pts = [fa, fb - 1, fb]
    y = sp.Dummy("y", positive=True)
    dens = _guarded(logp, x)
    total, err = mpmath.mpf(0), mpmath.mpf(0)
    for i, (lo, hi) in enumerate(itertools.pairwise(pts)):
        if i == 0 and not mpmath.isinf(lo):
            v, e = _end_segment(logp.subs(x, a + y), y, hi - lo, fa)
        elif i == len(pts) - 2 and not mpmath.isinf(hi):
            v, e = _end_segment(logp.subs(x, b - y), y, hi - lo, fb)
        else:
            v, e = mpmath.quad(dens, [lo, hi], error=True, maxdegree=8)
        if mpmath.isinf(v):
            return mpmath.inf, mpmath.inf
        total += mpmath.re(v)
        err += e
    return total, err


#: Distance of the end piece from the end, relative to the end segment's length.
END_GAP = mpmath.mpf(10) ** -20
#: Ratio of the distances at which the end exponent is measured.
END_RATIO = mpmath.mpf(10) ** -5


def _end_segment(
    logp: sp.Expr, y: sp.Symbol, length: mpmath.mpf, end: mpmath.mpf
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`\int_0^L p(y)\,dy` with :math:`y` the distance from a finite end.

    :math:`p` may be singular at :math:`y = 0` (Beta, Kumaraswamy and arcsine
    with shapes under 1). Over :math:`[\delta, L]`, :math:`\delta = 10^{-20} L`,
    tanh-sinh runs in :math:`u = \log y`, where :math:`y^s` is
    :math:`e^{(s+1)u}`, smooth. Below :math:`\delta`, :math:`p \approx C y^s`
    with the exponent :math:`s` measured at :math:`\delta` and
    :math:`10^{-5}\delta`; the piece is :math:`p(\delta)\,\delta/(s+1)`, its
    error estimate the change when :math:`s` is measured one step further in.
    Where :math:`y\,p(y)` does not decrease toward the end (:math:`s \le -1`)
    the integral diverges: ``(inf, inf)``.

    Near the end, :math:`\log p` is evaluated with as many more digits as
    :math:`y` has leading zeros relative to the end's size, so that
    cancellations such as :math:`1 - (1 - y)^a` keep their precision.
    """
    lp = _mp(logp, y)
    cheap = sp.lambdify([y], logp, modules=["scipy", "numpy"], dummify=True)
    size = max(abs(end), mpmath.mpf(1))

    def logf(v: mpmath.mpf) -> mpmath.mpf:
        extra = max(0, int(mpmath.ceil(mpmath.log10(size / v)))) + 10
        with mpmath.workdps(DPS + extra):
            return mpmath.re(lp(v))

    def integrand(u: mpmath.mpf) -> mpmath.mpf:
        v = mpmath.exp(u)
        with np.errstate(all="ignore"):
            try:
                approx = float(real_values(cheap(float(v))))
            except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                approx = float("nan")
        if approx < LOG_FLOOR:
            return mpmath.mpf(0)
        value = logf(v)
        if mpmath.isnan(value):
            return mpmath.mpf(0)
        return mpmath.exp(value + u)

    delta = length * END_GAP
    v, e = mpmath.quad(
        integrand, [mpmath.log(delta), mpmath.log(length)], error=True, maxdegree=8
    )
    levels = [logf(delta * END_RATIO**n) for n in range(3)]
    if levels[0] == -mpmath.inf:
        return mpmath.re(v), e
    if not all(mpmath.isfinite(lv) for lv in levels):
        return mpmath.inf, mpmath.inf
    step = -mpmath.log(END_RATIO)
    s1, s2 = ((levels[n] - levels[n + 1]) / step for n in (0, 1))
    if min(s1, s2) + 1 <= mpmath.mpf(10) ** -DPS * 1e10:  # y p(y) does not vanish
        return mpmath.inf, mpmath.inf
    head = mpmath.exp(levels[0]) * delta
    piece = head / (s1 + 1)
    return mpmath.re(v) + piece, e + abs(piece - head / (s2 + 1))


def _heavy_end(logp: sp.Expr, x: sp.Symbol, a: mpmath.mpf, b: mpmath.mpf) -> bool:
    r"""Whether :math:`|x|\,p(x)` stays away from 0 toward an infinite end.

    Then :math:`\int p` diverges there (``0*x`` or ``x`` on the reals).
    """
    f = sp.lambdify([x], logp, modules=["scipy", "numpy"], dummify=True)
    for v in (s * 10.0**e for e in (8, 16, 32) for s in (-1, 1)):
        if not (a < v < b):
            continue
        with np.errstate(all="ignore"):
            try:
                lv = float(real_values(f(v)))
            except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                continue
        if lv + np.log(abs(v)) > -5.0:
            return True
    return False


#: Natural-log density below which the integrand counts as 0.
LOG_FLOOR = -800.0


def _guarded(logp: sp.Expr, var: sp.Symbol) -> Callable:
    r""":math:`e^{\log p}` in mpmath, with a float64 look first.

    Where the float64 value of :math:`\log p` is below ``LOG_FLOOR`` the
    integrand is 0, so that tails such as Gumbel's :math:`e^{-e^{-z}}` cost
    nothing (mpmath would work out :math:`e^{-10^{300}}` digit by digit).
    """
    cheap = sp.lambdify([var], logp, modules=["scipy", "numpy"], dummify=True)
    lp = _mp(logp, var)

    def integrand(v: mpmath.mpf) -> mpmath.mpf:
        with np.errstate(all="ignore"):
            try:
                approx = float(real_values(cheap(float(v))))
            except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                approx = float("nan")
        if approx < LOG_FLOOR:
            return mpmath.mpf(0)
        value = mpmath.re(lp(v))  # also where float64 overflowed: it may be wrong
        if mpmath.isnan(value):  # inf - inf where an end rounds onto the support's
            return mpmath.mpf(0)  # boundary (tanh-Gaussian at |x| -> 1): no mass
        return mpmath.exp(value)

    return integrand


#: Functions whose argument's zeros are kinks or jumps of the integrand.
_NONSMOOTH = (sp.Abs, sp.sign, sp.Heaviside)


def _kinks(
    logp: sp.Expr, x: sp.Symbol, a: mpmath.mpf, b: mpmath.mpf
) -> list[mpmath.mpf]:
    r"""Zeros of the arguments of ``Abs``, ``sign``, ``Heaviside`` inside (a, b).

    Sign changes on a float64 grid, then bisection at the working precision,
    so that a kink (Laplace's at :math:`x = \mu`, wherever a change of
    variable moved it) is a breakpoint of the quadrature.
    """
    args = {n.args[0] for n in logp.atoms(*_NONSMOOTH) if n.args[0].has(x)}
    if not args:
        return []
    t = np.linspace(-60.0, 60.0, 2001)
    fa, fb = float(a), float(b)
    if np.isfinite(fa) and np.isfinite(fb):
        grid = fa + (fb - fa) / (1.0 + np.exp(-t / 4))
    elif np.isfinite(fa):
        grid = fa + np.exp(t / 2)
    elif np.isfinite(fb):
        grid = fb - np.exp(t / 2)
    else:
        grid = np.sinh(t / 2)
    grid = grid[(grid > fa) & (grid < fb)]
    out = []
    for arg in args:
        f = _mp(arg, x)
        try:
            cheap = sp.lambdify([x], arg, modules=["scipy", "numpy"], dummify=True)
            with np.errstate(all="ignore"):
                vals = np.sign(real_values(cheap(grid)) * np.ones_like(grid))
        except Exception:
            continue
        for i in np.flatnonzero(vals[:-1] * vals[1:] < 0):
            lo, hi = mpmath.mpf(grid[i]), mpmath.mpf(grid[i + 1])
            flo = mpmath.re(f(lo))
            for _ in range(4 * DPS):
                mid = (lo + hi) / 2
                fm = mpmath.re(f(mid))
                if (fm < 0) == (flo < 0):
                    lo, flo = mid, fm
                else:
                    hi = mid
            out.append((lo + hi) / 2)
    return out


def _end(v: sp.Expr, digits: int = DPS + 5) -> mpmath.mpf:
    """An end of a support as an mpmath number (``digits`` digits), infinities kept."""
    if v == sp.oo:
        return mpmath.inf
    if v == -sp.oo:
        return -mpmath.inf
    return mpmath.mpf(str(sp.N(v, digits)))
