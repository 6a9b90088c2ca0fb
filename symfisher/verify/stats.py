r"""Test statistics: z-tests, Holm's step-down procedure, detectable errors.

A check compares a Monte Carlo mean :math:`\hat m` (standard error
:math:`\hat s`) with its claimed value :math:`m`:

.. math:: z = (\hat m - m) / \hat s, \qquad p = 2\,\Phi(-|z|).

Holm controls the family-wise false-alarm rate of a run at :math:`\alpha`: sort
the :math:`m` p-values, reject :math:`p_{(k)}` while
:math:`p_{(k)} \le \alpha / (m - k + 1)`. The smallest error a check detects
with power :math:`1 - \beta` at the strictest Holm level :math:`\alpha / m` is

.. math:: \delta = (z_{1 - \alpha / (2m)} + z_{1 - \beta})\, \hat s .
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as _stats

if TYPE_CHECKING:
    from symfisher.verify.result import Check

ALPHA = 1e-3
POWER = 0.9


def z_test(estimate: float, se: float, target: float) -> tuple[float, float]:
    """``(z, two-sided p-value)``; a zero standard error gives exact comparison."""
    diff = float(estimate) - float(target)
    if not np.isfinite(diff) or not np.isfinite(se):
        return float("nan"), 0.0
    if se == 0.0:
        exact = abs(diff) <= 1e-12 * max(1.0, abs(float(target)))
        return (0.0, 1.0) if exact else (float("inf"), 0.0)
    z = diff / float(se)
    return z, float(2.0 * _stats.norm.sf(abs(z)))


def one_sided_below(estimate: float, se: float, bound: float) -> tuple[float, float]:
    """``(z, p)`` for H0: the quantity is at least ``bound`` (reject when far below)."""
    if se <= 0.0 or not np.isfinite(se):
        return (0.0, 1.0) if estimate >= bound else (float("-inf"), 0.0)
    z = (float(estimate) - float(bound)) / float(se)
    return z, float(_stats.norm.cdf(z))


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Holm step-down rejections (True = reject) at family-wise level ``alpha``."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    reject = np.zeros(m, dtype=bool)
    if m == 0:
        return reject
    order = np.argsort(p, kind="stable")
    for rank, i in enumerate(order):
        if p[i] <= alpha / (m - rank):
            reject[i] = True
        else:
            break
    return reject


def decide(
    checks: Sequence[Check], alpha: float = ALPHA, power: float = POWER
) -> list[Check]:
    """Holm over the passing stochastic checks of a run: the one place verdicts are set.

    A rejected check fails with a message naming z, p and the number of checks;
    every check with a ``scale`` gets its ``detectable`` error at the run's
    strictest level. Returns the stochastic checks Holm saw.
    """
    sto = [
        c
        for c in checks
        if c.kind == "stochastic" and c.p_value is not None and c.verdict == "pass"
    ]
    m = len(sto)
    for c, r in zip(sto, holm([c.p_value for c in sto], alpha), strict=True):
        if r:
            c.verdict = "fail"
            c.message = c.message or (
                f"observed {c.observed:.6g} vs expected {c.expected:.6g} "
                f"(z = {c.statistic:.2f}, p = {c.p_value:.2e}, Holm over {m} checks "
                f"at family-wise level {alpha:g})"
            )
        if c.scale is not None and c.se is not None:
            c.detectable = detectable(c.se, c.scale, m, alpha, power)
    return sto


def detectable(
    se: float, scale: float, m: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    r"""Smallest relative error (of ``scale``) detected with ``power`` at level :math:`\alpha/m`."""
    if scale == 0.0 or not np.isfinite(scale):
        return float("nan")
    z = _stats.norm.isf(alpha / (2 * max(m, 1))) + _stats.norm.isf(1.0 - power)
    return float(z * se / abs(scale))


def samples_for(
    rel_sd: float, rel_error: float, m: int, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Samples a mean with relative standard deviation ``rel_sd`` needs to detect ``rel_error``."""
    z = _stats.norm.isf(alpha / (2 * max(m, 1))) + _stats.norm.isf(1.0 - power)
    return int(np.ceil((z * rel_sd / rel_error) ** 2))
