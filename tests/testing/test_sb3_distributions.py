"""The oracle on Stable-Baselines3's action distributions, as the library ships them.

Each adapter only reshapes: family parameters ``theta[..., :]`` with leading
batch axes become SB3's ``(batch, dim)`` inputs and back. What SB3 computes is
untouched. Findings the tests hold (stable-baselines3 2.9.2):

* Diagonal Gaussian, Categorical and Bernoulli log-probabilities and
  entropies are right (float32 and float64); the squashed Gaussian has no
  entropy (``None``).
* ``kl_divergence`` of two diagonal Gaussians is per action dimension (a torch
  ``Normal`` without ``Independent``): shape ``(batch, d)``, not ``(batch,)``.
* The squashed Gaussian's log-probability uses ``log(1 - tanh(u)^2 + 1e-6)``
  and ``atanh(clamp(a))``: wrong by up to tens of nats near saturation.
"""

from __future__ import annotations

import pytest
import torch
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    SquashedDiagGaussianDistribution,
    kl_divergence,
)

from symfisher.testing import (
    assert_entropy_close,
    assert_kl_close,
    assert_log_prob_close,
)

D = 2  # diag_gaussian action dimensions: theta = (mu_1, mu_2, omega_1, omega_2)
K = 3  # categorical_softmax logits
DTYPES = [torch.float32, torch.float64]


def _diag(theta):
    th = theta.reshape(-1, 2 * D)
    return DiagGaussianDistribution(D).proba_distribution(th[:, :D], th[:, D:])


def diag_log_prob(theta, x):
    return _diag(theta).log_prob(x.reshape(-1, D)).reshape(theta.shape[:-1])


def diag_entropy(theta):
    return _diag(theta).entropy().reshape(theta.shape[:-1])


def diag_kl(theta_p, theta_q):  # SB3's result, reshaped to the batch: (..., d)
    out = kl_divergence(_diag(theta_p), _diag(theta_q))
    return out.reshape(*theta_p.shape[:-1], *out.shape[1:])


def _cat(theta):
    return CategoricalDistribution(K).proba_distribution(theta.reshape(-1, K))


def cat_log_prob(theta, x):
    return _cat(theta).log_prob(x.reshape(-1)).reshape(theta.shape[:-1])


def cat_entropy(theta):
    return _cat(theta).entropy().reshape(theta.shape[:-1])


def cat_kl(theta_p, theta_q):
    return kl_divergence(_cat(theta_p), _cat(theta_q)).reshape(theta_p.shape[:-1])


def _bern(theta):
    return BernoulliDistribution(1).proba_distribution(theta.reshape(-1, 1))


def bern_log_prob(theta, x):
    x = x.reshape(-1, 1).to(theta.dtype)
    return _bern(theta).log_prob(x).reshape(theta.shape[:-1])


def bern_entropy(theta):
    return _bern(theta).entropy().reshape(theta.shape[:-1])


def bern_kl(theta_p, theta_q):
    return kl_divergence(_bern(theta_p), _bern(theta_q)).reshape(theta_p.shape[:-1])


def _squashed(theta):  # tanh_gaussian: theta = (mu, sigma)
    th = theta.reshape(-1, 2)
    return SquashedDiagGaussianDistribution(1).proba_distribution(
        th[:, :1], th[:, 1:].log()
    )


def squashed_log_prob(theta, a):
    return _squashed(theta).log_prob(a.reshape(-1, 1)).reshape(theta.shape[:-1])


def squashed_log_prob_latent(theta, u):
    """SAC's way: the Gaussian at u, the Jacobian at a = tanh(u)."""
    u = u.reshape(-1, 1)
    dist = _squashed(theta)
    return dist.log_prob(torch.tanh(u), u).reshape(theta.shape[:-1])


FAMILIES = {
    "diag": ("diag_gaussian", {"d": D}),
    "cat": ("categorical_softmax", {"K": K}),
    "bern": ("bernoulli_logit", {}),
}


def _family(key):
    import symfisher as sf

    name, kw = FAMILIES[key]
    return sf.family(name, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "key, fn",
    [("diag", diag_log_prob), ("cat", cat_log_prob), ("bern", bern_log_prob)],
)
def test_sb3_log_probs_pass(key, fn, dtype):
    assert_log_prob_close(fn, _family(key), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "key, fn", [("diag", diag_entropy), ("cat", cat_entropy), ("bern", bern_entropy)]
)
def test_sb3_entropies_pass(key, fn, dtype):
    assert_entropy_close(fn, _family(key), dtype=dtype)


def test_sb3_squashed_gaussian_has_no_entropy():
    """SB3 returns None (SAC estimates it by -log_prob.mean()): nothing to test."""
    assert _squashed(torch.tensor([[0.0, 1.0]])).entropy() is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key, fn", [("cat", cat_kl), ("bern", bern_kl)])
def test_sb3_kls_pass(key, fn, dtype):
    assert_kl_close(fn, _family(key), dtype=dtype)


def test_sb3_diag_gaussian_kl_is_per_dimension():
    with pytest.raises(AssertionError, match=r"returned shape \(2,\); expected \(\)"):
        assert_kl_close(diag_kl, _family("diag"), dtype=torch.float64)
    # summed over the action dimensions it is right
    assert_kl_close(lambda p, q: diag_kl(p, q).sum(-1), _family("diag"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sb3_squashed_log_prob_is_inaccurate_near_saturation(dtype):
    with pytest.raises(AssertionError, match=r"log\(1 - a² \+ ε\) with ε = 1e-06"):
        assert_log_prob_close(squashed_log_prob, "tanh_gaussian", dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sb3_squashed_latent_log_prob_loses_the_tail(dtype):
    """SAC's call (Gaussian at u, Jacobian at tanh u) is 8.8 nats off at |u| = 12."""
    with pytest.raises(AssertionError, match=r"tens of nats at \|u\| = 12"):
        assert_log_prob_close(
            squashed_log_prob_latent, "tanh_gaussian", latent=True, dtype=dtype
        )
