"""Pure time-limited SymPy steps computed once per process.

Routes, agreement checks and policies ask for the same ``simplify`` or
``cancel`` of the same expression many times (the softmax policies: a third of
their steps). :func:`once` computes such a step the first time and returns that
value again afterwards; a repeat replays the outcomes of the time-limited steps
the first computation took (:func:`symfisher.outcomes.replay`), so traces, and
the outcome book, see exactly the steps an uncached run would. A value that a
clock decided (a limit or budget expired on a step the book does not know) is
never kept: the next request computes it again, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from symfisher import outcomes

T = TypeVar("T")

#: entries kept at most; the memo is emptied when it is full
SIZE = 4096

_memo: dict[Hashable, tuple[object, dict[str, str]]] = {}


def once(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` the first time ``key`` is asked for; the same value after.

    Args:
      key: everything the value depends on. Include the step's fingerprint
        (:func:`symfisher.outcomes.fingerprint`: operation, limit, ``srepr`` of
        the input, so a ``Float``'s precision counts) and the SymPy input itself
        (``Dummy`` symbols compare by identity, which the fingerprint leaves out).
      compute: a pure function of ``key``; its exceptions propagate, uncached.
    """
    hit = _memo.get(key)
    if hit is not None:
        value, steps = hit
        outcomes.replay(steps)
        return value  # type: ignore[return-value]
    with outcomes.tracing() as trace:
        value = compute()
    if not trace.by_clock:
        if len(_memo) >= SIZE:
            _memo.clear()
        _memo[key] = (value, dict(trace.steps))
    return value
