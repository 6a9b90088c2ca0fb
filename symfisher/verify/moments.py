r"""Closed-form sample moments :math:`\mathbb E[x_j]` and :math:`\mathbb E[x_j^2]`.

The sampler check compares :math:`\overline{x_j}` (and, for light-tailed
families, :math:`\overline{x_j^2}`) with these. They come from
:func:`~symfisher.derive.expectation.expect` for light-tailed families (moments
of the sufficient statistic, finite sums), else from 1-D adaptive quadrature
(QUADPACK), else from mpmath quadrature at 15 digits; memoised per family and
point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symfisher.families.family import Family


def _moments(
    family: Family, theta: np.ndarray
) -> tuple[list[tuple[str, float, float, bool, int]], str]:
    """Closed-form ``E[x_j]`` (and ``E[x_j^2]``): (label, value, scale, second, j) each."""
    import sympy as sp

    from symfisher.derive.numeric import expectations_numeric

    ckey = (family.definition_text(), theta.tobytes())
    if ckey in _MOMENTS:
        return _MOMENTS[ckey]
    point = {k: sp.Float(v, 30) for k, v in family.point(list(theta)).items()}
    light = _light(family)
    exprs = _exprs(family)
    res = moment_forms(family)
    if res is not None and res.values is not None:
        vals = [float(sp.sympify(v).xreplace(point).evalf(30)) for v in res.values]
        how = res.method
    elif len(family.variables) == 1:
        try:
            vals, how = _quad_moments(family, point), "adaptive quadrature (QUADPACK)"
        except Exception:
            vals = [
                float(v) for v in expectations_numeric(family, exprs, point, dps=15)[0]
            ]
            how = "quadrature at 15 digits"
    else:
        return [], "moments unresolved"
    out = []
    for j, v in enumerate(family.variables):
        m1, m2 = vals[2 * j], vals[2 * j + 1]
        sd = float(np.sqrt(max(m2 - m1**2, 0.0)))
        out.append((f"E[{v}]", m1, sd, False, j))
        if light:
            out.append((f"E[{v}^2]", m2, abs(m2), True, j))
    _MOMENTS[ckey] = (out, how)
    return out, how


def _light(family: Family) -> bool:
    return family.is_finite or family.expfam is not None or family.cumulants is not None


def _exprs(family: Family) -> list[Any]:
    return [v**k for v in family.variables for k in (1, 2)]


def moment_forms(family: Family) -> Any:
    """Closed forms of ``E[x_j]``, ``E[x_j^2]`` of a light-tailed family, memoised; else None.

    They come at once for most (moments of the sufficient statistic, finite
    sums); others try symbolic integration for 1 s, a time-limited step whose
    outcome ``symfisher generate`` records in the book (it takes this step for
    every catalog family), so that the clock does not decide the sampler check.
    """
    from symfisher.derive.expectation import expect

    fkey = family.definition_text()
    if fkey not in _FORMS:
        _FORMS[fkey] = (
            expect(family, _exprs(family), seconds=1.0) if _light(family) else None
        )
    return _FORMS[fkey]


def _quad_moments(family: Family, point: dict) -> list[float]:
    """``[E[x], E[x^2]]`` of a one-variable continuous family by ``scipy.integrate.quad``."""
    import sympy as sp
    from scipy import integrate

    (x,) = family.variables
    (sup,) = family.supports
    sup = sup.xreplace(point)
    if family.is_discrete or not isinstance(sup, sp.Interval):
        raise ValueError("not a continuous interval support")
    from symfisher.families.normalizer import at_point

    dens = sp.lambdify(
        x, sp.exp(at_point(family.log_density, point)), ["scipy", "numpy"]
    )
    lo, hi = float(sup.inf), float(sup.sup)
    out = []
    for k in (1, 2):
        val, err = integrate.quad(
            lambda t, k=k: dens(t) * t**k, lo, hi, limit=200, epsabs=0, epsrel=1e-11
        )
        if not np.isfinite(val) or err > 1e-8 * max(1.0, abs(val)):
            raise ValueError(f"quadrature did not converge ({val}, {err})")
        out.append(float(val))
    return out


_MOMENTS: dict[tuple, tuple] = {}
_FORMS: dict[str, Any] = {}
