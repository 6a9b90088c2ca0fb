"""Tests for the safe expression parser ``symfisher.parse``."""

from __future__ import annotations

import ast
import builtins
import fractions
import inspect
import time

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import symfisher.parse as parse_module
import symfisher.parse_functions as parse_functions
import symfisher.parse_guard as parse_guard
from symfisher.errors import ParseError
from symfisher.parse import ALLOWED_CONSTANTS, ALLOWED_FUNCTIONS, parse_expr

x, mu, beta, y = sympy.symbols("x mu beta y")
a, b = sympy.symbols("a b")
SYMBOLS = {"x": x, "mu": mu, "beta": beta}
PLAIN = {"x": x, "mu": mu, "a": a, "b": b}  # no "beta": the beta function is free
SECONDS = 5.0  # generous bound for "rejected quickly" on a slow machine


def parses_to(text: str, symbols: dict[str, sympy.Symbol] = SYMBOLS) -> sympy.Expr:
    return parse_expr(text, symbols)


# -- valid input --------------------------------------------------------------

VALID = [
    (
        "-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)",
        -sympy.log(beta) - (x - mu) / beta - sympy.exp(-(x - mu) / beta),
    ),
    (
        "-0.5*log(2*pi*beta**2) - (x - mu)**2/(2*beta**2)",
        -sympy.Rational(1, 2) * sympy.log(2 * sympy.pi * beta**2)
        - (x - mu) ** 2 / (2 * beta**2),
    ),
    ("x**2 + 3*x - 1", x**2 + 3 * x - 1),
    ("+x - -mu", x + mu),
    ("x / beta / 2", x / beta / 2),
    ("2**-1", sympy.Rational(1, 2)),
    ("x ** 0.5", sympy.sqrt(x)),
    ("x**2**3", x**8),
    ("0x10 * x", 16 * x),
    ("  x + 1  ", x + 1),
    ("(x +\n mu)", x + mu),
    ("log(x, 2)", sympy.log(x, 2)),
    ("sqrt(2*pi)", sympy.sqrt(2 * sympy.pi)),
    ("pi + E + EulerGamma", sympy.pi + sympy.E + sympy.EulerGamma),
    ("oo", sympy.oo),
    ("exp(-oo)", sympy.Integer(0)),
    ("1/0", sympy.zoo),
    ("lgamma(x) - loggamma(mu)", sympy.loggamma(x) - sympy.loggamma(mu)),
    ("abs(x) + Abs(mu)", sympy.Abs(x) + sympy.Abs(mu)),
    ("polygamma(1, x) + digamma(mu)", sympy.polygamma(1, x) + sympy.digamma(mu)),
    ("binomial(10, 3) * factorial(4)", sympy.Integer(120 * 24)),
    ("atan2(x, mu)", sympy.atan2(x, mu)),
    ("Min(x, mu, 1) + Max(x, 0)", sympy.Min(x, mu, 1) + sympy.Max(x, 0)),
    (
        "besseli(0, x) * besselj(1, x) / besselk(2, x)",
        sympy.besseli(0, x) * sympy.besselj(1, x) / sympy.besselk(2, x),
    ),
    ("erf(x) + erfc(x)", sympy.erf(x) + sympy.erfc(x)),
    (
        "floor(x) + ceiling(x) + sign(x)",
        sympy.floor(x) + sympy.ceiling(x) + sympy.sign(x),
    ),
    ("log1p(x)", sympy.log(1 + x)),
    ("expm1(x)", sympy.exp(x) - 1),
    ("sigmoid(x)", 1 / (1 + sympy.exp(-x))),
    ("softplus(x)", sympy.log(1 + sympy.exp(x))),
    ("logit(x)", sympy.log(x / (1 - x))),
    ("gamma(1/2)", sympy.sqrt(sympy.pi)),
    ("log(log(2))", sympy.log(sympy.log(2))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_expression_equals_its_sympy_construction(text, expected):
    assert parses_to(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beta(a, b)", sympy.beta(a, b)),
        ("log(beta(a, b))", sympy.log(sympy.beta(a, b))),
        ("beta(2, 3)", sympy.beta(2, 3)),
    ],
)
def test_beta_function_when_beta_is_not_declared(text, expected):
    assert parse_expr(text, PLAIN) == expected


TWO_ARGUMENTS = {"atan2", "beta", "besseli", "besselj", "besselk", "binomial"}
TWO_ARGUMENTS |= {"polygamma", "Min", "Max"}


@pytest.mark.parametrize("name", sorted(ALLOWED_FUNCTIONS))
def test_every_allowed_function_parses(name):
    args = [x, mu] if name in TWO_ARGUMENTS else [x]
    text = f"{name}({', '.join(str(arg) for arg in args)})"
    assert parse_expr(text, {"x": x, "mu": mu}) == ALLOWED_FUNCTIONS[name](*args)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", sympy.Rational(1, 10)),
        ("0.3", sympy.Rational(3, 10)),
        ("1e-3", sympy.Rational(1, 1000)),
        ("2.5E2", sympy.Integer(250)),
        ("1_000.5", sympy.Rational(2001, 2)),
        (".5", sympy.Rational(1, 2)),
        ("1.", sympy.Integer(1)),
        ("0.30000000000000004", sympy.Rational(30000000000000004, 10**17)),
        ("1e-300", sympy.Rational(1, 10**300)),
        ("-0.25", sympy.Rational(-1, 4)),
    ],
)
def test_float_literals_become_exact_rationals(text, expected):
    result = parses_to(text)
    assert result == expected
    assert isinstance(result, sympy.Rational)


def test_floats_inside_expressions_leave_no_float_behind():
    result = parses_to("0.1*x + 2.5e-1*mu**1.5")
    assert result == x / 10 + mu ** sympy.Rational(3, 2) / 4
    assert not result.atoms(sympy.Float)


@given(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False))
def test_float_repr_round_trips_exactly(value):
    if value != 0 and abs(value) < 1e-300:
        return
    exact = fractions.Fraction(repr(value))
    expected = sympy.Rational(exact.numerator, exact.denominator)
    assert parse_expr(repr(value), {}) == expected


@given(st.integers(min_value=-(10**99), max_value=10**99))
def test_integer_literals_are_exact(value):
    assert parse_expr(str(value), {}) == sympy.Integer(value)


# -- name resolution -------------------------------------------------------------


def test_declared_beta_symbol_beats_the_beta_function():
    assert parses_to("beta") == beta
    assert parses_to("2*beta") == 2 * beta


def test_declared_gamma_symbol_beats_the_gamma_function():
    gamma = sympy.Symbol("gamma")
    assert parse_expr("x*gamma", {"x": x, "gamma": gamma}) == x * gamma


@pytest.mark.parametrize("name", ["pi", "E"])
def test_declared_symbol_beats_a_constant(name):
    symbol = sympy.Symbol(name)
    assert parse_expr(name, {name: symbol}) == symbol


def test_unicode_symbol_names_are_normalised():
    sigma = sympy.Symbol("σ")
    assert parse_expr("σ**2", {"σ": sigma}) == sigma**2
    assert parse_expr("ℌ + 1", {"H": x}) == x + 1  # Python reads ℌ as H


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("beta(1)", r"'beta' is a declared symbol, not a function"),
        ("mu(x)", r"'mu' is a declared symbol, not a function"),
        ("exp", r"function 'exp' used without arguments"),
        ("e", r"unknown name 'e'.*use E"),
        ("inf", r"unknown name 'inf'.*use oo"),
        ("I", r"unknown name 'I'"),
        ("_x", r"name '_x' is not allowed"),
        ("__class__", r"name '__class__' is not allowed"),
    ],
)
def test_bad_names_are_rejected(text, pattern):
    with pytest.raises(ParseError, match=pattern):
        parses_to(text)


# -- hostile input ---------------------------------------------------------------

HOSTILE = [
    ("__import__('os').system('ls')", r"name '__import__' is not allowed"),
    ("x.__class__", r"'attribute access' at column 2: 'x\.__class__'"),
    ("x.real", r"'attribute access'.*'x\.real'"),
    ("(lambda: 1)()", r"'lambda' at column 2"),
    ("[x for x in y]", r"'list comprehension' at column 1"),
    ("{x for x in y}", r"'set comprehension'"),
    ("(x for x in y)", r"'generator expression'"),
    ("x if x else 1", r"'conditional expression' at column 1"),
    ("open('f')", r"unknown function 'open' at column 1"),
    ("eval('1')", r"unknown function 'eval' at column 1"),
    ("exec('1')", r"unknown function 'exec'"),
    ("getattr(x, 'y')", r"unknown function 'getattr'"),
    ("x[0]", r"'subscript' at column 2: 'x\[0\]'"),
    ("'abc'", r"unsupported literal 'string' at column 1: \"'abc'\""),
    ("b'abc'", r"unsupported literal 'bytes'"),
    ("f'{x}'", r"'f-string'"),
    ("x == 1", r"'comparison' at column 1: 'x == 1'"),
    ("x and mu", r"'boolean operator'"),
    ("not x", r"unsupported operator 'not'"),
    ("~x", r"unsupported operator '~'"),
    ("(y := 1)", r"assignment expression ':='"),
    ("[x, mu]", r"'list'"),
    ("x, mu", r"'tuple'"),
    ("{1: 2}", r"'dict'"),
    ("True", r"unsupported literal 'True'"),
    ("None", r"unsupported literal 'None'"),
    ("...", r"unsupported literal 'Ellipsis'"),
    ("2j", r"unsupported literal 'imaginary number'"),
    ("9**9**9**9", r"exponent too large .* at column 4: '9\*\*9\*\*9'"),
    ("f(x)", r"unknown function 'f' at column 1"),
    ("y", r"unknown name 'y' at column 1: declared symbols: beta, mu, x"),
    ("x ^ 2", r"unsupported operator '\^' at column 3: use \*\* for powers"),
    ("x // 2", r"unsupported operator '//' at column 3: use floor"),
    ("x % 2", r"unsupported operator '%'"),
    ("x @ x", r"unsupported operator '@'"),
    ("x << 2", r"unsupported operator '<<'"),
    ("log(x, base=2)", r"keyword argument 'base' is not supported at column 8"),
    ("log(*x)", r"unpacking '\*'"),
    ("log(**x)", r"'\*\*' unpacking is not supported"),
    ("(x + 1)(2)", r"only named functions can be called"),
    ("", r"empty expression"),
    ("   \n ", r"empty expression"),
    ("1 +", r"syntax error at column 4"),
    ("log(x", r"syntax error at column 4: '\(' was never closed"),
    ("x; mu", r"syntax error at column 2"),
    ("x\0", r"null bytes"),
    ("x" * 20_000, r"expression too long: 20000 characters"),
    ("(" * 500 + "x" + ")" * 500, r"nested too deeply.*at column 101"),
    ("-" * 150 + "x", r"nested too deeply"),
    ("-" * 5_000 + "x", r"nested too deeply"),
    ("+".join(["x"] * 102), r"nested too deeply"),
    ("polygamma(x)", r"polygamma\(\) takes 2 arguments \(1 given\)"),
]


@pytest.mark.parametrize(("text", "pattern"), HOSTILE)
def test_hostile_input_is_rejected_naming_the_token(text, pattern):
    with pytest.raises(ParseError, match=pattern):
        parses_to(text)


def test_leftmost_problem_is_reported():
    with pytest.raises(ParseError, match=r"unsupported operator '\^' at column 3"):
        parses_to("x ^ 2 + mu.real")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("  y", r"column 3"),
        ("x + α", r"unknown name 'α' at column 5"),
        ("σ + y", r"unknown name 'y' at column 5"),
        ("(x +\n mu.real)", r"line 2, column 4"),
        ("(x +\n  y)", r"unknown name 'y' at line 2, column 3"),
    ],
)
def test_positions_are_one_based_characters(text, pattern):
    with pytest.raises(ParseError, match=pattern):
        parses_to(text, {**SYMBOLS, "σ": sympy.Symbol("σ")})


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("polygamma(x)", r"polygamma\(\) takes 2 arguments \(1 given\)"),
        ("polygamma(1, 2, x)", r"polygamma\(\) takes 2 arguments \(3 given\)"),
        ("log()", r"log\(\) takes 1 or 2 arguments \(0 given\)"),
        ("log(x, 2, 3)", r"log\(\) takes 1 or 2 arguments \(3 given\)"),
        ("exp(x, x)", r"exp\(\) takes 1 argument \(2 given\)"),
        ("atan2(x)", r"atan2\(\) takes 2 arguments \(1 given\)"),
        ("besselj(x)", r"besselj\(\) takes 2 arguments \(1 given\)"),
        ("Min(x)", r"Min\(\) takes at least 2 arguments \(1 given\)"),
    ],
)
def test_wrong_argument_counts_name_the_function(text, pattern):
    with pytest.raises(ParseError, match=pattern):
        parses_to(text)


def test_depth_limit_boundary():
    assert parses_to("+".join(["x"] * 100)) == 100 * x
    grouped = "+".join(["(" + "+".join(["x"] * 50) + ")"] * 4)
    assert parses_to(grouped) == 200 * x


# -- resource limits -------------------------------------------------------------

RUNAWAY = [
    ("9**9**9**9", r"exponent too large"),
    ("2**10**6", r"exponent too large"),
    ("(x + 1)**10**6", r"exponent too large"),
    ("x**1000", r"polynomial degree too high"),
    ("(pi - 2)**(pi - 1000)", r"polynomial degree too high"),
    ("2**(1/10**99)", r"exponent too fine"),
    ("(10**20 - 7)**0.001", r"power too large"),
    (
        "10**99 * 10**99 * 10**99 * 10**99 * 10**99 * 10**99 * 10**99",
        r"number too large",
    ),
    ("1" * 101, r"integer literal too long"),
    ("1e400", r"float literal out of range"),
    ("0." + "1" * 101, r"float literal out of range"),
    ("factorial(10**5)", r"argument of factorial too large"),
    ("factorial(10001)", r"argument of factorial too large"),
    ("gamma(20000)", r"argument of gamma too large"),
    ("binomial(10**6, 10**5)", r"argument of binomial too large"),
    ("binomial(25*pi, 100)", r"argument of binomial too large"),
    ("digamma(10**4)", r"argument of digamma too large"),
    ("polygamma(3, 10**4)", r"argument of polygamma too large"),
    ("polygamma(pi, 2)", r"order of polygamma"),
    ("besselk(10**3, 10**3)", r"argument of besselk too large"),
    ("exp(10**99)", r"argument of exp too large"),
    ("exp(10**8*log(3))", r"argument of exp too large"),
    ("E**(10**8*log(3))", r"argument of exp too large"),
    ("exp(-log(10**20 - 7)/1000)", r"power too large"),
    ("exp(log(3)/1001)", r"exponent too fine"),
    ("sigmoid(-10**5)", r"argument of sigmoid too large"),
    ("floor(exp(10**8))", r"argument of exp too large"),
    ("sin(exp(exp(100)))", r"argument of exp too large"),
    ("erfc(1000)", r"constant out of range"),
    ("sin(log(log(log(2))))", r"too complex"),
    ("asin(2) + x", r"not a real number"),
    ("floor(10**30*pi)", r"floor must be real and at most 2\*\*53"),
]


@pytest.mark.parametrize(("text", "pattern"), RUNAWAY)
def test_runaway_computations_are_rejected_quickly(text, pattern):
    start = time.perf_counter()
    with pytest.raises(ParseError, match=pattern):
        parses_to(text)
    assert time.perf_counter() - start < SECONDS


@given(
    st.text(alphabet="x0123456789.e+-*/()^,_ pilogexpsqrtgamafctorbinl", max_size=40)
)
def test_arbitrary_text_parses_or_raises_parse_error(text):
    try:
        result = parse_expr(text, {"x": x})
    except ParseError:
        return
    assert isinstance(result, sympy.Basic)


# -- API and security properties ---------------------------------------------------


def test_allowed_tables_are_read_only():
    with pytest.raises(TypeError):
        ALLOWED_FUNCTIONS["open"] = open  # type: ignore[index]
    with pytest.raises(TypeError):
        ALLOWED_CONSTANTS["I"] = sympy.I  # type: ignore[index]


def test_constants_are_exactly_the_documented_ones():
    assert dict(ALLOWED_CONSTANTS) == {
        "pi": sympy.pi,
        "E": sympy.E,
        "EulerGamma": sympy.EulerGamma,
        "oo": sympy.oo,
    }


def test_aliases_map_to_sympy_functions():
    assert ALLOWED_FUNCTIONS["abs"] is sympy.Abs
    assert ALLOWED_FUNCTIONS["lgamma"] is sympy.loggamma
    assert ALLOWED_FUNCTIONS["beta"] is sympy.beta


def test_parse_error_is_a_value_error():
    with pytest.raises(ValueError):
        parses_to("f(x)")


@pytest.mark.parametrize("bad", [None, 1, b"x", ["x"]])
def test_non_string_text_is_a_type_error(bad):
    with pytest.raises(TypeError):
        parse_expr(bad, SYMBOLS)  # type: ignore[arg-type]


def test_non_sympy_symbol_values_are_a_type_error():
    with pytest.raises(TypeError):
        parse_expr("x", {"x": "x"})  # type: ignore[dict-item]


def test_parser_never_calls_eval_exec_or_sympify(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the parser must not evaluate text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sympy, "sympify", forbidden)
    assert parses_to("x*exp(-mu) + 0.5") == x * sympy.exp(-mu) + sympy.Rational(1, 2)
    with pytest.raises(ParseError):
        parses_to("__import__('os')")


def test_source_has_no_evaluating_calls():
    source = inspect.getsource(parse_module)
    helpers = [inspect.getsource(m) for m in (parse_functions, parse_guard)]
    called = set()
    for node in ast.walk(ast.parse("\n".join([source, *helpers]))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = getattr(node.func.value, "id", "?")
            called.add(f"{owner}.{node.func.attr}")
    banned = {"eval", "exec", "compile", "__import__", "sympify", "parse_expr"}
    banned |= {"sympy.sympify", "sympy.parse_expr", "builtins.eval", "builtins.exec"}
    assert not called & banned
    assert "ast.parse" in called
    assert all("sympy_parser" not in text for text in [source, *helpers])


def test_limits_are_importable_from_parse():
    names = [name for name in dir(parse_guard) if name.startswith("MAX_")]
    assert len(names) == 11
    for name in names:
        assert getattr(parse_module, name) == getattr(parse_guard, name)
    assert parse_module.ALLOWED_FUNCTIONS is parse_functions.ALLOWED_FUNCTIONS
    assert parse_module.ALLOWED_CONSTANTS is parse_functions.ALLOWED_CONSTANTS


# -- Phi, log_Phi, normal_logpdf -------------------------------------------------

z = sympy.Symbol("z", real=True)


def _at(expr: sympy.Expr, value: float) -> float:
    return float(expr.subs(z, value).evalf(30))


@pytest.mark.parametrize("value", [-30.0, -3.0, -0.5, 0.0, 0.7, 4.0])
def test_phi_is_the_standard_normal_cdf(value):
    import mpmath

    phi = parse_expr("Phi(z)", {"z": z})
    log_phi = parse_expr("log_Phi(z)", {"z": z})
    want = mpmath.ncdf(value)
    assert _at(phi, value) == pytest.approx(float(want), rel=1e-14)
    assert _at(log_phi, value) == pytest.approx(float(mpmath.log(want)), rel=1e-14)
    assert (
        sympy.simplify(
            (phi - (1 + sympy.erf(z / sympy.sqrt(2))) / 2).rewrite(sympy.erf)
        )
        == 0
    )


def test_log_phi_is_built_from_erfc_for_the_printer():
    # log(erfc(-z/sqrt(2))/2): no 1 + erf(.) that cancels in the lower tail,
    # and SymPy must not have rewritten erfc(-u) as 2 - erfc(u)
    log_phi = parse_expr("log_Phi(alpha*(x - mu))", {**PLAIN, "alpha": z})
    (inner,) = log_phi.atoms(sympy.erfc)
    assert inner.args[0].could_extract_minus_sign()
    assert not log_phi.has(sympy.erf)
    score = sympy.diff(log_phi, z)  # derivatives keep the same erfc
    assert inner in score.atoms(sympy.erfc)
    assert parse_expr("Phi(0)", {}) == sympy.Rational(1, 2)


def test_phi_derivative_is_the_normal_density():
    phi = parse_expr("Phi(z)", {"z": z})
    density = sympy.exp(-(z**2) / 2) / sympy.sqrt(2 * sympy.pi)
    assert sympy.simplify(sympy.diff(phi, z) - density) == 0


def test_normal_logpdf_standard_and_with_location_scale():
    s = sympy.Symbol("s", positive=True)
    assert (
        parse_expr("normal_logpdf(z)", {"z": z})
        == -(z**2) / 2 - sympy.log(2 * sympy.pi) / 2
    )
    got = parse_expr("normal_logpdf(x, mu, s)", {"x": x, "mu": mu, "s": s})
    want = -((x - mu) ** 2) / (2 * s**2) - sympy.log(s) - sympy.log(2 * sympy.pi) / 2
    assert sympy.simplify(got - want) == 0
    with pytest.raises(ParseError, match=r"normal_logpdf\(\) takes 1 or 3 arguments"):
        parse_expr("normal_logpdf(x, mu)", {"x": x, "mu": mu})


def test_skew_normal_log_density_parses():
    xi, alpha = sympy.symbols("xi alpha", real=True)
    omega = sympy.Symbol("omega", positive=True)
    table = {"x": x, "xi": xi, "omega": omega, "alpha": alpha}
    got = parse_expr(
        "log(2) - log(omega) + normal_logpdf((x - xi)/omega)"
        " + log_Phi(alpha*(x - xi)/omega)",
        table,
    )
    u = (x - xi) / omega
    want = (
        sympy.log(2)
        - sympy.log(omega)
        - u**2 / 2
        - sympy.log(2 * sympy.pi) / 2
        + sympy.log((1 + sympy.erf(alpha * u / sympy.sqrt(2))) / 2)
    )
    point = {x: 0.3, xi: -0.2, omega: 1.7, alpha: -2.5}
    assert float((got - want).subs(point).evalf(30)) == pytest.approx(0, abs=1e-25)


def test_unknown_function_error_lists_the_accepted_functions_sorted():
    with pytest.raises(ParseError) as info:
        parses_to("Psi(x)")
    message = str(info.value)
    assert "unknown function 'Psi' at column 1" in message
    listed = message.split("accepted functions: ", 1)[1].split(", ")
    assert listed == sorted(ALLOWED_FUNCTIONS)
    assert {"Phi", "log_Phi", "normal_logpdf", "loggamma"} <= set(listed)
