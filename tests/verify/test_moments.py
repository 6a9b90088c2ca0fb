"""The sampler check's closed-form moments (``symfisher.verify.moments``)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

import symfisher as sf
from symfisher import outcomes
from symfisher.families.catalog import families
from symfisher.verify import moments

#: what ``symfisher verify`` does for each family, in a process of its own
_STEPS = """
import json
import symfisher as sf
from symfisher import outcomes
from symfisher.families.catalog import families
from symfisher.verify import moments
from symfisher.verify.cramer_rao.unbiased import symbolic_steps
out = {}
for name in families():
    with outcomes.tracing() as trace:
        moments.moment_forms(sf.family(name))
    with outcomes.tracing() as cr:
        symbolic_steps(sf.family(name))
    out[name] = {"unrecorded": trace.unrecorded(), "by_clock": trace.by_clock,
                 "cr_unrecorded": cr.unrecorded(), "cr_by_clock": cr.by_clock}
print(json.dumps(out))
"""


@functools.cache
def _steps_in_a_fresh_process() -> dict:
    # a fresh process, as `symfisher verify` starts: a test run's process may
    # hold SymPy state that earlier tests left behind
    out = subprocess.run(
        [sys.executable, "-c", _STEPS],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,  # a hang guard: the steps take seconds
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", families())
def test_the_moment_forms_of_every_catalog_family_are_in_the_book(name):
    """No clock decides whether the sampler check gets a closed form or quadrature."""
    got = _steps_in_a_fresh_process()[name]
    assert got["unrecorded"] == [], "run `symfisher generate` to record the outcome"
    assert got["by_clock"] == 0


@pytest.mark.parametrize("name", families())
def test_the_cramer_rao_steps_of_every_catalog_family_are_in_the_book(name):
    """No clock decides whether the unbiased-estimator check gets E[x] in closed form
    and the derivation's bound of it.

    beta's and von Mises' integrations run into their 10 s limit: unrecorded, a
    cold ``symfisher verify`` spent 20 s of CPU on them and a faster machine
    could have finished one; the bound's inversion and tidying (limited to 20 s
    and 2 s) finished here, but unrecorded a slower machine could cut them.
    """
    got = _steps_in_a_fresh_process()[name]
    assert got["cr_unrecorded"] == [], "run `symfisher generate` to record the outcome"
    assert got["cr_by_clock"] == 0


def test_a_step_the_book_does_not_know_is_noticed(monkeypatch):
    """The check above can fail: an empty book leaves beta's integration to the clock."""
    monkeypatch.setattr(moments, "_FORMS", {})
    monkeypatch.setattr(outcomes, "_recorded", lambda: {})
    with outcomes.tracing() as trace:
        moments.moment_forms(sf.family("beta"))
    assert trace.unrecorded() != []
    assert trace.by_clock == 1
