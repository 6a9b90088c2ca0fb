r"""A parametric family as data: parameters, domains, variable, log-density.

.. math:: \log p_\theta(x), \quad \theta \in \Theta = \prod_i D_i, \quad x \in \mathcal{X}
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symfisher.errors import DomainError, FamilyError
from symfisher.families.domains import set_text

Sampler = Callable[..., Any]


@dataclass(frozen=True)
class ExpFamily:
    r"""Exponential-family form of a log-density.

    .. math:: \log p_\theta(x) = \eta(\theta)\cdot T(x) - A(\eta(\theta)) + \log h(x)

    Attributes:
      eta: natural parameters as expressions in the family's parameters.
      T: sufficient statistics as expressions in the variable(s).
      A: log-partition as an expression in the symbols ``nat``.
      nat: one symbol per natural parameter, the free symbols of ``A``.
      log_h: base measure :math:`\log h(x)`.
      atoms: indices into ``T`` whose products generate every statistic the
        derivation meets (for a Gaussian, ``x`` alone: :math:`x^2 = x\cdot x`).
        ``None`` means all of ``T``.
    """

    eta: tuple[sp.Expr, ...]
    T: tuple[sp.Expr, ...]
    A: sp.Expr
    nat: tuple[sp.Symbol, ...]
    log_h: sp.Expr
    atoms: tuple[int, ...] | None = None

    @property
    def atom_indices(self) -> tuple[int, ...]:
        """Indices of the generating statistics."""
        return tuple(range(len(self.T))) if self.atoms is None else self.atoms


@dataclass(frozen=True)
class Cumulants:
    r"""Joint cumulant function of some statistics ("atoms") of :math:`x`.

    .. math:: K(t) = \log \mathbb E_\theta\big[e^{t\cdot a(x)}\big], \qquad
       \mathbb E\Big[\prod_j a_j^{\alpha_j}\Big] = e^{-K}\partial^\alpha e^{K}\Big|_{t=0}

    Attributes:
      atoms: statistics :math:`a_j(x)` whose polynomials the derivation meets.
      t: one symbol per atom.
      K: the cumulant function in ``t`` and the family's parameters.
    """

    atoms: tuple[sp.Expr, ...]
    t: tuple[sp.Symbol, ...]
    K: sp.Expr


@dataclass(frozen=True)
class Latent:
    r"""A change of variable :math:`x = g(u)` that the derivation may integrate over.

    Expectations become :math:`\mathbb{E}[f(x)] = \int f(g(u))\, p(g(u))\,|g'(u)|\,du`.
    """

    u: sp.Symbol
    g: sp.Expr
    support: sp.Set


@dataclass(frozen=True)
class Family:
    r"""A parametric family :math:`p_\theta(x)` defined by one SymPy log-density.

    Attributes:
      name: catalog or user name.
      params: ordered parameters :math:`\theta`; this order fixes every vector.
      domains: one SymPy set per parameter (what valid input is).
      variables: the random variable(s) :math:`x`; several for vector families.
      log_density: :math:`\log p_\theta(x)` (density or mass).
      supports: one SymPy set per variable; the support is their product,
        except that the bounds of an interval may use *earlier* variables: the
        support is then the iterated region, e.g. the open simplex
        :math:`x_1 \in (0, 1)`, :math:`x_2 \in (0, 1 - x_1)`.
      sampler: ``sample(key, theta, shape)`` in JAX, or ``None``.
      expfam: exponential-family form, when declared.
      cumulants: a cumulant function of atoms of :math:`x`, when declared (it
        takes precedence over ``expfam`` for moments).
      constraints: joint constraints on the parameters with a description,
        e.g. :math:`\sum_k p_k < 1`.
      latent: an optional change of variable for integration.
      size: size keywords the family was built with, e.g. ``(("K", 3),)``.
      description: one line for tables and documentation.
    """

    name: str
    params: tuple[sp.Symbol, ...]
    domains: tuple[sp.Set, ...]
    variables: tuple[sp.Symbol, ...]
    log_density: sp.Expr
    supports: tuple[sp.Set, ...]
    sampler: Sampler | None = field(default=None, compare=False, repr=False)
    expfam: ExpFamily | None = None
    cumulants: Cumulants | None = None
    constraints: tuple[tuple[sp.Basic, str], ...] = ()
    latent: Latent | None = None
    size: tuple[tuple[str, int], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.params) != len(self.domains):
            raise FamilyError(
                f"{self.name}: {len(self.params)} parameters but "
                f"{len(self.domains)} domains"
            )
        if len(self.variables) != len(self.supports):
            raise FamilyError(
                f"{self.name}: {len(self.variables)} variables but "
                f"{len(self.supports)} supports"
            )
        for i, (v, s) in enumerate(zip(self.variables, self.supports, strict=True)):
            later = s.free_symbols & set(self.variables[i:])
            if later:
                raise FamilyError(
                    f"{self.name}: the support of {v} ({sp.sstr(s)}) may use only "
                    f"earlier variables, not {sorted(map(str, later))}"
                )
        names = [str(p) for p in self.params] + [str(v) for v in self.variables]
        if len(set(names)) != len(names):
            raise FamilyError(f"{self.name}: parameter/variable names repeat: {names}")
        free = self.log_density.free_symbols
        unknown = free - set(self.params) - set(self.variables)
        if unknown:
            raise FamilyError(
                f"{self.name}: log_density uses undeclared symbols "
                f"{sorted(map(str, unknown))}"
            )

    # -- views ---------------------------------------------------------------
    @property
    def x(self) -> sp.Symbol:
        """The variable of a scalar family."""
        if len(self.variables) != 1:
            raise FamilyError(f"{self.name}: has {len(self.variables)} variables")
        return self.variables[0]

    @property
    def support(self) -> sp.Set:
        """Support of :math:`x`: one set, or the product of the coordinates' sets.

        For an iterated region (:attr:`support_is_product` false), the
        ``ConditionSet`` of the points that meet every coordinate's bounds.
        """
        if len(self.supports) == 1:
            return self.supports[0]
        if self.support_is_product:
            return sp.ProductSet(*self.supports)
        cond = sp.And(
            *[
                s.as_relational(v)
                for v, s in zip(self.variables, self.supports, strict=True)
            ]
        )
        reals = sp.ProductSet(*[sp.Reals for _ in self.variables])
        return sp.ConditionSet(sp.Tuple(*self.variables), cond, reals)

    @property
    def support_is_product(self) -> bool:
        """False when some coordinate's bounds depend on another coordinate."""
        vs = set(self.variables)
        return not any(s.free_symbols & vs for s in self.supports)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in order."""
        return tuple(str(p) for p in self.params)

    @property
    def n_params(self) -> int:
        """Number of parameters :math:`P`."""
        return len(self.params)

    @property
    def is_finite(self) -> bool:
        """True when every coordinate has finite support (exact sums apply)."""
        return all(finite_values(s) is not None for s in self.supports)

    @property
    def is_discrete(self) -> bool:
        """True when every coordinate takes integer values."""
        return all(_is_integer_set(s) for s in self.supports)

    @property
    def support_depends_on_params(self) -> tuple[sp.Symbol, ...]:
        """Parameters the support depends on (non-empty means non-regular)."""
        used: set[sp.Symbol] = set()
        for s in self.supports:
            used |= s.free_symbols & set(self.params)
        return tuple(p for p in self.params if p in used)

    def primed(self) -> tuple[sp.Symbol, ...]:
        r"""Primed copies :math:`\theta'` of the parameters, same assumptions.

        Their names end in ``'`` (``mu'``); :meth:`unprimed` maps them back.
        """
        return tuple(sp.Symbol(f"{p.name}'", **p.assumptions0) for p in self.params)

    def unprimed(self, symbol: sp.Symbol) -> sp.Symbol | None:
        """The parameter whose primed copy is ``symbol``, or ``None``."""
        for p, q in zip(self.params, self.primed(), strict=True):
            if q == symbol:
                return p
        return None

    # -- identity ------------------------------------------------------------
    def definition_text(self) -> str:
        """Canonical text of everything that defines the family's mathematics."""
        parts = [
            f"name={self.name}",
            f"params={sp.srepr(self.params)}",
            f"domains={sp.srepr(self.domains)}",
            f"variables={sp.srepr(self.variables)}",
            f"log_density={sp.srepr(self.log_density)}",
            f"supports={sp.srepr(self.supports)}",
            f"constraints={sp.srepr(tuple(c for c, _ in self.constraints))}",
            f"size={self.size!r}",
        ]
        if self.expfam is not None:
            e = self.expfam
            parts.append(
                "expfam=" + sp.srepr((e.eta, e.T, e.A, e.nat, e.log_h)) + repr(e.atoms)
            )
        if self.cumulants is not None:
            c = self.cumulants
            parts.append("cumulants=" + sp.srepr((c.atoms, c.t, c.K)))
        if self.latent is not None:
            lat = self.latent
            parts.append("latent=" + sp.srepr((lat.u, lat.g, lat.support)))
        return "\n".join(parts)

    def definition_hash(self) -> str:
        """SHA-256 of :meth:`definition_text`."""
        return hashlib.sha256(self.definition_text().encode()).hexdigest()

    # -- points --------------------------------------------------------------
    def point(
        self, values: Mapping[Any, Any] | Sequence[Any]
    ) -> dict[sp.Symbol, float]:
        """Validate a parameter point and return it keyed by parameter symbol.

        Args:
          values: a mapping from parameter name (or symbol) to a real number, or
            a sequence in ``params`` order.

        Raises:
          DomainError: naming the missing, extra or out-of-domain parameter and
            the constraint it breaks.
        """
        by_name = {p.name: p for p in self.params}
        if isinstance(values, Mapping):
            keys = {str(k): v for k, v in values.items()}
            extra = sorted(set(keys) - set(by_name))
            missing = [n for n in by_name if n not in keys]
            if extra:
                raise DomainError(
                    f"{self.name}: unknown parameter(s) {extra}; "
                    f"expected {list(by_name)}"
                )
            if missing:
                raise DomainError(
                    f"{self.name}: missing parameter(s) {missing}; "
                    f"expected {list(by_name)}"
                )
            raw = [keys[n] for n in by_name]
        else:
            raw = list(values)
            if len(raw) != len(self.params):
                raise DomainError(
                    f"{self.name}: expected {len(self.params)} values "
                    f"{list(by_name)}, got {len(raw)}"
                )
        out: dict[sp.Symbol, float] = {}
        for p, dom, v in zip(self.params, self.domains, raw, strict=True):
            try:
                fv = float(v)
            except (TypeError, ValueError) as e:
                raise DomainError(
                    f"{self.name}: parameter {p.name}={v!r} is not a real number"
                ) from e
            if not math.isfinite(fv):
                raise DomainError(f"{self.name}: parameter {p.name}={fv} is not finite")
            if not bool(dom.contains(sp.Float(fv))):
                raise DomainError(
                    f"{self.name}: parameter {p.name}={fv} is outside its domain "
                    f"{p.name} ∈ {set_text(dom)}"
                )
            out[p] = fv
        for cond, text in self.constraints:
            ok = cond.subs({p: sp.Float(v) for p, v in out.items()})
            if ok is not sp.true:
                raise DomainError(f"{self.name}: constraint violated: {text}")
        return out


#: Finite ranges longer than this are treated like count supports (summed with a
#: bounded tail), never listed element by element.
MAX_FINITE = 2**16


def finite_values(s: sp.Set) -> tuple[sp.Expr, ...] | None:
    """The elements of a finite set, or ``None`` when infinite, symbolic or huge."""
    if isinstance(s, sp.FiniteSet):
        return tuple(s.args)
    if (
        isinstance(s, sp.Range)
        and s.size.is_finite
        and s.size.is_number
        and s.size <= MAX_FINITE
    ):
        return tuple(s)
    return None


def _is_integer_set(s: sp.Set) -> bool:
    if isinstance(s, sp.Range):
        return True
    if isinstance(s, sp.FiniteSet):
        return all(a.is_integer for a in s.args)
    return s.is_subset(sp.Integers) is True


def check_size(name: str, key: str, value: int, least: int) -> None:
    """Validate a size keyword (``K``, ``d``) of a size-generic family.

    Raises:
      FamilyError: naming the family, the keyword and the bound.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise FamilyError(
            f"{name}: size {key} must be an integer >= {least}, got {value!r}"
        )
