"""Verification in local worker processes (``jobs=N``, ``symfisher verify --jobs N``)."""

from __future__ import annotations

import json
import warnings

import pytest

import symfisher as sf
from symfisher import cli, spawn
from symfisher.errors import DomainError
from symfisher.verify import workers
from tests.verify import assert_same_report

#: cheap families, so that the workers' start dominates
NAMES = ["bernoulli", "poisson", "exponential"]
SMALL = dict(n_samples=2048, points=2, cramer_rao=False, progress=False)


@pytest.fixture(autouse=True)
def private_hints(tmp_path, monkeypatch):
    """A file of the test's own for the scheduling hints."""
    monkeypatch.setattr(workers, "_seconds_file", lambda: tmp_path / "hints.json")
    return tmp_path / "hints.json"


def test_two_workers_give_the_single_process_report():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n too small for 2%: said once per run
        one = sf.verify_many(NAMES, **SMALL)
        two = sf.verify_many(NAMES, jobs=2, **SMALL)
    assert_same_report(two, one)


def test_verify_all_with_workers_is_the_report_of_one_process(private_hints):
    kw = dict(samples=2048, points=1, cramer_rao=False, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = sf.verify_all(
            ["poisson", "exponential"], ["linear_gaussian"], jobs=1, **kw
        )
        two = sf.verify_all(
            ["poisson", "exponential"], ["linear_gaussian"], jobs=2, **kw
        )
    assert {c.family for c in one.checks} == {
        "poisson",
        "exponential",
        "linear_gaussian",
    }
    assert_same_report(two, one)
    hints = json.loads(private_hints.read_text())
    assert set(hints) == {"poisson", "exponential", "linear_gaussian"}
    assert all(v > 0 for v in hints.values())


def test_the_hints_order_the_tasks_longest_first(monkeypatch, private_hints):
    private_hints.write_text(json.dumps({"bernoulli": 1.0, "poisson": 9.0}))
    seen = []
    original = spawn.run_in_workers

    def spy(fn, calls, jobs, **kw):
        seen.extend(kw["names"])
        return original(fn, calls, jobs, **kw)

    monkeypatch.setattr(spawn, "run_in_workers", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf.verify_many(NAMES, jobs=2, **SMALL)
    # unknown first (exponential), then by the seconds of the last run
    assert seen == ["exponential", "poisson", "bernoulli"]


def test_a_broken_hints_file_is_ignored(private_hints):
    private_hints.write_text("{not json")
    assert workers._last_seconds() == {}
    private_hints.write_text('["a list"]')
    assert workers._last_seconds() == {}


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(jobs=0), "jobs must be a positive integer, got 0"),
        (dict(jobs="2"), "jobs must be a positive integer"),
        (dict(jobs=2, processes=2), "do not combine"),
        (dict(jobs=2, kernels=[None, {}]), "generated kernels only"),
        (dict(jobs=2, devices=["cpu"]), "devices and jobs > 1"),
    ],
)
def test_bad_settings_name_the_constraint(kw, match):
    with pytest.raises(DomainError, match=match):
        sf.verify_many(["poisson", "bernoulli"], **kw)


def test_cli_jobs_and_processes_do_not_combine(capsys):
    rc = cli.main(["verify", "poisson", "bernoulli", "--jobs", "2", "--processes", "2"])
    assert rc == 2
    assert "do not combine" in capsys.readouterr().err


def test_verify_all_jobs_and_processes_do_not_combine():
    with pytest.raises(DomainError, match="do not combine"):
        sf.verify_all(["poisson"], [], jobs=2, processes=2)
