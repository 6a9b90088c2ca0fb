"""define_family checks that the density integrates (or sums) to 1; normalize=True."""

import _thread
import dataclasses
import random
import threading
import time

import mpmath
import pytest
import sympy as sp

import symfisher as sf
from symfisher.errors import FamilyError
from symfisher.families import define, normalization, numeric_total
from symfisher.families.points import random_point

# name, log-density, params, support: correctly normalised, from strings
NORMALISED = [
    (
        "gaussian",
        "-(x - mu)**2/(2*sigma**2) - log(sigma) - log(2*pi)/2",
        {"mu": "real", "sigma": "positive"},
        "reals",
    ),
    (
        "gamma",
        "a*log(b) - loggamma(a) + (a - 1)*log(x) - b*x",
        {"a": "positive", "b": "positive"},
        "positive_reals",
    ),
    (
        "poisson",
        "x*log(lam) - lam - loggamma(x + 1)",
        {"lam": "positive"},
        "nonnegative_integers",
    ),
    ("bernoulli", "x*log(p) + (1 - x)*log(1 - p)", {"p": "unit_interval"}, "binary"),
    (
        "beta",
        "(a - 1)*log(x) + (b - 1)*log(1 - x) - log(beta(a, b))",
        {"a": "positive", "b": "positive"},
        "unit_interval",
    ),
    (
        "gumbel",
        "-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)",
        {"mu": "real", "beta": "positive"},
        "reals",
    ),
    (
        "cauchy",
        "-log(pi) - log(g) - log(1 + ((x - x0)/g)**2)",
        {"x0": "real", "g": "positive"},
        "reals",
    ),
    ("uniform", "-log(theta)", {"theta": "positive"}, "interval(0, theta)"),
    ("shifted_exp", "-(x - m)", {"m": "real"}, "interval(m, oo)"),
    (
        "binomial5",
        "log(binomial(5, x)) + x*log(p) + (5 - x)*log(1 - p)",
        {"p": "unit_interval"},
        "range(0, 6)",
    ),
    (
        "geometric",
        "x*log(1 - p) + log(p)",
        {"p": "unit_interval"},
        "nonnegative_integers",
    ),
    (
        "discrete_laplace",
        "log(1 - q) - log(1 + q) + Abs(x)*log(q)",
        {"q": "unit_interval"},
        "range(-oo, oo)",
    ),
    (
        "left_geometric",
        "log(1 - q) + (3 - x)*log(q)",
        {"q": "unit_interval"},
        "range(-oo, 4)",
    ),
    # a power-law tail: the count sum needs its Euler-Maclaurin tail
    (
        "zipf2",
        "-2*log(x) - log(pi**2/6) + 0*lam",
        {"lam": "positive"},
        "positive_integers",
    ),
    # integrable singularities at the ends of (0, 1): a, b < 1 at some points
    (
        "kumaraswamy",
        "log(a) + log(b) + (a - 1)*log(x) + (b - 1)*log(1 - x**a)",
        {"a": "positive", "b": "positive"},
        "unit_interval",
    ),
    (
        "beta_small",
        "(a - 1)*log(x) + (b - 1)*log(1 - x) - log(beta(a, b))",
        {"a": "unit_interval", "b": "unit_interval"},
        "unit_interval",
    ),
    (
        "beta_03",
        "-7*log(x)/10 - 7*log(1 - x)/10 - log(beta(3/10, 3/10)) + 0*m",
        {"m": "real"},
        "unit_interval",
    ),
    (
        "arcsine",
        "-log(pi) - log(x)/2 - log(1 - x)/2 + 0*m",
        {"m": "real"},
        "unit_interval",
    ),
    (
        "skew_normal",
        "log(2) - log(omega) + normal_logpdf((x - xi)/omega)"
        " + log_Phi(alpha*(x - xi)/omega)",
        {"xi": "real", "omega": "positive", "alpha": "real"},
        "reals",
    ),
    (
        "normal_mixture",
        "log(w*exp(-(x - m1)**2/2) + (1 - w)*exp(-(x - m2)**2/2)) - log(2*pi)/2",
        {"w": "unit_interval", "m1": "real", "m2": "real"},
        "reals",
    ),
    (
        "weibull",
        "log(k) - log(lam) + (k - 1)*log(x/lam) - (x/lam)**k",
        {"k": "positive", "lam": "positive"},
        "positive_reals",
    ),
    (
        "zero_inflated_poisson",
        "log(w*Max(0, 1 - x) + (1 - w)*exp(-lam)*lam**x/factorial(x))",
        {"w": "unit_interval", "lam": "positive"},
        "nonnegative_integers",
    ),
    # two-sided counts, one centred far beyond the first MAX_TERMS terms from 0
    (
        "discrete_laplace_s",
        "log((1 - exp(-1/s))/(1 + exp(-1/s))) - Abs(x)/s",
        {"s": "positive"},
        "range(-oo, oo)",
    ),
    (
        "discrete_laplace_far",
        "log((1 - exp(-1/s))/(1 + exp(-1/s))) - Abs(x - 5000)/s",
        {"s": "positive"},
        "range(-oo, oo)",
    ),
]


def _within(seconds, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing (not hanging) past ``seconds``."""
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    t = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail(f"still running after {seconds} s")
    finally:
        timer.cancel()
    return out, time.perf_counter() - t


@pytest.mark.parametrize("case", NORMALISED, ids=[c[0] for c in NORMALISED])
def test_normalised_families_from_strings_pass(case):
    name, logp, params, support = case
    fam, elapsed = _within(
        30, sf.define_family, name, logp, params=params, support=support
    )
    print(f"{name}: define_family {elapsed:.3f} s")
    assert fam.name == name


@pytest.mark.parametrize("case", NORMALISED, ids=[c[0] for c in NORMALISED])
def test_quadrature_alone_confirms_the_normalised_families(case, monkeypatch):
    # no symbolic shortcut: the 30-digit numbers must decide on their own
    monkeypatch.setattr(normalization, "_symbolic_total", lambda family, s: None)
    name, logp, params, support = case
    _, elapsed = _within(
        30, sf.define_family, name, logp, params=params, support=support
    )
    print(f"{name}: quadrature alone {elapsed:.3f} s")


def test_density_off_by_sqrt_pi_is_rejected_with_the_value_and_the_point():
    with pytest.raises(FamilyError, match=r"integrates to 1\.7725 at mu=") as e:
        sf.define_family("loc", "-(x - mu)**2", params={"mu": "real"})
    print(e.value)


def test_the_point_is_seeded_by_the_definition():
    msgs = []
    for _ in range(2):
        with pytest.raises(FamilyError) as e:
            sf.define_family("loc", "-(x - mu)**2", params={"mu": "real"})
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


@pytest.mark.parametrize(
    "logp, params, support, match",
    [
        # off by 1e-6 only: still caught
        (
            "-(x - mu)**2/2 - log(2*pi)/2 + 1/1000000",
            {"mu": "real"},
            "reals",
            r"integrates to 1\.0000",
        ),
        (
            "x*log(lam) - loggamma(x + 1)",
            {"lam": "positive"},
            "nonnegative_integers",
            r"sums to \d",
        ),
        ("x*log(p)", {"p": "unit_interval"}, "binary", r"sums to \d"),
        (
            "0*theta",
            {"theta": "positive"},
            "interval(0, theta)",
            r"integrates to [\d.]+ at theta=",
        ),
        (
            "log(1 - q) + (2 - x)*log(q)",
            {"q": "unit_interval"},
            "range(-oo, 4)",
            r"sums to \d",
        ),
        (
            "-2*log(x) - log(pi**2/6) + log(2) + 0*lam",
            {"lam": "positive"},
            "positive_integers",
            r"sums to 2\.0 at lam=",
        ),
        # an integrable end singularity, off by 2
        (
            "-log(x)/2 - log(1 - x)/2 + 0*m",
            {"m": "real"},
            "unit_interval",
            r"integrates to 3\.14\d* at m=",
        ),
    ],
)
def test_unnormalised_densities_are_rejected(logp, params, support, match):
    with pytest.raises(FamilyError, match=match):
        sf.define_family("bad", logp, params=params, support=support)


@pytest.mark.parametrize(
    "logp, params, support",
    [
        ("0*x + 0*mu", {"mu": "real"}, "reals"),
        ("x + 0*mu", {"mu": "real"}, "reals"),
        ("mu*x", {"mu": "real"}, "reals"),
        ("-log(x) + 0*mu", {"mu": "positive"}, "positive_reals"),
        ("-log(x + 1) + 0*mu", {"mu": "positive"}, "nonnegative_integers"),
        # 1/x and 1/(1 - x) on (0, 1): non-integrable at a finite end
        ("-log(x) + 0*mu", {"mu": "positive"}, "unit_interval"),
        ("-log(1 - x) + 0*mu", {"mu": "positive"}, "unit_interval"),
        ("-3*log(x)/2 + 0*mu", {"mu": "positive"}, "unit_interval"),
        # Beta's shape with a < 0 at the point: diverges at 0
        ("(a - 1)*log(x) + 0*mu", {"a": "negative", "mu": "positive"}, "unit_interval"),
        # normalised for alpha > 0 only; SymPy's "1" holds under that condition
        ("log(abs(alpha)) - (alpha + 1)*log(x)", {"alpha": "real"}, "interval(1, oo)"),
    ],
    ids=[
        "constant",
        "exp",
        "exp_mu",
        "one_over_x",
        "harmonic",
        "one_over_x_at_0",
        "one_over_1_minus_x_at_1",
        "x_to_the_minus_3_2_at_0",
        "negative_shape_at_0",
        "pareto_real_alpha",
    ],
)
def test_non_normalisable_densities_are_rejected(logp, params, support):
    with pytest.raises(FamilyError, match="not normalisable"):
        sf.define_family("bad", logp, params=params, support=support)


def test_symbolic_one_counts_only_where_its_conditions_hold_on_the_domain(
    monkeypatch,
):
    text = "log(abs(alpha)) - (alpha + 1)*log(x)"
    ok = sf.define_family(
        "pareto", text, params={"alpha": "positive"}, support="interval(1, oo)"
    )
    assert normalization._symbolic_total(ok, 30) == 1
    # alpha real: SymPy's 1 needs alpha > 0, which fails at some domain points
    monkeypatch.setattr(define, "check_normalization", lambda family: None)
    bad = sf.define_family(
        "pareto", text, params={"alpha": "real"}, support="interval(1, oo)"
    )
    assert normalization._symbolic_total(bad, 30) is None


def test_interrupted_sympy_table_build_is_repaired(monkeypatch):
    from sympy.integrals import meijerint

    monkeypatch.setattr(meijerint, "_lookup_table", {"partial": []})
    monkeypatch.setattr(normalization, "_warmed", False)
    fam = sf.define_family(
        "g",
        "(a - 1)*log(x) - b*x",
        params={"a": "positive", "b": "positive"},
        support="positive_reals",
        normalize=True,
    )
    assert "loggamma(a)" in str(fam.log_density)


# huge finite ranges: summed like count supports, never element by element. The
# families are built on a short range and given the long one afterwards
# (define_family's own steps outside this check still list a finite support).
HUGE = [
    ("discrete_uniform", "-9*log(10) + 0*m", {"m": "real"}, (0, 10**9), 1),
    (
        "truncated_geometric",
        "log(1 - q) + x*log(q)",  # its truncation term q**(10**9) is below 1e-40000
        {"q": "unit_interval"},
        (0, 10**9),
        1,
    ),
    (
        "truncated_discrete_laplace",
        "log((1 - exp(-1/s))/(1 + exp(-1/s))) - Abs(x)/s",
        {"s": "positive"},
        (-(10**9), 10**9),
        1,
    ),
    ("counting_measure", "0*m", {"m": "real"}, (0, 10**9), 10**9),
]


@pytest.mark.parametrize("case", HUGE, ids=[c[0] for c in HUGE])
@pytest.mark.parametrize("symbolic", [True, False], ids=["symbolic", "numeric"])
def test_huge_finite_ranges_are_checked_at_bounded_cost(case, symbolic, monkeypatch):
    name, logp, params, support, want = case
    if not symbolic:
        monkeypatch.setattr(normalization, "_symbolic_total", lambda family, s: None)
    monkeypatch.setattr(define, "check_normalization", lambda family: None)
    lo, hi = support
    short = "range(-1, 2)" if lo < 0 else "range(0, 2)"  # x's sign assumption
    long = sf.define_family(name, logp, params=params, support=short)
    fam = dataclasses.replace(long, supports=(sp.Range(lo, hi),))
    if want == 1:  # a sum over 1e9 terms would run far past the 30 s guard
        _within(30, normalization.check_normalization, fam)
    else:
        with pytest.raises(FamilyError, match=r"sums to 1\.0e\+9 at m="):
            _within(30, normalization.check_normalization, fam)
    point = random_point(fam, random.Random(0))
    total, err = _within(30, normalization.total_at, fam, point)[0]
    print(f"{name}: total {mpmath.nstr(total, 12)} +- {mpmath.nstr(err, 3)}")
    assert abs(total - want) <= 1e-12 * want + 10 * err and err < 1e-12 * want


def test_two_sided_count_sums_do_not_recurse():
    x = sp.Symbol("x", integer=True)
    logp = -sp.Abs(x - 7) / 2 - sp.log(sp.coth(sp.Rational(1, 4)))
    for support in (sp.Integers, sp.Range(-sp.oo, sp.oo), sp.Range(sp.oo, -sp.oo, -1)):
        with mpmath.workdps(30):
            total, err = numeric_total._count_sum(logp, x, support)
        assert abs(total - 1) < 1e-25 and err < 1e-25


def test_total_at_is_accurate_to_many_digits():
    fam = sf.family("gamma")
    rng = random.Random(1)
    for _ in range(3):
        point = random_point(fam, rng)
        with mpmath.workdps(30):
            total, err = normalization.total_at(fam, point)
            assert abs(total - 1) < mpmath.mpf(10) ** -20
            assert err < mpmath.mpf(10) ** -20


def test_catalog_scalar_families_are_normalised():
    for name in [
        "normal",
        "gamma",
        "beta",
        "poisson",
        "von_mises",
        "laplace",
        "tanh_gaussian",
        "uniform",
        "exponential",
        "bernoulli",
    ]:
        normalization.check_normalization(sf.family(name))


# -- normalize=True -----------------------------------------------------------------
def test_normalize_fixes_the_sqrt_pi_family_and_its_fisher():
    fam = sf.define_family("loc", "-(x - mu)**2", params={"mu": "real"}, normalize=True)
    (mu,), x = fam.params, fam.x
    assert sp.simplify(fam.log_density - (-((x - mu) ** 2) - sp.log(sp.pi) / 2)) == 0
    # N(mu, 1/2): Fisher 1/variance = 2 (unnormalised it came out as 2*sqrt(pi))
    assert sf.derive(fam).fisher == sp.Matrix([[2]])


@pytest.mark.parametrize(
    "logp, params, support, want",
    [
        (
            "(a - 1)*log(x) - b*x",
            {"a": "positive", "b": "positive"},
            "positive_reals",
            "a*log(b) - loggamma(a) + (a - 1)*log(x) - b*x",
        ),
        (
            "x*log(lam) - loggamma(x + 1)",
            {"lam": "positive"},
            "nonnegative_integers",
            "x*log(lam) - lam - loggamma(x + 1)",
        ),
        ("x*z", {"z": "real"}, "binary", "x*z - log(1 + exp(z))"),
        ("0*theta", {"theta": "positive"}, "interval(0, theta)", "-log(theta)"),
    ],
    ids=["gamma", "poisson", "bernoulli_logit", "uniform"],
)
def test_normalize_divides_by_the_closed_form_normaliser(logp, params, support, want):
    fam = sf.define_family("f", logp, params=params, support=support, normalize=True)
    ref = sf.define_family("ref", want, params=params, support=support)
    assert fam.params == ref.params and fam.x == ref.x  # same names, same symbols
    assert sp.simplify(fam.log_density - ref.log_density) == 0


def test_normalize_without_a_closed_form_keeps_z_as_an_integral(monkeypatch):
    monkeypatch.setattr(normalization, "NORMALIZER_SECONDS", 0.5)
    fam = sf.define_family(
        "vm",
        "k*cos(x - mu) + sin(x)**4*k",
        params={"mu": "real", "k": "positive"},
        support="interval(-pi, pi)",
        normalize=True,
    )
    (z,) = fam.log_density.atoms(sp.Integral)
    assert z.limits == ((fam.x, -sp.pi, sp.pi),)
    assert sp.simplify(fam.log_density + sp.log(z) - z.function.args[0]) == 0


def test_normalize_of_a_divergent_density_is_rejected():
    with pytest.raises(FamilyError, match="not normalisable"):
        sf.define_family("bad", "0*x + 0*mu", params={"mu": "real"}, normalize=True)


def test_union_of_intervals_is_checked_piece_by_piece():
    two = sp.Union(sp.Interval.open(-2, -1), sp.Interval.open(1, 2))
    sf.define_family("two", "-log(2) + 0*m", params={"m": "real"}, support=two)
    with pytest.raises(FamilyError, match=r"integrates to 2\.0 at m="):
        sf.define_family("two", "0*m", params={"m": "real"}, support=two)
