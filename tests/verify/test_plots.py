"""Convergence plots a person can read: a panel per quantity, exact traces apart."""

import matplotlib

matplotlib.use("Agg")

import itertools

import numpy as np
import pytest

from symfisher.verify.plots import EXACT, convergence_figure, write_plots
from symfisher.verify.report import Report, Trace

N = [2**15 * 2**i for i in range(7)]


def _trace(quantity, point, scale=1.0, exact=False):
    rng = np.random.default_rng(point)
    ref = [scale / np.sqrt(n) for n in N]
    err = [0.0] * len(N) if exact else [r * rng.uniform(0.3, 2) for r in ref]
    return Trace("fam", quantity, N, err, ref, point)


TRACES = [
    _trace(q, p) for q in ("E[s s^T] = F", "-E[H] = F", "MC KL = KL") for p in range(3)
] + [_trace("E[s] = 0", 0, exact=True), _trace("-E[H] = F", 3, exact=True)]


@pytest.fixture
def fig():
    import matplotlib.pyplot as plt

    f = convergence_figure("fam", TRACES)
    f.canvas.draw()
    yield f
    plt.close(f)


def test_one_panel_per_quantity_each_with_its_own_legend(fig):
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [
        "E[s s^T] = F",
        "-E[H] = F",
        "MC KL = KL",
        "E[s] = 0",
    ]
    for ax in axes[:3]:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["point 0", "point 1", "point 2"]


def test_exact_traces_are_named_not_drawn(fig):
    exact_panel = fig.axes[3]
    assert not exact_panel.lines and exact_panel.get_legend() is None
    assert any("point 0" in t.get_text() for t in exact_panel.texts)
    mixed = fig.axes[1]
    assert any("point 3" in t.get_text() for t in mixed.texts)
    # the axis spans Monte Carlo errors, not the exact zeros
    assert mixed.get_ylim()[0] > EXACT


def test_tick_labels_do_not_overlap(fig):
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for labels in (
            ax.get_xticklabels(which="both"),
            ax.get_yticklabels(which="both"),
        ):
            boxes = [
                t.get_window_extent(renderer)
                for t in labels
                if t.get_text() and t.get_visible()
            ]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert not a.overlaps(b), ax.get_title()
    # panels do not overlap one another either
    spans = [ax.get_tightbbox(renderer) for ax in fig.axes]
    for a, b in itertools.pairwise(spans):
        assert a.x1 <= b.x0 + 1


def test_report_writes_one_png_per_family_also_without_traces(tmp_path):
    from symfisher.verify.result import Check

    r = Report(
        [Check("uniform", "Fisher identities", verdict="not applicable")], TRACES
    )
    paths = r.plot(tmp_path)
    assert sorted(p.name for p in paths) == ["fam.png", "uniform.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert write_plots([], [], tmp_path / "none") == []
