"""What every benchmark module's ``run`` does: run the selected cases, record failures."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def run_cases(
    cases: Iterable[str],
    only: set[str] | None,
    run_case: Callable[[str, str], dict],
    machine: str,
    **fields: Any,
) -> list[dict]:
    """``run_case(case, machine)`` for each selected case, in order.

    A case that raises is recorded as ``{"case", "error", "machine", "target"?}``
    plus ``fields`` (``dtype``, ``batch``, ...; a mapping value is looked up by
    case), so that one broken case does not hide the others and the run exits 1.
    """
    records = []
    for case in cases:
        if only and case not in only:
            continue
        try:
            records.append(run_case(case, machine))
        except Exception as e:
            extra = {
                k: v[case] if isinstance(v, dict) else v for k, v in fields.items()
            }
            records.append(
                {
                    "case": case,
                    **extra,
                    "error": f"{type(e).__name__}: {e}",
                    "machine": machine,
                }
            )
    return records
