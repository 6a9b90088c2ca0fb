r"""Beta(a, b) on the unit interval: density :math:`x^{a-1}(1-x)^{b-1} / B(a, b)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 13


def build() -> Family:
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
        domains=(DOMAINS["positive"], DOMAINS["positive"]),
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


def sampler() -> Sampler:
    r"""Beta: ``theta = (a, b)``; density :math:`x^{a-1}(1-x)^{b-1} / B(a, b)`.

    :math:`x = X / (X + Y) = \sigma(\log X - \log Y)` with independent
    :math:`X \sim \operatorname{Gamma}(a, 1)`, :math:`Y \sim \operatorname{Gamma}(b, 1)`
    drawn in log space by :func:`symfisher.families.gamma_draws.log_gamma_draws`
    (no underflow for small ``a``, ``b``).
    """
    import jax

    from symfisher.families.gamma_draws import log_gamma_draws
    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        k_a, k_b = jax.random.split(key)
        log_x = log_gamma_draws(k_a, theta[0], shape, theta.dtype)
        log_y = log_gamma_draws(k_b, theta[1], shape, theta.dtype)
        return jax.nn.sigmoid(log_x - log_y)

    return _named(sample, "beta", "Beta sampler; theta = (a, b).")
