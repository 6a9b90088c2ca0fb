"""Hypothesis strategies of valid parameters and directions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symfisher.errors import DomainError, FamilyError


def _family_object(family: Any) -> Any:
    if isinstance(family, str):
        from symfisher.families.catalog import family as catalog_family

        return catalog_family(family)
    if hasattr(family, "params") and hasattr(family, "domains"):
        return family
    raise FamilyError(
        f"family must be a catalog name or a family object; got {family!r}"
    )


def _hypothesis():
    try:
        from hypothesis import strategies as st
    except ImportError as e:  # pragma: no cover - hypothesis is a test extra
        raise ImportError(
            "symfisher.testing strategies need Hypothesis: pip install hypothesis"
        ) from e
    return st


def params_strategy(
    family: Any,
    *,
    real_bound: float = 3.0,
    log_bound: float = 2.0,
    unit_margin: float = 0.02,
):
    r"""A Hypothesis strategy of valid parameter vectors of ``family``, shape ``(P,)``.

    Each parameter is drawn inside its domain, moderate in scale:

    * real line: uniform-ish on :math:`[-\text{real\_bound}, \text{real\_bound}]`;
    * half-lines :math:`(a, \infty)`: :math:`a + e^{u}`,
      :math:`u \in [-\text{log\_bound}, \text{log\_bound}]` (likewise
      :math:`(-\infty, b)`);
    * intervals :math:`(a, b)`: the inner :math:`1 - 2\,\text{unit\_margin}` of it.

    Joint constraints (the simplex of ``categorical``) are met by construction
    for ``categorical`` (normalised positive weights) and by filtering otherwise.

    Args:
      family: a catalog name or a family object.
      real_bound: bound of real-valued parameters.
      log_bound: bound of the log-offset of half-line parameters.
      unit_margin: margin kept from the ends of bounded intervals.

    Returns:
      ``SearchStrategy[numpy.ndarray]`` of float64 vectors in family order.

    Example:
      >>> from hypothesis import given
      >>> @given(theta=params_strategy("gamma"))
      ... def test_mine(theta): ...
    """
    import sympy as sp

    st = _hypothesis()
    fam_obj = _family_object(family)
    if not (real_bound > 0 and log_bound > 0 and 0 <= unit_margin < 0.5):
        raise ValueError(
            "real_bound and log_bound must be > 0 and unit_margin in [0, 0.5); got "
            f"{real_bound!r}, {log_bound!r}, {unit_margin!r}"
        )

    def one(dom):
        lo, hi = dom.inf, dom.sup
        if lo == -sp.oo and hi == sp.oo:
            return st.floats(-real_bound, real_bound)
        offsets = st.floats(-log_bound, log_bound).map(math.exp)
        if hi == sp.oo:
            return offsets.map(lambda e, a=float(lo): a + e)
        if lo == -sp.oo:
            return offsets.map(lambda e, b=float(hi): b - e)
        a, b = float(lo), float(hi)
        return st.floats(a + unit_margin * (b - a), b - unit_margin * (b - a))

    if fam_obj.name == "categorical" and fam_obj.constraints:
        K = len(fam_obj.params) + 1
        weights = st.lists(
            st.floats(-log_bound, log_bound).map(math.exp), min_size=K, max_size=K
        )
        return weights.map(lambda w: np.asarray(w[:-1], float) / sum(w))

    vec = st.tuples(*(one(d) for d in fam_obj.domains)).map(
        lambda t: np.asarray(t, float)
    )
    if not fam_obj.constraints:
        return vec

    def valid(theta: np.ndarray) -> bool:
        try:
            fam_obj.point(list(theta))
        except DomainError:
            return False
        return True

    return vec.filter(valid)


def direction_strategy(family: Any, *, bound: float = 3.0):
    """A Hypothesis strategy of directions ``v`` of shape ``(P,)``, entries in ``[-bound, bound]``.

    Args:
      family: a catalog name or a family object (fixes ``P``).
      bound: largest absolute entry.
    """
    st = _hypothesis()
    P = len(_family_object(family).params)
    return st.tuples(*(st.floats(-bound, bound) for _ in range(P))).map(
        lambda t: np.asarray(t, float)
    )
