"""Cramér–Rao simulations: correct kernels pass, planted errors are caught."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symfisher as sf
from symfisher.verify.cramer_rao import cramer_rao_checks

# Moderate points, away from the edges of the domains.
POINTS = {
    "normal": [0.3, 1.5],
    "normal_logstd": [-0.4, 0.2],
    "laplace": [0.5, 1.2],
    "gamma": [2.0, 1.5],
    "bernoulli": [0.3],
    "categorical_softmax": [0.2, -0.3, 0.5],
    "diag_gaussian": [0.1, -0.2, 0.3, -0.1],
    "poisson": [2.5],
    "uniform": [1.7],
}
REGULAR = [f for f in POINTS if f != "uniform"]
P_MIN = 1e-4  # a correct kernel's p-values stay above this (fixed seeds)


@functools.cache
def run(name: str, seed: int = 0, symbolic: bool = True) -> tuple:
    theta = np.array(POINTS[name])
    return tuple(
        cramer_rao_checks(
            sf.family(name),
            sf.kernels(name),
            theta,
            jax.random.key(seed),
            m_tests=10,
            symbolic=symbolic,
        )
    )


def by_name(checks, name: str, entry: str | None = None) -> list:
    return [c for c in checks if c.name == name and (entry is None or c.entry == entry)]


def kernels_with(name: str, **override) -> dict:
    k = sf.kernels(name)
    fns = {f: getattr(k, f) for f in ("log_prob", "score", "fisher", "param_checks")}
    fns.update(override)
    return fns


@pytest.mark.parametrize("name", REGULAR)
def test_correct_kernels_pass(name):
    checks = run(name)
    assert not [c for c in checks if c.verdict in ("fail", "error")], [
        (c.name, c.message) for c in checks if c.failed
    ]
    sto = [c for c in checks if c.kind == "stochastic"]
    assert {c.name for c in sto} == {"Cov(unbiased) >= CR bound", "MLE efficiency -> 1"}
    for c in sto:
        assert c.p_value > P_MIN, (c.name, c.p_value, c.message)
        assert c.verdict == "pass"
        assert 0 < c.detectable < 1 and c.n == 400
    # Whitened MLE covariance eigenvalues near 1 at n = 1000 (within 5 se).
    (mle,) = by_name(checks, "MLE efficiency -> 1", "n=1000")
    assert abs(mle.observed - 1.0) < 5 * mle.se, mle.message
    # Reports at every sample size; the deterministic symbolic bound agrees.
    assert {c.entry for c in by_name(checks, "MLE efficiency")} == {
        "n=10",
        "n=100",
        "n=1000",
    }
    (sym,) = by_name(checks, "symbolic CR bound of E[x]")
    assert sym.kind == "deterministic" and sym.verdict == "pass", sym.message
    assert sym.statistic < 1e-9


def test_sample_mean_efficiency_textbook_values():
    # Var(x-bar) = 2 b^2 / n for the Laplace, the bound is b^2 / n: efficiency 1/2.
    (lap,) = by_name(run("laplace"), "efficiency of sample mean")
    assert abs(lap.observed - 0.5) < 4 * lap.se, (lap.observed, lap.se)
    assert lap.se < 0.05  # bootstrap se ~ 0.5 sqrt(2 / 400)
    # The sample mean is the efficient estimator of a Normal or Poisson mean.
    for name in ("normal", "poisson", "gamma"):
        (eff,) = by_name(run(name), "efficiency of sample mean")
        assert abs(eff.observed - 1.0) < 4 * eff.se, (name, eff.observed, eff.se)
    # diag_gaussian: one record per coordinate.
    effs = by_name(run("diag_gaussian"), "efficiency of sample mean")
    assert [e.entry for e in effs] == ["x[0]", "x[1]"]


def test_laplace_unbiased_estimator_is_far_above_the_bound():
    (c,) = by_name(run("laplace"), "Cov(unbiased) >= CR bound")
    assert abs(c.observed - 2.0) < 4 * c.se  # 1 / efficiency
    assert c.p_value > 0.99


def test_softmax_uses_the_identifiable_subspace():
    (mle,) = by_name(run("categorical_softmax"), "MLE efficiency -> 1")
    # Two eigenvalues: the all-ones direction of the logits is projected out.
    eigs = mle.message.split("eigenvalues of")[1].split("[")[1].split("]")[0]
    assert len(eigs.split(",")) == 2, mle.message
    (small,) = by_name(run("categorical_softmax"), "MLE efficiency", "n=10")
    assert "edge of the parameter space" in small.message


def test_monte_carlo_jacobian():
    checks = run("normal", 0, False)
    (c,) = by_name(checks, "Cov(unbiased) >= CR bound")
    assert "J = Cov(x, s)" in c.message and c.p_value > P_MIN
    assert not by_name(checks, "symbolic CR bound of E[x]")
    # Same data as with the closed form: only the (small) J error differs.
    (exact,) = by_name(run("normal"), "Cov(unbiased) >= CR bound")
    assert abs(c.observed - exact.observed) < 0.05
    assert c.se >= exact.se


def test_reproducible():
    a = cramer_rao_checks(
        sf.family("poisson"),
        sf.kernels("poisson"),
        np.array([2.5]),
        jax.random.key(0),
        m_tests=10,
    )
    b = run("poisson")
    assert [c.observed for c in a] == [c.observed for c in b]


def test_fisher_too_small_is_rejected():
    # fisher 0.5x: the claimed bound J F^-1 J^T / n is 2x too big, so the
    # (efficient) sample mean appears to beat it; the MLE's whitened
    # covariance eigenvalues become 1/2.
    k = sf.kernels("normal")
    bad = kernels_with("normal", fisher=lambda th: 0.5 * k.fisher(th))
    checks = cramer_rao_checks(
        sf.family("normal"),
        bad,
        np.array(POINTS["normal"]),
        jax.random.key(0),
        m_tests=10,
    )
    (a,) = by_name(checks, "Cov(unbiased) >= CR bound")
    assert a.p_value < 1e-8 and abs(a.observed - 0.5) < 4 * a.se
    (mle,) = by_name(checks, "MLE efficiency -> 1")
    assert mle.p_value < 1e-8
    (sym,) = by_name(checks, "symbolic CR bound of E[x]")
    assert sym.verdict == "fail" and abs(sym.statistic - 1.0) < 1e-9


def test_fisher_too_large_is_rejected_by_the_mle_check():
    # fisher 2x: the bound is 2x too small, which an unbiased estimator cannot
    # show (C >= B/2 holds), but the MLE's variance is 2x the claimed F^-1/n.
    k = sf.kernels("gamma")
    bad = kernels_with("gamma", fisher=lambda th: 2.0 * k.fisher(th))
    checks = cramer_rao_checks(
        sf.family("gamma"),
        bad,
        np.array(POINTS["gamma"]),
        jax.random.key(0),
        m_tests=10,
    )
    (a,) = by_name(checks, "Cov(unbiased) >= CR bound")
    assert a.p_value > 0.5
    (mle,) = by_name(checks, "MLE efficiency -> 1")
    assert mle.p_value < 1e-8 and mle.observed > 1.5
    (sym,) = by_name(checks, "symbolic CR bound of E[x]")
    assert sym.verdict == "fail"


def test_uniform_is_not_applicable():
    checks = run("uniform")
    assert checks and all(c.verdict == "not applicable" for c in checks)
    assert not [c for c in checks if c.kind == "stochastic"]
    theta = POINTS["uniform"][0]
    for c in checks:
        assert "support" in c.message and "depends on theta" in c.message
        assert "Fisher identities" in c.message
    var = by_name(checks, "MLE variance (non-regular)")
    assert [c.entry for c in var] == ["n=10", "n=100", "n=1000"]
    for c in var:
        n = int(c.entry[2:])
        assert "O(1/n^2)" in c.message and "below the naive 'bound'" in c.message
        # n^2 Var(max x) = theta^2 n^3 / ((n+1)^2 (n+2)) -> theta^2.
        exact = theta**2 * n**3 / ((n + 1) ** 2 * (n + 2))
        assert abs(c.observed - exact) < 4 * c.se, (n, c.observed, exact, c.se)
        assert c.observed / n**2 < theta**2 / n  # below the naive 1/(n E[s^2])
    assert abs(var[-1].observed - theta**2) < 4 * var[-1].se


NAN_POINT = "mu=0.3, sigma=1.5"


def test_nan_fisher_is_an_error():
    bad = kernels_with("normal", fisher=lambda th: jnp.full((2, 2), jnp.nan))
    checks = cramer_rao_checks(
        sf.family("normal"), bad, np.array(POINTS["normal"]), jax.random.key(0)
    )
    (c,) = checks
    assert c.verdict == "error" and c.failed
    assert "fisher" in c.message and NAN_POINT in c.message and "NaN" in c.message
    assert "expected finite values" in c.message


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"score": None}, ["kernels.score is missing", "expected a function"]),
        (
            {"score": lambda th, x: jnp.zeros(jnp.shape(x))},
            ["score returned shape (1000,)", "expected shape (1000, 2)"],
        ),
        (
            {"score": lambda th, x: jnp.full((*jnp.shape(x), 2), jnp.nan)},
            ["score returned NaN or inf", "expected finite values"],
        ),
        ({"fisher": lambda th: jnp.eye(3)}, ["fisher returned shape (3, 3)", "(2, 2)"]),
        (
            {"fisher": lambda th: jnp.array([[1.0, 0.0], [0.0, -1.0]])},
            ["positive semi-definite"],
        ),
        ({"fisher": lambda th: 1 / 0}, ["fisher raised ZeroDivisionError"]),
    ],
)
def test_broken_kernels_give_error_records(override, words):
    bad = kernels_with("normal", **override)
    if override.get("score", 1) is None:
        del bad["score"]
    checks = cramer_rao_checks(
        sf.family("normal"), bad, np.array(POINTS["normal"]), jax.random.key(0)
    )
    assert len(checks) == 1 and checks[0].verdict == "error", checks
    for w in words:
        assert w in checks[0].message, checks[0].message
    assert NAN_POINT in checks[0].message


def test_fisher_nan_away_from_the_point_is_an_error():
    # Finite at the true theta, NaN wherever Fisher scoring goes next.
    k = sf.kernels("normal")

    def fisher(th):
        return jnp.where(jnp.abs(th[..., 1] - 1.5) < 1e-12, k.fisher(th), jnp.nan)

    (c,) = cramer_rao_checks(
        sf.family("normal"),
        kernels_with("normal", fisher=fisher),
        np.array(POINTS["normal"]),
        jax.random.key(0),
    )
    assert c.verdict == "error"
    assert c.message.startswith("fisher returned NaN or inf at theta = (mu=")
    assert "inside the domain" in c.message and NAN_POINT in c.message


def test_point_outside_the_domain_is_an_error():
    (c,) = cramer_rao_checks(
        sf.family("normal"),
        sf.kernels("normal"),
        np.array([0.0, -1.0]),
        jax.random.key(0),
    )
    assert c.verdict == "error" and "sigma must be > 0" in c.message


def test_mean_forms_are_cached_on_disk(tmp_path, monkeypatch):
    """E[x] is computed once per family definition; later runs read it from disk."""
    from symfisher.derive import expectation
    from symfisher.verify.cramer_rao import common, unbiased

    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(common, "_MEAN_FORMS", {})
    monkeypatch.setattr(unbiased, "_MEAN_FORMS", common._MEAN_FORMS)
    fam = sf.family("exponential")
    first = unbiased._mean_forms(fam)
    assert (
        first[0] is not None
        and len(list(tmp_path.glob("exponential.mean_x-*.pkl"))) == 1
    )
    common._MEAN_FORMS.clear()  # a new process: only the disk remains

    def fail(*a, **k):
        raise AssertionError("expect() ran although the result was cached")

    monkeypatch.setattr(expectation, "expect", fail)
    assert unbiased._mean_forms(fam) == first
