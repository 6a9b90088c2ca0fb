"""Verification in local worker processes: ``symfisher verify --all --jobs N``.

:func:`symfisher.verify_many` with ``jobs=N`` (and ``symfisher verify``, whose
default is one job per usable core) hands each family, and each policy of
:func:`verify_all`, to one of N spawned worker processes
(:func:`symfisher.spawn.run_in_workers`). The parameter points, the sample-size
rule's count of checks and Holm's correction stay in the calling process; a
worker runs what one process runs for its family (:func:`symfisher.verify.run._family`),
whose draws depend on the seed and the point's index only. The report is
therefore that of one process: verdicts, p-values and decisions alike.

The longest tasks are handed out first, by the seconds each took in the last
run on this machine (``<cache folder>/verify-seconds.json``; unknown ones
first). The order decides only which worker is busy when, never a result.
Warnings a worker saw are issued again here, in family order.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symfisher.errors import DomainError

#: seconds without a finished task after which the workers count as hung
STALL_SECONDS = 1800.0


def task(kind: str, *args: Any) -> Any:
    """One task: ``("family", ref, points, notes, run, jax_cache)`` or ``("policy", name, settings)``.

    What it returns travels back pickled.
    """
    if kind == "family":
        return _family_task(*args)
    if kind == "policy":
        from symfisher.verify.policy_checks import verify_policy

        name, settings = args
        return verify_policy(name, **settings)
    raise ValueError(f"unknown task kind {kind!r}")


def _family_task(
    ref: Any, points: Sequence[Any], notes: Sequence[Any], run: dict, jax_cache: Any
) -> tuple[Any, list[Warning]]:
    """In a worker: one family's checks, traces and sample size, and its warnings."""
    import jax

    from symfisher.verify import compile_cache
    from symfisher.verify.run import _family, _NoBar, _resolve

    compile_cache.enable(jax_cache)
    with warnings.catch_warnings(record=True) as caught, jax.enable_x64(True):
        warnings.simplefilter("always")
        fam, kmod = _resolve(ref, None)
        out = _family(fam, kmod, points, notes, _NoBar(), **run)
    return out, [w.message for w in caught]


def _worker(kind: str, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = task(kind, *args)
    return out, time.perf_counter() - t


def run(
    families: Sequence[Any],
    points: Sequence[Any],
    notes: dict[int, Any],
    settings: dict[str, Any],
    extra: Sequence[tuple[str, tuple[Any, ...]]],
    jobs: int,
    jax_cache: Any,
    bar: Any,
) -> tuple[dict[int, Any], list[Any]]:
    """Every family (and ``extra`` task) in ``jobs`` workers.

    Returns:
      ``{j: _family(...) of family j}`` and the results of ``extra``, in order.
    """
    import pickle

    from symfisher.spawn import run_in_workers

    calls: list[tuple[Any, ...]] = [
        ("family", ref, points[j], notes[j], settings, jax_cache)
        for j, ref in enumerate(families)
    ] + [(kind, *args) for kind, args in extra]
    names = [_name(f) for f in families] + [_name(args[0]) for _, args in extra]
    for f, call in zip(names, calls, strict=True):
        try:
            pickle.dumps(call)
        except Exception as e:
            raise DomainError(
                f"jobs > 1 sends {f} to a worker process: it must pickle (catalog "
                f"names do); {type(e).__name__}: {e}"
            ) from e
    last = _last_seconds()
    order = sorted(range(len(calls)), key=lambda i: -last.get(names[i], float("inf")))
    task_bar = bar.add_task("verifying (workers)", total=len(calls))

    def done(i: int, result: Any) -> None:
        bar.advance(task_bar)

    with bar:
        results = run_in_workers(
            _worker,
            [calls[i] for i in order],
            jobs,
            stall=STALL_SECONDS,
            names=[names[i] for i in order],
            on_done=done,
        )
    out: list[Any] = [None] * len(calls)
    seconds: dict[str, float] = {}
    for i, (value, secs) in zip(order, results, strict=True):
        out[i] = value
        seconds[names[i]] = round(secs, 3)
    _remember(seconds)
    parts = {}
    for j in range(len(families)):
        value, caught = out[j]
        for message in caught:  # in family order, as one process issues them
            warnings.warn(message, stacklevel=4)
        parts[j] = value
    return parts, out[len(families) :]


def _name(f: Any) -> str:
    return f if isinstance(f, str) else getattr(f, "name", repr(f))


def _seconds_file() -> Path:
    from symfisher.cache import cache_dir

    return cache_dir() / "verify-seconds.json"


def _last_seconds() -> dict[str, float]:
    """Seconds each task took in the last run here (a scheduling hint only)."""
    try:
        data = json.loads(_seconds_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def _remember(seconds: dict[str, float]) -> None:
    try:
        path = _seconds_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({**_last_seconds(), **seconds}, indent=1, sort_keys=True),
            encoding="utf-8",
        )
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache folder only loses the hint
