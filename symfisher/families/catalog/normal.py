r"""Normal in mean and standard deviation, :math:`\mathcal N(\mu, \sigma^2)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from symfisher.families.catalog._gaussian import _normal_expfam, _normal_logpdf
from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 4


def build() -> Family:
    r""":math:`\mathcal N(\mu, \sigma^2)` in :math:`(\mu, \sigma)`."""
    mu, sigma, x = real("mu"), positive("sigma"), real("x")
    return Family(
        name="normal",
        params=(mu, sigma),
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=_normal_logpdf(x, mu, sigma),
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("normal"),
        expfam=_normal_expfam(x, mu, sigma**2),
        description="Normal in (mu, sigma)",
    )


def sampler() -> Sampler:
    r"""Normal with mean and standard deviation: ``theta = (mu, sigma)``.

    :math:`x = \mu + \sigma z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        z = jax.random.normal(key, shape, dtype=theta.dtype)
        return theta[0] + theta[1] * z

    return _named(sample, "normal", "Normal sampler; theta = (mu, sigma).")
