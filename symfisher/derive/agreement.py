r"""Whether two closed forms are equal: *proved*, *tested*, *differs* or *unresolved*.

*proved*: :math:`\mathrm{simplify}(a - b) = 0` for every entry within the time
limit. *tested*: otherwise, :math:`|a - b| \le 10^{-40}\max(1, |a|)` at
``POINTS`` random valid points evaluated with 50-digit arithmetic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import sympy as sp

from symfisher.derive.numeric import random_point
from symfisher.derive.simplify import is_zero
from symfisher.families.family import Family

PROVED, TESTED, DIFFERS, UNRESOLVED = "proved", "tested", "differs", "unresolved"
DIGITS = 50
POINTS = 3


def compare(
    family: Family, a: sp.Matrix | None, b: sp.Matrix | None, seconds: float = 3.0
) -> tuple[str, str]:
    """``(status, detail)`` for the claim ``a == b`` entry by entry."""
    if a is None or b is None:
        return UNRESOLVED, "a route has no closed form"
    # entry by entry: the first entry not proved stops the expansions too
    if all(
        is_zero(sp.expand(x - y), seconds) is True for x, y in zip(a, b, strict=True)
    ):
        return PROVED, "simplify(a - b) == 0"
    worst = numeric_gap(family, a, b)
    if worst is None:
        return UNRESOLVED, "could not evaluate at random points"
    if worst <= sp.Float(10) ** -40:
        return TESTED, (
            f"|a - b| <= 1e-40 relative at {POINTS} random points, {DIGITS} digits"
        )
    return DIFFERS, f"largest relative gap {sp.N(worst, 5)} at random points"


def numeric_gap(
    family: Family, a: sp.Matrix, b: sp.Matrix, points: int = POINTS
) -> sp.Float | None:
    """Largest ``|a - b| / max(1, |a|)`` over random valid points, 50 digits."""
    worst = sp.Float(0)
    for pt in random_points(family, points):
        sub = {p: sp.Float(v, DIGITS) for p, v in pt.items()}
        for x, y in zip(a, b, strict=True):
            vx = sp.N(x, DIGITS, subs=sub)
            vy = sp.N(y, DIGITS, subs=sub)
            if not (vx.is_number and vy.is_number):
                return None
            gap = abs(vx - vy) / max(sp.Float(1), abs(vx))
            if not gap.is_real:
                return None
            worst = max(worst, gap)
    return worst


def random_points(family: Family, points: int = POINTS) -> list[dict[sp.Symbol, float]]:
    """The random valid points of :func:`numeric_gap`, seeded by the family's hash."""
    rng = random.Random(family.definition_hash())
    return [random_point(family, rng) for _ in range(points)]


#: Relative agreement a numeric route must reach to count as *tested*.
NUMERIC_TOLERANCE = sp.Float("1e-20")


def compare_routes(
    family: Family, a: Any, b: Any, seconds: float = 3.0
) -> tuple[str, str]:
    """:func:`compare` for two routes, or against a route's numeric values.

    A route without a closed form but with ``numeric`` values (route 3 from the
    quadrature KL) is compared with the other route's closed form at the same
    points: *tested* within ``NUMERIC_TOLERANCE`` relative, else *differs*.
    """
    if a.matrix is not None and b.matrix is not None:
        return compare(family, a.matrix, b.matrix, seconds)
    for closed, num in ((a, b), (b, a)):
        if closed.matrix is not None and getattr(num, "numeric", None):
            return compare_numeric(family, closed.matrix, num.numeric, num.detail)
    return compare(family, a.matrix, b.matrix, seconds)


def compare_numeric(
    family: Family,
    closed: sp.Matrix,
    numeric: Sequence[tuple[dict[sp.Symbol, float], sp.Matrix]],
    how: str = "",
) -> tuple[str, str]:
    """``(status, detail)`` for a closed form against numeric values at points."""
    worst = sp.Float(0)
    for pt, M in numeric:
        sub = {p: sp.Float(v, DIGITS) for p, v in pt.items()}
        for x, y in zip(closed, M, strict=True):
            vx = sp.N(x, DIGITS, subs=sub)
            if not (vx.is_number and vx.is_real):
                return UNRESOLVED, "could not evaluate the closed form at the points"
            worst = max(worst, abs(vx - y) / max(sp.Float(1), abs(vx)))
    what = how.split("; ")[-1] if how else f"numeric values at {len(numeric)} points"
    if worst <= NUMERIC_TOLERANCE:
        return TESTED, (
            f"|a - b| <= 1e-20 relative against the {what}, {DIGITS} digits"
        )
    return DIFFERS, f"largest relative gap {sp.N(worst, 5)} against the {what}"
