"""Resource guard of the safe parser: limits on the SymPy objects it builds.

SymPy evaluates eagerly, so :class:`_Guard` checks every power, function call
and freshly built expression against the ``MAX_*`` limits defined here (and
re-exported by :mod:`symfisher.parse`), sizing constants with a small
fixed-precision mpmath evaluation. A refused value raises :class:`_Rejected`,
to which the parser adds the position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import mpmath
import sympy
from mpmath.libmp import NoConvergence

from symfisher.parse_functions import _BESSEL, _EXP_LIKE, _GAMMA_LIKE, _ROUNDING

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
