r"""Bernoulli(p) in its probability: :math:`x \in \{0, 1\}`, :math:`P(x = 1) = p`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 0


def build() -> Family:
    r""":math:`\log p = x\log p + (1-x)\log(1-p)`, :math:`x\in\{0,1\}`."""
    p = sp.Symbol("p", positive=True)
    x = sp.Symbol("x", integer=True, nonnegative=True)
    return Family(
        name="bernoulli",
        params=(p,),
        domains=(DOMAINS["unit_interval"],),
        variables=(x,),
        log_density=x * sp.log(p) + (1 - x) * sp.log(1 - p),
        supports=(SUPPORTS["binary"],),
        sampler=lazy_sampler("bernoulli"),
        description="Bernoulli(p), probability parameter",
    )


def sampler() -> Sampler:
    r"""Bernoulli with success probability: ``theta = (p,)``, ``0 < p < 1``.

    :math:`x = \mathbb{1}[U < p]`, :math:`U \sim \mathcal{U}[0, 1)`, so
    :math:`P(x = 1) = p`. Returns floats in :math:`\{0, 1\}`.
    """
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        u = jax.random.uniform(key, shape, dtype=theta.dtype)
        return (u < theta[0]).astype(theta.dtype)

    return _named(sample, "bernoulli", "Bernoulli sampler; theta = (p,).")
