"""PyTorch kernels (generated/torch/) against their JAX twins (generated/).

Both are printed from the same expressions; these tests hold the printing:
every function of every family, float64, 1e-12 relative (floor: 1e-12 of the
largest entry, as tests/codegen/test_kernels.py), at random points and at the
extreme points of tests/codegen/test_stability.py.
"""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import symfisher as sf
from symfisher.derive.numeric import random_point
from tests.codegen.test_kernels import _sample_x
from tests.codegen.test_stability import PAIRS, POINTS
from tests.conftest import CATALOG

jax.config.update("jax_enable_x64", True)

RTOL = 1e-12
ATOL_REL = 1e-12
#: functions of (theta, x), (theta,), (theta, v) and (theta_p, theta_q)
OF_X = ("log_prob", "score", "hessian_log_prob")
OF_THETA = ("fisher", "fisher_diag", "fisher_sqrt")


def _close(got, want, what):
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    # the floor is 1e-12 of the largest finite entry of each point (axis 0)
    mag = np.where(np.isfinite(want), np.abs(want), 0.0).reshape(len(want), -1)
    scale = np.max(mag, axis=1).reshape((-1,) + (1,) * (want.ndim - 1))
    np.testing.assert_allclose(
        got, want, rtol=RTOL, atol=0.0, equal_nan=True, err_msg=what
    ) if False else None
    bad = ~(
        (np.abs(got - want) <= RTOL * np.abs(want) + ATOL_REL * scale)
        | (got == want)
        | (np.isnan(got) & np.isnan(want))
    )
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} entries differ; first at "
        f"{tuple(int(i) for i in np.argwhere(bad)[0])}: torch "
        f"{got[bad][0]!r} vs JAX {want[bad][0]!r}"
    )


def _points(name):
    """``(theta, x, theta_q)`` rows: 4 random points, then the extreme points."""
    fam = sf.family(name)
    rng = random.Random(f"torch:{name}")
    thetas, xs, qs = [], [], []
    for _ in range(4):
        pt, q = random_point(fam, rng), random_point(fam, rng)
        thetas.append([pt[p] for p in fam.params])
        qs.append([q[p] for p in fam.params])
        x = _sample_x(fam, rng, pt)
        xs.append(x[0] if len(x) == 1 else x)
    for pt in POINTS.get(name, []):
        for x in pt.xs:
            thetas.append(list(pt.theta))
            qs.append(list(pt.theta))
            xs.append(list(x) if isinstance(x, tuple) else x)
    for pair in PAIRS.get(name, []):
        thetas.append(list(pair.p))
        qs.append(list(pair.q))
        xs.append(xs[0])
    return np.array(thetas), np.array(xs, dtype=np.float64), np.array(qs)


def _both(name, fn, *args):
    """``fn`` of the JAX and of the PyTorch module at float64 ``args``, or two errors."""
    j, t = sf.kernels(name), sf.kernels(name, backend="torch")
    try:
        want = np.asarray(getattr(j, fn)(*[jnp.asarray(a) for a in args]))
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            getattr(t, fn)(*[torch.as_tensor(a) for a in args])
        return None, None
    got = getattr(t, fn)(*[torch.as_tensor(a) for a in args])
    return got, want


@pytest.mark.parametrize("name", CATALOG)
def test_torch_kernels_equal_jax(name):
    theta, x, q = _points(name)
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, theta.shape)
    cases = [(fn, (theta, x)) for fn in OF_X]
    cases += [(fn, (theta,)) for fn in OF_THETA]
    cases += [("fvp", (theta, v)), ("kl", (theta, q))]
    cases += [("cramer_rao", (theta, np.float64(3.0)))]
    cases += [("natural_gradient", (theta, v, np.float64(lam))) for lam in (0.0, 0.1)]
    if hasattr(sf.kernels(name), "entropy"):
        cases.append(("entropy", (theta,)))
    for fn, args in cases:
        got, want = _both(name, fn, *args)
        if want is not None:
            _close(got, want, f"{name}.{fn}")
    t, j = sf.kernels(name, backend="torch"), sf.kernels(name)
    for got, want in zip(
        t.param_checks(torch.as_tensor(theta)), j.param_checks(theta), strict=True
    ):
        np.testing.assert_array_equal(got.numpy(), np.asarray(want))
