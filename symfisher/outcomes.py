r"""Recorded outcomes of time-limited SymPy steps: results that do not depend on the clock.

A time limit that *decides* something (``simplify`` finished, so the closed form
is tidy; an integral ran out of time, so the route is unresolved) makes a result a
function of how busy the machine was. Each such step is named by a
:func:`fingerprint` of what it computes (the operation, its nominal limit in
seconds and the SymPy input, printed by ``srepr`` with each symbol shown by the
assumptions it has, not those it was declared with), and the book
``outcomes.json`` beside this module records, for every step the catalog's
derivations take, whether it finished within its nominal limit on the machine
that recorded it:

* a step recorded ``"timeout"`` is not run at all: it raises
  :class:`~symfisher.errors.SymbolicTimeout` at once, exactly as it did;
* a step recorded ``"done"`` runs under a generous hang guard
  (:data:`GUARD_FACTOR` :math:`\times` its scaled limit, and never less than
  :data:`GUARD_FLOOR` seconds whatever the scale) instead of its limit, and
  exceeding even that is an error (:class:`~symfisher.errors.HangError`), never a
  silently different result;
* a step not in the book runs under its limit as before: its outcome is decided
  by the clock, noted (:class:`Trace`), and written to the book by
  ``symfisher generate``.

So with a complete book the catalog's derivations, and everything generated from
them, are a pure function of the source. ``SYMFISHER_TIME_SCALE`` multiplies every
limit (:func:`time_scale`); a hang guard only above its floor, since a step
recorded at scale 1 must still finish on a busy machine at scale 0.25.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from symfisher.errors import SymfisherError

DONE, TIMEOUT = "done", "timeout"
#: the book of the catalog, shipped beside this module
BOOK = Path(__file__).with_name("outcomes.json")
#: a step recorded as finishing gets this many times its limit ...
GUARD_FACTOR = 10.0
#: ... and at least this many seconds (unscaled), before it counts as hanging
GUARD_FLOOR = 120.0
SCALE_ENV = "SYMFISHER_TIME_SCALE"

_DUMMY_INDEX = re.compile(r", dummy_index=\d+")


def time_scale() -> float:
    """``$SYMFISHER_TIME_SCALE`` (default 1): the factor on every SymPy time limit.

    Raises:
      SymfisherError: when it is not a positive finite number.
    """
    text = os.environ.get(SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SymfisherError(
            f"{SCALE_ENV} must be a positive number (a factor on every SymPy time "
            f"limit), got {text!r}"
        )
    return value


def fingerprint(what: str, seconds: float, *parts: Any) -> str:
    """Name of a time-limited step: its operation, nominal limit and SymPy input.

    The input is printed as ``srepr`` prints it, except that a symbol shows the
    assumptions it *has* (SymPy's deduced set, by which symbols compare equal),
    not the ones it was declared with: ``Symbol('x', positive=True)`` and
    ``Symbol('x', real=True, positive=True)`` are one symbol, and SymPy's
    construction cache may hand back an expression built with either, depending
    on what the process built before. ``Dummy`` indices (a process-wide counter)
    are left out. So the name is the same across processes, hash seeds and
    histories.
    """
    text = _DUMMY_INDEX.sub("", _key_repr(parts))
    h = hashlib.sha256(f"{what}\n{float(seconds)!r}\n{text}".encode())
    return h.hexdigest()[:24]


def _key_repr(parts: Any) -> str:
    """``srepr(parts)`` with symbols printed by their deduced assumptions."""
    return _key_printer().doprint(parts)


@cache
def _key_printer() -> Any:
    from sympy.printing.repr import ReprPrinter

    class KeyPrinter(ReprPrinter):
        def _print_Symbol(self, expr: Any) -> str:
            facts = ", ".join(
                f"{k}={v}"
                for k, v in sorted(expr.assumptions0.items())
                if v is not None
            )
            return f"{type(expr).__name__}({expr.name!r}, {facts})"

        _print_Dummy = _print_Symbol

    return KeyPrinter()


@cache
def _recorded() -> dict[str, str]:
    try:
        data = json.loads(BOOK.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise SymfisherError(f"{BOOK}: unreadable outcome book ({e})") from e
    out = data.get("outcomes", {})
    if not isinstance(out, dict) or any(v not in (DONE, TIMEOUT) for v in out.values()):
        raise SymfisherError(f"{BOOK}: outcomes must map fingerprints to done/timeout")
    return out


def recorded(key: str) -> str | None:
    """The recorded outcome of step ``key``, or ``None`` when it is not in the book."""
    return _recorded().get(key)


def recorded_all() -> dict[str, str]:
    """Every recorded outcome (a copy)."""
    return dict(_recorded())


def book_text(outcomes: Mapping[str, str]) -> str:
    """The book's file text for ``outcomes`` (sorted: byte-identical everywhere)."""
    body = {
        "about": "Outcomes of time-limited SymPy steps in the catalog's derivations "
        "(symfisher/outcomes.py). Written by `symfisher generate`; do not edit.",
        "outcomes": dict(sorted(outcomes.items())),
    }
    return json.dumps(body, indent=1, sort_keys=False) + "\n"


@dataclass(eq=False)
class Trace:
    """The steps taken while a trace is open.

    Attributes:
      steps: fingerprint to outcome, for every keyed step (recorded or not).
      by_clock: how many steps the clock decided (a limit expired on a step the
        book does not know, or the total budget ran out).
      cut: how many of those the total budget cut (their outcomes are not
        recorded: they say nothing about the step's own limit).
    """

    steps: dict[str, str] = field(default_factory=dict)
    by_clock: int = 0
    cut: int = 0

    def unrecorded(self) -> list[str]:
        """Steps taken that the book does not know."""
        return [k for k in self.steps if recorded(k) is None]


_open: list[Trace] = []


@contextmanager
def tracing() -> Iterator[Trace]:
    """Collect the steps taken inside the block (traces nest; each sees all)."""
    trace = Trace()
    _open.append(trace)
    try:
        yield trace
    finally:
        _open.remove(trace)


def note(
    key: str | None, outcome: str, *, by_clock: bool = False, cut: bool = False
) -> None:
    """Tell every open trace that step ``key`` (if named) ended with ``outcome``."""
    for trace in _open:
        if key is not None:
            trace.steps[key] = outcome
        trace.by_clock += by_clock or cut
        trace.cut += cut


def replay(steps: Mapping[str, str], by_clock: int = 0) -> None:
    """Tell open traces about the steps of a result taken from a cache."""
    for trace in _open:
        trace.steps.update(steps)
        trace.by_clock += by_clock


def disagreements(steps: Mapping[str, str]) -> list[str]:
    """Steps whose outcome differs from the book's (a result to recompute)."""
    book = _recorded()
    return [k for k, v in steps.items() if k in book and book[k] != v]
