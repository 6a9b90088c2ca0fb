"""Bad output of a user function: named call, argument shapes, expectation, chained cause."""

import jax.numpy as jnp
import pytest

from symfisher.testing import (
    assert_fisher_close,
    assert_log_prob_close,
    assert_trpo_step_close,
)


def normal_lp(t, x):
    return -0.5 * ((x - t[..., 0]) / t[..., 1]) ** 2 - jnp.log(t[..., 1])


def test_user_exception_is_chained_and_named():
    class Boom(RuntimeError):
        pass

    def fn(t, x):
        raise Boom("inside the user's code")

    with pytest.raises(AssertionError) as e:
        assert_log_prob_close(fn, "normal", n_points=1, n_samples=1)
    msg = str(e.value)
    assert "fn(theta, x) called with argument shapes (2,), ()" in msg
    assert "raised Boom: inside the user's code" in msg and "expected an array" in msg
    assert isinstance(e.value.__cause__, Boom)


@pytest.mark.parametrize(
    ("out", "pattern"),
    [
        (None, "returned NoneType, not an array"),
        ("text", "returned str, not an array"),
        ({"a": 1}, "returned dict, not an array"),
        (jnp.zeros(3), r"returned shape \(3,\); expected \(2,\)"),
        (jnp.array([jnp.nan, 0.0]), "returned nan where the reference is finite"),
    ],
)
def test_bad_outputs_are_named(out, pattern):
    with pytest.raises(AssertionError, match=pattern) as e:
        assert_trpo_step_close(lambda t, g: out, "gamma", max_kl=0.01, n_points=1)
    assert "step_fn(theta, g) called with argument shapes (2,), (2,)" in str(e.value)


def test_nan_fisher_keeps_its_report():
    # existing assertions report NaN as a failing entry with a hint
    with pytest.raises(AssertionError, match="non-finite values in got"):
        assert_fisher_close(lambda t: jnp.full((2, 2), jnp.nan), "gamma", batched=False)


def test_batched_call_that_mixes_the_batch_is_named():
    def lp(t, x):  # x - mean(x) is 0 for one point, not for a batch
        return normal_lp(t, x) - 0.5 * jnp.log(2 * jnp.pi) + (x - jnp.mean(x))

    with pytest.raises(AssertionError, match="differs from the single calls"):
        assert_log_prob_close(lp, "normal", n_points=2, n_samples=2)
