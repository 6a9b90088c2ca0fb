r"""Parameter points as the user's function receives them: rounded, and on the boundary.

* **Rounding.** With ``dtype=float32`` the user's function gets
  :math:`\mathrm{fl}_{32}(\theta)`, so every reference is computed (in float64)
  at exactly those rounded values, never at the unrounded ones.
* **Boundary.** With ``allow_boundary=True`` points may sit on the closure of the
  domain where a quantity has a finite limit: a probability :math:`p_i = 0`
  (``categorical``, ``bernoulli``: also :math:`p = 1`), a logit
  :math:`z_i = -\infty` (``categorical_softmax``; :math:`\pm\infty` for
  ``bernoulli_logit``). The reference is the limit, taken by evaluating the
  float64 kernel at a point moved inward by far less than float64 resolves in
  the quantity (:math:`p_i = 10^{-300}`, :math:`z_i = -10^4`: :math:`e^{-10^4}`
  is 0 in float64), which gives :math:`0 \log 0 = 0` (``xlogy``) semantics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symfisher.testing.setup import _Fam, _points, _round

#: Families whose parameter boundary the oracle knows, and how.
BOUNDARY = {
    "categorical": "simplex",
    "bernoulli": "unit",
    "categorical_softmax": "logits",
    "bernoulli_logit": "logits",
}

_TINY = 1e-300
_FAR = 1e4


def inward(fam: _Fam, theta: np.ndarray) -> np.ndarray:
    """``theta`` moved inward from the boundary, for a float64 limit reference."""
    kind = BOUNDARY.get(fam.name)
    t = np.array(theta, np.float64)
    if kind == "logits":
        return np.where(np.isposinf(t), _FAR, np.where(np.isneginf(t), -_FAR, t))
    if kind == "unit":
        return np.clip(t, _TINY, 1 - 1e-16)
    if kind == "simplex":
        t = np.maximum(t, _TINY)
        if t.sum() >= 1.0:
            t = t * (1 - 1e-15) / t.sum()
        return t
    return t


def zero_probability(fam: _Fam, theta: np.ndarray, x: np.ndarray) -> bool:
    """Whether outcome ``x`` has probability 0 at (boundary) point ``theta``."""
    kind = BOUNDARY.get(fam.name)
    t = np.asarray(theta, np.float64)
    if kind is None or np.ndim(x) != 0:
        return False
    i = int(x)
    if kind == "simplex":
        p = np.append(t, 1.0 - t.sum())
        return bool(0 <= i < len(p) and p[i] <= 0)
    if kind == "unit":
        return bool((i == 1 and t[0] <= 0) or (i == 0 and t[0] >= 1))
    if fam.name == "bernoulli_logit":
        return bool((i == 1 and t[0] == -np.inf) or (i == 0 and t[0] == np.inf))
    return bool(0 <= i < len(t) and t[i] == -np.inf)


def on_boundary(fam: _Fam, theta: np.ndarray) -> bool:
    """Whether ``theta`` is on the boundary (moved by :func:`inward`)."""
    return not np.array_equal(inward(fam, theta), np.asarray(theta, np.float64))


def _boundary_defaults(fam: _Fam, pts: np.ndarray) -> np.ndarray:
    """Seeded interior points, the first two moved onto the boundary."""
    kind = BOUNDARY.get(fam.name)
    out = pts.copy()
    if kind is None:
        return out
    if kind == "logits":
        out[0, 0] = -np.inf
        if len(out) > 1:
            out[1, -1] = np.inf if fam.P == 1 else -np.inf
            if fam.P > 2:
                out[1, 0] = -np.inf
    elif kind == "unit":
        out[0, 0] = 0.0
        if len(out) > 1:
            out[1, 0] = 1.0
    else:  # simplex: p_0 = 0; then the implicit last probability 0
        out[0, 0] = 0.0
        if len(out) > 1:
            out[1] = out[1] / out[1].sum()
    return out


def rounded_points(
    fam: _Fam,
    points: Any,
    n_points: int,
    seed: int,
    dt: np.dtype,
    allow_boundary: bool = False,
) -> np.ndarray:
    """``(n, P)`` float64 valid points, rounded to ``dt``.

    Args:
      fam: the family.
      points: the caller's points, or None for ``n_points`` seeded ones.
      n_points: how many points to pick.
      seed: their seed.
      dt: the dtype the user's function receives.
      allow_boundary: accept (caller) or add (seeded: the first two) points on
        the closure of the domain (see the module docstring).

    Raises:
      ValueError: for a wrong shape; DomainError naming the parameter outside
        its domain (or its closure, with ``allow_boundary``).
    """
    if not allow_boundary:
        return _round(_points(fam, points, n_points, seed), dt)
    if fam.name not in BOUNDARY:
        raise ValueError(
            f"allow_boundary=True: {fam.label()} has no boundary points with a "
            "finite limit that the oracle knows; it knows "
            f"{', '.join(sorted(BOUNDARY))}"
        )
    if points is None:
        return _round(_boundary_defaults(fam, _points(fam, None, n_points, seed)), dt)
    arr = np.asarray(points, dtype=float)
    arr = arr[None] if arr.ndim == 1 else arr
    moved = np.array([inward(fam, r) for r in arr]) if arr.ndim == 2 else arr
    _points(fam, moved, n_points, seed)  # shape and domain of the closure
    return _round(arr, dt)
