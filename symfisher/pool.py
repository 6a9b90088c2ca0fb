"""Derivations of catalog families and policies in worker processes.

:func:`derive_many` derives several catalog names at once: what the on-disk
cache already serves is read in this process, the rest is derived by ``jobs``
worker processes (started with ``spawn``: SymPy and JAX do not like ``fork``
after threads). Each worker derives with :func:`symfisher.derive` and writes the
cache as one process would; its result comes back pickled, as the cache stores
it, and results are returned in the order asked. A derivation does not depend
on the process it runs in, so the results are those of ``jobs=1``, which derives
in this process.

Workers start with SymPy's cache ten times its default size
(``SYMPY_CACHE_SIZE``, unless it is set): a derivation asks for the same
expressions often, and the catalog derives about 10% faster. A cache keeps
values, never changes them.

A watchdog guards against hangs (:func:`symfisher.spawn.run_in_workers`): when
no derivation finishes for ``STALL_SECONDS`` (times ``SYMFISHER_TIME_SCALE``),
the workers are killed and :class:`~symfisher.errors.HangError` is raised; a
worker that dies raises at once. It never decides a result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from symfisher import cache, outcomes
from symfisher.errors import DomainError, HangError

#: seconds without a finished derivation after which the workers count as hung
STALL_SECONDS = 600.0
#: SymPy's cache size in worker processes, unless ``SYMPY_CACHE_SIZE`` is set
WORKER_SYMPY_CACHE = "10000"
#: what the worker processes find in their environment (variables set win)
WORKER_ENVIRON = {"SYMPY_CACHE_SIZE": WORKER_SYMPY_CACHE}


class Subject(NamedTuple):
    """A catalog family or built-in policy by name, with size keywords."""

    name: str
    policy: bool = False
    sizes: tuple[tuple[str, int], ...] = ()


def default_jobs() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs: Any) -> int:
    """``jobs`` as an int, or a :class:`DomainError` naming the constraint."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise DomainError(f"jobs must be a positive integer, got {jobs!r}")
    return jobs


def _build(subject: Subject) -> Any:
    """The family or policy object ``subject`` names."""
    if subject.policy:
        from symfisher.families.policies import policy

        return policy(subject.name, **dict(subject.sizes))
    from symfisher.families.catalog import family

    return family(subject.name, **dict(subject.sizes))


def _modules(subject: Subject) -> tuple[Any, type, dict[str, Any], Callable]:
    """(module, result class, in-memory memo, derive function) of a subject's kind."""
    if subject.policy:
        from symfisher.derive import policy_derivation as m

        return m, m.PolicyDerivation, m._MEMORY, m.derive_policy
    from symfisher.derive import derivation as m

    return m, m.Derivation, m._MEMORY, m.derive


def _result(subject: Subject, obj: Any, payload: Mapping[str, Any], fresh: bool) -> Any:
    _, cls, _, _ = _modules(subject)
    field = "policy" if subject.policy else "family"
    return cls(**{field: obj}, from_cache=not fresh, **payload)


def _lookup(subject: Subject, obj: Any, seconds: float) -> Any | None:
    """The result the cache serves for ``subject`` (as :func:`derive` would), or None."""
    _, _, memory, _ = _modules(subject)
    return cache.lookup(
        obj, memory, seconds, lambda payload: _result(subject, obj, payload, False)
    )


def _work(subject: Subject, use_cache: bool, seconds: float) -> tuple[dict, bool]:
    """In a worker: derive ``subject``; return its stored fields and whether fresh.

    A :class:`HangError` (not an ``Exception``: a pool worker would die of it)
    comes back as a :class:`_Hang`, raised again as a ``HangError`` by the parent.
    """
    mod, _, _, derive = _modules(subject)
    try:
        d = derive(_build(subject), use_cache=use_cache, seconds=seconds)
    except HangError as e:
        raise _Hang(f"{subject.name}: {e}") from None
    return {f: getattr(d, f) for f in mod._FIELDS}, not d.from_cache


class _Hang(Exception):
    """A worker's :class:`HangError`, carried as an ``Exception``."""


def derive_many(
    subjects: Sequence[Subject | str],
    *,
    jobs: int | None = None,
    use_cache: bool = True,
    seconds: float = 20.0,
    on_done: Callable[[str], None] | None = None,
) -> list[Any]:
    """Derive catalog families and policies, ``jobs`` at a time, in worker processes.

    Args:
      subjects: catalog family names, or :class:`Subject` (policies, sizes).
      jobs: worker processes (default: :func:`default_jobs`); 1 derives here.
      use_cache: read and write the on-disk cache, as :func:`symfisher.derive`.
      seconds: time budget of each derivation, as :func:`symfisher.derive`.
      on_done: called with each subject's name as its derivation ends.

    Returns:
      One :class:`~symfisher.Derivation` or
      :class:`~symfisher.PolicyDerivation` per subject, in ``subjects`` order,
      equal to what ``jobs=1`` returns.
    """
    jobs = check_jobs(jobs)
    subs = [Subject(s) if isinstance(s, str) else s for s in subjects]
    objs = [_build(s) for s in subs]
    done = on_done or (lambda name: None)
    out: list[Any] = [None] * len(subs)
    todo = []
    for i, (s, obj) in enumerate(zip(subs, objs, strict=True)):
        hit = _lookup(s, obj, seconds) if use_cache else None
        if hit is not None:
            out[i] = hit
            done(s.name)
        else:
            todo.append(i)
    if jobs == 1 or len(todo) <= 1:
        for i in todo:
            _, _, _, derive = _modules(subs[i])
            out[i] = derive(objs[i], use_cache=use_cache, seconds=seconds)
            done(subs[i].name)
        return out
    # policies, the longest derivations, start first: the last to start ends last
    todo.sort(key=lambda i: not subs[i].policy)
    results = _in_workers([subs[i] for i in todo], jobs, use_cache, seconds, done)
    for i, (payload, fresh) in zip(todo, results, strict=True):
        d = _result(subs[i], objs[i], payload, fresh)
        outcomes.replay(d.steps, d.by_clock)
        if use_cache:
            _modules(subs[i])[2][cache.key(objs[i])] = d
        out[i] = d
    return out


def _in_workers(
    subs: list[Subject],
    jobs: int,
    use_cache: bool,
    seconds: float,
    done: Callable[[str], None],
) -> list[tuple[dict, bool]]:
    """``_work`` of each subject in :func:`symfisher.spawn.run_in_workers`."""
    from symfisher.spawn import run_in_workers

    try:
        return run_in_workers(
            _work,
            [(s, use_cache, seconds) for s in subs],
            jobs,
            stall=STALL_SECONDS * outcomes.time_scale(),
            names=[s.name for s in subs],
            on_done=lambda i, r: done(subs[i].name),
            environ=WORKER_ENVIRON,
        )
    except _Hang as e:
        raise HangError(str(e)) from None
