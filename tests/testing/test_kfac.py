"""assert_kfac_close: hand-written K-FAC factors of the linear policies pass; m² is named.

The factors are written here from their definitions (second moment of the
inputs, expected output-side Fisher), never from the generated kernels.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symfisher as sf
from symfisher.testing import assert_kfac_close

STATES = jnp.asarray(np.random.default_rng(3).standard_normal((6, 2)))


def softmax_factors(W, S):
    p = jax.nn.softmax(S @ W.T)  # (B, K)
    A = S.T @ S / S.shape[0]
    G = jnp.mean(jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :], axis=0)
    return A, G


def gaussian_factors(theta, S):
    s1 = jnp.concatenate([S, jnp.ones((S.shape[0], 1), S.dtype)], axis=1)
    return s1.T @ s1 / S.shape[0], jnp.diag(jnp.exp(-2 * theta[:, -1]))


def test_correct_factors_pass_in_either_order_and_float32():
    pol = sf.policy("linear_softmax", K=3, d=2)
    assert_kfac_close(softmax_factors, pol, STATES)
    assert_kfac_close(lambda W, S: softmax_factors(W, S)[::-1], pol, STATES)
    # a constant moved between the factors does not matter
    assert_kfac_close(
        lambda W, S: (4 * softmax_factors(W, S)[0], softmax_factors(W, S)[1] / 4),
        pol,
        STATES,
        dtype=jnp.float32,
    )
    assert_kfac_close(gaussian_factors, sf.policy("linear_gaussian", n=2, m=2), STATES)


def test_mean_reduced_loss_factor_is_named():
    def factors(W, S):  # per-state output gradients of a mean loss carry 1/B
        A, G = softmax_factors(W, S)
        return A, G / S.shape[0] ** 2

    with pytest.raises(AssertionError, match=r"1/B² = 1/6²") as e:
        assert_kfac_close(factors, sf.policy("linear_softmax", K=3, d=2), STATES)
    assert "mean-reduced loss" in str(e.value)


def test_sum_over_states_is_named_and_bad_output_is_clear():
    pol = sf.policy("linear_softmax", K=3, d=2)
    with pytest.raises(AssertionError, match="sum over states instead of a mean"):
        assert_kfac_close(lambda W, S: (S.T @ S, softmax_factors(W, S)[1]), pol, STATES)
    with pytest.raises(AssertionError, match=r"expected a pair \(A, G\)"):
        assert_kfac_close(lambda W, S: S.T @ S, pol, STATES)
    with pytest.raises(ValueError, match="policy must be one of"):
        assert_kfac_close(softmax_factors, "tabular_softmax", STATES)
