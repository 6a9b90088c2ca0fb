"""Tests of ``symfisher.verify``; the helpers they share."""


def assert_same_report(got, want) -> None:
    """``got`` is ``want`` check for check, and as a whole, wall time aside."""
    for field in ("family", "verdict", "p_value", "message"):
        assert [getattr(c, field) for c in got.checks] == [
            getattr(c, field) for c in want.checks
        ], field
    assert _without_seconds(got) == _without_seconds(want)


def _without_seconds(report) -> dict:
    doc = report.to_dict()
    doc.pop("seconds")
    return doc
