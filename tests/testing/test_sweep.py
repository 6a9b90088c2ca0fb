"""A seeded sweep of correct implementations: no false alarm.

Hand-written log-densities, KLs and TRPO steps (float64 and float32, batched)
at several seeds of points and outcomes; every call must pass with the
oracle's default tolerances. The seeds are fixed, so the sweep is
deterministic; a failure here is a false alarm of the oracle.
"""

import jax
import jax.numpy as jnp
import pytest

from symfisher.testing import (
    assert_kl_close,
    assert_log_prob_close,
    assert_score_close,
    assert_trpo_step_close,
)
from tests.testing.test_kl import kl_logstd, kl_softmax
from tests.testing.test_logprob import (
    beta_lp,
    categorical_lp,
    logstd_lp,
    normal_lp,
    tanh_action_lp,
    tanh_latent_lp,
)
from tests.testing.test_steps import DELTA, correct, trpo

LOG_PROBS = [
    (normal_lp, "normal", {}),
    (beta_lp, "beta", {"dtype": jnp.float32}),
    (categorical_lp, "categorical", {"allow_boundary": True}),
    (logstd_lp, "diag_gaussian", {"dtype": jnp.float32}),
    (tanh_action_lp, "tanh_gaussian", {"dtype": jnp.float32}),
    (tanh_latent_lp, "tanh_gaussian", {"latent": True, "dtype": jnp.float32}),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_no_false_alarm(seed):
    for fn, family, kw in LOG_PROBS:
        assert_log_prob_close(
            jax.jit(fn), family, n_points=2, n_samples=3, seed=seed, **kw
        )
    assert_score_close(
        jax.jit(jnp.vectorize(jax.grad(normal_lp), signature="(p),()->(p)")),
        "normal",
        n_points=2,
        n_samples=3,
        seed=seed,
        dtype=jnp.float32,
    )
    assert_kl_close(
        kl_logstd, "diag_gaussian", n_points=3, seed=seed, dtype=jnp.float32
    )
    assert_kl_close(kl_softmax, "categorical_softmax", n_points=3, seed=seed)
    assert_trpo_step_close(trpo(correct), "gamma", max_kl=DELTA, n_points=3, seed=seed)
