"""Recorded outcomes of time-limited steps (``symfisher.outcomes``), via ``run_limited``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import sympy as sp

from symfisher import outcomes, timelimit
from symfisher.errors import HangError, SymbolicTimeout, SymfisherError
from symfisher.timelimit import budget, run_limited

GIVE_UP = 3.0  # busy loops end by themselves after this, so a broken limit fails


def _busy(seconds: float = GIVE_UP) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        sum(range(100))
    return "finished"


@pytest.fixture
def book(monkeypatch):
    """A writable stand-in for the recorded book."""
    entries: dict[str, str] = {}
    monkeypatch.setattr(outcomes, "_recorded", lambda: entries)
    monkeypatch.delenv(outcomes.SCALE_ENV, raising=False)
    return entries


# -- SYMFISHER_TIME_SCALE ------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("", 1.0), ("0.25", 0.25), (" 4 ", 4.0)])
def test_time_scale_reads_the_environment(monkeypatch, text, value):
    monkeypatch.setenv(outcomes.SCALE_ENV, text)
    assert outcomes.time_scale() == value


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "fast"])
def test_bad_time_scale_is_named(monkeypatch, text):
    monkeypatch.setenv(outcomes.SCALE_ENV, text)
    with pytest.raises(SymfisherError, match="SYMFISHER_TIME_SCALE must be a positive"):
        outcomes.time_scale()


def test_scale_below_one_shortens_every_limit(book, monkeypatch):
    monkeypatch.setenv(outcomes.SCALE_ENV, "0.01")
    t0 = time.monotonic()
    with pytest.raises(SymbolicTimeout):
        run_limited(_busy, 10.0)  # 0.1 s once scaled; unscaled it would finish
    assert time.monotonic() - t0 < GIVE_UP


def test_scale_above_one_lengthens_every_limit(book, monkeypatch):
    monkeypatch.setenv(outcomes.SCALE_ENV, "100")
    assert run_limited(lambda: _busy(0.3), 0.01) == "finished"  # 1 s once scaled


# -- fingerprints --------------------------------------------------------------------
def test_fingerprint_names_operation_limit_and_input():
    x, y = sp.symbols("x y")
    base = outcomes.fingerprint("tidy", 2.0, x + y)
    assert base == outcomes.fingerprint("tidy", 2, y + x)
    assert base != outcomes.fingerprint("tidy", 3.0, x + y)
    assert base != outcomes.fingerprint("is_zero", 2.0, x + y)
    assert base != outcomes.fingerprint("tidy", 2.0, x - y)


FINGERPRINT = """
import sympy as sp
from symfisher.outcomes import fingerprint
x = sp.Symbol("x", positive=True)
for _ in range(7):
    sp.Dummy()
d = sp.Dummy("y", real=True)
print(fingerprint("expect", 20.0, "family text", [sp.exp(-x * d) * d**2, sp.log(x)]))
"""


def test_fingerprint_is_the_same_in_every_process():
    """Hash seeds and Dummy counters must not change a step's name."""
    prints = set()
    for seed in ("0", "1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", FINGERPRINT.replace("range(7)", f"range({seed})")],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        prints.add(out.stdout.strip())
    assert len(prints) == 1


HISTORY = """
import sympy as sp
from symfisher.outcomes import fingerprint
x = sp.Symbol("x", positive=True)
if {first}:  # an equal symbol declared otherwise, used first: SymPy caches x**2
    y = sp.Symbol("x", real=True, positive=True)
    _ = (y**2, sp.log(y))
print(fingerprint("expect", 1.0, [x, x**2, sp.log(x)]))
"""


def test_fingerprint_does_not_depend_on_what_the_process_built_before():
    """Equal symbols declared with other assumptions print alike in a step's name.

    ``srepr`` shows declared assumptions; SymPy's construction cache may return an
    ``x**2`` built earlier from ``Symbol('x', real=True, positive=True)``, equal
    to ``Symbol('x', positive=True)``. The key must not see the difference."""
    prints = []
    for first in ("False", "True"):
        out = subprocess.run(
            [sys.executable, "-c", HISTORY.format(first=first)],
            capture_output=True,
            text=True,
            check=True,
        )
        prints.append(out.stdout.strip())
    assert prints[0] == prints[1]
    # plain srepr does see it: the case above is a real one
    x, y = sp.Symbol("x", positive=True), sp.Symbol("x", real=True, positive=True)
    assert x == y and sp.srepr(x) != sp.srepr(y)
    assert outcomes.fingerprint("t", 1.0, x) == outcomes.fingerprint("t", 1.0, y)


# -- replaying recorded outcomes -----------------------------------------------------
def test_recorded_timeout_raises_at_once_without_running(book):
    book["k"] = outcomes.TIMEOUT
    ran = []
    with outcomes.tracing() as trace, pytest.raises(SymbolicTimeout, match="recorded"):
        run_limited(lambda: ran.append(1), 60.0, key="k")
    assert ran == []
    assert trace.steps == {"k": "timeout"} and trace.by_clock == 0


def test_recorded_finish_runs_past_its_limit_under_the_guard(book):
    book["k"] = outcomes.DONE
    with outcomes.tracing() as trace:
        assert run_limited(lambda: _busy(0.3), 0.01, key="k") == "finished"
    assert trace.steps == {"k": "done"} and trace.by_clock == 0


def test_recorded_finish_past_the_guard_is_an_error_not_a_fallback(book, monkeypatch):
    book["k"] = outcomes.DONE
    monkeypatch.setattr(outcomes, "GUARD_FLOOR", 0.1)
    with pytest.raises(HangError, match="hang guard") as info:
        run_limited(_busy, 0.01, key="k")
    assert not isinstance(info.value, Exception)  # nothing may fall back on it


def test_hang_guard_keeps_its_floor_whatever_the_scale(book, monkeypatch):
    """A step recorded at scale 1 must still finish on a busy machine at scale 0.25."""
    book["k"] = outcomes.DONE
    monkeypatch.setattr(outcomes, "GUARD_FLOOR", 2.0)
    monkeypatch.setenv(outcomes.SCALE_ENV, "0.01")
    assert run_limited(lambda: _busy(0.3), 0.01, key="k") == "finished"


def test_unrecorded_step_is_decided_by_the_clock_and_noted(book):
    with outcomes.tracing() as trace:
        with pytest.raises(SymbolicTimeout):
            run_limited(_busy, 0.05, key="slow")
        assert run_limited(lambda: 1, 5.0, key="quick") == 1
    assert trace.steps == {"slow": "timeout", "quick": "done"}
    assert trace.by_clock == 1
    assert trace.unrecorded() == ["slow", "quick"]


def test_an_error_inside_a_step_counts_as_finished(book):
    with outcomes.tracing() as trace, pytest.raises(ZeroDivisionError):
        run_limited(lambda: 1 / 0, 5.0, key="k")
    assert trace.steps == {"k": "done"}


def test_traces_nest_and_each_sees_every_step(book):
    with outcomes.tracing() as outer:
        run_limited(lambda: 1, 5.0, key="a")
        with outcomes.tracing() as inner:
            run_limited(lambda: 1, 5.0, key="b")
    assert outer.steps == {"a": "done", "b": "done"} and inner.steps == {"b": "done"}


# -- the total budget ----------------------------------------------------------------
def test_budget_caps_unrecorded_steps_and_records_nothing(book):
    t0 = time.monotonic()
    with outcomes.tracing() as trace, budget(0.1):
        with pytest.raises(SymbolicTimeout, match="budget"):
            run_limited(_busy, 30.0, key="long")
        with pytest.raises(SymbolicTimeout, match="budget"):
            run_limited(lambda: "never", 30.0, key="after")  # nothing left
    assert time.monotonic() - t0 < GIVE_UP
    assert trace.steps == {} and trace.cut == 2 and trace.by_clock == 2


def test_budget_does_not_cut_recorded_steps(book):
    book["k"] = outcomes.DONE
    with budget(0.01):
        assert run_limited(lambda: _busy(0.2), 1.0, key="k") == "finished"
    assert timelimit._budgets == []


# -- the book itself -----------------------------------------------------------------
def test_book_text_is_sorted_and_round_trips():
    text = outcomes.book_text({"b": "done", "a": "timeout"})
    data = json.loads(text)
    assert list(data["outcomes"]) == ["a", "b"]
    assert text == outcomes.book_text({"a": "timeout", "b": "done"})


def test_checked_in_book_is_well_formed():
    data = json.loads(outcomes.BOOK.read_text(encoding="utf-8"))
    assert data["outcomes"], "the catalog's book is empty: run `symfisher generate`"
    assert set(data["outcomes"].values()) <= {"done", "timeout"}
    assert list(data["outcomes"]) == sorted(data["outcomes"])
