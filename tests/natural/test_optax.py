"""scale_by_fisher: the optax transformation equals a damped CG solve of the policy Fisher."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from symfisher import natural

RNG = np.random.default_rng(0)
STATES = jnp.asarray(RNG.standard_normal((32, 3)))
TARGET = jax.nn.softmax(jnp.asarray(RNG.standard_normal((32, 4))), -1)


def apply_fn(params, states):  # linear-softmax policy: logits = s W + b
    return states @ params["W"] + params["b"]


PARAMS = {"W": jnp.asarray(0.1 * RNG.standard_normal((3, 4))), "b": jnp.zeros(4)}


def loss(params):
    """Cross-entropy of the policy against target action probabilities."""
    return -jnp.mean(jnp.sum(TARGET * jax.nn.log_softmax(apply_fn(params, STATES)), -1))


def test_update_is_the_damped_fisher_solve():
    tx = natural.scale_by_fisher(apply_fn, "categorical_softmax", damping=0.1, iters=20)
    g = jax.grad(loss)(PARAMS)
    u, state = tx.update(g, tx.init(PARAMS), PARAMS, states=STATES)
    fvp = natural.policy_fvp(apply_fn, PARAMS, STATES, "categorical_softmax")
    # (F + 0.1 I) u = g; float64, kappa <= (0.25 |s|^2 + 0.1) / 0.1 ~ 30: 1e-10
    lhs = jax.tree.map(lambda a, b: a + 0.1 * b, fvp(u), u)
    err = ravel_pytree(jax.tree.map(jnp.subtract, lhs, g))[0]
    assert float(jnp.abs(err).max()) <= 1e-10 * float(jnp.abs(ravel_pytree(g)[0]).max())
    assert int(state.iterations) >= 1


def test_max_kl_scales_to_the_budget_and_chain_forwards_states():
    tx = optax.chain(
        natural.scale_by_fisher(
            apply_fn, "categorical_softmax", damping=1e-3, iters=30, max_kl=0.01
        ),
        optax.scale(-1.0),
    )
    g = jax.grad(loss)(PARAMS)
    u, _ = jax.jit(tx.update)(g, tx.init(PARAMS), PARAMS, states=STATES)
    fvp = natural.policy_fvp(apply_fn, PARAMS, STATES, "categorical_softmax")
    damped = jax.tree.map(lambda a, b: a + 1e-3 * b, fvp(u), u)
    quad = 0.5 * ravel_pytree(u)[0] @ ravel_pytree(damped)[0]
    np.testing.assert_allclose(quad, 0.01, rtol=1e-8)


def test_natural_gradient_descent_reduces_the_loss():
    tx = optax.chain(
        natural.scale_by_fisher(
            apply_fn, "categorical_softmax", damping=1e-2, states=STATES
        ),
        optax.scale(-0.5),
    )
    params, state = PARAMS, tx.init(PARAMS)
    losses = [float(loss(params))]
    for _ in range(5):
        u, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, u)
        losses.append(float(loss(params)))
    assert all(b < a for a, b in itertools.pairwise(losses)), losses


def test_bad_arguments():
    with pytest.raises(ValueError, match="damping must be >= 0"):
        natural.scale_by_fisher(apply_fn, "categorical_softmax", damping=-1.0)
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        natural.scale_by_fisher(apply_fn, "categorical_softmax", max_kl=0.0)
    tx = natural.scale_by_fisher(apply_fn, "categorical_softmax")
    g = jax.grad(loss)(PARAMS)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(g, tx.init(PARAMS), states=STATES)
    with pytest.raises(ValueError, match="no states"):
        tx.update(g, tx.init(PARAMS), PARAMS)
