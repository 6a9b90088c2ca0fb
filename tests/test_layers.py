"""The package's layers only look down: every import of every module, at any depth.

families -> derive -> codegen -> verify -> publish -> users (natural, testing) -> cli,
over a base (errors, parsing, time limits, worker processes, the outcome book, files, the kernel
loader) that imports nothing above it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "symfisher"

#: (layer, module prefixes), lowest first
LAYERS = [
    (
        "base",
        (
            "symfisher",
            "symfisher._callable",
            "symfisher.errors",
            "symfisher.outcomes",
            "symfisher.timelimit",
            "symfisher.spawn",
            "symfisher.parse",
            "symfisher.parse_functions",
            "symfisher.parse_guard",
            "symfisher.files",
            "symfisher.kernels",
            "symfisher.latex",
        ),
    ),
    ("families", ("symfisher.families",)),
    ("derive", ("symfisher.cache", "symfisher.derive", "symfisher.pool")),
    ("codegen", ("symfisher.codegen",)),
    ("verify", ("symfisher.verify",)),
    ("publish", ("symfisher.publish",)),
    ("users", ("symfisher.natural", "symfisher.testing")),
    ("cli", ("symfisher.cli",)),
]


def layer(module: str) -> int:
    """Index of the layer whose longest prefix matches ``module``."""
    best, where = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, where = len(p), i
    assert where is not None, module
    return where


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """Every ``symfisher`` module ``path`` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "symfisher":
                continue
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names} & known
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "symfisher"}
    return out


MODULES = modules()


def test_every_module_has_a_layer():
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_look_down(name):
    here = layer(name)
    up = sorted(
        f"{imp} ({LAYERS[layer(imp)][0]})"
        for imp in imports(MODULES[name], set(MODULES))
        if layer(imp) > here and imp != "symfisher"
    )
    assert not up, f"{name} ({LAYERS[here][0]}) imports upward: {up}"


def test_the_check_can_fail():
    # an upward import planted in a families module is found
    src = "def f():\n    from symfisher.codegen.emit import body\n"
    tree_imports = {
        n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)
    }
    assert any(layer(m) > layer("symfisher.families.family") for m in tree_imports)


def test_importing_the_code_generator_does_not_load_the_verifier():
    import subprocess
    import sys

    code = (
        "import sys, symfisher.codegen.generate\n"
        "bad = [m for m in ('jax', 'symfisher.verify.run') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
