r"""The z-test of one Monte Carlo mean against its claimed value, as a :class:`Check`.

With standard error :math:`\mathrm{se}`, the effective one is
:math:`\sqrt{\mathrm{se}^2 + (64\,\varepsilon_{64}(|e| + |s|))^2}` for expected
value :math:`e` and scale :math:`s`: the floor stands for floating-point rounding
when the quantity does not vary with :math:`x`.
"""

from __future__ import annotations

import numpy as np

from symfisher.families.family import Family
from symfisher.verify import stats
from symfisher.verify.points import _named
from symfisher.verify.result import Check

EPS_FLOOR = 64 * np.finfo(np.float64).eps


def _z_check(
    fam: Family,
    theta: np.ndarray,
    name: str,
    entry: str,
    observed: float,
    se: float,
    expected: float,
    scale: float,
    n: int,
    bound: float = 0.0,
) -> Check:
    """A z-test of ``observed`` (standard error ``se``) against ``expected``.

    ``bound``: the error ``expected`` may have (a quadrature kernel's stated
    accuracy, absolute); the test is against the nearest value within it.
    """
    se_eff = float(np.hypot(se, EPS_FLOOR * (abs(expected) + abs(scale))))
    dev = observed - expected
    target = observed if abs(dev) <= bound else expected + np.sign(dev) * bound
    z, p = stats.z_test(observed, se_eff, float(target))
    return Check(
        family=fam.name,
        name=name,
        entry=entry,
        point=_named(fam, theta),
        kind="stochastic",
        expected=float(expected),
        observed=float(observed),
        se=se_eff,
        statistic=z,
        p_value=p,
        n=n,
        scale=scale,
    )
