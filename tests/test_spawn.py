"""Calls in spawned worker processes (``symfisher.spawn.run_in_workers``)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest

from symfisher.errors import HangError, SymfisherError
from symfisher.spawn import run_in_workers


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _env(name: str) -> str | None:
    return os.environ.get(name)


def _fail(x: int) -> int:
    if x == 2:
        raise ValueError(f"x = {x} is not wanted")
    return x


def _die(x: int) -> int:
    if x == 1:
        os._exit(3)
    return x


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_results_come_back_in_the_order_of_the_calls():
    seen = []
    out = run_in_workers(
        _square_and_pid,
        [(i,) for i in range(6)],
        2,
        stall=600,
        on_done=lambda i, r: seen.append(i),
    )
    assert [r[0] for r in out] == [i * i for i in range(6)]
    assert sorted(seen) == list(range(6))
    assert os.getpid() not in {pid for _, pid in out}
    assert len({pid for _, pid in out}) <= 2


def test_no_calls_start_no_workers():
    assert run_in_workers(_square_and_pid, [], 2, stall=600) == []


def test_the_workers_see_the_environment_given_and_the_parent_keeps_its_own(
    monkeypatch,
):
    monkeypatch.delenv("SYMFISHER_SPAWN_TEST", raising=False)
    monkeypatch.setenv("SYMFISHER_SPAWN_KEPT", "mine")
    env = {"SYMFISHER_SPAWN_TEST": "given", "SYMFISHER_SPAWN_KEPT": "theirs"}
    out = run_in_workers(
        _env,
        [("SYMFISHER_SPAWN_TEST",), ("SYMFISHER_SPAWN_KEPT",)],
        2,
        stall=600,
        environ=env,
    )
    assert out == ["given", "mine"]  # a variable already set wins
    assert "SYMFISHER_SPAWN_TEST" not in os.environ


def test_an_exception_of_a_call_is_raised_as_it_was():
    with pytest.raises(ValueError, match="x = 2 is not wanted"):
        run_in_workers(_fail, [(i,) for i in range(4)], 2, stall=600)
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_is_an_error_naming_the_main_guard():
    with pytest.raises(
        SymfisherError, match=r"worker process died.*not done: .*b"
    ) as e:
        run_in_workers(_die, [(0,), (1,)], 2, stall=600, names=["a", "b"])
    assert 'if __name__ == "__main__":' in str(e.value)


def test_a_stall_kills_the_workers_and_names_what_was_waiting():
    t0 = time.monotonic()
    with pytest.raises(HangError, match=r"nothing finished in 1 s.*waiting for slow"):
        run_in_workers(_sleep, [(300.0,)], 1, stall=1.0, names=["slow"])
    assert time.monotonic() - t0 < 120  # killed, not slept out (hang guard)
    assert multiprocessing.active_children() == []


def test_a_script_without_a_main_guard_fails_instead_of_waiting(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from symfisher.spawn import run_in_workers
            print(run_in_workers(os.getpid.__call__, [(), ()], 2, stall=600))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: the error comes within seconds
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "worker process died" in out.stderr
    assert 'if __name__ == "__main__":' in out.stderr
