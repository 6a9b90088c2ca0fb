r"""A log-density over finitely many outcomes, as one expression.

Shared by the categorical families and the softmax policies (not a family).
"""

from __future__ import annotations

import sympy as sp


def _indicator_sum(x: sp.Symbol, values: list[sp.Expr]) -> sp.Expr:
    r""":math:`\sum_k [x = k]\, v_k` as a Piecewise over outcomes ``0..K-1``."""
    pieces = [(v, sp.Eq(x, k)) for k, v in enumerate(values[:-1])]
    return sp.Piecewise(*pieces, (values[-1], True))
