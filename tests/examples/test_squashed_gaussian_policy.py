"""test_squashed_gaussian_policy.py: my SAC/TRPO maths for a tanh-squashed Gaussian.

a = tanh(u), u ~ N(mu, sigma^2): symfisher's family "tanh_gaussian", theta = (mu, sigma).
Every function broadcasts over leading batch axes, as the oracle checks.
"""

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.testing import (
    assert_entropy_close,
    assert_fvp_close,
    assert_kl_close,
    assert_log_prob_close,
    assert_trpo_step_close,
)

FAMILY = "tanh_gaussian"


def log_tanh_jacobian(u):
    """log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)): exact even where tanh(u) = 1."""
    return 2 * (jnp.log(2.0) - u - jax.nn.softplus(-2 * u))


def log_prob_latent(theta, u):
    """SAC's log pi(a | s) from the pre-squash sample u (a = tanh u)."""
    mu, sigma = theta[..., 0], theta[..., 1]
    log_normal = (
        -0.5 * ((u - mu) / sigma) ** 2 - jnp.log(sigma) - 0.5 * jnp.log(2 * jnp.pi)
    )
    return log_normal - log_tanh_jacobian(u)


def log_prob(theta, a):
    return log_prob_latent(theta, jnp.arctanh(a))


def entropy(theta):
    """H(a) = H(u) + E[log(1 - tanh(u)^2)], the expectation by Gauss-Hermite in u."""
    z, w = np.polynomial.hermite_e.hermegauss(160)
    mu, sigma = theta[..., 0, None], theta[..., 1, None]
    jac = jnp.sum(w * log_tanh_jacobian(mu + sigma * z), axis=-1) / np.sqrt(2 * np.pi)
    return 0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.log(theta[..., 1]) + jac


def kl(theta_p, theta_q):
    """KL is invariant under the bijection tanh: the Gaussians' KL."""
    (mp, sp), (mq, sq) = theta_p[..., :2].T, theta_q[..., :2].T
    return (jnp.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5).T


@jax.jit
@jnp.vectorize
def _fvp(mu, sigma, v_mu, v_sigma):
    theta, v = jnp.stack([mu, sigma]), jnp.stack([v_mu, v_sigma])
    return jax.hessian(lambda q: kl(theta, q))(theta) @ v  # Hessian of KL at q = theta


def fvp(theta, v):
    return _fvp(theta[..., 0], theta[..., 1], v[..., 0], v[..., 1])


def trpo_step(theta, g, max_kl=0.01):
    """sqrt(2 delta / g^T F^-1 g) F^-1 g, with F = diag(1/sigma^2, 2/sigma^2)."""
    x = g * theta[..., 1:2] ** 2 / jnp.array([1.0, 2.0])
    return jnp.sqrt(2 * max_kl / jnp.sum(g * x, axis=-1, keepdims=True)) * x


def test_log_prob():
    assert_log_prob_close(log_prob, FAMILY)
    assert_log_prob_close(log_prob_latent, FAMILY, latent=True, dtype=jnp.float32)


def test_entropy():
    assert_entropy_close(entropy, FAMILY)


def test_kl():
    assert_kl_close(kl, FAMILY)


def test_fvp():
    assert_fvp_close(fvp, FAMILY)


def test_trpo_step():
    assert_trpo_step_close(trpo_step, FAMILY, max_kl=0.01)
