"""Wall-clock limits for SymPy work that can run away.

SymPy is pure Python, so an interval timer (``SIGALRM``) interrupts it cleanly.
Limits nest: an inner limit never outlives an outer one. Off the main thread
(where signals cannot be used) the work runs in a forked child process and is
killed at the limit.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from symfisher.errors import SymbolicTimeout

T = TypeVar("T")

#: Default seconds for one SymPy call; ``SYMFISHER_TIME_LIMIT`` overrides it.
DEFAULT_SECONDS = float(os.environ.get("SYMFISHER_TIME_LIMIT", "10"))

_deadlines: list[float] = []


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


def run_limited(fn: Callable[[], T], seconds: float | None = None) -> T:
    """Call ``fn()`` and raise :class:`SymbolicTimeout` after ``seconds``.

    Args:
      fn: a thunk doing the SymPy work.
      seconds: the limit; ``None`` takes :data:`DEFAULT_SECONDS`.

    Raises:
      SymbolicTimeout: when the limit (or an enclosing one) expires.
    """
    seconds = DEFAULT_SECONDS if seconds is None else seconds
    if threading.current_thread() is not threading.main_thread():
        return _run_in_child(fn, seconds)
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
        raise SymbolicTimeout(
            f"symbolic computation exceeded its time limit ({seconds:g} s)"
        ) from None


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
            raise SymbolicTimeout("symbolic computation exceeded its time limit")
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
