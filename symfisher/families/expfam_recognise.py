r"""Recognise the exponential-family form of a log-density.

.. math:: \log p_\theta(x) = \sum_j \eta_j(\theta)\,T_j(x) - A(\theta) + \log h(x)

The log-density is expanded (``expand_log``, then ``expand``) into a sum of
terms. A term free of :math:`x` belongs to :math:`-A(\theta)`, a term free of
:math:`\theta` to :math:`\log h(x)`, and any other term must factor as
(function of :math:`\theta`) times (function of :math:`x`): the :math:`x` part
is a statistic :math:`T_j` and the :math:`\theta` parts sharing it add up to
:math:`\eta_j`. A term that does not factor (``log(x - mu)``, ``(x/lam)**k``)
means the density is not recognised. :math:`A` is then written in the natural
parameters by solving :math:`n = \eta(\theta)` for :math:`\theta`; a unique
solution is required, and :math:`A(\eta(\theta)) = A(\theta)` is checked at
random valid points with 30-digit arithmetic.

The form is trusted as exactly as the log-density is normalised: :math:`A` is
the log-partition function only for a density that integrates to 1 at every
:math:`\theta` (``define_family`` checks that for one variable).
"""

from __future__ import annotations

import random

import sympy as sp

from symfisher.errors import SymbolicTimeout
from symfisher.families.family import ExpFamily, Family
from symfisher.families.points import random_point
from symfisher.timelimit import run_limited

#: Time guard of one recognition (seconds; a guard against hangs only).
SECONDS = 10.0
#: Random parameter points at which :math:`A(\eta(\theta)) = A(\theta)` is checked.
CHECK_POINTS = 2
#: Digits of that check.
CHECK_DPS = 30


class NotExpFamily(Exception):
    """The log-density is not (recognisably) of exponential-family form."""


def recognise_expfam(family: Family, seconds: float = SECONDS) -> ExpFamily | None:
    r"""The exponential-family form of ``family``'s log-density, or ``None``.

    Families with a finite support or a parameter-dependent support are not
    recognised (exact sums serve the former; the identities fail for the
    latter).

    Args:
      family: a family whose ``log_density`` is normalised.
      seconds: time guard for the SymPy work (expansion and solving).

    Returns:
      An :class:`ExpFamily` with natural-parameter symbols ``n_1, n_2, ...``,
      atoms reduced to the statistics that are not integer powers of others;
      ``None`` when the form is not found within the guard.
    """
    if not family.variables or family.is_finite or family.support_depends_on_params:
        return None
    try:
        return run_limited(lambda: expfam_form(family), seconds)
    except (NotExpFamily, SymbolicTimeout):
        return None


def expfam_form(family: Family) -> ExpFamily:
    """The exponential-family form of ``family`` (no time guard).

    Raises:
      NotExpFamily: naming the term that does not factor, or why :math:`A`
        cannot be written in the natural parameters.
    """
    xs, ps = set(family.variables), set(family.params)
    logp = sp.expand(sp.expand_log(family.log_density))
    stats: dict[sp.Expr, sp.Expr] = {}
    log_h, minus_a = sp.Integer(0), sp.Integer(0)
    for term in sp.Add.make_args(logp):
        free = term.free_symbols
        if not free & xs:
            if free & ps:
                minus_a += term
            else:
                log_h += term
            continue
        if not free & ps:
            log_h += term
            continue
        coeff, stat = _split(term, xs, ps)
        stats[stat] = stats.get(stat, sp.Integer(0)) + coeff
    T: list[sp.Expr] = []
    eta: list[sp.Expr] = []
    for stat in sorted(stats, key=sp.default_sort_key):
        c = sp.expand(stats[stat])
        if c == 0:
            continue
        if not c.free_symbols & ps:
            log_h += c * stat
            continue
        T.append(stat)
        eta.append(c)
    if not T:
        raise NotExpFamily("no statistic couples x and the parameters")
    taken = {s.name for s in ps | xs}
    nat = tuple(_fresh(f"n_{j + 1}", taken) for j in range(len(T)))
    A = _in_natural(-minus_a, tuple(eta), nat, family)
    atoms = tuple(
        j for j, t in enumerate(T) if not any(_is_power_of(t, u) for u in T if u != t)
    )
    return ExpFamily(
        eta=tuple(eta),
        T=tuple(T),
        A=A,
        nat=nat,
        log_h=log_h,
        atoms=None if len(atoms) == len(T) else atoms,
    )


def _split(
    term: sp.Expr, xs: set[sp.Symbol], ps: set[sp.Symbol]
) -> tuple[sp.Expr, sp.Expr]:
    """``(theta part, x part)`` of a product term; numbers go to the theta part."""
    coeff, stat = sp.Integer(1), sp.Integer(1)
    for factor in sp.Mul.make_args(term):
        free = factor.free_symbols
        if free & xs and free & ps:
            raise NotExpFamily(f"the factor {factor} mixes x and the parameters")
        if free & xs:
            stat *= factor
        else:
            coeff *= factor
    return coeff, stat


def _fresh(name: str, taken: set[str]) -> sp.Symbol:
    while name in taken:
        name += "_"
    taken.add(name)
    return sp.Symbol(name, real=True)


def _is_power_of(t: sp.Expr, u: sp.Expr) -> bool:
    """Whether ``t == u**k`` for an integer ``k >= 2``."""
    return t.is_Pow and t.base == u and t.exp.is_Integer and t.exp >= 2


def _in_natural(
    A: sp.Expr, eta: tuple[sp.Expr, ...], nat: tuple[sp.Symbol, ...], family: Family
) -> sp.Expr:
    r""":math:`A` as a function of the natural parameters ``nat``, checked.

    Raises:
      NotExpFamily: when :math:`n = \eta(\theta)` has no unique solution for the
        parameters, or :math:`A` still depends on them afterwards, or the check
        at random points fails.
    """
    used = [p for p in family.params if any(e.has(p) for e in eta)]
    if A.free_symbols - set(used):
        raise NotExpFamily("A(theta) uses a parameter that no eta_j carries")
    eqs = [n - e for n, e in zip(nat, eta, strict=True)]
    rng = random.Random(family.definition_hash())
    points = [
        {p: sp.Float(v, CHECK_DPS) for p, v in random_point(family, rng).items()}
        for _ in range(CHECK_POINTS)
    ]
    naturals = [
        {n: sp.N(e.xreplace(pt), CHECK_DPS) for n, e in zip(nat, eta, strict=True)}
        for pt in points
    ]
    # keep the solutions theta(n) that give theta back on the domain
    sols = [
        sol
        for sol in sp.solve(eqs, used, dict=True)
        if set(sol) == set(used)
        and all(
            _close(sol[p].xreplace(at), pt[p])
            for pt, at in zip(points, naturals, strict=True)
            for p in used
        )
    ]
    if len(sols) != 1:
        raise NotExpFamily(
            f"eta(theta) = n has {len(sols)} solutions for {[p.name for p in used]} "
            "on the parameter domain"
        )
    A_n = A.xreplace(sols[0])
    if A_n.free_symbols - set(nat):
        raise NotExpFamily("A cannot be written in the natural parameters alone")
    for pt, at in zip(points, naturals, strict=True):
        if not _close(A_n.xreplace(at), A.xreplace(pt)):
            raise NotExpFamily("A(eta(theta)) differs from A(theta)")
    return A_n


def _close(a: sp.Expr, b: sp.Expr) -> bool:
    """Equal to 20 digits as real numbers, at ``CHECK_DPS`` digits."""
    va, vb = sp.N(a, CHECK_DPS), sp.N(b, CHECK_DPS)
    if not (va.is_number and vb.is_number and va.is_real and vb.is_real):
        return False
    return bool(abs(va - vb) <= sp.Float(10) ** (10 - CHECK_DPS) * max(1, abs(vb)))
