r"""Location-scale Student t with fixed degrees of freedom :math:`\nu`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import Family, check_size
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 16


def build(nu: int = 4) -> Family:
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
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=const
        - sp.log(sigma)
        - (n + 1) / 2 * sp.log(1 + (x - mu) ** 2 / (n * sigma**2)),
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("student_t", nu=nu),
        size=(("nu", nu),),
        description=f"Student-t(nu={nu}) in (mu, sigma)",
    )


def sampler(nu: float = 4) -> Sampler:
    r"""Location-scale Student t with fixed degrees of freedom.

    ``theta = (mu, sigma)``; :math:`x = \mu + \sigma t`, :math:`t \sim t_\nu`.

    Args:
        nu: Degrees of freedom, fixed at construction (``nu > 0``; the sampler,
            unlike the family, takes non-integer values).

    Returns:
        The sampler.
    """
    if not float(nu) > 0:
        raise ValueError(f"student_t needs nu > 0, got nu={nu}")
    nu = float(nu)

    import math

    import jax
    import jax.numpy as jnp

    from symfisher.families.gamma_draws import log_gamma_draws
    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        # t = z / sqrt(chi2_nu / nu), chi2_nu = 2 G, G ~ Gamma(nu / 2, 1)
        k_z, k_g = jax.random.split(key)
        z = jax.random.normal(k_z, shape, theta.dtype)
        log_g = log_gamma_draws(k_g, nu / 2, shape, theta.dtype)
        t = z * jnp.exp(0.5 * (math.log(nu / 2) - log_g))
        return theta[0] + theta[1] * t

    return _named(
        sample,
        f"student_t_nu{nu:g}",
        f"Student t sampler with nu={nu:g}; theta = (mu, sigma).",
    )
