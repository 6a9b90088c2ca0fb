r"""Deterministic checks of ``natural_gradient`` and ``fisher_sqrt`` at one point.

* :math:`(F + \lambda I)\,\texttt{natural\_gradient}(\theta, v, \lambda) = v` with
  :math:`\lambda = 0.1` and a seeded :math:`v`, :math:`F` from ``fisher``;
* :math:`R^\top R = F` for :math:`R = \texttt{fisher\_sqrt}(\theta)`.

Both are relative to the largest entry; a quadrature Fisher adds its stated
accuracy (the two kernels are computed from it, so rounding is the only error).
"""

from __future__ import annotations

import zlib

import jax.numpy as jnp
import numpy as np

from symfisher.families.family import Family
from symfisher.verify.kernel_access import Kernels, _jit
from symfisher.verify.points import _named
from symfisher.verify.result import Check

DAMPING = 0.1
RTOL = 1e-8


def _check(fam: Family, name: str, named: dict, got, want, tol: float) -> Check:
    rel = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    ok = bool(np.isfinite(rel) and rel <= tol)
    return Check.deterministic(
        fam.name,
        name,
        named,
        rel,
        ok,
        "" if ok else f"max relative difference {rel:.3g} > {tol:.3g}",
        expected=0.0,
        observed=rel,
    )


def solve_checks(
    fam: Family, K: Kernels, theta: np.ndarray, F: np.ndarray
) -> list[Check]:
    """The two checks, skipped (none returned) when the module lacks the kernels."""
    ng, sqrt = K.get("natural_gradient"), K.get("fisher_sqrt")
    if ng is None or sqrt is None:
        return []
    named = _named(fam, theta)
    tol = RTOL + K.accuracy("fisher")
    t = jnp.asarray(theta)
    v = np.random.default_rng(zlib.crc32(theta.tobytes())).normal(size=len(theta))
    out = []
    label = f"(F + {DAMPING:g} I) natural_gradient(v) = v"
    try:
        x = np.asarray(_jit(ng, extra=(DAMPING,))(t, jnp.asarray(v)), float)
        out.append(_check(fam, label, named, F @ x + DAMPING * x, v, tol))
    except Exception as e:
        out.append(Check.error(fam.name, label, named, f"{type(e).__name__}: {e}"))
    label = "fisher_sqrt^T fisher_sqrt = F"
    try:
        R = np.asarray(_jit(sqrt)(t), float)
        out.append(_check(fam, label, named, R.T @ R, F, tol))
    except Exception as e:
        out.append(Check.error(fam.name, label, named, f"{type(e).__name__}: {e}"))
    return out
