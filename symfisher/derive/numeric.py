r"""High-precision numeric expectations (mpmath), the route that always answers.

.. math:: \mathbb E_\theta[f] = \int_{\mathcal X} p_\theta(x) f(x)\,dx
   \quad\text{or}\quad \sum_{x} p_\theta(x) f(x)

Quadrature is tanh–sinh at ``DPS`` digits, split at the parameter values that
fall inside the support (location-like parameters) and at 0; infinite sums
use ``mpmath.nsum``. Each value comes with an error estimate.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence

import mpmath
import sympy as sp

from symfisher.errors import DerivationError, FamilyError
from symfisher.families import points
from symfisher.families.family import Family, finite_values
from symfisher.families.normalizer import at_point
from symfisher.timelimit import run_limited

#: Working precision (decimal digits) of numeric expectations.
DPS = 50


def random_point(
    family: Family, rng: random.Random, tries: int = 1000
) -> dict[sp.Symbol, float]:
    """A random valid parameter point (:func:`symfisher.families.points.random_point`).

    Raises:
      DerivationError: when ``tries`` draws give no valid point.
    """
    try:
        return points.random_point(family, rng, tries)
    except FamilyError as e:
        raise DerivationError(str(e)) from e


#: The variable of a quadrature segment (the distance to its end): a plain symbol
#: with a safe name, so that ``lambdify`` need not rename it (a rebuild of the
#: whole integrand, most of the cost of a numeric check).
SEGMENT = sp.Symbol("_segment_y", nonnegative=True)


def _fn(expr: sp.Expr, args: Sequence[sp.Symbol], modules: object = "mpmath"):
    """``lambdify`` without a docstring; arguments renamed unless they are ``SEGMENT``."""
    rename = any(a is not SEGMENT for a in args)
    return sp.lambdify(args, expr, modules=modules, dummify=rename, docstring_limit=0)


def expectation_numeric(
    family: Family, f: sp.Expr, point: Mapping[sp.Symbol, float], dps: int = DPS
) -> tuple[mpmath.mpf, mpmath.mpf]:
    """``(E[f], error estimate)`` at ``point`` by quadrature or summation."""
    (val,), (err,) = expectations_numeric(family, [f], point, dps)
    return val, err


def expectations_numeric(
    family: Family,
    fs: Sequence[sp.Expr],
    point: Mapping[sp.Symbol, float],
    dps: int = DPS,
) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
    """Numeric ``E[f]`` for each ``f`` with an error estimate, at ``point``.

    ``dps`` is the working precision (decimal digits).
    """
    sub = {p: sp.Float(v, DPS) for p, v in point.items()}
    logp = at_point(family.log_density, sub, DPS)
    vs = family.variables
    with mpmath.workdps(dps):
        dens = _fn(sp.exp(logp), vs)
        if family.is_finite:
            funcs = [_fn(at_point(sp.sympify(f), sub, DPS), vs) for f in fs]
            grid = list(_product([finite_values(s) for s in family.supports]))
            vals = [
                mpmath.fsum(dens(*map(int, g)) * fn(*map(int, g)) for g in grid)
                for fn in funcs
            ]
            return vals, [mpmath.mpf(0)] * len(vals)
        supports = [s.subs(sub) for s in family.supports]
        if not family.support_is_product and not family.is_discrete:
            if all(_finite_interval(s) for s in supports):
                exprs = [at_point(sp.sympify(f), sub, DPS) for f in fs]
                return _tanh_sinh_region(family, supports, logp, exprs, dps)
        vals, errs = [], []
        for f in fs:
            smooth, atoms = _split_delta(at_point(sp.sympify(f), sub, DPS), vs)
            if len(vs) == 1 and not family.is_discrete:
                v, e = _quad_scalar(logp, smooth, vs[0], supports[0], point)
            else:
                v, e = _integrate(family, supports, dens, _fn(smooth, vs), point)
            for coeff, at in atoms:  # E[c(x) delta(x - x0)] = p(x0) c(x0)
                v += dens(at) * _fn(coeff, vs)(at)
            vals.append(v)
            errs.append(e)
        return vals, errs


def _split_delta(f: sp.Expr, vs: Sequence[sp.Symbol]) -> tuple[sp.Expr, list]:
    r"""Split :math:`f = f_0 + \sum_k c_k(x)\,\delta(x - x_k)` for a scalar :math:`x`."""
    if not f.has(sp.DiracDelta):
        return f, []
    if len(vs) != 1:
        raise DerivationError("DiracDelta terms in several variables are unsupported")
    (x,) = vs
    smooth, atoms = sp.Integer(0), []
    for term in sp.Add.make_args(sp.expand(f)):
        deltas = [a for a in sp.Mul.make_args(term) if isinstance(a, sp.DiracDelta)]
        if not deltas:
            smooth += term
            continue
        if len(deltas) != 1 or len(deltas[0].args) != 1:
            raise DerivationError(f"unsupported DiracDelta term {term}")
        arg = deltas[0].args[0]
        slope = sp.diff(arg, x)
        if slope.has(x) or slope == 0:
            raise DerivationError(f"unsupported DiracDelta argument {arg}")
        root = sp.solve(arg, x)[0]
        atoms.append((term / deltas[0] / abs(slope), root))
    return smooth, [(c, mpmath.mpf(str(sp.N(r, DPS)))) for c, r in atoms]


def _product(grids):
    from itertools import product

    return product(*grids)


def _integrate(family, supports, dens, fn, point):
    if family.is_discrete:
        if len(supports) != 1:
            raise DerivationError(
                f"{family.name}: multivariate infinite sums unsupported"
            )
        s = supports[0]
        lo = int(s.inf)
        hi = mpmath.inf if s.sup == sp.oo else int(s.sup)
        val = mpmath.nsum(lambda k: dens(int(k)) * fn(int(k)), [lo, hi])
        return val, abs(val) * mpmath.mpf(10) ** (-DPS + 8)
    if len(supports) > 3:
        raise DerivationError(
            f"{family.name}: numeric integration over {len(supports)} dimensions "
            "is not supported"
        )
    if not family.support_is_product:
        return _integrate_iterated(family, supports, dens, fn)
    intervals = [_breakpoints(s, point) for s in supports]
    val, err = mpmath.quad(lambda *x: dens(*x) * fn(*x), *intervals, error=True)
    return mpmath.re(val), err


def _integrate_iterated(family, supports, dens, fn):
    r"""Quadrature over an iterated region such as the simplex.

    A coordinate whose bounds use earlier coordinates is mapped from the unit
    interval, :math:`x_i = a_i(x_{<i}) + (b_i(x_{<i}) - a_i(x_{<i}))\,u_i`, with
    Jacobian :math:`b_i - a_i`; on the simplex this is the stick-breaking map
    :math:`x_2 = (1 - x_1) u_2`. The other coordinates are integrated as they
    are. Tanh–sinh in each :math:`u_i` handles the integrable singularities at
    the faces (Dirichlet with :math:`\alpha_i < 1`).
    """
    vs = family.variables
    maps = []
    ranges = []
    for i, s in enumerate(supports):
        if not isinstance(s, sp.Interval):
            raise DerivationError(
                f"{family.name}: the support of {vs[i]} must be an interval, got {s}"
            )
        if not s.free_symbols & set(vs):
            maps.append(None)
            ranges.append(_breakpoints(s, {}))
            continue
        if not (s.inf.is_finite and s.sup.is_finite):
            raise DerivationError(
                f"{family.name}: the support of {vs[i]} ({s}) has an infinite "
                "bound that depends on other variables"
            )
        maps.append((_fn(s.inf, vs[:i]), _fn(s.sup, vs[:i])))
        ranges.append([mpmath.mpf(0), mpmath.mpf(1)])

    def integrand(*u):
        x, jac = [], mpmath.mpf(1)
        for ui, m in zip(u, maps, strict=True):
            if m is None:
                x.append(ui)
                continue
            lo, hi = m[0](*x), m[1](*x)
            x.append(lo + (hi - lo) * ui)
            jac *= hi - lo
        return dens(*x) * fn(*x) * jac

    val, err = mpmath.quad(integrand, *ranges, error=True)
    return mpmath.re(val), err


def _finite_interval(s: sp.Set) -> bool:
    return isinstance(s, sp.Interval) and s.inf.is_finite and s.sup.is_finite


#: Finest tanh–sinh step :math:`h = 2^{-m}` over an iterated region.
REGION_MAX_LEVEL = 7
#: Most nodes of one product rule over an iterated region.
REGION_MAX_NODES = 4_000_000
#: Relative change between steps that ends the refinement (float64 arithmetic).
REGION_TOL = 1e-13
#: Nodes stop where ``u`` or ``1 - u`` falls below ``exp(-2 * REGION_S_MAX)``.
REGION_S_MAX = 340.0


def _tanh_sinh_region(
    family: Family,
    supports: Sequence[sp.Set],
    logp: sp.Expr,
    fs: Sequence[sp.Expr],
    dps: int,
) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
    r"""Every :math:`\mathbb E[f_k]` over a bounded iterated region, on shared nodes.

    Each coordinate is mapped from the unit interval,
    :math:`x_i = a_i(x_{<i}) + (b_i(x_{<i}) - a_i(x_{<i}))\,u_i` with Jacobian
    :math:`\prod_i (b_i - a_i)`; on the simplex this is the stick-breaking map
    :math:`x_1 = u_1`, :math:`x_2 = (1 - u_1) u_2`, and
    :math:`1 - x_1 - x_2 = (1 - u_1)(1 - u_2)`. The map is applied
    symbolically: the arguments of logarithms are factored and every
    :math:`1 - u_i` becomes its own variable :math:`v_i`, given exactly at each
    node, so that nothing cancels near a face. The unit cube is integrated by
    the product tanh–sinh rule, all ``fs`` on the same nodes, evaluated with
    NumPy in float64 and summed in log space (:math:`\log p` plus the log
    weights, so faces with :math:`\alpha_i < 1` neither overflow nor are cut
    short: nodes reach :math:`e^{-680}` from a face). The step
    :math:`h = 2^{-m}` is halved until every expectation changes by less than
    ``REGION_TOL`` relative (at most to ``2**-REGION_MAX_LEVEL``, or
    ``REGION_MAX_NODES`` nodes); the error estimate is the last change, never
    below float64 rounding. The accuracy is about 13 digits whatever ``dps``.
    """
    import numpy as np

    k = len(family.variables)
    us = [sp.Dummy(f"u{i}", positive=True) for i in range(k)]
    vs = [sp.Dummy(f"v{i}", positive=True) for i in range(k)]
    xs: list[sp.Expr] = []
    log_jac = sp.Integer(0)
    for i, s in enumerate(supports):
        earlier = dict(zip(family.variables[:i], xs, strict=True))
        lo, hi = s.inf.xreplace(earlier), s.sup.xreplace(earlier)
        xs.append(lo + (hi - lo) * us[i])
        log_jac += sp.log(hi - lo)
    to_u = dict(zip(family.variables, xs, strict=True))
    comp = {}
    for u, v in zip(us, vs, strict=True):
        comp[1 - u] = v
        comp[u - 1] = -v

    def mapped(e: sp.Expr) -> sp.Expr:
        e = e.xreplace(to_u)
        e = e.replace(
            lambda n: isinstance(n, sp.log),
            lambda n: sp.expand_log(sp.log(sp.factor(n.args[0]).xreplace(comp))),
        )
        return sp.N(e.xreplace(comp), 20)

    def build() -> list[sp.Expr]:
        return [mapped(logp) + mapped(log_jac), *[mapped(f) for f in fs]]

    exprs = run_limited(build, 20.0)
    body = sp.lambdify([*us, *vs], exprs, modules=["scipy", "numpy"], cse=True)
    prev = None
    with np.errstate(all="ignore"):
        for m in range(2, REGION_MAX_LEVEL + 1):
            h = 2.0**-m
            t = np.arange(-np.ceil(7.0 / h), np.ceil(7.0 / h) + 1) * h
            sh = np.pi / 2 * np.sinh(t)
            t = t[np.abs(sh) <= REGION_S_MAX]
            if len(t) ** k > REGION_MAX_NODES:
                break
            sh = np.pi / 2 * np.sinh(t)
            u1 = 1 / (1 + np.exp(-2 * sh))
            v1 = 1 / (1 + np.exp(2 * sh))
            # log(w/h) = log(pi/4) + log cosh t - 2 log cosh s
            logw = (
                np.log(np.pi / 4)
                + np.logaddexp(t, -t)
                - np.log(2)
                - 2 * (np.abs(sh) + np.log1p(np.exp(-2 * np.abs(sh))) - np.log(2))
            )
            grids = np.meshgrid(*([np.arange(len(t))] * k), indexing="ij")
            idx = [g.ravel() for g in grids]
            args = [u1[j] for j in idx] + [v1[j] for j in idx]
            out = body(*args)
            logmass = np.broadcast_to(out[0], idx[0].shape) + sum(logw[j] for j in idx)
            mass = np.exp(logmass)
            cur = []
            for f in out[1:]:
                term = mass * np.broadcast_to(f, mass.shape)
                term = np.where(mass == 0, 0.0, term)
                cur.append(math.fsum(term.tolist()) * h**k)
            if not all(np.isfinite(cur)):
                raise DerivationError(
                    f"{family.name}: the integrand over the region is not finite "
                    "at some node (a non-integrable singularity?)"
                )
            if prev is not None:
                diff = [abs(a - b) for a, b in zip(cur, prev, strict=True)]
                if all(
                    d <= REGION_TOL * max(1.0, abs(c))
                    for d, c in zip(diff, cur, strict=True)
                ):
                    break
            prev = cur
    if prev is None:
        raise DerivationError(f"{family.name}: too many nodes for a {k}-D rule")
    errs = [
        max(abs(a - b), 1e-15 * max(1.0, abs(a)))
        for a, b in zip(cur, prev, strict=True)
    ]
    return [mpmath.mpf(c) for c in cur], [mpmath.mpf(e) for e in errs]


def _quad_scalar(
    logp: sp.Expr,
    f: sp.Expr,
    x: sp.Symbol,
    support: sp.Set,
    point: Mapping[sp.Symbol, float],
) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`\int e^{\log p(x)} f(x)\,dx` over ``support`` by tanh–sinh.

    Each segment between breakpoints is integrated from its ends inwards with
    :math:`x = a + y` or :math:`x = b - y`, so that :math:`b - x` is computed
    exactly where the integrand is singular (Beta near 1, say). Where a cheap
    float64 evaluation puts :math:`\log p` below ``LOG_FLOOR`` the integrand is
    taken as 0, so that far tails (Gumbel's :math:`e^{-e^{-z}}`) cost nothing.
    """
    scan = points.mode_points(logp, x, float(support.inf), float(support.sup))
    pts = _breakpoints(support, point, scan)
    y = SEGMENT
    total, err = mpmath.mpf(0), mpmath.mpf(0)
    for a, b in itertools.pairwise(pts):
        pieces = []
        if mpmath.isinf(a) and mpmath.isinf(b):
            pieces.append(({}, x, [a, b]))
        elif mpmath.isinf(b):
            pieces.append(({x: _exact(a) + y}, y, [0, mpmath.inf]))
        elif mpmath.isinf(a):
            pieces.append(({x: _exact(b) - y}, y, [0, mpmath.inf]))
        else:
            half = (b - a) / 2
            pieces.append(({x: _exact(a) + y}, y, [0, half]))
            pieces.append(({x: _exact(b) - y}, y, [0, half]))
        for sub, var, rng in pieces:
            # x -> a + y, a plain rename: xreplace (subs' extra passes find nothing)
            integrand = _guarded(logp.xreplace(sub), f.xreplace(sub), var)
            v, e = mpmath.quad(integrand, rng, error=True, maxdegree=10)
            total += mpmath.re(v)
            err += e
    return total, err


#: Natural-log density below which the integrand counts as 0.
LOG_FLOOR = -800.0


def _guarded(logp: sp.Expr, f: sp.Expr, var: sp.Symbol):
    import numpy as np

    cheap = _fn(logp, [var], modules=["scipy", "numpy"])
    lp = _fn(logp, [var])
    fn = _fn(f, [var])

    def integrand(v):
        with np.errstate(all="ignore"):
            try:
                approx = float(cheap(float(v)))
            except (OverflowError, ValueError, ZeroDivisionError):
                approx = float("nan")
        if approx < LOG_FLOOR or approx == -np.inf:
            return mpmath.mpf(0)
        try:
            out = mpmath.exp(lp(v)) * fn(v)
        except ZeroDivisionError:
            out = None
        if out is not None and mpmath.isfinite(out):
            return out
        # a node so close to a finite end (v is the distance to it) that
        # 1 - (1 - v)**a rounds to 0 (a log of 0, a division by 0): again with
        # as many more digits as v has leading zeros
        extra = int(-mpmath.log10(abs(v))) + 10 if v != 0 else 0
        if extra <= 10:
            if out is None:
                raise ZeroDivisionError(f"integrand at {v}")
            return out
        with mpmath.workdps(mpmath.mp.dps + extra):
            try:
                return +(mpmath.exp(lp(v)) * fn(v))
            except ZeroDivisionError:
                return mpmath.mpf(0)  # at the end itself: no mass

    return integrand


def _exact(v: mpmath.mpf) -> sp.Expr:
    """An endpoint as an exact SymPy number where it is an integer."""
    if v == int(v):
        return sp.Integer(int(v))
    return sp.Float(v, DPS)


def _breakpoints(
    s: sp.Set, point: Mapping[sp.Symbol, float], extra: Sequence[float] = ()
) -> list:
    lo, hi = s.inf, s.sup
    a = -mpmath.inf if lo == -sp.oo else mpmath.mpf(str(sp.N(lo, DPS)))
    b = mpmath.inf if hi == sp.oo else mpmath.mpf(str(sp.N(hi, DPS)))
    inner = {mpmath.mpf(0)} | {mpmath.mpf(v) for v in point.values()}
    inner |= {mpmath.mpf(float(v)) for v in extra}
    pts = sorted(p for p in inner if a < p < b)
    return [a, *pts, b]


def fisher_numeric(
    family: Family,
    score: Sequence[sp.Expr],
    point: Mapping[sp.Symbol, float],
    dps: int = DPS,
) -> tuple[list[list[mpmath.mpf]], mpmath.mpf]:
    r""":math:`\mathbb E[s s^\top]` at ``point`` and the largest error estimate."""
    n = len(score)
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    prods = [score[i] * score[j] for i, j in pairs]
    vals, errs = expectations_numeric(family, prods, point, dps)
    F = [[mpmath.mpf(0)] * n for _ in range(n)]
    for (i, j), v in zip(pairs, vals, strict=True):
        F[i][j] = F[j][i] = v
    return F, max(errs) if errs else mpmath.mpf(0)
