"""assert_log_prob_close / assert_score_close: correct code passes, committed bugs are named.

Correct implementations are written here by hand from textbook densities, or
taken from numpyro and distrax; never from the generated kernels. Each buggy
one reproduces a bug class of issue 13 and the test asserts the oracle's
message names it. Tolerances: the oracle's defaults (rtol = sqrt(eps) of the
output dtype).
"""

import distrax
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
import pytest

from symfisher.testing import assert_log_prob_close, assert_score_close

LOG_2PI = jnp.log(2 * jnp.pi)


def normal_lp(t, x):
    mu, s = t[..., 0], t[..., 1]
    return -0.5 * ((x - mu) / s) ** 2 - jnp.log(s) - 0.5 * LOG_2PI


def logstd_lp(t, x):
    d = x.shape[-1]
    mu, w = t[..., :d], t[..., d:]
    return jnp.sum(-0.5 * ((x - mu) * jnp.exp(-w)) ** 2 - w - 0.5 * LOG_2PI, -1)


def tanh_action_lp(t, a):
    """log p(a) from the action: Gaussian at atanh(a), Jacobian log1p(-a) + log1p(a)."""
    return normal_lp(t, jnp.arctanh(a)) - jnp.log1p(-a) - jnp.log1p(a)


def tanh_latent_lp(t, u):
    """SAC's stable form from the pre-squash u: log(1 - tanh²u) = 2(log 2 - u - softplus(-2u))."""
    return normal_lp(t, u) - 2 * (jnp.log(2.0) - u - jax.nn.softplus(-2 * u))


def categorical_lp(t, x):
    p = jnp.concatenate([t, 1 - jnp.sum(t, -1, keepdims=True)], -1)
    return jnp.take_along_axis(jnp.log(p), x[..., None], -1)[..., 0]


def beta_lp(t, x):
    a, b = t[..., 0], t[..., 1]
    g = jax.scipy.special.gammaln
    return (a - 1) * jnp.log(x) + (b - 1) * jnp.log1p(-x) + g(a + b) - g(a) - g(b)


# --------------------------------------------------------------------------
# correct code passes


@pytest.mark.parametrize(
    ("fn", "family", "kw"),
    [  # float32, boundary and more seeds: tests/testing/test_sweep.py
        (logstd_lp, "diag_gaussian", {}),
        (categorical_lp, "categorical", {}),
        (tanh_action_lp, "tanh_gaussian", {}),
        (tanh_latent_lp, "tanh_gaussian", {"latent": True}),
    ],
)
def test_hand_written_log_probs_pass(fn, family, kw):
    assert_log_prob_close(fn, family, n_points=2, n_samples=2, **kw)


def test_numpyro_and_distrax_pass():
    def np_beta(t, x):
        return nd.Beta(t[..., 0], t[..., 1]).log_prob(x)

    def dx_tanh(t, a):
        base = distrax.Normal(t[..., 0], t[..., 1])
        return distrax.Transformed(base, distrax.Tanh()).log_prob(a)

    assert_log_prob_close(np_beta, "beta", n_points=2, n_samples=4)
    assert_log_prob_close(
        dx_tanh, "tanh_gaussian", n_points=2, n_samples=4, dtype=jnp.float32
    )


def test_score_by_autodiff_passes_also_batched_and_float32():
    score = jax.jit(jnp.vectorize(jax.grad(beta_lp), signature="(p),()->(p)"))
    assert_score_close(score, "beta", n_points=2, n_samples=4)
    assert_score_close(score, "beta", n_points=2, n_samples=4, dtype=jnp.float32)
    assert_score_close(jax.grad(normal_lp), "normal", n_points=2, batched=False)


# --------------------------------------------------------------------------
# bugs are caught and named


def _message(fn, family, **kw):
    with pytest.raises(AssertionError) as e:
        assert_log_prob_close(fn, family, n_points=2, n_samples=4, **kw)
    return str(e.value)


def test_wrong_constant():
    msg = _message(lambda t, x: normal_lp(t, x) + 0.5 * LOG_2PI, "normal")
    assert "wrong normalising constant" in msg and "½ log 2π" in msg


def test_sigma_as_variance():
    def lp(t, x):  # N(x; mu, var=sigma)
        return -0.5 * (x - t[..., 0]) ** 2 / t[..., 1] - 0.5 * jnp.log(
            2 * jnp.pi * t[..., 1]
        )

    assert "σ treated as the variance" in _message(lp, "normal")


def test_tanh_jacobian_at_the_squashed_action():
    def lp(t, a):
        return normal_lp(t, jnp.arctanh(a)) - jnp.log1p(-(jnp.tanh(a) ** 2))

    assert "Jacobian is evaluated at the squashed action" in _message(
        lp, "tanh_gaussian"
    )


def test_jacobian_missing_on_unsquashed_samples():
    msg = _message(lambda t, a: normal_lp(t, jnp.arctanh(a)), "tanh_gaussian")
    assert "tanh Jacobian is missing" in msg


def test_atanh_of_clipped_action_in_float32():
    def lp(t, u):  # SAC-style: squash, then invert with a clip
        a = jnp.clip(jnp.tanh(u), -1 + 1e-6, 1 - 1e-6)
        return normal_lp(t, jnp.arctanh(a)) - jnp.log(1 - a**2)

    msg = _message(lp, "tanh_gaussian", latent=True, dtype=jnp.float32)
    assert "rounds to ±1 in float32" in msg and "softplus(-2u)" in msg


def test_log_one_minus_tanh_squared_plus_eps_in_float32():
    def lp(t, u):
        return normal_lp(t, u) - jnp.log(1 - jnp.tanh(u) ** 2 + 1e-6)

    msg = _message(lp, "tanh_gaussian", latent=True, dtype=jnp.float32)
    assert "largest error at u = " in msg and "log(1 - tanh(u)² + ε)" in msg


def test_action_clip_near_one_in_float32():
    def lp(t, a):
        a = jnp.clip(a, -1 + 1e-6, 1 - 1e-6)
        return normal_lp(t, jnp.arctanh(a)) - jnp.log1p(-a) - jnp.log1p(a)

    assert "wrong only within 1e-6 of ±1" in _message(
        lp, "tanh_gaussian", dtype=jnp.float32
    )


def test_jacobian_on_the_unsquashed_sample():
    def lp(t, u):
        return normal_lp(t, u) - jnp.log(jnp.abs(1 - u**2))

    assert "applied to the unsquashed sample u" in _message(
        lp, "tanh_gaussian", latent=True
    )


def test_rare_category_in_float32():
    def naive(z, x):  # log of a softmax underflows for a rare category
        return jnp.take_along_axis(jnp.log(jax.nn.softmax(z)), x[..., None], -1)[..., 0]

    def stable(z, x):
        return jnp.take_along_axis(jax.nn.log_softmax(z), x[..., None], -1)[..., 0]

    rare = [[0.0, 2.0, -110.0], [1.0, -0.5, 0.3]]  # p_2 ~ 1e-48: 0 in float32
    kw = {"dtype": jnp.float32, "n_samples": 2}
    assert_log_prob_close(stable, "categorical_softmax", rare, **kw)
    with pytest.raises(AssertionError, match="returned -inf where the reference"):
        assert_log_prob_close(naive, "categorical_softmax", rare, **kw)


def test_per_dimension_log_prob_not_summed():
    def lp(t, x):
        d = x.shape[-1]
        return -0.5 * ((x - t[..., :d]) * jnp.exp(-t[..., d:])) ** 2 - t[..., d:]

    assert "not summed over the action's dimensions" in _message(lp, "diag_gaussian")


def test_probabilities_normalised_differently():
    def lp(t, x):  # normalises the K-1 free probabilities, forgetting the last
        return jnp.log(jnp.append(t, 1 - t.sum()) / t.sum())[x]

    assert "normalised differently from the sampler" in _message(
        lp, "categorical", batched=False
    )


def test_zero_probability_nan_on_the_boundary():
    def lp(t, x):  # one-hot times log p: 0 * log 0 = NaN at p_i = 0
        p = jnp.append(t, 1 - t.sum())
        return jnp.sum(jax.nn.one_hot(x, 3) * jnp.log(p))

    assert_log_prob_close(lp, "categorical", n_points=2, batched=False)
    msg = _message(lp, "categorical", batched=False, allow_boundary=True)
    assert "NaN" in msg and "xlogy" in msg


def test_batch_sum_is_named():
    msg = _message(lambda t, x: jnp.sum(normal_lp(t, x)), "normal")
    assert "reduces over the batch axis (it returns the sum over the batch)" in msg


def test_score_sign_error():
    def score(t, x):
        return -jnp.vectorize(jax.grad(beta_lp), signature="(p),()->(p)")(t, x)

    with pytest.raises(AssertionError, match="a sign error"):
        assert_score_close(score, "beta", n_points=2, n_samples=4)


def test_latent_form_is_for_tanh_only():
    with pytest.raises(ValueError, match="latent=True is for tanh_gaussian only"):
        assert_log_prob_close(normal_lp, "normal", latent=True)
