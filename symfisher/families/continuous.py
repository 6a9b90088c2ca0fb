r"""Continuous catalog families other than the Gaussians."""

from __future__ import annotations

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import ExpFamily, Family, check_size
from symfisher.families.lazy import lazy_sampler

REAL = DOMAINS["real"]
POS = DOMAINS["positive"]


def exponential() -> Family:
    r""":math:`\log p = \log\lambda - \lambda x`, :math:`x > 0`."""
    lam, x, n = positive("lam"), positive("x"), sp.Symbol("n_1", negative=True)
    return Family(
        name="exponential",
        params=(lam,),
        domains=(POS,),
        variables=(x,),
        log_density=sp.log(lam) - lam * x,
        supports=(SUPPORTS["positive_reals"],),
        sampler=lazy_sampler("exponential"),
        expfam=ExpFamily(eta=(-lam,), T=(x,), A=-sp.log(-n), nat=(n,), log_h=0),
        description="Exponential(lam), rate parameter",
    )


def gamma() -> Family:
    r"""Gamma in shape and rate.

    .. math:: \log p = a\log b - \log\Gamma(a) + (a-1)\log x - b x
    """
    a, b, x = positive("a"), positive("b"), positive("x")
    n1, n2 = sp.Symbol("n_1", real=True), sp.Symbol("n_2", negative=True)
    return Family(
        name="gamma",
        params=(a, b),
        domains=(POS, POS),
        variables=(x,),
        log_density=a * sp.log(b) - sp.loggamma(a) + (a - 1) * sp.log(x) - b * x,
        supports=(SUPPORTS["positive_reals"],),
        sampler=lazy_sampler("gamma"),
        expfam=ExpFamily(
            eta=(a - 1, -b),
            T=(sp.log(x), x),
            A=sp.loggamma(n1 + 1) - (n1 + 1) * sp.log(-n2),
            nat=(n1, n2),
            log_h=0,
        ),
        description="Gamma(a, b), shape and rate",
    )


def beta() -> Family:
    r"""Beta(a, b).

    .. math:: \log p = (a-1)\log x + (b-1)\log(1-x) - \log B(a, b)
    """
    a, b = positive("a"), positive("b")
    x = positive("x")
    n1, n2 = sp.Symbol("n_1", real=True), sp.Symbol("n_2", real=True)
    lbeta = sp.loggamma(a) + sp.loggamma(b) - sp.loggamma(a + b)
    return Family(
        name="beta",
        params=(a, b),
        domains=(POS, POS),
        variables=(x,),
        log_density=(a - 1) * sp.log(x) + (b - 1) * sp.log(1 - x) - lbeta,
        supports=(SUPPORTS["unit_interval"],),
        sampler=lazy_sampler("beta"),
        expfam=ExpFamily(
            eta=(a - 1, b - 1),
            T=(sp.log(x), sp.log(1 - x)),
            A=sp.loggamma(n1 + 1) + sp.loggamma(n2 + 1) - sp.loggamma(n1 + n2 + 2),
            nat=(n1, n2),
            log_h=0,
        ),
        description="Beta(a, b)",
    )


def von_mises() -> Family:
    r"""Von Mises on the circle.

    .. math:: \log p = \kappa\cos(x-\mu) - \log(2\pi I_0(\kappa)),
       \quad \eta = \kappa(\cos\mu, \sin\mu),\ T = (\cos x, \sin x)
    """
    mu, kappa, x = real("mu"), positive("kappa"), real("x")
    n1, n2 = real("n_1"), real("n_2")
    return Family(
        name="von_mises",
        params=(mu, kappa),
        domains=(REAL, POS),
        variables=(x,),
        log_density=kappa * sp.cos(x - mu) - sp.log(2 * sp.pi * sp.besseli(0, kappa)),
        supports=(sp.Interval(-sp.pi, sp.pi),),
        sampler=lazy_sampler("von_mises"),
        expfam=ExpFamily(
            eta=(kappa * sp.cos(mu), kappa * sp.sin(mu)),
            T=(sp.cos(x), sp.sin(x)),
            A=sp.log(2 * sp.pi * sp.besseli(0, sp.sqrt(n1**2 + n2**2))),
            nat=(n1, n2),
            log_h=0,
        ),
        description="von Mises(mu, kappa)",
    )


def laplace() -> Family:
    r""":math:`\log p = -\log(2b) - |x-\mu|/b`."""
    mu, b, x = real("mu"), positive("b"), real("x")
    return Family(
        name="laplace",
        params=(mu, b),
        domains=(REAL, POS),
        variables=(x,),
        log_density=-sp.log(2 * b) - sp.Abs(x - mu) / b,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("laplace"),
        description="Laplace(mu, b), location and scale",
    )


def student_t(nu: int = 4) -> Family:
    r"""Student-t with fixed degrees of freedom :math:`\nu`, location and scale.

    .. math:: \log p = \log\frac{\Gamma(\frac{\nu+1}2)}{\Gamma(\frac\nu2)\sqrt{\nu\pi}\,\sigma}
       - \frac{\nu+1}{2}\log\Big(1 + \frac{(x-\mu)^2}{\nu\sigma^2}\Big)
    """
    check_size("student_t", "nu", nu, 1)
    mu, sigma, x = real("mu"), positive("sigma"), real("x")
    n = sp.Integer(nu)
    const = sp.loggamma((n + 1) / 2) - sp.loggamma(n / 2) - sp.log(n * sp.pi) / 2
    return Family(
        name="student_t",
        params=(mu, sigma),
        domains=(REAL, POS),
        variables=(x,),
        log_density=const
        - sp.log(sigma)
        - (n + 1) / 2 * sp.log(1 + (x - mu) ** 2 / (n * sigma**2)),
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("student_t", nu=nu),
        size=(("nu", nu),),
        description=f"Student-t(nu={nu}) in (mu, sigma)",
    )


def uniform() -> Family:
    r"""Uniform(0, θ): :math:`\log p = -\log\theta` on :math:`(0, \theta)`.

    Non-regular on purpose: the support depends on :math:`\theta`.
    """
    theta, x = positive("theta"), positive("x")
    return Family(
        name="uniform",
        params=(theta,),
        domains=(POS,),
        variables=(x,),
        log_density=-sp.log(theta),
        supports=(sp.Interval.open(0, theta),),
        sampler=lazy_sampler("uniform"),
        description="Uniform(0, theta): non-regular (support depends on theta)",
    )
