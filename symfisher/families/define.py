r"""User families: ``define_family`` and ``reparameterize``.

``define_family`` takes a string (parsed safely) or a SymPy expression.

A reparameterisation :math:`\theta = h(\omega)` gives a new family whose Fisher
transforms as a metric tensor, :math:`F_\omega = J^\top F_\theta J`,
:math:`J = \partial\theta/\partial\omega`.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from symfisher.errors import FamilyError, ParseError
from symfisher.families.domains import (
    JOINT_SUPPORTS,
    SUPPORTS,
    domain,
    param_symbol,
    simplex_supports,
    variable_symbol,
)
from symfisher.families.expfam_recognise import recognise_expfam
from symfisher.families.family import Cumulants, ExpFamily, Family
from symfisher.families.normalization import check_normalization, log_normalizer
from symfisher.families.normalizer import has_normalizer, quadrature_log_normalizer
from symfisher.parse import ALLOWED_CONSTANTS, ALLOWED_FUNCTIONS, parse_expr

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise FamilyError(
            f"{what} {name!r} must be an identifier (a letter, then letters, "
            "digits or underscores)"
        )
    return name


def define_family(
    name: str,
    log_density: str | sp.Expr,
    variable: str | Sequence[str] = "x",
    params: Mapping[str, str | sp.Set] | Sequence[str] = (),
    support: str | sp.Set | Sequence[str | sp.Set] = "reals",
    *,
    sampler: Callable[..., Any] | None = None,
    expfam: ExpFamily | None = None,
    description: str = "",
    normalize: bool = False,
) -> Family:
    r"""A family from its log-density.

    The density must integrate (or sum) to 1 over the support: this is checked
    at random valid parameters (symbolically where SymPy is quick, otherwise by
    30-digit quadrature; see :mod:`symfisher.families.normalization`); families
    of several variables are not checked yet. With ``normalize=True`` the
    log-density may be unnormalised instead and :math:`\log Z(\theta)` is
    subtracted: in closed form where SymPy finds one, otherwise as the log of
    an unevaluated integral (or sum) over the support that every numeric
    route evaluates by quadrature (:mod:`symfisher.families.normalizer`).

    Args:
      name: identifier for tables, caches and generated files.
      log_density: :math:`\log p_\theta(x)` as text (parsed safely, never
        evaluated) or a SymPy expression (symbols are matched by name).
      variable: name of the random variable, or a list of names for a
        vector variable (then ``support`` is ``"simplex"`` or one support per
        name).
      params: parameter name to domain (``"real"``, ``"positive"``,
        ``"unit_interval"``, ``"nonnegative"``, ``"negative"`` or a SymPy
        Interval), in order; a plain sequence of names means all real.
      support: ``"reals"``, ``"positive_reals"``, ``"nonnegative_reals"``,
        ``"unit_interval"``, ``"nonnegative_integers"``, ``"positive_integers"``,
        ``"binary"``, ``"range(a, b)"`` (integers a..b-1), ``"interval(a, b)"``
        (open; bounds may use parameters), or a SymPy Set. For several
        variables: ``"simplex"``, the open simplex :math:`x_i > 0`,
        :math:`\sum_i x_i < 1` (a :math:`(k+1)`-component Dirichlet is written
        in its first :math:`k` coordinates, :math:`x_{k+1} = 1 - \sum_i x_i`),
        or a list with one of the above per variable, their product (e.g.
        ``["reals", "positive_reals"]``; an ``interval`` may use the earlier
        variables, ``["unit_interval", "interval(0, 1 - x1)"]``).
      sampler: optional ``sample(key, theta, shape)`` for Monte Carlo checks.
      expfam: optional exponential-family form (unlocks exact moments);
        when not given it is recognised where the log-density is
        :math:`\sum_j \eta_j(\theta) T_j(x) - A(\theta) + \log h(x)` (see
        :mod:`symfisher.families.expfam_recognise`).
      description: one line for tables.
      normalize: divide the density by its normaliser
        :math:`Z(\theta) = \int e^{\log p}` (closed form where SymPy finds
        one, else quadrature; see above).

    Raises:
      FamilyError: naming the parameter, support or symbol that is wrong; the
        total the density integrates to at a parameter point when it is not 1;
        a total that diverges; with ``normalize=True``, a support that is
        neither an interval nor a range of integers.
      ParseError: naming the offending token of a string.
    """
    _check_name(name, "family name")
    vnames = _variable_names(name, variable)
    if isinstance(params, Mapping):
        spec = dict(params)
    else:
        spec = dict.fromkeys(params, "real")
    if not spec:
        raise FamilyError(f"{name}: declare at least one parameter in params")
    psyms: dict[str, sp.Symbol] = {}
    domains = []
    for pname, dom in spec.items():
        _check_name(pname, "parameter name")
        if pname in vnames:
            raise FamilyError(f"{name}: parameter {pname!r} has the variable's name")
        d = domain(dom, pname)
        psyms[pname] = param_symbol(pname, d)
        domains.append(d)
    xs, supps = variables_and_supports(name, vnames, support, psyms)
    table = {**psyms, **{v.name: v for v in xs}}
    if isinstance(log_density, str):
        logp = parse_expr(log_density, table)
    elif isinstance(log_density, sp.Expr):
        logp = _rebind(log_density, table, name)
    else:
        raise FamilyError(
            f"{name}: log_density must be a string or a SymPy expression, "
            f"got {type(log_density).__name__}"
        )
    if logp.has(sp.I, sp.zoo, sp.nan):
        raise FamilyError(f"{name}: log_density is not real-valued: {logp}")
    family = Family(
        name=name,
        params=tuple(psyms.values()),
        domains=tuple(domains),
        variables=xs,
        log_density=logp,
        supports=supps,
        sampler=sampler,
        expfam=expfam,
        description=description or f"user family {name}",
    )
    if normalize:
        logz = log_normalizer(family)
        if (
            logz is None
        ):  # no closed form: Z stays an integral, normalised by construction
            logz = quadrature_log_normalizer(family)
        family = replace(family, log_density=family.log_density - logz)
    if not has_normalizer(family.log_density):
        check_normalization(family)
    if expfam is None and not has_normalizer(family.log_density):
        # (a quadrature normaliser is no closed-form log-partition)
        found = recognise_expfam(family)
        if found is not None:
            family = replace(family, expfam=found)
    return family


def _rebind(expr: sp.Expr, table: Mapping[str, sp.Symbol], name: str) -> sp.Expr:
    """Replace the free symbols of ``expr`` by the declared ones, by name."""
    mapping = {}
    for s in expr.free_symbols:
        if s.name not in table:
            raise FamilyError(
                f"{name}: log_density uses undeclared symbol {s.name!r}; "
                f"declared: {sorted(table)}"
            )
        mapping[s] = table[s.name]
    return expr.xreplace(mapping)


def _variable_names(name: str, variable: str | Sequence[str]) -> list[str]:
    """The variable name(s) as a checked list."""
    names = [variable] if isinstance(variable, str) else list(variable)
    if not names:
        raise FamilyError(f"{name}: declare at least one variable")
    for v in names:
        _check_name(v, "variable name")
    if len(set(names)) != len(names):
        raise FamilyError(f"{name}: variable names repeat: {names}")
    return names


def variables_and_supports(
    name: str,
    variables: Sequence[str],
    support: str | sp.Set | Sequence[str | sp.Set],
    params: Mapping[str, sp.Symbol],
) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Set, ...]]:
    """Variable symbols and one support per variable (see ``define_family``).

    Raises:
      FamilyError: naming the variable and the support when a support is
        unknown, or when the number of supports and variables differ.
    """
    k = len(variables)
    if isinstance(support, str) and support.strip() in JOINT_SUPPORTS:
        xs = tuple(sp.Symbol(v, positive=True) for v in variables)
        return xs, simplex_supports(xs)
    if isinstance(support, str | sp.Set):
        if k == 1:
            specs: list[str | sp.Set] = [support]
        else:
            raise FamilyError(
                f"{name}: support {support!r} is for one variable but there are "
                f"{k} variables {list(variables)}; pass one support per variable, "
                f"e.g. support={[support] * k!r}, or support='simplex'"
            )
    else:
        specs = list(support)
    if len(specs) != k:
        raise FamilyError(
            f"{name}: {len(specs)} supports {specs!r} for {k} variables "
            f"{list(variables)}; give exactly one support per variable"
        )
    xs_list: list[sp.Symbol] = []
    supps: list[sp.Set] = []
    for v, spec in zip(variables, specs, strict=True):
        if isinstance(spec, str) and spec.strip() in JOINT_SUPPORTS:
            raise FamilyError(
                f"{name}: support {spec!r} of variable {v!r} is a joint support "
                f"of all the variables; pass support={spec.strip()!r}, not a list"
            )
        earlier = {x.name: x for x in xs_list}
        try:
            s = parse_support(spec, {**params, **earlier})
        except FamilyError as e:
            raise FamilyError(f"{name}: support of variable {v!r}: {e}") from e
        xs_list.append(variable_symbol(v, s))
        supps.append(s)
    return tuple(xs_list), tuple(supps)


_RANGE = re.compile(r"^\s*(range|interval)\s*\((.*)\)\s*$", re.S)


def parse_support(spec: str | sp.Set, params: Mapping[str, sp.Symbol]) -> sp.Set:
    """A support from its name, ``range(a, b)``, ``interval(a, b)`` or a SymPy Set.

    Raises:
      FamilyError: for an unknown name or a malformed range or interval.
    """
    if isinstance(spec, sp.Set):
        if not spec.is_subset(sp.Reals) and spec.is_subset(sp.Reals) is not None:
            raise FamilyError(f"support must be a set of reals, got {spec}")
        return spec
    if not isinstance(spec, str):
        raise FamilyError(f"support must be a string or a SymPy Set, got {spec!r}")
    if spec in SUPPORTS:
        return SUPPORTS[spec]
    m = _RANGE.match(spec)
    if not m:
        raise FamilyError(
            f"unknown support {spec!r}; expected one of {sorted(SUPPORTS)}, "
            "'range(a, b)', 'interval(a, b)' or a SymPy Set"
        )
    kind, body = m.groups()
    parts = _split_args(body)
    if len(parts) != 2:
        raise FamilyError(f"support {spec!r}: {kind} takes two bounds (a, b)")
    try:
        lo, hi = (parse_expr(p, params) for p in parts)
    except ParseError as e:
        raise FamilyError(f"support {spec!r}: {e}") from e
    if kind == "range":
        if not all(b.is_integer or b in (sp.oo, -sp.oo) for b in (lo, hi)):
            raise FamilyError(f"support {spec!r}: range bounds must be integers or oo")
        if (hi - lo).is_extended_positive is False:
            raise FamilyError(f"support {spec!r}: range is empty (need a < b)")
        return sp.Range(lo, hi)
    if (hi - lo).is_extended_positive is False:
        raise FamilyError(f"support {spec!r}: interval is empty (need a < b)")
    return sp.Interval.open(lo, hi)


def _split_args(body: str) -> list[str]:
    depth, cur, out = 0, [], []
    for ch in body:
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out]


# -- reparameterisation ------------------------------------------------------------
@dataclass(frozen=True)
class ReparamSampler:
    """Sampler of a reparameterised family: map the new parameters, then sample."""

    base: Callable[..., Any]
    old: tuple[sp.Expr, ...]
    new: tuple[sp.Symbol, ...]
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, key: Any, theta: Any, shape: tuple[int, ...] = ()) -> Any:
        r"""Draw from the base family at :math:`\\theta = h(\\omega)`."""
        import jax.numpy as jnp

        fn = self._cache.get("fn")
        if fn is None:
            fn = sp.lambdify([self.new], list(self.old), modules="jax")
            self._cache["fn"] = fn
        old = jnp.stack(
            [jnp.asarray(v, dtype=jnp.result_type(theta)) for v in fn(theta)]
        )
        return self.base(key, old, shape)


def _names_in(text: str) -> list[str]:
    """Identifiers used as values (not called) in ``text``, in order of appearance."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ParseError(f"cannot parse {text!r}: {e.msg} at column {e.offset}") from e
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = [
        n for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called
    ]
    names.sort(key=lambda n: (n.lineno, n.col_offset))
    out: list[str] = []
    for n in names:
        if n.id not in out:
            out.append(n.id)
    return out


def reparameterize(
    family: Family,
    mapping: Mapping[str, str | sp.Expr],
    *,
    params: Mapping[str, str | sp.Set] | None = None,
    name: str | None = None,
) -> Family:
    r"""The family in new parameters :math:`\omega`, with :math:`\theta = h(\omega)`.

    Args:
      family: the family to reparameterise.
      mapping: old parameter name to its expression in new (or kept)
        parameters, e.g. ``{"sigma": "exp(omega)"}``. New names found in the
        expressions become parameters in place of the old one.
      params: domains of the new parameters (default ``"real"``).
      name: name of the new family (default ``<family>_<new names>``).

    Raises:
      FamilyError: for an unknown old parameter, or a map that leaves the old
        parameter's domain at a valid new point.
    """
    old_by_name = {p.name: p for p in family.params}
    unknown = sorted(set(mapping) - set(old_by_name))
    if unknown:
        raise FamilyError(
            f"{family.name}: cannot reparameterise unknown parameter(s) {unknown}; "
            f"parameters are {list(old_by_name)}"
        )
    params = dict(params or {})
    reserved = set(ALLOWED_FUNCTIONS) | set(ALLOWED_CONSTANTS)
    new_syms: dict[str, sp.Symbol] = {}
    kept = {n: s for n, s in old_by_name.items() if n not in mapping}
    order: list[sp.Symbol] = []
    domains: list[sp.Set] = []
    subs: dict[sp.Symbol, sp.Expr] = {}
    for p, dom in zip(family.params, family.domains, strict=True):
        if p.name not in mapping:
            order.append(p)
            domains.append(dom)
            continue
        expr = mapping[p.name]
        names = (
            _names_in(expr)
            if isinstance(expr, str)
            else sorted(s.name for s in expr.free_symbols)
        )
        for n in names:
            if n in kept or n in new_syms or (n in reserved and n not in params):
                continue
            _check_name(n, "parameter name")
            if n in old_by_name:
                raise FamilyError(
                    f"{family.name}: new parameter {n!r} reuses a replaced parameter's name"
                )
            d = domain(params.get(n, "real"), n)
            new_syms[n] = param_symbol(n, d)
            order.append(new_syms[n])
            domains.append(d)
        table = {**kept, **new_syms}
        value = (
            parse_expr(expr, table)
            if isinstance(expr, str)
            else _rebind(expr, table, family.name)
        )
        subs[p] = value
    _check_image(family, subs, order, domains)
    expfam = family.expfam
    if expfam is not None:
        expfam = replace(expfam, eta=tuple(e.subs(subs) for e in expfam.eta))
    cum = family.cumulants
    if cum is not None:
        cum = Cumulants(atoms=cum.atoms, t=cum.t, K=cum.K.subs(subs))
    old_exprs = tuple(subs.get(p, p) for p in family.params)
    sampler = (
        ReparamSampler(family.sampler, old_exprs, tuple(order))
        if family.sampler
        else None
    )
    default = (
        "_".join([family.name, *new_syms]) if new_syms else f"{family.name}_reparam"
    )
    return Family(
        name=_check_name(name or default, "family name"),
        params=tuple(order),
        domains=tuple(domains),
        variables=family.variables,
        log_density=family.log_density.subs(subs),
        supports=tuple(s.subs(subs) for s in family.supports),
        sampler=sampler,
        expfam=expfam,
        cumulants=cum,
        constraints=tuple((c.subs(subs), t) for c, t in family.constraints),
        latent=family.latent,
        size=family.size,
        description=f"{family.description}, reparameterised by "
        + ", ".join(f"{k} = {sp.sstr(v)}" for k, v in subs.items()),
    )


def _check_image(
    family: Family,
    subs: Mapping[sp.Symbol, sp.Expr],
    order: Sequence[sp.Symbol],
    domains: Sequence[sp.Set],
) -> None:
    """Each mapped parameter must land in its old domain at sample new points."""
    import random

    rng = random.Random(0)
    probe = Family(
        name="probe",
        params=tuple(order),
        domains=tuple(domains),
        variables=(),
        log_density=sp.Integer(0),
        supports=(),
    )
    from symfisher.families.points import random_point

    old_dom = dict(zip(family.params, family.domains, strict=True))
    for _ in range(5):
        pt = random_point(probe, rng)
        for p, e in subs.items():
            v = sp.N(e.subs(pt), 30)
            if not (v.is_real and bool(old_dom[p].contains(v))):
                raise FamilyError(
                    f"{family.name}: {p.name} = {sp.sstr(e)} leaves the domain of "
                    f"{p.name} ({sp.sstr(old_dom[p])}) at {dict((k.name, v) for k, v in pt.items())}"
                )
