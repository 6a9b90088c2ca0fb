"""Safe parser from untrusted user text to SymPy expressions.

The text is turned into a Python syntax tree with ``ast.parse(..., mode="eval")``
and that tree is walked here, node by node; nothing is ever evaluated, executed
or handed to ``sympify``. Only arithmetic, numbers, declared symbols, a few
constants and the functions in :data:`ALLOWED_FUNCTIONS` are accepted.

SymPy evaluates eagerly (``9**9**9`` is computed, ``floor(exp(10**8))`` asks for
tens of millions of digits), so every stage is bounded: the text length, the
nesting depth, literal sizes, exponents, polynomial degree, the numeric
arguments of special functions, how deeply functions of constants nest, and the
size of every number built on the way. The limits are heuristics that keep
SymPy's work small for all inputs we know of, not a proof; a service parsing
hostile text should still run the parser under a timeout.
"""

from __future__ import annotations

import ast
import decimal
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import mpmath
import sympy
from mpmath.libmp import NoConvergence

from symfisher.errors import ParseError

__all__ = ["ALLOWED_CONSTANTS", "ALLOWED_FUNCTIONS", "parse_expr"]

MAX_TEXT_LENGTH = 10_000
"""Longest accepted text, in characters."""
MAX_DEPTH = 100
"""Deepest accepted nesting of brackets, and of operators and calls."""
MAX_LITERAL_DIGITS = 100
"""Most significant digits in a numeric literal."""
MAX_LITERAL_EXPONENT = 300
"""Largest decimal exponent (in absolute value) of a float literal."""
MAX_EXPONENT = 1_000
"""Largest number (in absolute value) inside an exponent."""
MAX_EXPONENT_DENOMINATOR = 1_000
"""Largest denominator of a fraction inside an exponent."""
MAX_DEGREE = 50
"""Largest polynomial degree, counting symbols, ``pi`` and function values."""
MAX_NUMBER_BITS = 2_048
"""Largest exact number (numerator or denominator) built while parsing, in bits."""
MAX_MAGNITUDE_BITS = 1_024
"""Non-rational constants must lie within ``2**±N`` in absolute value (or be 0)."""
MAX_EXP_ARGUMENT = 1_000
"""Largest constant part (in absolute value) of the argument of exp-like functions."""
MAX_NUMERIC_NESTING = 2
"""Deepest nesting of functions applied to constants, as in ``log(log(2))``."""
MAX_SPECIAL_ARGUMENT = 1_000
"""Largest numeric argument of gamma-like functions."""
MAX_BINOMIAL_ARGUMENT = 10_000
"""Largest integer argument of ``binomial``."""
MAX_BESSEL_ARGUMENT = 200
"""Largest numeric order or argument of the Bessel functions."""
MAX_ROUNDING_ARGUMENT = 2**53
"""Largest non-rational constant given to ``floor``, ``ceiling`` or ``atan2``."""

_MAX_POLYGAMMA_WORK = 2_000  # bound on (order + 1) * |z| for exact polygamma
_MAX_BINOMIAL_EXPANSION = 20  # binomial(c, k) expands into k factors for constant c
_MAX_FRACTION_BITS = 64  # non-integer rationals given to gamma-like functions
_PRECISION = 64  # bits used to size constants
_NEWLINE = re.compile(r"\r\n|\r|\n")
# SymPy reports odd arguments with many exception types.
_SYMPY_ERRORS = (
    ArithmeticError,
    AttributeError,
    IndexError,
    NotImplementedError,
    RecursionError,
    TypeError,
    ValueError,
)


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    """Natural logarithm, or logarithm to ``base``."""
    return sympy.log(x) if base is None else sympy.log(x, base)


def _log1p(x: sympy.Expr) -> sympy.Expr:
    """``log(1 + x)``."""
    return sympy.log(1 + x)


def _expm1(x: sympy.Expr) -> sympy.Expr:
    """``exp(x) - 1``."""
    return sympy.exp(x) - 1


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    """Logistic function ``1 / (1 + exp(-x))``."""
    return 1 / (1 + sympy.exp(-x))


def _softplus(x: sympy.Expr) -> sympy.Expr:
    """``log(1 + exp(x))``."""
    return sympy.log(1 + sympy.exp(x))


def _logit(p: sympy.Expr) -> sympy.Expr:
    """Log-odds ``log(p / (1 - p))``."""
    return sympy.log(p / (1 - p))


def _phi(z: sympy.Expr) -> sympy.Expr:
    r"""Standard normal CDF :math:`\Phi(z) = (1 + \operatorname{erf}(z/\sqrt 2))/2`.

    Built as :math:`\operatorname{erfc}(-z/\sqrt 2)/2`, the same function
    without the cancellation of :math:`1 + \operatorname{erf}` in the lower tail
    (unevaluated, so that SymPy keeps it rather than writing ``2 - erfc(...)``;
    derivatives keep it too).
    """
    arg = -z / sympy.sqrt(2)
    return sympy.erfc(arg, evaluate=not arg.free_symbols) / 2


def _log_phi(z: sympy.Expr) -> sympy.Expr:
    r""":math:`\log\Phi(z)`, as ``log(erfc(-z/sqrt(2))/2)``.

    A kernel printer can recognise ``log(erfc(.))`` and print ``log_ndtr``.
    """
    return sympy.log(_phi(z))


def _normal_logpdf(
    x: sympy.Expr, mu: sympy.Expr | None = None, sigma: sympy.Expr | None = None
) -> sympy.Expr:
    r"""Normal log-density: standard :math:`-z^2/2 - \log(2\pi)/2`, or of N(mu, sigma^2)."""
    z = x if mu is None else (x - mu) / sigma
    out = -(z**2) / 2 - sympy.log(2 * sympy.pi) / 2
    return out if mu is None else out - sympy.log(sigma)


@dataclass(frozen=True)
class _Function:
    """An allowed function: its SymPy callable and how many arguments it takes."""

    func: Callable[..., sympy.Expr]
    min_args: int = 1
    max_args: int | None = 1
    counts: tuple[int, ...] = ()  # the only accepted counts, when not a range

    def accepts(self, count: int) -> bool:
        """Whether ``count`` arguments are accepted."""
        if self.counts:
            return count in self.counts
        return self.min_args <= count and (
            self.max_args is None or count <= self.max_args
        )

    def arity(self) -> str:
        """Describe the accepted argument count, e.g. ``"1 or 2 arguments"``."""
        if self.counts:
            return " or ".join(map(str, self.counts)) + " arguments"
        if self.max_args is None:
            return f"at least {self.min_args} arguments"
        if self.max_args == self.min_args:
            return f"{self.min_args} argument" + ("s" if self.min_args > 1 else "")
        return f"{self.min_args} or {self.max_args} arguments"


_FUNCTIONS: dict[str, _Function] = {
    "log": _Function(_log, 1, 2),
    "exp": _Function(sympy.exp),
    "sqrt": _Function(sympy.sqrt),
    "Abs": _Function(sympy.Abs),
    "abs": _Function(sympy.Abs),
    "sign": _Function(sympy.sign),
    "gamma": _Function(sympy.gamma),
    "loggamma": _Function(sympy.loggamma),
    "lgamma": _Function(sympy.loggamma),
    "digamma": _Function(sympy.digamma),
    "polygamma": _Function(sympy.polygamma, 2, 2),
    "beta": _Function(sympy.beta, 2, 2),
    "binomial": _Function(sympy.binomial, 2, 2),
    "factorial": _Function(sympy.factorial),
    "besseli": _Function(sympy.besseli, 2, 2),
    "besselj": _Function(sympy.besselj, 2, 2),
    "besselk": _Function(sympy.besselk, 2, 2),
    "erf": _Function(sympy.erf),
    "erfc": _Function(sympy.erfc),
    "sin": _Function(sympy.sin),
    "cos": _Function(sympy.cos),
    "tan": _Function(sympy.tan),
    "sinh": _Function(sympy.sinh),
    "cosh": _Function(sympy.cosh),
    "tanh": _Function(sympy.tanh),
    "asin": _Function(sympy.asin),
    "acos": _Function(sympy.acos),
    "atan": _Function(sympy.atan),
    "atan2": _Function(sympy.atan2, 2, 2),
    "asinh": _Function(sympy.asinh),
    "acosh": _Function(sympy.acosh),
    "atanh": _Function(sympy.atanh),
    "floor": _Function(sympy.floor),
    "ceiling": _Function(sympy.ceiling),
    "Min": _Function(sympy.Min, 2, None),
    "Max": _Function(sympy.Max, 2, None),
    "log1p": _Function(_log1p),
    "expm1": _Function(_expm1),
    "sigmoid": _Function(_sigmoid),
    "softplus": _Function(_softplus),
    "logit": _Function(_logit),
    "Phi": _Function(_phi),
    "log_Phi": _Function(_log_phi),
    "normal_logpdf": _Function(_normal_logpdf, 1, 3, (1, 3)),
}

ALLOWED_FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = MappingProxyType(
    {name: spec.func for name, spec in _FUNCTIONS.items()}
)
"""Function names accepted in text, mapped to the SymPy callables they build."""

ALLOWED_CONSTANTS: Mapping[str, sympy.Expr] = MappingProxyType(
    {"pi": sympy.pi, "E": sympy.E, "EulerGamma": sympy.EulerGamma, "oo": sympy.oo}
)
"""Constant names accepted in text (a declared symbol of the same name wins)."""

_EXP_LIKE = frozenset({"exp", "expm1", "sigmoid", "softplus", "sinh", "cosh"})
_GAMMA_LIKE = frozenset({"gamma", "loggamma", "lgamma", "digamma", "factorial", "beta"})
_BESSEL = frozenset({"besseli", "besselj", "besselk"})
_ROUNDING = frozenset({"floor", "ceiling", "atan2"})

_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Slice: "slice",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.IfExp: "conditional expression",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.NamedExpr: "assignment expression ':='",
    ast.Starred: "unpacking '*'",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}
_BINARY_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.BitXor: "^",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], sympy.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_OPERATOR_HINTS = {"^": "use ** for powers", "//": "use floor(a / b)"}
_NAME_HINTS = {
    "e": "use E for Euler's number",
    "inf": "use oo for infinity",
    "infinity": "use oo for infinity",
    "Infinity": "use oo for infinity",
}

_INFINITIES = frozenset({sympy.oo, -sympy.oo, sympy.zoo, sympy.nan})
# mpmath counterparts of the SymPy operations a parsed constant can contain.
_MPMATH: dict[type, Callable[..., Any]] = {
    sympy.Add: lambda *terms: mpmath.fsum(terms),
    sympy.Mul: lambda *factors: mpmath.fprod(factors),
    sympy.Pow: mpmath.power,
    sympy.exp: mpmath.exp,
    sympy.log: mpmath.log,
    sympy.sin: mpmath.sin,
    sympy.cos: mpmath.cos,
    sympy.tan: mpmath.tan,
    sympy.sinh: mpmath.sinh,
    sympy.cosh: mpmath.cosh,
    sympy.tanh: mpmath.tanh,
    sympy.asin: mpmath.asin,
    sympy.acos: mpmath.acos,
    sympy.atan: mpmath.atan,
    sympy.asinh: mpmath.asinh,
    sympy.acosh: mpmath.acosh,
    sympy.atanh: mpmath.atanh,
    sympy.atan2: lambda y, x: mpmath.atan2(y.real, x.real),
    sympy.erf: mpmath.erf,
    sympy.erfc: mpmath.erfc,
    sympy.gamma: mpmath.gamma,
    sympy.loggamma: mpmath.loggamma,
    sympy.polygamma: lambda n, z: mpmath.psi(int(n.real), z),
    sympy.beta: mpmath.beta,
    sympy.binomial: mpmath.binomial,
    sympy.factorial: mpmath.factorial,
    sympy.besseli: mpmath.besseli,
    sympy.besselj: mpmath.besselj,
    sympy.besselk: mpmath.besselk,
    sympy.zeta: mpmath.zeta,
    sympy.Abs: abs,
    sympy.sign: mpmath.sign,
    sympy.floor: mpmath.floor,
    sympy.ceiling: mpmath.ceil,
    sympy.Min: lambda *args: min(args, key=lambda z: z.real),
    sympy.Max: lambda *args: max(args, key=lambda z: z.real),
    sympy.re: mpmath.re,
    sympy.im: mpmath.im,
    sympy.conjugate: mpmath.conj,
    sympy.arg: mpmath.arg,
}


def parse_expr(text: str, symbols: Mapping[str, sympy.Symbol]) -> sympy.Expr:
    """Parse untrusted text into a SymPy expression.

    Names resolve first to ``symbols`` (so a parameter called ``beta`` shadows the
    beta function), then to :data:`ALLOWED_CONSTANTS`. Integer literals become
    ``sympy.Integer`` and float literals the exact ``sympy.Rational`` their
    decimal text denotes (``0.1`` is ``1/10``). Error positions are 1-based
    character columns. Symbols declared real or positive keep SymPy's work, and
    so parsing, much cheaper than plain (complex) ones.

    Args:
        text: Expression in Python syntax, e.g. ``"-log(beta) - (x - mu)/beta"``.
        symbols: Declared names and the SymPy symbols they stand for.

    Returns:
        The SymPy expression the text denotes.

    Raises:
        ParseError: The text is malformed, uses anything outside the allowed
            grammar, names or functions, or exceeds a resource limit. The message
            names the offending token and its position.
        TypeError: ``text`` is not a string or ``symbols`` maps to non-SymPy values.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return _Parser(text, _normalise_symbols(symbols)).parse()


def _normalise_symbols(symbols: Mapping[str, sympy.Symbol]) -> dict[str, sympy.Expr]:
    """Key the declared symbols by NFKC-normalised name, as Python identifiers are."""
    table: dict[str, sympy.Expr] = {}
    for name, value in symbols.items():
        if not isinstance(name, str) or not isinstance(value, sympy.Expr):
            raise TypeError(f"symbols must map str to SymPy expressions, got {name!r}")
        table[unicodedata.normalize("NFKC", name)] = value
    return table


def _shorten(snippet: str, limit: int = 40) -> str:
    """Collapse whitespace and truncate a source snippet for an error message."""
    snippet = " ".join(snippet.split())
    return snippet if len(snippet) <= limit else snippet[: limit - 3] + "..."


def _exceeds(size: Any, limit: float) -> bool:
    """True for a finite size over ``limit`` (SymPy handles infinities itself)."""
    return limit < size < mpmath.inf


def _bits(number: sympy.Rational) -> int:
    """Size in bits of the larger of a rational's numerator and denominator."""
    return max(abs(int(number.p)).bit_length(), int(number.q).bit_length())


class _Rejected(Exception):
    """A resource guard refused a value; the parser adds the position."""


class _Profile(NamedTuple):
    """Structural facts about an expression, computed once per subexpression."""

    nesting: int  # functions of constants nested inside it
    symbolic: bool  # contains a declared symbol
    degree: float  # polynomial degree, counting symbols, pi, f(...) as variables
    radical: int  # largest bits(n) * q over radicals n**(p/q) of rationals
    bits: int  # largest exact number inside, in bits


class _Guard:
    """Resource limits on the SymPy objects built while parsing.

    Constants are sized with a small fixed-precision mpmath evaluation, memoised
    per subexpression, so checking costs little and cannot itself run away.
    """

    def __init__(self) -> None:
        self.profiles: dict[sympy.Basic, _Profile] = {}
        self.values: dict[sympy.Basic, Any] = {}

    # -- checks before SymPy builds a node ------------------------------------

    def power(self, base: sympy.Expr, exponent: sympy.Expr) -> None:
        """Reject powers SymPy would expand into huge numbers or polynomials."""
        if base == sympy.E:
            self.exp_argument(exponent, "exp")
        for number in exponent.atoms(sympy.Rational):
            self.exponent_number(number)
        constant = exponent if exponent.is_Rational else exponent.as_coeff_Add()[0]
        if self.profile(base).degree * float(abs(constant)) > MAX_DEGREE:
            raise _Rejected(f"polynomial degree too high (limit {MAX_DEGREE})")
        if not exponent.is_Rational:
            self.nesting((base, exponent), "a power")
            return
        bits = 0.0
        for factor in sympy.Mul.make_args(base):
            if factor.is_Rational:
                bits += _bits(factor)
            elif factor.is_Pow and factor.base.is_Rational and factor.exp.is_Rational:
                bits += _bits(factor.base) * float(abs(factor.exp))
        if bits * float(max(abs(exponent), exponent.q)) > MAX_NUMBER_BITS:
            raise _Rejected(f"power too large (result over {MAX_NUMBER_BITS} bits)")

    def exponent_number(self, number: sympy.Rational) -> None:
        """Bound a rational inside an exponent: its size and its denominator."""
        if abs(number) > MAX_EXPONENT:
            raise _Rejected(
                f"exponent too large (numbers in exponents are limited to "
                f"±{MAX_EXPONENT})"
            )
        if number.q > MAX_EXPONENT_DENOMINATOR:
            raise _Rejected(
                "exponent too fine (fractions in exponents are limited to "
                f"denominators of at most {MAX_EXPONENT_DENOMINATOR})"
            )

    def exp_argument(self, argument: sympy.Expr, name: str) -> None:
        """Bound the argument of an exponential-like function.

        Its constant part is limited to ±MAX_EXP_ARGUMENT, and a term ``c*log(n)``
        needs a small rational ``c``, since SymPy rewrites ``exp(c*log(n))`` as
        ``n**c``.
        """
        constant = argument
        if argument.free_symbols:
            constant = argument.as_independent(*argument.free_symbols, as_Add=True)[0]
        if _exceeds(self.size(constant), MAX_EXP_ARGUMENT):
            raise _Rejected(
                f"argument of {name} too large (its constant part is limited to "
                f"±{MAX_EXP_ARGUMENT})"
            )
        for term in sympy.Add.make_args(argument):
            coeff = term.as_coeff_Mul()[0]
            if term.has(sympy.log) and coeff.is_Rational:
                self.exponent_number(coeff)
                largest = max((_bits(r) for r in term.atoms(sympy.Rational)), default=1)
                if largest * float(max(abs(coeff), coeff.q)) > MAX_NUMBER_BITS:
                    raise _Rejected(
                        f"power too large (result over {MAX_NUMBER_BITS} bits)"
                    )

    def arguments(self, name: str, args: Sequence[sympy.Expr]) -> None:
        """Bound the arguments of a function SymPy may evaluate eagerly."""
        self.nesting(args, name)
        if name in _EXP_LIKE:
            self.exp_argument(args[0], name)
        elif name in _GAMMA_LIKE:
            for arg in args:
                self.special_argument(name, arg, MAX_SPECIAL_ARGUMENT)
        elif name in _BESSEL:
            for arg in args:
                self.special_argument(name, arg, MAX_BESSEL_ARGUMENT)
        elif name in _ROUNDING:
            for arg in args:
                self.rounding_argument(name, arg)
        elif name == "binomial":
            self.binomial(*args)
        elif name == "polygamma":
            self.polygamma(*args)

    def nesting(self, args: Sequence[sympy.Expr], name: str) -> None:
        """Keep functions of constants within MAX_NUMERIC_NESTING levels."""
        if any(self.profile(arg).nesting >= MAX_NUMERIC_NESTING for arg in args):
            raise _Rejected(
                f"constant argument of {name} too complex (functions of constants "
                f"may be nested at most {MAX_NUMERIC_NESTING} deep)"
            )

    def special_argument(
        self, name: str, arg: sympy.Expr, limit: int, integer_limit: int = 0
    ) -> None:
        """Require a constant argument to be at most ``limit`` in absolute value."""
        if arg.is_Integer:
            limit = integer_limit or limit
        elif arg.is_Rational and _bits(arg) > _MAX_FRACTION_BITS:
            raise _Rejected(f"argument of {name} has too many digits")
        if _exceeds(self.size(arg), limit):
            raise _Rejected(
                f"argument of {name} too large (constant arguments are limited "
                f"to {limit})"
            )

    def rounding_argument(self, name: str, arg: sympy.Expr) -> None:
        """Require a non-rational constant to be real and moderate in size."""
        if arg.is_Rational or self.profile(arg).symbolic:
            return
        value = self.value(arg)
        if value is None or not mpmath.isfinite(value):
            return
        if value.imag != 0 or abs(value.real) > MAX_ROUNDING_ARGUMENT:
            raise _Rejected(
                f"constant argument of {name} must be real and at most 2**53"
            )

    def binomial(self, n: sympy.Expr, k: sympy.Expr) -> None:
        """Bound binomial's arguments; a non-rational constant ``n`` expands."""
        for arg in (n, k):
            self.special_argument(
                "binomial", arg, MAX_SPECIAL_ARGUMENT, MAX_BINOMIAL_ARGUMENT
            )
        constant = not n.is_Rational and not self.profile(n).symbolic
        if constant and k.is_Integer and abs(k) > _MAX_BINOMIAL_EXPANSION:
            raise _Rejected(
                "argument of binomial too large (an integer k with a non-rational "
                f"constant n is limited to {_MAX_BINOMIAL_EXPANSION})"
            )

    def polygamma(self, order: sympy.Expr, z: sympy.Expr) -> None:
        """Require a small integer order and bound the exact work for rational z."""
        if not self.profile(order).symbolic and not (
            order.is_Integer and 0 <= order <= MAX_SPECIAL_ARGUMENT
        ):
            raise _Rejected(
                f"order of polygamma must be an integer from 0 to "
                f"{MAX_SPECIAL_ARGUMENT}"
            )
        self.special_argument("polygamma", z, MAX_SPECIAL_ARGUMENT)
        if order.is_Integer and z.is_Rational:
            if (order + 1) * max(abs(z), 1) > _MAX_POLYGAMMA_WORK:
                raise _Rejected(
                    "arguments of polygamma too large ((order + 1) * |z| is "
                    f"limited to {_MAX_POLYGAMMA_WORK})"
                )

    # -- checks after SymPy built a node --------------------------------------

    def result(self, expr: sympy.Expr) -> None:
        """Bound the structure and the numbers of a freshly built expression."""
        profile = self.profile(expr)
        if profile.nesting > MAX_NUMERIC_NESTING:
            raise _Rejected(
                "constant too complex (functions of constants may be nested at "
                f"most {MAX_NUMERIC_NESTING} deep)"
            )
        if profile.degree > MAX_DEGREE:
            raise _Rejected(f"polynomial degree too high (limit {MAX_DEGREE})")
        if profile.radical > MAX_NUMBER_BITS:
            raise _Rejected(
                f"radical too large (bits of n times q over {MAX_NUMBER_BITS} in "
                "n**(p/q))"
            )
        if profile.bits > MAX_NUMBER_BITS:
            raise _Rejected(f"number too large (more than {MAX_NUMBER_BITS} bits)")
        if not profile.symbolic:
            self.number(expr)
        elif expr.is_Add or expr.is_Mul:
            self.number(expr.as_independent(*expr.free_symbols)[0])

    def number(self, value: sympy.Expr) -> None:
        """Reject constants that are not real or lie out of range."""
        if value.is_Rational:
            return
        approximation = None if self.profile(value).symbolic else self.value(value)
        if approximation is None or not mpmath.isfinite(approximation):
            return
        if approximation.imag != 0:
            raise _Rejected("constant is not a real number")
        magnitude = abs(approximation)
        if magnitude != 0 and abs(mpmath.mag(magnitude)) > MAX_MAGNITUDE_BITS:
            raise _Rejected(
                f"constant out of range (magnitude beyond 2**±{MAX_MAGNITUDE_BITS})"
            )

    # -- memoised facts ---------------------------------------------------------

    def profile(self, expr: sympy.Basic) -> _Profile:
        """Structural facts about ``expr`` (see :class:`_Profile`), memoised."""
        cached = self.profiles.get(expr)
        if cached is not None:
            return cached
        if not expr.args:
            symbolic = bool(expr.free_symbols)
            if expr.is_Rational:
                result = _Profile(0, symbolic, 0.0, 0, _bits(expr))
            else:
                result = _Profile(0, symbolic, 1.0, 0, 0)
        else:
            parts = [self.profile(arg) for arg in expr.args]
            nesting = max(p.nesting for p in parts)
            symbolic = any(p.symbolic for p in parts)
            rational_power = expr.is_Pow and expr.exp.is_Rational
            if expr.is_Add:
                degree = max(p.degree for p in parts)
            elif expr.is_Mul:
                degree = sum(p.degree for p in parts)
            elif rational_power:
                degree = parts[0].degree * float(abs(expr.exp))
            else:
                degree = 1.0
            if not (expr.is_Add or expr.is_Mul or rational_power or symbolic):
                nesting += 1
            radical = max(p.radical for p in parts)
            if rational_power and expr.base.is_Rational:
                radical = max(radical, _bits(expr.base) * int(expr.exp.q))
            bits = max(p.bits for p in parts)
            result = _Profile(nesting, symbolic, degree, radical, bits)
        self.profiles[expr] = result
        return result

    def size(self, expr: sympy.Expr) -> Any:
        """``|expr|`` for a constant: exact-ish for rationals, else approximate.

        Returns 0 for expressions with symbols or without a numeric evaluation,
        and infinity for infinite or undefined values.
        """
        if expr.is_Rational:
            return mpmath.mpf(abs(int(expr.p))) / int(expr.q)
        if self.profile(expr).symbolic:
            return mpmath.mpf(0)
        value = self.value(expr)
        if value is None:
            return mpmath.mpf(0)
        magnitude = abs(value)
        return magnitude if mpmath.isfinite(magnitude) else mpmath.inf

    def value(self, expr: sympy.Basic) -> Any:
        """Approximate a constant at _PRECISION bits (None if not evaluable)."""
        with mpmath.workprec(_PRECISION):
            return self._value(expr)

    def _value(self, expr: sympy.Basic) -> Any:
        if expr in self.values:
            return self.values[expr]
        result: Any
        if expr.is_Rational:
            result = mpmath.mpc(mpmath.mpf(int(expr.p)) / int(expr.q))
        elif expr.is_NumberSymbol or expr is sympy.I:
            result = mpmath.mpc(complex(expr.evalf(20)))
        elif expr in _INFINITIES:
            result = mpmath.mpc(mpmath.inf)
        else:
            args = [self._value(arg) for arg in expr.args]
            func = _MPMATH.get(type(expr))
            result = None
            if func is not None and all(arg is not None for arg in args):
                try:
                    result = mpmath.mpc(func(*args))
                except (ArithmeticError, ValueError, TypeError, NoConvergence):
                    raise _Rejected("cannot evaluate constant") from None
        self.values[expr] = result
        return result


class _Parser:
    """One parse: the source text, its positions, declared symbols and guard."""

    def __init__(self, text: str, symbols: dict[str, sympy.Expr]) -> None:
        self.text = text
        self.body = text.lstrip()
        self.lead = len(text) - len(self.body)
        self.line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self.body)]
        self.multiline = _NEWLINE.search(text.strip()) is not None
        self.symbols = symbols
        self.floats: dict[int, sympy.Rational] = {}
        self.guard = _Guard()

    # -- positions and errors -------------------------------------------------

    def offset(self, lineno: int, col: int, *, in_bytes: bool = True) -> int:
        """Character offset in the body of a (1-based line, column) position."""
        lineno = min(max(lineno, 1), len(self.line_starts))
        start = self.line_starts[lineno - 1]
        if not in_bytes:
            return start + col
        line = self.body[start:].split("\n", 1)[0]
        return start + len(line.encode()[:col].decode("utf-8", "ignore"))

    def node_offset(self, node: ast.AST) -> int:
        """Character offset in the body where ``node`` starts."""
        return self.offset(node.lineno, node.col_offset)

    def error(self, problem: str, offset: int, detail: str = "") -> ParseError:
        """Build a ParseError locating ``problem`` at a body offset."""
        position = self.lead + min(max(offset, 0), len(self.body))
        column = position - self.text.rfind("\n", 0, position)
        where = f"column {column}"
        if self.multiline:
            line = len(_NEWLINE.findall(self.text, 0, position)) + 1
            where = f"line {line}, {where}"
        return ParseError(f"{problem} at {where}" + (f": {detail}" if detail else ""))

    def node_error(self, problem: str, node: ast.AST, detail: str = "") -> ParseError:
        """Build a ParseError at ``node``; the detail defaults to its source."""
        return self.error(problem, self.node_offset(node), detail or self.snippet(node))

    def snippet(self, node: ast.AST) -> str:
        """Quoted, shortened source text of ``node``."""
        return repr(_shorten(ast.get_source_segment(self.body, node) or ""))

    # -- stages ---------------------------------------------------------------

    def parse(self) -> sympy.Expr:
        """Run every stage and return the expression."""
        if len(self.text) > MAX_TEXT_LENGTH:
            raise ParseError(
                f"expression too long: {len(self.text)} characters "
                f"(limit {MAX_TEXT_LENGTH})"
            )
        if not self.body:
            raise ParseError("empty expression")
        self.check_brackets()
        tree = self.syntax_tree()
        self.check_depth(tree)
        self.validate(tree)
        return self.convert(tree.body)

    def check_brackets(self) -> None:
        """Reject bracket nesting deeper than MAX_DEPTH before Python parses it."""
        depth = 0
        for index, char in enumerate(self.body):
            if char in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise self.error(
                        f"expression nested too deeply (more than {MAX_DEPTH} "
                        "levels of brackets)",
                        index,
                    )
            elif char in ")]}":
                depth -= 1

    def syntax_tree(self) -> ast.Expression:
        """Parse the body into a syntax tree, mapping failures to ParseError."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.parse(self.body, mode="eval")
        except SyntaxError as exc:
            if exc.lineno and exc.offset and exc.offset > 0:
                offset = self.offset(exc.lineno, exc.offset - 1, in_bytes=False)
            else:
                offset = len(self.body.rstrip())
            raise self.error("syntax error", offset, exc.msg) from None
        except (RecursionError, MemoryError):
            raise ParseError(
                f"expression nested too deeply (limit {MAX_DEPTH} levels)"
            ) from None
        except ValueError as exc:  # null bytes, on some Python versions
            raise ParseError(f"syntax error: {exc}") from None

    def check_depth(self, tree: ast.Expression) -> None:
        """Reject syntax trees with more than MAX_DEPTH nested expressions."""
        stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.node_error(
                    f"expression nested too deeply (more than {MAX_DEPTH} levels; "
                    "each operator in a chain like a + b + c adds one, so group "
                    "long chains with parentheses)",
                    node,
                )
            for child in ast.iter_child_nodes(node):
                stack.append((child, depth + isinstance(child, ast.expr)))

    # -- validation: grammar, names, arity ------------------------------------

    def validate(self, tree: ast.Expression) -> None:
        """Check the whole tree and report the leftmost problem, if any."""
        nodes = list(ast.walk(tree.body))
        callees = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
        problems: list[tuple[int, ParseError]] = []
        for node in nodes:
            problem = None
            if isinstance(node, ast.keyword):
                problem = self.check_keyword(node)
            elif isinstance(node, ast.expr):
                problem = self.check_node(node, id(node) in callees)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise min(problems, key=lambda item: item[0])[1]

    def check_keyword(self, node: ast.keyword) -> tuple[int, ParseError]:
        """Reject a keyword argument or ``**`` unpacking in a call."""
        what = f"keyword argument {node.arg!r}" if node.arg else "'**' unpacking"
        offset = self.node_offset(node)
        return offset, self.error(
            f"{what} is not supported", offset, self.snippet(node)
        )

    def check_node(
        self, node: ast.expr, is_callee: bool
    ) -> tuple[int, ParseError] | None:
        """Return ``(offset, error)`` when ``node`` is not allowed, else None."""
        offset = self.node_offset(node)
        if isinstance(node, ast.Name):
            return self.check_name(node, offset, is_callee)
        if isinstance(node, ast.Constant):
            return self.check_constant(node, offset)
        if isinstance(node, ast.BinOp):
            if type(node.op) in _ARITHMETIC:
                return None
            symbol = _BINARY_OPERATORS.get(type(node.op), type(node.op).__name__)
            offset = self.operator_offset(node, symbol)
            hint = _OPERATOR_HINTS.get(symbol, "")
            return offset, self.error(f"unsupported operator {symbol!r}", offset, hint)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                return None
            symbol = "not" if isinstance(node.op, ast.Not) else "~"
            return offset, self.node_error(f"unsupported operator {symbol!r}", node)
        if isinstance(node, ast.Call):
            return self.check_call(node, offset)
        if isinstance(node, ast.Attribute | ast.Subscript):
            value = node.value
            offset = self.offset(value.end_lineno or 1, value.end_col_offset or 0)
        description = _NODE_NAMES.get(type(node), type(node).__name__)
        return offset, self.error(
            f"unsupported syntax {description!r}", offset, self.snippet(node)
        )

    def check_name(
        self, node: ast.Name, offset: int, is_callee: bool
    ) -> tuple[int, ParseError] | None:
        """Check that a name is declared, a constant, or (when called) a function."""
        name, detail = node.id, ""
        if name.startswith("_"):
            problem = f"name {name!r} is not allowed (names starting with '_' are "
            problem += "reserved)"
        elif is_callee and name in self.symbols:
            problem = f"{name!r} is a declared symbol, not a function"
        elif is_callee and name not in _FUNCTIONS:
            problem = f"unknown function {name!r}"
            detail = "accepted functions: " + ", ".join(sorted(_FUNCTIONS))
        elif is_callee or name in self.symbols or name in ALLOWED_CONSTANTS:
            return None
        elif name in _FUNCTIONS:
            problem = f"function {name!r} used without arguments"
        else:
            problem = f"unknown name {name!r}"
            detail = "declared symbols: " + (", ".join(sorted(self.symbols)) or "none")
            if name in _NAME_HINTS:
                detail += f"; {_NAME_HINTS[name]}"
        return offset, self.error(problem, offset, detail)

    def check_constant(
        self, node: ast.Constant, offset: int
    ) -> tuple[int, ParseError] | None:
        """Check a literal: only bounded int and float literals are allowed."""
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kinds = {str: "string", bytes: "bytes", complex: "imaginary number"}
            kind = kinds.get(type(value), repr(value))
            return offset, self.node_error(f"unsupported literal {kind!r}", node)
        if isinstance(value, int):
            if abs(value) < 10**MAX_LITERAL_DIGITS:
                return None
            return offset, self.node_error(
                f"integer literal too long (more than {MAX_LITERAL_DIGITS} digits)",
                node,
            )
        source = ast.get_source_segment(self.body, node) or repr(value)
        try:
            number = decimal.Decimal(source.replace("_", ""))
        except decimal.InvalidOperation:
            number = decimal.Decimal(repr(value))
        if (
            len(number.as_tuple().digits) > MAX_LITERAL_DIGITS
            or abs(number.adjusted()) > MAX_LITERAL_EXPONENT
        ):
            return offset, self.node_error(
                f"float literal out of range (at most {MAX_LITERAL_DIGITS} digits, "
                f"exponent within ±{MAX_LITERAL_EXPONENT})",
                node,
            )
        self.floats[id(node)] = sympy.Rational(*number.as_integer_ratio())
        return None

    def check_call(self, node: ast.Call, offset: int) -> tuple[int, ParseError] | None:
        """Check a call: a named allowed function with the right argument count."""
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute | ast.Subscript | ast.Lambda):
                return None  # the callee itself is reported
            return offset, self.node_error("only named functions can be called", node)
        spec = _FUNCTIONS.get(node.func.id)
        if spec is None or node.func.id in self.symbols:
            return None  # reported by check_name
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return None  # the keywords or unpacking are reported
        count = len(node.args)
        if spec.accepts(count):
            return None
        return offset, self.node_error(
            f"{node.func.id}() takes {spec.arity()} ({count} given)", node
        )

    def operator_offset(self, node: ast.BinOp, symbol: str) -> int:
        """Body offset of a binary operator's symbol (its node start if not found)."""
        left_end = self.offset(node.left.end_lineno or 1, node.left.end_col_offset or 0)
        found = self.body.find(symbol, left_end, self.node_offset(node.right))
        return found if found >= 0 else self.node_offset(node)

    # -- conversion to SymPy ----------------------------------------------------

    def convert(self, node: ast.expr) -> sympy.Expr:
        """Build the SymPy expression for a validated node within the limits."""
        try:
            result = self.build(node)
            self.guard.result(result)
        except _Rejected as exc:
            raise self.node_error(str(exc), node) from None
        return result

    def build(self, node: ast.expr) -> sympy.Expr:
        """Build the SymPy expression for a validated node."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int):
                return sympy.Integer(node.value)
            return self.floats[id(node)]
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id]
            return ALLOWED_CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self.convert(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = self.convert(node.left), self.convert(node.right)
            if isinstance(node.op, ast.Pow):
                self.guard.power(left, right)
            return self.apply(node, _ARITHMETIC[type(node.op)], (left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.convert(arg) for arg in node.args]
            self.guard.arguments(node.func.id, args)
            return self.apply(node, _FUNCTIONS[node.func.id].func, args)
        raise _Rejected("unsupported syntax")  # unreachable after validate

    def apply(
        self, node: ast.expr, func: Callable[..., Any], args: Sequence[sympy.Expr]
    ) -> sympy.Expr:
        """Call ``func``, turning SymPy's own argument errors into ParseError."""
        try:
            return func(*args)
        except _SYMPY_ERRORS as exc:
            raise self.node_error(
                "invalid expression", node, f"{self.snippet(node)} ({exc})"
            ) from None
