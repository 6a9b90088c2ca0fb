"""policy_fvp (J^T F_out J v) against the TRPO double backprop and a closed form.

Tolerances, normwise (|a - b|_inf <= rtol |b|_inf): float64 1e-12 (both routes
are a few hundred flops per weight of O(1) terms); float32 1e-5 (the issue's
target; the routes sum 64 states in different orders, round-off ~ sqrt(64)
eps32 ~ 1e-6).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from symfisher import natural


def mlp(sizes, seed, dtype):
    rng = np.random.default_rng(seed)
    return [
        (
            jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a), dtype),
            jnp.asarray(0.1 * rng.standard_normal(b), dtype),
        )
        for a, b in itertools.pairwise(sizes)
    ]


def forward(layers, s):
    for i, (w, b) in enumerate(layers):
        s = s @ w + b
        s = jnp.tanh(s) if i < len(layers) - 1 else s
    return s


def gauss_apply(params, states):
    mu = forward(params["mlp"], states)
    return jnp.concatenate([mu, jnp.broadcast_to(params["log_std"], mu.shape)], axis=-1)


def cat_apply(params, states):
    return forward(params, states)


def setup(kind, dtype):
    rng = np.random.default_rng(5)
    if kind == "diag_gaussian":
        params = {
            "mlp": mlp([5, 16, 16, 3], 1, dtype),
            "log_std": jnp.asarray([-0.5, 0.0, 0.3], dtype),
        }
        return gauss_apply, params, jnp.asarray(rng.standard_normal((64, 5)), dtype)
    params = mlp([4, 16, 16, 6], 2, dtype)
    return cat_apply, params, jnp.asarray(rng.standard_normal((64, 4)), dtype)


def direction(params, seed):
    flat, unravel = ravel_pytree(params)
    return unravel(
        jnp.asarray(np.random.default_rng(seed).standard_normal(flat.shape), flat.dtype)
    )


def close(a, b, rtol):
    a, b = ravel_pytree(a)[0], ravel_pytree(b)[0]
    err = float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
    assert err <= rtol, err


@pytest.mark.parametrize("family", ["diag_gaussian", "categorical_softmax"])
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_policy_fvp_matches_double_backprop(family, dtype, rtol):
    apply_fn, params, states = setup(family, dtype)
    kl = natural.policy_kl(apply_fn, states, family)
    fvp = jax.jit(lambda p, v: natural.policy_fvp(apply_fn, p, states, family)(v))
    for seed in range(2):
        v = direction(params, seed)
        ref = natural.fvp_double_backprop(kl, params, v)
        out = fvp(params, v)
        assert jax.tree.structure(out) == jax.tree.structure(params)
        assert ravel_pytree(out)[0].dtype == jnp.dtype(dtype)
        close(out, ref, rtol)
        close(natural.fvp_forward_over_reverse(kl, params, v), ref, rtol)


def test_linear_gaussian_policy_closed_form():
    """mu = s W, shared log sigma w: F_W V = E[s s^T] V e^{-2w} (per column), F_w = 2."""
    rng = np.random.default_rng(0)
    S = jnp.asarray(rng.standard_normal((50, 3)))
    params = {
        "W": jnp.asarray(rng.standard_normal((3, 2))),
        "w": jnp.asarray([0.2, -0.7]),
    }

    def apply_fn(p, s):
        mu = s @ p["W"]
        return jnp.concatenate([mu, jnp.broadcast_to(p["w"], mu.shape)], -1)

    v = {"W": jnp.asarray(rng.standard_normal((3, 2))), "w": jnp.asarray([1.0, -2.0])}
    out = natural.policy_fvp(apply_fn, params, S, "diag_gaussian")(v)
    second_moment = S.T @ S / 50
    close(out["W"], second_moment @ v["W"] * jnp.exp(-2 * params["w"]), 1e-13)
    close(out["w"], 2 * v["w"], 1e-15)


def test_policy_fvp_errors_name_the_problem():
    apply_fn, params, states = setup("diag_gaussian", "float64")
    with pytest.raises(
        ValueError, match=r"not \(N, P\) parameters of family 'diag_gaussian'"
    ):
        natural.policy_fvp(
            lambda p, s: gauss_apply(p, s)[:, :5], params, states, "diag_gaussian"
        )
    with pytest.raises(ValueError, match="not \\(N, P\\) parameters of family 'gamma'"):
        natural.policy_fvp(apply_fn, params, states, "gamma")
    fvp = natural.policy_fvp(apply_fn, params, states, "diag_gaussian")
    with pytest.raises(
        ValueError, match="v must have the same tree structure as params"
    ):
        fvp(params["mlp"])
