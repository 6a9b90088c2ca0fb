"""Emitted JAX kernels against their SymPy expressions (50-digit evaluation)."""

import importlib.util
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.codegen.emit import module_source
from symfisher.derive.numeric import random_point
from tests.conftest import CATALOG

jax.config.update("jax_enable_x64", True)

WITH_FISHER = [n for n in CATALOG if n != "uniform"]


def _load(tmp_path, name):
    d = sf.derive(name)
    path = tmp_path / f"{name}.py"
    path.write_text(module_source(d))
    spec = importlib.util.spec_from_file_location(f"gen_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return d, mod


def _sample_x(fam, rng):
    if fam.is_finite:
        from symfisher.families.family import finite_values

        return [int(rng.choice(finite_values(s))) for s in fam.supports]
    out = []
    for s in fam.supports:
        lo, hi = (
            float(s.inf) if s.inf.is_number else 0.0,
            float(s.sup) if s.sup.is_number else 1.0,
        )
        lo, hi = max(lo, -3.0), min(hi, 3.0)
        out.append(lo + (hi - lo) * rng.uniform(0.1, 0.9))
    return out


@pytest.mark.parametrize("name", WITH_FISHER)
def test_kernels_equal_sympy(tmp_path, name):
    d, k = _load(tmp_path, name)
    fam = d.family
    rng = random.Random(name)
    for _ in range(3):
        pt = random_point(fam, rng)
        theta = jnp.array([pt[p] for p in fam.params])
        sub = {p: sp.Float(v, 50) for p, v in pt.items()}
        F = np.array(d.fisher.evalf(50, subs=sub).tolist(), dtype=float)
        np.testing.assert_allclose(k.fisher(theta), F, rtol=1e-10, atol=1e-13)
        v = jnp.array([rng.uniform(-1, 1) for _ in fam.params])
        np.testing.assert_allclose(
            k.fvp(theta, v), F @ np.asarray(v), rtol=1e-10, atol=1e-13
        )
        xs = _sample_x(fam, rng)
        x = jnp.array(xs[0] if len(xs) == 1 else xs, dtype=float)
        xsub = {
            **sub,
            **{
                xv: sp.Float(val, 50) for xv, val in zip(fam.variables, xs, strict=True)
            },
        }
        want_lp = float(fam.log_density.evalf(50, subs=xsub))
        np.testing.assert_allclose(
            k.log_prob(theta, x), want_lp, rtol=1e-10, atol=1e-12
        )
        want_s = np.array(d.score.evalf(50, subs=xsub).tolist(), dtype=float).ravel()
        np.testing.assert_allclose(k.score(theta, x), want_s, rtol=1e-10, atol=1e-12)
        if d.kl is not None:
            H = jax.hessian(k.kl, argnums=1)(theta, theta)
            np.testing.assert_allclose(H, F, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["normal", "gamma", "categorical_softmax"])
def test_kernels_broadcast_over_batches(tmp_path, name):
    d, k = _load(tmp_path, name)
    rng = random.Random(0)
    pts = [random_point(d.family, rng) for _ in range(4)]
    theta = jnp.array([[pt[p] for p in d.family.params] for pt in pts]).reshape(
        2, 2, -1
    )
    P = d.family.n_params
    assert k.fisher(theta).shape == (2, 2, P, P)
    np.testing.assert_allclose(k.fisher(theta)[1, 0], k.fisher(theta[1, 0]), rtol=1e-14)
    assert jax.jit(k.fisher)(theta).shape == (2, 2, P, P)
