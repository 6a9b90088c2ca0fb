r"""Von Mises on the circle: density :math:`e^{\kappa \cos(x - \mu)} / (2\pi I_0(\kappa))`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.domains import DOMAINS, positive, real
from symfisher.families.family import ExpFamily, Family
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 14


_VM_ACCEPT_RATE = 0.65  # a lower bound on Best & Fisher's acceptance, any kappa


def build() -> Family:
    r"""Von Mises on the circle.

    .. math:: \log p = \kappa\cos(x-\mu) - \log(2\pi I_0(\kappa)),
       \quad \eta = \kappa(\cos\mu, \sin\mu),\ T = (\cos x, \sin x)
    """
    mu, kappa, x = real("mu"), positive("kappa"), real("x")
    n1, n2 = real("n_1"), real("n_2")
    return Family(
        name="von_mises",
        params=(mu, kappa),
        domains=(DOMAINS["real"], DOMAINS["positive"]),
        variables=(x,),
        log_density=kappa * sp.cos(x - mu) - sp.log(2 * sp.pi * sp.besseli(0, kappa)),
        supports=(sp.Interval(-sp.pi, sp.pi),),
        sampler=lazy_sampler("von_mises"),
        expfam=ExpFamily(
            eta=(kappa * sp.cos(mu), kappa * sp.sin(mu)),
            T=(sp.cos(x), sp.sin(x)),
            A=sp.log(2 * sp.pi * sp.besseli(0, sp.sqrt(n1**2 + n2**2))),
            nat=(n1, n2),
            log_h=0,
        ),
        description="von Mises(mu, kappa)",
    )


def sampler() -> Sampler:
    r"""Von Mises: ``theta = (mu, kappa)``, :math:`\kappa \ge 0`; angles in (-π, π].

    Density :math:`e^{\kappa \cos(x - \mu)} / (2\pi I_0(\kappa))`.

    Best & Fisher (1979) rejection sampler, rewritten to avoid cancellation so it
    is accurate in float32 and float64 for :math:`\kappa` from 0 to beyond
    :math:`10^3`. With :math:`r = 1 + \sqrt{1 + 4\kappa^2}`,
    :math:`\rho = 2\kappa / (r + \sqrt{2r})` and :math:`s = (1+\rho^2)/(2\rho)`,
    a proposal :math:`u \sim \mathcal{U}(-1, 1)`, :math:`z = \cos \pi u` gives
    :math:`w = (1 + s z)/(s + z) = \cos y` and :math:`y_r = \kappa (s - w)`; it is
    accepted if :math:`y_r(2 - y_r) \ge v` or :math:`\log(y_r / v) + 1 \ge y_r`,
    :math:`v \sim \mathcal{U}[0, 1)`. We use the equivalent stable forms

    .. math::
        y = 2 \arctan\!\Big(\tfrac{1-\rho}{1+\rho} \tan\tfrac{\pi u}{2}\Big), \qquad
        y_r = \frac{r + \sqrt{2r}}{4}\,
              \frac{(1-\rho^2)^2}{(1-\rho)^2 + 4\rho\cos^2(\pi u/2)},

    with :math:`1-\rho = (1 + (\sqrt{1+4\kappa^2}+2\kappa)^{-1} + \sqrt{2r})
    / (r + \sqrt{2r})`. At :math:`\kappa = 0` this reduces to the uniform law.
    The draws are the first accepted of a stream of proposals
    (:func:`symfisher.families.rejection.first_accepted`; a proposal is accepted
    with probability :math:`\gtrsim 0.65` for every :math:`\kappa`, so one round
    of about :math:`1.55\,n` proposals suffices). The result is :math:`\mu + y`
    wrapped to :math:`(-\pi, \pi]`.
    """
    import math

    import jax
    import jax.numpy as jnp

    from symfisher.families.rejection import first_accepted
    from symfisher.families.sampling import _named, _prepare

    def wrap_angle(x: jax.Array) -> jax.Array:
        r"""Wrap angles to :math:`(-\pi, \pi]`."""
        pi = jnp.asarray(math.pi, x.dtype)
        w = pi - jnp.mod(pi - x, 2 * pi)
        return jnp.where(w <= -pi, w + 2 * pi, w)

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        dtype = theta.dtype
        mu, kappa = theta[0], theta[1]

        sq = jnp.hypot(1.0, 2.0 * kappa)  # sqrt(1 + 4 kappa^2), no overflow
        r = 1.0 + sq
        sqrt_2r = jnp.sqrt(2.0 * r)
        denom = r + sqrt_2r
        rho = 2.0 * kappa / denom
        one_m_rho = (1.0 + 1.0 / (sq + 2.0 * kappa) + sqrt_2r) / denom
        one_p_rho = 1.0 + rho
        q = one_m_rho / one_p_rho
        yr_scale = 0.25 * denom * (one_m_rho * one_p_rho) ** 2

        def propose(
            k: jax.Array, shape: tuple[int, ...]
        ) -> tuple[jax.Array, jax.Array]:
            k_u, k_v = jax.random.split(k)
            u = jax.random.uniform(k_u, shape, dtype=dtype, minval=-1.0, maxval=1.0)
            v = jax.random.uniform(k_v, shape, dtype=dtype)
            half = 0.5 * jnp.pi * u
            y = 2.0 * jnp.arctan(q * jnp.tan(half))
            yr = yr_scale / (one_m_rho**2 + 4.0 * rho * jnp.cos(half) ** 2)
            accept = (yr * (2.0 - yr) >= v) | (jnp.log(yr / v) + 1.0 >= yr)
            return y, accept

        n = math.prod(shape)
        y = first_accepted(
            key, lambda k, m: propose(k, (m,)), n, _VM_ACCEPT_RATE, jnp.zeros((), dtype)
        )
        return wrap_angle(mu + y.reshape(shape))

    return _named(sample, "von_mises", "Von Mises sampler; theta = (mu, kappa).")
