"""NPG step size, TRPO line search, and the invariance of natural-gradient steps.

Float64 throughout. Exact identities (the step's quadratic KL equals max_kl, the
tangent map between parameterisations) are checked to 1e-12 relative: a handful
of flops on O(1) numbers. Orders of convergence are checked as ratios of
differences at step sizes h and h/2 (or KL budgets d and d/4): 4 for a second-
order difference, 2 for a first-order one, within +-10% (the next term of the
expansion contributes O(h), here h <= 1e-2).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symfisher import natural

MU, SIGMA = 0.3, 0.5


def objective_sigma(t):
    """J(mu, sigma) = E[-(x - 2)^2] = -((mu - 2)^2 + sigma^2)."""
    return -((t[0] - 2.0) ** 2 + t[1] ** 2)


def objective_logstd(t):
    return objective_sigma(jnp.stack([t[0], jnp.exp(t[1])]))


THETA_A = jnp.asarray([MU, SIGMA])  # normal (mu, sigma)
THETA_B = jnp.asarray([MU, np.log(SIGMA)])  # normal_logstd (mu, log sigma)


def npg(family, theta, objective, max_kl):
    g = jax.grad(objective)(theta)
    return natural.npg_step(g, lambda v: natural.fvp(family, theta, v), max_kl, iters=4)


def moved(delta_a, delta_b):
    """(mu, sigma) after each step, and their difference."""
    a = THETA_A + delta_a
    b = jnp.stack([THETA_B[0] + delta_b[0], jnp.exp(THETA_B[1] + delta_b[1])])
    return float(jnp.linalg.norm(a - b))


def test_npg_step_has_the_requested_kl_and_is_invariant_to_first_order():
    sa = npg("normal", THETA_A, objective_sigma, 1e-4)
    sb = npg("normal_logstd", THETA_B, objective_logstd, 1e-4)
    for s, fam, theta in ((sa, "normal", THETA_A), (sb, "normal_logstd", THETA_B)):
        quad_kl = 0.5 * jnp.vdot(s.step, natural.fvp(fam, theta, s.step))
        np.testing.assert_allclose(quad_kl, 1e-4, rtol=1e-12)
    # g^T F^-1 g is a scalar of the distribution, not of the coordinates
    np.testing.assert_allclose(sa.quadratic, sb.quadratic, rtol=1e-12)
    # the tangent map d sigma = sigma d(log sigma) carries one step onto the other
    np.testing.assert_allclose(sa.step, [sb.step[0], SIGMA * sb.step[1]], rtol=1e-12)


def test_natural_steps_move_the_distribution_identically_plain_steps_do_not():
    def npg_gap(max_kl):
        sa = npg("normal", THETA_A, objective_sigma, max_kl).step
        sb = npg("normal_logstd", THETA_B, objective_logstd, max_kl).step
        return moved(sa, sb)

    def plain_gap(h):
        return moved(
            h * jax.grad(objective_sigma)(THETA_A),
            h * jax.grad(objective_logstd)(THETA_B),
        )

    # step length ~ sqrt(max_kl): a second-order gap shrinks 4x when max_kl does
    assert 3.6 <= npg_gap(1e-4) / npg_gap(0.25e-4) <= 4.4
    # plain gradient steps differ at first order: the gap halves with the step
    assert 1.8 <= plain_gap(1e-2) / plain_gap(0.5e-2) <= 2.2
    # and the first-order gap is large: sigma^2 = 1/4 scales the sigma direction
    ga, gb = jax.grad(objective_sigma)(THETA_A), jax.grad(objective_logstd)(THETA_B)
    assert abs(float(ga[1] - SIGMA * gb[1])) > 0.5 * abs(float(ga[1]))


def kl_logstd(p, q):
    return natural.family_kl("normal_logstd")(p, q)


def test_line_search_accepts_backtracks_and_rejects():
    # quadratic-model KL 1e-3 / 1.5: the true KL of the full step exceeds the model
    # by O(sqrt(KL)) relative, well inside the line search's bound 1e-3
    s = npg("normal_logstd", THETA_B, objective_logstd, 1e-3 / 1.5)
    search = jax.jit(
        lambda step: natural.line_search(
            objective_logstd,
            kl_logstd,
            THETA_B,
            step,
            1e-3,
            expected_improvement=s.expected_improvement,
        )
    )
    full = search(s.step)
    assert (
        bool(full.accepted)
        and float(full.fraction) == 1.0
        and int(full.backtracks) == 1
    )
    assert 0 < float(full.kl) <= 1e-3 and float(full.improvement) > 0
    np.testing.assert_allclose(full.params, THETA_B + s.step, rtol=1e-15)
    # a step 10x too long: KL ~ 100 x max_kl, so at least 4 halvings (100 / 2^(2*4) < 1)
    long = search(10 * s.step)
    assert (
        bool(long.accepted)
        and float(long.fraction) <= 1 / 16
        and float(long.kl) <= 1e-3
    )
    # the wrong direction never improves: nothing accepted, parameters unchanged
    wrong = search(-s.step)
    assert not bool(wrong.accepted) and int(wrong.backtracks) == 10
    np.testing.assert_array_equal(wrong.params, THETA_B)


def test_zero_gradient_gives_a_zero_step():
    s = natural.npg_step(
        jnp.zeros(2), lambda v: natural.fvp("gamma", jnp.ones(2), v), 0.01
    )
    assert np.all(np.asarray(s.step) == 0) and float(s.step_size) == 0


def test_bad_arguments():
    fvp = lambda v: v  # noqa: E731
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        natural.npg_step(jnp.ones(2), fvp, 0.0)
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        natural.npg_step(jnp.ones(2), fvp, -1.0)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        natural.npg_step(jnp.ones(2), fvp, 0.01, damping=-1.0)
    args = (objective_logstd, kl_logstd, THETA_B, jnp.ones(2))
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        natural.line_search(*args, -0.1)
    with pytest.raises(ValueError, match=r"backtrack must lie in \(0, 1\)"):
        natural.line_search(*args, 0.1, backtrack=1.5)
    with pytest.raises(ValueError, match="max_backtracks must be an integer >= 1"):
        natural.line_search(*args, 0.1, max_backtracks=0)
