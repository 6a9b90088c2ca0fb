r"""Verification spread over several processes with JAX's multi-process runtime.

``verify_many(..., processes=N)`` (``symfisher verify --processes N``) gives
family ``j`` (in the order given) to process ``j mod N``. Every process
resolves every family and its points (the sample-size rule counts the checks
of the whole run), verifies its share with the same keys as one process (a
family's draws depend on the seed and the point's index only), and the
per-family results are exchanged with
:func:`jax.experimental.multihost_utils.process_allgather` after
:func:`jax.distributed.initialize` (on CPU through Gloo, JAX's default CPU
collectives). Each process then applies the same Holm correction to the same
checks in the same order: the report of one process, verdicts, p-values and
decisions alike.

Without ``process_id`` the N processes are started on this machine
(:func:`launch`: ``python -m symfisher.verify.distributed``) and the caller
gets process 0's report; a process that fails stops the others, and a time
limit (``HANG_SECONDS``) guards against a hang (it never decides a result).
Across hosts, start ``symfisher verify ... --processes N --coordinator
HOST:PORT --process-id I`` on each host (README, "Verification on several
processes or hosts").
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from symfisher.errors import DomainError, SymfisherError

if TYPE_CHECKING:
    from symfisher.verify.report import Report

#: seconds a local multi-process run may take before its processes are killed
HANG_SECONDS = 4 * 3600.0
#: seconds to wait for every process to join the coordinator
JOIN_SECONDS = 300


class Share(NamedTuple):
    """This process's place in a multi-process run."""

    processes: int
    coordinator: str | None
    process_id: int | None

    @property
    def local(self) -> bool:
        """Whether the processes are still to be started here (no ``process_id``)."""
        return self.process_id is None


def check(processes: Any, coordinator: str | None, process_id: Any) -> Share | None:
    """The run's :class:`Share`, ``None`` for one process; errors name the setting."""
    if processes is None and coordinator is None and process_id is None:
        return None
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise DomainError(f"processes must be a positive integer, got {processes!r}")
    if (coordinator is None) != (process_id is None):
        raise DomainError(
            "coordinator and process_id go together (each process started by "
            f"hand names both), got coordinator={coordinator!r}, "
            f"process_id={process_id!r}"
        )
    if process_id is not None:
        if (
            isinstance(process_id, bool)
            or not isinstance(process_id, int)
            or not 0 <= process_id < processes
        ):
            raise DomainError(
                f"process_id must be an integer in [0, {processes}), got {process_id!r}"
            )
        host, sep, port = str(coordinator).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise DomainError(
                f"coordinator must be HOST:PORT (e.g. 10.0.0.1:7777), got {coordinator!r}"
            )
    if processes == 1 and process_id is None:
        return None
    return Share(processes, coordinator, process_id)


def assigned(n_families: int, share: Share) -> list[int]:
    """Indices of the families this process verifies: round robin by order."""
    return list(range(share.process_id or 0, n_families, share.processes))


def initialize(share: Share) -> None:
    """Join the run's coordinator (:func:`jax.distributed.initialize`), once."""
    import jax

    if jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(
            share.coordinator,
            num_processes=share.processes,
            process_id=share.process_id,
            initialization_timeout=JOIN_SECONDS,
        )
    except RuntimeError as e:
        raise SymfisherError(
            f"cannot join the verification run at {share.coordinator} as process "
            f"{share.process_id} of {share.processes}: {e}"
        ) from e


def run_share(
    mine: Sequence[int], work: Callable[[int], Any], bar: Any
) -> dict[int, Any]:
    """``work(j)`` for this process's families, then every process's results.

    A failure is not raised before the exchange (the other processes would wait
    for this one): it travels with the results, and every process raises the
    first, in family order. Warnings travel too and are issued again in order.
    """
    import jax

    own: dict[int, Any] = {}
    with bar:
        for j in mine:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    own[j] = ("ok", work(j), [w.message for w in caught])
                except Exception as e:
                    own[j] = ("error", _picklable(e), [w.message for w in caught])
                    break
    everyone = _allgather(own) if jax.process_count() > 1 else [own]
    merged = {j: r for part in everyone for j, r in part.items()}
    out = {}
    for j in sorted(merged):
        status, value, caught = merged[j]
        for message in caught:
            warnings.warn(message, stacklevel=4)
        if status == "error":
            raise value
        out[j] = value
    return out


def _picklable(e: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:
        return SymfisherError(f"{type(e).__name__}: {e}")
    return e


def _allgather(obj: Any) -> list[Any]:
    """``obj`` of every process, in process order (pickled through the collectives)."""
    import numpy as np
    from jax.experimental import multihost_utils

    data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    sizes = multihost_utils.process_allgather(np.array([data.size], np.int64))
    sizes = np.asarray(sizes).reshape(-1)
    buf = np.zeros(int(sizes.max()), np.uint8)
    buf[: data.size] = data
    every = np.asarray(multihost_utils.process_allgather(buf))
    return [pickle.loads(every[i, : int(n)].tobytes()) for i, n in enumerate(sizes)]


# -- starting the processes on this machine --------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    families: Sequence[Any],
    kernels: Sequence[Any] | None,
    processes: int,
    settings: dict[str, Any],
) -> Report:
    """Verify in ``processes`` new local processes; return process 0's report."""
    if kernels is not None and any(k is not None for k in kernels):
        raise DomainError(
            "processes > 1 verifies generated kernels only: pass kernels=None "
            "(user families get theirs generated in each process)"
        )
    from symfisher.verify.resolve import resolve

    for f in families:  # an unknown name fails here, not in N processes
        if isinstance(f, str):
            resolve(f, build=False)
    try:
        job = pickle.dumps((list(families), dict(settings)))
    except Exception as e:
        raise DomainError(
            "processes > 1 sends the families to other processes: they must "
            f"pickle (catalog names do); {type(e).__name__}: {e}"
        ) from e
    show = settings.get("progress")
    show = sys.stderr.isatty() if show is None else show
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="symfisher-verify-") as tmp:
        folder = Path(tmp)
        (folder / "job.pkl").write_bytes(job)
        coordinator = f"127.0.0.1:{_free_port()}"
        procs, logs = [], []
        try:
            for i in range(processes):
                log = (folder / f"process-{i}.log").open("wb")
                logs.append(log)
                cmd = [
                    sys.executable,
                    "-m",
                    "symfisher.verify.distributed",
                    str(folder),
                    coordinator,
                    str(processes),
                    str(i),
                    "1" if show and i == 0 else "0",
                ]
                err = None if show and i == 0 else log
                procs.append(
                    subprocess.Popen(cmd, stdout=log, stderr=err, env=dict(os.environ))
                )
            _wait(procs, folder)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            for log in logs:
                log.close()
        report, caught = pickle.loads((folder / "report.pkl").read_bytes())
    for message in caught:  # what process 0 saw, issued again here
        warnings.warn(message, stacklevel=3)
    report.seconds = time.perf_counter() - start
    return report


def _wait(procs: list[subprocess.Popen], folder: Path) -> None:
    """Until every process exits 0; the first failure or the time limit stops all."""
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            i = failed[0]
            tail = (folder / f"process-{i}.log").read_bytes()[-3000:]
            raise SymfisherError(
                f"verification process {i} of {len(procs)} failed (exit code "
                f"{codes[i]}); the others were stopped. Its output ends:\n"
                + tail.decode(errors="replace")
            )
        if all(c == 0 for c in codes):
            return
        if time.monotonic() > deadline:
            raise SymfisherError(
                f"verification processes still running after {HANG_SECONDS:g} s; "
                "stopped (a hang guard, not a verdict)"
            )
        time.sleep(0.1)


def _main(argv: Sequence[str]) -> int:  # pragma: no cover - runs in the child
    """One process of :func:`launch`: verify its share; process 0 writes the report."""
    folder, coordinator, processes, process_id, show = argv
    families, settings = pickle.loads((Path(folder) / "job.pkl").read_bytes())
    settings["progress"] = show == "1"
    from symfisher.verify.run import verify_many

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = verify_many(
            families,
            processes=int(processes),
            coordinator=coordinator,
            process_id=int(process_id),
            **settings,
        )
    if int(process_id) == 0:
        done = (report, [w.message for w in caught])
        tmp = Path(folder) / "report.tmp"
        tmp.write_bytes(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(Path(folder) / "report.pkl")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
