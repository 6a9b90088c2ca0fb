"""Wall-clock limits (``symfisher.timelimit.run_limited``)."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time

import pytest
import sympy as sp

from symfisher import timelimit
from symfisher.errors import SymbolicTimeout, SymfisherError
from symfisher.timelimit import run_limited

SLACK = 2.5  # seconds allowed past a deadline (a busy machine delays the alarm)
GIVE_UP = 8.0  # busy loops end by themselves after this, so a broken limit fails


class _Recorder:
    """A SIGALRM handler that records stray alarms instead of killing pytest."""

    def __init__(self):
        self.calls = 0

    def __call__(self, signum, frame):
        self.calls += 1


@pytest.fixture(autouse=True)
def guard_alarm():
    """Install a recording SIGALRM handler; check it is back and idle afterwards."""
    timelimit.warm_sympy_tables()  # once per process, outside the timed calls
    rec = _Recorder()
    previous = signal.signal(signal.SIGALRM, rec)
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield rec
        assert signal.getsignal(signal.SIGALRM) is rec, "SIGALRM handler not restored"
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "timer left armed"
        assert timelimit._deadlines == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _busy():
    t0 = time.monotonic()
    while time.monotonic() - t0 < GIVE_UP:
        pass
    return "never stopped"


def _busy_swallowing_exceptions():
    t0 = time.monotonic()
    while time.monotonic() - t0 < GIVE_UP:
        try:
            sum(range(1000))
        except Exception:  # this is what is being tested
            pass
    return "never stopped"


def _timed(fn, *args):
    t0 = time.monotonic()
    try:
        fn(*args)
    finally:
        _timed.elapsed = time.monotonic() - t0


# -- plain use -----------------------------------------------------------------------
def test_fast_thunk_returns_its_value():
    assert run_limited(lambda: 42, 1.0) == 42
    assert run_limited(lambda: None, 1.0) is None
    obj = object()
    assert run_limited(lambda: obj, 1.0) is obj


def test_exceptions_of_the_thunk_pass_through_unchanged():
    def bad():
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        run_limited(bad, 1.0)


def test_fast_thunk_takes_no_time():
    t0 = time.monotonic()
    run_limited(lambda: sum(range(100)), 5.0)
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("limit", [0.3, 1.0])
def test_busy_loop_times_out_near_the_limit(limit):
    with pytest.raises(SymbolicTimeout, match="time limit"):
        _timed(run_limited, _busy, limit)
    assert limit - 0.05 <= _timed.elapsed <= limit + SLACK


def test_timeout_is_a_symfisher_error_and_a_timeout_error():
    with pytest.raises(SymfisherError) as info:
        run_limited(_busy, 0.2)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, SymbolicTimeout)


def test_except_exception_cannot_swallow_the_alarm():
    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, _busy_swallowing_exceptions, 0.5)
    assert _timed.elapsed <= 0.5 + SLACK


def test_an_alarm_swallowed_once_fires_again():
    swallowed = []

    def stubborn():
        t0 = time.monotonic()
        while time.monotonic() - t0 < GIVE_UP:
            try:
                while time.monotonic() - t0 < GIVE_UP:
                    pass
            except BaseException:  # swallow the first alarm
                if swallowed:
                    raise
                swallowed.append(time.monotonic() - t0)
        return "never stopped"

    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, stubborn, 0.3)
    assert len(swallowed) == 1
    assert _timed.elapsed <= 0.3 + timelimit._REFIRE + SLACK


def test_default_limit_is_used_when_seconds_is_none(monkeypatch):
    monkeypatch.setattr(timelimit, "DEFAULT_SECONDS", 0.3)
    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, _busy)
    assert _timed.elapsed <= 0.3 + SLACK


# -- nesting -------------------------------------------------------------------------
def test_inner_longer_limit_stops_at_the_outer_deadline():
    inner_caught = []

    def outer():
        try:
            run_limited(_busy, 5.0)
        except SymbolicTimeout:  # the inner limit did not expire: must not see this
            inner_caught.append(True)
            _busy()

    with pytest.raises(SymbolicTimeout) as info:
        _timed(run_limited, outer, 0.5)
    assert _timed.elapsed <= 0.5 + SLACK
    assert type(info.value) is SymbolicTimeout
    assert inner_caught == []


def test_inner_shorter_limit_times_out_on_its_own():
    def outer():
        t0 = time.monotonic()
        try:
            run_limited(_busy, 0.2)
        except SymbolicTimeout:
            return ("inner timed out", time.monotonic() - t0)
        return ("no timeout", 0.0)

    what, elapsed = run_limited(outer, 5.0)
    assert what == "inner timed out"
    assert elapsed <= 0.2 + SLACK


def test_outer_limit_still_applies_after_an_inner_timeout():
    seen = []

    def outer():
        try:
            run_limited(_busy, 0.2)
        except SymbolicTimeout:
            seen.append("inner")
        _busy()

    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, outer, 0.8)
    assert seen == ["inner"]
    assert 0.7 <= _timed.elapsed <= 0.8 + SLACK


def test_three_levels_unwind_to_the_outermost():
    def level(n):
        return lambda: run_limited(level(n - 1), 10.0) if n else _busy()

    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, level(2), 0.4)
    assert _timed.elapsed <= 0.4 + SLACK


def test_limit_entered_after_the_outer_expired_fails_at_once():
    ran = []

    def outer():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # outlive the 0.2 s limit, swallowing
            try:
                while time.monotonic() - t0 < 0.5:
                    pass
            except BaseException:
                pass
        signal.setitimer(signal.ITIMER_REAL, 0)  # no further re-fires
        return run_limited(lambda: ran.append(1), 10.0)

    with pytest.raises(SymbolicTimeout):
        run_limited(outer, 0.2)
    assert ran == []


# -- afterwards ----------------------------------------------------------------------
def test_no_stray_alarm_after_a_timeout(guard_alarm):
    with pytest.raises(SymbolicTimeout):
        run_limited(_busy, 0.2)
    try:
        time.sleep(0.6)  # longer than the 0.25 s re-fire interval
    except BaseException as e:
        pytest.fail(f"stray exception after the timeout: {e!r}")
    assert guard_alarm.calls == 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert run_limited(lambda: "fine", 1.0) == "fine"


def test_no_stray_alarm_after_a_nested_timeout(guard_alarm):
    def outer():
        run_limited(_busy, 5.0)

    with pytest.raises(SymbolicTimeout):
        run_limited(outer, 0.2)
    time.sleep(0.6)
    assert guard_alarm.calls == 0


def test_repeated_timeouts_then_normal_calls():
    for _ in range(3):
        with pytest.raises(SymbolicTimeout):
            run_limited(_busy, 0.1)
    t0 = time.monotonic()
    assert run_limited(lambda: time.sleep(0.3) or "slept", 2.0) == "slept"
    assert time.monotonic() - t0 < 1.0


def test_previous_handler_is_restored_after_success_and_failure(guard_alarm):
    run_limited(lambda: 1, 1.0)
    assert signal.getsignal(signal.SIGALRM) is guard_alarm
    with pytest.raises(SymbolicTimeout):
        run_limited(_busy, 0.1)
    assert signal.getsignal(signal.SIGALRM) is guard_alarm
    with pytest.raises(ZeroDivisionError):
        run_limited(lambda: 1 / 0, 1.0)
    assert signal.getsignal(signal.SIGALRM) is guard_alarm


# -- real SymPy work ---------------------------------------------------------------
def test_slow_sympy_integral_is_stopped():
    x = sp.Symbol("x")
    expr = sp.exp(-(x**4) + sp.sin(x)) * sp.log(x)
    with pytest.raises(SymbolicTimeout):
        _timed(run_limited, lambda: sp.integrate(expr, (x, 0, sp.oo)), 1.0)
    assert 0.9 <= _timed.elapsed <= 1.0 + SLACK


def test_fast_sympy_work_gets_its_answer():
    x = sp.Symbol("x")
    assert run_limited(lambda: sp.integrate(x**2, (x, 0, 3)), 5.0) == 9


# -- off the main thread (forked child) --------------------------------------------
def _in_thread(fn):
    out = {}

    def target():
        t0 = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as e:  # reported to the test
            out["error"] = e
        out["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the thread did not finish"
    return out


def test_thread_returns_the_value():
    out = _in_thread(lambda: run_limited(lambda: {"a": [1, 2]}, 5.0))
    assert out.get("error") is None
    assert out["value"] == {"a": [1, 2]}


def test_thread_returns_a_sympy_value():
    x = sp.Symbol("x")
    out = _in_thread(lambda: run_limited(lambda: sp.diff(sp.sin(x) * x, x), 5.0))
    assert out["value"] == sp.cos(x) * x + sp.sin(x)


def test_thread_busy_loop_times_out():
    out = _in_thread(lambda: run_limited(_busy, 0.5))
    assert isinstance(out.get("error"), SymbolicTimeout)
    assert out["elapsed"] <= 0.5 + SLACK
    time.sleep(0.05)
    assert multiprocessing.active_children() == []  # the child was killed, reaped


def test_thread_exception_of_the_thunk_is_forwarded():
    def bad():
        raise ValueError("from the child")

    out = _in_thread(lambda: run_limited(bad, 5.0))
    assert isinstance(out.get("error"), ValueError)
    assert "from the child" in str(out["error"])


def test_thread_slow_sympy_integral_is_stopped():
    x = sp.Symbol("x")
    expr = sp.exp(-(x**4) + sp.sin(x)) * sp.log(x)
    out = _in_thread(
        lambda: run_limited(lambda: sp.integrate(expr, (x, 0, sp.oo)), 1.0)
    )
    assert isinstance(out.get("error"), SymbolicTimeout)
    assert out["elapsed"] <= 1.0 + SLACK


def test_thread_does_not_disturb_the_main_thread_signal_state(guard_alarm):
    _in_thread(lambda: run_limited(_busy, 0.2))
    assert signal.getsignal(signal.SIGALRM) is guard_alarm
    assert guard_alarm.calls == 0
