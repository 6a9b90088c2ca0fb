r"""A change of variable for :math:`x`: the family of :math:`y = g(x)`.

For a strictly monotone :math:`g` with inverse :math:`h = g^{-1}`,

.. math:: \log p_Y(y) = \log p_X(h(y)) + \log\lvert h'(y)\rvert,
   \qquad \mathcal Y = g(\mathcal X).

The Fisher information is unchanged (the score of :math:`y` is the score of
:math:`x = h(y)`), which the tests check. :math:`g` may use :math:`x` and
constants, not the parameters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sympy as sp

from symfisher.errors import FamilyError, SymbolicTimeout
from symfisher.families.define import _check_name, _rebind
from symfisher.families.domains import variable_symbol
from symfisher.families.family import Cumulants, Family, Latent
from symfisher.families.points import random_point
from symfisher.parse import parse_expr
from symfisher.timelimit import run_limited

#: Seconds SymPy gets for the inverse and for each limit at an infinite end.
SECONDS = 5.0

#: Inverses of the one-argument functions :func:`_peel` undoes.
_INVERSES: dict[type, Callable[[sp.Expr], sp.Expr]] = {
    sp.exp: sp.log,
    sp.log: sp.exp,
    sp.tanh: sp.atanh,
    sp.atanh: sp.tanh,
    sp.sinh: sp.asinh,
    sp.asinh: sp.sinh,
    sp.atan: sp.tan,
}


@dataclass(frozen=True)
class PushforwardSampler:
    """Sampler of a pushed-forward family: sample :math:`x`, return :math:`g(x)`."""

    base: Callable[..., Any]
    g: sp.Expr
    x: sp.Symbol
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, key: Any, theta: Any, shape: tuple[int, ...] = ()) -> Any:
        """Draw :math:`x` from the base family and map it through :math:`g`."""
        import jax.numpy as jnp

        fn = self._cache.get("fn")
        if fn is None:
            fn = sp.lambdify([self.x], self.g, modules="jax")
            self._cache["fn"] = fn
        xs = self.base(key, theta, shape)
        return jnp.asarray(fn(xs), dtype=xs.dtype) * jnp.ones_like(xs)


def pushforward(
    family: Family,
    expression: str | sp.Expr,
    variable: str = "y",
    *,
    name: str | None = None,
) -> Family:
    r"""The family of :math:`y = g(x)` for a strictly monotone :math:`g`.

    Args:
      family: a family of one continuous variable :math:`x`.
      expression: :math:`g(x)` as text (parsed safely, never evaluated) or a
        SymPy expression; it may use the family's variable and constants, e.g.
        ``"-2 + 4*(x + 1)/2"`` or ``"exp(x)"``.
      variable: name of the new variable :math:`y`.
      name: name of the new family (default ``<family>_pushforward``).

    Returns:
      A family with log-density :math:`\log p_X(h(y)) + \log|h'(y)|`, the
      support mapped, the exponential-family form and cumulants carried over
      (:math:`T(h(y))`), and, where ``family`` has a sampler, the sampler
      mapped through :math:`g`.

    Raises:
      FamilyError: for a family with several or discrete variables, a ``g``
        that uses the parameters, is not strictly monotone on the support, or
        has no unique inverse that SymPy finds.
      ParseError: naming the offending token of ``expression``.
    """
    if len(family.variables) != 1:
        raise FamilyError(
            f"{family.name}: pushforward needs one variable, "
            f"got {len(family.variables)}"
        )
    if family.is_discrete or family.is_finite:
        raise FamilyError(
            f"{family.name}: pushforward needs a continuous support; "
            f"{family.x} takes values in {sp.sstr(family.supports[0])}"
        )
    x = family.x
    _check_name(variable, "variable name")
    new_name = _check_name(name or f"{family.name}_pushforward", "family name")
    if variable in family.param_names:
        raise FamilyError(f"{family.name}: variable {variable!r} names a parameter")
    table = {x.name: x, **{p.name: p for p in family.params}}
    if isinstance(expression, str):
        g = parse_expr(expression, table)
    elif isinstance(expression, sp.Expr):
        g = _rebind(expression, table, family.name)
    else:
        raise FamilyError(
            f"{family.name}: expression must be a string or a SymPy expression, "
            f"got {type(expression).__name__}"
        )
    text = sp.sstr(g)
    used = sorted(p.name for p in g.free_symbols & set(family.params))
    if used:
        raise FamilyError(
            f"{family.name}: g(x) = {text} uses the parameter(s) {used}; a change "
            "of variable must not depend on the parameters"
        )
    if x not in g.free_symbols:
        raise FamilyError(f"{family.name}: g(x) = {text} does not depend on {x}")
    support = family.supports[0]
    if not isinstance(support, sp.Interval):
        raise FamilyError(
            f"{family.name}: pushforward needs an interval support, "
            f"got {sp.sstr(support)}"
        )
    rng = random.Random(family.definition_hash() + sp.srepr(g))
    point = random_point(family, rng)
    dg = sp.diff(g, x)
    sign = _monotone_sign(family, g, dg, support.subs(point), text)
    new_support = _image(family, g, support, sign, text)
    y = variable_symbol(variable, new_support)
    candidates = _inverses(family, g, x, y, text)
    h = _unique_inverse(family, g, candidates, x, y, support, new_support, point, text)
    jacobian = _log_abs_derivative(h, y, sign, new_support.subs(point))
    logp = _tidy_logs(family.log_density.subs(x, h) + jacobian)
    expfam = family.expfam
    if expfam is not None:
        expfam = replace(
            expfam,
            T=tuple(sp.sympify(t).subs(x, h) for t in expfam.T),
            log_h=sp.sympify(expfam.log_h).subs(x, h) + jacobian,
        )
    cum = family.cumulants
    if cum is not None:
        atoms = tuple(sp.sympify(a).subs(x, h) for a in cum.atoms)
        cum = Cumulants(atoms=atoms, t=cum.t, K=cum.K)
    sampler = PushforwardSampler(family.sampler, g, x) if family.sampler else None
    return Family(
        name=new_name,
        params=family.params,
        domains=family.domains,
        variables=(y,),
        log_density=logp,
        supports=(new_support,),
        sampler=sampler,
        expfam=expfam,
        cumulants=cum,
        constraints=family.constraints,
        latent=_latent(family, g, sign, variable),
        size=family.size,
        description=f"{family.description}, pushed forward by {variable} = {text}",
    )


def _grid(support: sp.Set, spread: float = 30.0) -> np.ndarray:
    """Float points over an interval support (ends excluded); ``spread`` sets how far."""
    a, b = float(support.inf), float(support.sup)
    t = np.linspace(-spread, spread, 241)
    if np.isfinite(a) and np.isfinite(b):
        pts = a + (b - a) / (1.0 + np.exp(-t / 3))
    elif np.isfinite(a):
        pts = a + np.exp(t / 3)
    elif np.isfinite(b):
        pts = b - np.exp(t / 3)
    else:
        pts = np.sinh(t / 3)
    return pts[(pts > a) & (pts < b)]


def _monotone_sign(
    family: Family, g: sp.Expr, dg: sp.Expr, support: sp.Set, text: str
) -> int:
    """+1 or -1: the sign of :math:`g'` on the support, checked on a grid.

    Raises:
      FamilyError: where :math:`g'` takes both signs or vanishes everywhere.
    """
    (x,) = family.variables
    if dg.is_positive:
        return 1
    if dg.is_negative:
        return -1
    pts = _grid(support)
    fn = sp.lambdify([x], dg, modules=["scipy", "numpy"], dummify=True)
    with np.errstate(all="ignore"):
        vals = np.asarray(fn(pts), dtype=float) * np.ones_like(pts)
    ok = np.isfinite(vals)
    up, down = pts[ok & (vals > 0)], pts[ok & (vals < 0)]
    if len(up) and len(down):
        raise FamilyError(
            f"{family.name}: g(x) = {text} is not monotone on the support "
            f"{sp.sstr(support)}: g' > 0 at x={up[0]:.4g} but g' < 0 at "
            f"x={down[0]:.4g}"
        )
    if not (len(up) or len(down)):
        raise FamilyError(
            f"{family.name}: g(x) = {text} is not strictly monotone on the "
            f"support {sp.sstr(support)} (g' = {sp.sstr(dg)})"
        )
    return 1 if len(up) else -1


def _end_value(
    family: Family, g: sp.Expr, end: sp.Expr, direction: str, text: str
) -> sp.Expr:
    """:math:`g` at a support end, as a one-sided limit where it is singular."""
    (x,) = family.variables
    if not end.is_infinite:
        v = g.subs(x, end)
        if v.is_finite and v.is_real:
            return v
    try:
        v = run_limited(lambda: sp.limit(g, x, end, dir=direction), SECONDS)
    except SymbolicTimeout:
        v = None
    if v is None or isinstance(v, sp.Limit) or not v.is_extended_real:
        raise FamilyError(
            f"{family.name}: cannot find the limit of g(x) = {text} as {x} -> {end}"
        )
    return v


def _image(
    family: Family, g: sp.Expr, support: sp.Interval, sign: int, text: str
) -> sp.Interval:
    r"""The interval :math:`g(\mathcal X)`, with the same openness at each end."""
    ga = _end_value(family, g, support.inf, "+", text)
    gb = _end_value(family, g, support.sup, "-", text)
    if sign > 0:
        return sp.Interval(ga, gb, support.left_open, support.right_open)
    return sp.Interval(gb, ga, support.right_open, support.left_open)


def _log_abs_derivative(
    h: sp.Expr, y: sp.Symbol, sign: int, support: sp.Set
) -> sp.Expr:
    r""":math:`\log|h'(y)|` as :math:`\log n - \log d` with :math:`n, d > 0`.

    ``sign`` is the sign of :math:`h'` on the support; the signs of the
    numerator and denominator are read at one point of the support.
    """
    num, den = sp.fraction(sp.cancel(sign * sp.diff(h, y)))
    grid = _grid(support)
    if sp.N(num.subs(y, float(grid[len(grid) // 2]))).is_negative:
        num, den = -num, -den
    return sp.log(num) - sp.log(den)


def _tidy_logs(expr: sp.Expr) -> sp.Expr:
    r"""Logs of combined fractions, split where SymPy knows the signs.

    :math:`\log(1 - e^y/(e^y + 1))` becomes :math:`-\log(e^y + 1)`, which
    neither float64 nor 30 digits turn into :math:`\log 0` for large :math:`y`.
    A log is replaced only where that shortens it; the expression is left as it
    is if SymPy takes too long.
    """

    def tidy(e: sp.log) -> sp.Expr:
        out = sp.expand_log(sp.log(sp.factor(sp.together(e.args[0]))))
        return out if sp.count_ops(out) < sp.count_ops(e) else e

    try:
        return run_limited(
            lambda: expr.replace(lambda e: isinstance(e, sp.log), tidy), SECONDS
        )
    except SymbolicTimeout:
        return expr


def _peel(g: sp.Expr, x: sp.Symbol, y: sp.Expr) -> sp.Expr | None:
    """Invert ``g`` by undoing one operation at a time (``x`` must occur once).

    Returns ``None`` when ``g`` is not built that way.
    """
    if g == x:
        return y
    if g.count(x) != 1:
        return None
    if isinstance(g, sp.Add | sp.Mul):
        inner = [a for a in g.args if a.has(x)]
        rest = g.func(*[a for a in g.args if not a.has(x)])
        y = y - rest if isinstance(g, sp.Add) else y / rest
        return _peel(inner[0], x, y)
    if isinstance(g, sp.Pow) and g.exp == -1:
        return _peel(g.base, x, 1 / y)
    if isinstance(g, tuple(_INVERSES)) and len(g.args) == 1:
        return _peel(g.args[0], x, _INVERSES[type(g)](y))
    return None


def _inverses(
    family: Family, g: sp.Expr, x: sp.Symbol, y: sp.Symbol, text: str
) -> list[sp.Expr]:
    """Candidates for :math:`h = g^{-1}`: peeled, else from ``sympy.solve``."""
    h = _peel(g, x, y)
    if h is not None:
        return [h]
    try:
        roots = run_limited(lambda: sp.solve(sp.Eq(y, g), x), SECONDS)
    except SymbolicTimeout:
        raise FamilyError(
            f"{family.name}: no inverse of g(x) = {text} found within {SECONDS:g} s"
        ) from None
    except Exception as e:  # SymPy's own failures
        raise FamilyError(
            f"{family.name}: SymPy cannot invert g(x) = {text} ({type(e).__name__})"
        ) from e
    roots = [r for r in roots if not r.has(sp.I)]
    if not roots:
        raise FamilyError(f"{family.name}: no real inverse of g(x) = {text} found")
    return roots


def _unique_inverse(
    family: Family,
    g: sp.Expr,
    candidates: list[sp.Expr],
    x: sp.Symbol,
    y: sp.Symbol,
    support: sp.Set,
    new_support: sp.Set,
    point: dict,
    text: str,
) -> sp.Expr:
    """The one candidate that maps the new support back into the old one."""
    ys = [float(v) for v in _grid(new_support.subs(point), 12.0)[::20]]
    old = support.subs(point)
    good = []
    for cand in candidates:
        ok = True
        for v in ys:
            xv = sp.N(cand.subs(point).subs(y, sp.Float(v, 40)), 30)
            if not (xv.is_real and bool(old.contains(xv))):
                ok = False
                break
            back = sp.N(g.subs(point).subs(x, xv), 30)
            if not back.is_real or abs(float(back) - v) > 1e-9 * (1 + abs(v)):
                ok = False
                break
        if ok:
            good.append(cand)
    if len(good) != 1:
        found = ", ".join(sp.sstr(c) for c in candidates)
        raise FamilyError(
            f"{family.name}: no unique inverse of g(x) = {text} on the support "
            f"{sp.sstr(support)} (candidates: {found})"
        )
    return good[0]


def _latent(family: Family, g: sp.Expr, sign: int, variable: str) -> Latent | None:
    r"""A latent :math:`u` with :math:`y = G(u)`, :math:`G` increasing, for integration.

    The family's own latent variable when it has one (composed with
    :math:`g`), else :math:`x` itself; a decreasing :math:`g` integrates over
    :math:`-u`.
    """
    (x,) = family.variables
    if family.latent is not None:
        u, inner, support = family.latent.u, family.latent.g, family.latent.support
    else:
        u, inner, support = x, x, family.supports[0]
    if u.name == variable:
        return None
    outer = g.subs(x, inner)
    if sign < 0:
        r = sp.Symbol(f"{u.name}_reflected", real=True)
        outer = outer.subs(u, -r)
        support = sp.Interval(
            -support.sup, -support.inf, support.right_open, support.left_open
        )
        u = r
    return Latent(u=u, g=outer, support=support)
