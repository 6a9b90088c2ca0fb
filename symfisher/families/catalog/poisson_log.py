r"""Poisson in its log-rate :math:`\eta`, :math:`\lambda = e^{\eta}`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 10


def build() -> Family:
    r""":math:`\log p = x\eta - e^\eta - \log x!`."""
    eta = real("eta")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    n = real("n_1")
    return Family(
        name="poisson_log",
        params=(eta,),
        domains=(DOMAINS["real"],),
        variables=(x,),
        log_density=x * eta - sp.exp(eta) - sp.loggamma(x + 1),
        supports=(SUPPORTS["nonnegative_integers"],),
        sampler=lazy_sampler("poisson_log"),
        expfam=ExpFamily(
            eta=(eta,), T=(x,), A=sp.exp(n), nat=(n,), log_h=-sp.loggamma(x + 1)
        ),
        description="Poisson with log-rate eta",
    )


def sampler() -> Sampler:
    r"""Poisson with log-rate: ``theta = (eta,)``, :math:`\lambda = e^{\eta}`.

    Returns integer-valued floats.
    """
    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        x = jax.random.poisson(key, jnp.exp(theta[0]), shape)
        return x.astype(theta.dtype)

    return _named(sample, "poisson_log", "Poisson sampler; theta = (eta,).")
