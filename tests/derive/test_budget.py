"""``derive(family, seconds=S)`` spends about S seconds in all, then answers numerically."""

from __future__ import annotations

import time

import numpy as np
import pytest

import symfisher as sf
from symfisher import outcomes, timelimit
from symfisher.derive import expectation
from symfisher.derive.derivation import derive

GIVE_UP = 60.0  # the stand-in integration ends by itself after this


@pytest.fixture
def endless_integration(monkeypatch):
    """Symbolic integration that never finishes (until GIVE_UP); records its limits.

    Each call records (when it began, the deadline it runs under, the open budgets).
    """
    calls: list[tuple[float, float, list[float]]] = []

    def forever(family, exprs):
        t0 = time.monotonic()
        calls.append((t0, min(timelimit._deadlines), list(timelimit._budgets)))
        while time.monotonic() - t0 < GIVE_UP:
            sum(range(100))
        raise AssertionError("the time budget did not stop the integration")

    monkeypatch.setattr(expectation, "_integrate_all", forever)
    return calls


def _kumaraswamy():
    return sf.define_family(
        "kumaraswamy_budget",
        "log(a) + log(b) + (a - 1)*log(x) + (b - 1)*log(1 - x**a)",
        params={"a": "positive", "b": "positive"},
        support="unit_interval",
    )


@pytest.mark.parametrize("seconds", [1.0, 2.0])
def test_derive_spends_its_budget_in_all_not_per_route(endless_integration, seconds):
    """Every step's deadline lies within S of the first step's start.

    Three routes each given S would run until about 2.25 S; read from the deadlines
    the steps ran under, not from a stopwatch, so a busy machine cannot tip it.
    """
    fam = _kumaraswamy()
    d = derive(fam, seconds=seconds, use_cache=False)
    calls = endless_integration
    assert calls, "the stand-in integration was never called"
    first = calls[0][0]
    allowed = seconds * outcomes.time_scale()
    # a step's deadline is its remaining budget added to the clock a few lines
    # later; per-route budgets would overshoot by a whole S (>= 1 s), not by EPS
    eps = 0.25
    for began, deadline, budgets in calls:
        assert budgets, "a step ran outside the derivation's budget"
        assert deadline <= min(budgets) + eps, "a step's limit outlives the budget"
        assert deadline <= first + allowed + eps, (
            f"a step began {began - first:.2f} s in with a deadline "
            f"{deadline - first:.2f} s in, past the budget of {allowed:g} s"
        )
    assert d.by_clock >= 1
    assert d.fisher is None
    assert all(m is None for m in d.routes.values())


def test_what_the_budget_cut_is_answered_numerically(endless_integration):
    fam = _kumaraswamy()
    d = derive(fam, seconds=0.5, use_cache=False)
    F = d.fisher_at({"a": 2.0, "b": 3.0})
    assert F.provenance.startswith("numeric")
    # -log(1 - X^a) ~ Exponential(b), so I_bb = 1/b^2
    assert F[1, 1] == pytest.approx(1 / 9, rel=1e-12)
    assert np.all(np.linalg.eigvalsh(F.value) > 0)


def test_numeric_fisher_takes_its_working_precision(endless_integration):
    d = derive(_kumaraswamy(), seconds=0.5, use_cache=False)
    F = d.fisher_at({"a": 2.0, "b": 3.0}, dps=20)
    assert F.provenance.startswith("numeric") and "at 20 digits" in F.provenance
    assert F[1, 1] == pytest.approx(1 / 9, rel=1e-12)
    for bad in (10, 20.0, "50"):
        with pytest.raises(ValueError, match=r"dps must be an int in \[15, 1000\]"):
            d.fisher_at({"a": 2.0, "b": 3.0}, dps=bad)
