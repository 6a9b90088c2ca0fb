r"""A normaliser with no closed form, kept as an integral and evaluated by quadrature.

``define_family(..., normalize=True)`` divides by :math:`Z(\theta)`; where SymPy
finds no closed form the log-density becomes

.. math:: \log p_\theta(x) = f_\theta(x) - \log Z(\theta), \qquad
   Z(\theta) = \int_{\mathcal X} e^{f_\theta(x)}\,dx
   \quad\text{(or } \textstyle\sum_{x \in \mathcal X}\text{)}

with :math:`Z` an unevaluated ``sympy.Integral`` (``sympy.Sum`` on counts) over
the support. SymPy differentiates it under the integral sign,
:math:`\partial_\theta Z = \int \partial_\theta e^{f_\theta}`, so the score and
the Hessian stay exact expressions; their integrals depend on :math:`\theta`
only. Numbers come from

* :func:`at_point`: every such integral at a parameter point, by mpmath
  quadrature (split at the integrand's mode and a few widths around it);
* the kernel printer: a sum over the generated module's quadrature rule
  (:mod:`symfisher.codegen.emit`);
* :func:`unnormalized`: :math:`f_\theta` alone, for the generic sampler, which
  normalises by itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import mpmath
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.family import Family
from symfisher.families.normalization import _judge_converged, total_at
from symfisher.families.numeric_total import _end, _mp
from symfisher.families.points import mode_points, random_point

#: Kinds of node a normaliser is written with.
NODES = (sp.Integral, sp.Sum)


def quadrature_log_normalizer(family: Family, n_points: int = 2) -> sp.Expr:
    r""":math:`\log Z(\theta)` as the log of an unevaluated integral (or sum).

    The total is checked to converge, by 30-digit quadrature, at ``n_points``
    random valid parameter points.

    Raises:
      FamilyError: for several variables, or a total that diverges (a
        non-normalisable density), naming the point.
    """
    if len(family.variables) != 1:
        raise FamilyError(
            f"{family.name}: normalize=True supports one variable, "
            f"got {len(family.variables)}"
        )
    (x,) = family.variables
    support = family.supports[0]
    if not isinstance(support, sp.Interval | sp.Range):
        raise FamilyError(
            f"{family.name}: normalize=True needs an interval or a range of "
            f"integers as the support, got {sp.sstr(support)}"
        )
    rng = random.Random(family.definition_hash() + "normalizer")
    for _ in range(n_points):
        point = random_point(family, rng)
        total, err = total_at(family, point)
        _judge_converged(family, point, total, err)
    node = sp.Sum if family.is_discrete else sp.Integral
    z = node(sp.exp(family.log_density), (x, support.inf, support.sup))
    return sp.log(z)


def normalizers(expr: sp.Basic) -> set[sp.Expr]:
    """The unevaluated integrals and sums in ``expr``."""
    return set(expr.atoms(*NODES)) if isinstance(expr, sp.Basic) else set()


def has_normalizer(expr: sp.Basic) -> bool:
    """Whether ``expr`` holds an unevaluated integral or sum (a quadrature normaliser)."""
    return isinstance(expr, sp.Basic) and expr.has(*NODES)


def unnormalized(expr: sp.Expr) -> sp.Expr:
    r""":math:`f_\theta` from :math:`f_\theta - \log Z(\theta)`: every normaliser set to 1."""
    return expr.xreplace(dict.fromkeys(normalizers(expr), sp.Integer(1)))


def at_point(
    expr: sp.Expr, point: Mapping[sp.Symbol, object], dps: int = 30
) -> sp.Expr:
    """``expr`` at ``point`` with every normaliser replaced by its value (``dps`` digits).

    Raises:
      FamilyError: when a normaliser still has free symbols after the
        substitution (``point`` misses a parameter).
    """
    sub = {
        k: sp.Float(v, dps + 5) if isinstance(v, float) else v for k, v in point.items()
    }
    out = expr.subs(sub)
    nodes = normalizers(out)
    if not nodes:
        return out
    values = {}
    for node in nodes:
        if node.free_symbols:
            raise FamilyError(
                f"a normaliser depends on {sorted(map(str, node.free_symbols))}, "
                "which the point does not fix"
            )
        values[node] = sp.Float(value(node, dps), dps)
    return out.xreplace(values)


def value(node: sp.Expr, dps: int = 30) -> mpmath.mpf:
    r"""An integral or sum free of symbols, to ``dps`` digits.

    Integrals by tanh–sinh split at the mode of the integrand's exponential
    factor and at a few widths around it (:func:`mode_points`); sums by
    ``mpmath.nsum``.
    """
    fn, (v, lo, hi) = node.function, node.limits[0]
    with mpmath.workdps(dps + 10):
        f = _mp(fn, v)
        a, b = _end(lo, mpmath.mp.dps), _end(hi, mpmath.mp.dps)
        if isinstance(node, sp.Sum):
            total = mpmath.nsum(lambda k: mpmath.re(f(int(k))), [a, b])
        else:
            logs = sp.Add(
                *[e.args[0] for e in sp.Mul.make_args(fn) if isinstance(e, sp.exp)]
            )
            inner = mode_points(logs, v, float(a), float(b), 2001) if logs != 0 else []
            pts = [a, *sorted({mpmath.mpf(p) for p in inner}), b]
            total = mpmath.quad(lambda t: mpmath.re(f(t)), pts, maxdegree=10)
        return +mpmath.re(total)


def mp_log_density(family: Family) -> Callable[..., mpmath.mpf]:
    r"""``lp(x, *theta)``: :math:`\log p_\theta(x)` in mpmath, normaliser by quadrature."""
    (x,) = family.variables
    f = mp_function(family.log_density, family.params, x)
    return lambda v, *theta: f(*theta, v)


def mp_function(
    expr: sp.Expr,
    params: tuple[sp.Symbol, ...],
    x: sp.Symbol,
    modules: object = "mpmath",
) -> Callable[..., mpmath.mpf]:
    r"""``f(*theta, x)`` in mpmath, with ``expr``'s normalisers evaluated by quadrature.

    The normalisers are evaluated once per :math:`\theta` (cached), so that an
    integral over :math:`x` does not recompute :math:`Z` at every node.
    """
    cache: dict[tuple, Callable] = {}

    def f(*args: mpmath.mpf) -> mpmath.mpf:
        *theta, v = args
        key = tuple(theta)
        if key not in cache:
            dps = mpmath.mp.dps
            point = {
                p: sp.Float(mpmath.nstr(t, dps + 5), dps + 5)
                for p, t in zip(params, theta, strict=True)
            }
            cache[key] = sp.lambdify(
                [x], at_point(expr, point, dps), modules=modules, dummify=True
            )
        return cache[key](v)

    return f
