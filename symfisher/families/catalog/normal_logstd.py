r"""Normal in mean and log standard deviation, :math:`\mathcal N(\mu, e^{2\omega})`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._gaussian import LOG_2PI, _normal_expfam
from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 6


def build() -> Family:
    r""":math:`\mathcal N(\mu, e^{2\omega})` in :math:`(\mu, \omega = \log\sigma)`."""
    mu, omega, x = real("mu"), real("omega"), real("x")
    return Family(
        name="normal_logstd",
        params=(mu, omega),
        domains=(DOMAINS["real"], DOMAINS["real"]),
        variables=(x,),
        log_density=-((x - mu) ** 2) * sp.exp(-2 * omega) / 2 - omega - LOG_2PI / 2,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal_logstd"),
        expfam=_normal_expfam(x, mu, sp.exp(2 * omega)),
        description="Normal in (mu, log sigma)",
    )


def sampler() -> Sampler:
    r"""Normal with mean and log standard deviation: ``theta = (mu, omega)``.

    :math:`x = \mu + e^{\omega} z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        z = jax.random.normal(key, shape, dtype=theta.dtype)
        return theta[0] + jnp.exp(theta[1]) * z

    return _named(sample, "normal_logstd", "Normal sampler; theta = (mu, omega).")
