r"""Poisson in its rate :math:`\lambda`: :math:`P(x = k) = \lambda^k e^{-\lambda} / k!`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 9


def build() -> Family:
    r""":math:`\log p = x\log\lambda - \lambda - \log x!`."""
    lam = positive("lam")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    n = real("n_1")
    return Family(
        name="poisson",
        params=(lam,),
        domains=(DOMAINS["positive"],),
        variables=(x,),
        log_density=x * sp.log(lam) - lam - sp.loggamma(x + 1),
        supports=(SUPPORTS["nonnegative_integers"],),
        sampler=lazy_sampler("poisson"),
        expfam=ExpFamily(
            eta=(sp.log(lam),),
            T=(x,),
            A=sp.exp(n),
            nat=(n,),
            log_h=-sp.loggamma(x + 1),
        ),
        description="Poisson(lam), rate parameter",
    )


def sampler() -> Sampler:
    r"""Poisson with rate: ``theta = (lam,)``, :math:`\lambda > 0`.

    :math:`P(x = k) = \lambda^k e^{-\lambda} / k!`. Returns integer-valued floats.
    """
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        x = jax.random.poisson(key, theta[0], shape)
        return x.astype(theta.dtype)

    return _named(sample, "poisson", "Poisson sampler; theta = (lam,).")
