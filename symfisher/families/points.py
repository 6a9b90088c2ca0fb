"""Random valid parameter points and mode scans, in the families layer.

:func:`symfisher.derive.numeric.random_point` is this draw (with a
``DerivationError``), so that a check done while a family is defined and one done
while it is derived see the same points.
"""

from __future__ import annotations

import random

import mpmath
import numpy as np
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


def real_values(values: object) -> np.ndarray:
    """Float64 values, NaN where a cheap evaluation came out complex."""
    z = np.asarray(values)
    if np.iscomplexobj(z):
        return np.where(z.imag == 0, z.real, np.nan)
    return z.astype(float)


def mode_points(
    logp: sp.Expr, x: sp.Symbol, lo: float, hi: float, samples: int = 4001
) -> list[float]:
    r"""The mode of :math:`e^{\log p}` on ``(lo, hi)`` and a few widths around it.

    Found by a float64 scan of ``samples`` points on a grid mapped to the
    interval; quadrature breakpoints there keep tanh–sinh from missing a narrow
    peak far from 0. Empty when the density cannot be evaluated cheaply.
    """
    t = np.linspace(-60.0, 60.0, samples)
    if np.isfinite(lo) and np.isfinite(hi):
        grid = lo + (hi - lo) / (1.0 + np.exp(-t / 4))
    elif np.isfinite(lo):
        grid = lo + np.exp(t / 2)
    elif np.isfinite(hi):
        grid = hi - np.exp(t / 2)
    else:
        grid = np.sinh(t / 2)
    try:
        f = sp.lambdify([x], logp, modules=["scipy", "numpy"], dummify=True)
        with np.errstate(all="ignore"):
            vals = real_values(f(grid)) * np.ones_like(grid)
    except Exception:
        return []
    vals[~np.isfinite(vals)] = -np.inf
    if not np.isfinite(vals).any():
        return []
    k = int(np.argmax(vals))
    near = vals > vals[k] - 20.0  # where the density is within e^-20 of its peak
    width = max(float(grid[near].max() - grid[near].min()), 1e-300)
    pts = [grid[k] + c * width for c in (-1.0, -0.25, 0.0, 0.25, 1.0)]
    return [float(q) for q in pts if lo < q < hi]
