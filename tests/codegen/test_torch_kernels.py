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


#: (family, function) -> the largest relative difference allowed at the extreme
#: points (never at the random ones), measured and explained: there the printed
#: formula cancels, so each backend is off the 50-digit value by about
#: cond x 1e-16, and the two differ by that much (figures from
#: mpmath: gamma log_prob at a=1e4, b=3, x=1e4/3: torch 1.3e-14, JAX 3.3e-12
#: off; gamma kl a=1e4 || 1.001e4: torch 1.3e-9, JAX 1.6e-9 off; beta score
#: a=b=1e4, x=0.5: torch 8.9e-11, JAX 1.8e-11 off; von_mises F_11 at
#: kappa=1e3 (1 - A/kappa - A^2, A = I1/I0): both 1.4e-11 off, torch's
#: vectorised i0e/i1e round differently in a batch; gamma entropy
#: a + (1 - a) psi(a) + lgamma(a) - log b at a=1e4 cancels O(a log a) terms to
#: O(log a): torch 2.5e-12, JAX 7.1e-12 off; beta entropy at a=1e4, b=2.5:
#: torch 2.4e-13, JAX 4.1e-12 off).
CONDITIONED = {
    ("gamma", "log_prob"): 1e-11,
    ("gamma", "kl"): 1e-8,
    ("beta", "log_prob"): 1e-10,
    ("beta", "score"): 1e-9,
    ("beta", "kl"): 1e-7,
    ("gamma", "entropy"): 1e-11,
    ("beta", "entropy"): 1e-11,
    ("von_mises", "cramer_rao"): 1e-9,
    ("von_mises", "natural_gradient"): 1e-9,
}
N_RANDOM = 4


def _close(got, want, what, rtol=RTOL):
    """Entries equal to ``rtol`` (an array over axis 0, the points, or a number)."""
    got = (
        got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    )
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    # the floor is 1e-12 of the largest finite entry of each point (axis 0)
    lead = (-1,) + (1,) * (want.ndim - 1)
    mag = np.where(np.isfinite(want), np.abs(want), 0.0).reshape(len(want), -1)
    scale = np.max(mag, axis=1).reshape(lead)
    rtol = np.broadcast_to(np.asarray(rtol, dtype=float), (len(want),)).reshape(lead)
    with np.errstate(invalid="ignore"):
        bad = ~(
            (np.abs(got - want) <= rtol * np.abs(want) + ATOL_REL * scale)
            | (got == want)
            | (np.isnan(got) & np.isnan(want))
        )
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} entries differ; first at "
        f"{tuple(int(i) for i in np.argwhere(bad)[0])}: torch "
        f"{got[bad][0]!r} vs JAX {want[bad][0]!r}"
    )


def _points(name):
    """``(theta, x, theta_q, extreme)`` rows: random points, then the extreme ones.

    ``extreme`` marks the rows of tests/codegen/test_stability.py's points.
    """
    fam = sf.family(name)
    rng = random.Random(f"torch:{name}")
    thetas, xs, qs = [], [], []
    for _ in range(N_RANDOM):
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
    return (
        np.array(thetas),
        np.array(xs, dtype=np.float64),
        np.array(qs),
        np.arange(len(thetas)) >= N_RANDOM,
    )


def _both(name, fn, *args, **static):
    """``fn`` of the JAX and of the PyTorch module at float64 ``args``,
    or ``(None, None)`` after checking that both raise ``NotImplementedError``.

    ``static`` keyword arguments (``damping``) reach both as Python numbers.
    """
    j, t = sf.kernels(name), sf.kernels(name, backend="torch")
    f = getattr(j, fn)
    try:
        # eager, as the PyTorch side runs: jit lets XLA reassociate (KL(p||p) of
        # normal_logstd becomes 1.1e-15 instead of 0)
        want = np.asarray(f(*map(jnp.asarray, args), **static))
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            getattr(t, fn)(*map(torch.as_tensor, args), **static)
        return None, None
    return getattr(t, fn)(*map(torch.as_tensor, args), **static), want


@pytest.mark.parametrize("name", CATALOG)
def test_torch_kernels_equal_jax(name):
    theta, x, q, extreme = _points(name)
    v = np.random.default_rng(0).uniform(-1, 1, theta.shape)
    cases = [(fn, (theta, x), {}) for fn in OF_X]
    cases += [(fn, (theta,), {}) for fn in OF_THETA]
    cases += [("fvp", (theta, v), {}), ("kl", (theta, q), {})]
    cases += [("cramer_rao", (theta, np.float64(3.0)), {})]
    cases += [("natural_gradient", (theta, v), {"damping": lam}) for lam in (0.0, 0.1)]
    if hasattr(sf.kernels(name), "entropy"):
        cases.append(("entropy", (theta,), {}))
    for fn, args, static in cases:
        got, want = _both(name, fn, *args, **static)
        if want is not None:
            rtol = np.where(extreme, CONDITIONED.get((name, fn), RTOL), RTOL)
            _close(got, want, f"{name}.{fn}", rtol)
    t, j = sf.kernels(name, backend="torch"), sf.kernels(name)
    for got, want in zip(
        t.param_checks(torch.as_tensor(theta)), j.param_checks(theta), strict=True
    ):
        np.testing.assert_array_equal(got.numpy(), np.asarray(want))
