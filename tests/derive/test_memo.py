"""Pure time-limited steps computed once (``symfisher.derive.memo``), and the exact
nonzero test that spares a policy agreement check its ``cancel``."""

from __future__ import annotations

import pytest
import sympy as sp

from symfisher import outcomes
from symfisher.derive import memo
from symfisher.derive.policy_derivation import _nonzero_at_a_point, _rational_zero
from symfisher.derive.simplify import tidy
from symfisher.errors import SymbolicTimeout
from symfisher.timelimit import run_limited


class _Book(dict):
    """A stand-in outcome book; ``everything`` records every step as done."""

    everything = False

    def get(self, key, default=None):
        return outcomes.DONE if self.everything else super().get(key, default)


@pytest.fixture(autouse=True)
def book(monkeypatch):
    entries = _Book()
    monkeypatch.setattr(memo, "_memo", {})
    monkeypatch.setattr(outcomes, "_recorded", lambda: entries)
    monkeypatch.delenv(outcomes.SCALE_ENV, raising=False)
    return entries


def _counted(calls, key="k1"):
    def compute():
        calls.append(1)
        return run_limited(lambda: "value", 5.0, key=key)

    return compute


def test_a_repeat_returns_the_first_value_and_replays_its_steps(book):
    book["k1"] = outcomes.DONE
    calls = []
    assert memo.once("a", _counted(calls)) == "value"
    with outcomes.tracing() as trace:
        assert memo.once("a", _counted(calls)) == "value"
    assert calls == [1]
    assert trace.steps == {"k1": outcomes.DONE}


def test_a_step_the_book_does_not_know_is_computed_again(book):
    calls = []
    memo.once("b", _counted(calls))
    memo.once("b", _counted(calls))
    assert calls == [1, 1]


def test_a_changed_book_is_computed_again(book):
    book["k1"] = outcomes.DONE
    calls = []
    memo.once("c", _counted(calls))
    book["k1"] = outcomes.TIMEOUT
    with pytest.raises(SymbolicTimeout):  # as the book now says, not the memo
        memo.once("c", _counted(calls))
    assert calls == [1, 1]


def test_an_exception_is_not_kept():
    def fail():
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            memo.once("d", fail)
    assert memo.once("d", lambda: 3) == 3


def test_tidy_tells_dummies_apart(book):
    book.everything = True
    a, b = sp.Dummy("u", positive=True), sp.Dummy("u", positive=True)
    assert tidy(sp.sqrt(a**2)) == a
    assert tidy(sp.sqrt(b**2)) == b  # same fingerprint, another symbol


w, v, rho = sp.symbols("w v rho", real=True)


@pytest.mark.parametrize(
    "expr, nonzero",
    [
        (sp.exp(2 * w) / (1 + sp.exp(w)) - rho, True),
        (rho * sp.exp(-3 * w) - sp.exp(v), True),
        ((rho**2 - 1) / (rho - 1) - (rho + 1), False),  # zero: cancel decides
        (sp.exp(w / 2) - rho, False),  # not an integer power of e^w: cancel decides
        (sp.sqrt(rho) - 3, False),  # irrational at the point: cancel decides
    ],
)
def test_nonzero_at_a_point_only_claims_what_cancel_confirms(expr, nonzero):
    assert _nonzero_at_a_point(expr) is nonzero
    if nonzero:
        assert sp.cancel(expr) != 0


@pytest.mark.parametrize(
    "expr, zero",
    [
        (
            sp.exp(w) / (sp.exp(w) + sp.exp(v))
            + sp.exp(v) / (sp.exp(w) + sp.exp(v))
            - 1,
            True,
        ),
        (
            sp.exp(w) / (sp.exp(w) + sp.exp(v)) - sp.exp(v) / (sp.exp(w) + sp.exp(v)),
            False,
        ),
    ],
)
def test_rational_zero(expr, zero):
    assert _rational_zero(expr) is zero
