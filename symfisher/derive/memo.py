"""Pure time-limited SymPy steps computed once per process.

Routes, agreement checks and policies ask for the same ``simplify`` or
``cancel`` of the same expression many times (the softmax policies: a third of
their steps). :func:`once` computes such a step the first time and returns that
value again afterwards; a repeat replays the outcomes of the time-limited steps
the first computation took (:func:`symfisher.outcomes.replay`), so traces, and
the outcome book, see exactly the steps an uncached run would.

Only values whose every step the book records are kept, and a repeat is served
only while the book still records those outcomes: then no clock, budget or
time scale could have changed the value (recorded steps replay their outcome),
and a repeat is what computing again would give. Anything else (a step the book
does not know, a limit that expired) is computed again, as before.
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
    if hit is not None and all(outcomes.recorded(k) == v for k, v in hit[1].items()):
        outcomes.replay(hit[1])
        return hit[0]  # type: ignore[return-value]
    with outcomes.tracing() as trace:
        value = compute()
    if not trace.by_clock and not trace.unrecorded():
        if len(_memo) >= SIZE:
            _memo.clear()
        _memo[key] = (value, dict(trace.steps))
    return value
