r"""Moments of polynomials from a cumulant function.

.. math:: \mathbb E\Big[\prod_j a_j^{\alpha_j}\Big] = e^{-K}\,\partial^\alpha e^{K}\Big|_{t},
   \qquad Q_{\alpha+e_j} = \partial_j Q_\alpha + (\partial_j K)\,Q_\alpha

for a :class:`~symfisher.families.family.Cumulants` (or an exponential family's
log-partition in its natural parameters). The derivation uses it for
exponential-family moments, the state distributions of policies for
:math:`\mathbb E_s[f(s)]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp


class NotPolynomial(Exception):
    """An expression is not a polynomial in the atoms (with atom-free coefficients)."""


def polynomial_moments(
    atoms: Sequence[sp.Expr],
    t: Sequence[sp.Symbol],
    K: sp.Expr,
    at: dict[sp.Symbol, sp.Expr],
    variables: set[sp.Symbol],
    exprs: Sequence[sp.Expr],
) -> list[sp.Expr]:
    r""":math:`\mathbb E[f]` of polynomials :math:`f` in ``atoms`` from a cumulant function.

    :math:`Q_\alpha = e^{-K}\partial^\alpha e^{K}`,
    :math:`Q_{\alpha+e_j} = \partial_j Q_\alpha + (\partial_j K)\,Q_\alpha`, evaluated by ``at``.

    Raises:
      NotPolynomial: when some ``f`` is not a polynomial in ``atoms`` (with
        coefficients free of ``variables``).
    """
    Q: dict[tuple[int, ...], sp.Expr] = {(0,) * len(atoms): sp.Integer(1)}
    dK = {n: sp.diff(K, n) for n in t}

    def moment(alpha: tuple[int, ...]) -> sp.Expr:
        if alpha in Q:
            return Q[alpha]
        j = next(i for i, a in enumerate(alpha) if a)
        prev = tuple(a - (i == j) for i, a in enumerate(alpha))
        q = moment(prev)
        n = t[j]
        Q[alpha] = sp.expand(sp.diff(q, n) + dK[n] * q)
        return Q[alpha]

    out = []
    for f in exprs:
        g = polynomial_form(f)
        try:
            poly = sp.Poly(g, *atoms)
        except sp.PolynomialError as e:
            raise NotPolynomial(f"{f} is not a polynomial in {atoms}") from e
        total = sp.Integer(0)
        for alpha, coeff in poly.terms():
            if coeff.free_symbols & variables:
                raise NotPolynomial(f"{f} is not a polynomial in {atoms}")
            total += coeff * moment(alpha)
        out.append(at_natural(total, at))
    return out


def polynomial_form(f: sp.Expr) -> sp.Expr:
    """``f`` expanded (logs and trig too) so that its polynomial structure shows."""
    g = f
    if g.has(sp.sin, sp.cos):
        g = sp.expand_trig(g)
    return sp.expand(sp.expand_log(g))


def at_natural(expr: sp.Expr, at_eta: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
    r"""``expr`` at the natural parameters ``at_eta`` (:math:`\eta(\theta)`), tidied."""
    out = expr.subs(at_eta)
    if out.has(sp.sin, sp.cos):
        # sqrt(k^2 cos^2 + k^2 sin^2) -> k, as in the von Mises family.
        out = out.replace(
            lambda e: e.is_Pow and e.exp == sp.Rational(1, 2),
            lambda e: sp.sqrt(sp.trigsimp(sp.factor(e.base))),
        )
    return out
