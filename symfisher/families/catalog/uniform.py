r"""Uniform(0, θ): non-regular on purpose, its support depends on :math:`\theta`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, positive
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 17


def build() -> Family:
    r"""Uniform(0, θ): :math:`\log p = -\log\theta` on :math:`(0, \theta)`.

    Non-regular on purpose: the support depends on :math:`\theta`.
    """
    theta, x = positive("theta"), positive("x")
    return Family(
        name="uniform",
        params=(theta,),
        domains=(DOMAINS["positive"],),
        variables=(x,),
        log_density=-sp.log(theta),
        supports=(sp.Interval.open(0, theta),),
        sampler=lazy_sampler("uniform"),
        description="Uniform(0, theta): non-regular (support depends on theta)",
    )


def sampler() -> Sampler:
    r"""Uniform on :math:`[0, \theta)`: ``theta = (theta,)``, :math:`\theta > 0`."""
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        return theta[0] * jax.random.uniform(key, shape, dtype=theta.dtype)

    return _named(sample, "uniform", "Uniform sampler; theta = (theta,).")
