"""Verification over several processes (``processes=N``, jax.distributed)."""

from __future__ import annotations

import warnings

import pytest

import symfisher as sf
from symfisher import cli
from symfisher.errors import DomainError, FamilyError, SymfisherError
from symfisher.verify import distributed
from tests.verify import assert_same_report

#: three cheap families: process 0 verifies two, process 1 one
NAMES = ["bernoulli", "poisson", "exponential"]
SMALL = dict(n_samples=2048, points=2, cramer_rao=False, progress=False)


def test_two_processes_give_the_single_process_verdicts():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n too small for 2%: said once per run
        one = sf.verify_many(NAMES, **SMALL)
        two = sf.verify_many(NAMES, processes=2, **SMALL)
    assert_same_report(two, one)


def test_round_robin_by_order():
    share = distributed.Share(3, "h:1", 1)
    assert distributed.assigned(8, share) == [1, 4, 7]


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(processes=0), "processes must be a positive integer, got 0"),
        (dict(processes="2"), "processes must be a positive integer"),
        (dict(processes=2, coordinator="h:1"), "coordinator and process_id"),
        (dict(processes=2, coordinator="h:1", process_id=2), r"in \[0, 2\)"),
        (dict(processes=2, coordinator="nohost", process_id=0), "HOST:PORT"),
    ],
)
def test_bad_settings_name_the_constraint(kw, match):
    with pytest.raises(DomainError, match=match):
        sf.verify_many(["poisson"], **kw)


def test_unknown_name_fails_before_any_process_starts():
    with pytest.raises(FamilyError):
        sf.verify_many(["nope"], processes=2)


def test_the_hang_guard_stops_every_process(monkeypatch):
    started = []
    real = distributed.subprocess.Popen

    def spy(*a, **k):
        started.append(real(*a, **k))
        return started[-1]

    monkeypatch.setattr(distributed.subprocess, "Popen", spy)
    monkeypatch.setattr(distributed, "HANG_SECONDS", 0.5)
    with pytest.raises(SymfisherError, match="hang guard"):
        sf.verify_many(NAMES, processes=2, **SMALL)
    assert len(started) == 2 and all(p.poll() is not None for p in started)


def test_cli_rejects_a_bad_process_count(capsys):
    rc = cli.main(["verify", "poisson", "--processes", "0"])
    assert rc == 2
    assert "processes must be a positive integer, got 0" in capsys.readouterr().err


def test_cli_reports_are_process_0s(capsys, tmp_path):
    argv = ["verify", "poisson", "--processes", "2", "--coordinator", "h:1"]
    rc = cli.main([*argv, "--process-id", "1", "--json", str(tmp_path / "r.json")])
    assert rc == 2 and "process 0's" in capsys.readouterr().err
    rc = cli.main(argv)  # a coordinator without an index
    assert rc == 2 and "coordinator and process_id" in capsys.readouterr().err
