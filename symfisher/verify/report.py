"""The verification report: table, JSON (schema ``symfisher.verify/1``), Markdown, plots.

JSON schema ``symfisher.verify/1``::

    {"schema": "symfisher.verify/1", "passed": bool, "seconds": float,
     "settings": {"n_samples", "seed", "points", "alpha", "power", "target_error",
                  "chunk", "devices"},
     "summary": {family: {"passed": bool, "checks": int, "failed": int,
                          "not_applicable": int, "worst_detectable": float | null}},
     # worst_detectable: over the Monte Carlo checks (Cramér–Rao checks state theirs)
     "checks": [{"family", "name", "entry", "point", "kind", "expected",
                 "observed", "se", "statistic", "p_value", "verdict",
                 "detectable", "n", "message"}, ...],
     "traces": [{"family", "quantity", "point_index", "n", "error", "reference"}]}

Non-finite floats are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from symfisher.verify.result import SCHEMA, Check, _jsonable

#: terminals narrower than this get the compact table (80 columns fit)
WIDE = 120


@dataclass
class Trace:
    """Worst relative error of a quantity against sample size (for convergence plots)."""

    family: str
    quantity: str
    n: list[int]
    error: list[float]
    reference: list[float]  # c / sqrt(n): the Monte Carlo standard-error line
    point_index: int = 0


@dataclass
class Report:
    """Result of :func:`symfisher.verify`: ``passed``, ``checks`` and renderers."""

    checks: list[Check]
    traces: list[Trace] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when no check failed or errored."""
        return not any(c.failed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """Checks with verdict "fail" or "error"."""
        return [c for c in self.checks if c.failed]

    def families(self) -> list[str]:
        """Families in the order they were verified."""
        return list(dict.fromkeys(c.family for c in self.checks))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per family: passed, number of checks, failures, worst detectable error."""
        out = {}
        for fam in self.families():
            cs = [c for c in self.checks if c.family == fam]
            # Monte Carlo checks, held to the power target (the Cramér–Rao
            # simulations resolve tens of percent and are reported per check)
            det = [
                c.detectable
                for c in cs
                if c.detectable is not None
                and c.detectable == c.detectable
                and not c.target_exempt
            ]
            out[fam] = {
                "passed": not any(c.failed for c in cs),
                "checks": len(cs),
                "failed": sum(c.failed for c in cs),
                "not_applicable": sum(c.verdict == "not applicable" for c in cs),
                "worst_detectable": max(det) if det else None,
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as a dict."""
        return {
            "schema": SCHEMA,
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "summary": _jsonable(self.summary()),
            "checks": [c.to_dict() for c in self.checks],
            "traces": [_jsonable(asdict(t)) for t in self.traces],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text (schema ``symfisher.verify/1``)."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """A Markdown report: summary table, then every failure and note."""
        lines = [
            "# symfisher verification report",
            "",
            f"Result: **{'PASSED' if self.passed else 'FAILED'}** "
            f"({len(self.checks)} checks, {len(self.failures)} failed, {self.seconds:.1f} s; "
            f"n = {self.settings.get('n_samples')}, α = {self.settings.get('alpha')} family-wise (Holm), "
            f"detectable errors at {self.settings.get('power', 0.9):.0%} power).",
            "",
            "| family | verdict | checks | failed | not applicable | worst detectable error |",
            "|---|---|---|---|---|---|",
        ]
        for fam, s in self.summary().items():
            det = (
                "" if s["worst_detectable"] is None else f"{s['worst_detectable']:.2%}"
            )
            lines.append(
                f"| {fam} | {'pass' if s['passed'] else 'FAIL'} | {s['checks']} | "
                f"{s['failed']} | {s['not_applicable']} | {det} |"
            )
        notes = [
            c
            for c in self.checks
            if c.failed or c.verdict in ("not applicable", "report")
        ]
        if notes:
            lines += ["", "## Failures and notes", ""]
            for c in notes:
                lines.append(
                    f"- **{c.family}** {c.name} {c.entry} [{c.verdict}]: {c.message}".rstrip()
                )
        return "\n".join(lines) + "\n"

    def table(self, width: int | None = None) -> Any:
        """A rich table with one row per family.

        Below :data:`WIDE` columns (``width``) the worst failure is left out, so
        that the table fits 80 columns (the Markdown report and the notes hold it).
        """
        from rich.table import Table

        short = width is not None and width < WIDE
        t = Table(title="symfisher verify")
        cols = ["family", "verdict", "checks", "failed", "n/a", "worst detectable"]
        if short:
            cols[-1] = "detect."
        else:
            cols.append("worst failure")
        for col in cols:
            t.add_column(col, no_wrap=col == "family")
        for fam, s in self.summary().items():
            fails = [c for c in self.checks if c.family == fam and c.failed]
            worst = ""
            if fails:
                c = min(
                    fails, key=lambda c: c.p_value if c.p_value is not None else 0.0
                )
                worst = f"{c.name} {c.entry}: {c.message}"[:90]
            det = (
                "" if s["worst_detectable"] is None else f"{s['worst_detectable']:.2%}"
            )
            row = [
                fam,
                "[green]pass[/]" if s["passed"] else "[red]FAIL[/]",
                str(s["checks"]),
                str(s["failed"]),
                str(s["not_applicable"]),
                det,
            ]
            t.add_row(*row, *([] if short else [worst]))
        return t

    def plot(self, path: str | Path) -> list[Path]:
        """Convergence plots, one PNG per family in folder ``path``: |error| vs n and 1/√n.

        One panel per quantity, one legend per panel; exact traces are named,
        not drawn (:mod:`symfisher.verify.plots`).
        """
        from symfisher.verify.plots import write_plots

        return write_plots(self.families(), self.traces, Path(path))
