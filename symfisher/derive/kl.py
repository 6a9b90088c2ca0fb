r"""Closed-form KL divergence :math:`\mathrm{KL}(p_\theta \,\|\, p_{\theta'})`.

Exponential families (without declared cumulants) use the Bregman form

.. math:: \mathrm{KL} = A(\eta') - A(\eta) - (\eta' - \eta)\cdot\nabla A(\eta);

finite supports an exact sum; anything else
:math:`\mathbb E_\theta[\log p_\theta(x) - \log p_{\theta'}(x)]` by the
expectation engine.

Where :math:`\log p_{\theta'}` has a kink (``Abs``) at a location parameter
:math:`\mu'` (Laplace), the expectation is taken twice, once for
:math:`\mu' = \mu - \Delta` and once for :math:`\mu' = \mu + \Delta` with
:math:`\Delta > 0`, so that SymPy knows the sign; the two branches are kept
(route 3 differentiates each) and joined into one expression, in
:math:`|\mu - \mu'|` when they are the same function of :math:`\Delta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.derive.expectation import UNRESOLVED, expect
from symfisher.derive.simplify import is_zero, tidy
from symfisher.families.family import Family
from symfisher.families.moments import at_natural as _at_natural

BREGMAN = "exponential-family Bregman divergence of A"


@dataclass(frozen=True)
class KL:
    r"""A closed-form KL with its provenance.

    Attributes:
      expr: KL in the family's parameters and their primed copies, or ``None``.
      primed: the symbols :math:`\\theta'` in parameter order.
      method: how it was obtained.
      detail: caveats (e.g. validity only where the supports nest).
      branches: ``(expression, condition)`` pairs, each analytic where its
        condition holds, when ``expr`` was found by a split on a sign.
    """

    expr: sp.Expr | None
    primed: tuple[sp.Symbol, ...]
    method: str
    detail: str = ""
    branches: tuple[tuple[sp.Expr, sp.Basic], ...] = ()


def kl(family: Family, seconds: float = 20.0) -> KL:
    r""":math:`\mathrm{KL}(p_\theta\|p_{\theta'})` in closed form where one is found."""
    primed = family.primed()
    to_primed = dict(zip(family.params, primed, strict=True))
    ef = family.expfam
    bregman = ef is not None and family.cumulants is None
    if bregman and not family.is_finite and not family.support_depends_on_params:
        eta = dict(zip(ef.nat, ef.eta, strict=True))
        eta_p = {n: e.subs(to_primed) for n, e in eta.items()}
        grad = [sp.diff(ef.A, n) for n in ef.nat]
        expr = (
            _at_natural(ef.A, eta_p)
            - _at_natural(ef.A, eta)
            - sp.Add(
                *[
                    (eta_p[n] - eta[n]) * _at_natural(g, eta)
                    for n, g in zip(ef.nat, grad, strict=True)
                ]
            )
        )
        return KL(tidy(expr), primed, BREGMAN)
    logq = family.log_density.subs(to_primed)
    kink = _kinked_location(family, primed, logq)
    if kink is not None:
        return _split_kl(family, primed, family.log_density - logq, kink, seconds)
    res = expect(family, [family.log_density - logq], seconds)
    detail = res.detail
    if res.values is None:
        return KL(None, primed, res.method, detail)
    expr = tidy(res.values[0])
    if family.support_depends_on_params:
        nested = _nested(family, to_primed)
        if nested is sp.true:
            pass
        elif nested is None:
            detail = (
                "valid only where the support of p_theta lies inside that of "
                "p_theta' (KL = +oo otherwise)"
            )
        else:
            expr = sp.Piecewise((expr, nested), (sp.oo, True))
            detail = f"+oo unless the supports nest ({nested})"
    return KL(expr, primed, res.method, detail)


def _nested(family: Family, to_primed: dict) -> sp.Basic | None:
    r"""The condition :math:`\operatorname{supp} p_\theta \subseteq \operatorname{supp} p_{\theta'}`.

    For interval supports :math:`(a, b) \subseteq (a', b')` iff
    :math:`a' \le a` and :math:`b \le b'` (each side dropped when SymPy
    proves it; ``true`` when they always nest); None for any other support.
    """
    conds = []
    for sup in family.supports:
        if not isinstance(sup, sp.Interval):
            return None
        sup_q = sup.subs(to_primed)
        if not isinstance(sup_q, sp.Interval):
            return None
        conds += [sp.Le(sup_q.start, sup.start), sp.Le(sup.end, sup_q.end)]
    return sp.And(*conds)


def _kinked_location(
    family: Family, primed: tuple[sp.Symbol, ...], logq: sp.Expr
) -> int | None:
    """Index of the one real parameter whose primed copy sits inside an ``Abs`` of x."""
    if family.support_depends_on_params or len(family.variables) != 1:
        return None
    kinks = [n for n in logq.atoms(sp.Abs) if n.has(*family.variables)]
    found = [
        i
        for i, (p, q) in enumerate(zip(family.params, primed, strict=True))
        if p.is_real and not p.is_positive and any(k.has(q) for k in kinks)
    ]
    return found[0] if len(found) == 1 else None


def _split_kl(
    family: Family,
    primed: tuple[sp.Symbol, ...],
    integrand: sp.Expr,
    i: int,
    seconds: float,
) -> KL:
    r"""KL from the two branches :math:`\mu' < \mu` and :math:`\mu' > \mu`."""
    p, q = family.params[i], primed[i]
    names = {s.name for s in family.params + family.variables}
    name = f"Delta_{p.name}"
    while name in names:
        name = "_" + name
    gap = sp.Symbol(name, positive=True)
    # mu' = mu - gap (mu' < mu) and mu' = mu + gap (mu' > mu), in one pass
    res = expect(
        family, [integrand.subs(q, p - gap), integrand.subs(q, p + gap)], seconds
    )
    where = f"split on the sign of {p} - {q}"
    if res.values is None:
        return KL(None, primed, UNRESOLVED, f"{where}: {res.detail}")
    vb, va = (tidy(v) for v in res.values)
    branches = ((vb.subs(gap, p - q), q < p), (va.subs(gap, q - p), q > p))
    if is_zero(vb - va) is True:
        expr = vb.subs(gap, sp.Abs(p - q))
        how = "the branches are one function of |{0} - {1}|"
    else:
        expr = sp.Piecewise(branches[0], (branches[1][0], True))
        how = "the branches differ: a piecewise KL"
    detail = f"{where} ({q} < {p} and {q} > {p}); " + how.format(p, q)
    return KL(expr, primed, res.method, detail, branches)
