r"""Closed-form KL divergence :math:`\mathrm{KL}(p_\theta \,\|\, p_{\theta'})`.

Exponential families (without declared cumulants) use the Bregman form

.. math:: \mathrm{KL} = A(\eta') - A(\eta) - (\eta' - \eta)\cdot\nabla A(\eta);

finite supports an exact sum; anything else
:math:`\mathbb E_\theta[\log p_\theta(x) - \log p_{\theta'}(x)]` by the
expectation engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.derive.expectation import _at_natural, expect
from symfisher.derive.simplify import tidy
from symfisher.families.family import Family

BREGMAN = "exponential-family Bregman divergence of A"


@dataclass(frozen=True)
class KL:
    r"""A closed-form KL with its provenance.

    Attributes:
      expr: KL in the family's parameters and their primed copies, or ``None``.
      primed: the symbols :math:`\\theta'` in parameter order.
      method: how it was obtained.
      detail: caveats (e.g. validity only where the supports nest).
    """

    expr: sp.Expr | None
    primed: tuple[sp.Symbol, ...]
    method: str
    detail: str = ""


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
    res = expect(family, [family.log_density - logq], seconds)
    detail = res.detail
    if family.support_depends_on_params:
        detail = (
            "valid only where the support of p_theta lies inside that of "
            "p_theta' (KL = +oo otherwise)"
        )
    if res.values is None:
        return KL(None, primed, res.method, detail)
    return KL(tidy(res.values[0]), primed, res.method, detail)
