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
   (:math:`y^{-1/2}`) from divergent ones (:math:`y^{-1}`). These numeric
   totals live in :mod:`symfisher.families.numeric_total`.

Families of several variables are not checked (yet).

A total off 1 by more than the tolerance (``TOL`` plus ten error estimates)
raises :class:`~symfisher.errors.FamilyError` naming the value and the point;
so does a total that does not converge (a non-normalisable density).

:func:`log_normalizer` gives :math:`\log Z(\theta)` in closed form for
``define_family(..., normalize=True)`` where SymPy finds one; otherwise
:mod:`symfisher.families.normalizer` keeps :math:`Z` as an integral.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import mpmath
import sympy as sp
from sympy.core.cache import clear_cache

from symfisher.errors import FamilyError, SymbolicTimeout
from symfisher.families.family import Family, finite_values

# DPS and MAX_TERMS are defined in numeric_total, where they are read, and
# re-exported here.
from symfisher.families.numeric_total import (
    DPS,
    MAX_TERMS,
    _count_sum,
    _end,
    _mp,
    _quad,
)
from symfisher.families.points import random_point
from symfisher.timelimit import run_limited

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
