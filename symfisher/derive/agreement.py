r"""Whether two closed forms are equal: *proved*, *tested*, *differs* or *unresolved*.

*proved*: :math:`\mathrm{simplify}(a - b) = 0` for every entry within the time
limit. *tested*: otherwise, :math:`|a - b| \le 10^{-40}\max(1, |a|)` at
``POINTS`` random valid points evaluated with 50-digit arithmetic.
"""

from __future__ import annotations

import random

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
    diff = (a - b).applyfunc(sp.expand)
    if all(is_zero(d, seconds) is True for d in diff):
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
    rng = random.Random(family.definition_hash())
    worst = sp.Float(0)
    for _ in range(points):
        pt = random_point(family, rng)
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
