"""The oracle (symfisher.testing) passes independent correct code and catches classic bugs.

Correct implementations here are written by hand from textbook formulas and
differentiated with ``jax.hessian`` (never from the generated kernels); each
buggy one reproduces a classic mistake and the test asserts that the oracle
raises, and that its message names the pattern.

Tolerances: the oracle's defaults (rtol = sqrt(eps) of the output dtype, atol 0;
see the module docstring of symfisher.testing); the tests run in float64.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from jax.scipy.sparse.linalg import cg

import symfisher as sf
from symfisher.errors import DomainError, FamilyError
from symfisher.testing import (
    assert_fisher_close,
    assert_fvp_close,
    assert_kl_close,
    assert_natural_gradient_close,
    assert_policy_fvp_close,
    direction_strategy,
    params_strategy,
)

# --------------------------------------------------------------------------
# hand-written KLs (textbook formulas) and their Hessians


def kl_softmax(zp, zq):
    """KL(p || q) of categoricals from logits, on log-probabilities."""
    lp, lq = jax.nn.log_softmax(zp), jax.nn.log_softmax(zq)
    return jnp.sum(jnp.exp(lp) * (lp - lq))


def kl_diag_gauss(tp, tq):
    """KL of diagonal Gaussians in (mu, log sigma): 1/2 sum(...) per coordinate."""
    d = tp.shape[-1] // 2
    mp, wp, mq, wq = tp[:d], tp[d:], tq[:d], tq[d:]
    return jnp.sum(
        wq - wp + (jnp.exp(2 * wp) + (mp - mq) ** 2) / (2 * jnp.exp(2 * wq)) - 0.5
    )


def kl_gamma(tp, tq):
    """KL of Gamma(shape a, rate b) distributions."""
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


def fisher_of(kl):
    """F(theta) = Hessian in q of KL(p || q) at q = p."""
    return lambda theta: jax.hessian(lambda q: kl(jax.lax.stop_gradient(theta), q))(
        theta
    )


def fvp_of(kl):
    return lambda theta, v: fisher_of(kl)(theta) @ v


HAND = {
    "categorical_softmax": kl_softmax,
    "diag_gaussian": kl_diag_gauss,
    "normal_logstd": kl_diag_gauss,
    "gamma": kl_gamma,
}


# --------------------------------------------------------------------------
# correct code passes


@pytest.mark.parametrize("name", sorted(HAND))
def test_correct_fisher_fvp_kl_pass(name):
    kl = HAND[name]
    # vectorised over a leading batch axis: the oracle also checks batched calls
    vec = jnp.vectorize
    assert_fisher_close(jax.jit(vec(fisher_of(kl), signature="(p)->(p,p)")), name)
    assert_fvp_close(jax.jit(vec(fvp_of(kl), signature="(p),(p)->(p)")), name)
    assert_kl_close(jax.jit(vec(kl, signature="(p),(p)->()")), name)
    # a single-point function with batched=False
    assert_kl_close(kl, name, batched=False)


def test_family_object_of_another_size_passes():
    fam = sf.family("categorical_softmax", K=5)
    assert_fvp_close(fvp_of(kl_softmax), fam, n_points=3, batched=False)
    assert_kl_close(kl_softmax, fam, n_points=3, batched=False)
    # and a wrong size is a clear shape error
    with pytest.raises(AssertionError, match=r"returned shape \(3,\); expected \(5,\)"):
        assert_fvp_close(lambda t, v: v[:3], fam, n_points=1)


def test_caller_points_and_float32():
    pts = [[0.3, -0.2, 1.0], [1.5, 0.0, -1.0]]
    assert_fvp_close(fvp_of(kl_softmax), "categorical_softmax", pts, batched=False)
    # float32 inputs: the default rtol becomes sqrt(eps32) ~ 3.5e-4
    assert_fvp_close(
        fvp_of(kl_softmax),
        "categorical_softmax",
        pts,
        dtype=jnp.float32,
        batched=False,
    )


def damped_ng(kl, damping):
    def ng(theta, g):
        F = fisher_of(kl)(theta)
        return jnp.linalg.solve(F + damping * jnp.eye(len(g)), g)

    return ng


def test_correct_natural_gradient_passes():
    assert_natural_gradient_close(damped_ng(kl_gamma, 0.0), "gamma", batched=False)
    assert_natural_gradient_close(
        damped_ng(kl_softmax, 0.1), "categorical_softmax", damping=0.1, batched=False
    )

    def pinv_ng(theta, g):  # minimum-norm solution on the singular softmax Fisher
        return jnp.linalg.pinv(fisher_of(kl_softmax)(theta), rtol=1e-10) @ g

    assert_natural_gradient_close(pinv_ng, "categorical_softmax", batched=False)


# --------------------------------------------------------------------------
# classic bug 1: categorical KL on raw logits


def kl_raw_logits(zp, zq):
    return jnp.sum(jax.nn.softmax(zp) * (zp - zq))


def test_raw_logits_kl_is_caught():
    with pytest.raises(
        AssertionError, match="raw logits instead of log-probabilities"
    ) as e:
        assert_kl_close(kl_raw_logits, "categorical_softmax")
    assert "expected" in str(e.value) and "theta_p" in str(e.value)


def test_fvp_from_raw_logits_kl_is_caught():
    with pytest.raises(AssertionError, match="raw logits"):
        assert_fvp_close(fvp_of(kl_raw_logits), "categorical_softmax")


# --------------------------------------------------------------------------
# classic bug 2: the Fisher for sigma used with a log-sigma parameterisation


def fisher_sigma_formula(theta):
    """diag(1/sigma^2, 2/sigma^2): the Fisher in (mu, sigma), fed log sigma."""
    sigma = jnp.exp(theta[1])
    return jnp.diag(jnp.array([1 / sigma**2, 2 / sigma**2]))


def test_sigma_fisher_with_log_sigma_is_caught():
    with pytest.raises(AssertionError, match="Fisher for σ used with log σ") as e:
        assert_fisher_close(fisher_sigma_formula, "normal_logstd")
    assert "entry 1, 1 (omega, omega)" in str(e.value)


def test_sigma_fvp_with_log_sigma_is_caught_for_diag_gaussian():
    def fvp(theta, v):
        d = theta.shape[0] // 2
        inv_var = jnp.exp(-2 * theta[d:])
        return jnp.concatenate([inv_var, 2 * inv_var]) * v

    with pytest.raises(AssertionError, match="Fisher for σ used with log σ"):
        assert_fvp_close(fvp, sf.family("diag_gaussian", d=3))


def test_constant_factor_on_log_sigma_entries_is_named():
    def fisher(theta):  # F_omega = 1 instead of 2
        return jnp.diag(jnp.array([jnp.exp(-2 * theta[1]), 1.0]))

    with pytest.raises(AssertionError, match=r"off by exactly 0\.5 on log σ entries"):
        assert_fisher_close(fisher, "normal_logstd")


# --------------------------------------------------------------------------
# classic bug 3: the empirical Fisher where the true Fisher was meant

LABELS = jnp.array([0, 2, 2, 1, 0, 2, 2, 2, 1, 2])  # observed actions


def empirical_fisher(theta):
    """Mean outer product of the scores of observed labels."""
    scores = jax.vmap(jax.grad(lambda z, y: jax.nn.log_softmax(z)[y]), (None, 0))(
        theta, LABELS
    )
    return scores.T @ scores / len(LABELS)


def test_empirical_fisher_is_caught():
    with pytest.raises(AssertionError, match="empirical Fisher") as e:
        assert_fisher_close(empirical_fisher, "categorical_softmax")
    assert "weights w = [0.2, 0.2, 0.6]" in str(e.value)


def test_empirical_fvp_is_caught():
    with pytest.raises(AssertionError, match="empirical Fisher"):
        assert_fvp_close(lambda t, v: empirical_fisher(t) @ v, "categorical_softmax")


def test_one_sample_empirical_fisher_of_a_continuous_family_is_caught():
    def fisher(theta):
        s = jax.grad(lambda t: -t[1] - (0.7 - t[0]) ** 2 * jnp.exp(-2 * t[1]) / 2)(
            theta
        )
        return jnp.outer(s, s)

    with pytest.raises(AssertionError, match="rank 1 but the Fisher has rank 2"):
        assert_fisher_close(fisher, "normal_logstd")


# --------------------------------------------------------------------------
# classic bug 4: a KL missing its 1/2


def kl_diag_gauss_no_half(tp, tq):
    d = tp.shape[-1] // 2
    mp, wp, mq, wq = tp[:d], tp[d:], tq[:d], tq[d:]
    return jnp.sum(
        2 * (wq - wp) + (jnp.exp(2 * wp) + (mp - mq) ** 2) / jnp.exp(2 * wq) - 1
    )


def test_kl_missing_half_is_caught():
    with pytest.raises(AssertionError, match="KL missing its 1/2"):
        assert_kl_close(kl_diag_gauss_no_half, "diag_gaussian")


def test_fvp_of_kl_missing_half_is_caught():
    with pytest.raises(AssertionError, match="off by exactly 2 everywhere"):
        assert_fvp_close(fvp_of(kl_diag_gauss_no_half), "diag_gaussian")


# --------------------------------------------------------------------------
# classic bug 5: conjugate gradient without damping on the singular softmax Fisher


def undamped_cg(theta, g):
    x, _ = cg(lambda v: fvp_of(kl_softmax)(theta, v), g, tol=0.0, maxiter=50)
    return x


def test_undamped_cg_on_singular_softmax_fisher_is_caught():
    with pytest.raises(AssertionError, match=r"damping|null direction|non-finite") as e:
        assert_natural_gradient_close(undamped_cg, "categorical_softmax", damping=0.1)
    assert "singular" in str(e.value) or "not applied" in str(e.value)


def test_plain_gradient_is_caught():
    with pytest.raises(AssertionError, match="plain gradient"):
        assert_natural_gradient_close(lambda t, g: g, "gamma")


# --------------------------------------------------------------------------
# bad input


def test_bad_input_errors_name_the_problem():
    with pytest.raises(FamilyError, match="unknown family 'nope'"):
        assert_fvp_close(fvp_of(kl_softmax), "nope")
    with pytest.raises(ValueError, match=r"points must have shape \(n, 3\)"):
        assert_fvp_close(fvp_of(kl_softmax), "categorical_softmax", [[0.0, 1.0]])
    with pytest.raises(DomainError, match=r"a=-1\.0 is outside its domain"):
        assert_fisher_close(fisher_of(kl_gamma), "gamma", [[-1.0, 1.0]])
    with pytest.raises(ValueError, match="damping must be >= 0"):
        assert_natural_gradient_close(damped_ng(kl_gamma, 0.0), "gamma", damping=-1.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        assert_kl_close(kl_gamma, "gamma", [[1.0, 1.0]])
    with pytest.raises(ValueError, match="vectors must have shape"):
        assert_fvp_close(
            fvp_of(kl_gamma), "gamma", [[1.0, 1.0]], vectors=[[1.0, 2.0, 3.0]]
        )
    with pytest.raises(
        AssertionError, match=r"returned shape \(2, 1\); expected \(2,\)"
    ):
        assert_fvp_close(lambda t, v: v[:, None], "gamma")


def test_message_shows_point_expected_got_and_tolerance():
    with pytest.raises(AssertionError) as e:
        assert_fisher_close(
            lambda t: 1.001 * fisher_of(kl_gamma)(t), "gamma", n_points=2
        )
    msg = str(e.value)
    assert "at 2 of 2 points" in msg and "theta = [" in msg
    assert "expected" in msg and "got" in msg and "rtol * scale" in msg
    assert "off by a constant factor 1.001" in msg


# --------------------------------------------------------------------------
# policies


def mlp(sizes, seed):
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a)), jnp.zeros(b))
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


@pytest.fixture(scope="module")
def gauss_policy():
    params = {"mlp": mlp([4, 8, 2], 0), "log_std": jnp.array([-0.3, 0.2])}
    states = jnp.asarray(np.random.default_rng(1).standard_normal((16, 4)))
    return params, states


def trpo_fvp(kl_per_state):
    """The TRPO double backprop with a hand-written KL: grad(grad(mean KL) . v)."""

    def fvp(params, states, v):
        old = jax.lax.stop_gradient(gauss_apply(params, states))

        def mean_kl(p):
            return jnp.mean(jax.vmap(kl_per_state)(old, gauss_apply(p, states)))

        def gv(p):
            g = jax.grad(mean_kl)(p)
            return sum(
                jnp.vdot(a, b)
                for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v), strict=True)
            )

        return jax.grad(gv)(params)

    return fvp


def test_policy_fvp_oracle_passes_trpo_and_catches_bugs(gauss_policy):
    params, states = gauss_policy
    assert_policy_fvp_close(
        trpo_fvp(kl_diag_gauss), gauss_apply, params, states, family="diag_gaussian"
    )
    with pytest.raises(AssertionError, match="off by exactly 2 everywhere"):
        assert_policy_fvp_close(
            trpo_fvp(kl_diag_gauss_no_half),
            gauss_apply,
            params,
            states,
            family="diag_gaussian",
        )

    def summed(params, states, v):
        return jax.tree.map(
            lambda a: 16 * a, trpo_fvp(kl_diag_gauss)(params, states, v)
        )

    with pytest.raises(AssertionError, match="sum over states instead of a mean"):
        assert_policy_fvp_close(
            summed, gauss_apply, params, states, family="diag_gaussian"
        )


# --------------------------------------------------------------------------
# Hypothesis strategies


@pytest.mark.parametrize("name", sf.families())
def test_params_strategy_draws_valid_points(name):
    fam = sf.family(name)
    k = sf.kernels(name)

    @given(theta=params_strategy(name))
    def check(theta):
        assert theta.shape == (fam.n_params,)
        fam.point(list(theta))  # raises DomainError outside the domain
        assert all(bool(np.all(ok)) for ok in k.param_checks(jnp.asarray(theta)))

    check()


def test_params_strategy_with_the_oracle():
    @given(theta=params_strategy("gamma"), v=direction_strategy("gamma"))
    def check(theta, v):
        assert_fvp_close(fvp_of(kl_gamma), "gamma", [theta], vectors=[v], batched=False)

    check()


def test_params_strategy_for_a_sized_family_and_bad_bounds():
    fam = sf.family("categorical", K=6)

    @given(theta=params_strategy(fam))
    def check(theta):
        assert theta.shape == (5,) and theta.min() > 0 and theta.sum() < 1

    check()
    with pytest.raises(ValueError, match="real_bound"):
        params_strategy("normal", real_bound=-1.0)
