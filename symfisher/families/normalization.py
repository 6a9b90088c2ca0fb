r"""Is a log-density normalised? And its normaliser :math:`Z(\theta)` when it is not.

.. math:: Z(\theta) = \int_{\mathcal X} e^{\log \tilde p_\theta(x)}\,dx
   \quad\text{or}\quad \sum_{x \in \mathcal X} e^{\log \tilde p_\theta(x)}

:func:`check_normalization` asks, in order:

1. SymPy, under a short time limit, for :math:`Z(\theta)` with the parameters
   left symbolic; exactly ``1``, under convergence conditions that hold at
   random points of the parameter domain, proves the family normalised for
   every :math:`\theta` (anything else is left to step 2);
2. otherwise 30-digit arithmetic at a few random valid parameter points,
   seeded by the family's definition hash: an exact sum over a finite
   support of at most ``MAX_TERMS`` elements; over a count support (one- or
   two-sided, or a long finite range) a sum outwards from the mode with a
   geometric tail bound, or an Euler–Maclaurin rest for power-law decay and
   long ranges (bounded cost); tanh–sinh quadrature (mpmath) over an interval
   or a union of intervals, split at the support's ends, 0, the parameter
   values, the mode and the kinks of ``Abs``/``sign``/``Heaviside``, with a
   far-tail test for divergence at infinite ends and, at finite ends, a
   power-law end piece whose exponent tells integrable singularities
   (:math:`y^{-1/2}`) from divergent ones (:math:`y^{-1}`).

Families of several variables are not checked (yet).

A total off 1 by more than the tolerance (``TOL`` plus ten error estimates)
raises :class:`~symfisher.errors.FamilyError` naming the value and the point;
so does a total that does not converge (a non-normalisable density).

:func:`log_normalizer` gives :math:`\log Z(\theta)` in closed form for
``define_family(..., normalize=True)`` where SymPy finds one; otherwise
:mod:`symfisher.families.normalizer` keeps :math:`Z` as an integral.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.core.cache import clear_cache

from symfisher.errors import FamilyError, SymbolicTimeout
from symfisher.families.family import Family, finite_values
from symfisher.families.points import mode_points, random_point, real_values
from symfisher.timelimit import run_limited

#: Working precision (decimal digits) of the numeric check.
DPS = 30
#: Largest accepted :math:`|Z - 1|` besides ten error estimates.
TOL = 1e-10
#: Largest error estimate of a total that counts as converged.
MAX_ERR = 1e-8
#: Random parameter points of the numeric check.
N_POINTS = 2
#: Seconds SymPy gets to prove :math:`Z \equiv 1` before numbers decide.
SYMBOLIC_SECONDS = 0.2
#: Seconds SymPy gets to find :math:`Z(\theta)` for ``normalize=True``.
NORMALIZER_SECONDS = 10.0
#: Most terms of a count sum before it is declared non-convergent.
MAX_TERMS = 2_000


def check_normalization(family: Family) -> None:
    r"""Raise unless :math:`\int p_\theta = 1` (or :math:`\sum p_\theta = 1`).

    Args:
      family: a family with one variable; families with several variables are
        not checked (they pass unchanged).

    Raises:
      FamilyError: naming the total found and the parameter point, or saying
        that the total diverges.
    """
    if len(family.variables) != 1:
        return
    if _symbolic_total(family, SYMBOLIC_SECONDS) == 1:
        return
    rng = random.Random(family.definition_hash())
    for _ in range(N_POINTS):
        point = random_point(family, rng)
        total, err = total_at(family, point)
        _judge(family, point, total, err)


def total_at(
    family: Family, point: Mapping[sp.Symbol, float], dps: int = DPS
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r"""``(Z, error estimate)``: the density's total at ``point`` to ``dps`` digits.

    Raises:
      FamilyError: for a support the check cannot integrate over.
    """
    (x,) = family.variables
    sub = {p: sp.Float(v, dps + 10) for p, v in point.items()}
    logp = family.log_density.subs(sub)
    support = family.supports[0].subs(sub)
    with mpmath.workdps(dps):
        values = _small_finite_values(support)
        if values is not None:
            dens = _mp(sp.exp(logp), x)
            total = mpmath.fsum(dens(_end(v)) for v in values)
            return mpmath.re(total), mpmath.mpf(0)
        if family.is_discrete:
            return _count_sum(logp, x, support)
        pieces = support.args if isinstance(support, sp.Union) else (support,)
        if not all(isinstance(s, sp.Interval) for s in pieces):
            raise FamilyError(
                f"{family.name}: cannot check normalisation over the support "
                f"{sp.sstr(support)} (an interval or a union of intervals)"
            )
        totals = [_quad(logp, x, s, point) for s in pieces]
        return mpmath.fsum(t for t, _ in totals), mpmath.fsum(e for _, e in totals)


def log_normalizer(family: Family, seconds: float | None = None) -> sp.Expr | None:
    r""":math:`\log Z(\theta)` in closed form, checked at a random point.

    ``None`` when SymPy finds no closed form within ``seconds`` (then
    :func:`symfisher.families.normalizer.quadrature_log_normalizer` keeps
    :math:`Z` as an integral).

    Raises:
      FamilyError: when the total diverges, or when the closed form disagrees
        with quadrature.
    """
    if len(family.variables) != 1:
        raise FamilyError(
            f"{family.name}: normalize=True supports one variable, "
            f"got {len(family.variables)}"
        )
    seconds = NORMALIZER_SECONDS if seconds is None else seconds
    # SymPy's integrate answers differently after other work (its cache): start
    # from a clean cache so that the closed form depends on the family alone
    clear_cache()
    Z = _symbolic_total(family, seconds)
    if Z is None:
        return None
    if Z.has(sp.oo, -sp.oo, sp.zoo) or Z.is_zero:
        raise FamilyError(
            f"{family.name}: the density is not normalisable: "
            f"its total over the support is {sp.sstr(Z)}"
        )
    rng = random.Random(family.definition_hash())
    point = random_point(family, rng)
    total, err = total_at(family, point)
    _judge_converged(family, point, total, err)
    with mpmath.workdps(DPS):
        closed = mpmath.mpf(str(sp.N(Z.subs(point), DPS)))
    if not mpmath.isfinite(closed) or abs(closed - total) > TOL * total + 10 * err:
        raise FamilyError(
            f"{family.name}: SymPy's normaliser Z = {sp.sstr(Z)} is "
            f"{mpmath.nstr(closed, 8)} at {_fmt(point)} but quadrature gives "
            f"{mpmath.nstr(total, 8)}; normalise the density yourself"
        )
    logz = sp.expand_log(sp.log(Z))
    return logz.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sp.gamma),
        lambda e: sp.loggamma(e.args[0].args[0]),
    )


# -- symbolic ----------------------------------------------------------------------
def _small_finite_values(support: sp.Set) -> tuple[sp.Expr, ...] | None:
    """The elements of a finite support of at most ``MAX_TERMS`` elements.

    A longer range (``range(0, 10**9)``) is summed like a count support, at
    bounded cost, instead of element by element.
    """
    if isinstance(support, sp.Range) and support.size.is_number:
        if support.size > MAX_TERMS:
            return None
    return finite_values(support)


def _symbolic_total(family: Family, seconds: float) -> sp.Expr | None:
    """SymPy's closed form of the total, or ``None`` (time out, unevaluated)."""
    (x,) = family.variables
    support = family.supports[0]
    values = _small_finite_values(support)

    def total() -> sp.Expr:
        if values is not None:
            return sp.simplify(
                sp.Add(*[sp.exp(family.log_density.subs(x, v)) for v in values])
            )
        dens = _density(family.log_density)
        lims = (x, support.inf, support.sup)
        unevaluated = sp.Integral(dens, lims)
        if family.is_discrete:
            out = _where_valid(family, sp.summation(dens, lims), unevaluated)
        else:
            found = sp.integrate(dens, lims, conds="separate", meijerg=True)
            out = _where_valid(family, found, unevaluated)
            if out.has(sp.Integral):
                found = sp.integrate(dens, lims, conds="separate")
                out = _where_valid(family, found, unevaluated)
        if out.has(sp.hyper, sp.meijerg):
            out = sp.hyperexpand(out)
        return sp.simplify(out) if out.is_number is False else out

    if not (values is not None or isinstance(support, sp.Interval | sp.Range)):
        return None
    if values is None:
        warm_sympy_tables()
    try:
        Z = run_limited(total, seconds)
    except SymbolicTimeout:
        return None
    except Exception:  # SymPy's own failures: leave it to the numbers
        return None
    if Z.has(sp.Integral, sp.Sum, sp.Piecewise, sp.nan, sp.I):
        return None
    return Z


_warmed = False


def warm_sympy_tables() -> None:
    """Build SymPy's Meijer-G lookup table once per process, outside any time limit.

    ``sympy.integrals.meijerint`` fills a module-level table in place on first
    use. A time limit that fires during the fill leaves a partial table that
    SymPy never rebuilds, and later integrals come back unevaluated or wrong
    for the rest of the process (seen: the Gamma normaliser after a 0.2 s
    check had timed out). The first call here replaces whatever table exists
    by a complete one.
    """
    global _warmed
    if _warmed:
        return
    from sympy.integrals import meijerint

    table: dict = {}
    meijerint._create_lookup_table(table)
    meijerint._lookup_table = table
    _warmed = True


def _where_valid(family: Family, out: sp.Expr | tuple, unevaluated: sp.Expr) -> sp.Expr:
    """SymPy's value where its conditions hold on the whole parameter domain.

    ``out`` is a value, a ``(value, condition)`` pair (``conds="separate"``) or
    a ``Piecewise``; conditions are tested at random valid points. Where none
    holds everywhere the result is ``unevaluated`` (no closed form).
    """
    if isinstance(out, tuple):
        branches = [out]
    elif isinstance(out, sp.Piecewise):
        branches = list(out.args)
    else:
        return out
    rng = random.Random(family.definition_hash() + "conditions")
    points = [random_point(family, rng) for _ in range(8)]
    for value, cond in branches:
        if cond == sp.true or all(cond.subs(pt) == sp.true for pt in points):
            return value
    return unevaluated


def _density(logp: sp.Expr) -> sp.Expr:
    r""":math:`e^{\log p}` as a product SymPy integrates well.

    A term :math:`c \log u` becomes :math:`u^c` and :math:`\log\Gamma(z)`
    becomes :math:`\Gamma(z)`, so that :math:`e^{(a-1)\log x - b x}` reads
    :math:`x^{a-1} e^{-b x}`.
    """
    logp = sp.expand(logp.replace(sp.loggamma, lambda z: sp.log(sp.gamma(z))))
    powers: dict[sp.Expr, sp.Expr] = {}
    rest = []
    for term in sp.Add.make_args(logp):
        logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
        if len(logs) == 1:
            base = logs[0].args[0]
            powers[base] = powers.get(base, 0) + term / logs[0]
        else:
            rest.append(term)
    out = sp.Mul(*[base**c for base, c in powers.items()])
    return out * sp.exp(sp.Add(*rest))


# -- numeric -----------------------------------------------------------------------
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


# -- verdicts ----------------------------------------------------------------------
def _fmt(point: Mapping[sp.Symbol, float]) -> str:
    return ", ".join(f"{p.name}={v:.6g}" for p, v in point.items())


def _digits(total: mpmath.mpf) -> str:
    """``total`` with enough digits to show how far it is from 1 (at least 5)."""
    gap = abs(total - 1)
    n = 5 if gap == 0 else max(5, min(20, int(-mpmath.log10(gap)) + 3))
    return mpmath.nstr(total, n)


def _judge_converged(
    family: Family, point: Mapping[sp.Symbol, float], total: mpmath.mpf, err: float
) -> None:
    if mpmath.isinf(total):
        raise FamilyError(
            f"{family.name}: the density is not normalisable: its total over the "
            f"support {sp.sstr(family.supports[0])} diverges at {_fmt(point)}"
        )
    bad = not (mpmath.isfinite(total) and mpmath.isfinite(err))
    if bad or err > MAX_ERR * max(1, abs(total)):
        raise FamilyError(
            f"{family.name}: the density is not normalisable: its total over the "
            f"support {sp.sstr(family.supports[0])} does not converge at "
            f"{_fmt(point)} (quadrature gives {mpmath.nstr(total, 6)} with error "
            f"estimate {mpmath.nstr(err, 3)})"
        )
    if total <= 0:
        raise FamilyError(
            f"{family.name}: the density is not normalisable: its total is "
            f"{mpmath.nstr(total, 6)} at {_fmt(point)}"
        )


def _judge(
    family: Family, point: Mapping[sp.Symbol, float], total: mpmath.mpf, err: float
) -> None:
    _judge_converged(family, point, total, err)
    if abs(total - 1) > TOL + 10 * err:
        what = "sums" if family.is_discrete else "integrates"
        raise FamilyError(
            f"{family.name}: the density {what} to {_digits(total)} at "
            f"{_fmt(point)}, not 1; divide by the normaliser (normalize=True "
            "does it for you) or fix the log-density"
        )
