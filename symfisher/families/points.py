"""Random valid parameter points, drawn in the families layer.

:func:`symfisher.derive.numeric.random_point` is this draw (with a
``DerivationError``), so that a check done while a family is defined and one done
while it is derived see the same points.
"""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.family import Family


def random_point(
    family: Family, rng: random.Random, tries: int = 1000
) -> dict[sp.Symbol, float]:
    """A random valid parameter point, moderate in scale, meeting every constraint.

    Reals draw from U(-1.5, 1.5), positive values from exp(U(-1, 1)), bounded
    intervals from their middle 80%.

    Raises:
      FamilyError: when ``tries`` draws give no valid point.
    """
    for _ in range(tries):
        values = [_draw(dom, rng) for dom in family.domains]
        try:
            return family.point(values)
        except Exception:
            continue
    raise FamilyError(f"{family.name}: no valid random point in {tries} draws")


def _draw(dom: sp.Set, rng: random.Random) -> float:
    if isinstance(dom, sp.FiniteSet | sp.Range):
        return float(rng.choice(list(dom)))
    lo, hi = dom.inf, dom.sup
    if lo == -sp.oo and hi == sp.oo:
        return rng.uniform(-1.5, 1.5)
    if hi == sp.oo:
        return float(lo) + float(mpmath.exp(rng.uniform(-1, 1)))
    if lo == -sp.oo:
        return float(hi) - float(mpmath.exp(rng.uniform(-1, 1)))
    a, b = float(lo), float(hi)
    return a + (b - a) * rng.uniform(0.1, 0.9)
