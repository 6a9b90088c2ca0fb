"""The notebooks in ``notebooks/``: stored with clean outputs, and they run.

Each notebook is executed by ``notebooks/execute.py``'s own ``execute`` (nbclient,
kernel ``python3`` = this interpreter, working directory ``notebooks/``); a cell
that raises fails the test with the cell's source and the error.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = (
    "01_derive.ipynb",
    "02_your_own_family.ipynb",
    "03_verify.ipynb",
    "04_natural_gradient.ipynb",
    "05_approximations.ipynb",
)
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
MAX_BYTES = 300_000


def _load_executor():
    spec = importlib.util.spec_from_file_location(
        "symfisher_notebooks_execute", NOTEBOOKS / "execute.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


executor = _load_executor()
params = pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])


def test_all_notebooks_present():
    missing = sorted(set(EXPECTED) - {p.name for p in PATHS})
    assert not missing, f"notebooks/ lacks {missing}"


@params
def test_stored_with_outputs(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} B"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    counts = [c.execution_count for c in code]
    # run top to bottom in one fresh kernel: 1, 2, ..., n
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}; "
        f"run `python notebooks/execute.py {path.name}`"
    )
    for i, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, f"{path.name} cell {i}: timestamps"
        for out in cell.get("outputs", []):
            assert out.output_type != "error", (
                f"{path.name} cell {i} stored an error: {out.ename}: {out.evalue}\n"
                f"{cell.source}"
            )


@params
def test_starts_with_title_and_how_to_run(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "jupyter lab notebooks/" in first.source
    assert "pytest tests/test_notebooks.py" in first.source


@pytest.mark.slow
@params
def test_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    try:
        executor.execute(nb, cwd=NOTEBOOKS, timeout=300)
    except CellExecutionError as e:  # its message holds the cell source and error
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # no terminal colours
        pytest.fail(f"{path.name}: a cell raised\n{plain}", pytrace=False)
    finally:
        nbformat.write(nb, tmp_path / path.name)  # the executed copy, for inspection
    errors = [
        o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors


def _one_cell(source):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])


def test_kernel_is_this_interpreter():
    nb = executor.execute(
        _one_cell("import os, sys\nprint(sys.executable, os.getcwd())")
    )
    (out,) = nb.cells[0].outputs
    assert out.text.split() == [sys.executable, str(NOTEBOOKS)]


def test_foreign_python3_kernel_is_refused(tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [
        "/elsewhere/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "other", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="not this interpreter"):
        executor.kernel_manager()


def test_execute_script_strips_timing(tmp_path):
    nb = _one_cell("1 + 1")
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2020-01-01T00:00:00Z"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    assert executor.main([str(path)]) == 0
    cell = nbformat.read(path, as_version=4).cells[0]
    assert "execution" not in cell.metadata
    assert cell.execution_count == 1
    assert cell.outputs[0].data["text/plain"] == "2"
