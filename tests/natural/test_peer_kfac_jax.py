"""Peer validation: natural.kfac's Kronecker factors against kfac-jax's.

kfac-jax (``BlockDiagonalCurvature`` with ``estimation_mode="fisher_exact"``: the
output side is the exact expectation over the model's predictive distribution
through a square root of its Fisher, as ours; one update with ``ema_old=0``,
``ema_new=1``, so each factor is the plain batch average) covers a normal head
with a fixed scalar variance and a categorical head. Compared, in float64 on the
MLPs of ``benchmarks/natural_bench.py`` (17-64-64-6 tanh, and 8-64-64-18), 256
states, 1/sqrt(fan-in) weights:

* Normal: our head is ``diag_gaussian`` with outputs ``[mu(s), log sigma]`` and a
  state-independent ``params["log_std"]`` set to one value c in every dimension;
  kfac-jax's ``register_normal_predictive_distribution(mu, variance=exp(2 c))``.
  The mean block of the diag_gaussian Fisher is diag(1/sigma^2) = I / variance,
  its (mu, log sigma) block is 0, and no dense layer reaches log sigma, so every
  dense layer's (A, G) must coincide; the log_std block (ours: exact, 2 I) has no
  counterpart in kfac-jax (its variance is not a parameter) and is not compared.
* Categorical: ``categorical_softmax`` logits against
  ``register_softmax_cross_entropy_loss(logits)``: all three layers' (A, G).

A includes the bias column as [a, 1] in both. kfac-jax's A and G are compared
separately, each to 1e-10 relative to its largest entry (both sides sum 256
exact products in float64; measured differences are printed).

kfac-jax 0.0.8 predates ``Primitive.get_bind_params`` returning only the params
(JAX >= 0.7); ``_compat`` adapts its one call site.
"""

import itertools

import jax
import jax.numpy as jnp
import kfac_jax
import numpy as np
import pytest
from kfac_jax._src import tag_graph_matcher

from symfisher import natural

N = 256
RTOL = 1e-10


def _compat():
    """Make kfac-jax 0.0.8's eval_jaxpr_eqn work where get_bind_params returns a dict."""

    def eval_jaxpr_eqn(eqn, in_values):
        bind = eqn.primitive.get_bind_params(eqn.params)
        subfuns, bind = bind if isinstance(bind, tuple) else ((), bind)
        with jax.extend.source_info_util.user_context(eqn.source_info.traceback):
            out = eqn.primitive.bind(*subfuns, *in_values, **bind)
        return out if isinstance(out, list) else [out]

    return eval_jaxpr_eqn


def init_mlp(sizes, rng):
    return [
        (
            jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a)),
            jnp.asarray(0.1 * rng.standard_normal(b)),
        )
        for a, b in itertools.pairwise(sizes)
    ]


def mlp(layers, s):
    for i, (w, b) in enumerate(layers):
        s = s @ w + b
        if i < len(layers) - 1:
            s = jnp.tanh(s)
    return s


def kfac_jax_factors(layers, states, register):
    """(A, G) per dense layer from kfac-jax's exact-Fisher estimate."""

    def loss(params, batch):
        out = mlp(params, batch)
        register(out)
        return jnp.sum(out) * 0.0

    est = kfac_jax.BlockDiagonalCurvature(func=loss)
    key = jax.random.PRNGKey(0)
    args = (layers, states)
    state = est.init(key, args, None, None)
    state = est.update_curvature_matrix_estimate(
        state, 0.0, 1.0, 0.0, N, key, args, estimation_mode="fisher_exact"
    )
    blocks = est.indices_to_block_map
    assert sorted(blocks) == [(2 * i, 2 * i + 1) for i in range(len(layers))]
    out = []
    for i in range(len(layers)):
        block = blocks[(2 * i, 2 * i + 1)]
        assert type(block).__name__ == "DenseTwoKroneckerFactored"
        j = est.blocks.index(block)
        A, G = (f.value for f in state.blocks_states[j].factors)
        out.append((A, G))
    return out


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("head", ["normal", "categorical"])
def test_factors_equal_kfac_jax(head, monkeypatch):
    monkeypatch.setattr(tag_graph_matcher, "eval_jaxpr_eqn", _compat())
    rng = np.random.default_rng(20240611)
    if head == "normal":
        c = -0.5
        layers = init_mlp([17, 64, 64, 6], rng)
        states = jnp.asarray(rng.standard_normal((N, 17)))
        params = {"mlp": layers, "log_std": jnp.full(6, c)}

        def apply_fn(p, s):
            mu = mlp(p["mlp"], s)
            return jnp.concatenate([mu, jnp.broadcast_to(p["log_std"], mu.shape)], -1)

        ours = natural.kfac(apply_fn, params, states, "diag_gaussian")

        def register(mu):
            kfac_jax.register_normal_predictive_distribution(
                mu, variance=float(np.exp(2 * c))
            )

    else:
        layers = init_mlp([8, 64, 64, 18], rng)
        states = jnp.asarray(rng.standard_normal((N, 8)))
        ours = natural.kfac(mlp, layers, states, "categorical_softmax")
        register = kfac_jax.register_softmax_cross_entropy_loss
    theirs = kfac_jax_factors(layers, states, register)
    assert len(ours.factors) == len(theirs) == 3
    for i, ((A, G), (A_j, G_j)) in enumerate(zip(ours.factors, theirs, strict=True)):
        ra, rg = rel(A, A_j), rel(G, G_j)
        print(f"{head} layer {i}: max rel diff A {ra:.2e}, G {rg:.2e}")
        assert ra <= RTOL and rg <= RTOL, (head, i, ra, rg)
