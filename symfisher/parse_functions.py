"""What parsed text may call or name: the allowed functions and constants.

:data:`ALLOWED_FUNCTIONS` and :data:`ALLOWED_CONSTANTS` (re-exported by
:mod:`symfisher.parse`), the helper constructors behind the functions SymPy
lacks (``log1p``, ``sigmoid``, ``Phi``, ``normal_logpdf``, ...), the arity of
each function, the groups of functions the resource guard bounds alike, and
the hints given for common wrong names and operators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sympy


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

_OPERATOR_HINTS = {"^": "use ** for powers", "//": "use floor(a / b)"}
_NAME_HINTS = {
    "e": "use E for Euler's number",
    "inf": "use oo for infinity",
    "infinity": "use oo for infinity",
    "Infinity": "use oo for infinity",
}
