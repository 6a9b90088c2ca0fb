"""Quadrature kernels of families with no closed form, against mpmath.

The references are mpmath tanh-sinh quadratures at ``REF_DPS`` digits, with error
estimates far below float64 rounding (50 digits cost 4-5x the time for no
difference in a float64 comparison).
"""

import itertools
import math
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.codegen.dense_module import dense_module
from symfisher.codegen.generate import module_text
from symfisher.codegen.printer import KernelPrinter
from symfisher.derive.numeric import expectation_numeric
from symfisher.families.family import Family
from symfisher.parse import parse_expr

jax.config.update("jax_enable_x64", True)

REALS = sp.Interval(-sp.oo, sp.oo)
POSITIVE = sp.Interval.open(0, sp.oo)
UNIT = sp.Interval.open(0, 1)
REF_DPS = 20  # working digits of the mpmath references


def _family(name, params, log_density, support, x=None):
    """A user family built directly (no normalisation check: these are textbook)."""
    syms = {n: sp.Symbol(n, **a) for n, (a, _) in params.items()}
    x = x if x is not None else sp.Symbol("x", real=True)
    return Family(
        name=name,
        params=tuple(syms.values()),
        domains=tuple(d for _, d in params.values()),
        variables=(x,),
        log_density=parse_expr(log_density, {**syms, x.name: x}),
        supports=(support,),
        description=f"user family {name}",
    )


#: user families with no closed-form Fisher today, the ranges their rule is for
USER = {
    # continuous on the reals, written with erf
    "skew_normal": (
        lambda: _family(
            "skew_normal",
            {
                "mu": ({"real": True}, REALS),
                "s": ({"positive": True}, POSITIVE),
                "alpha": ({"real": True}, REALS),
            },
            "log(2) - log(s) - log(2*pi)/2 - (x-mu)**2/(2*s**2)"
            " + log((1 + erf(alpha*(x-mu)/(s*sqrt(2))))/2)",
            REALS,
        ),
        None,
    ),
    # on (0, 1)
    "kumaraswamy": (
        lambda: _family(
            "kumaraswamy",
            {
                "a": ({"positive": True}, POSITIVE),
                "b": ({"positive": True}, POSITIVE),
            },
            "log(a) + log(b) + (a-1)*log(x) + (b-1)*log(1 - x**a)",
            UNIT,
            # positive, as define_family makes it on (0, 1): 1 - x**a prints
            # as -expm1(a log x)
            x=sp.Symbol("x", positive=True),
        ),
        {"b": (1.1, 4.0)},  # fisher_at (the reference) gives inf at b = 1
    ),
    # a count family
    "zip": (
        lambda: _family(
            "zip",
            {
                "pi": ({"positive": True}, UNIT),
                "lam": ({"positive": True}, POSITIVE),
            },
            "log(pi*(1 - sign(x)) + (1-pi)*exp(-lam)*lam**x/factorial(x))",
            sp.Range(0, sp.oo),
            x=sp.Symbol("x", integer=True, nonnegative=True),
        ),
        None,
    ),
}


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """name -> (derivation, kernel module), generated once per test module."""
    out = tmp_path_factory.mktemp("quadrature")
    got = {}
    for name, (make, ranges) in USER.items():
        d = sf.derive(make(), seconds=5)
        assert d.fisher is None and d.kl is None, name  # no closed form today
        path = out / f"{name}.py"
        path.write_text(module_text(d, ranges=ranges), encoding="utf-8")
        got[name] = (d, sf.kernels(name, path=out))
    return got


def _points(k, fam, n_random=1):
    """Corners and random points of the module's stated ranges."""
    box = [k.QUADRATURE_RANGES[p] for p in k.PARAMS]
    rng = random.Random(f"quadrature-test:{fam.name}")
    pts = list(itertools.product(*box))
    if len(pts) > 4:  # mpmath references are slow: a spread of corners
        pts = pts[::3]
    pts += [tuple(rng.uniform(a, b) for a, b in box) for _ in range(n_random)]
    return [p for p in pts if _valid(fam, p)]


def _valid(fam, p):
    try:
        fam.point(p)
        return True
    except sf.SymfisherError:
        return False


def _rel(got, want):
    want = np.asarray(want, dtype=float)
    return float(np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want)))


def _kl_reference(d, p, q):
    fam = d.family
    sub_q = {s: sp.Float(v, 50) for s, v in zip(fam.params, q, strict=True)}
    f = fam.log_density - fam.log_density.xreplace(sub_q)
    val, _ = expectation_numeric(
        fam, f, dict(zip(fam.params, p, strict=True)), dps=REF_DPS
    )
    return float(val)


@pytest.mark.parametrize("name", list(USER))
def test_provenance_names_closed_forms_and_quadrature(user, name):
    _, k = user[name]
    assert set(k.PROVENANCE) == {
        "log_prob",
        "score",
        "hessian_log_prob",
        "fisher",
        "fisher_diag",
        "fvp",
        "cramer_rao",
        "kl",
        "natural_gradient",
        "fisher_sqrt",
        "entropy",
    }
    for fn in ("log_prob", "score", "hessian_log_prob"):
        assert k.PROVENANCE[fn] == "closed form"
    with open(k.__file__, encoding="utf-8") as f:
        assert f.readline() == (
            f"# GENERATED by `symfisher.generate(family, out)` in Python "
            f"(user family {name!r}). DO NOT EDIT.\n"
        )
    for fn in ("fisher", "fisher_diag", "fvp", "cramer_rao", "kl"):
        assert k.PROVENANCE[fn].startswith("quadrature: "), k.PROVENANCE[fn]
        assert " nodes, " in k.PROVENANCE[fn] or " terms; " in k.PROVENANCE[fn]
        doc = getattr(k, fn).__doc__
        assert "Accuracy:" in doc and k.PROVENANCE[fn].removeprefix(
            "quadrature: "
        ) in " ".join(doc.split())
        for p, (lo, hi) in k.QUADRATURE_RANGES.items():
            assert f"{p} in [{lo:g}, {hi:g}]" in " ".join(doc.split())


@pytest.mark.parametrize("name", list(USER))
def test_entropy_matches_mpmath_within_its_stated_accuracy(user, name):
    d, k = user[name]
    quad = k.PROVENANCE["entropy"]
    assert (d.entropy is None) == quad.startswith("quadrature: "), quad
    acc = k.QUADRATURE_ACCURACY.get("entropy", 1e-12)
    doc = " ".join(k.entropy.__doc__.split())
    if d.entropy is None:
        assert "Accuracy:" in doc and quad.removeprefix("quadrature: ") in doc
    for p in _points(k, d.family)[:1]:  # an mpmath reference is slow
        want = d.entropy_at(p)
        assert want.provenance.startswith("numeric" if d.entropy is None else "closed")
        got = float(k.entropy(jnp.array(p)))
        assert abs(got - float(want)) <= acc * max(1.0, abs(float(want))) + 1e-12, (
            p,
            got,
            float(want),
        )


@pytest.mark.parametrize("name", list(USER))
def test_fisher_matches_mpmath_over_the_stated_ranges(user, name):
    d, k = user[name]
    acc = k.QUADRATURE_ACCURACY
    assert acc["fisher"] <= 1e-10, acc
    worst = {}
    pts = _points(k, d.family)
    if len(k.PARAMS) >= 3:  # an mpmath E[s s^T] costs ~5 s a point: 2 spread ones
        pts = [pts[0], pts[-1]]
    for p in pts:
        theta = jnp.array(p)
        want = d.fisher_at(p, dps=REF_DPS).value
        assert np.all(np.isfinite(want)), (p, want)
        got = k.fisher(theta)
        worst["fisher"] = max(worst.get("fisher", 0), _rel(got, want))
        worst["fisher_diag"] = max(
            worst.get("fisher_diag", 0), _rel(k.fisher_diag(theta), np.diag(want))
        )
        v = jnp.linspace(-1.0, 1.5, len(p))
        worst["fvp"] = max(
            worst.get("fvp", 0),
            float(np.max(np.abs(k.fvp(theta, v) - want @ np.asarray(v))))
            / float(np.linalg.norm(want, 2) * np.linalg.norm(v)),
        )
        if np.linalg.cond(want) < 1e8:
            worst["cramer_rao"] = max(
                worst.get("cramer_rao", 0),
                _rel(k.cramer_rao(theta, 7), np.linalg.inv(want) / 7),
            )
    print(name, {f: f"{e:.1e}" for f, e in worst.items()}, "claimed", acc)
    for fn, err in worst.items():
        assert err <= acc[fn], (fn, err, acc[fn])


@pytest.mark.parametrize("name", list(USER))
def test_kl_matches_mpmath(user, name):
    d, k = user[name]
    pts = _points(k, d.family)
    pts = pts[::2] if len(pts) > 4 else pts
    pairs = list(zip(pts, pts[1:] + pts[:1], strict=True))
    if len(k.PARAMS) >= 3:  # mpmath references are slow: one pair of spread points
        pairs = [(pts[0], pts[-1])]
    worst = 0.0
    for p, q in pairs:
        want = _kl_reference(d, p, q)
        got = float(k.kl(jnp.array(p), jnp.array(q)))
        worst = max(worst, abs(got - want) / abs(want))
    print(name, f"kl {worst:.1e}", "claimed", k.QUADRATURE_ACCURACY["kl"])
    assert worst <= k.QUADRATURE_ACCURACY["kl"]
    assert worst <= 1e-10


@pytest.mark.parametrize("name", list(USER))
def test_jit_vmap_grad_and_batches(user, name):
    d, k = user[name]
    pts = jnp.array(_points(k, d.family)[:4])
    F = k.fisher(pts)
    assert F.shape == (len(pts), len(k.PARAMS), len(k.PARAMS))
    np.testing.assert_allclose(jax.jit(k.fisher)(pts), F, rtol=1e-13, atol=0)
    np.testing.assert_allclose(jax.vmap(k.fisher)(pts), F, rtol=1e-13, atol=0)
    np.testing.assert_allclose(k.fisher(pts[1]), F[1], rtol=1e-13, atol=0)
    # leading batch axes broadcast: (2, 1, P) against (4, P)
    kl = k.kl(pts[:2, None, :], pts[None, :, :])
    assert kl.shape == (2, len(pts))
    np.testing.assert_allclose(kl[1, 1], 0.0, atol=1e-300)
    # the KL's Hessian in theta_q at theta_q = theta_p is the Fisher information
    th = pts[0]
    grad = jax.grad(lambda q: k.kl(th, q))(th)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12 * float(jnp.max(jnp.abs(F[0]))))
    hess = jax.jit(jax.hessian(lambda q: k.kl(th, q)))(th)
    assert _rel(hess, F[0]) < 1e-10
    # gradients flow through the parameters of the density (not the node map)
    g = jax.grad(lambda t: jnp.trace(k.fisher(t)))(th)
    eps = 1e-5
    fd = [
        (
            jnp.trace(k.fisher(th.at[i].add(eps)))
            - jnp.trace(k.fisher(th.at[i].add(-eps)))
        )
        / (2 * eps)
        for i in range(len(th))
    ]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8 * float(jnp.abs(g).max()))


@pytest.mark.parametrize("name", list(USER))
def test_float32_runs_and_stays_close(user, name):
    d, k = user[name]
    pts = _points(k, d.family)
    for p in pts:
        F64 = np.asarray(k.fisher(jnp.array(p)))
        F32 = k.fisher(jnp.array(p, dtype=jnp.float32))
        assert F32.dtype == jnp.float32
        assert _rel(F32, F64) < 1e-4, p
        kl32 = k.kl(
            jnp.array(p, dtype=jnp.float32), jnp.array(pts[0], dtype=jnp.float32)
        )
        assert kl32.dtype == jnp.float32 and bool(jnp.isfinite(kl32))


def _load(tmp_path, name, text):
    (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    return sf.kernels(name, path=tmp_path)


@pytest.mark.parametrize("name", ["gamma", "poisson"])
def test_forced_quadrature_equals_the_closed_form(tmp_path, name):
    """The (0, oo) exp-sinh rule and the count sum against closed-form Fisher and KL."""
    d = sf.derive(name)
    k = _load(tmp_path, name, dense_module(d, "0" * 64, numeric=True))
    closed = sf.kernels(name)
    assert k.PROVENANCE["fisher"].startswith("quadrature: ")
    assert k.PROVENANCE["log_prob"] == "closed form"
    pts = _points(k, d.family, n_random=3)
    for p in pts:
        theta = jnp.array(p)
        err = _rel(k.fisher(theta), closed.fisher(theta))
        assert err <= k.QUADRATURE_ACCURACY["fisher"], (p, err)
    for p, q in itertools.pairwise(pts):
        want = float(closed.kl(jnp.array(p), jnp.array(q)))
        got = float(k.kl(jnp.array(p), jnp.array(q)))
        assert abs(got - want) <= k.QUADRATURE_ACCURACY["kl"] * abs(want), (p, q)


def test_student_t_gets_a_quadrature_kl(tmp_path):
    """The catalog's student_t has no closed-form KL: its kernel is quadrature now."""
    d = sf.derive("student_t")
    assert d.kl is None  # no closed-form KL: this test's premise
    k = _load(tmp_path, "student_t", module_text(d))
    assert k.PROVENANCE["kl"].startswith("quadrature: ")
    assert k.PROVENANCE["fisher"] == "closed form"
    # its entropy has no closed form either (SymPy leaves the integral)
    assert d.entropy is None and k.PROVENANCE["entropy"] == k.PROVENANCE["kl"]
    assert set(k.QUADRATURE_ACCURACY) == {"kl", "entropy"}
    pts = _points(k, d.family)[::2]
    for p, q in zip(pts, pts[1:] + pts[:1], strict=True):
        want = _kl_reference(d, p, q)
        got = float(k.kl(jnp.array(p), jnp.array(q)))
        assert abs(got - want) <= k.QUADRATURE_ACCURACY["kl"] * abs(want), (p, q)
    assert k.QUADRATURE_ACCURACY["kl"] <= 1e-10
    th = jnp.array([0.3, 1.7])
    F = k.fisher(th)
    np.testing.assert_allclose(
        jax.hessian(lambda q: k.kl(th, q))(th), F, rtol=1e-10, atol=1e-12 * F.max()
    )


def test_closed_form_modules_carry_an_all_closed_provenance():
    for name in ("normal", "categorical_softmax", "diag_gaussian"):
        text = module_text(name)
        assert 'PROVENANCE = {\n    "log_prob": "closed form",' in text
        assert "QUADRATURE_RANGES" not in text and "_QUAD_Y" not in text


def test_ranges_outside_the_domain_are_refused():
    d = sf.derive("gamma")
    with pytest.raises(sf.SymfisherError, match="must lie in the domain"):
        dense_module(d, "0" * 64, numeric=True, ranges={"a": (-1.0, 2.0)})
    with pytest.raises(sf.SymfisherError, match="unknown parameter"):
        dense_module(d, "0" * 64, numeric=True, ranges={"zz": (1.0, 2.0)})


def test_max_and_min_print_as_jax_and_run(tmp_path):
    """A zero-inflated Poisson written with Max(1 - x, 0) (SymPy's printer would
    write functools.reduce, which a standalone module cannot import)."""
    fam = sf.define_family(
        "zip_max",
        "log(w*Max(1 - x, 0) + (1 - w)*exp(-lam)*lam**x/factorial(x))",
        params={"w": "unit_interval", "lam": "positive"},
        support="nonnegative_integers",
    )
    text = module_text(sf.derive(fam, seconds=2))
    assert "functools" not in text and "jnp.maximum" in text
    (tmp_path / "zip_max.py").write_text(text, encoding="utf-8")
    k = sf.kernels("zip_max", path=tmp_path)
    w, lam = 0.3, 1.7
    theta = jnp.array([w, lam])
    for x in (0, 1, 4):
        want = math.log(
            w * (x == 0) + (1 - w) * math.exp(-lam) * lam**x / math.factorial(x)
        )
        assert float(k.log_prob(theta, jnp.array(float(x)))) == pytest.approx(
            want, rel=1e-13
        )
    lo = KernelPrinter().doprint(sp.Min(*sp.symbols("a b c")))
    assert lo == "jnp.minimum(a, jnp.minimum(b, c))"


def test_kl_of_nearby_points_keeps_its_relative_accuracy(tmp_path):
    """KL(theta, theta + eps u) / (eps^2 u'Fu / 2) -> 1 down to eps = 1e-4.

    Kumaraswamy at b = 0.5 (a singular end: the rule states only ~1e-4). Without
    the score term of the rule (a control variate integrating to 0) the mass
    error times the first-order log-ratio is O(accuracy * eps), which overtakes
    the O(eps^2) KL: the ratio was 1.04 at eps = 1e-4 (b = 0.39) before it.
    """
    make, _ = USER["kumaraswamy"]
    d = sf.derive(make(), seconds=5)
    k = _load(tmp_path, "kumaraswamy", module_text(d))  # default box: b from 0.5
    acc = k.QUADRATURE_ACCURACY["kl"]
    assert acc >= 1e-6  # the premise: a rule far less accurate than eps^2
    theta = jnp.array([1.0, k.QUADRATURE_RANGES["b"][0]])
    F = np.asarray(k.fisher(theta))
    u = np.array([0.6, 0.8])
    u = u / np.sqrt(u @ F @ u)
    for eps in (1e-2, 1e-3, 1e-4):
        kl = float(k.kl(theta, theta + eps * jnp.asarray(u)))
        ratio = kl / (0.5 * eps**2)  # u'Fu = 1
        # 1 + O(eps) (third cumulant) + the rule's relative error (of KL and F)
        assert abs(ratio - 1) < 10 * eps + 10 * acc, (eps, ratio, acc)


def test_skew_normal_score_stays_finite_where_erfc_underflows(tmp_path):
    """exp(-w^2) / erfc(w) is printed as one exponential with log_ndtr.

    At omega = 0.026, alpha = 6.87 (where a Cramér–Rao simulation's Fisher
    scoring went) and x - xi = -0.24, erfc of the shape term underflows in
    float64: the score was 0/0 = NaN.
    """
    fam = sf.define_family(
        "skew_normal_tail",
        "log(2) - log(omega) + normal_logpdf((x - xi)/omega)"
        " + log_Phi(alpha*(x - xi)/omega)",
        params={"xi": "real", "omega": "positive", "alpha": "real"},
    )
    d = sf.derive(fam, seconds=5)
    k = _load(tmp_path, "skew_normal_tail", module_text(d))
    th = (-0.558409, 0.0259485, 6.8732)
    for xv in (-0.8, -3.0):
        got = np.asarray(k.score(jnp.array(th), xv))
        sub = {
            **{p: sp.Float(v, 60) for p, v in zip(fam.params, th, strict=True)},
            fam.x: sp.Float(xv, 60),
        }
        want = np.array([float(sp.N(s.xreplace(sub), 50)) for s in d.score])
        np.testing.assert_allclose(got, want, rtol=1e-9)
        auto = jax.grad(lambda t, xv=xv: k.log_prob(t, xv))(jnp.array(th))
        np.testing.assert_allclose(auto, want, rtol=1e-9)


@pytest.mark.parametrize("name", list(USER))
def test_natural_gradient_and_fisher_sqrt_of_the_quadrature_fisher(user, name):
    """Both come from the quadrature ``fisher``: (F + lam I) x = g and R^T R = F."""
    d, k = user[name]
    assert k.PROVENANCE["natural_gradient"] == k.PROVENANCE["fisher"]
    for p in _points(k, d.family):
        theta = jnp.array(p)
        F = np.asarray(k.fisher(theta))
        g = np.linspace(-1.0, 1.0, len(p))
        for lam in (0.0, 0.1):
            x = np.asarray(k.natural_gradient(theta, jnp.asarray(g), lam))
            cond = np.linalg.cond(F + lam * np.eye(len(p)))
            err = np.linalg.norm(F @ x + lam * x - g) / np.linalg.norm(g)
            assert err <= 1e-12 * cond, (p, lam, err)
        R = np.asarray(k.fisher_sqrt(theta))
        assert _rel(R.T @ R, F) <= 1e-12, p
