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
from symfisher.derive.simplify import tidy, tidy_matrix
from symfisher.errors import SymbolicTimeout
from symfisher.families.family import Family
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited

ROUTES = ("score_covariance", "neg_expected_hessian", "kl_hessian")


@dataclass(frozen=True)
class Route:
    """One route's Fisher matrix (or ``None``) and how it was obtained."""

    name: str
    matrix: sp.Matrix | None
    method: str
    detail: str
    seconds: float


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
        return Route(
            ROUTES[2],
            None,
            divergence.method,
            "no closed-form KL",
            time.perf_counter() - t0,
        )
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
