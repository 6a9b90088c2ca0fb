r"""Closed-form expectations :math:`\mathbb E_\theta[f(x)]`, with provenance.

Strategies, in order:

1. exact sum over a finite support, :math:`\sum_x p_\theta(x) f(x)`;
2. exponential-family moments: :math:`f` is a polynomial in the statistics
   :math:`T_j`, and

   .. math:: \mathbb E\Big[\prod_j T_j^{\alpha_j}\Big] = e^{-A}\,\partial^\alpha e^{A}
      \Big|_{\eta(\theta)},\quad Q_{\alpha + e_j} = \partial_j Q_\alpha + (\partial_j A)\,Q_\alpha;

3. symbolic integration (or summation) over the support, under a time limit,
   after a declared change of variable :math:`x = g(u)` when the family has one,
   or a location–scale standardisation; where the standardised density is a base
   of :mod:`symfisher.derive.logmoments` (Gumbel, logistic, gamma) its terms are
   looked up in that table (exact, each entry tested) instead of integrated;
   every integral is checked numerically at a random point before it is trusted;
4. otherwise *unresolved*.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import mpmath
import sympy as sp

from symfisher.derive.logmoments import Match, identify, moment
from symfisher.errors import SymbolicTimeout
from symfisher.families.family import Family, finite_values
from symfisher.families.moments import NotPolynomial as _NotPolynomial
from symfisher.families.moments import polynomial_moments
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited

FINITE = "exact sum over the finite support"
EXPFAM = "exponential-family moments (E[T^a] = e^-A d^a e^A)"
CUMULANT = "moments from the declared cumulant function K(t)"
INTEGRAL = "symbolic integration over the support"
SUMMATION = "symbolic summation over the support"
LATENT = "symbolic integration after a change of variable x = g(u)"
LOGMOMENTS = "log-moment table of a standard base after a change of variable x = g(u)"
UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class Expectations:
    """Values of several expectations, found by one method.

    Attributes:
      values: closed forms in the order asked, or ``None`` when unresolved.
      method: one of the module's method strings.
      detail: why a method failed or what it assumed.
    """

    values: tuple[sp.Expr, ...] | None
    method: str
    detail: str = ""


def expect(
    family: Family, exprs: Sequence[sp.Expr], seconds: float = 20.0
) -> Expectations:
    r"""Closed forms of :math:`\mathbb E_\theta[f_k(x)]` for every ``f_k`` in ``exprs``.

    Args:
      family: the distribution of :math:`x`.
      exprs: functions of the family's variables and parameters.
      seconds: total time allowed to the symbolic integration strategy.
    """
    exprs = [sp.sympify(e) for e in exprs]
    notes: list[str] = []
    if family.is_finite:
        return Expectations(tuple(_finite_sum(family, f) for f in exprs), FINITE)
    has_moments = family.expfam is not None or family.cumulants is not None
    if has_moments and not family.support_depends_on_params:
        try:
            method = CUMULANT if family.cumulants is not None else EXPFAM
            return Expectations(tuple(_expfam_moments(family, exprs)), method)
        except _NotPolynomial as e:
            notes.append(f"exponential-family moments: {e}")
    try:
        values, method = run_limited(
            lambda: _integrate_all(family, exprs),
            seconds,
            key=fingerprint("expect", seconds, family.definition_text(), exprs),
        )
    except SymbolicTimeout:
        notes.append(f"integration: no closed form within {seconds:g} s")
    except _Unresolved as e:
        notes.append(f"integration: {e}")
    except Exception as e:
        notes.append(f"integration: SymPy failed ({type(e).__name__}: {e})")
    else:
        return Expectations(tuple(values), method, "; ".join(notes))
    return Expectations(None, UNRESOLVED, "; ".join(notes))


# -- finite support ------------------------------------------------------------
def _finite_sum(family: Family, f: sp.Expr) -> sp.Expr:
    grids = [finite_values(s) for s in family.supports]
    total = sp.Integer(0)
    for values in product(*grids):
        sub = dict(zip(family.variables, values, strict=True))
        logp = family.log_density.subs(sub)
        total += sp.exp(logp) * f.subs(sub)
    return total


# -- exponential family --------------------------------------------------------
class _Unresolved(Exception):
    pass


def _moment_source(family: Family) -> tuple[list, list, sp.Expr, dict]:
    """``(atoms, t, K, at)``: cumulant function ``K`` in ``t``, evaluated by ``at``."""
    if family.cumulants is not None:
        c = family.cumulants
        return list(c.atoms), list(c.t), c.K, dict.fromkeys(c.t, 0)
    ef = family.expfam
    assert ef is not None
    idx = ef.atom_indices
    return (
        [ef.T[i] for i in idx],
        [ef.nat[i] for i in idx],
        ef.A,
        dict(zip(ef.nat, ef.eta, strict=True)),
    )


def _expfam_moments(family: Family, exprs: Sequence[sp.Expr]) -> list[sp.Expr]:
    atoms, t, K, at = _moment_source(family)
    return polynomial_moments(atoms, t, K, at, set(family.variables), exprs)


# -- integration -----------------------------------------------------------------
def _integrate_all(
    family: Family, exprs: Sequence[sp.Expr]
) -> tuple[list[sp.Expr], str]:
    """Checked closed forms of every expectation, and the method that found them."""
    sub = _substitution(family)
    if sub is not None:
        u, g, support = sub
        (x,) = family.variables
        logp_u = _log_density_under(family.log_density, x, g, u)
        std = sp.expand(sp.expand_log(sp.simplify(logp_u), force=True))
        dens = _density(std)
        base = identify(std, u, support)
        values, tabled = [], True
        for f in exprs:
            v, t = _substituted_integral(family, f, u, g, dens, support, base)
            # a table lookup is exact (each entry is tested); integrals are checked
            values.append(v if t else _checked(family, f, v))
            tabled = tabled and t
        return values, (LOGMOMENTS if base is not None and tabled else LATENT)
    density = _density(family.log_density)
    if family.is_discrete:
        density = _exp_to_pow(density)  # exp(x log(1-p)) -> (1-p)**x
        values = [
            _checked(family, f, _evaluated(_sum_terms(family, density, f), family))
            for f in exprs
        ]
        return values, SUMMATION
    values = [
        _checked(family, f, _evaluated(_integrate(family, density * f), family))
        for f in exprs
    ]
    return values, INTEGRAL


def _exp_to_pow(e: sp.Expr) -> sp.Expr:
    r""":math:`e^{c\log a} \to a^c`, term by term of the exponent (for summation)."""

    def rewrite(node: sp.Expr) -> sp.Expr:
        out = sp.Integer(1)
        rest = []
        for term in sp.Add.make_args(sp.expand(node.args[0])):
            logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
            if len(logs) == 1:
                out *= logs[0].args[0] ** (term / logs[0])
            else:
                rest.append(term)
        return out * sp.exp(sp.Add(*rest))

    return e.replace(lambda n: isinstance(n, sp.exp), rewrite)


def _sum_terms(family: Family, density: sp.Expr, f: sp.Expr) -> sp.Expr:
    """Term-by-term summation of ``density * f`` over an infinite discrete support."""
    (x,) = family.variables
    s = family.supports[0]
    return sp.Add(
        *[
            _evaluated(sp.summation(density * t, (x, s.inf, s.sup)), family)
            for t in sp.Add.make_args(sp.expand(f))
        ]
    )


def _density(logp: sp.Expr) -> sp.Expr:
    return sp.powsimp(sp.exp(sp.expand(logp)))


def _integrate(family: Family, integrand: sp.Expr) -> sp.Expr:
    out = integrand
    # innermost first: a coordinate's bounds may use earlier ones (the simplex)
    for v, s in reversed(list(zip(family.variables, family.supports, strict=True))):
        if family.is_discrete:
            lo, hi = s.inf, s.sup
            out = sp.summation(out, (v, lo, hi))
        else:
            out = sp.integrate(out, (v, s.inf, s.sup), conds="none")
    return out


def _substitution(family: Family) -> tuple[sp.Symbol, sp.Expr, sp.Set] | None:
    r"""A change of variable :math:`x = g(u)` that makes the integrals easier.

    The family's declared latent variable, else a location–scale
    standardisation :math:`x = \mu + \sigma y` whenever
    :math:`\log p(\mu + \sigma y) + \log\sigma` is free of the parameters.
    """
    if family.latent is not None:
        lat = family.latent
        (x,) = family.variables
        logp_u = sp.simplify(_log_density_under(family.log_density, x, lat.g, lat.u))
        inner = location_scale(family, logp_u, lat.u, lat.support)
        if inner is None:
            return lat.u, lat.g, lat.support
        y, h, support = inner  # standardise the latent variable too
        return y, lat.g.subs(lat.u, h), support
    if len(family.variables) != 1 or family.is_discrete:
        return None
    if family.support_depends_on_params:
        return None
    (x,) = family.variables
    return location_scale(family, family.log_density, x, family.supports[0])


def location_scale(
    family: Family, log_density: sp.Expr, x: sp.Symbol, support: sp.Set
) -> tuple[sp.Symbol, sp.Expr, sp.Set] | None:
    r"""A location-scale (or log-location-scale) standardisation of ``x``.

    Candidates, in order: :math:`x = \mu + \sigma y`, :math:`x = e^{\mu + \sigma y}`,
    :math:`x = s\,e^{c y}` with :math:`c \in \{1/k, k\}` (Weibull:
    :math:`x = \lambda e^{y/k}`). The first that leaves the density of :math:`y`
    free of *every* parameter wins; otherwise the first that removes the
    parameters it uses.
    """
    y = sp.Dummy("y", real=True)
    reals = support == sp.Interval(-sp.oo, sp.oo)
    locs = (
        [p for p in family.params if p.is_real and not p.is_positive] if reals else []
    )
    scales = [p for p in family.params if p.is_positive]
    candidates = [(m, s) for m in [*locs, None] for s in [*scales, None]]
    positive = support == sp.Interval.open(0, sp.oo)
    found = []  # (g, parameters it removes, support of y)
    for loc, scale in candidates:
        if loc is None and scale is None:
            continue
        if loc is None and not (positive or reals):
            continue
        g = (loc if loc is not None else 0) + (scale if scale is not None else 1) * y
        used = {q for q in (loc, scale) if q is not None}
        found.append((g, used, support if loc is None else sp.Interval(-sp.oo, sp.oo)))
    if positive:  # log-location-scale: x = exp(mu + sigma y)
        real_params = [p for p in family.params if p.is_real]
        for loc in real_params:
            for scale in [*scales, None]:
                g = sp.exp(loc + (scale if scale is not None else 1) * y)
                used = {q for q in (loc, scale) if q is not None}
                found.append((g, used, sp.Interval(-sp.oo, sp.oo)))
        for s in scales:  # x = s exp(c y)
            for k in scales:
                for c in (1 / k, k) if k != s else ():
                    found.append(
                        (s * sp.exp(c * y), {s, k}, sp.Interval(-sp.oo, sp.oo))
                    )
    partial = None
    everything = set(family.params)
    for g, used, out in found:
        if not _standardises(log_density, x, g, y, used):
            continue
        if _standardises(log_density, x, g, y, everything):
            return y, g, out
        partial = partial or (y, g, out)
    return partial


def _standardises(
    logp: sp.Expr, x: sp.Symbol, g: sp.Expr, y: sp.Symbol, used: set[sp.Symbol]
) -> bool:
    """Whether the density of ``y`` under ``x = g(y)`` is free of ``used``."""
    std = sp.expand(sp.expand_log(_log_density_under(logp, x, g, y), force=True))
    return not (std.free_symbols & used)


def _log_density_under(
    logp: sp.Expr, x: sp.Symbol, g: sp.Expr, u: sp.Symbol
) -> sp.Expr:
    r""":math:`\log p(g(u)) + \log g'(u)`, the log-density of :math:`u` for monotone increasing :math:`g`."""
    return (logp.subs(x, g) + sp.log(sp.diff(g, u))).replace(*_inverse_rules(u))


def _substituted_integral(
    family: Family,
    f: sp.Expr,
    u: sp.Symbol,
    g: sp.Expr,
    dens: sp.Expr,
    support: sp.Set,
    base: Match | None = None,
) -> tuple[sp.Expr, bool]:
    """``∫ dens(u) f(g(u)) du`` over ``support``, term by term.

    A term the log-moment table of ``base`` covers is looked up; any other is
    integrated by SymPy. Returns the value and whether every term was looked up.
    """
    (x,) = family.variables
    f_u = sp.expand(f.subs(x, g).replace(*_inverse_rules(u)))
    lo, hi = support.inf, support.sup
    values, tabled = [], True
    for term in sp.Add.make_args(f_u):
        v = moment(base, term, u) if base is not None else None
        if v is None:
            tabled = False
            v = sp.integrate(sp.factor(dens * term), (u, lo, hi), conds="none")
            if v.has(sp.Integral) and (dens * term).has(sp.Abs):
                # |a u + c| with the sign of c known (a KL split on a sign)
                pw = sp.piecewise_fold((dens * term).rewrite(sp.Piecewise))
                v = sp.integrate(pw, (u, lo, hi), conds="none")
        values.append(v)
    return _evaluated(sp.Add(*values), family), tabled


def _evaluated(out: sp.Expr, family: Family) -> sp.Expr:
    if out.has(sp.Piecewise):
        out = _valid_branch(sp.piecewise_fold(out), family)
    if out.has(sp.meijerg, sp.hyper):
        out = sp.hyperexpand(out)
    if out.has(sp.Integral, sp.Sum, sp.meijerg, sp.hyper) or out.has(sp.nan, sp.zoo):
        raise _Unresolved("SymPy left an unevaluated integral or special function")
    return out


def _valid_branch(out: sp.Expr, family: Family) -> sp.Expr:
    """The first branch of a Piecewise whose condition holds on the domain.

    Conditions are tested at random valid points; the value is checked
    numerically afterwards in any case.
    """
    if not isinstance(out, sp.Piecewise):
        return out
    from symfisher.derive.numeric import random_point

    rng = random.Random(0)
    points = [random_point(family, rng) for _ in range(8)]
    for expr, cond in out.args:
        if cond == sp.true or all(bool(cond.subs(pt)) for pt in points):
            return expr
    raise _Unresolved("no branch of SymPy's Piecewise result holds on the domain")


def _inverse_rules(u: sp.Symbol) -> tuple:
    """``atanh(tanh(w)) -> w`` and friends, for real ``w``."""
    pairs = {sp.atanh: sp.tanh, sp.asinh: sp.sinh, sp.atan: sp.tan}

    def match(e: sp.Expr) -> bool:
        return (
            isinstance(e, tuple(pairs))
            and isinstance(e.args[0], pairs[type(e)])
            and e.args[0].args[0].is_real
        )

    return match, lambda e: e.args[0].args[0]


def _kinks(family: Family, f: sp.Expr, sub: dict) -> dict[sp.Symbol, float]:
    """Where ``|a x + c|`` in ``f`` has its kink, as extra quadrature breakpoints.

    (The numeric integrator splits at every value of the point it is given.)
    """
    if len(family.variables) != 1:
        return {}
    (x,) = family.variables
    out = {}
    for node in sorted(f.atoms(sp.Abs), key=sp.default_sort_key):
        arg = node.args[0].subs(sub)
        a = sp.diff(arg, x)
        if a.is_number and a != 0:
            root = sp.N(-arg.subs(x, 0) / a, 30)
            if root.is_number and root.is_real:
                out[sp.Symbol(f"_kink{len(out)}")] = float(root)
    return out


#: Digits of the quadrature that checks each symbolic integral (1e-10 relative).
CHECK_DPS = 20


def _checked(family: Family, f: sp.Expr, value: sp.Expr) -> sp.Expr:
    """Trust a symbolic integral only after a numeric check at a random point.

    The check is a quadrature at ``CHECK_DPS`` digits; a gap above 1e-10
    relative (plus ten error estimates) rejects the closed form.
    """
    if value.has(sp.I):
        raise _Unresolved("integration returned a complex value for a real quantity")
    from symfisher.derive.numeric import expectation_numeric, random_point

    rng = random.Random(family.definition_hash() + sp.srepr(f))
    point = random_point(family, rng)
    extra = f.free_symbols - set(family.params) - set(family.variables)
    if extra:  # primed parameters of a KL: a second random point
        other = random_point(family, rng)
        for q in sorted(extra, key=sp.default_sort_key):
            p = family.unprimed(q)
            if p is not None:
                point[q] = other[p]
            elif q.is_positive:  # a gap such as mu - mu' > 0 (a KL split on a sign)
                point[q] = float(mpmath.exp(rng.uniform(-1, 1)))
            else:
                raise _Unresolved(f"cannot check an expectation involving {q}")
    sub = {p: sp.Float(v, 30) for p, v in point.items()}
    got = sp.N(value.subs(sub), 30)
    point.update(_kinks(family, f, sub))
    want, err = expectation_numeric(family, f, point, dps=CHECK_DPS)
    if not got.is_number or not got.is_real:
        raise _Unresolved(f"integral did not evaluate to a real number: {got}")
    scale = max(abs(want), mpmath.mpf(1))
    if abs(mpmath.mpf(str(got)) - want) > mpmath.mpf("1e-10") * scale + 10 * err:
        raise _Unresolved(
            f"symbolic integral failed its numeric check ({got} vs {want})"
        )
    return value
