"""Generated source as a person reads it: unused names dropped, then ``ruff format``.

Every generated module passes through :func:`tidy_source` before it is written
or compared, so ``generated/`` is formatted like the package (line length
:data:`LINE_LENGTH`) and lints clean. Ruff runs in a subprocess with
``--isolated``: a user's own ruff configuration never changes the bytes.
"""

from __future__ import annotations

import ast
import subprocess
import sys

from symfisher.errors import SymfisherError

#: the project's line length (``[tool.ruff] line-length``)
LINE_LENGTH = 88
#: guard against a hung formatter; it never decides a result
RUFF_SECONDS = 120.0
TARGET = "py311"


class FormatError(SymfisherError):
    """Ruff could not read or format a generated module (a code generation bug)."""


def _pure(node: ast.AST) -> bool:
    """An expression with no effect: names, constants, indexing, arithmetic, ``_x(...)``.

    ``theta[..., 0]``, ``theta.shape[-1] // 2``, ``_x(x, theta)``; any other call
    may have an effect (a check that raises) and is kept.
    """
    if isinstance(node, ast.Call):
        return (
            isinstance(node.func, ast.Name)
            and node.func.id == "_x"
            and all(_pure(a) for a in node.args)
        )
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(
        node, ast.Attribute | ast.Subscript | ast.BinOp | ast.UnaryOp | ast.Slice
    ):
        return all(_pure(c) for c in ast.iter_child_nodes(node))
    if isinstance(node, ast.Tuple):
        return all(_pure(e) for e in node.elts)
    return isinstance(node, ast.expr_context | ast.operator | ast.unaryop)


def unused_lines(text: str) -> set[int]:
    """1-based lines of pure assignments, inside functions, to names never read there."""
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise FormatError(f"generated source does not parse: {e}") from e
    drop: set[int] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for st in fn.body:
            if not (
                isinstance(st, ast.Assign)
                and len(st.targets) == 1
                and isinstance(st.targets[0], ast.Name)
                and _pure(st.value)
            ):
                continue
            name = st.targets[0].id
            # read anywhere else in the function (its own right side does not count)
            read = any(
                isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                for other in fn.body
                if other is not st
                for n in ast.walk(other)
            )
            if not read:
                drop.update(range(st.lineno, (st.end_lineno or st.lineno) + 1))
    return drop


def drop_unused(text: str) -> str:
    """``text`` without the lines of :func:`unused_lines`, repeated until none are left.

    (Dropping ``m = theta[..., :d]`` can leave ``d = ...`` unread in turn.)
    """
    while drop := unused_lines(text):
        lines = text.splitlines(keepends=True)
        text = "".join(ln for i, ln in enumerate(lines, 1) if i not in drop)
    return text


def ruff(args: list[str], text: str) -> str:
    """Output of ``ruff ARGS -`` on ``text`` (stdin), isolated from any config."""
    cmd = [sys.executable, "-m", "ruff", *args, "--isolated", "--stdin-filename"]
    try:
        done = subprocess.run(
            [*cmd, "generated.py", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=RUFF_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise FormatError(f"ruff {args[0]} ran over {RUFF_SECONDS:.0f} s") from e
    if done.returncode != 0:
        raise FormatError(f"ruff {args[0]} failed: {done.stderr.strip()[:2000]}")
    return done.stdout


def tidy_source(text: str) -> str:
    """``text`` with unused assignments and imports removed, then ruff-formatted."""
    text = drop_unused(text)
    text = ruff(
        ["check", "--fix-only", "--select", "F401", "--target-version", TARGET], text
    )
    return ruff(
        ["format", "--line-length", str(LINE_LENGTH), "--target-version", TARGET],
        text,
    )
