"""Safe parser from untrusted user text to SymPy expressions.

The text is turned into a Python syntax tree with ``ast.parse(..., mode="eval")``
and that tree is walked here, node by node; nothing is ever evaluated, executed
or handed to ``sympify``. Only arithmetic, numbers, declared symbols, a few
constants and the functions in :data:`ALLOWED_FUNCTIONS` are accepted.

Every stage is bounded so that no input makes parsing hang: the text length,
the nesting depth, the size of literals, numeric powers, the numeric arguments
of combinatorial and special functions, and the size of every exact or
approximate number built on the way. These limits are heuristics chosen to
keep SymPy's eager evaluation cheap; they are not a proof, so a service that
parses hostile text should still run the parser under a timeout.
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

import mpmath
import sympy

from symfisher.errors import ParseError

__all__ = ["ALLOWED_CONSTANTS", "ALLOWED_FUNCTIONS", "parse_expr"]

MAX_TEXT_LENGTH = 10_000
"""Longest accepted text, in characters."""
MAX_DEPTH = 100
"""Deepest accepted nesting of brackets and of expression nodes."""
MAX_LITERAL_DIGITS = 100
"""Most significant digits in a numeric literal."""
MAX_LITERAL_EXPONENT = 1_000
"""Largest decimal exponent (in absolute value) of a float literal."""
MAX_EXPONENT = 1_000
"""Largest numeric exponent (in absolute value) of a power."""
MAX_NUMBER_BITS = 10_000
"""Largest exact number (numerator or denominator) built while parsing, in bits."""
MAX_MAGNITUDE_BITS = 20_000
"""Numeric values must lie in ``[2**-N, 2**N]`` in absolute value (or be zero)."""
MAX_SPECIAL_ARGUMENT = 1_000
"""Largest numeric argument of gamma-like functions."""
MAX_BINOMIAL_ARGUMENT = 10_000
"""Largest integer argument of ``binomial``."""
MAX_BESSEL_ARGUMENT = 200
"""Largest numeric order or argument of the Bessel functions."""

_MAX_POLYGAMMA_WORK = 2_000  # bound on (order + 1) * |z| for exact polygamma
_MAX_BINOMIAL_EXPANSION = 20  # binomial(c, k) expands into k factors for numeric c
_MAX_FRACTION_BITS = 64  # non-integer rationals given to gamma-like functions
_EVALF_DIGITS = 1_000  # working precision cap when sizing numeric values
_INFINITIES = (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan)
_NEWLINE = re.compile(r"\r\n|\r|\n")


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


@dataclass(frozen=True)
class _Function:
    """An allowed function: its SymPy callable and how many arguments it takes."""

    func: Callable[..., sympy.Expr]
    min_args: int = 1
    max_args: int | None = 1

    def arity(self) -> str:
        """Describe the accepted argument count, e.g. ``"1 or 2 arguments"``."""
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
}

ALLOWED_FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = MappingProxyType(
    {name: spec.func for name, spec in _FUNCTIONS.items()}
)
"""Function names accepted in text, mapped to the SymPy callables they build."""

ALLOWED_CONSTANTS: Mapping[str, sympy.Expr] = MappingProxyType(
    {"pi": sympy.pi, "E": sympy.E, "EulerGamma": sympy.EulerGamma, "oo": sympy.oo}
)
"""Constant names accepted in text (a declared symbol of the same name wins)."""

_EXP_LIKE = frozenset({"exp", "expm1", "sigmoid", "softplus"})
_GAMMA_LIKE = frozenset({"gamma", "loggamma", "lgamma", "digamma", "factorial", "beta"})
_BESSEL = frozenset({"besseli", "besselj", "besselk"})

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
_ALLOWED_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_OPERATOR_HINTS = {"^": "use ** for powers", "//": "use floor(a / b)"}
_NAME_HINTS = {
    "e": "use E for Euler's number",
    "inf": "use oo for infinity",
    "infinity": "use oo for infinity",
    "Infinity": "use oo for infinity",
}


def parse_expr(text: str, symbols: Mapping[str, sympy.Symbol]) -> sympy.Expr:
    """Parse untrusted text into a SymPy expression.

    Names resolve first to ``symbols`` (so a parameter called ``beta`` shadows the
    beta function), then to :data:`ALLOWED_CONSTANTS`. Integer literals become
    ``sympy.Integer`` and float literals the exact ``sympy.Rational`` their
    decimal text denotes (``0.1`` is ``1/10``).

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


def _bits(number: sympy.Rational) -> int:
    """Size in bits of the larger of a rational's numerator and denominator."""
    return max(abs(int(number.p)).bit_length(), int(number.q).bit_length())


def _exact_bits(expr: sympy.Expr) -> float:
    """Bits of the exact numbers SymPy multiplies out when ``expr`` is powered."""
    total = 0.0
    for factor in sympy.Mul.make_args(expr):
        if factor.is_Rational:
            total += _bits(factor)
        elif factor.is_Pow and factor.base.is_Rational and factor.exp.is_Rational:
            total += _bits(factor.base) * float(abs(factor.exp))
    return total


def _is_numeric(expr: sympy.Expr) -> bool:
    """True for a finite expression free of symbols."""
    return not expr.free_symbols and not expr.has(*_INFINITIES)


class _Parser:
    """One parse: the source text, declared symbols and caches."""

    def __init__(self, text: str, symbols: dict[str, sympy.Expr]) -> None:
        self.text = text
        self.body = text.lstrip()
        self.lead = len(text) - len(self.body)
        self.line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self.body)]
        self.multiline = _NEWLINE.search(text.strip()) is not None
        self.symbols = symbols
        self.floats: dict[int, sympy.Rational] = {}
        self.sized: set[sympy.Expr] = set()

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
        """Reject bracket nesting deeper than MAX_DEPTH before the parser sees it."""
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
        except ValueError as exc:  # e.g. null bytes on some Python versions
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
            if isinstance(node, ast.keyword):
                problem = self.check_keyword(node)
            elif isinstance(node, ast.expr):
                problem = self.check_node(node, id(node) in callees)
            else:
                problem = None
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
            if isinstance(node.op, _ALLOWED_BINARY):
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
            offset = self.offset(
                node.value.end_lineno or 1, node.value.end_col_offset or 0
            )
        description = _NODE_NAMES.get(type(node), type(node).__name__)
        return offset, self.error(
            f"unsupported syntax {description!r}", offset, self.snippet(node)
        )

    def check_name(
        self, node: ast.Name, offset: int, is_callee: bool
    ) -> tuple[int, ParseError] | None:
        """Check that a name is declared, a constant, or (when called) a function."""
        name = node.id
        if name.startswith("_"):
            problem = (
                f"name {name!r} is not allowed (names starting with '_' are reserved)"
            )
        elif is_callee and name in self.symbols:
            problem = f"{name!r} is a declared symbol, not a function"
        elif is_callee and name not in _FUNCTIONS:
            problem = f"unknown function {name!r}"
        elif is_callee or name in self.symbols or name in ALLOWED_CONSTANTS:
            return None
        elif name in _FUNCTIONS:
            problem = f"function {name!r} used without arguments"
        else:
            declared = ", ".join(sorted(self.symbols)) or "none"
            hint = _NAME_HINTS.get(name, "")
            problem = f"unknown name {name!r}"
            return offset, self.error(
                problem,
                offset,
                f"declared symbols: {declared}" + (f"; {hint}" if hint else ""),
            )
        return offset, self.error(problem, offset)

    def check_constant(
        self, node: ast.Constant, offset: int
    ) -> tuple[int, ParseError] | None:
        """Check a literal: only bounded int and float literals are allowed."""
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = {str: "string", bytes: "bytes", complex: "imaginary number"}.get(
                type(value), repr(value)
            )
            return offset, self.node_error(f"unsupported literal {kind!r}", node)
        if isinstance(value, int):
            if abs(value) >= 10**MAX_LITERAL_DIGITS:
                return offset, self.node_error(
                    f"integer literal too long (more than {MAX_LITERAL_DIGITS} digits)",
                    node,
                )
            return None
        source = ast.get_source_segment(self.body, node) or repr(value)
        try:
            number = decimal.Decimal(source.replace("_", ""))
        except decimal.InvalidOperation:
            number = decimal.Decimal(repr(value))
        digits = number.as_tuple().digits
        if (
            len(digits) > MAX_LITERAL_DIGITS
            or abs(number.adjusted()) > MAX_LITERAL_EXPONENT
        ):
            return offset, self.node_error(
                f"float literal out of range (at most {MAX_LITERAL_DIGITS} digits and "
                f"exponents within ±{MAX_LITERAL_EXPONENT})",
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
        if count < spec.min_args or (
            spec.max_args is not None and count > spec.max_args
        ):
            return offset, self.node_error(
                f"{node.func.id}() takes {spec.arity()} ({count} given)", node
            )
        return None

    def operator_offset(self, node: ast.BinOp, symbol: str) -> int:
        """Body offset of a binary operator's symbol (its node start if not found)."""
        left_end = self.offset(node.left.end_lineno or 1, node.left.end_col_offset or 0)
        right_start = self.node_offset(node.right)
        found = self.body.find(symbol, left_end, right_start)
        return found if found >= 0 else self.node_offset(node)

    # -- conversion to SymPy ----------------------------------------------------

    def convert(self, node: ast.expr) -> sympy.Expr:
        """Build the SymPy expression for a validated node, checking its size."""
        result = self.build(node)
        self.check_result(result, node)
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
                self.check_power(left, right, node)
            return self.apply(node, _ARITHMETIC[type(node.op)], [left, right])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            args = [self.convert(arg) for arg in node.args]
            self.check_arguments(name, args, node)
            return self.apply(node, _FUNCTIONS[name].func, args)
        raise self.node_error("unsupported syntax", node)  # unreachable after validate

    def apply(
        self,
        node: ast.expr,
        func: Callable[..., sympy.Expr],
        args: Sequence[sympy.Expr],
    ) -> sympy.Expr:
        """Call ``func``, turning SymPy's own argument errors into ParseError."""
        try:
            return func(*args)
        except ParseError:
            raise
        except (ArithmeticError, TypeError, ValueError, NotImplementedError) as exc:
            raise self.node_error(
                "invalid expression", node, f"{self.snippet(node)} ({exc})"
            ) from None

    # -- resource guards ------------------------------------------------------

    def check_power(
        self, base: sympy.Expr, exponent: sympy.Expr, node: ast.BinOp
    ) -> None:
        """Reject powers SymPy would expand into huge exact numbers."""
        if base == sympy.E:
            self.check_exp_argument(exponent, node)
        if not exponent.is_Rational:
            return
        if abs(exponent) > MAX_EXPONENT:
            raise self.node_error(
                "exponent too large "
                f"(numeric exponents are limited to ±{MAX_EXPONENT})",
                node,
            )
        if _exact_bits(base) * float(abs(exponent)) > MAX_NUMBER_BITS:
            raise self.node_error(
                f"power too large (result would exceed {MAX_NUMBER_BITS} bits)", node
            )

    def check_exp_argument(self, argument: sympy.Expr, node: ast.expr) -> None:
        """Reject ``exp(c*log(n))`` with a large ``c``: SymPy expands it to ``n**c``."""
        for term in sympy.Add.make_args(argument):
            if not term.has(sympy.log):
                continue
            coeff = abs(term.as_coeff_Mul()[0])
            if not coeff.is_Rational:
                continue
            largest = max((_bits(r) for r in term.atoms(sympy.Rational)), default=1)
            if coeff > MAX_EXPONENT or float(coeff) * largest > MAX_NUMBER_BITS:
                raise self.node_error(
                    "exponent too large (exp of a large multiple of a logarithm)", node
                )

    def check_arguments(
        self, name: str, args: Sequence[sympy.Expr], node: ast.Call
    ) -> None:
        """Bound the numeric arguments of functions SymPy evaluates eagerly."""
        if name in _EXP_LIKE:
            self.check_exp_argument(args[0], node)
        elif name in _GAMMA_LIKE:
            for arg in args:
                self.check_special_argument(name, arg, node, MAX_SPECIAL_ARGUMENT)
        elif name in _BESSEL:
            for arg in args:
                self.check_special_argument(name, arg, node, MAX_BESSEL_ARGUMENT)
        elif name == "binomial":
            self.check_binomial(args, node)
        elif name == "polygamma":
            self.check_polygamma(args, node)

    def check_special_argument(
        self,
        name: str,
        arg: sympy.Expr,
        node: ast.Call,
        limit: int,
        integer_limit: int = 0,
    ) -> None:
        """Require a numeric argument to be at most ``limit`` in absolute value."""
        if not _is_numeric(arg):
            return
        if arg.is_Rational:
            if arg.is_Integer:
                limit = integer_limit or limit
            elif (
                max(abs(int(arg.p)).bit_length(), int(arg.q).bit_length())
                > _MAX_FRACTION_BITS
            ):
                raise self.node_error(f"argument of {name} has too many digits", node)
            size = abs(arg)
        else:
            size = self.approximate_abs(arg, node)
        if size > limit:
            raise self.node_error(
                f"argument of {name} too large "
                f"(numeric arguments are limited to {limit})",
                node,
            )

    def check_binomial(self, args: Sequence[sympy.Expr], node: ast.Call) -> None:
        """Bound binomial's arguments; a numeric non-rational ``n`` expands k-fold."""
        n, k = args
        for arg in args:
            self.check_special_argument(
                "binomial", arg, node, MAX_SPECIAL_ARGUMENT, MAX_BINOMIAL_ARGUMENT
            )
        if _is_numeric(n) and not n.is_Rational and k.is_Integer:
            if abs(k) > _MAX_BINOMIAL_EXPANSION:
                raise self.node_error(
                    "argument of binomial too large (an integer k with a non-rational "
                    f"n is limited to {_MAX_BINOMIAL_EXPANSION})",
                    node,
                )

    def check_polygamma(self, args: Sequence[sympy.Expr], node: ast.Call) -> None:
        """Require a small integer order and bound the exact work for rational z."""
        order, z = args
        if _is_numeric(order) and not (
            order.is_Integer and 0 <= order <= MAX_SPECIAL_ARGUMENT
        ):
            raise self.node_error(
                "order of polygamma must be an integer between 0 and "
                f"{MAX_SPECIAL_ARGUMENT}",
                node,
            )
        self.check_special_argument("polygamma", z, node, MAX_SPECIAL_ARGUMENT)
        if (
            order.is_Integer
            and z.is_Rational
            and (order + 1) * max(abs(z), 1) > _MAX_POLYGAMMA_WORK
        ):
            raise self.node_error(
                f"arguments of polygamma too large ((order + 1) * |z| is limited to "
                f"{_MAX_POLYGAMMA_WORK})",
                node,
            )

    def check_result(self, result: sympy.Expr, node: ast.expr) -> None:
        """Bound the exact and approximate numbers inside a freshly built node."""
        if result.is_Rational or not result.free_symbols:
            numeric = result
        elif result.is_Add or result.is_Mul:
            numeric = result.as_independent(*result.free_symbols)[0]
            if result.args[0].is_Rational:
                self.check_size(result.args[0], node)
        else:
            return
        self.check_size(numeric, node)

    def check_size(self, value: sympy.Expr, node: ast.expr) -> None:
        """Reject exact numbers over MAX_NUMBER_BITS and values out of range."""
        if value.is_Rational:
            if _bits(value) > MAX_NUMBER_BITS:
                raise self.node_error(
                    f"number too large (more than {MAX_NUMBER_BITS} bits)", node
                )
            return
        if value in self.sized or not _is_numeric(value):
            return
        self.sized.add(value)
        magnitude = self.approximate_abs(value, node)
        if magnitude != 0 and mpmath.isfinite(magnitude):
            if abs(mpmath.mag(magnitude)) > MAX_MAGNITUDE_BITS:
                raise self.node_error(
                    "numeric value out of range (magnitude beyond "
                    f"2**±{MAX_MAGNITUDE_BITS})",
                    node,
                )

    def approximate_abs(self, value: sympy.Expr, node: ast.expr) -> mpmath.mpf:
        """Approximate ``|value|`` for a symbol-free expression (0 if unevaluable)."""
        try:
            parts = value.evalf(15, maxn=_EVALF_DIGITS).as_real_imag()
        except (ArithmeticError, TypeError, ValueError, NotImplementedError) as exc:
            raise self.node_error(
                "cannot evaluate numeric subexpression",
                node,
                f"{self.snippet(node)} ({exc})",
            ) from None
        if not all(part.is_Number for part in parts):
            return mpmath.mpf(0)  # no numeric evaluation exists; SymPy leaves it alone
        return max(abs(mpmath.mpf(sympy.Float(part)._mpf_)) for part in parts)


_ARITHMETIC: dict[
    type[ast.operator], Callable[[sympy.Expr, sympy.Expr], sympy.Expr]
] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
