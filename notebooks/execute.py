"""Execute notebooks in place and store them with their outputs.

Usage: ``python notebooks/execute.py [NAME.ipynb ...]`` (default: every
``notebooks/*.ipynb``, sorted). Each notebook runs in a fresh ``python3`` kernel
started by this interpreter (``sys.executable``), with ``notebooks/`` as its
working directory and a per-cell time limit. Stored notebooks carry outputs and
execution counts but no execution timestamps, so reruns differ only where the
computed output differs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNEL = "python3"
CELL_TIMEOUT = 300


def kernel_manager() -> AsyncKernelManager:
    """A manager for the ``python3`` kernel, checked to run ``sys.executable``.

    Raises:
      RuntimeError: when the ``python3`` kernel spec would start another
        interpreter (e.g. a user-level kernel spec shadows this environment's).
    """
    km = AsyncKernelManager(kernel_name=KERNEL)
    cmd = km.format_kernel_cmd()
    if not cmd or Path(cmd[0]).absolute() != Path(sys.executable).absolute():
        raise RuntimeError(
            f"kernel {KERNEL!r} would start {cmd[:1]}, not this interpreter "
            f"{sys.executable}; install ipykernel in this environment and remove "
            f"the shadowing spec ({km.kernel_spec.resource_dir})"
        )
    return km


def execute(
    nb: nbformat.NotebookNode, cwd: Path = HERE, timeout: int = CELL_TIMEOUT
) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` (in place) in a fresh kernel; return ``nb``.

    Raises:
      nbclient.exceptions.CellExecutionError: naming the failing cell's source
        and the error, when a cell raises.
    """
    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=timeout,
        kernel_name=KERNEL,
        record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return strip_timing(nb)


def strip_timing(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop per-cell execution timestamps (``metadata.execution``); keep counts."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str]) -> int:
    """Execute the named notebooks (default all) and write them back."""
    paths = [Path(a) if Path(a).exists() else HERE / a for a in argv]
    paths = paths or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        execute(nb)
        nbformat.write(nb, path)
        print(
            f"{path.name}: {time.perf_counter() - t0:.1f} s, "
            f"{path.stat().st_size / 1024:.0f} KB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
