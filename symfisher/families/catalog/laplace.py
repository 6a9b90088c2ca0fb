r"""Laplace in location and scale: density :math:`e^{-|x-\mu|/b} / (2b)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 15


def build() -> Family:
    r""":math:`\log p = -\log(2b) - |x-\mu|/b`."""
    mu, b, x = real("mu"), positive("b"), real("x")
    return Family(
        name="laplace",
        params=(mu, b),
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=-sp.log(2 * b) - sp.Abs(x - mu) / b,
        supports=(SUPPORTS["reals"],),
        sampler=lazy_sampler("laplace"),
        description="Laplace(mu, b), location and scale",
    )


def sampler() -> Sampler:
    r"""Laplace: ``theta = (mu, b)``; density :math:`e^{-|x-\mu|/b} / (2b)`."""
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        e = jax.random.laplace(key, shape, dtype=theta.dtype)
        return theta[0] + theta[1] * e

    return _named(sample, "laplace", "Laplace sampler; theta = (mu, b).")
