r"""Score, Hessian and the Fisher matrix by three independent routes.

.. math::
   F^{(1)} = \mathbb E[s s^\top], \qquad
   F^{(2)} = -\mathbb E[\nabla^2_\theta \log p_\theta], \qquad
   F^{(3)} = \nabla^2_{\theta'} \mathrm{KL}(p_\theta\|p_{\theta'})\big|_{\theta'=\theta}

No route is computed from another: (1) takes expectations of products of
first derivatives, (2) of second derivatives, (3) differentiates a closed-form
KL obtained without the score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sympy as sp

from symfisher.derive.expectation import expect
from symfisher.derive.kl import KL
from symfisher.derive.simplify import is_zero, tidy, tidy_matrix
from symfisher.errors import SymbolicTimeout
from symfisher.families.family import Family
from symfisher.families.normalizer import has_normalizer, mp_log_density
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited

ROUTES = ("score_covariance", "neg_expected_hessian", "kl_hessian")


@dataclass(frozen=True)
class Route:
    """One route's Fisher matrix (or ``None``) and how it was obtained.

    ``numeric`` holds ``(point, matrix)`` pairs where a route has no closed form
    but was evaluated numerically at the agreement points (route 3 without a
    closed-form KL).
    """

    name: str
    matrix: sp.Matrix | None
    method: str
    detail: str
    seconds: float
    numeric: tuple[tuple[dict[sp.Symbol, float], sp.Matrix], ...] | None = None


def score(family: Family) -> sp.Matrix:
    r"""Score :math:`s_i = \partial_{\theta_i} \log p_\theta(x)` as a column vector."""
    return sp.Matrix([sp.diff(family.log_density, p) for p in family.params])


def hessian(family: Family) -> sp.Matrix:
    r"""Hessian :math:`H_{ij} = \partial_{\theta_i}\partial_{\theta_j} \log p_\theta(x)`."""
    return sp.hessian(family.log_density, family.params)


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i, n)]


def _symmetric(n: int, values: list[sp.Expr]) -> sp.Matrix:
    M = sp.zeros(n, n)
    for (i, j), v in zip(_pairs(n), values, strict=True):
        M[i, j] = M[j, i] = v
    return M


def score_covariance(
    family: Family, s: sp.Matrix, seconds: float
) -> tuple[Route, sp.Matrix | None]:
    r"""Route 1, :math:`\mathbb E[s s^\top]`, and the check vector :math:`\mathbb E[s]`."""
    t0 = time.perf_counter()
    n = family.n_params
    exprs = [s[i] for i in range(n)] + [s[i] * s[j] for i, j in _pairs(n)]
    res = expect(family, exprs, seconds)
    if res.values is None:
        return Route(
            ROUTES[0], None, res.method, res.detail, time.perf_counter() - t0
        ), None
    mean = sp.Matrix([tidy(v) for v in res.values[:n]])
    F = tidy_matrix(_symmetric(n, list(res.values[n:])))
    return Route(ROUTES[0], F, res.method, res.detail, time.perf_counter() - t0), mean


def neg_expected_hessian(family: Family, H: sp.Matrix, seconds: float) -> Route:
    r"""Route 2, :math:`-\mathbb E[\nabla^2 \log p_\theta]`."""
    t0 = time.perf_counter()
    n = family.n_params
    res = expect(family, [-H[i, j] for i, j in _pairs(n)], seconds)
    M = None if res.values is None else tidy_matrix(_symmetric(n, list(res.values)))
    return Route(ROUTES[1], M, res.method, res.detail, time.perf_counter() - t0)


def kl_hessian(family: Family, divergence: KL, seconds: float = 20.0) -> Route:
    r"""Route 3, :math:`\nabla^2_{\theta'}\mathrm{KL}(p_\theta\|p_{\theta'})` at :math:`\theta' = \theta`."""
    t0 = time.perf_counter()
    if divergence.expr is None:
        numeric, why = kl_hessian_numeric(family, seconds)
        if numeric is not None:
            return Route(
                ROUTES[2],
                None,
                KL_QUADRATURE,
                f"no closed-form KL; {why}",
                time.perf_counter() - t0,
                numeric,
            )
        return Route(
            ROUTES[2],
            None,
            divergence.method,
            f"no closed-form KL; {why}" if why else "no closed-form KL",
            time.perf_counter() - t0,
        )
    if divergence.branches:
        return _branch_hessian(family, divergence, seconds, t0)
    back = dict(zip(divergence.primed, family.params, strict=True))
    n = family.n_params

    def hess() -> sp.Matrix:
        values = []
        for i, j in _pairs(n):
            d2 = sp.diff(divergence.expr, divergence.primed[i], divergence.primed[j])
            values.append(d2.subs(back))
        return _symmetric(n, values)

    try:
        key = fingerprint("kl_hessian", seconds, divergence.expr, divergence.primed)
        M = run_limited(hess, seconds, key=key)
    except SymbolicTimeout:
        return Route(
            ROUTES[2],
            None,
            "unresolved",
            f"differentiating the KL exceeded {seconds:g} s",
            time.perf_counter() - t0,
        )
    if M.has(sp.DiracDelta, sp.nan, sp.zoo):
        return Route(
            ROUTES[2],
            None,
            "Hessian of the closed-form KL",
            "the KL is not twice differentiable at theta' = theta in closed form",
            time.perf_counter() - t0,
        )
    return Route(
        ROUTES[2],
        tidy_matrix(M),
        f"Hessian of the closed-form KL ({divergence.method})",
        divergence.detail,
        time.perf_counter() - t0,
    )


def _branch_hessian(family: Family, divergence: KL, seconds: float, t0: float) -> Route:
    r"""Route 3 for a KL split on a sign (:math:`|\mu - \mu'|`, Laplace).

    Each branch is analytic on its side of :math:`\mu' = \mu`; the KL is twice
    differentiable at :math:`\theta' = \theta` when the branches' values,
    gradients and Hessians agree there (proved by ``simplify``), and the
    Hessian is then that common value.
    """
    primed = divergence.primed
    back = dict(zip(primed, family.params, strict=True))
    n = family.n_params

    def at_theta(expr: sp.Expr) -> tuple[sp.Expr, list[sp.Expr], sp.Matrix]:
        grad = [sp.diff(expr, q).subs(back) for q in primed]
        H = [sp.diff(expr, primed[i], primed[j]).subs(back) for i, j in _pairs(n)]
        return expr.subs(back), grad, _symmetric(n, H)

    exprs = [e for e, _ in divergence.branches]
    try:
        key = fingerprint("kl_hessian.branches", seconds, *exprs, primed)
        parts = run_limited(lambda: [at_theta(e) for e in exprs], seconds, key=key)
    except SymbolicTimeout:
        return Route(
            ROUTES[2],
            None,
            "unresolved",
            f"differentiating the KL's branches exceeded {seconds:g} s",
            time.perf_counter() - t0,
        )
    v0, g0, H0 = parts[0]
    for v, g, H in parts[1:]:
        gaps = [v - v0, *(a - b for a, b in zip(g, g0, strict=True)), *(H - H0)]
        if not all(is_zero(sp.expand(d)) is True for d in gaps):
            return Route(
                ROUTES[2],
                None,
                "Hessian of the closed-form KL",
                "the KL's branches do not agree to second order at theta' = theta",
                time.perf_counter() - t0,
            )
    conds = " and ".join(sp.sstr(c) for _, c in divergence.branches)
    return Route(
        ROUTES[2],
        tidy_matrix(H0),
        f"Hessian of the closed-form KL ({divergence.method})",
        f"{divergence.detail}; the branches {conds} have equal value, gradient "
        "and Hessian at theta' = theta (proved), so the KL is C^2 there",
        time.perf_counter() - t0,
    )


# -- route 3 without a closed-form KL ------------------------------------------------
KL_QUADRATURE = "Hessian of the quadrature KL (numeric, 50 digits)"
#: working digits of the KL quadrature, the finite-difference step 1e-KL_STEP,
#: and how many of the agreement points are used
KL_DPS, KL_STEP, KL_POINTS = 50, 12, 2


def kl_hessian_numeric(
    family: Family, seconds: float = 20.0
) -> tuple[tuple[tuple[dict[sp.Symbol, float], sp.Matrix], ...] | None, str]:
    r"""Route 3 by numbers: the Hessian of the quadrature KL at the agreement points.

    .. math:: \mathrm{KL}(\theta\|\theta') = \int p_\theta(x)
       \big(\log p_\theta(x) - \log p_{\theta'}(x)\big)\,dx

    by tanh–sinh at ``KL_DPS`` digits, differentiated in :math:`\theta'` at
    :math:`\theta' = \theta` by central differences with step
    :math:`h = 10^{-12}` (truncation :math:`O(h^2)`, rounding
    :math:`10^{-50}/h^2`: about 24 correct digits), at the random points of :func:`symfisher.derive.agreement.random_points`.
    Uses no score, no Hessian of :math:`\log p` and no closed form: it is
    independent of routes 1 and 2. Only for regular families with one
    continuous variable.

    Returns:
      ``((point, matrix), ...)`` or ``None``, and a sentence saying what was done.
    """
    from symfisher.derive.agreement import random_points

    if family.support_depends_on_params:
        return None, ""
    if len(family.variables) != 1 or family.is_discrete:
        return None, "the quadrature KL covers one continuous variable only"
    points = random_points(family, KL_POINTS)
    try:
        key = fingerprint("kl_hessian_numeric", seconds, family.definition_text())
        mats = run_limited(
            lambda: [_quadrature_kl_hessian(family, pt) for pt in points],
            seconds,
            key=key,
        )
    except SymbolicTimeout:
        return None, f"the quadrature KL's Hessian exceeded {seconds:g} s"
    out = tuple(zip(points, mats, strict=True))
    why = (
        f"Hessian of the {KL_DPS}-digit quadrature KL by central differences "
        f"(h = 1e-{KL_STEP}) at {len(out)} random points"
    )
    return out, why


def _quadrature_kl_hessian(family: Family, point: dict[sp.Symbol, float]) -> sp.Matrix:
    r"""Central second differences of the quadrature KL, one quadrature per entry.

    :math:`\partial_i\partial_j \mathrm{KL} \approx \sum_c w_c\,
    \mathrm{KL}(\theta\|\theta + h c) / h^2`; the weighted sum is taken inside
    the (linear) quadrature rule, so that the :math:`O(h^2)`-small combination
    is integrated once instead of cancelling between integrals.
    """
    import mpmath

    from symfisher.derive.numeric import _breakpoints

    (x,) = family.variables
    P = family.params
    n = len(P)
    if has_normalizer(family.log_density):  # Z by quadrature, once per theta
        lp = mp_log_density(family)
    else:
        lp = sp.lambdify([x, *P], family.log_density, modules="mpmath")
    with mpmath.workdps(KL_DPS):
        theta = [mpmath.mpf(point[p]) for p in P]
        h = mpmath.mpf(10) ** -KL_STEP
        pieces = _breakpoints(family.supports[0], point)

        def unit(i: int) -> list[int]:
            return [int(k == i) for k in range(n)]

        values = []
        for i, j in _pairs(n):
            if i == j:
                stencil = [(unit(i), 1), ([-c for c in unit(i)], 1)]
            else:
                pp = [a + b for a, b in zip(unit(i), unit(j), strict=True)]
                pm = [a - b for a, b in zip(unit(i), unit(j), strict=True)]
                stencil = [
                    (pp, mpmath.mpf(1) / 4),
                    (pm, -mpmath.mpf(1) / 4),
                    ([-c for c in pm], -mpmath.mpf(1) / 4),
                    ([-c for c in pp], mpmath.mpf(1) / 4),
                ]
            others = [
                ([t + c * h for t, c in zip(theta, shift, strict=True)], w)
                for shift, w in stencil
            ]

            def f(v: mpmath.mpf, others: list = others) -> mpmath.mpf:
                a = lp(v, *theta)
                combo = mpmath.fsum(w * (a - lp(v, *o)) for o, w in others)
                return mpmath.exp(a) * combo

            d2 = mpmath.quad(f, pieces) / h**2
            values.append(sp.Float(mpmath.nstr(d2, 40), 40))
        return _symmetric(n, values)
