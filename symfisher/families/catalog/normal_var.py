r"""Normal in mean and variance, :math:`\mathcal N(\mu, v)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._gaussian import LOG_2PI, _normal_expfam
from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 5


def build() -> Family:
    r""":math:`\mathcal N(\mu, v)` in :math:`(\mu, v)`, :math:`v = \sigma^2`."""
    mu, v, x = real("mu"), positive("v"), real("x")
    return Family(
        name="normal_var",
        params=(mu, v),
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=-((x - mu) ** 2) / (2 * v) - sp.log(v) / 2 - LOG_2PI / 2,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal_var"),
        expfam=_normal_expfam(x, mu, v),
        description="Normal in (mu, variance)",
    )


def sampler() -> Sampler:
    r"""Normal with mean and variance: ``theta = (mu, v)``.

    :math:`x = \mu + \sqrt{v}\, z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        z = jax.random.normal(key, shape, dtype=theta.dtype)
        return theta[0] + jnp.sqrt(theta[1]) * z

    return _named(sample, "normal_var", "Normal sampler; theta = (mu, v).")
