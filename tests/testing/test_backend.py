"""Every assertion on PyTorch code: torch functions are detected or named, tested as JAX ones.

The torch implementations here are independent of symfisher: torch.distributions
log-densities and KLs, autograd scores, double back-propagated FVPs,
torch.linalg solves and torch-sampled Monte Carlo estimators.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

import symfisher as sf
from symfisher.testing import (
    assert_fisher_close,
    assert_fisher_estimate_close,
    assert_fvp_close,
    assert_kfac_close,
    assert_kl_close,
    assert_log_prob_close,
    assert_natural_gradient_close,
    assert_score_close,
    assert_trpo_step_close,
)
from symfisher.testing.backend import adapt, check_backend

FAMILY = "normal"  # theta = (mu, sigma)
DTYPES = [torch.float32, torch.float64]


def normal(theta: torch.Tensor) -> Normal:
    return Normal(theta[..., 0], theta[..., 1])


def log_prob(theta, x):
    return normal(theta).log_prob(x)


def score(theta, x):
    (g,) = torch.autograd.grad(log_prob(theta, x).sum(), theta)
    return g


def kl(theta_p, theta_q):
    return kl_divergence(normal(theta_p), normal(theta_q))


def fisher(theta):
    """Hessian of KL(p_theta ‖ p_q) in q at q = theta (torch.func), per point."""
    one = torch.func.hessian(lambda q, p: kl(p, q))
    return torch.vmap(one)(theta, theta) if theta.ndim == 2 else one(theta, theta)


def fvp(theta, v):
    """Double back-propagation, the TRPO way."""
    q = theta.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(kl(theta.detach(), q).sum(), q, create_graph=True)
    (hv,) = torch.autograd.grad((g * v).sum(), q)
    return hv


def natural_gradient(theta, g):
    return torch.linalg.solve(fisher(theta), g)


def trpo_step(theta, g, max_kl=0.01):
    x = natural_gradient(theta, g)
    return torch.sqrt(2 * max_kl / (g * x).sum(-1, keepdim=True)) * x


@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_torch_code_passes_detected(dtype):
    assert_log_prob_close(log_prob, FAMILY, dtype=dtype)
    assert_score_close(score, FAMILY, dtype=dtype)
    assert_kl_close(kl, FAMILY, dtype=dtype)
    assert_fisher_close(fisher, FAMILY, dtype=dtype)
    assert_fvp_close(fvp, FAMILY, dtype=dtype)
    assert_natural_gradient_close(natural_gradient, FAMILY, dtype=dtype)
    assert_trpo_step_close(trpo_step, FAMILY, max_kl=0.01, dtype=dtype)


def test_backend_torch_named_and_inputs_are_tensors_of_the_dtype():
    seen = []

    def spy(theta, x):
        seen.append((type(theta), theta.dtype, x.dtype, theta.requires_grad))
        return log_prob(theta, x)

    assert_log_prob_close(spy, FAMILY, dtype=torch.float64, backend="torch")
    assert {s[0] for s in seen} == {torch.Tensor}
    assert {(s[1], s[2]) for s in seen} == {(torch.float64, torch.float64)}
    seen.clear()

    def spy_score(theta, x):
        seen.append(theta.requires_grad)
        return score(theta, x)

    assert_score_close(spy_score, FAMILY, backend="torch", batched=False)
    assert seen and all(seen)  # theta differentiable where the function differentiates


@pytest.mark.parametrize(
    "assertion, fn, match",
    [
        (
            assert_log_prob_close,
            lambda t, x: Normal(t[..., 0], t[..., 1].sqrt()).log_prob(x),
            "differs from symfisher",
        ),
        (assert_score_close, lambda t, x: -score(t, x), "sign"),
        (assert_kl_close, lambda p, q: kl(q, p), "swapped"),
        (assert_fvp_close, lambda t, v: 2 * fvp(t, v), "off by exactly 2"),
    ],
)
def test_buggy_torch_code_is_caught_with_the_same_hints(assertion, fn, match):
    with pytest.raises(AssertionError, match=match):
        assertion(fn, FAMILY, dtype=torch.float64)


def test_torch_trpo_step_without_square_root_is_named():
    def no_sqrt(theta, g, max_kl=0.01):
        x = natural_gradient(theta, g)
        return 2 * max_kl / (g * x).sum(-1, keepdim=True) * x

    with pytest.raises(AssertionError, match="square root"):
        assert_trpo_step_close(no_sqrt, FAMILY, max_kl=0.01, dtype=torch.float64)


N = 4000


def _torch_scores(theta, seed):
    gen = torch.Generator().manual_seed(int(seed))
    theta = theta.detach()
    x = theta[0] + theta[1] * torch.randn(N, generator=gen, dtype=theta.dtype)
    one = torch.func.grad(lambda th, xi: Normal(th[0], th[1]).log_prob(xi))
    return torch.func.vmap(one, in_dims=(None, 0))(theta, x)  # (N, P)


def outer_mean(theta, key):
    """MC estimate of E[s sᵀ]; key arrives as an int64 seed (one per batch entry)."""
    if theta.ndim == 2:
        return torch.stack([outer_mean(t, k) for t, k in zip(theta, key, strict=True)])
    S = _torch_scores(theta, key)
    return S.T @ S / N


def squared_mean(theta, key):
    if theta.ndim == 2:
        return torch.stack(
            [squared_mean(t, k) for t, k in zip(theta, key, strict=True)]
        )
    m = _torch_scores(theta, key).mean(0)
    return torch.outer(m, m)


def test_torch_fisher_estimator_keys_are_seeds():
    assert_fisher_estimate_close(
        outer_mean, FAMILY, n_samples=N, dtype=torch.float64, backend="torch"
    )
    with pytest.raises(AssertionError, match=r"\(E\[s\]\)"):
        assert_fisher_estimate_close(
            squared_mean, FAMILY, n_samples=N, dtype=torch.float64
        )


def test_torch_kfac_factors():
    def factors(W, S):
        p = torch.softmax(S @ W.T, -1)
        A = S.T @ S / S.shape[0]
        G = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]).mean(0)
        return A, G

    states = np.random.default_rng(3).standard_normal((6, 2))
    pol = sf.policy("linear_softmax", K=3, d=2)
    assert_kfac_close(factors, pol, states, dtype=torch.float64, backend="torch")
    with pytest.raises(AssertionError, match="1/B²"):
        assert_kfac_close(
            lambda W, S: (factors(W, S)[0], factors(W, S)[1] / 36),
            pol,
            states,
            dtype=torch.float64,
        )


def test_bad_backend_and_torch_errors_are_clear():
    with pytest.raises(ValueError, match="backend must be None, 'jax' or 'torch'"):
        check_backend("numpy")

    def broken(theta, x):
        raise RuntimeError("boom in user code")

    with pytest.raises(AssertionError, match="boom in user code") as info:
        assert_log_prob_close(broken, FAMILY, backend="torch")
    assert isinstance(info.value.__cause__, RuntimeError)

    def wrong_shape(theta, x):
        return torch.zeros(3, dtype=theta.dtype)

    with pytest.raises(AssertionError, match=r"returned shape \(3,\); expected \(\)"):
        assert_log_prob_close(wrong_shape, FAMILY, backend="torch")


def test_detection_keeps_both_errors():
    def torch_bug(theta):
        return torch.exp(theta) + "x"

    caller = adapt(torch_bug, None)
    with pytest.raises(TypeError) as info:
        caller(np.ones(2))
    assert "called with torch tensors instead" in "".join(info.value.__notes__)
