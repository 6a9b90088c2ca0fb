r"""What the parts of the generic sampler share: stated errors, limits, results.

The error bounds and limits of :mod:`symfisher.families.generic_sampler` (which
describes the methods and exports them), :class:`SamplerInfo`, the per-point
table interface, the refusal of a point and the enumeration of finite supports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.family import finite_values

STATED_ERROR = 1e-10
"""Stated bound on the u-error :math:`\\sup_u |F(x(u)) - u|` of the numeric methods."""
U_RESOLUTION = 1e-12
"""u-resolution asked of PINV (it must hold ``STATED_ERROR`` with room to spare)."""
COUNT_TAIL = 1e-12
"""Bound on the relative mass cut off a count support's infinite tail(s)."""
CHECK_POINTS = 101
"""Evenly spaced quantiles (plus ten in the tails) at which a continuous inverse CDF
is checked by quadrature."""
MAX_FINITE = 2**20
"""Most points of a finite support that are enumerated (beyond: FamilyError)."""
MAX_TERMS = 2**22
"""Most terms summed for a count support before its tail counts as unbounded."""
TAIL_LOG = -80.0
"""The mapped density is followed out to ``exp(TAIL_LOG)`` of its maximum."""
MAX_SLIVER = 1e-6
"""Most mass (relative to the peak) allowed within float64 rounding of an end."""
NEGLIGIBLE = 1e-14
"""Mass (relative to the peak) beyond a last computable point that is cut anywhere."""
NEAR_END = 2.0**-20
"""Within this (relative) distance of a finite end the density is evaluated in
``NEAR_END_DPS`` digits: float64 loses it there (``1 - x**a`` for x near 1)."""
NEAR_END_DPS = 40
MAX_PRECISE = 4096
"""Most points of one evaluation that are redone in ``NEAR_END_DPS`` digits."""

_PASS = (
    "pass sampler=sample (a function sample(key, theta, shape) -> array of shape "
    "shape + event_shape, seeded by the JAX key) to define_family"
)


@dataclass(frozen=True)
class SamplerInfo:
    """What the generic sampler does at one parameter point.

    Attributes:
      method: ``"exact categorical"``, ``"truncated inverse CDF"`` or
        ``"inverse CDF (PINV)"``.
      stated_error: the bound claimed on the u-error.
      measured_error: the largest u-error measured by quadrature (continuous
        supports), or ``None``.
      detail: one line: points enumerated, tail cut, mapping, total mass.
      sliver: mass within float64 rounding of a finite end (continuous
        supports), where draws are the nearest float inside; it adds to the
        u-error there.
    """

    method: str
    stated_error: float
    measured_error: float | None
    detail: str
    sliver: float = 0.0

    def describe(self) -> str:
        """One line for reports."""
        err = (
            "exact up to rounding"
            if self.stated_error == 0
            else f"u-error ≤ {self.stated_error:.0e}"
        )
        if self.measured_error is not None:
            err += f" (measured {self.measured_error:.1e})"
        return f"generic sampler, {self.method}: {err}; {self.detail}"


class _Unservable(Exception):
    """This point cannot be sampled accurately (turned into a FamilyError)."""


class _Table:
    info: SamplerInfo

    def quantile(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _finite(s: sp.Set, name: str) -> tuple[sp.Expr, ...] | None:
    """The points of a finite support, without enumerating a huge range.

    Raises:
      FamilyError: for a finite support of more than ``MAX_FINITE`` points.
    """
    if isinstance(s, sp.Range):
        size = s.size
        if not (size.is_finite and size.is_number):
            return None
        if int(size) > MAX_FINITE:
            raise FamilyError(
                f"{name}: the support {s} has {int(size)} points, more than the "
                f"generic sampler enumerates ({MAX_FINITE}); {_PASS}"
            )
    return finite_values(s)
