r"""JAX code templates of the hand-written kernel modules, and the reader of their text.

Each module here is importable, linted Python (it needs JAX) whose sections
are written byte for byte into generated modules: ``structured_*.py`` by
:mod:`symfisher.codegen.structured`, ``policy_*.py`` by
:mod:`symfisher.codegen.policy_module`. A section is the lines between a
``# template: NAME`` line and an ``# end template: NAME`` line (at any
indentation); ``# fmt: off``/``# fmt: on`` around it keep ``ruff format`` from
changing those bytes. A placeholder is a module constant marked
``# template:``, written ``NAME`` in code and ``{NAME}`` in an f-string;
:func:`fill` puts its value in. Code outside the sections (imports, stand-ins
for the names of the generated header) only makes a template importable.

Generation reads the files as text and never imports them, so it never loads
JAX: this package imports only the standard library. ``structured_*.py`` feed
the catalog's kernels and so their ``source-sha256``
(:func:`symfisher.codegen.generate.source_digest`); ``policy_*.py`` only the
policy modules'.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def text(template: str) -> str:
    """The source of ``templates/<template>.py``."""
    return (HERE / f"{template}.py").read_text(encoding="utf-8")


def section(template: str, name: str) -> str:
    """The lines of section ``name`` of ``template``, verbatim (blank lines kept).

    Raises:
      ValueError: when the section is missing or its markers are not one pair.
    """
    lines = text(template).splitlines(keepends=True)
    marks = [ln.strip() for ln in lines]
    begin = [i for i, m in enumerate(marks) if m == f"# template: {name}"]
    end = [i for i, m in enumerate(marks) if m == f"# end template: {name}"]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise ValueError(f"templates/{template}.py: no single section {name!r}")
    return "".join(lines[begin[0] + 1 : end[0]])


def fill(code: str, **values: object) -> str:
    """``code`` with each placeholder ``NAME`` (and ``{NAME}``) replaced by its value.

    Raises:
      ValueError: when a placeholder does not occur in ``code``.
    """
    for name, value in values.items():
        filled = re.sub(
            rf"\b{name}\b", str(value), code.replace(f"{{{name}}}", str(value))
        )
        if filled == code:
            raise ValueError(f"placeholder {name} does not occur in the section")
        code = filled
    return code


def docstring(template: str) -> str:
    """The module docstring of ``template``, uncleaned (as it is written out)."""
    doc = ast.get_docstring(ast.parse(text(template)), clean=False)
    if doc is None:
        raise ValueError(f"templates/{template}.py has no docstring")
    return doc


def constant(template: str, name: str) -> object:
    """The literal value of the module-level constant ``name`` of ``template``."""
    for node in ast.parse(text(template)).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
        ):
            return ast.literal_eval(node.value)
    raise ValueError(f"templates/{template}.py has no constant {name}")
