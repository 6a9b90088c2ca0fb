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
from typing import Any

import sympy

from symfisher.errors import ParseError
from symfisher.parse_functions import (
    _FUNCTIONS,
    _NAME_HINTS,
    _OPERATOR_HINTS,
    ALLOWED_CONSTANTS,
    ALLOWED_FUNCTIONS,
)

# The limits on what the guard builds are defined, documented and read in
# symfisher.parse_guard; they are re-exported here (patch them there).
from symfisher.parse_guard import (  # noqa: F401
    MAX_BESSEL_ARGUMENT,
    MAX_BINOMIAL_ARGUMENT,
    MAX_DEGREE,
    MAX_EXP_ARGUMENT,
    MAX_EXPONENT,
    MAX_EXPONENT_DENOMINATOR,
    MAX_MAGNITUDE_BITS,
    MAX_NUMBER_BITS,
    MAX_NUMERIC_NESTING,
    MAX_ROUNDING_ARGUMENT,
    MAX_SPECIAL_ARGUMENT,
    _Guard,
    _Rejected,
)

__all__ = ["ALLOWED_CONSTANTS", "ALLOWED_FUNCTIONS", "parse_expr"]

MAX_TEXT_LENGTH = 10_000
"""Longest accepted text, in characters."""
MAX_DEPTH = 100
"""Deepest accepted nesting of brackets, and of operators and calls."""
MAX_LITERAL_DIGITS = 100
"""Most significant digits in a numeric literal."""
MAX_LITERAL_EXPONENT = 300
"""Largest decimal exponent (in absolute value) of a float literal."""

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
