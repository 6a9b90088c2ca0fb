r"""Tanh-squashed Gaussian: :math:`x = \tanh u`, :math:`u \sim \mathcal N(\mu, \sigma^2)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._gaussian import _normal_logpdf
from symfisher.families.domains import DOMAINS, positive, real
from symfisher.families.family import Family, Latent
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 18


def build() -> Family:
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
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=_normal_logpdf(sp.atanh(x), mu, sigma) - sp.log(1 - x**2),
        supports=(sp.Interval.open(-1, 1),),
        sampler=lazy_sampler("tanh_gaussian"),
        latent=Latent(u=u, g=sp.tanh(u), support=sp.Interval(-sp.oo, sp.oo)),
        description="tanh-squashed Gaussian in (mu, sigma)",
    )


def sampler() -> Sampler:
    r"""Tanh-squashed Gaussian: ``theta = (mu, sigma)``.

    :math:`x = \tanh(u)`, :math:`u = \mu + \sigma z`, :math:`z \sim \mathcal{N}(0,1)`.
    Mathematically :math:`x \in (-1, 1)`, but for large :math:`|u|` the result
    rounds to exactly :math:`\pm 1` in floating point (already for
    :math:`|u| \gtrsim 9` in float32, :math:`\gtrsim 19` in float64); it is *not*
    clipped, so downstream log-densities must guard against that.
    """
    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        z = jax.random.normal(key, shape, dtype=theta.dtype)
        return jnp.tanh(theta[0] + theta[1] * z)

    return _named(
        sample, "tanh_gaussian", "Tanh-Gaussian sampler; theta = (mu, sigma)."
    )
