r"""Gamma in shape and rate: density :math:`b^a x^{a-1} e^{-b x} / \Gamma(a)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 12


def build() -> Family:
    r"""Gamma in shape and rate.

    .. math:: \log p = a\log b - \log\Gamma(a) + (a-1)\log x - b x
    """
    a, b, x = positive("a"), positive("b"), positive("x")
    n1, n2 = sp.Symbol("n_1", real=True), sp.Symbol("n_2", negative=True)
    return Family(
        name="gamma",
        params=(a, b),
        domains=(DOMAINS["positive"], DOMAINS["positive"]),
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


def sampler() -> Sampler:
    r"""Gamma with shape and rate: ``theta = (a, b)``.

    Density :math:`b^a x^{a-1} e^{-b x} / \Gamma(a)`; :math:`x = G / b` with
    :math:`G \sim \operatorname{Gamma}(a, 1)` drawn by
    :func:`symfisher.families.gamma_draws.log_gamma_draws`.
    """
    import jax
    import jax.numpy as jnp

    from symfisher.families.gamma_draws import log_gamma_draws
    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        log_g = log_gamma_draws(key, theta[0], shape, theta.dtype)
        return jnp.exp(log_g) / theta[1]

    return _named(sample, "gamma", "Gamma sampler; theta = (a, b).")
