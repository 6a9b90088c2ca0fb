"""Generated kernels (generated/) against their SymPy expressions at 50 digits."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point
from symfisher.families.family import finite_values
from tests.conftest import CATALOG

jax.config.update("jax_enable_x64", True)

WITH_FISHER = [n for n in CATALOG if n != "uniform"]
WITH_KL = [n for n in WITH_FISHER if n != "student_t"]
RTOL = 1e-12
# Kernels whose formulas are differences of nearly equal terms at random points
# get an absolute floor relative to the largest entry (1e-12 of it).
ATOL_REL = 1e-12


def _sample_x(fam, rng, pt):
    supports = [s.xreplace(pt) for s in fam.supports]
    if fam.is_finite:
        return [int(rng.choice(finite_values(s))) for s in supports]
    out = []
    for s in supports:
        if isinstance(s, sp.Range):
            out.append(int(s.inf) + rng.randint(0, 6))
            continue
        lo = float(s.inf) if s.inf.is_finite else -3.0
        hi = float(s.sup) if s.sup.is_finite else lo + 6.0
        out.append(lo + (hi - lo) * rng.uniform(0.05, 0.95))
    return out


def _num(m):
    return np.array(sp.Matrix(m).tolist(), dtype=float)


def _close(got, want):
    want = np.asarray(want, dtype=float)
    scale = np.max(np.abs(want)) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_REL * scale)


def _cases(name, n=3):
    d = sf.derive(name)
    fam = d.family
    rng = random.Random(f"kernels:{name}")
    for _ in range(n):
        pt = random_point(fam, rng)
        q = random_point(fam, rng)
        sub = {p: sp.Float(v, 50) for p, v in pt.items()}
        sub.update(
            {
                s: sp.Float(q[p], 50)
                for s, p in zip(d.kl_primed, fam.params, strict=True)
            }
        )
        xs = _sample_x(fam, rng, pt)
        sub.update({v: sp.Float(x, 50) for v, x in zip(fam.variables, xs, strict=True)})
        theta = jnp.array([pt[p] for p in fam.params])
        theta_q = jnp.array([q[p] for p in fam.params])
        x = jnp.array(xs[0] if len(xs) == 1 else xs, dtype=float)
        yield d, sub, theta, theta_q, x, rng


@pytest.mark.parametrize("name", CATALOG)
def test_log_prob_score_hessian_equal_sympy(name):
    k = sf.kernels(name)
    for d, sub, theta, _, x, _ in _cases(name):
        _close(k.log_prob(theta, x), float(d.family.log_density.evalf(50, subs=sub)))
        _close(k.score(theta, x), _num(d.score.evalf(50, subs=sub)).ravel())
        _close(k.hessian_log_prob(theta, x), _num(d.hessian.evalf(50, subs=sub)))


@pytest.mark.parametrize("name", WITH_FISHER)
def test_fisher_fvp_cramer_rao_equal_sympy(name):
    k = sf.kernels(name)
    for d, sub, theta, _, _, rng in _cases(name):
        F = _num(d.fisher.evalf(50, subs=sub))
        _close(k.fisher(theta), F)
        _close(k.fisher_diag(theta), np.diag(F))
        v = np.array([rng.uniform(-1, 1) for _ in d.family.params])
        _close(k.fvp(theta, jnp.asarray(v)), F @ v)
        n = 7
        if name == "categorical_softmax":  # singular: Moore-Penrose inverse
            want = np.linalg.pinv(F) / n
        else:
            want = _num(d.fisher.inv().evalf(50, subs=sub)) / n
        _close(k.cramer_rao(theta, n), want)


@pytest.mark.parametrize("name", WITH_KL)
def test_kl_equals_sympy_and_its_hessian_is_fisher(name):
    k = sf.kernels(name)
    for d, sub, theta, theta_q, _, _ in _cases(name):
        _close(k.kl(theta, theta_q), float(d.kl.evalf(50, subs=sub)))
        assert abs(float(k.kl(theta, theta))) < 1e-12
        H = jax.hessian(k.kl, argnums=1)(theta, theta)
        np.testing.assert_allclose(H, k.fisher(theta), rtol=1e-9, atol=1e-12)


FINITE = [n for n in WITH_FISHER if sf.family(n).is_finite]


@pytest.mark.parametrize("name", FINITE)
def test_fisher_is_minus_expected_hessian_of_log_prob(name):
    """Finite supports: F = -sum_x p(x) d2 log p(x), with jax.hessian of log_prob."""
    k = sf.kernels(name)
    fam = sf.family(name)
    (support,) = fam.supports
    for _, _, theta, _, _, _ in _cases(name, n=2):
        H = sum(
            np.exp(k.log_prob(theta, float(x)))
            * jax.hessian(k.log_prob)(theta, float(x))
            for x in finite_values(support.xreplace(fam.point(list(theta))))
        )
        np.testing.assert_allclose(-H, k.fisher(theta), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", WITH_FISHER)
def test_kernels_jit_vmap_grad_float32(name):
    k = sf.kernels(name)
    _, _, theta, theta_q, x, _ = next(_cases(name, n=1))
    P = theta.shape[-1]
    batch = jnp.stack([theta, theta_q])
    xb = jnp.stack([x, x])
    funcs = {
        "log_prob": lambda t: k.log_prob(t, x),
        "score": lambda t: k.score(t, x),
        "hessian_log_prob": lambda t: k.hessian_log_prob(t, x),
        "fisher": k.fisher,
        "fisher_diag": k.fisher_diag,
        "fvp": lambda t: k.fvp(t, jnp.ones_like(t)),
        "cramer_rao": lambda t: k.cramer_rao(t, 3),
    }
    if name in WITH_KL:
        funcs["kl"] = lambda t: k.kl(t, theta_q.astype(t.dtype))
    for fname, f in funcs.items():
        want = f(theta)
        np.testing.assert_allclose(
            jax.jit(f)(theta), want, rtol=1e-11, atol=1e-15, err_msg=fname
        )
        np.testing.assert_allclose(
            jax.vmap(f)(batch)[0], want, rtol=1e-11, atol=1e-15, err_msg=fname
        )
        g = jax.grad(lambda t: jnp.sum(f(t)))(theta)  # noqa: B023
        assert g.shape == (P,) and np.all(np.isfinite(g)), (fname, g)
        out32 = f(theta.astype(jnp.float32))
        assert out32.dtype == jnp.float32, fname
        # float32: rounding of the inputs and of cancelling terms, relative to
        # the larger of the output's and the parameters' scale
        scale = max(np.max(np.abs(want)), np.max(np.abs(theta)), 1.0)
        np.testing.assert_allclose(
            out32, want, rtol=2e-4, atol=2e-5 * scale, err_msg=fname
        )
    # leading axes broadcast: theta (2, P) with x (2,) or (2, dim)
    lp = k.log_prob(batch, xb)
    assert lp.shape == (2,)
    np.testing.assert_allclose(lp[1], k.log_prob(theta_q, x), rtol=1e-14)
    assert k.fisher(batch[None]).shape == (1, 2, P, P)


@pytest.mark.parametrize("name", CATALOG)
def test_bad_theta_gets_a_clear_error(name):
    k = sf.kernels(name)
    P = sf.family(name).n_params
    wrong = {"categorical_softmax": 1, "categorical": 0, "diag_gaussian": 3}.get(
        name, P + 1
    )
    with pytest.raises(ValueError, match=r"theta\.shape\[-1\] must be"):
        k.score(jnp.ones(wrong), 0.5)
    with pytest.raises(TypeError, match="floating array"):
        k.log_prob(jnp.ones(P, dtype=jnp.int32), 0)


def test_unknown_family_names_the_available_kernels():
    with pytest.raises(sf.FamilyError, match="available: bernoulli"):
        sf.kernels("gaussian_mixture")
    with pytest.raises(sf.FamilyError, match="family name"):
        sf.kernels("../etc/passwd")


@pytest.mark.parametrize("name", ["student_t"])
def test_missing_closed_form_kl_is_quadrature_and_says_so(name):
    """No closed-form KL: the kernel is generated quadrature (tests/codegen/test_quadrature.py)."""
    k = sf.kernels(name)
    assert k.PROVENANCE["kl"].startswith("quadrature: ")
    assert "Accuracy:" in k.kl.__doc__
    assert float(k.kl(jnp.ones(2), jnp.ones(2))) == 0.0


def test_non_regular_family_refuses_fisher_and_says_why():
    k = sf.kernels("uniform")
    assert k.REGULAR is False
    with pytest.raises(NotImplementedError, match="support"):
        k.fisher(jnp.ones(1))
    # log_prob and kl still work: KL(U(0,1) || U(0,2)) = log 2
    np.testing.assert_allclose(
        k.kl(jnp.ones(1), 2 * jnp.ones(1)), np.log(2), rtol=1e-15
    )


def test_out_of_domain_is_nan_and_check_params_names_it():
    k = sf.kernels("normal")
    assert np.isnan(k.log_prob(jnp.array([0.0, -1.0]), 0.3))
    sf.check_params("normal", jnp.array([[0.0, 1.0], [2.0, 3.0]]))
    with pytest.raises(
        sf.DomainError, match=r"normal: sigma must be > 0 \(fails at batch index \(1,\)"
    ):
        sf.check_params("normal", jnp.array([[0.0, 1.0], [0.0, -1.0]]))
    with pytest.raises(sf.DomainError, match="sum of p_0"):
        sf.check_params("categorical", jnp.array([0.6, 0.5]))
    with pytest.raises(sf.DomainError, match="must be finite"):
        sf.check_params("categorical_softmax", jnp.array([0.0, jnp.nan, 1.0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_params_rejects_non_finite_values_naming_the_parameter(bad):
    with pytest.raises(sf.DomainError, match=r"finite .*mu at batch index \(1,\)"):
        sf.check_params("normal", np.array([[0.0, 1.0], [bad, 1.0]]))
    with pytest.raises(sf.DomainError, match=r"finite .*sigma at batch index \(\)"):
        sf.check_params("normal", np.array([0.0, bad]))
