"""Derivations in worker processes (``symfisher.derive_many``, ``derive --jobs``)."""

from __future__ import annotations

import json
import os
import re

import pytest

import symfisher
from symfisher import cli, pool
from symfisher.derive import derivation, policy_derivation
from symfisher.errors import DomainError
from symfisher.spawn import run_in_workers

#: cheap families (well under a second each), so that the pool's start dominates
NAMES = ["exponential", "bernoulli", "poisson", "gamma"]
SECONDS = re.compile(r'^\s*"seconds": [0-9.e+-]+,?\n', re.MULTILINE)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(d))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(derivation, "_MEMORY", {})
    monkeypatch.setattr(policy_derivation, "_MEMORY", {})
    return d


def _json_without_seconds(capsys, *argv):
    rc = cli.main(["derive", *argv, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return SECONDS.sub("", out)


def test_two_jobs_print_the_bytes_of_one(capsys, tmp_path, monkeypatch):
    one = _json_without_seconds(capsys, *NAMES, "--jobs", "1")
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(tmp_path / "other"))
    derivation._MEMORY.clear()
    two = _json_without_seconds(capsys, *NAMES, "--jobs", "2")
    assert '"from_cache": false' in two and '"from_cache": true' not in two
    assert two == one  # wall times aside, byte for byte


def test_workers_fill_the_cache(private_cache):
    fresh = symfisher.derive_many(NAMES[:3], jobs=2)
    assert [d.family.name for d in fresh] == NAMES[:3]
    assert not any(d.from_cache for d in fresh)
    assert len(list(private_cache.glob("*.pkl"))) == 3
    derivation._MEMORY.clear()
    again = symfisher.derive_many(NAMES[:3], jobs=2)  # read here, no pool
    assert all(d.from_cache for d in again)
    for a, b in zip(fresh, again, strict=True):
        assert a.fisher == b.fisher and a.kl == b.kl and a.agreement == b.agreement


def test_sizes_by_subject():
    subs = [
        pool.Subject("categorical_softmax", sizes=(("K", 2),)),
        pool.Subject("poisson"),
    ]
    out = symfisher.derive_many(subs, jobs=2)
    assert out[0].family.n_params == 2 and out[1].family.name == "poisson"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_jobs_name_the_constraint(bad):
    with pytest.raises(DomainError, match="jobs must be a positive integer"):
        symfisher.derive_many(["poisson"], jobs=bad)


def test_cli_bad_jobs_exit_2(capsys):
    rc = cli.main(["derive", "poisson", "--jobs", "0"])
    _, err = capsys.readouterr()
    assert rc == 2 and "jobs must be a positive integer, got 0" in err


def test_default_jobs_are_the_usable_cores():
    assert 1 <= pool.default_jobs() <= (os.cpu_count() or 1)


def test_a_bad_size_fails_before_any_worker_starts():
    with pytest.raises(Exception, match="K"):
        symfisher.derive_many([pool.Subject("poisson", sizes=(("K", 3),))], jobs=2)


def test_cli_jobs_keep_the_order_of_the_names(capsys):
    rc = cli.main(["derive", "poisson", "exponential", "--jobs", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert [f["family"] for f in doc["families"]] == ["poisson", "exponential"]


def _sympy_cache_size() -> str | None:
    return os.environ.get("SYMPY_CACHE_SIZE")


def test_workers_get_a_bigger_sympy_cache(monkeypatch):
    monkeypatch.delenv("SYMPY_CACHE_SIZE", raising=False)
    seen = run_in_workers(
        _sympy_cache_size, [(), ()], 2, stall=600, environ=pool.WORKER_ENVIRON
    )
    assert seen == [pool.WORKER_SYMPY_CACHE] * 2
    assert "SYMPY_CACHE_SIZE" not in os.environ


def test_a_sympy_cache_size_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("SYMPY_CACHE_SIZE", "123")
    seen = run_in_workers(
        _sympy_cache_size, [()], 1, stall=600, environ=pool.WORKER_ENVIRON
    )
    assert seen == ["123"]
    assert os.environ["SYMPY_CACHE_SIZE"] == "123"
