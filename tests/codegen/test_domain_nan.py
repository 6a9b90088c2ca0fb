"""Parameters outside the domain give NaN in every kernel (the README's promise)."""

import random

import jax
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point
from tests.codegen.test_kernels import _sample_x
from tests.conftest import CATALOG

jax.config.update("jax_enable_x64", True)


def _bounds(name):
    """(parameter index, a value just outside one finite bound), one per bound."""
    fam = sf.family(name)
    out = []
    for i, dom in enumerate(fam.domains):
        if isinstance(dom, sp.Interval):
            if dom.inf.is_finite:
                out.append((i, float(dom.inf) - (0.0 if dom.left_open else 0.5)))
            if dom.sup.is_finite:
                out.append((i, float(dom.sup) + (0.0 if dom.right_open else 0.5)))
    return out


CASES = [
    (name, i, v)
    for name in CATALOG
    if not sf.family(name).constraints
    for i, v in _bounds(name)
]


def _inside(name, label="p"):
    fam = sf.family(name)
    rng = random.Random(f"domain:{name}:{label}")
    pt = random_point(fam, rng)
    theta = np.array([pt[p] for p in fam.params], dtype=float)
    x = np.array(_sample_x(fam, rng, pt), dtype=float)
    return theta, (x[0] if len(x) == 1 else x)


def _outputs(k, theta, theta_q, x):
    P = theta.shape[-1]
    out = {
        "log_prob": k.log_prob(theta, x),
        "score": k.score(theta, x),
        "hessian_log_prob": k.hessian_log_prob(theta, x),
    }
    if not k.PROVENANCE["fisher"].startswith("not available"):
        out["fisher"] = k.fisher(theta)
        out["fisher_diag"] = k.fisher_diag(theta)
        out["fvp"] = k.fvp(theta, np.ones(P))
        out["cramer_rao"] = k.cramer_rao(theta, 10)
    if not k.PROVENANCE["kl"].startswith("not available"):
        out["kl p outside"] = k.kl(theta, theta_q)
        out["kl q outside"] = k.kl(theta_q, theta)
    out["entropy"] = k.entropy(theta)
    return out


#: families whose domain is not a box: points outside it, by hand
STRUCTURED = [
    ("categorical", [0.6, 0.7]),  # p_0 + p_1 > 1
    ("categorical", [-0.1, 0.3]),
    ("categorical", [1.2, 0.1]),
    ("categorical_softmax", [0.0, np.inf, 1.0]),
    ("categorical_softmax", [0.0, np.nan, 1.0]),
]


def test_every_bounded_catalog_family_is_covered():
    bounded = {n for n in CATALOG if sf.kernels(n).DOMAIN_CHECKS}
    assert bounded <= {n for n, _, _ in CASES} | {n for n, _ in STRUCTURED}


@pytest.mark.parametrize(("name", "theta"), STRUCTURED)
def test_outside_a_structured_domain_every_kernel_is_nan(name, theta):
    k = sf.kernels(name)
    bad = np.array(theta)
    good = np.full(bad.shape, 1.0 / (bad.size + 1))
    assert not np.all(np.stack(k.param_checks(bad)))
    for fn, got in _outputs(k, bad, good, 1).items():
        assert np.all(np.isnan(got)), f"{name}.{fn} at {bad}: {got}"


@pytest.mark.parametrize(("name", "index", "value"), CASES)
def test_outside_one_bound_every_kernel_is_nan(name, index, value):
    k = sf.kernels(name)
    theta_in, x = _inside(name)
    bad = theta_in.copy()
    bad[index] = value
    assert not np.all(np.stack(k.param_checks(bad)))
    for fn, got in _outputs(k, bad, theta_in, x).items():
        assert np.all(np.isnan(got)), f"{name}.{fn} at {bad}: {got}"


@pytest.mark.parametrize("name", CATALOG)
def test_inside_the_domain_nothing_is_nan(name):
    k = sf.kernels(name)
    theta, x = _inside(name)
    theta_q = _inside(name, "q")[0]
    for fn, got in _outputs(k, theta, theta_q, x).items():
        assert not np.any(np.isnan(got)), f"{name}.{fn} at {theta}: {got}"


@pytest.mark.parametrize("name", [n for n, _, _ in CASES[:1]] + ["gamma"])
def test_a_batch_mixes_valid_and_invalid_rows(name):
    k = sf.kernels(name)
    theta, x = _inside(name)
    i, v = _bounds(name)[0]
    bad = theta.copy()
    bad[i] = v
    batch = np.stack([theta, bad, theta])
    lp = np.asarray(k.log_prob(batch, x))
    assert np.isnan(lp[1]) and np.all(np.isfinite(lp[[0, 2]]) | np.isinf(lp[[0, 2]]))
    s = np.asarray(k.score(batch, x))
    assert s.shape == (3, theta.size) and np.all(np.isnan(s[1]))
    assert not np.any(np.isnan(s[[0, 2]]))
