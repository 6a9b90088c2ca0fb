"""Hints that used to mislead now name the right pattern (issue 13).

Each function is a hand-written Fisher or solve with one deliberate defect.
"""

import jax
import jax.numpy as jnp
import pytest

import symfisher as sf
from symfisher.testing import assert_fisher_close, assert_natural_gradient_close


def diag_gauss_fisher(theta):
    d = theta.shape[-1] // 2
    inv_var = jnp.exp(-2 * theta[d:])
    return jnp.diag(jnp.concatenate([inv_var, 2 * jnp.ones(d)]))


def softmax_fisher(z):
    p = jax.nn.softmax(z)
    return jnp.diag(p) - jnp.outer(p, p)


def test_zero_log_sigma_block_is_not_called_sigma_for_log_sigma():
    def fisher(theta):
        d = theta.shape[-1] // 2
        return diag_gauss_fisher(theta).at[d:, d:].set(0.0)

    with pytest.raises(AssertionError, match="log σ block is missing") as e:
        assert_fisher_close(fisher, "diag_gaussian", batched=False)
    assert "Fisher for σ used with log σ" not in str(e.value)


def test_fisher_divided_by_action_dimensions_is_named():
    with pytest.raises(AssertionError, match=r"1/d = 1/3") as e:
        assert_fisher_close(
            lambda t: diag_gauss_fisher(t) / 3,
            sf.family("diag_gaussian", d=3),
            batched=False,
        )
    assert "applied twice" not in str(e.value)


def test_probabilities_passed_as_logits_is_not_called_empirical():
    with pytest.raises(AssertionError, match="probabilities passed where logits") as e:
        assert_fisher_close(
            lambda z: softmax_fisher(jax.nn.softmax(z)),
            "categorical_softmax",
            batched=False,
        )
    assert "empirical" not in str(e.value)


def test_damping_differs_instead_of_add_damping():
    def ng(z, g):
        return jnp.linalg.solve(softmax_fisher(z) + 1e-3 * jnp.eye(3), g)

    assert_natural_gradient_close(
        ng, "categorical_softmax", damping=1e-3, batched=False
    )
    with pytest.raises(AssertionError, match="the damping differs") as e:
        assert_natural_gradient_close(ng, "categorical_softmax", batched=False)
    msg = str(e.value)
    assert "λ = 0.001" in msg and "add damping" not in msg
