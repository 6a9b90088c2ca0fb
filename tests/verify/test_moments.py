"""The sampler check's closed-form moments (``symfisher.verify.moments``)."""

from __future__ import annotations

import pytest

import symfisher as sf
from symfisher import outcomes
from symfisher.families.catalog import families
from symfisher.verify import moments


@pytest.mark.parametrize("name", families())
def test_the_moment_forms_of_every_catalog_family_are_in_the_book(name, monkeypatch):
    """No clock decides whether the sampler check gets a closed form or quadrature."""
    monkeypatch.setattr(moments, "_FORMS", {})
    with outcomes.tracing() as trace:
        moments.moment_forms(sf.family(name))
    assert trace.unrecorded() == [], "run `symfisher generate` to record the outcome"
    assert trace.by_clock == 0


def test_a_step_the_book_does_not_know_is_noticed(monkeypatch):
    """The check above can fail: an empty book leaves beta's integration to the clock."""
    monkeypatch.setattr(moments, "_FORMS", {})
    monkeypatch.setattr(outcomes, "_recorded", lambda: {})
    with outcomes.tracing() as trace:
        moments.moment_forms(sf.family("beta"))
    assert trace.unrecorded() != []
