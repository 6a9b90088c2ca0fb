"""Numeric JAX samplers for the catalog of probability families.

These are the only hand-written numeric parts of the families; they are used by the
Monte Carlo verifier to check derived quantities (score, Fisher, KL) against data.

Every sampler has the signature ``sample(key, theta, shape=()) -> jax.Array``:

* ``key`` is a JAX PRNG key (typed ``jax.random.key`` or raw ``PRNGKey``);
* ``theta`` is a 1-D array holding a *single* parameter point, in the parameter
  order documented for each family (that order is the contract);
* ``shape`` is the sample (batch) shape; it must be static under ``jax.jit``.

The result has shape ``shape + event_shape`` where ``event_shape`` is ``()`` for
scalar families and ``(d,)`` for the ``d``-dimensional Gaussians. The result dtype
is always the floating dtype of ``theta`` (float32 in, float32 out); discrete
outcomes (Bernoulli, categorical, Poisson) are returned as integer-valued floats.

Size-generic samplers are produced by factories (``categorical_sampler(K)``,
``diag_gaussian_sampler(d)``, ...). :data:`SAMPLERS` maps each catalog name to a
factory that takes the size arguments as keywords (or none) and returns the sampler,
e.g. ``SAMPLERS["gamma"]()`` or ``SAMPLERS["categorical"](K=4)``.

This module deliberately depends on nothing else in :mod:`symfisher`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SAMPLERS",
    "Sampler",
    "bernoulli",
    "bernoulli_logit",
    "beta",
    "categorical_sampler",
    "categorical_softmax_sampler",
    "diag_gaussian_sampler",
    "exponential",
    "full_gaussian_sampler",
    "gamma",
    "laplace",
    "normal",
    "normal_logstd",
    "normal_var",
    "poisson",
    "poisson_log",
    "student_t_sampler",
    "tanh_gaussian",
    "uniform",
    "von_mises",
]


class Sampler(Protocol):
    """Signature shared by all samplers."""

    def __call__(
        self, key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        """Draw samples of shape ``shape + event_shape`` at parameter ``theta``."""
        ...


def _prepare(theta: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, tuple]:
    """Return ``theta`` as a floating 1-D array and ``shape`` as a tuple of ints."""
    theta = jnp.asarray(theta)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.result_type(float))
    return theta, tuple(int(s) for s in shape)


# ---------------------------------------------------------------------------------
# Discrete families
# ---------------------------------------------------------------------------------


def bernoulli(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Bernoulli with success probability: ``theta = (p,)``, ``0 < p < 1``.

    :math:`x = \mathbb{1}[U < p]`, :math:`U \sim \mathcal{U}[0, 1)`, so
    :math:`P(x = 1) = p`. Returns floats in :math:`\{0, 1\}`.
    """
    theta, shape = _prepare(theta, shape)
    u = jax.random.uniform(key, shape, dtype=theta.dtype)
    return (u < theta[0]).astype(theta.dtype)


def bernoulli_logit(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Bernoulli with logit parameter: ``theta = (eta,)``.

    :math:`P(x = 1) = \sigma(\eta) = 1 / (1 + e^{-\eta})`. Sampled as
    :math:`x = \mathbb{1}[L < \eta]` with :math:`L` standard logistic, which is exact
    in the tails (no rounding of :math:`\sigma(\eta)`). Returns floats in
    :math:`\{0, 1\}`.
    """
    theta, shape = _prepare(theta, shape)
    noise = jax.random.logistic(key, shape, dtype=theta.dtype)
    return (noise < theta[0]).astype(theta.dtype)


def categorical_sampler(K: int) -> Sampler:
    r"""Categorical on :math:`\{0, \dots, K-1\}` with ``K - 1`` free probabilities.

    ``theta = (p_0, ..., p_{K-2})`` with :math:`p_{K-1} = 1 - \sum_{k<K-1} p_k`
    (clipped at 0 against rounding). :math:`P(x = k) = p_k`.

    Args:
        K: Number of categories, ``K >= 2``.

    Returns:
        A sampler returning floats in :math:`\{0, \dots, K-1\}`.
    """
    if int(K) < 2:
        raise ValueError(f"categorical needs K >= 2, got K={K}")
    K = int(K)

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        p_last = jnp.maximum(1.0 - jnp.sum(theta), 0.0)
        probs = jnp.concatenate([theta, p_last[None]])
        x = jax.random.categorical(key, jnp.log(probs), axis=-1, shape=shape)
        return x.astype(theta.dtype)

    sample.__name__ = sample.__qualname__ = f"categorical_K{K}"
    sample.__doc__ = f"Categorical sampler with K={K}; theta = (p_0, ..., p_{K - 2})."
    return sample


def categorical_softmax_sampler(K: int) -> Sampler:
    r"""Categorical on :math:`\{0, \dots, K-1\}` with softmax logits.

    ``theta = (z_0, ..., z_{K-1})``, :math:`P(x = k) = e^{z_k} / \sum_j e^{z_j}`
    (sampled with the Gumbel-max trick).

    Args:
        K: Number of categories, ``K >= 2``.

    Returns:
        A sampler returning floats in :math:`\{0, \dots, K-1\}`.
    """
    if int(K) < 2:
        raise ValueError(f"categorical_softmax needs K >= 2, got K={K}")
    K = int(K)

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        x = jax.random.categorical(key, theta, axis=-1, shape=shape)
        return x.astype(theta.dtype)

    sample.__name__ = sample.__qualname__ = f"categorical_softmax_K{K}"
    sample.__doc__ = (
        f"Softmax categorical sampler with K={K}; theta = (z_0..z_{K - 1})."
    )
    return sample


def poisson(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Poisson with rate: ``theta = (lam,)``, :math:`\lambda > 0`.

    :math:`P(x = k) = \lambda^k e^{-\lambda} / k!`. Returns integer-valued floats.
    """
    theta, shape = _prepare(theta, shape)
    x = jax.random.poisson(key, theta[0], shape)
    return x.astype(theta.dtype)


def poisson_log(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Poisson with log-rate: ``theta = (eta,)``, :math:`\lambda = e^{\eta}`.

    Returns integer-valued floats.
    """
    theta, shape = _prepare(theta, shape)
    x = jax.random.poisson(key, jnp.exp(theta[0]), shape)
    return x.astype(theta.dtype)


# ---------------------------------------------------------------------------------
# Gaussian families
# ---------------------------------------------------------------------------------


def normal(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Normal with mean and standard deviation: ``theta = (mu, sigma)``.

    :math:`x = \mu + \sigma z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    theta, shape = _prepare(theta, shape)
    z = jax.random.normal(key, shape, dtype=theta.dtype)
    return theta[0] + theta[1] * z


def normal_var(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Normal with mean and variance: ``theta = (mu, v)``.

    :math:`x = \mu + \sqrt{v}\, z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    theta, shape = _prepare(theta, shape)
    z = jax.random.normal(key, shape, dtype=theta.dtype)
    return theta[0] + jnp.sqrt(theta[1]) * z


def normal_logstd(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Normal with mean and log standard deviation: ``theta = (mu, omega)``.

    :math:`x = \mu + e^{\omega} z`, :math:`z \sim \mathcal{N}(0, 1)`.
    """
    theta, shape = _prepare(theta, shape)
    z = jax.random.normal(key, shape, dtype=theta.dtype)
    return theta[0] + jnp.exp(theta[1]) * z


def diag_gaussian_sampler(d: int) -> Sampler:
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

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        mu, omega = theta[:d], theta[d : 2 * d]
        z = jax.random.normal(key, (*shape, d), dtype=theta.dtype)
        return mu + jnp.exp(omega) * z

    sample.__name__ = sample.__qualname__ = f"diag_gaussian_d{d}"
    sample.__doc__ = f"Diagonal Gaussian sampler, d={d}; theta = (mu, omega)."
    return sample


def full_gaussian_sampler(d: int) -> Sampler:
    r"""Full-covariance Gaussian on :math:`\mathbb{R}^d`, Cholesky parametrisation.

    ``theta = (mu_1, ..., mu_d, l_11, l_21, l_22, l_31, l_32, l_33, ...)``: the mean,
    then the lower-triangular Cholesky factor :math:`L` row by row (for
    :math:`i = 1..d`, :math:`j = 1..i`). Diagonal entries are given on the log scale,
    :math:`L_{ii} = e^{l_{ii}}`; off-diagonals as is, :math:`L_{ij} = l_{ij}`.
    :math:`x = \mu + L z`, :math:`z \sim \mathcal{N}(0, I_d)`, so
    :math:`\operatorname{Cov}(x) = L L^\top`. For ``d = 2`` the order is
    ``(mu_1, mu_2, l_11, l_21, l_22)``.

    Args:
        d: Dimension, ``d >= 1``.

    Returns:
        A sampler with ``event_shape == (d,)``; ``theta`` has ``d + d(d+1)/2``
        entries.
    """
    if int(d) < 1:
        raise ValueError(f"full_gaussian needs d >= 1, got d={d}")
    d = int(d)
    rows, cols = np.tril_indices(d)  # row-major: (0,0), (1,0), (1,1), (2,0), ...
    is_diag = rows == cols
    n_tril = d * (d + 1) // 2

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        mu, ell = theta[:d], theta[d : d + n_tril]
        ell = jnp.where(is_diag, jnp.exp(ell), ell)
        chol = jnp.zeros((d, d), dtype=theta.dtype).at[rows, cols].set(ell)
        z = jax.random.normal(key, (*shape, d), dtype=theta.dtype)
        return mu + z @ chol.T

    sample.__name__ = sample.__qualname__ = f"full_gaussian_d{d}"
    sample.__doc__ = f"Full Gaussian sampler, d={d}; theta = (mu, tril(L) row-major)."
    return sample


def tanh_gaussian(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Tanh-squashed Gaussian: ``theta = (mu, sigma)``.

    :math:`x = \tanh(u)`, :math:`u = \mu + \sigma z`, :math:`z \sim \mathcal{N}(0,1)`.
    Mathematically :math:`x \in (-1, 1)`, but for large :math:`|u|` the result
    rounds to exactly :math:`\pm 1` in floating point (already for
    :math:`|u| \gtrsim 9` in float32, :math:`\gtrsim 19` in float64); it is *not*
    clipped, so downstream log-densities must guard against that.
    """
    theta, shape = _prepare(theta, shape)
    z = jax.random.normal(key, shape, dtype=theta.dtype)
    return jnp.tanh(theta[0] + theta[1] * z)


# ---------------------------------------------------------------------------------
# Other continuous families
# ---------------------------------------------------------------------------------


def exponential(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
    r"""Exponential: ``theta = (lam,)``; density :math:`\lambda e^{-\lambda x}`.

    :math:`x = E / \lambda`, :math:`E \sim \operatorname{Exp}(1)`.
    """
    theta, shape = _prepare(theta, shape)
    e = jax.random.exponential(key, shape, dtype=theta.dtype)
    return e / theta[0]


def gamma(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Gamma with shape and rate: ``theta = (a, b)``.

    Density :math:`b^a x^{a-1} e^{-b x} / \Gamma(a)`; :math:`x = G / b` with
    :math:`G \sim \operatorname{Gamma}(a, 1)`.
    """
    theta, shape = _prepare(theta, shape)
    g = jax.random.gamma(key, theta[0], shape, dtype=theta.dtype)
    return g / theta[1]


def beta(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Beta: ``theta = (a, b)``; density :math:`x^{a-1}(1-x)^{b-1} / B(a, b)`."""
    theta, shape = _prepare(theta, shape)
    return jax.random.beta(key, theta[0], theta[1], shape, dtype=theta.dtype)


def laplace(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Laplace: ``theta = (mu, b)``; density :math:`e^{-|x-\mu|/b} / (2b)`."""
    theta, shape = _prepare(theta, shape)
    e = jax.random.laplace(key, shape, dtype=theta.dtype)
    return theta[0] + theta[1] * e


def student_t_sampler(nu: float = 4.0) -> Sampler:
    r"""Location-scale Student t with fixed degrees of freedom.

    ``theta = (mu, sigma)``; :math:`x = \mu + \sigma t`, :math:`t \sim t_\nu`.

    Args:
        nu: Degrees of freedom, fixed at construction (``nu > 0``).

    Returns:
        The sampler.
    """
    if not float(nu) > 0:
        raise ValueError(f"student_t needs nu > 0, got nu={nu}")
    nu = float(nu)

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        t = jax.random.t(key, jnp.asarray(nu, theta.dtype), shape, dtype=theta.dtype)
        return theta[0] + theta[1] * t

    sample.__name__ = sample.__qualname__ = f"student_t_nu{nu:g}"
    sample.__doc__ = f"Student t sampler with nu={nu:g}; theta = (mu, sigma)."
    return sample


def uniform(key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    r"""Uniform on :math:`[0, \theta)`: ``theta = (theta,)``, :math:`\theta > 0`."""
    theta, shape = _prepare(theta, shape)
    return theta[0] * jax.random.uniform(key, shape, dtype=theta.dtype)


_VM_MAX_ROUNDS = 64  # acceptance >= ~0.65 per round: P(no accept) < 1e-28


def _wrap_angle(x: jax.Array) -> jax.Array:
    r"""Wrap angles to :math:`(-\pi, \pi]`."""
    pi = jnp.asarray(math.pi, x.dtype)
    w = pi - jnp.mod(pi - x, 2 * pi)
    return jnp.where(w <= -pi, w + 2 * pi, w)


def von_mises(
    key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
) -> jax.Array:
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
    All samples are drawn in parallel; rounds repeat (``lax.while_loop``) until every
    sample is accepted, at most 64 rounds (each accepts with probability
    :math:`\gtrsim 0.65`), after which the last proposal is kept. The result is
    :math:`\mu + y` wrapped to :math:`(-\pi, \pi]`.
    """
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

    def propose(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_u, k_v = jax.random.split(k)
        u = jax.random.uniform(k_u, shape, dtype=dtype, minval=-1.0, maxval=1.0)
        v = jax.random.uniform(k_v, shape, dtype=dtype)
        half = 0.5 * jnp.pi * u
        y = 2.0 * jnp.arctan(q * jnp.tan(half))
        yr = yr_scale / (one_m_rho**2 + 4.0 * rho * jnp.cos(half) ** 2)
        accept = (yr * (2.0 - yr) >= v) | (jnp.log(yr / v) + 1.0 >= yr)
        return y, accept

    def cond(state: tuple) -> jax.Array:
        i, _, _, done = state
        return (i < _VM_MAX_ROUNDS) & ~jnp.all(done)

    def body(state: tuple) -> tuple:
        i, k, y, done = state
        k, k_round = jax.random.split(k)
        y_new, accept = propose(k_round)
        y = jnp.where(done, y, y_new)
        return i + 1, k, y, done | accept

    init = (
        jnp.asarray(0, jnp.int32),
        key,
        jnp.zeros(shape, dtype),
        jnp.zeros(shape, bool),
    )
    _, _, y, _ = jax.lax.while_loop(cond, body, init)
    return _wrap_angle(mu + y)


# ---------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------


def _fixed(sampler: Sampler) -> Callable[[], Sampler]:
    """Wrap a fixed-size sampler in a zero-argument factory."""

    def factory() -> Sampler:
        return sampler

    factory.__name__ = factory.__qualname__ = f"{sampler.__name__}_factory"
    factory.__doc__ = f"Return the ``{sampler.__name__}`` sampler."
    return factory


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    "bernoulli": _fixed(bernoulli),
    "bernoulli_logit": _fixed(bernoulli_logit),
    "categorical": categorical_sampler,
    "categorical_softmax": categorical_softmax_sampler,
    "normal": _fixed(normal),
    "normal_var": _fixed(normal_var),
    "normal_logstd": _fixed(normal_logstd),
    "diag_gaussian": diag_gaussian_sampler,
    "full_gaussian": full_gaussian_sampler,
    "poisson": _fixed(poisson),
    "poisson_log": _fixed(poisson_log),
    "exponential": _fixed(exponential),
    "gamma": _fixed(gamma),
    "beta": _fixed(beta),
    "von_mises": _fixed(von_mises),
    "laplace": _fixed(laplace),
    "student_t": student_t_sampler,
    "uniform": _fixed(uniform),
    "tanh_gaussian": _fixed(tanh_gaussian),
}
"""Catalog name -> factory. Factories take size keywords (``K=``, ``d=``, ``nu=``)."""
