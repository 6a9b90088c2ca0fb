"""Closed-form FVPs (generated kernels) against double back-propagation of the KL.

Tolerance (float64): normwise relative 1e-12, i.e. |a - b|_inf <= 1e-12 |b|_inf:
the double-backprop route differentiates a KL whose terms are O(1) at these
points twice; its round-off is a few hundred eps (measured <= 2e-14), and a
wrong Fisher is off by O(1).
"""

import random

import jax.numpy as jnp
import numpy as np
import pytest

import symfisher as sf
from symfisher import natural
from symfisher.derive.numeric import random_point
from symfisher.errors import FamilyError

RTOL = 1e-12
#: families with a closed-form KL (laplace, student_t: none; uniform: non-regular)
WITH_KL = [n for n in sf.families() if n not in ("laplace", "student_t", "uniform")]


def close(a, b, rtol=RTOL):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.abs(a - b).max() <= rtol * np.abs(b).max(), (a, b)


@pytest.mark.parametrize("name", WITH_KL)
def test_fvp_routes_agree(name):
    fam = sf.family(name)
    rng = random.Random(3)
    vs = np.random.default_rng(3).standard_normal((3, fam.n_params))
    for v in vs:
        pt = random_point(fam, rng)
        theta = jnp.asarray([pt[p] for p in fam.params])
        v = jnp.asarray(v)
        ref = natural.fvp_double_backprop(name, theta, v)
        close(natural.fvp(name, theta, v), ref)
        close(natural.fvp_forward_over_reverse(name, theta, v), ref)


def test_fvp_is_batched_and_takes_family_objects():
    fam = sf.family("categorical_softmax", K=6)
    theta = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6)))
    v = jnp.ones(6)
    out = natural.fvp(fam, theta, v)
    assert out.shape == (4, 6)
    # F 1 = 0 for softmax logits: |F 1| is round-off, <= K eps max p
    assert np.abs(np.asarray(out)).max() <= 6 * np.finfo(np.float64).eps


def test_double_backprop_works_on_pytrees():
    k = sf.kernels("normal_logstd")

    def kl(p, q):  # parameters as a dict
        return k.kl(jnp.stack([p["mu"], p["omega"]]), jnp.stack([q["mu"], q["omega"]]))

    theta = {"mu": jnp.array(0.3), "omega": jnp.array(-0.4)}
    v = {"mu": jnp.array(1.0), "omega": jnp.array(2.0)}
    out = natural.fvp_double_backprop(kl, theta, v)
    close(out["mu"], jnp.exp(0.8))  # F = diag(exp(-2 omega), 2)
    close(out["omega"], 4.0)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="v must have the last-axis length of theta"):
        natural.fvp("gamma", jnp.ones(2), jnp.ones(3))
    with pytest.raises(FamilyError, match="unknown family 'nope'"):
        natural.fvp("nope", jnp.ones(2), jnp.ones(2))
    with pytest.raises(
        ValueError, match="v must have the same tree structure as theta"
    ):
        natural.fvp_double_backprop("gamma", jnp.ones(2), [jnp.ones(2)])
    with pytest.raises(ValueError, match="leaf 0 has shape"):
        natural.fvp_double_backprop("gamma", jnp.ones(2), jnp.ones(3))
    with pytest.raises(TypeError, match="floating"):
        natural.fvp("gamma", jnp.ones(2, int), jnp.ones(2))
