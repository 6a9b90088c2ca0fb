"""Code templates (symfisher/codegen/templates/): importable, linted, read as text."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symfisher.codegen import generate, templates

HERE = templates.HERE
NAMES = sorted(p.stem for p in HERE.glob("*.py") if p.name != "__init__.py")
RUFF = str(Path(sys.executable).parent / "ruff")


def test_the_templates_are_there():
    assert {"policy_common", "structured_softmax", "structured_simplex"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_template_imports(name):
    mod = importlib.import_module(f"symfisher.codegen.templates.{name}")
    assert mod.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_every_section_is_kept_from_the_formatter(name):
    lines = [ln.strip() for ln in templates.text(name).splitlines()]
    fmt = [(i, ln) for i, ln in enumerate(lines) if ln in ("# fmt: off", "# fmt: on")]
    sections = [
        (i, m.group(1))
        for i, ln in enumerate(lines)
        if (m := re.fullmatch(r"# template: (.+)", ln))
    ]
    assert sections
    for i, sec in sections:
        before = [ln for j, ln in fmt if j < i]
        after = [ln for j, ln in fmt if j > i]
        assert before and before[-1] == "# fmt: off", (name, sec)
        assert after and after[0] == "# fmt: on", (name, sec)
        assert templates.section(name, sec)


def test_the_templates_are_linted_and_formatted():
    ruff = RUFF if Path(RUFF).exists() else shutil.which("ruff")
    assert ruff, "ruff is not installed"
    root = HERE.parents[2]
    rel = HERE.relative_to(root).as_posix()
    shown = subprocess.run(
        [ruff, "check", "--show-files", rel], cwd=root, capture_output=True, text=True
    ).stdout
    for name in [*NAMES, "__init__"]:
        assert f"{name}.py" in shown, f"ruff does not lint templates/{name}.py"
    for cmd in (["check"], ["format", "--check"]):
        out = subprocess.run(
            [ruff, *cmd, rel], cwd=root, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout


def test_generation_reads_the_templates_without_importing_them():
    code = (
        "import sys\n"
        "from symfisher.codegen.policy_module import POLICY_NAMES, policy_module_text\n"
        "from symfisher.codegen.structured import size_shape_check\n"
        "for n in POLICY_NAMES:\n"
        "    policy_module_text(n, '0' * 64)\n"
        "for kind in ('coordinates', 'softmax', 'simplex'):\n"
        "    size_shape_check(kind, 2)\n"
        "bad = [m for m in sys.modules\n"
        "       if m == 'jax' or m.startswith('symfisher.codegen.templates.')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_placeholders_are_filled_in_code_and_in_f_strings():
    check = templates.fill(templates.section("structured_sizes", "blocks"), BLOCK=3)
    assert "% 3:" in check and "multiple of 3 " in check and "BLOCK" not in check
    with pytest.raises(ValueError, match="NOPE"):
        templates.fill(check, NOPE=1)


def test_a_missing_section_is_an_error():
    with pytest.raises(ValueError, match="no single section 'nope'"):
        templates.section("policy_common", "nope")


def test_structured_templates_feed_the_kernel_hash_and_policy_ones_do_not():
    kernel = {
        p.name
        for p in generate._sources(generate.KERNEL_SOURCES, generate.NOT_KERNEL_SOURCES)
        if p.parent == HERE
    }
    policy = {p.name for p in generate._sources(generate.POLICY_SOURCES)}
    structured = {f"{n}.py" for n in NAMES if n.startswith(("structured_", "kernel_"))}
    policies = {f"{n}.py" for n in NAMES if n.startswith("policy_")}
    assert structured | {"__init__.py"} == kernel
    assert policies | {"__init__.py", "policy_module.py"} == policy
    # every template feeds one kind of module
    assert structured | policies == {f"{n}.py" for n in NAMES}
