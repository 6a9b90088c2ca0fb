"""Tests of symfisher.verify: planted bugs, correct kernels, calibration, reports.

Every statistical assertion either uses the verifier's own Holm-controlled
verdicts at alpha = 1e-3 (planted bugs must be rejected, correct kernels must
pass) or a test at a stated level with fixed seeds, so the outcomes are
deterministic and each test can fail.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

import symfisher as sf
from symfisher import cli
from symfisher.errors import DomainError, FamilyError
from symfisher.families.catalog import family as catalog_family
from symfisher.verify import Report, stats, verify
from symfisher.verify.result import SCHEMA, Check
from symfisher.verify.run import PILOT

FUNCS = ("log_prob", "score", "hessian_log_prob", "fisher", "kl", "entropy")
KL_QUAD = "KL ~ ½ δᵀFδ"
ENTROPY = "MC entropy = H"
#: the checks whose claim involves each kernel function: a bug planted in a
#: function may only make these fail
USES = {
    "log_prob": {"MC KL = KL", ENTROPY},
    "score": {"E[s] = 0", "E[s s^T] = F"},
    "hessian_log_prob": {"-E[H] = F"},
    "fisher": {"E[s s^T] = F", "-E[H] = F", "KL Hessian = F", KL_QUAD},
    "kl": {"KL Hessian = F", "MC KL = KL", KL_QUAD},
    "entropy": {ENTROPY},
}
UNDERPOWERED = "cannot detect"


def _mapping(name, **replace):
    """The generated kernels of ``name`` as a mapping, some functions replaced."""
    k = sf.kernels(name)
    m = {f: getattr(k, f) for f in FUNCS}
    for f, make in replace.items():
        m[f] = make(k)
    return m


def _run(*args, **kwargs):
    """``verify`` with its warnings recorded: (report, underpowered warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = verify(*args, **kwargs)
    return report, [w for w in caught if UNDERPOWERED in str(w.message)]


def _failed(report):
    return [(c.name, c.entry) for c in report.failures]


@pytest.fixture(scope="module")
def correct():
    """Default-settings reports of the correct generated kernels, computed once."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _run(name, cramer_rao=False)
        return cache[name]

    return get


# --------------------------------------------------------------------------
# planted bugs (spec part 5): each must be rejected at default settings


def _fisher_entry_5pct(k):
    return lambda th: k.fisher(th).at[..., 0, 0].multiply(1.05)


def _flip_offdiag(f):
    return lambda *a: f(*a) * jnp.array([[1.0, -1.0], [-1.0, 1.0]])


def _swapped(k):
    return lambda th: k.fisher(jnp.asarray(th)[..., ::-1])


def _sigma_fisher_for_logstd(k):
    normal = sf.kernels("normal")

    def fisher(th):
        th = jnp.asarray(th)
        return normal.fisher(jnp.stack([th[..., 0], jnp.exp(th[..., 1])], axis=-1))

    return fisher


def _empirical_fisher(k):
    sampler = catalog_family("normal").sampler

    def fisher(th):  # mean of s s^T over 20 fixed draws
        th = jnp.asarray(th)
        s = k.score(th, sampler(jax.random.key(123), th, (20,)))
        return jnp.mean(s[:, :, None] * s[:, None, :], axis=0)

    return fisher


def _softmax_fisher_diag(k):
    def fisher(th):  # diag(p) without the - p p^T term
        p = jax.nn.softmax(jnp.asarray(th), axis=-1)
        return p[..., :, None] * jnp.eye(p.shape[-1])

    return fisher


def _entropy_half_log_sigma(k):
    """Normal entropy with ½ log σ where log σ belongs."""
    return lambda th: 0.5 * jnp.log(2 * jnp.pi * jnp.e) + 0.5 * jnp.log(th[..., 1])


def _entropy_no_half(k):
    """Normal entropy ½ log(2π) + log σ: the ½ of ½ log(2πe) lost its e."""
    return lambda th: 0.5 * jnp.log(2 * jnp.pi) + jnp.log(th[..., 1])


PLANTED = {
    # id: (family, replacements, checks that must fail: (name, entry or None))
    "gamma-F00-plus-5pct": (
        "gamma",
        {"fisher": _fisher_entry_5pct},
        {("E[s s^T] = F", "(0, 0)"), ("-E[H] = F", "(0, 0)"), ("KL Hessian = F", None)},
    ),
    "gamma-F01-sign-flipped": (
        "gamma",
        {"fisher": lambda k: _flip_offdiag(k.fisher)},
        {("E[s s^T] = F", "(0, 1)"), ("-E[H] = F", "(0, 1)"), ("KL Hessian = F", None)},
    ),
    "normal-params-swapped": (
        "normal",
        {"fisher": _swapped},
        {("E[s s^T] = F", "(0, 0)"), ("E[s s^T] = F", "(1, 1)")},
    ),
    "normal_logstd-fisher-in-sigma": (
        "normal_logstd",
        {"fisher": _sigma_fisher_for_logstd},
        {("E[s s^T] = F", "(1, 1)"), ("-E[H] = F", "(1, 1)"), ("KL Hessian = F", None)},
    ),
    "normal-empirical-fisher-20-draws": (
        "normal",
        {"fisher": _empirical_fisher},
        {("E[s s^T] = F", None), ("KL Hessian = F", None)},
    ),
    "normal-kl-missing-half": (
        "normal",
        {"kl": lambda k: lambda tp, tq: 2.0 * k.kl(tp, tq)},
        {("MC KL = KL", None), ("KL Hessian = F", None), (KL_QUAD, None)},
    ),
    "normal-score-mu-plus-0.05": (
        "normal",
        {"score": lambda k: lambda th, x: k.score(th, x) + jnp.array([0.05, 0.0])},
        {("E[s] = 0", "(0)")},
    ),
    "bernoulli_logit-score-plus-0.05": (
        "bernoulli_logit",
        {"score": lambda k: lambda th, x: k.score(th, x) + 0.05},
        {("E[s] = 0", "(0)")},
    ),
    "categorical_softmax-fisher-diag-p": (
        "categorical_softmax",
        {"fisher": _softmax_fisher_diag},
        {
            ("E[s s^T] = F", "(0, 1)"),
            ("E[s s^T] = F", "(0, 0)"),
            ("KL Hessian = F", None),
        },
    ),
    "gamma-hessian-H01-sign-flipped": (
        "gamma",
        {"hessian_log_prob": lambda k: _flip_offdiag(k.hessian_log_prob)},
        {("-E[H] = F", "(0, 1)")},
    ),
    "normal-entropy-half-log-sigma": (
        "normal",
        {"entropy": _entropy_half_log_sigma},
        {(ENTROPY, None)},
    ),
    "normal-entropy-constant-without-e": (
        "normal",
        {"entropy": _entropy_no_half},
        {(ENTROPY, None)},
    ),
    "normal-log_prob-missing-log-sigma": (
        "normal",
        {"log_prob": lambda k: lambda th, x: k.log_prob(th, x) + jnp.log(th[..., 1])},
        {("MC KL = KL", None)},
    ),
}


@pytest.mark.parametrize("bug", list(PLANTED), ids=list(PLANTED))
def test_planted_bug_is_rejected(bug):
    name, replace, must = PLANTED[bug]
    report, _ = _run(name, _mapping(name, **replace), points=2, cramer_rao=False)
    assert not report.passed, f"{bug} was not detected"
    failed = _failed(report)
    for check, entry in must:
        assert any(n == check and (entry is None or e == entry) for n, e in failed), (
            check,
            entry,
            failed,
        )
    # nothing unrelated to the planted function fails (e.g. the sampler moments)
    # ... and the function's own finiteness check (swapped parameters may leave
    # the domain, where kernels are NaN)
    allowed = set().union(*(USES[f] | {f"kernel {f}"} for f in replace))
    assert {n for n, _ in failed} <= allowed, failed
    # a kernel that is not finite at a valid point is an error, everything else fails
    assert all(
        c.verdict == ("error" if c.name.startswith("kernel ") else "fail") and c.message
        for c in report.failures
    )
    for c in report.failures:
        if c.kind == "stochastic":
            assert c.p_value <= 1e-3 and "Holm" in c.message


# --------------------------------------------------------------------------
# correct kernels pass at default settings with the 2% power target

CORRECT = [
    "normal",
    "gamma",
    "bernoulli_logit",
    "categorical_softmax",
    "laplace",
    "von_mises",
    "full_gaussian",
]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_kernels_pass(correct, name):
    report, weak_warnings = correct(name)
    assert report.passed, _failed(report)
    names = {c.name for c in report.checks}
    assert {"sampler moments", "E[s] = 0", "E[s s^T] = F"} <= names
    if name != "laplace":
        assert {"-E[H] = F", "KL Hessian = F", "MC KL = KL", KL_QUAD} <= names
    assert ENTROPY in names
    sto = [c for c in report.checks if c.kind == "stochastic"]
    n = report.settings["n_samples"][name]
    assert n >= PILOT and n % report.settings["chunk"] == 0
    for c in sto:
        assert c.verdict == "pass" and 0 <= c.p_value <= 1 and c.n == n
        assert c.detectable is not None and c.detectable >= 0
    weak = [c for c in sto if not c.detectable <= 0.02]
    if weak:  # allowed only when a warning says so
        assert len(weak_warnings) == 1
        assert f"{len(weak)} check(s) cannot detect a 2% relative error" in str(
            weak_warnings[0].message
        )
    else:
        assert not weak_warnings
    assert report.summary()[name]["worst_detectable"] == max(c.detectable for c in sto)


def test_detectable_matches_stats(correct):
    """Each stated detectable error is the Holm-level formula at the run's m."""
    report, _ = correct("normal")
    sto = [c for c in report.checks if c.kind == "stochastic"]
    z = sps.norm.isf(1e-3 / (2 * len(sto))) + sps.norm.isf(0.1)
    for c in sto:
        if c.name == "E[s] = 0":  # relative to sd(s_i) = sqrt(F_ii)
            sigma = c.point["sigma"]
            sd = (1.0 if c.entry == "(0)" else np.sqrt(2.0)) / sigma
            assert c.detectable == pytest.approx(z * c.se / sd, rel=1e-9)


def test_probe_draw_traces_the_sampler_once_per_family():
    """The kernels' 8-draw probe is one program per sampler, not one per point.

    Called eagerly, a sampler built on ``lax.while_loop`` compiles its loop anew
    at every call (a fresh closure): 12 loop compilations per family for beta.
    """
    from dataclasses import replace

    from symfisher.verify.identities import PROBE_DRAWS, _probe_draw

    fam = catalog_family("gamma")
    calls = []

    def counting(key, theta, shape=()):
        calls.append(tuple(shape))
        return fam.sampler(key, theta, shape)

    counted = replace(fam, sampler=counting)
    draw = _probe_draw(counted)
    for i, theta in enumerate([(2.0, 1.0), (0.5, 3.0), (7.0, 0.2)]):
        x = draw(jax.random.key(i), jnp.asarray(theta))
        assert x.shape == (PROBE_DRAWS,) and np.all(np.asarray(x) > 0)
    assert calls == [(PROBE_DRAWS,)]  # traced once, run three times
    assert _probe_draw(counted) is draw


def test_kernel_probe_is_one_program_for_the_kernels_traced_once():
    """log_prob, score, hessian_log_prob, fisher and entropy are traced once into
    one program per family (three points: three runs); kl keeps its own program."""
    from symfisher.verify.kernel_access import Kernels
    from symfisher.verify.points import _probe

    k = sf.kernels("normal")
    traced = []

    def counting(name):
        def call(*args):
            traced.append(name)
            return getattr(k, name)(*args)

        return call

    m = {f: counting(f) for f in FUNCS}
    fam = catalog_family("normal")
    x = jnp.linspace(-1.0, 1.0, 8)
    for theta in [(0.0, 1.0), (0.5, 2.0), (-1.0, 0.5)]:
        ok, bad = _probe(Kernels(m), fam, np.asarray(theta), x)
        assert bad == []
        np.testing.assert_allclose(ok["fisher"], k.fisher(jnp.asarray(theta)))
        np.testing.assert_allclose(ok["score"], k.score(jnp.asarray(theta), x))
    probed = ["log_prob", "score", "hessian_log_prob", "fisher", "entropy"]
    assert sorted(t for t in traced if t in probed) == sorted(probed)
    assert traced.count("kl") == 1
    # one program for the five, and a program of its own for kl only
    from symfisher.verify import kernel_access, points

    ids = {id(m[f]): f for f in FUNCS}
    fused = [key for key in points._FUSED if {i for _, i in key} & set(ids)]
    assert len(fused) == 1 and {ids[i] for _, i in fused[0]} == set(probed)
    alone = {ids[i] for i, *_ in kernel_access._JITTED if i in ids}
    assert alone == {"kl"}


def test_kernel_failing_at_run_time_is_named_and_the_others_are_probed():
    """The shared program fails as a whole; each kernel is then called on its own."""
    from symfisher.verify.kernel_access import Kernels
    from symfisher.verify.points import _probe

    def host_says_no(th):
        raise RuntimeError("host says no")

    def entropy(th):  # traces fine, raises only when run
        return jax.pure_callback(host_says_no, jax.ShapeDtypeStruct((), th.dtype), th)

    m = _mapping("normal", entropy=lambda k: entropy)
    fam = catalog_family("normal")
    ok, bad = _probe(Kernels(m), fam, np.asarray([0.0, 1.0]), jnp.zeros(8))
    assert [name for name, _ in bad] == ["entropy"]
    assert "host says no" in bad[0][1]
    assert set(ok) == {"log_prob", "score", "hessian_log_prob", "fisher", "kl"}


def test_kernel_raising_when_traced_is_named_and_the_others_are_probed():
    from symfisher.verify.kernel_access import Kernels
    from symfisher.verify.points import _probe

    def broken(k):
        def score(th, x):
            raise ValueError("no score today")

        return score

    m = _mapping("normal", score=broken)
    fam = catalog_family("normal")
    ok, bad = _probe(Kernels(m), fam, np.asarray([0.0, 1.0]), jnp.zeros(8))
    assert bad == [("score", "raised ValueError: no score today")]
    assert set(ok) == {"log_prob", "hessian_log_prob", "fisher", "kl", "entropy"}
    report = _bad(m)
    errors = [c for c in report.checks if c.verdict == "error"]
    assert [c.name for c in errors] == ["kernel score"] * 2
    assert "no score today" in errors[0].message
    ran = {c.name for c in report.checks if c.verdict == "pass"}
    assert {"-E[H] = F", "MC KL = KL", "KL Hessian = F"} <= ran


# --------------------------------------------------------------------------
# non-regular and non-smooth families


def test_uniform_not_applicable_but_not_failed():
    report, _ = _run("uniform", cramer_rao=False)
    na = [c for c in report.checks if c.verdict == "not applicable"]
    assert len(na) == 3  # one per point
    for c in na:
        assert "support depends on the parameters" in c.message
        assert "E[s] ≈" in c.message  # states what the identities give instead
    assert not any(c.failed for c in report.checks)
    assert report.passed
    assert not any(
        c.name in ("E[s] = 0", "E[s s^T] = F", "-E[H] = F") for c in report.checks
    )
    assert report.summary()["uniform"]["not_applicable"] == 3
    # the entropy needs no regularity: its Monte Carlo check runs and passes
    ent = [c for c in report.checks if c.name == ENTROPY]
    assert len(ent) == 3 and all(c.verdict == "pass" for c in ent)
    for c in ent:
        assert c.expected == pytest.approx(np.log(c.point["theta"]), rel=1e-12)
    assert "support depends on the parameters" in report.to_markdown()


def test_laplace_hessian_identity_not_applicable(correct):
    report, _ = correct("laplace")
    h = [c for c in report.checks if c.name == "-E[H] = F"]
    assert len(h) == 3 and all(c.verdict == "not applicable" for c in h)
    assert all("not twice differentiable" in c.message for c in h)
    ss = [c for c in report.checks if c.name == "E[s s^T] = F"]
    assert len(ss) == 3 * 3 and all(c.verdict == "pass" for c in ss)
    assert report.passed


# --------------------------------------------------------------------------
# bad input

POINTS = [[0.0, 1.0], [0.5, 2.0]]


def _bad(mapping):
    report, _ = _run(
        "normal", mapping, n_samples=2**15, points=POINTS, cramer_rao=False
    )
    return report


def test_missing_fisher_is_an_error_not_a_crash():
    m = _mapping("normal")
    del m["fisher"]
    report = _bad(m)
    errors = [c for c in report.checks if c.verdict == "error"]
    assert len(errors) == 2
    for c, pt in zip(errors, POINTS, strict=True):
        assert c.name == "kernel fisher"
        assert "fisher" in c.message and "missing" in c.message
        assert f"'sigma': {pt[1]}" in c.message  # names the point
    moments = [c for c in report.checks if c.name == "sampler moments"]
    assert len(moments) == 4 and all(c.verdict == "pass" for c in moments)
    assert not report.passed


def test_wrong_score_shape_is_an_error_other_checks_run():
    report = _bad(
        _mapping("normal", score=lambda k: lambda th, x: k.score(th, x)[..., :1])
    )
    errors = [c for c in report.checks if c.verdict == "error"]
    assert [c.name for c in errors] == ["kernel score"] * 2
    for c, (mu, sigma) in zip(errors, POINTS, strict=True):
        assert c.message.startswith("score at ") and "shape" in c.message
        assert f"'mu': {mu}" in c.message and f"'sigma': {sigma}" in c.message
    ran = {c.name for c in report.checks if c.verdict == "pass"}
    assert {"sampler moments", "-E[H] = F", "MC KL = KL", "KL Hessian = F"} <= ran
    assert not any(c.name in USES["score"] for c in report.checks)


def test_fisher_nan_at_one_valid_point():
    def make(k):
        return lambda th: jnp.where(
            jnp.asarray(th)[..., 1, None, None] > 1.5, jnp.nan, k.fisher(th)
        )

    report = _bad(_mapping("normal", fisher=make))
    errors = [c for c in report.checks if c.verdict == "error"]
    assert len(errors) == 1
    (c,) = errors
    assert c.name == "kernel fisher" and "NaN" in c.message
    assert "'mu': 0.5" in c.message and "'sigma': 2.0" in c.message
    # the other point is verified completely, and passes
    first = [x for x in report.checks if x.point == {"mu": 0.0, "sigma": 1.0}]
    assert {"E[s] = 0", "E[s s^T] = F", "-E[H] = F", "MC KL = KL"} <= {
        x.name for x in first
    }
    assert all(x.verdict == "pass" for x in first)


def test_kernels_without_entropy_skip_its_check_and_say_why():
    m = _mapping("normal")
    del m["entropy"]
    report = verify("normal", m, n_samples=2**12, points=1, cramer_rao=False)
    (c,) = [c for c in report.checks if c.name == ENTROPY]
    assert c.verdict == "not applicable" and "missing" in c.message
    assert report.passed


def test_nan_for_some_draws_fails_and_json_stays_strict():
    """A score that is NaN only for some draws (x > 3) passes the probe but fails."""

    def make(k):
        return lambda th, x: jnp.where((x > 3.0)[..., None], jnp.nan, k.score(th, x))

    report = _bad(_mapping("normal", score=make))
    failed = _failed(report)
    assert ("E[s] = 0", "(0)") in failed and ("E[s s^T] = F", "(1, 1)") in failed
    assert {n for n, _ in failed} <= USES["score"]
    doc = _strict_json(report.to_json())  # traces hold NaN: written as "nan"
    assert "nan" in {e for t in doc["traces"] for e in t["error"]}


def test_too_few_samples_warns_with_detectable_error():
    with pytest.warns(UserWarning, match=UNDERPOWERED) as rec:
        report = verify(
            "normal", n_samples=2**12, chunk=2**12, points=1, cramer_rao=False
        )
    (msg,) = [str(w.message) for w in rec if UNDERPOWERED in str(w.message)]
    worst = max(c.detectable for c in report.checks if c.detectable is not None)
    got = re.search(r"detects ([0-9.]+)% with n = (\d+)", msg)
    assert got, msg
    assert float(got.group(1)) == pytest.approx(100 * worst, abs=0.051)
    assert int(got.group(2)) == 2**12
    assert "2% relative error" in msg and "90% power" in msg


@pytest.mark.parametrize(
    "kwargs, exc, param",
    [
        ({"n_samples": 1}, DomainError, "n_samples"),
        ({"n_samples": 1000.5}, DomainError, "n_samples"),
        ({"alpha": 2.0}, DomainError, "alpha"),
        ({"alpha": 0.0}, DomainError, "alpha"),
        ({"power": 1.0}, DomainError, "power"),
        ({"chunk": 0}, DomainError, "chunk"),
        ({"points": 0}, DomainError, "points"),
        ({"points": [[0.0, 1.0, 2.0]]}, DomainError, "points"),
        ({"points": [[0.0, -1.0]]}, DomainError, "sigma"),
        ({"family": "no_such_family"}, FamilyError, "family"),
    ],
    ids=[
        "n_samples=1",
        "n_samples-float",
        "alpha=2",
        "alpha=0",
        "power=1",
        "chunk=0",
        "points=0",
        "point-wrong-length",
        "point-outside-domain",
        "unknown-family",
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, exc, param):
    kwargs = dict(kwargs)
    name = kwargs.pop("family", "normal")
    with pytest.raises(exc, match=param):
        verify(name, cramer_rao=False, **kwargs)


# --------------------------------------------------------------------------
# regressions for bugs fixed in symfisher/verify/run.py


def test_mapping_mutated_between_runs_is_reverified():
    """The per-sample function cache must not keep a replaced kernel (was id(mapping))."""
    m = _mapping("normal")
    kw = {"n_samples": 2**15, "points": [[0.0, 1.0]], "cramer_rao": False}
    assert _run("normal", m, **kw)[0].passed
    m["score"] = lambda th, x: (
        sf.kernels("normal").score(th, x) + jnp.array([0.05, 0.0])
    )
    report = _run("normal", m, **kw)[0]
    assert ("E[s] = 0", "(0)") in _failed(report)


def test_kl_quadratic_near_boundary():
    """Correct KLs pass KL ~ ½ δᵀFδ near the domain boundary (was: fail)."""
    # categorical with p_2 = 0.031 (a seeded point that used to fail), and
    # bernoulli near 0 and 1, where the largest step leaves the domain
    messages = []
    for name, pts in [
        ("categorical", [[0.7090568951140955, 0.2598619214507223]]),
        ("bernoulli", [[0.001], [0.999], [0.001], [0.999]]),
    ]:
        report, _ = _run(
            name, n_samples=2**13, chunk=2**13, points=pts, cramer_rao=False
        )
        quad = [c for c in report.checks if c.name == KL_QUAD]
        assert len(quad) == len(pts)
        assert all(c.verdict == "pass" for c in quad), [c.message for c in quad]
        assert all(c.statistic <= 1e-2 for c in quad)
        messages += [c.message for c in quad]
    # at least one bernoulli point stepped out of the domain at the largest ε
    assert any(m.startswith("ratios nan") for m in messages)


# --------------------------------------------------------------------------
# Cramér–Rao integration (light: cramer_rao.py has its own tests)


def _key(c):
    return (c.name, c.entry, tuple(c.point.items()))


def test_cramer_rao_integration_light():
    kw = {"n_samples": 2**15, "points": 2}
    with_cr, _ = _run("bernoulli_logit", cramer_rao_replicates=100, **kw)
    without, _ = _run("bernoulli_logit", cramer_rao=False, **kw)
    base = {_key(c): c for c in without.checks}
    extra = [c for c in with_cr.checks if _key(c) not in base]
    assert extra and not any(c.verdict == "error" for c in with_cr.checks)
    assert all(c.point == with_cr.checks[0].point for c in extra)  # first point only
    assert with_cr.passed
    # the simulations use their own keys: the other estimates are unchanged
    for c in with_cr.checks:
        if _key(c) in base:
            assert c.observed == base[_key(c)].observed
    # and their stochastic checks join the one Holm family (m in detectable)
    m = sum(c.kind == "stochastic" for c in with_cr.checks)
    assert m > sum(c.kind == "stochastic" for c in without.checks)
    for c in with_cr.checks:
        if c.name == "E[s] = 0":
            p = 1 / (1 + np.exp(-c.point["eta"]))
            assert c.detectable == pytest.approx(
                stats.detectable(c.se, np.sqrt(p * (1 - p)), m), rel=1e-9
            )


def test_cramer_rao_exception_is_an_error_not_a_crash(monkeypatch):
    import symfisher.verify.cramer_rao as cr

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cr, "cramer_rao_checks", boom)
    report, _ = _run("bernoulli_logit", n_samples=2**13, chunk=2**13, points=1)
    assert [(c.name, c.verdict) for c in report.failures] == [
        ("Cramér–Rao simulation", "error")
    ]
    assert "RuntimeError: boom" in report.failures[0].message
    assert sum(c.verdict == "pass" for c in report.checks) >= 6


# --------------------------------------------------------------------------
# calibration


@pytest.mark.slow
def test_calibration_pvalues_uniform_and_familywise_rate():
    """Correct kernels over many seeds: p-values ~ U(0, 1), failures ~ Holm's alpha.

    With correct kernels every stochastic check's null hypothesis holds, so its
    p-value is (asymptotically, n = 8192 per point) uniform. Within one point the
    p-values are dependent (for bernoulli_logit every quantity is affine in x, so
    they coincide), but draws at different points and seeds are independent.
    So we test (a) per check label, the p-values across points and seeds with a
    KS test, Bonferroni over labels at total level 1e-3; (b) one p-value per
    point (a label picked by a fixed RNG) pooled over all points, KS at 1e-3.
    Checks whose quantity does not vary with x (constant or zero Hessian
    entries) have only a rounding floor as standard error, so a detectable
    error below 1e-8, and are excluded. Runs use alpha = 0.05 so
    that Holm's family-wise guarantee is visible: the number of failed runs is
    at most Binomial(runs, 0.05) (Holm is valid under any dependence, and
    conservative here); we reject above its 1 - 1e-3 quantile. Deterministic
    checks must never fail. Four chunks per point exercise the chunk merge.
    """
    families = ["bernoulli_logit", "categorical_softmax", "diag_gaussian"]
    seeds = range(30)
    by_label: dict[tuple, list[float]] = {}
    per_point: dict[tuple, list[float]] = {}
    failed_runs = runs = 0
    for name in families:
        for seed in seeds:
            report, _ = _run(
                name,
                n_samples=2**13,
                chunk=2**11,
                seed=seed,
                points=3,
                alpha=0.05,
                cramer_rao=False,
            )
            runs += 1
            failed_runs += not report.passed
            for c in report.checks:
                if c.kind != "stochastic":
                    assert not c.failed, (name, seed, c)
                    continue
                assert c.n == 2**13
                if c.detectable < 1e-8:
                    continue  # constant quantity: a rounding floor as its se
                label = (name, c.name, "" if c.name == "MC KL = KL" else c.entry)
                by_label.setdefault(label, []).append(c.p_value)
                point = (name, seed, tuple(c.point.values()))
                per_point.setdefault(point, []).append(c.p_value)
    assert len(by_label) >= 20
    pmin = min(sps.kstest(p, "uniform").pvalue for p in by_label.values())
    assert pmin * len(by_label) > 1e-3, pmin
    rng = np.random.default_rng(0)
    pooled = [ps[rng.integers(len(ps))] for ps in per_point.values()]
    assert len(pooled) == len(families) * len(seeds) * 3
    assert sps.kstest(pooled, "uniform").pvalue > 1e-3
    assert failed_runs <= sps.binom.isf(1e-3, runs, 0.05), failed_runs


# --------------------------------------------------------------------------
# sharding over devices (spec part 6)

_SHARDED = textwrap.dedent(
    """
    import sys, warnings
    import jax
    warnings.simplefilter("ignore")
    from symfisher.verify import verify
    assert len(jax.devices()) == 2, jax.devices()
    r = verify("normal", n_samples=3 * 2**13, chunk=2**13, points=2,
               cramer_rao=False, devices=jax.devices())
    sys.stdout.write(r.to_json())
    """
)


def test_sharded_over_two_devices_matches_one_device():
    # two CPU devices: the flag must be in the environment before jax is imported
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sharded = json.loads(out.stdout)
    # three chunks over two devices: the last round computes one chunk too many
    single, _ = _run(
        "normal",
        n_samples=3 * 2**13,
        chunk=2**13,
        points=2,
        cramer_rao=False,
        devices=[jax.devices()[0]],
    )
    single = json.loads(single.to_json())
    assert sharded["settings"]["devices"] == 2 and single["settings"]["devices"] == 1
    assert sharded["passed"] == single["passed"]
    assert len(sharded["checks"]) == len(single["checks"]) > 0
    for a, b in zip(sharded["checks"], single["checks"], strict=True):
        assert (a["name"], a["entry"], a["point"], a["verdict"]) == (
            b["name"],
            b["entry"],
            b["point"],
            b["verdict"],
        )
        for key in ("expected", "observed", "se", "statistic", "p_value", "n"):
            x, y = a[key], b[key]
            if isinstance(y, float):
                assert abs(x - y) <= 1e-12 * max(1.0, abs(y)), (a, b, key)
            else:
                assert x == y


# --------------------------------------------------------------------------
# reports and the CLI


def _strict_json(text):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=bad)


def test_to_json_schema(correct):
    report, _ = correct("normal")
    doc = _strict_json(report.to_json())
    assert doc["schema"] == SCHEMA == "symfisher.verify/1"
    assert set(doc) == {
        "schema",
        "passed",
        "seconds",
        "settings",
        "summary",
        "checks",
        "traces",
    }
    assert doc["passed"] is True
    assert set(doc["settings"]) == {
        "n_samples",
        "seed",
        "points",
        "alpha",
        "power",
        "target_error",
        "chunk",
        "devices",
    }
    assert doc["settings"]["alpha"] == 1e-3 and doc["settings"]["points"] == 3
    s = doc["summary"]["normal"]
    assert set(s) == {
        "passed",
        "checks",
        "failed",
        "not_applicable",
        "worst_detectable",
    }
    assert s["checks"] == len(doc["checks"]) == len(report.checks)
    keys = {
        "family",
        "name",
        "entry",
        "point",
        "kind",
        "expected",
        "observed",
        "se",
        "statistic",
        "p_value",
        "verdict",
        "detectable",
        "n",
        "message",
    }
    assert all(set(c) == keys for c in doc["checks"])
    assert doc["traces"]
    for t in doc["traces"]:
        assert set(t) == {
            "family",
            "quantity",
            "point_index",
            "n",
            "error",
            "reference",
        }
        assert len(t["n"]) == len(t["error"]) == len(t["reference"])
        assert t["n"] == sorted(t["n"])


def test_to_json_non_finite_is_strict_json():
    r = Report(
        [
            Check(
                "x",
                "E[s] = 0",
                "(0)",
                {"a": 1.0},
                observed=float("nan"),
                se=float("inf"),
            )
        ]
    )
    doc = _strict_json(r.to_json())
    assert doc["checks"][0]["observed"] == "nan" and doc["checks"][0]["se"] == "inf"


def test_markdown_and_table(correct):
    report, _ = correct("normal")
    laplace, _ = correct("laplace")
    both = Report(report.checks + laplace.checks, report.traces + laplace.traces)
    md = both.to_markdown()
    assert md.startswith("# symfisher verification report")
    assert "Result: **PASSED**" in md
    assert "| family | verdict | checks | failed | not applicable |" in md
    # 14 checks at each of 3 points (the entropy's among them), +2 there for
    # natural_gradient and fisher_sqrt
    assert "| normal | pass | 48 | 0 | 0 |" in md
    # laplace: -E[H] = F is not applicable at its 3 points (the Dirac mass); its
    # closed-form KL is checked like any other
    assert re.search(r"\| laplace \| pass \| \d+ \| 0 \| 3 \|", md)
    assert any("KL" in c.name and c.verdict == "pass" for c in laplace.checks)
    assert "not twice differentiable" in md  # the notes section
    failing = Report([Check("x", "E[s] = 0", verdict="fail", message="planted")])
    assert "Result: **FAILED**" in failing.to_markdown()
    assert "planted" in failing.to_markdown()
    assert both.table().row_count == 2


def test_plot_one_png_per_family(correct, tmp_path):
    report, _ = correct("normal")
    laplace, _ = correct("laplace")
    both = Report(report.checks + laplace.checks, report.traces + laplace.traces)
    written = both.plot(tmp_path / "plots")
    assert sorted(p.name for p in written) == ["laplace.png", "normal.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 5000
    # a family without Monte Carlo traces (non-regular) still gets its PNG
    uniform = Report([Check("uniform", "Fisher identities", verdict="not applicable")])
    assert [p.name for p in uniform.plot(tmp_path / "u")] == ["uniform.png"]


def test_cli_verify_writes_reports(tmp_path, capsys):
    j, m, d = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "plots"
    argv = ["verify", "normal", "--no-cramer-rao"]
    argv += ["--json", str(j), "--markdown", str(m), "--plots", str(d)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out
    doc = _strict_json(j.read_text())
    assert doc["passed"] is True and doc["settings"]["points"] == 3
    assert doc["settings"]["n_samples"]["normal"] >= 2**16  # chosen by the pilot
    assert doc["summary"]["normal"]["failed"] == 0
    assert "| normal | pass |" in m.read_text()
    assert [p.name for p in d.iterdir()] == ["normal.png"]


def test_cli_exit_code_1_on_failure(tmp_path, monkeypatch, capsys):
    import symfisher.verify.run as vrun

    def failing(names, policies, **kw):
        assert names == ["normal"] and policies == [] and kw["cramer_rao"] is False
        return Report(
            [Check("normal", "E[s] = 0", "(0)", verdict="fail", message="planted")]
        )

    monkeypatch.setattr(vrun, "verify_all", failing)
    j = tmp_path / "r.json"
    assert cli.main(["verify", "normal", "--no-cramer-rao", "--json", str(j)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert _strict_json(j.read_text())["passed"] is False
    assert cli.main(["verify", "no_such_family"]) == 2
    assert "unknown name 'no_such_family'" in capsys.readouterr().err
    assert cli.main(["verify"]) == 2  # neither names nor --all


# -- families without a sampler: the generic one (issue 12, part 5) -----------------
USER_GAMMA = "(a - 1)*log(x) - b*x + a*log(b) - loggamma(a)"
USER_BERNOULLI = "x*log(p) + (1 - x)*log(1 - p)"


def _user_gamma(**kw):
    return sf.define_family(
        "user_gamma",
        USER_GAMMA,
        params={"a": "positive", "b": "positive"},
        support="positive_reals",
        **kw,
    )


@pytest.mark.parametrize(
    "make, method",
    [
        (_user_gamma, "sampler: generic inverse CDF (PINV), u-error ≤ 1e-10"),
        (
            lambda: sf.define_family(
                "user_bernoulli",
                USER_BERNOULLI,
                params={"p": "unit_interval"},
                support="binary",
            ),
            "sampler: generic exact categorical, exact",
        ),
    ],
    ids=["gamma", "bernoulli"],
)
def test_user_family_without_sampler_passes_with_the_generic_one(make, method):
    fam = make()
    assert fam.sampler is None
    report, _ = _run(fam, seed=0, points=2)
    assert report.passed, [c for c in report.checks if c.failed]
    notes = [c for c in report.checks if c.name.startswith("sampler: generic")]
    assert [c.name for c in notes] == [method] * 2
    assert all(c.verdict == "report" and "generic sampler" in c.message for c in notes)
    moments = [c for c in report.checks if c.name == "sampler moments"]
    assert moments and all(c.verdict == "pass" for c in moments)


@pytest.mark.slow
def test_weibull_from_a_string_without_sampler_passes():
    """A textbook family typed by a user: no sampler, Fisher with pi^2/6 and gamma."""
    fam = sf.define_family(
        "user_weibull",
        "log(k) - log(lam) + (k - 1)*log(x/lam) - (x/lam)**k",
        params={"k": "positive", "lam": "positive"},
        support="positive_reals",
    )
    report, _ = _run(fam, seed=0, points=2)
    assert report.passed, [c for c in report.checks if c.failed]
    names = {c.name for c in report.checks}
    assert "sampler: generic inverse CDF (PINV), u-error ≤ 1e-10" in names
    assert {"E[s] = 0", "E[s s^T] = F", "sampler moments"} <= names


def test_wrong_sampler_of_a_user_family_fails_where_the_generic_one_passes():
    """Power: the generic sampler scaled by 1.05, passed as the family's own sampler."""
    from symfisher.families.generic_sampler import default_sampler

    good = default_sampler(_user_gamma())

    def wrong(key, theta, shape=()):
        return 1.05 * good(key, theta, shape)

    report, _ = _run(
        _user_gamma(sampler=wrong), seed=0, points=1, n_samples=2**16, cramer_rao=False
    )
    assert not any(c.name.startswith("sampler: generic") for c in report.checks)
    failed = {c.name for c in report.checks if c.failed}
    assert "sampler moments" in failed, failed


def test_family_no_generic_sampler_can_serve_names_what_to_pass():
    import sympy as sp

    x1, x2, mu = sp.Symbol("x1"), sp.Symbol("x2"), sp.Symbol("mu")
    fam = sf.Family(
        "plane",
        (mu,),
        (sp.Reals,),
        (x1, x2),
        -((x1 - mu) ** 2) / 2 - x2**2 / 2 - sp.log(2 * sp.pi),
        (sp.Reals, sp.Reals),
    )
    with pytest.raises(FamilyError, match=r"plane: no generic sampler.*sampler="):
        verify(fam, seed=0)


def test_stated_quadrature_accuracy_widens_only_the_expected_value():
    from symfisher.verify.run import _z_check

    fam = catalog_family("normal")
    theta = np.array([0.0, 1.0])
    # observed 1.001 +- 1e-4 against 1: a 10-sigma miss ...
    miss = _z_check(fam, theta, "c", "", 1.001, 1e-4, 1.0, 1.0, 100)
    assert miss.p_value < 1e-20
    # ... consistent with a kernel that states 1e-3 ...
    ok = _z_check(fam, theta, "c", "", 1.001, 1e-4, 1.0, 1.0, 100, 1e-3)
    assert ok.p_value == pytest.approx(1.0) and ok.expected == 1.0
    # ... but not with one that states 5e-4: z from the nearest edge, 1.0005
    edge = _z_check(fam, theta, "c", "", 1.001, 1e-4, 1.0, 1.0, 100, 5e-4)
    assert edge.statistic == pytest.approx(5.0, rel=1e-6)


def test_points_of_quadrature_kernels_lie_in_their_stated_ranges():
    from symfisher.verify.run import _points

    fam = catalog_family("student_t")
    ranges = {"mu": (-0.5, 0.5), "sigma": (2.0, 3.0)}
    pts = _points(fam, 20, seed=0, ranges=ranges)
    assert all(-0.5 <= p[0] <= 0.5 and 2.0 <= p[1] <= 3.0 for p in pts)
    # without ranges: the usual draw, which leaves that box
    free = _points(fam, 20, seed=0)
    assert any(not (2.0 <= p[1] <= 3.0) for p in free)


def test_few_samples_are_honoured_with_a_warning_naming_the_detectable_error():
    with pytest.warns(UserWarning, match=r"cannot detect a 2% relative error"):
        report = verify("normal", n_samples=1000, points=1, cramer_rao=False)
    assert report.settings["n_samples"]["normal"] == 1000
    assert {c.n for c in report.checks if c.kind == "stochastic"} == {1000}


def test_samples_that_are_not_whole_chunks_are_rounded_up_with_a_warning():
    with pytest.warns(UserWarning, match=r"n_samples=5000 rounded up to 8192"):
        report = verify(
            "normal", n_samples=5000, chunk=4096, points=1, cramer_rao=False
        )
    assert report.settings["n_samples"]["normal"] == 8192
