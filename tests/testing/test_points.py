"""Points on the boundary of the domain and rounded points (symfisher.testing.points)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symfisher.errors import DomainError
from symfisher.testing import assert_kl_close
from symfisher.testing.points import rounded_points, zero_probability
from symfisher.testing.setup import _resolve


def kl_categorical(p, q):
    pf = jnp.append(p, 1 - p.sum())
    qf = jnp.append(q, 1 - q.sum())
    return jnp.sum(jax.scipy.special.xlogy(pf, pf) - jax.scipy.special.xlogy(pf, qf))


def test_caller_boundary_points_need_allow_boundary():
    pts = [[0.0, 0.4], [0.3, 0.3]]
    with pytest.raises(DomainError, match="p_0"):
        assert_kl_close(kl_categorical, "categorical", pts, batched=False)
    assert_kl_close(
        kl_categorical, "categorical", pts, batched=False, allow_boundary=True
    )


def test_seeded_boundary_points_and_zero_outcomes():
    fam = _resolve("categorical", None)
    pts = rounded_points(fam, None, 3, 0, np.dtype(np.float64), allow_boundary=True)
    assert pts[0, 0] == 0.0 and pts[1].sum() == pytest.approx(1.0)
    assert zero_probability(fam, pts[0], np.array(0.0))
    assert not zero_probability(fam, pts[0], np.array(1.0))
    soft = _resolve("categorical_softmax", None)
    z = rounded_points(soft, None, 2, 0, np.dtype(np.float32), allow_boundary=True)
    assert z[0, 0] == -np.inf and zero_probability(soft, z[0], np.array(0))


def test_allow_boundary_for_a_family_without_one_is_refused():
    with pytest.raises(ValueError, match="no boundary points with a finite limit"):
        assert_kl_close(kl_categorical, "normal", allow_boundary=True)


def test_rounded_points_are_what_float32_receives():
    fam = _resolve("normal", None)
    pts = rounded_points(fam, [[0.1, 0.3]], 1, 0, np.dtype(np.float32))
    assert pts[0, 0] == float(np.float32(0.1)) and pts[0, 0] != 0.1
