"""Generated kernels at extreme parameter values against 50-digit SymPy/mpmath.

Points: logits of +-1e4 (bernoulli_logit, categorical_softmax), log sigma of
+-20 (normal_logstd, diag_gaussian), kappa up to 1e3 (von_mises), Gamma and Beta
shapes from 1e-3 to 1e4, and probabilities within 1e-12 of 0 or 1 (bernoulli,
categorical). At each point ``log_prob``, ``score``, ``hessian_log_prob``,
``fisher`` (and ``fisher_diag``) and ``kl`` are compared in float64 with the
expressions of ``sf.derive(name)`` evaluated by mpmath at 50 digits, at the
exact binary values of the float64 inputs; ``jax.grad`` of ``log_prob`` and
``kl`` must be finite.

Tolerance, from conditioning rather than tuning: a kernel value ``got`` passes
against the reference ``ref`` of expression ``e`` when

    |got - ref| <= max(RTOL * |ref|, C * EPS * rounding_scale(e))

``rounding_scale`` is the sum of the absolute values of the terms of ``e``
(:func:`magnitude`, through its Add/Mul structure). For a well-conditioned
result it is ~|ref| and the relative bound ``RTOL = 1e-12`` applies. Where the
formula is a difference of large terms (trigamma(a) - trigamma(a+b),
1 - A^2 - A/kappa, a KL between near-identical points, a value that underflows
like exp(-1e4)) any float64 evaluation of it loses about EPS * magnitude, and
``C = 64`` allows a few dozen roundings of the largest term. Results whose true
size underflows must therefore come out as 0 (or below that bound), never NaN.

Two refinements keep the bound from being vacuous when SymPy's form cancels
more than the problem does: an Add of two exact operands (``p - 1``,
``x - mu``) is one correctly rounded operation, so it counts with its own
size; and the scale is the smaller of the magnitudes of ``e`` and of
:func:`regrouped` ``(e)``, the same formula with each polynomial coefficient
factored (the expanded Gaussian KL ``(mu^2 - 2 mu mu' + mu'^2) e^{-2 omega'}``
has terms of 1e16 at omega' = -20; ``(mu - mu')^2 e^{-2 omega'}`` has none).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy as sp

import symfisher as sf

jax.config.update("jax_enable_x64", True)

DPS = 50  # mpmath working precision (decimal digits) for the references
EPS = float(np.finfo(np.float64).eps)  # 2.22e-16
RTOL = 1e-12  # well-conditioned results
C = 64  # roundings of the largest term allowed where terms cancel


# -- references ----------------------------------------------------------------------


@functools.cache
def _derivation(name: str):
    return sf.derive(name)


@functools.cache
def _lambdified(expr: sp.Expr, symbols: tuple[sp.Symbol, ...]):
    return sp.lambdify(symbols, expr, modules="mpmath")


def _mp(expr: sp.Expr, subs: dict[sp.Symbol, float]) -> mpmath.mpf:
    """``expr`` at ``subs`` (exact float64 inputs), evaluated at DPS digits."""
    symbols = tuple(subs)
    fn = _lambdified(expr, symbols)
    with mpmath.workdps(DPS):
        value = fn(*(mpmath.mpf(float(subs[s])) for s in symbols))
        value = mpmath.mpmathify(value)
        if isinstance(value, mpmath.mpc):
            assert abs(value.imag) <= mpmath.mpf(10) ** (5 - DPS) * abs(value), (
                f"reference {expr} is complex at {subs}: {value}"
            )
            value = value.real
        return +value


def _exact_operand(e: sp.Expr) -> bool:
    """A float64 input or an integer, possibly scaled by +-2^k: exact in float64."""
    if isinstance(e, sp.Mul) and len(e.args) == 2 and e.args[0].is_Integer:
        n = abs(int(e.args[0]))
        return n & (n - 1) == 0 and _exact_operand(e.args[1])
    return bool(e.is_Symbol or e.is_Integer)


def magnitude(expr: sp.Expr, subs: dict[sp.Symbol, float]) -> mpmath.mpf:
    """Sum of the absolute values of the terms of ``expr`` (its rounding scale).

    Recurses through the top-level structure: an ``Add`` is the sum of its
    arguments' magnitudes, a ``Mul`` their product, anything else (a function
    call, a power, a symbol or a number) its absolute value. An ``Add`` of two
    exact operands (inputs or integers, like ``p - 1`` or ``x - mu``) is one
    correctly rounded operation, so its magnitude is its own absolute value.
    """
    if isinstance(expr, sp.Add):
        if len(expr.args) == 2 and all(_exact_operand(a) for a in expr.args):
            return abs(_mp(expr, subs))
        return mpmath.fsum(magnitude(a, subs) for a in expr.args)
    if isinstance(expr, sp.Mul):
        return mpmath.fprod(magnitude(a, subs) for a in expr.args)
    return abs(_mp(expr, subs))


@functools.cache
def regrouped(expr: sp.Expr) -> sp.Expr:
    """``expr`` expanded, its terms grouped by their non-polynomial factors, and
    each group's polynomial coefficient factored.

    An equivalent formula that may cancel less: the expanded Gaussian KL
    ``(mu^2 - 2 mu mu' + mu'^2) e^{-2 omega'}`` becomes ``(mu - mu')^2 e^{-2 omega'}``.
    """
    ex = sp.expand(expr, power_exp=False, power_base=False, log=False)
    if not isinstance(ex, sp.Add):
        return ex
    syms = sorted(ex.free_symbols, key=str)
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in ex.args:
        factors = sp.Mul.make_args(term)
        poly = [f for f in factors if f.is_polynomial(*syms)]
        other = sp.Mul(*(f for f in factors if not f.is_polynomial(*syms)))
        groups[other] = groups.get(other, sp.S.Zero) + sp.Mul(*poly)
    return sp.Add(*(sp.factor(c) * k for k, c in groups.items()))


def rounding_scale(expr: sp.Expr, subs: dict[sp.Symbol, float]) -> mpmath.mpf:
    """The smaller magnitude of ``expr`` and of its :func:`regrouped` form.

    Both are formulas a float64 kernel could evaluate, so the error of the
    better one bounds what an accurate kernel must achieve.
    """
    return min(magnitude(expr, subs), magnitude(regrouped(expr), subs))


@dataclass(frozen=True)
class Ref:
    """A reference value and its tolerance."""

    value: float
    tol: float
    exact: mpmath.mpf


def _ref(expr: sp.Expr, subs: dict[sp.Symbol, float]) -> Ref:
    exact = _mp(expr, subs)
    mag = rounding_scale(expr, subs)
    with mpmath.workdps(DPS):
        tol = max(RTOL * abs(exact), C * EPS * mag)
    return Ref(float(exact), float(tol), exact)


def _check(got, exprs, subs, what) -> list[str]:
    """Kernel output ``got`` against the SymPy expressions ``exprs`` (same shape).

    Returns one line per entry that is not finite or outside its tolerance.
    """
    got = np.asarray(got, dtype=np.float64)
    exprs = np.asarray(exprs, dtype=object).reshape(got.shape)
    problems = []
    for idx in np.ndindex(*got.shape):
        r = _ref(exprs[idx], subs)
        g = got[idx]
        if not np.isfinite(g) or not abs(g - r.value) <= r.tol:
            problems.append(
                f"{what}[{','.join(map(str, idx))}]: kernel {g!r} vs mpmath "
                f"{mpmath.nstr(r.exact, 17)} (|diff| {abs(g - r.value):.3g}, "
                f"tol {r.tol:.3g})"
            )
    return problems


def _report(problems: list[str]) -> None:
    assert not problems, "\n  ".join(["", *problems])


# -- the extreme points ----------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    theta: tuple[float, ...]
    xs: tuple  # x values (scalars, or tuples for vector x)
    label: str


@dataclass(frozen=True)
class Pair:
    p: tuple[float, ...]
    q: tuple[float, ...]
    label: str


ONE_M12 = 1.0 - 1e-12  # the float64 nearest 1 - 1e-12
POINTS: dict[str, list[Point]] = {
    "bernoulli": [
        Point((1e-12,), (0.0, 1.0), "p=1e-12"),
        Point((ONE_M12,), (0.0, 1.0), "p=1-1e-12"),
    ],
    "bernoulli_logit": [
        Point((1e4,), (0.0, 1.0), "eta=1e4"),
        Point((-1e4,), (0.0, 1.0), "eta=-1e4"),
        Point((40.0,), (0.0, 1.0), "eta=40"),
        Point((-40.0,), (0.0, 1.0), "eta=-40"),
    ],
    "categorical": [
        Point((1e-12, 1e-12), (0, 1, 2), "p=1e-12,1e-12"),
        Point((1e-12, 0.5), (0, 1, 2), "p=1e-12,0.5"),
        # p_2 = 2^-40 ~ 9.1e-13, exactly representable: 1 - p_0 - p_1 is exact.
        Point((0.5, 0.5 - 2.0**-40), (0, 1, 2), "p2=2^-40"),
        # p_0 within 2e-12 of 1, p_1 = p_2 ~ 1e-12 (decimal, not dyadic).
        Point((1.0 - 2e-12, 1e-12), (0, 1, 2), "p0=1-2e-12"),
    ],
    "categorical_softmax": [
        Point((1e4, -1e4, 0.0), (0, 1, 2), "z=1e4,-1e4,0"),
        Point((-1e4, 1e4, 1e4), (0, 1, 2), "z=-1e4,1e4,1e4"),
        # p_1 = e^-30 ~ 9.4e-14 next to p_0 ~ 1: F_00 = p_0 (1 - p_0) ~ 9.4e-14.
        Point((1e4, 1e4 - 30.0, -1e4), (0, 1, 2), "z=1e4,1e4-30,-1e4"),
        Point((-1e4, -1e4, -1e4), (0, 1, 2), "z=-1e4x3"),
    ],
    "normal_logstd": [
        Point((0.3, 20.0), (0.3, 0.3 + 1e9, -4e9), "omega=20"),
        Point((0.3, -20.0), (0.3, 0.3 + 3e-9, 0.3 - 1e-8, 1.3), "omega=-20"),
    ],
    "diag_gaussian": [
        Point(
            (0.3, -1.2, 20.0, -20.0),
            ((0.3, -1.2), (1e9, -1.2 + 3e-9), (-4e9, 0.0)),
            "omega=20,-20",
        ),
        Point(
            (0.3, -1.2, -20.0, -20.0),
            ((0.3, -1.2), (0.3 - 1e-8, -1.2 + 3e-9), (1.3, -2.2)),
            "omega=-20,-20",
        ),
    ],
    "von_mises": [
        # x - mu is kept away from multiples of pi: sin(mu - x) there is an
        # ill-conditioned function of x (relative condition ~ pi / |sin|).
        Point((0.4, 1e3), (0.4, 0.41, 0.4 + 2.5), "kappa=1e3"),
        Point((-2.0, 300.0), (-2.0, -1.9, 1.0), "kappa=300"),
        Point((0.4, 1e-3), (0.4, -2.0), "kappa=1e-3"),
    ],
    "gamma": [
        Point((1e-3, 2.0), (1e-300, 1e-5, 1.0), "a=1e-3"),
        Point((1e4, 3.0), (10000.0 / 3.0, 3300.0, 3400.0), "a=1e4,b=3"),
        Point((1e4, 1e4), (1.0, 0.99, 1.02), "a=1e4,b=1e4"),
    ],
    "beta": [
        Point((1e-3, 1e-3), (1e-10, 0.5, 1.0 - 1e-10), "a=b=1e-3"),
        Point((1e4, 1e4), (0.5, 0.49, 0.51), "a=b=1e4"),
        Point((1e-3, 1e4), (1e-300, 1e-8), "a=1e-3,b=1e4"),
        Point((1e4, 1e-3), (1.0 - 1e-8, 0.9999), "a=1e4,b=1e-3"),
        Point((1e4, 2.5), (0.9997, 0.99), "a=1e4,b=2.5"),
    ],
}

PAIRS: dict[str, list[Pair]] = {
    "bernoulli": [
        Pair((1e-12,), (2e-12,), "1e-12||2e-12"),
        Pair((ONE_M12,), (1.0 - 2e-12,), "1-1e-12||1-2e-12"),
        Pair((1e-12,), (ONE_M12,), "1e-12||1-1e-12"),
        Pair((ONE_M12,), (1e-12,), "1-1e-12||1e-12"),
        Pair((1e-12,), (1.000001e-12,), "near-identical"),
    ],
    "bernoulli_logit": [
        Pair((1e4,), (-1e4,), "1e4||-1e4"),
        Pair((-1e4,), (1e4,), "-1e4||1e4"),
        Pair((1e4,), (1e4 + 1.0,), "1e4||1e4+1"),
        Pair((-1e4,), (-1e4 + 1.0,), "-1e4||-1e4+1"),
        Pair((40.0,), (40.001,), "40||40.001"),
    ],
    "categorical": [
        Pair((1e-12, 1e-12), (1e-12, 0.5), "near-1||half"),
        Pair((1e-12, 0.5), (1e-12, 1e-12), "half||near-1"),
        Pair((1e-12, 1e-12), (1.000001e-12, 1e-12), "near-identical"),
        Pair((0.5, 0.5 - 2.0**-40), (0.5 - 2.0**-40, 0.5), "swap-near-0"),
    ],
    "categorical_softmax": [
        Pair((1e4, -1e4, 0.0), (-1e4, 1e4, 1e4), "opposite"),
        Pair((-1e4, 1e4, 1e4), (1e4, -1e4, 0.0), "opposite-reversed"),
        Pair((1e4, 1e4 - 30.0, -1e4), (1e4, 1e4 - 30.001, -1e4), "near-identical"),
        Pair((1e4, -1e4, 0.0), (1.5e4, -5e3, 5e3), "shifted-equal"),
    ],
    "normal_logstd": [
        Pair((0.3, 20.0), (0.3, -20.0), "omega=20||-20"),
        Pair((0.3, -20.0), (0.3, 20.0), "omega=-20||20"),
        Pair((0.3, -20.0), (0.3 + 1e-9, -20.0 + 1e-3), "near-identical-small"),
        Pair((0.3, 20.0), (1e8, 20.0 - 1e-3), "near-identical-large"),
    ],
    "diag_gaussian": [
        Pair((0.3, -1.2, 20.0, -20.0), (0.3, -1.2, -20.0, 20.0), "swap"),
        Pair(
            (0.3, -1.2, -20.0, -20.0),
            (0.3 + 1e-9, -1.2, -20.0 + 1e-3, -20.0),
            "near-identical",
        ),
    ],
    "von_mises": [
        Pair((0.4, 1e3), (0.41, 1e3), "kappa=1e3,dmu=0.01"),
        Pair((0.4, 1e3), (0.4, 1e3 + 1.0), "kappa=1e3||1e3+1"),
        Pair((0.4, 1e3), (0.4, 1.0), "kappa=1e3||1"),
        Pair((0.4, 1.0), (0.4, 1e3), "kappa=1||1e3"),
        Pair((-2.0, 300.0), (1.0, 1e-3), "kappa=300||1e-3"),
    ],
    "gamma": [
        Pair((1e4, 1e4), (1.001e4, 1e4), "a=1e4,near"),
        Pair((1e-3, 2.0), (1.001e-3, 2.0), "a=1e-3,near"),
        Pair((1e-3, 2.0), (1e4, 1e4), "1e-3||1e4,b=1e4"),
        Pair((1e4, 1e4), (1e-3, 2.0), "1e4||1e-3"),
        Pair((1e-3, 2.0), (1e4, 3.0), "1e-3||1e4,b=3"),
        Pair((1e4, 3.0), (1e4 + 1.0, 3.0), "a=1e4,b=3,near"),
    ],
    "beta": [
        Pair((1e4, 1e4), (1e4 + 10.0, 1e4), "a=b=1e4,near"),
        Pair((1e-3, 1e-3), (1.001e-3, 1e-3), "a=b=1e-3,near"),
        Pair((1e-3, 1e4), (1e4, 1e-3), "swap-extremes"),
        Pair((1e4, 1e4), (1e-3, 1e-3), "1e4||1e-3"),
    ],
}

FAMILIES = list(POINTS)
POINT_CASES = [
    pytest.param(name, pt, id=f"{name}-{pt.label}")
    for name in FAMILIES
    for pt in POINTS[name]
]
PAIR_CASES = [
    pytest.param(name, pair, id=f"{name}-{pair.label}")
    for name in FAMILIES
    for pair in PAIRS[name]
]


def _subs(name: str, theta, x=None) -> dict[sp.Symbol, float]:
    fam = _derivation(name).family
    subs = dict(zip(fam.params, theta, strict=True))
    if x is not None:
        xs = x if isinstance(x, tuple) else (x,)
        subs.update(zip(fam.variables, xs, strict=True))
    return subs


def _args(theta, x):
    """``theta`` and ``x`` as float64 arrays (integer class indices stay integers)."""
    x = np.array(x)
    x = x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64)
    return jnp.asarray(np.array(theta, dtype=np.float64)), jnp.asarray(x)


def test_points_match_derive_defaults():
    """The points have the sizes of sf.derive's defaults (K = 3, d = 2)."""
    assert set(PAIRS) == set(POINTS)
    for name in FAMILIES:
        fam = _derivation(name).family
        for pt in POINTS[name]:
            assert len(pt.theta) == len(fam.params), (name, pt.label)
            for x in pt.xs:
                n = len(x) if isinstance(x, tuple) else 1
                assert n == len(fam.variables), (name, pt.label)
        for pair in PAIRS[name]:
            assert len(pair.p) == len(pair.q) == len(fam.params), (name, pair.label)


@pytest.mark.parametrize(("name", "pt"), POINT_CASES)
def test_log_prob(name, pt):
    d, k = _derivation(name), sf.kernels(name)
    problems = []
    for x in pt.xs:
        got = k.log_prob(*_args(pt.theta, x))
        subs = _subs(name, pt.theta, x)
        problems += _check(got, d.family.log_density, subs, f"log_prob(x={x})")
    _report(problems)


@pytest.mark.parametrize(("name", "pt"), POINT_CASES)
def test_score(name, pt):
    d, k = _derivation(name), sf.kernels(name)
    problems = []
    for x in pt.xs:
        got = k.score(*_args(pt.theta, x))
        problems += _check(
            got, list(d.score), _subs(name, pt.theta, x), f"score(x={x})"
        )
    _report(problems)


@pytest.mark.parametrize(("name", "pt"), POINT_CASES)
def test_hessian_log_prob(name, pt):
    d, k = _derivation(name), sf.kernels(name)
    exprs = np.array(d.hessian.tolist(), dtype=object)
    problems = []
    for x in pt.xs:
        got = k.hessian_log_prob(*_args(pt.theta, x))
        subs = _subs(name, pt.theta, x)
        problems += _check(got, exprs, subs, f"hessian_log_prob(x={x})")
    _report(problems)


@pytest.mark.parametrize(("name", "pt"), POINT_CASES)
def test_fisher(name, pt):
    d, k = _derivation(name), sf.kernels(name)
    assert d.fisher is not None, f"{name}: sf.derive found no closed-form Fisher"
    theta = jnp.asarray(np.array(pt.theta))
    F = np.array(d.fisher.tolist(), dtype=object)
    subs = _subs(name, pt.theta)
    _report(
        _check(k.fisher(theta), F, subs, "fisher")
        + _check(k.fisher_diag(theta), np.diag(F), subs, "fisher_diag")
    )


@pytest.mark.parametrize(("name", "pair"), PAIR_CASES)
def test_kl(name, pair):
    d, k = _derivation(name), sf.kernels(name)
    assert d.kl is not None, f"{name}: sf.derive found no closed-form KL"
    subs = {
        **_subs(name, pair.p),
        **dict(zip(d.kl_primed, pair.q, strict=True)),
    }
    got = k.kl(jnp.asarray(np.array(pair.p)), jnp.asarray(np.array(pair.q)))
    _report(_check(got, d.kl, subs, f"kl(p={pair.p}, q={pair.q})"))


@pytest.mark.parametrize(("name", "pt"), POINT_CASES)
def test_grad_log_prob_finite(name, pt):
    k = sf.kernels(name)
    bad = []
    for x in pt.xs:
        theta, xa = _args(pt.theta, x)
        g = np.asarray(jax.grad(k.log_prob)(theta, xa))
        assert g.shape == theta.shape
        if not np.all(np.isfinite(g)):
            bad.append(f"x={x}: {g}")
    assert not bad, "grad log_prob not finite at " + "; ".join(bad)


@pytest.mark.parametrize(("name", "pair"), PAIR_CASES)
def test_grad_kl_finite(name, pair):
    k = sf.kernels(name)
    p, q = jnp.asarray(np.array(pair.p)), jnp.asarray(np.array(pair.q))
    grads = jax.grad(k.kl, argnums=(0, 1))(p, q)
    bad = [
        f"d kl / d theta_{side}: {np.asarray(g)}"
        for side, g in zip("pq", grads, strict=True)
        if not np.all(np.isfinite(np.asarray(g)))
    ]
    assert not bad, "; ".join(bad)


def test_magnitude_helper():
    """magnitude() adds |terms| through Add and Mul and stops elsewhere."""
    a, b, c = sp.symbols("a b c")
    subs = {a: 3.0, b: -2.0, c: 2.5}
    assert magnitude(a**2 + b, subs) == 11  # 9 + 2
    assert magnitude(a * (a**2 + b + 1), subs) == 36  # 3 * (9 + 2 + 1)
    assert magnitude(sp.log(a**2 + b), subs) == pytest.approx(math.log(7.0))
    assert magnitude(2 * a - 3 * sp.exp(b), subs) == pytest.approx(
        6 + 3 * math.exp(-2.0)
    )
    # Two exact operands: a single correctly rounded subtraction.
    assert magnitude(a + b, subs) == 1
    assert magnitude(a - 1, subs) == 2
    assert magnitude(a - 2 * c, subs) == 2
    assert magnitude(a - 3 * c, subs) == pytest.approx(10.5)  # 3c is rounded
    # regrouped() factors the polynomial coefficient of each exponential.
    e = (a**2 - 2 * a * c + c**2) * sp.exp(b) / 2 + sp.exp(2 * b) - b
    r = regrouped(e)
    assert sp.simplify(r - e) == 0
    assert r.has((a - c) ** 2)
    assert rounding_scale(e, subs) == pytest.approx(
        0.25 * math.exp(-2.0) / 2 + math.exp(-4.0) + 2, rel=1e-12
    )
    value = (0.25 * math.exp(-2.0)) / 2 + math.exp(-4.0) + 2.0
    assert _ref(e, subs).value == pytest.approx(value, rel=1e-15)
    assert _ref(e, subs).tol == pytest.approx(RTOL * value, rel=1e-12)
    tiny = a - a * (1 + sp.Float(2.0**-60))  # cancels: the rounding scale wins
    assert _ref(tiny, subs).tol == pytest.approx(C * EPS * 6, rel=1e-12)


def test_one_minus_a_power_is_printed_with_expm1():
    """Kumaraswamy's log(1 - x**a) near x = 1: -expm1(a log x) keeps its digits."""
    from symfisher.codegen import rewrite

    x, a = sp.symbols("x a", positive=True)
    e = sp.log(1 - x**a)
    s = rewrite.stable(e)
    assert s.has(rewrite.Expm1) and sp.simplify(rewrite.elementary(s) - e) == 0
    assert not rewrite.stable(sp.log(1 - x**2)).has(rewrite.Expm1)  # numeric power
    fam = sf.define_family(
        "kumaraswamy_edge",
        "log(a) + log(b) + (a-1)*log(x) + (b-1)*log(1 - x**a)",
        params={"a": "positive", "b": "positive"},
        support="unit_interval",
    )
    from symfisher.codegen.generate import module_text

    ns: dict = {}
    exec(compile(module_text(sf.derive(fam, seconds=2)), "<kuma>", "exec"), ns)
    x0 = float(np.nextafter(1.0, 0.0))  # the last float below 1
    for av, bv in [(0.3, 0.5), (2.0, 3.0), (1e-3, 0.7)]:
        got = float(ns["log_prob"](jnp.array([av, bv]), x0))
        with mpmath.workdps(DPS):
            xm = mpmath.mpf(x0)
            want = (
                mpmath.log(av)
                + mpmath.log(bv)
                + (av - 1) * mpmath.log(xm)
                + (bv - 1) * mpmath.log(1 - xm**av)
            )
        assert abs(got - float(want)) <= RTOL * abs(float(want)), (av, bv, got, want)
