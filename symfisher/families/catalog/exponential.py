r"""Exponential in its rate: density :math:`\lambda e^{-\lambda x}`, :math:`x > 0`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 11


def build() -> Family:
    r""":math:`\log p = \log\lambda - \lambda x`, :math:`x > 0`."""
    lam, x, n = positive("lam"), positive("x"), sp.Symbol("n_1", negative=True)
    return Family(
        name="exponential",
        params=(lam,),
        domains=(DOMAINS["positive"],),
        variables=(x,),
        log_density=sp.log(lam) - lam * x,
        supports=(SUPPORTS["positive_reals"],),
        sampler=lazy_sampler("exponential"),
        expfam=ExpFamily(eta=(-lam,), T=(x,), A=-sp.log(-n), nat=(n,), log_h=0),
        description="Exponential(lam), rate parameter",
    )


def sampler() -> Sampler:
    r"""Exponential: ``theta = (lam,)``; density :math:`\lambda e^{-\lambda x}`.

    :math:`x = E / \lambda`, :math:`E \sim \operatorname{Exp}(1)`.
    """
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        e = jax.random.exponential(key, shape, dtype=theta.dtype)
        return e / theta[0]

    return _named(sample, "exponential", "Exponential sampler; theta = (lam,).")
