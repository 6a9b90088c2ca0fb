"""Families, points, dtypes and tolerances of the oracle's assertions."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: Number of seeded points an assertion picks when none are passed.
N_POINTS = 5


@dataclass(frozen=True)
class _Fam:
    name: str
    family: Any  # symfisher Family
    kernels: ModuleType
    names: tuple[str, ...]

    @property
    def P(self) -> int:
        return len(self.names)

    def label(self) -> str:
        return f"{self.name}({', '.join(self.names)})"


def _resolve(family: Any, path: str | Path | None) -> _Fam:
    """The family (catalog name or object) and its kernels (catalog, or ``path``)."""
    from symfisher.verify.resolve import resolve

    r = resolve(family, path=path)
    return _Fam(r.name, r.family, r.kernels, tuple(r.family.param_names))


def _points(fam: _Fam, points: Any, n_points: int, seed: int) -> np.ndarray:
    """``(n, P)`` float64 valid points: the caller's, validated, or seeded random ones."""
    if points is None:
        from symfisher.derive.numeric import random_point

        if not isinstance(n_points, int) or n_points < 1:
            raise ValueError(f"n_points must be an integer >= 1; got {n_points!r}")
        rng = random.Random(seed)
        pts = [random_point(fam.family, rng) for _ in range(n_points)]
        return np.array([[pt[p] for p in fam.family.params] for pt in pts], float)
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[-1] != fam.P:
        raise ValueError(
            f"points must have shape (n, {fam.P}) or ({fam.P},) for {fam.label()}; "
            f"got shape {np.shape(points)}"
        )
    for row in arr:
        fam.family.point(list(row))  # DomainError naming the parameter
    return arr


def _directions(n: int, P: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 1]).standard_normal((n, P))


def _dtype(dtype: Any) -> np.dtype:
    if type(dtype).__module__ == "torch":  # torch.float32 -> float32
        dtype = str(dtype).removeprefix("torch.")
    dt = np.dtype(jnp.zeros(()).dtype if dtype is None else dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype must be a floating dtype; got {dt}")
    return dt


def _rtol(rtol: float | None, got: np.ndarray) -> float:
    if rtol is not None:
        if not rtol >= 0:
            raise ValueError(f"rtol must be >= 0; got {rtol!r}")
        return float(rtol)
    dt = got.dtype if np.issubdtype(got.dtype, np.floating) else np.float64
    return float(np.sqrt(np.finfo(dt).eps))


def _check_atol(atol: float) -> None:
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0; got {atol!r}")


def _round(a: Any, dt: np.dtype) -> np.ndarray:
    """``a`` rounded to ``dt`` (what the user's function receives), as float64."""
    return np.asarray(np.asarray(a, np.float64).astype(dt), np.float64)


def _ref(fn: Callable, *args: np.ndarray) -> np.ndarray:
    """A generated kernel evaluated in float64."""
    with jax.enable_x64(True):
        return np.asarray(fn(*(np.asarray(a, np.float64) for a in args)), np.float64)


def _fmt(a: Any) -> str:
    return np.array2string(
        np.asarray(a, np.float64), precision=10, separator=", ", max_line_width=100
    )
