"""assert_trpo_step_close: the TRPO step passes; step-size bugs are named.

The correct step solves with a Fisher written here by hand (the Hessian of a
textbook KL), never with the generated kernels.
"""

import jax
import jax.numpy as jnp
import pytest

from symfisher.testing import assert_trpo_step_close

DELTA = 0.01


def kl_gamma(tp, tq):
    a, b = tp
    c, d = tq
    gl, dg = jax.scipy.special.gammaln, jax.scipy.special.digamma
    return (
        (a - c) * dg(a)
        - gl(a)
        + gl(c)
        + c * (jnp.log(b) - jnp.log(d))
        + a * (d - b) / b
    )


def fisher(theta):
    return jax.hessian(lambda q: kl_gamma(jax.lax.stop_gradient(theta), q))(theta)


def trpo(scale_of, damping=0.0, use_fvp=False):
    """A TRPO step with the step size computed by ``scale_of(gᵀx)``."""

    def step(theta, g):
        F = fisher(theta) + damping * jnp.eye(2, dtype=theta.dtype)
        x = F @ g if use_fvp else jnp.linalg.solve(F, g)
        return scale_of(g @ x) * x

    return jax.jit(jnp.vectorize(step, signature="(p),(p)->(p)"))


def correct(shx):
    return jnp.sqrt(2 * DELTA / shx)


def test_correct_step_passes_batched_damped_and_float32():
    assert_trpo_step_close(trpo(correct), "gamma", max_kl=DELTA, n_points=3)
    assert_trpo_step_close(
        trpo(correct, 0.1), "gamma", max_kl=DELTA, damping=0.1, n_points=3
    )
    assert_trpo_step_close(
        trpo(correct), "gamma", max_kl=DELTA, n_points=3, dtype=jnp.float32
    )


@pytest.mark.parametrize(
    ("step", "kw", "pattern"),
    [
        (trpo(lambda s: 2 * DELTA / s), {}, "square root of the step size is missing"),
        (trpo(lambda s: jnp.sqrt(DELTA / s)), {}, "δ where 2δ belongs"),
        (trpo(correct, use_fvp=True), {}, "F used where F⁻¹ was meant"),
        (trpo(correct, 1e-3), {}, "the damping differs"),
    ],
)
def test_step_bugs_are_named(step, kw, pattern):
    with pytest.raises(AssertionError, match=pattern):
        assert_trpo_step_close(step, "gamma", max_kl=DELTA, n_points=3, **kw)


def test_bad_max_kl():
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        assert_trpo_step_close(trpo(correct), "gamma", max_kl=0.0)
