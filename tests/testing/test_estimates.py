"""assert_fisher_estimate_close: unbiased MC estimators pass, biased ones are named.

Estimators draw with their own sampler (jax.random) and differentiate a
hand-written log-density; the test's decisions are the oracle's t-tests at
family-wise alpha = 1e-3 with fixed seeds.
"""

import jax
import jax.numpy as jnp
import pytest

from symfisher.testing import assert_fisher_estimate_close

N = 2000


def log_density(theta, x):  # normal in (mu, log sigma)
    return -0.5 * ((x - theta[0]) * jnp.exp(-theta[1])) ** 2 - theta[1]


def scores(theta, key):
    x = theta[0] + jnp.exp(theta[1]) * jax.random.normal(key, (N,), theta.dtype)
    return jax.vmap(jax.grad(log_density), (None, 0))(theta, x)  # (N, P)


def batchable(estimator):
    """One point ``(P,)`` and key, or a stack ``(n, P)`` with ``n`` keys (vmap)."""
    one = jax.jit(estimator)
    many = jax.jit(jax.vmap(estimator))
    return lambda theta, key: many(theta, key) if theta.ndim == 2 else one(theta, key)


@batchable
def outer_mean(theta, key):
    S = scores(theta, key)
    return S.T @ S / N


@batchable
def squared_mean_score(theta, key):  # (E[s])² instead of E[s²]
    m = scores(theta, key).mean(axis=0)
    return jnp.outer(m, m)


@batchable
def diag_wrong_axes(theta, key):  # mean over the parameter index j of s_i s_j
    S = scores(theta, key)
    return jnp.mean(jnp.einsum("ni,nj->nij", S, S), axis=(0, 2))


@batchable
def diag_correct(theta, key):
    return jnp.mean(scores(theta, key) ** 2, axis=0)


def test_unbiased_estimators_pass():
    assert_fisher_estimate_close(outer_mean, "normal_logstd", n_samples=N, n_points=2)
    assert_fisher_estimate_close(
        diag_correct, "normal_logstd", n_samples=N, diagonal=True, n_points=2
    )


def test_exact_fisher_passes_without_spread():
    def exact(theta, key):
        return jnp.diag(jnp.array([jnp.exp(-2 * theta[1]), 2.0]))

    assert_fisher_estimate_close(
        exact, "normal_logstd", n_samples=1, n_points=2, batched=False
    )
    with pytest.raises(AssertionError, match=r"batched estimator\(thetas, keys\)"):
        assert_fisher_estimate_close(exact, "normal_logstd", n_samples=1, n_points=2)


def test_square_of_mean_score_is_named():
    with pytest.raises(AssertionError, match=r"\(E\[s\]\)²") as e:
        assert_fisher_estimate_close(
            squared_mean_score, "normal_logstd", n_samples=N, n_points=2
        )
    assert "replicates" in str(e.value) and "Holm" in str(e.value)


def test_wrong_axes_are_named():
    with pytest.raises(AssertionError, match="averaged over the wrong axis"):
        assert_fisher_estimate_close(
            diag_wrong_axes, "normal_logstd", n_samples=N, diagonal=True, n_points=2
        )


def test_sum_over_samples_is_named_and_bad_arguments():
    with pytest.raises(AssertionError, match="a sum over samples instead of a mean"):
        assert_fisher_estimate_close(
            lambda t, k: N * outer_mean(t, k), "normal_logstd", n_samples=N, n_points=2
        )
    with pytest.raises(ValueError, match="replicates must be an integer >= 3"):
        assert_fisher_estimate_close(
            outer_mean, "normal_logstd", n_samples=N, replicates=2
        )
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        assert_fisher_estimate_close(outer_mean, "normal_logstd", n_samples=0)
