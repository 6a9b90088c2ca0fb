r"""Closed-form entropy :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]`.

Strategies, in order (each records how it was obtained):

1. a finite support: the exact sum :math:`-\sum_x p_\theta(x)\log p_\theta(x)`;
2. an exponential family (no declared cumulants, support free of
   :math:`\theta`): with :math:`\mathbb E[T] = \nabla A`,

   .. math:: H = A(\eta) - \eta\cdot\nabla A(\eta) - \mathbb E[\log h(x)],

   where :math:`\mathbb E[\log h]` is 0 or a constant when :math:`h` is, and
   otherwise goes to the expectation engine; when it has no closed form
   (Poisson: :math:`\mathbb E[\log x!]`) the entropy is left to numeric
   integration, and the detail says which term was missing;
3. otherwise :math:`\mathbb E[-\log p_\theta(x)]` by the expectation engine
   (:func:`symfisher.derive.expectation.expect`: moments, then symbolic
   integration under a time limit, each integral checked numerically). A
   support that depends on :math:`\theta` is no obstacle: the entropy of
   Uniform(0, θ) is :math:`\log\theta`.

What none of these finds is *unresolved*: :meth:`Derivation.entropy_at
<symfisher.derive.derivation.Derivation.entropy_at>` answers it by mpmath
quadrature, and the kernels by a quadrature rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.derive.expectation import UNRESOLVED, expect
from symfisher.derive.simplify import tidy
from symfisher.families.family import Family
from symfisher.families.moments import at_natural as _at_natural

#: method of the exponential-family route
EXPFAM_ENTROPY = "exponential-family identity H = A - eta . grad A - E[log h]"


@dataclass(frozen=True)
class Entropy:
    r"""A closed-form entropy with its provenance.

    Attributes:
      expr: :math:`H(\theta)` in the family's parameters, or ``None``.
      method: how it was obtained (``"unresolved"`` when it was not).
      detail: which term was missing, or what the method assumed.
    """

    expr: sp.Expr | None
    method: str
    detail: str = ""


def entropy(family: Family, seconds: float = 20.0) -> Entropy:
    r""":math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]` in closed form where found.

    Args:
      family: the family.
      seconds: time allowed to symbolic integration.
    """
    if (
        family.expfam is not None
        and family.cumulants is None
        and not family.is_finite  # an exact sum is simpler there
        and not family.support_depends_on_params
    ):
        return _expfam_entropy(family, seconds)
    # finite supports: the exact sum; otherwise moments, then integration
    res = expect(family, [-family.log_density], seconds)
    if res.values is None:
        return Entropy(None, UNRESOLVED, res.detail)
    return Entropy(tidy(res.values[0]), res.method, res.detail)


def _expfam_entropy(family: Family, seconds: float) -> Entropy:
    r""":math:`A - \eta\cdot\nabla A - \mathbb E[\log h]` at :math:`\eta(\theta)`."""
    ef = family.expfam
    assert ef is not None
    eta = dict(zip(ef.nat, ef.eta, strict=True))
    closed = _at_natural(ef.A, eta) - sp.Add(
        *[eta[n] * _at_natural(sp.diff(ef.A, n), eta) for n in ef.nat]
    )
    log_h = sp.sympify(ef.log_h)
    if not log_h.has(*family.variables):
        return Entropy(tidy(closed - log_h), EXPFAM_ENTROPY)
    res = expect(family, [log_h], seconds)
    if res.values is None:
        return Entropy(
            None,
            UNRESOLVED,
            f"A - eta . grad A is closed form, but E[log h(x)] = "
            f"E[{sp.sstr(log_h)}] has none ({res.detail or res.method}): "
            "the entropy is numeric",
        )
    return Entropy(
        tidy(closed - res.values[0]),
        EXPFAM_ENTROPY,
        f"E[log h(x)] by {res.method}",
    )
