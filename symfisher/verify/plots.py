r"""Convergence plots: worst relative Monte Carlo error against n, one panel per quantity.

Each panel holds one identity (``E[s s^T] = F``, ``-E[H] = F``, ``MC KL = KL``)
with one line per parameter point and its own legend; the dashed line of the
same colour is :math:`c/\sqrt n`, the standard-error reference. A trace whose
error is below :data:`EXACT` at every n (an identity the draws meet exactly) has
no place on a log axis: the panel names it instead of stretching the axis to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: errors at or below this are exact (float64 rounding), not Monte Carlo error
EXACT = 1e-12
PANEL_WIDTH = 3.6
PANEL_HEIGHT = 3.2


def _panel(ax: Any, quantity: str, traces: Sequence[Any]) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter

    exact = []
    for t in sorted(traces, key=lambda t: t.point_index):
        n, err = np.asarray(t.n, float), np.asarray(t.error, float)
        color = f"C{t.point_index % 10}"
        if not np.any(err > EXACT):
            exact.append(t.point_index)
            continue
        keep = err > EXACT  # log axes: zeros would stretch them to nothing
        ax.loglog(
            n[keep], err[keep], "o-", ms=3, color=color, label=f"point {t.point_index}"
        )
        ax.loglog(n, np.asarray(t.reference, float), "--", lw=0.8, color=color)
    ax.set_title(quantity, fontsize=9)
    note = f"exact at every n (< {EXACT:.0e}): point " + ", ".join(map(str, exact))
    if not ax.lines:  # nothing on a log scale: the panel is the note
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(
            0.5,
            0.5,
            note,
            ha="center",
            va="center",
            fontsize=7,
            wrap=True,
            transform=ax.transAxes,
        )
        return
    ax.set_xlabel("samples n", fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=4))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if exact:
        ax.text(0.5, 0.04, note, ha="center", fontsize=7, transform=ax.transAxes)
    ax.legend(fontsize=7, loc="upper right")


def convergence_figure(family: str, traces: Sequence[Any]) -> Any:
    """A matplotlib figure: one panel per quantity of ``family``'s traces."""
    import matplotlib.pyplot as plt

    quantities = list(dict.fromkeys(t.quantity for t in traces)) or ["(none)"]
    fig, axes = plt.subplots(
        1,
        len(quantities),
        figsize=(PANEL_WIDTH * len(quantities), PANEL_HEIGHT),
        squeeze=False,
    )
    for ax, q in zip(axes[0], quantities, strict=True):
        group = [t for t in traces if t.quantity == q]
        if group:
            _panel(ax, q, group)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no Monte Carlo traces", ha="center", va="center")
    axes[0][0].set_ylabel("max relative |error|", fontsize=8)
    fig.suptitle(f"{family}: Monte Carlo error (dashed: σ/√n)", fontsize=10)
    fig.tight_layout()
    return fig


def write_plots(
    families: Sequence[str], traces: Sequence[Any], folder: Path
) -> list[Path]:
    """One PNG per family (also one without traces) in ``folder``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fam in dict.fromkeys([*families, *(t.family for t in traces)]):
        fig = convergence_figure(fam, [t for t in traces if t.family == fam])
        out = folder / f"{fam}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written
