"""assert_entropy_close: closed forms by hand, numpyro and torch pass; entropy bugs are named.

The correct entropies here are written from textbook formulas or taken from
numpyro / torch.distributions, never from the generated kernels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
import torch

import symfisher as sf
from symfisher.testing import assert_entropy_close

HALF_LOG_2PIE = 0.5 * jnp.log(2 * jnp.pi * jnp.e)


def normal_entropy(t):  # (mu, sigma)
    return HALF_LOG_2PIE + jnp.log(t[..., 1])


def diag_entropy(t):  # (mu_1..mu_d, omega_1..omega_d)
    d = t.shape[-1] // 2
    return jnp.sum(HALF_LOG_2PIE + t[..., d:], axis=-1)


def softmax_entropy(z):  # stable and finite at -inf logits
    logp = jax.nn.log_softmax(z, axis=-1)
    p = jnp.exp(logp)
    return -jnp.sum(p * jnp.where(p > 0, logp, 0.0), axis=-1)


def probs_entropy(p3):  # categorical(K=3) in (p_1, p_2); p_3 = 1 - p_1 - p_2
    p = jnp.concatenate([p3, 1 - p3.sum(-1, keepdims=True)], axis=-1)
    return -jnp.sum(jax.scipy.special.xlogy(p, p), axis=-1)


CAT3 = sf.family("categorical", K=3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_correct_entropies_pass(dtype):
    assert_entropy_close(normal_entropy, "normal", dtype=dtype)
    assert_entropy_close(diag_entropy, sf.family("diag_gaussian", d=3), dtype=dtype)
    assert_entropy_close(softmax_entropy, "categorical_softmax", dtype=dtype)
    assert_entropy_close(
        lambda t: nd.Gamma(t[..., 0], t[..., 1]).entropy(), "gamma", dtype=dtype
    )
    assert_entropy_close(
        lambda t: nd.Beta(t[..., 0], t[..., 1]).entropy(), "beta", dtype=dtype
    )


def test_torch_entropy_passes_and_boundary_limits_are_taken():
    def torch_normal(t):
        return torch.distributions.Normal(t[..., 0], t[..., 1]).entropy()

    assert_entropy_close(torch_normal, "normal", dtype=torch.float64)
    assert_entropy_close(softmax_entropy, "categorical_softmax", allow_boundary=True)
    assert_entropy_close(probs_entropy, CAT3, allow_boundary=True)


@pytest.mark.parametrize(
    "fn, family, match",
    [
        (  # 1/2 log 2pi instead of 1/2 log 2 pi e
            lambda t: 0.5 * jnp.log(2 * jnp.pi) + jnp.log(t[..., 1]),
            "normal",
            r"-0\.5 = -½ at every point: a wrong constant",
        ),
        (  # 1/2 log sigma instead of log sigma
            lambda t: HALF_LOG_2PIE + 0.5 * jnp.log(t[..., 1]),
            "normal",
            r"½ log σ instead of log σ",
        ),
        (  # a mean over action dimensions instead of a sum
            lambda t: jnp.mean(HALF_LOG_2PIE + t[..., 3:], axis=-1),
            sf.family("diag_gaussian", d=3),
            r"expected / 3 at every point: a mean over the 3 action dimensions",
        ),
        (  # per-dimension entropies, never summed
            lambda t: HALF_LOG_2PIE + t[..., 3:],
            sf.family("diag_gaussian", d=3),
            r"returned shape \(3,\); expected \(\).*not summed over the event axis",
        ),
    ],
)
def test_entropy_bugs_are_named(fn, family, match):
    with pytest.raises(AssertionError, match=match):
        assert_entropy_close(fn, family, dtype=jnp.float64)


def test_entropy_from_sampled_log_probs_is_named():
    gen = torch.Generator().manual_seed(0)

    def sampled(t):  # -mean log p(a) over 256 fresh actions: an estimate, not H
        dist = torch.distributions.Normal(t[..., 0, None], t[..., 1, None])
        a = dist.loc + dist.scale * torch.randn(
            (*t.shape[:-1], 256), generator=gen, dtype=t.dtype
        )
        return -dist.log_prob(a).mean(-1)

    with pytest.raises(AssertionError, match="an estimate from sampled log-prob"):
        assert_entropy_close(sampled, "normal", dtype=jnp.float64)


def test_nan_at_zero_probability_and_minus_inf_logits_is_named():
    def naive_probs(p3):  # p log p is NaN at p = 0
        p = jnp.concatenate([p3, 1 - p3.sum(-1, keepdims=True)], axis=-1)
        return -jnp.sum(p * jnp.log(p), axis=-1)

    def naive_logits(z):  # 0 * (-inf) at a -inf logit
        return -jnp.sum(jax.nn.softmax(z) * jax.nn.log_softmax(z), axis=-1)

    for fn, fam in ((naive_probs, CAT3), (naive_logits, "categorical_softmax")):
        assert_entropy_close(fn, fam)  # fine inside the domain
        with pytest.raises(AssertionError, match=r"0 \* log 0|0 log 0"):
            assert_entropy_close(fn, fam, allow_boundary=True)


def test_entropy_summed_over_the_batch_is_named():
    with pytest.raises(AssertionError, match="reduces over the batch axis"):
        assert_entropy_close(lambda t: jnp.sum(normal_entropy(t)), "normal")
    assert_entropy_close(lambda t: normal_entropy(t), "normal", batched=False)


def test_raising_entropy_is_chained():
    def broken(t):
        raise ValueError("no entropy here")

    with pytest.raises(AssertionError, match="raised ValueError") as info:
        assert_entropy_close(broken, "normal")
    assert isinstance(info.value.__cause__, ValueError)


def test_seeded_sweep_of_correct_entropies_has_no_false_alarm():
    for seed in range(3):
        for fn, fam in (
            (normal_entropy, "normal"),
            (softmax_entropy, sf.family("categorical_softmax", K=7)),
            (probs_entropy, CAT3),
        ):
            assert_entropy_close(fn, fam, seed=seed, n_points=4)
            assert_entropy_close(fn, fam, seed=seed, dtype=np.float32)
