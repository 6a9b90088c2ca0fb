"""Named parameter domains and supports, and the symbols that carry them."""

from __future__ import annotations

import sympy as sp

from symfisher.errors import FamilyError

#: Parameter domains by name.
DOMAINS: dict[str, sp.Set] = {
    "real": sp.Interval(-sp.oo, sp.oo),
    "positive": sp.Interval.open(0, sp.oo),
    "nonnegative": sp.Interval(0, sp.oo),
    "negative": sp.Interval.open(-sp.oo, 0),
    "unit_interval": sp.Interval.open(0, 1),
}

#: Supports by name.
SUPPORTS: dict[str, sp.Set] = {
    "reals": sp.Interval(-sp.oo, sp.oo),
    "positive_reals": sp.Interval.open(0, sp.oo),
    "nonnegative_reals": sp.Interval(0, sp.oo),
    "unit_interval": sp.Interval.open(0, 1),
    "nonnegative_integers": sp.Range(0, sp.oo),
    "positive_integers": sp.Range(1, sp.oo),
    "binary": sp.FiniteSet(0, 1),
}


#: Joint supports of several variables by name (not products of coordinates).
JOINT_SUPPORTS: tuple[str, ...] = ("simplex",)


def simplex_supports(variables: tuple[sp.Symbol, ...]) -> tuple[sp.Set, ...]:
    r"""The open simplex as iterated intervals, one per variable.

    .. math:: \{x : x_i > 0,\ \textstyle\sum_i x_i < 1\}, \qquad
       x_i \in \big(0,\ 1 - \textstyle\sum_{j<i} x_j\big)

    The bounds of a coordinate may use the *earlier* coordinates (see
    :attr:`symfisher.families.family.Family.supports`). With ``k`` variables
    this is the density space of a ``(k+1)``-component Dirichlet written in its
    first ``k`` coordinates, :math:`x_{k+1} = 1 - \sum_i x_i`.
    """
    out = []
    for i in range(len(variables)):
        out.append(sp.Interval.open(0, 1 - sp.Add(*variables[:i])))
    return tuple(out)


def domain(spec: str | sp.Set, name: str = "parameter") -> sp.Set:
    """Resolve a domain given by name or as a SymPy interval.

    Raises:
      FamilyError: naming ``name`` when the domain is unknown or not real.
    """
    if isinstance(spec, sp.Set):
        if not spec.is_subset(sp.Reals):
            raise FamilyError(f"domain of {name} must be a subset of the reals: {spec}")
        return spec
    try:
        return DOMAINS[spec]
    except KeyError:
        raise FamilyError(
            f"unknown domain {spec!r} for {name}; expected one of "
            f"{sorted(DOMAINS)} or a SymPy Interval"
        ) from None


def assumptions(dom: sp.Set) -> dict[str, bool]:
    """SymPy assumptions implied by a set (``positive=True`` for (0, ∞), …)."""
    out = {"real": True}
    if dom.is_subset(sp.Interval.open(0, sp.oo)) is True:
        out["positive"] = True
    elif dom.is_subset(sp.Interval(0, sp.oo)) is True:
        out["nonnegative"] = True
    elif dom.is_subset(sp.Interval.open(-sp.oo, 0)) is True:
        out["negative"] = True
    return out


def param_symbol(name: str, dom: sp.Set) -> sp.Symbol:
    """A parameter symbol whose assumptions follow its domain."""
    return sp.Symbol(name, **assumptions(dom))


def variable_symbol(name: str, support: sp.Set) -> sp.Symbol:
    """A variable symbol whose assumptions follow its support."""
    kw = assumptions(support) if not support.free_symbols else {"real": True}
    if _integer_support(support):
        kw["integer"] = True
    return sp.Symbol(name, **kw)


def _integer_support(s: sp.Set) -> bool:
    if isinstance(s, sp.Range):
        return True
    if isinstance(s, sp.FiniteSet):
        return all(a.is_integer for a in s.args)
    return False


def real(name: str) -> sp.Symbol:
    """A real parameter symbol."""
    return sp.Symbol(name, real=True)


def positive(name: str) -> sp.Symbol:
    """A positive parameter symbol."""
    return sp.Symbol(name, positive=True)


def set_text(s: sp.Set) -> str:
    """A SymPy set in one line of Unicode: ``ℝ``, ``(0, ∞)``, ``{0, 1}``, ``ℝ × ℝ``."""
    if s == sp.Interval(-sp.oo, sp.oo) or s == sp.S.Reals:
        return "ℝ"
    if isinstance(s, sp.ProductSet):
        return " × ".join(set_text(a) for a in s.args)
    text = sp.pretty(s, use_unicode=True)
    return text if "\n" not in text else sp.sstr(s)
