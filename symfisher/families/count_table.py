r"""The generic sampler on integer supports: a truncated inverse-CDF table.

A finite set or range is summed exactly; a range with an infinite end is summed
outward until a geometric bound on the tail beyond the cut,
:math:`p_K\,r/(1-r)`, is below ``COUNT_TAIL`` of the mass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.sampler_info import (
    COUNT_TAIL,
    MAX_FINITE,
    MAX_TERMS,
    STATED_ERROR,
    SamplerInfo,
    _finite,
    _Table,
    _Unservable,
)


class _CountTable(_Table):
    def __init__(self, values: np.ndarray, cdf: np.ndarray, info: SamplerInfo):
        self.values, self.cdf, self.info = values, cdf, info

    def quantile(self, u: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.cdf, u, side="right")
        return self.values[np.minimum(i, len(self.values) - 1)]


def _count_table(sup: sp.Set, logp: Callable) -> _CountTable:
    """Inverse CDF over the integers of ``sup`` (a range or a finite set)."""
    try:
        vals = _finite(sup, "")
    except FamilyError as e:
        raise _Unservable(str(e).split(": ", 1)[1]) from None
    truncated = False
    if vals is not None and len(vals) <= MAX_FINITE:
        xs = np.array([float(v) for v in vals])
        lp = logp(xs)
        detail = f"{len(xs)} support points, exact sums"
    elif isinstance(sup, sp.Range):
        xs, lp, cut = _scan_range(sup, logp)
        truncated = True
        detail = (
            f"{len(xs)} terms from {xs[0]:.0f} to {xs[-1]:.0f}; the tail beyond the "
            f"cut is bounded by {f'{cut:.1e}' if cut > 0 else '< 1e-300'} of the mass"
        )
    else:
        raise _Unservable(f"support {sup} is not a range of integers")
    m = np.max(lp)
    if not np.isfinite(m):
        raise _Unservable("the mass function is zero, NaN or infinite on the support")
    p = np.exp(lp - m)
    c = np.cumsum(p)
    total = c[-1]
    cdf = c / total
    cdf[-1] = 1.0
    info = SamplerInfo(
        "truncated inverse CDF" if truncated else "exact inverse CDF",
        STATED_ERROR if truncated else 0.0,
        None,
        detail,
    )
    return _CountTable(xs, cdf, info)


def _scan_range(sup: sp.Range, logp: Callable) -> tuple[np.ndarray, np.ndarray, float]:
    """Terms of a range with an infinite end, summed outward until the tail is bounded."""
    step = int(sup.step)
    lo, hi = sup.inf, sup.sup
    if lo.is_finite:
        start, dirs = int(lo), [+1]
    elif hi.is_finite:
        start, dirs = int(hi), [-1]
    else:
        start, dirs = 0, [+1, -1]
    step = abs(step)
    sides: dict[int, list[np.ndarray]] = {d: [] for d in dirs}
    lps: dict[int, list[np.ndarray]] = {d: [] for d in dirs}
    done = dict.fromkeys(dirs, False)
    tails = dict.fromkeys(dirs, 0.0)
    block, count = 256, 0
    nxt = {d: (start if d == +1 else start - step) for d in dirs}
    while not all(done.values()):
        for d in dirs:
            if done[d]:
                continue
            ks = nxt[d] + d * step * np.arange(block)
            nxt[d] = int(ks[-1]) + d * step
            sides[d].append(ks.astype(np.float64))
            lps[d].append(logp(ks.astype(np.float64)))
            count += block
        allp = np.concatenate([np.concatenate(v) for v in lps.values()])
        m = np.max(allp)
        if not np.isfinite(m):
            if m == np.inf or count > MAX_TERMS:
                raise _Unservable("the mass function is zero, NaN or infinite")
            block *= 2
            continue
        log_total = m + np.log(np.sum(np.exp(allp - m)))
        for d in dirs:
            if done[d]:
                continue
            lp = np.concatenate(lps[d])
            tail = lp[-max(16, len(lp) // 4) :]
            with np.errstate(all="ignore"):
                ratios = np.diff(tail)  # log p_{k+1} - log p_k, outward
            if np.all(np.isneginf(tail)):
                finite = lp[np.isfinite(lp)]
                if len(finite) >= 2 and finite[-1] >= finite[-2]:
                    raise _Unservable(
                        "the mass function turns from increasing to zero or NaN far "
                        "out (an overflow?)"
                    )
                bound = 0.0
            elif np.any(~np.isfinite(ratios)) or np.any(ratios >= 0):
                bound = np.inf
            else:
                r = float(np.exp(np.max(ratios)))
                bound = float(np.exp(tail[-1] - log_total) * r / (1 - r))
            if bound < COUNT_TAIL / 4:
                tails[d] = bound
                done[d] = True
        if count > MAX_TERMS and not all(done.values()):
            raise _Unservable(
                f"the tail of the mass function could not be bounded below "
                f"{COUNT_TAIL:.0e} within {MAX_TERMS} terms (a heavy tail)"
            )
        block *= 2
    parts_x, parts_l = [], []
    for d in sorted(dirs):
        x = np.concatenate(sides[d])
        lp = np.concatenate(lps[d])
        if d < 0:
            x, lp = x[::-1], lp[::-1]
        parts_x.append(x)
        parts_l.append(lp)
    cut = float(sum(tails.values()))
    return np.concatenate(parts_x), np.concatenate(parts_l), cut
