r"""Diagonal Gaussian on :math:`\mathbb R^d` in means and log standard deviations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._gaussian import LOG_2PI, _normal_expfam
from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import ExpFamily, Family, check_size
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 7


def build(d: int = 2) -> Family:
    r"""Diagonal Gaussian in :math:`(\mu_1..\mu_d, \omega_1..\omega_d)`, :math:`\sigma_i = e^{\omega_i}`.

    .. math:: \log p = \sum_i -\tfrac12 (x_i-\mu_i)^2 e^{-2\omega_i} - \omega_i - \tfrac12\log 2\pi
    """
    check_size("diag_gaussian", "d", d, 1)
    mus = [real(f"mu_{i}") for i in range(1, d + 1)]
    omegas = [real(f"omega_{i}") for i in range(1, d + 1)]
    xs = [real(f"x_{i}") for i in range(1, d + 1)]
    logp = sp.Add(
        *[
            -((x - m) ** 2) * sp.exp(-2 * w) / 2 - w - LOG_2PI / 2
            for x, m, w in zip(xs, mus, omegas, strict=True)
        ]
    )
    parts = [
        _normal_expfam(x, m, sp.exp(2 * w), suffix=f"_{i}")
        for i, (x, m, w) in enumerate(zip(xs, mus, omegas, strict=True), 1)
    ]
    expfam = ExpFamily(
        eta=tuple(e for p in parts for e in p.eta),
        T=tuple(t for p in parts for t in p.T),
        A=sp.Add(*[p.A for p in parts]),
        nat=tuple(n for p in parts for n in p.nat),
        log_h=-d * LOG_2PI / 2,
        atoms=tuple(2 * i for i in range(d)),
    )
    return Family(
        name="diag_gaussian",
        params=(*mus, *omegas),
        domains=tuple(DOMAINS["real"] for _ in range(2 * d)),
        variables=tuple(xs),
        log_density=logp,
        supports=tuple(SUPPORTS["reals"] for _ in xs),
        sampler=lazy_sampler("diag_gaussian", d=d),
        expfam=expfam,
        size=(("d", d),),
        description=f"Diagonal Gaussian(d={d}) in (mu, log sigma)",
    )


def sampler(d: int = 2) -> Sampler:
    r"""Diagonal Gaussian on :math:`\mathbb{R}^d` with log standard deviations.

    ``theta = (mu_1, ..., mu_d, omega_1, ..., omega_d)``;
    :math:`x_i = \mu_i + e^{\omega_i} z_i`, :math:`z \sim \mathcal{N}(0, I_d)`.

    Args:
        d: Dimension, ``d >= 1``.

    Returns:
        A sampler with ``event_shape == (d,)``.
    """
    if int(d) < 1:
        raise ValueError(f"diag_gaussian needs d >= 1, got d={d}")
    d = int(d)

    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        mu, omega = theta[:d], theta[d : 2 * d]
        z = jax.random.normal(key, (*shape, d), dtype=theta.dtype)
        return mu + jnp.exp(omega) * z

    return _named(
        sample,
        f"diag_gaussian_d{d}",
        f"Diagonal Gaussian sampler, d={d}; theta = (mu, omega).",
    )
