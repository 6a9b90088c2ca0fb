"""check_theta_function: the engine a function-of-theta assertion is built on."""

import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import polygamma

from symfisher.testing.compare import check_theta_function

KW = dict(
    points=None,
    n_points=3,
    seed=0,
    rtol=None,
    atol=0.0,
    dtype=None,
    batched=True,
    allow_boundary=False,
    path=None,
    scale=lambda e, theta: np.abs(e),
    scale_text="scale = |F_ii|",
)


def gamma_fisher_diag(t):  # (shape a, rate b): [psi'(a), a / b²]
    a, b = t[..., 0], t[..., 1]
    return jnp.stack([polygamma(1, a), a / b**2], -1)


def test_a_kernel_assertion_in_one_call():
    check_theta_function(gamma_fisher_diag, "gamma", "fisher_diag", **KW)
    with pytest.raises(AssertionError, match=r"entry 1 \(b\)"):
        check_theta_function(
            lambda t: gamma_fisher_diag(t) * jnp.array([1.0, 2.0]),
            "gamma",
            "fisher_diag",
            **KW,
        )
    with pytest.raises(AssertionError, match="reduces over the batch axis"):
        check_theta_function(
            lambda t: jnp.sum(gamma_fisher_diag(t).reshape(-1, 2), 0),
            "gamma",
            "fisher_diag",
            **KW,
        )
