"""assert_kl_close: a fixed q, swapped arguments, batches, boundaries, float32, ε.

Correct KLs are textbook formulas written here (and numpyro's); buggy ones
reproduce committed KL bugs. Tolerances: the oracle's defaults.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
import pytest
from numpyro.distributions.kl import kl_divergence

from symfisher.testing import assert_kl_close


def kl_logstd(tp, tq):
    """KL of diagonal Gaussians in (mu, log sigma), batched over leading axes."""
    d = tp.shape[-1] // 2
    mp, wp, mq, wq = tp[..., :d], tp[..., d:], tq[..., :d], tq[..., d:]
    return jnp.sum(
        wq - wp + (jnp.exp(2 * wp) + (mp - mq) ** 2) / (2 * jnp.exp(2 * wq)) - 0.5, -1
    )


def kl_softmax(zp, zq):
    lp, lq = jax.nn.log_softmax(zp), jax.nn.log_softmax(zq)
    return jnp.sum(jnp.where(lp > -jnp.inf, jnp.exp(lp) * (lp - lq), 0.0), -1)


def test_correct_kls_pass_batched_float32_fixed_q_and_boundary():
    assert_kl_close(kl_logstd, "diag_gaussian", n_points=3)
    assert_kl_close(kl_logstd, "diag_gaussian", n_points=3, dtype=jnp.float32)
    q = jnp.array([0.3, -0.2, 0.1, 0.4])
    assert_kl_close(lambda t: kl_logstd(t, q), "diag_gaussian", q=q, n_points=3)
    assert_kl_close(kl_softmax, "categorical_softmax", n_points=3, allow_boundary=True)


def test_numpyro_kl_passes():
    def kl(tp, tq):
        p = nd.Normal(tp[..., 0], jnp.exp(tp[..., 1]))
        return kl_divergence(p, nd.Normal(tq[..., 0], jnp.exp(tq[..., 1])))

    assert_kl_close(kl, "normal_logstd", n_points=3)


def test_fixed_q_swapped_arguments_are_named():
    q = jnp.array([0.3, -0.2, 0.1, 0.4])
    with pytest.raises(AssertionError, match="the arguments are swapped") as e:
        assert_kl_close(lambda t: kl_logstd(q, t), "diag_gaussian", q=q, n_points=3)
    assert "KL(p_theta || p_q)" in str(e.value)


def test_kl_summed_over_the_batch_is_named():
    with pytest.raises(AssertionError, match="returns the sum over the batch"):
        assert_kl_close(
            lambda p, q: jnp.sum(kl_logstd(p, q)), "diag_gaussian", n_points=3
        )


def test_kl_unpacking_over_the_batch_is_named():
    def kl(tp, tq):  # unpacks the first axis: a batch of parameter vectors breaks
        mp, wp = tp
        mq, wq = tq
        return (
            wq - wp + (jnp.exp(2 * wp) + (mp - mq) ** 2) / (2 * jnp.exp(2 * wq)) - 0.5
        )

    assert_kl_close(kl, "normal_logstd", n_points=3, batched=False)
    with pytest.raises(AssertionError, match=r"raised ValueError.*theta\[\.\.\., 0\]"):
        assert_kl_close(kl, "normal_logstd", n_points=3)


def test_epsilon_in_a_variance_gets_its_own_hint():
    def kl(tp, tq):
        vp, vq = jnp.exp(2 * tp[..., 1]), jnp.exp(2 * tq[..., 1]) + 1e-8
        return 0.5 * (jnp.log(vq / vp) + (vp + (tp[..., 0] - tq[..., 0]) ** 2) / vq - 1)

    with pytest.raises(AssertionError, match="ε added to a denominator") as e:
        assert_kl_close(kl, "normal_logstd", n_points=3)
    assert "pass rtol=" in str(e.value)


def test_zero_probability_nan_kl_is_caught_on_the_boundary():
    def kl(zp, zq):  # p * (log p - log q) is NaN at p = 0 (logit -inf)
        lp, lq = jax.nn.log_softmax(zp), jax.nn.log_softmax(zq)
        return jnp.sum(jnp.exp(lp) * (lp - lq), -1)

    assert_kl_close(kl, "categorical_softmax", n_points=3)
    with pytest.raises(AssertionError, match="xlogy"):
        assert_kl_close(kl, "categorical_softmax", n_points=3, allow_boundary=True)


def test_float32_reference_uses_the_rounded_points():
    # exact in float64 at the rounded points; would be a false alarm against the
    # unrounded points at a tight rtol
    pts = [[0.1 + 1e-9, -0.3, 0.2 - 1e-9, 0.7], [0.4, 0.3, -0.1, 0.2]]

    def kl64(tp, tq):
        return kl_logstd(tp.astype(jnp.float64), tq.astype(jnp.float64))

    assert_kl_close(kl64, "diag_gaussian", pts, dtype=jnp.float32, rtol=1e-12)
