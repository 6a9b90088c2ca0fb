r"""Gaussian catalog families and the tanh-squashed Gaussian.

Univariate and diagonal Gaussians carry their exponential-family form with
:math:`T = (x, x^2)`; moments of :math:`x` come from :math:`A` along
:math:`\eta_1` alone. The full-covariance Gaussian is parameterised by a
Cholesky factor :math:`\Sigma = L L^\top` with log-diagonal.
"""

from __future__ import annotations

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import Cumulants, ExpFamily, Family, Latent, check_size
from symfisher.families.lazy import lazy_sampler

REAL = DOMAINS["real"]
POS = DOMAINS["positive"]
LOG_2PI = sp.log(2 * sp.pi)


def _normal_expfam(
    x: sp.Symbol, mu: sp.Expr, var: sp.Expr, suffix: str = ""
) -> ExpFamily:
    r""":math:`\eta = (\mu/\sigma^2, -1/(2\sigma^2))`, :math:`A = -\eta_1^2/(4\eta_2) - \tfrac12\log(-2\eta_2)`."""
    n1 = real(f"n_1{suffix}")
    n2 = sp.Symbol(f"n_2{suffix}", negative=True)
    return ExpFamily(
        eta=(mu / var, -1 / (2 * var)),
        T=(x, x**2),
        A=-(n1**2) / (4 * n2) - sp.log(-2 * n2) / 2,
        nat=(n1, n2),
        log_h=-LOG_2PI / 2,
        atoms=(0,),
    )


def _normal_logpdf(x: sp.Expr, mu: sp.Expr, sigma: sp.Expr) -> sp.Expr:
    return -((x - mu) ** 2) / (2 * sigma**2) - sp.log(sigma) - LOG_2PI / 2


def normal() -> Family:
    r""":math:`\mathcal N(\mu, \sigma^2)` in :math:`(\mu, \sigma)`."""
    mu, sigma, x = real("mu"), positive("sigma"), real("x")
    return Family(
        name="normal",
        params=(mu, sigma),
        domains=(REAL, POS),
        variables=(x,),
        log_density=_normal_logpdf(x, mu, sigma),
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal"),
        expfam=_normal_expfam(x, mu, sigma**2),
        description="Normal in (mu, sigma)",
    )


def normal_var() -> Family:
    r""":math:`\mathcal N(\mu, v)` in :math:`(\mu, v)`, :math:`v = \sigma^2`."""
    mu, v, x = real("mu"), positive("v"), real("x")
    return Family(
        name="normal_var",
        params=(mu, v),
        domains=(REAL, POS),
        variables=(x,),
        log_density=-((x - mu) ** 2) / (2 * v) - sp.log(v) / 2 - LOG_2PI / 2,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal_var"),
        expfam=_normal_expfam(x, mu, v),
        description="Normal in (mu, variance)",
    )


def normal_logstd() -> Family:
    r""":math:`\mathcal N(\mu, e^{2\omega})` in :math:`(\mu, \omega = \log\sigma)`."""
    mu, omega, x = real("mu"), real("omega"), real("x")
    return Family(
        name="normal_logstd",
        params=(mu, omega),
        domains=(REAL, REAL),
        variables=(x,),
        log_density=-((x - mu) ** 2) * sp.exp(-2 * omega) / 2 - omega - LOG_2PI / 2,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal_logstd"),
        expfam=_normal_expfam(x, mu, sp.exp(2 * omega)),
        description="Normal in (mu, log sigma)",
    )


def diag_gaussian(d: int = 2) -> Family:
    r"""Diagonal Gaussian in :math:`(\mu_1..\mu_d, \omega_1..\omega_d)`, :math:`\sigma_i = e^{\omega_i}`.

    .. math:: \log p = \sum_i -\tfrac12 (x_i-\mu_i)^2 e^{-2\omega_i} - \omega_i - \tfrac12\log 2\pi
    """
    check_size("diag_gaussian", "d", d, 1)
    mus = [real(f"mu_{i}") for i in range(1, d + 1)]
    omegas = [real(f"omega_{i}") for i in range(1, d + 1)]
    xs = [real(f"x_{i}") for i in range(1, d + 1)]
    logp = sp.Add(
        *[
            -((x - m) ** 2) * sp.exp(-2 * w) / 2 - w - LOG_2PI / 2
            for x, m, w in zip(xs, mus, omegas, strict=True)
        ]
    )
    parts = [
        _normal_expfam(x, m, sp.exp(2 * w), suffix=f"_{i}")
        for i, (x, m, w) in enumerate(zip(xs, mus, omegas, strict=True), 1)
    ]
    expfam = ExpFamily(
        eta=tuple(e for p in parts for e in p.eta),
        T=tuple(t for p in parts for t in p.T),
        A=sp.Add(*[p.A for p in parts]),
        nat=tuple(n for p in parts for n in p.nat),
        log_h=-d * LOG_2PI / 2,
        atoms=tuple(2 * i for i in range(d)),
    )
    return Family(
        name="diag_gaussian",
        params=(*mus, *omegas),
        domains=tuple(REAL for _ in range(2 * d)),
        variables=tuple(xs),
        log_density=logp,
        supports=tuple(SUPPORTS["reals"] for _ in xs),
        sampler=lazy_sampler("diag_gaussian", d=d),
        expfam=expfam,
        size=(("d", d),),
        description=f"Diagonal Gaussian(d={d}) in (mu, log sigma)",
    )


def cholesky_params(d: int) -> tuple[list[sp.Symbol], sp.Matrix]:
    r"""Parameters of a lower-triangular :math:`L` with :math:`L_{ii} = e^{l_{ii}}`.

    Row by row: :math:`l_{11}, l_{21}, l_{22}, l_{31}, \dots`.
    """
    params: list[sp.Symbol] = []
    L = sp.zeros(d, d)
    for i in range(d):
        for j in range(i + 1):
            s = real(f"l_{i + 1}{j + 1}")
            params.append(s)
            L[i, j] = sp.exp(s) if i == j else s
    return params, L


def full_gaussian(d: int = 2) -> Family:
    r"""Full-covariance Gaussian, :math:`\Sigma = L L^\top`, :math:`L_{ii} = e^{l_{ii}}`.

    .. math:: \log p = -\tfrac12 \|L^{-1}(x-\mu)\|^2 - \sum_i l_{ii} - \tfrac d2 \log 2\pi

    Its exponential-family form uses :math:`T = (x, x_i x_j)_{i \le j}`.
    """
    check_size("full_gaussian", "d", d, 1)
    mus = [real(f"mu_{i}") for i in range(1, d + 1)]
    chol, L = cholesky_params(d)
    xs = [real(f"x_{i}") for i in range(1, d + 1)]
    z = _forward_substitute(L, sp.Matrix(xs) - sp.Matrix(mus))
    logp = (
        -sp.Add(*[zi**2 for zi in z]) / 2
        - sp.Add(*[chol[i * (i + 1) // 2 + i] for i in range(d)])
        - d * LOG_2PI / 2
    )
    return Family(
        name="full_gaussian",
        params=(*mus, *chol),
        domains=tuple(REAL for _ in range(d + len(chol))),
        variables=tuple(xs),
        log_density=logp,
        supports=tuple(SUPPORTS["reals"] for _ in xs),
        sampler=lazy_sampler("full_gaussian", d=d),
        expfam=_full_gaussian_expfam(xs, sp.Matrix(mus), L),
        cumulants=_gaussian_cumulants(xs, sp.Matrix(mus), L),
        size=(("d", d),),
        description=f"Full-covariance Gaussian(d={d}), Cholesky with log-diagonal",
    )


def _gaussian_cumulants(xs: list[sp.Symbol], mu: sp.Matrix, L: sp.Matrix) -> Cumulants:
    r""":math:`K(t) = t^\top\mu + \tfrac12 t^\top L L^\top t` for the atoms :math:`x_i`."""
    t = sp.Matrix([real(f"t_{i + 1}") for i in range(len(xs))])
    K = (t.T * mu)[0, 0] + sp.expand((t.T * L * L.T * t)[0, 0]) / 2
    return Cumulants(atoms=tuple(xs), t=tuple(t), K=K)


def _forward_substitute(L: sp.Matrix, b: sp.Matrix) -> list[sp.Expr]:
    r"""Solve :math:`L z = b` for lower-triangular :math:`L`."""
    z: list[sp.Expr] = []
    for i in range(L.rows):
        acc = b[i] - sp.Add(*[L[i, j] * z[j] for j in range(i)])
        z.append(sp.expand(acc / L[i, i]))
    return z


def _full_gaussian_expfam(
    xs: list[sp.Symbol], mu: sp.Matrix, L: sp.Matrix
) -> ExpFamily:
    r""":math:`\eta_1 = \Sigma^{-1}\mu`, :math:`\eta_{ij}` the coefficient of :math:`x_i x_j`.

    .. math:: A(\eta) = -\tfrac14 \eta_1^\top N^{-1} \eta_1 - \tfrac12 \log\det(-2N),
       \quad N_{ii} = \eta_{ii},\ N_{ij} = \eta_{ij}/2
    """
    d = len(xs)
    Linv = L.inv()  # triangular: cheap and exact
    prec = (Linv.T * Linv).applyfunc(sp.expand)
    eta1 = (prec * mu).applyfunc(sp.expand)
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    eta2 = [(-prec[i, j] / 2 if i == j else -prec[i, j]) for i, j in pairs]
    n1 = [real(f"n_{i + 1}") for i in range(d)]
    n2 = [real(f"n_{i + 1}{j + 1}") for i, j in pairs]
    N = sp.zeros(d, d)
    for (i, j), s in zip(pairs, n2, strict=True):
        N[i, j] = s if i == j else s / 2
        N[j, i] = N[i, j]
    n1v = sp.Matrix(n1)
    A = -(n1v.T * N.adjugate() * n1v)[0, 0] / (4 * N.det()) - sp.log((-2 * N).det()) / 2
    return ExpFamily(
        eta=(*eta1, *eta2),
        T=(*xs, *[xs[i] * xs[j] for i, j in pairs]),
        A=A,
        nat=(*n1, *n2),
        log_h=-d * LOG_2PI / 2,
        atoms=tuple(range(d)),
    )


def tanh_gaussian() -> Family:
    r"""Tanh-squashed Gaussian: :math:`x = \tanh u`, :math:`u \sim \mathcal N(\mu, \sigma^2)`.

    .. math:: \log p(x) = \log \mathcal N(\operatorname{artanh} x; \mu, \sigma) - \log(1 - x^2)

    The derivation integrates over :math:`u` (change of variable).
    """
    mu, sigma = real("mu"), positive("sigma")
    x = real("x")
    u = real("u")
    return Family(
        name="tanh_gaussian",
        params=(mu, sigma),
        domains=(REAL, POS),
        variables=(x,),
        log_density=_normal_logpdf(sp.atanh(x), mu, sigma) - sp.log(1 - x**2),
        supports=(sp.Interval.open(-1, 1),),
        sampler=lazy_sampler("tanh_gaussian"),
        latent=Latent(u=u, g=sp.tanh(u), support=sp.Interval(-sp.oo, sp.oo)),
        description="tanh-squashed Gaussian in (mu, sigma)",
    )
