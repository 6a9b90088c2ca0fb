r"""Bernoulli in its logit: :math:`P(x = 1) = \sigma(\eta) = 1 / (1 + e^{-\eta})`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 1


def build() -> Family:
    r""":math:`\log p = x\eta - \log(1 + e^\eta)`, :math:`x\in\{0,1\}`."""
    eta = real("eta")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    return Family(
        name="bernoulli_logit",
        params=(eta,),
        domains=(DOMAINS["real"],),
        variables=(x,),
        log_density=x * eta - sp.log(1 + sp.exp(eta)),
        supports=(SUPPORTS["binary"],),
        sampler=lazy_sampler("bernoulli_logit"),
        description="Bernoulli with logit eta, p = sigmoid(eta)",
    )


def sampler() -> Sampler:
    r"""Bernoulli with logit parameter: ``theta = (eta,)``.

    :math:`P(x = 1) = \sigma(\eta) = 1 / (1 + e^{-\eta})`. Sampled as
    :math:`x = \mathbb{1}[L < \eta]` with :math:`L` standard logistic, which is exact
    in the tails (no rounding of :math:`\sigma(\eta)`). Returns floats in
    :math:`\{0, 1\}`.
    """
    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        noise = jax.random.logistic(key, shape, dtype=theta.dtype)
        return (noise < theta[0]).astype(theta.dtype)

    return _named(sample, "bernoulli_logit", "Bernoulli sampler; theta = (eta,).")
