"""Wall-clock limits for SymPy work that can run away.

SymPy is pure Python, so an interval timer (``SIGALRM``) interrupts it cleanly.
Limits nest: an inner limit never outlives an outer one. Off the main thread
(where signals cannot be used) the work runs in a forked child process and is
killed at the limit.

A step named by a ``key`` (:func:`symfisher.outcomes.fingerprint`) whose outcome
is recorded replays it: a recorded timeout raises at once, a recorded finish runs
under a hang guard instead of the limit. Every limit is multiplied by
``SYMFISHER_TIME_SCALE``; :func:`budget` caps the steps no record decides.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from symfisher import outcomes
from symfisher.errors import HangError, SymbolicTimeout

T = TypeVar("T")

#: Default seconds for one SymPy call; ``SYMFISHER_TIME_LIMIT`` overrides it.
DEFAULT_SECONDS = float(os.environ.get("SYMFISHER_TIME_LIMIT", "10"))

_deadlines: list[float] = []
_budgets: list[float] = []  # deadlines of open budgets (monotonic seconds)


class _Alarm(BaseException):
    """Raised by the signal handler, converted to :class:`SymbolicTimeout`.

    A ``BaseException``, so that ``except Exception`` inside SymPy cannot swallow it.
    """


_REFIRE = 0.25  # seconds between repeated alarms once a deadline has passed


def _expired() -> bool:
    return bool(_deadlines) and min(_deadlines) <= time.monotonic()


def _handler(signum: int, frame: object) -> None:
    if not _expired():
        _arm()
        return
    # Fire again later in case something still swallows this one.
    signal.setitimer(signal.ITIMER_REAL, _REFIRE)
    raise _Alarm


def _arm() -> None:
    if _deadlines:
        remaining = max(min(_deadlines) - time.monotonic(), 1e-3)
        signal.setitimer(signal.ITIMER_REAL, remaining)
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


class _Expired(Exception):
    """The limit of this very call expired (not an enclosing one's)."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Cap the steps inside the block that no record decides at ``seconds`` in all.

    Scaled by ``SYMFISHER_TIME_SCALE``. Recorded steps are replayed, not cut.
    """
    deadline = time.monotonic() + seconds * outcomes.time_scale()
    _budgets.append(deadline)
    try:
        yield
    finally:
        _budgets.remove(deadline)


def run_limited(
    fn: Callable[[], T], seconds: float | None = None, *, key: str | None = None
) -> T:
    """Call ``fn()`` and raise :class:`SymbolicTimeout` after ``seconds``.

    Args:
      fn: a thunk doing the SymPy work.
      seconds: the nominal limit; ``None`` takes :data:`DEFAULT_SECONDS`. It is
        multiplied by ``SYMFISHER_TIME_SCALE``.
      key: the step's fingerprint (:func:`symfisher.outcomes.fingerprint`): its
        recorded outcome, if any, decides instead of the clock.

    Raises:
      SymbolicTimeout: when the limit (or an enclosing one) expires, or the step
        is recorded as exceeding it.
      HangError: when a step recorded as finishing exceeds its hang guard.
    """
    nominal = DEFAULT_SECONDS if seconds is None else float(seconds)
    scale = outcomes.time_scale()
    recorded = outcomes.recorded(key) if key is not None else None
    if recorded == outcomes.TIMEOUT:
        outcomes.note(key, outcomes.TIMEOUT)
        raise SymbolicTimeout(
            f"symbolic computation exceeded its time limit ({nominal:g} s; "
            "recorded outcome)"
        )
    if recorded == outcomes.DONE:
        guard = max(outcomes.GUARD_FLOOR, outcomes.GUARD_FACTOR * nominal * scale)
        try:
            return _limited(fn, guard)
        except _Expired:
            raise HangError(
                f"a SymPy step recorded as finishing within {nominal:g} s ran past "
                f"its hang guard of {guard:g} s: the machine is very slow or busy "
                f"(raise {outcomes.SCALE_ENV}) or the step hangs"
            ) from None
        finally:
            outcomes.note(key, outcomes.DONE)
    limit = nominal * scale
    left = min(_budgets) - time.monotonic() if _budgets else None
    cut = left is not None and left < limit
    try:
        if cut and left <= 0:
            raise _Expired
        value = _limited(fn, left if cut else limit)
    except _Expired:
        # a budget cut says nothing about the step's own limit: not recorded
        if cut:
            outcomes.note(None, outcomes.TIMEOUT, cut=True)
        else:
            outcomes.note(key, outcomes.TIMEOUT, by_clock=True)
        why = "the derivation's time budget ran out" if cut else f"{nominal:g} s"
        raise SymbolicTimeout(
            f"symbolic computation exceeded its time limit ({why})"
        ) from None
    except Exception:
        outcomes.note(key, outcomes.DONE)  # it finished, with an error
        raise
    outcomes.note(key, outcomes.DONE)
    return value


_warmed = False


def warm_sympy_tables() -> None:
    """Build SymPy's lazily filled global tables once, outside any time limit.

    ``sympy.integrals.meijerint`` fills a module-level lookup table in place on
    first use; a limit firing during the fill would leave a partial table for the
    rest of the process, and later integrals would come back unevaluated or wrong
    depending on what ran (and timed out) before them.
    """
    global _warmed
    if _warmed:
        return
    from sympy.integrals import meijerint

    table: dict = {}
    meijerint._create_lookup_table(table)
    meijerint._lookup_table = table
    _warmed = True


def _limited(fn: Callable[[], T], seconds: float) -> T:
    """``fn()`` under a limit of ``seconds``; :class:`_Expired` when it runs out."""
    if threading.current_thread() is not threading.main_thread():
        return _run_in_child(fn, seconds)  # a killed child takes its tables along
    if not _deadlines:
        warm_sympy_tables()
    if _expired():
        raise SymbolicTimeout("symbolic computation exceeded its time limit")
    deadline = time.monotonic() + seconds
    outermost = not _deadlines
    previous = signal.signal(signal.SIGALRM, _handler) if outermost else None
    # An alarm raised inside a garbage-collector callback (JAX registers one) is
    # printed and swallowed by Python; hold the callbacks while the limit is armed.
    held = list(gc.callbacks) if outermost else []
    if outermost:
        gc.callbacks.clear()
    _deadlines.append(deadline)
    try:
        try:
            _arm()
            return fn()
        finally:
            _deadlines.remove(deadline)
            _arm()
            if outermost:
                signal.signal(signal.SIGALRM, previous)
                gc.callbacks[:] = held + [c for c in gc.callbacks if c not in held]
    except _Alarm:
        if deadline > time.monotonic() and _expired():
            raise  # an enclosing limit expired: let it unwind to its owner
        raise _Expired from None


def _child(fn: Callable[[], object], conn: object) -> None:  # pragma: no cover
    try:
        conn.send(("ok", fn()))  # type: ignore[attr-defined]
    except BaseException as e:
        conn.send(("err", e))  # type: ignore[attr-defined]


def _run_in_child(fn: Callable[[], T], seconds: float) -> T:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(seconds):
            raise _Expired
        try:
            status, value = parent.recv()
        except EOFError:
            raise SymbolicTimeout(
                "symbolic computation failed: its worker process died "
                f"(exit code {proc.exitcode})"
            ) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
    if status == "err":
        raise value
    return value
