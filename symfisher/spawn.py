"""Calls of one function in spawned worker processes, with a stall guard.

:func:`run_in_workers` computes ``fn(*args)`` for every ``args`` of a list in
``jobs`` processes started with ``spawn`` (SymPy and JAX do not like ``fork``
after threads), hands the next call to whichever worker is free, and returns
the results in the order of the list. The derivations of
:func:`symfisher.pool.derive_many` and the verification of
``symfisher verify --all`` run this way.

Two failures get a clear error instead of a wait:

* a worker that dies (killed, out of memory, or a script without an
  ``if __name__ == "__main__":`` guard, whose spawned workers run the script's
  top level again) raises :class:`~symfisher.errors.SymfisherError` at once;
* when no call finishes for ``stall`` seconds the workers are killed and
  :class:`~symfisher.errors.HangError` names the calls still waiting. This is
  a hang guard; it never decides a result.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

from symfisher.errors import HangError, SymfisherError

T = TypeVar("T")

#: what a dead worker most often means, for the error message
_GUARD_HINT = (
    "if this runs from a script, put the script's top-level code under "
    '`if __name__ == "__main__":` (workers are spawned: each imports the main '
    "module again), or ask for one job"
)


def run_in_workers(
    fn: Callable[..., T],
    calls: Sequence[tuple[Any, ...]],
    jobs: int,
    *,
    stall: float,
    names: Sequence[str] | None = None,
    on_done: Callable[[int, T], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[T]:
    """``[fn(*args) for args in calls]``, computed in ``jobs`` spawned processes.

    Args:
      fn: a module-level function (it is pickled by reference).
      calls: the argument tuples, handed out in this order.
      jobs: worker processes (at most ``len(calls)`` are started).
      stall: seconds without a finished call after which the workers count as
        hung.
      names: what each call is, for the messages (default: its index).
      on_done: called in this process with ``(index, result)`` as each call ends.
      environ: variables set for the workers (they copy this process's
        environment as they start).

    Raises:
      HangError: no call finished for ``stall`` seconds (the workers are killed).
      SymfisherError: a worker died (the others are killed).
      Exception: the first exception a call raised, as raised (the others are
        killed).
    """
    if not calls:
        return []
    labels = list(names) if names is not None else [str(i) for i in range(len(calls))]
    ctx = multiprocessing.get_context("spawn")
    pool = futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(calls)), mp_context=ctx
    )
    results: list[Any] = [None] * len(calls)
    finished = False
    got: set[int] = set()
    try:
        with _environment(environ or {}):
            index = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
        pending = set(index)
        while pending:
            done, pending = futures.wait(
                pending, timeout=stall, return_when=futures.FIRST_COMPLETED
            )
            if not done:
                waiting = sorted(index[f] for f in pending)
                raise HangError(
                    f"nothing finished in {stall:g} s; worker processes killed "
                    f"(waiting for {', '.join(labels[i] for i in waiting)})"
                )
            for f in sorted(done, key=index.__getitem__):
                i = index[f]
                try:
                    results[i] = f.result()
                    got.add(i)
                except BrokenProcessPool:
                    left = [j for j in range(len(calls)) if j not in got]
                    raise SymfisherError(
                        "a worker process died; the others were stopped (not done: "
                        f"{', '.join(labels[j] for j in left)}): {_GUARD_HINT}"
                    ) from None
                if on_done is not None:
                    on_done(i, results[i])
        finished = True
    finally:
        _stop(pool, kill=not finished)
    return results


def _stop(pool: futures.ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut ``pool`` down with its workers ended, killed first when ``kill``."""
    if not kill:
        pool.shutdown(wait=True)
    elif hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
    else:
        # the pool's manager thread reaps the workers: it is waited for, the
        # workers are not (two threads reaping one process race)
        procs = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        if manager is not None:
            manager.join()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` inside the block (variables already set win)."""
    added = [k for k in values if k not in os.environ]
    for k in added:
        os.environ[k] = values[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
