"""Verification records: one :class:`Check` per test, a :class:`Report` per run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA = "symfisher.verify/1"

#: Verdicts. "fail" and "error" make a run fail; "report" and "not applicable"
#: are informational (the non-regular family, efficiencies at small n).
VERDICTS = ("pass", "fail", "error", "report", "not applicable")


@dataclass
class Check:
    """One check at one parameter point.

    Attributes:
      family: family name.
      name: what is tested, e.g. ``"E[s s^T] = F"``.
      entry: the entry tested (``"(0, 1)"``), or ``""`` for a whole quantity.
      point: parameter name -> value.
      kind: "stochastic" (z-test, Holm-controlled), "deterministic" or "report".
      expected, observed, se: the claimed value, the estimate and its standard error.
      statistic: z (stochastic) or the relative error (deterministic).
      p_value: two- or one-sided p-value (stochastic checks only).
      verdict: one of :data:`VERDICTS`.
      detectable: smallest relative error this check detects with 90% power.
      n: Monte Carlo sample size behind the estimate.
      message: plain-language detail (always set for "fail", "error", "not applicable").
      scale: the size ``detectable`` is relative to (stochastic checks; ``None``
        where it is not computed).
      target_exempt: not held to the run's target detectable error (the
        Cramér–Rao simulations resolve tens of percent, not 2 %).
    """

    family: str
    name: str
    entry: str = ""
    point: dict[str, float] = field(default_factory=dict)
    kind: str = "stochastic"
    expected: float | None = None
    observed: float | None = None
    se: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    verdict: str = "pass"
    detectable: float | None = None
    n: int | None = None
    message: str = ""
    scale: float | None = field(default=None, metadata={"json": False})
    target_exempt: bool = field(default=False, metadata={"json": False})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite floats as strings; schema ``symfisher.verify/1``).

        ``scale`` and ``target_exempt`` are bookkeeping of the run and stay out.
        """
        hidden = {f.name for f in fields(self) if f.metadata.get("json") is False}
        return {k: _jsonable(v) for k, v in asdict(self).items() if k not in hidden}

    @property
    def failed(self) -> bool:
        """True for "fail" and "error"."""
        return self.verdict in ("fail", "error")

    @classmethod
    def not_applicable(
        cls, family: str, name: str, point: dict[str, float], message: str
    ) -> Check:
        """A "report" check that could not be made here, saying why."""
        return cls(
            family=family,
            name=name,
            point=point,
            kind="report",
            verdict="not applicable",
            message=message,
        )

    @classmethod
    def deterministic(
        cls,
        family: str,
        name: str,
        point: dict[str, float],
        statistic: float,
        ok: bool,
        message: str = "",
        *,
        entry: str = "",
        expected: float | None = None,
        observed: float | None = None,
    ) -> Check:
        """A deterministic check: ``statistic`` (a relative error, say) and its verdict."""
        return cls(
            family=family,
            name=name,
            entry=entry,
            point=point,
            kind="deterministic",
            expected=expected,
            observed=observed,
            statistic=statistic,
            verdict="pass" if ok else "fail",
            message=message,
        )

    @classmethod
    def error(
        cls, family: str, name: str, point: dict[str, float], message: str
    ) -> Check:
        """A deterministic check whose computation raised or returned no number."""
        return cls(
            family=family,
            name=name,
            point=point,
            kind="deterministic",
            verdict="error",
            message=message,
        )


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):  # traces: lists of floats, NaN for broken kernels
        return [_jsonable(x) for x in v]
    return v
