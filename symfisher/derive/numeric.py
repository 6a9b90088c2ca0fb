r"""High-precision numeric expectations (mpmath), the route that always answers.

.. math:: \mathbb E_\theta[f] = \int_{\mathcal X} p_\theta(x) f(x)\,dx
   \quad\text{or}\quad \sum_{x} p_\theta(x) f(x)

Quadrature is tanh–sinh at ``DPS`` digits, split at the parameter values that
fall inside the support (location-like parameters) and at 0; infinite sums
use ``mpmath.nsum``. Each value comes with an error estimate.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence

import mpmath
import sympy as sp

from symfisher.errors import DerivationError
from symfisher.families.family import Family, finite_values

#: Working precision (decimal digits) of numeric expectations.
DPS = 50


def random_point(
    family: Family, rng: random.Random, tries: int = 1000
) -> dict[sp.Symbol, float]:
    """A random valid parameter point, moderate in scale, meeting every constraint.

    Reals draw from U(-1.5, 1.5), positive values from exp(U(-1, 1)), bounded
    intervals from their middle 80%.
    """
    for _ in range(tries):
        values = [_draw(dom, rng) for dom in family.domains]
        try:
            return family.point(values)
        except Exception:
            continue
    raise DerivationError(f"{family.name}: no valid random point in {tries} draws")


def _draw(dom: sp.Set, rng: random.Random) -> float:
    if isinstance(dom, sp.FiniteSet | sp.Range):
        return float(rng.choice(list(dom)))
    lo, hi = dom.inf, dom.sup
    if lo == -sp.oo and hi == sp.oo:
        return rng.uniform(-1.5, 1.5)
    if hi == sp.oo:
        return float(lo) + float(mpmath.exp(rng.uniform(-1, 1)))
    if lo == -sp.oo:
        return float(hi) - float(mpmath.exp(rng.uniform(-1, 1)))
    a, b = float(lo), float(hi)
    return a + (b - a) * rng.uniform(0.1, 0.9)


def _fn(expr: sp.Expr, args: Sequence[sp.Symbol]):
    return sp.lambdify(args, expr, modules="mpmath", dummify=True)


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
    logp = family.log_density.subs(sub)
    vs = family.variables
    with mpmath.workdps(dps):
        dens = _fn(sp.exp(logp), vs)
        if family.is_finite:
            funcs = [_fn(sp.sympify(f).subs(sub), vs) for f in fs]
            grid = list(_product([finite_values(s) for s in family.supports]))
            vals = [
                mpmath.fsum(dens(*map(int, g)) * fn(*map(int, g)) for g in grid)
                for fn in funcs
            ]
            return vals, [mpmath.mpf(0)] * len(vals)
        supports = [s.subs(sub) for s in family.supports]
        vals, errs = [], []
        for f in fs:
            smooth, atoms = _split_delta(sp.sympify(f).subs(sub), vs)
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
    intervals = [_breakpoints(s, point) for s in supports]
    if len(intervals) > 3:
        raise DerivationError(
            f"{family.name}: numeric integration over {len(intervals)} dimensions "
            "is not supported"
        )
    val, err = mpmath.quad(lambda *x: dens(*x) * fn(*x), *intervals, error=True)
    return mpmath.re(val), err


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
    pts = _breakpoints(support, point, _mode_points(logp, x, support))
    y = sp.Dummy("y", nonnegative=True)
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
            integrand = _guarded(logp.subs(sub), f.subs(sub), var)
            v, e = mpmath.quad(integrand, rng, error=True, maxdegree=10)
            total += mpmath.re(v)
            err += e
    return total, err


#: Natural-log density below which the integrand counts as 0.
LOG_FLOOR = -800.0


def _guarded(logp: sp.Expr, f: sp.Expr, var: sp.Symbol):
    import numpy as np

    cheap = sp.lambdify([var], logp, modules=["scipy", "numpy"], dummify=True)
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
        return mpmath.exp(lp(v)) * fn(v)

    return integrand


def _exact(v: mpmath.mpf) -> sp.Expr:
    """An endpoint as an exact SymPy number where it is an integer."""
    if v == int(v):
        return sp.Integer(int(v))
    return sp.Float(v, DPS)


def _mode_points(logp: sp.Expr, x: sp.Symbol, support: sp.Set) -> list[float]:
    """The mode of the density and a few widths around it, from a float64 grid scan.

    Breakpoints there keep tanh–sinh from missing a narrow peak far from 0.
    """
    import numpy as np

    lo, hi = float(support.inf), float(support.sup)
    t = np.linspace(-60.0, 60.0, 4001)
    if np.isfinite(lo) and np.isfinite(hi):
        grid = lo + (hi - lo) / (1.0 + np.exp(-t / 4))
    elif np.isfinite(lo):
        grid = lo + np.exp(t / 2)
    elif np.isfinite(hi):
        grid = hi - np.exp(t / 2)
    else:
        grid = np.sinh(t / 2)
    try:
        f = sp.lambdify([x], logp, modules=["scipy", "numpy"], dummify=True)
        with np.errstate(all="ignore"):
            vals = np.asarray(f(grid), dtype=float) * np.ones_like(grid)
    except Exception:
        return []
    vals[~np.isfinite(vals)] = -np.inf
    if not np.isfinite(vals).any():
        return []
    k = int(np.argmax(vals))
    mode = grid[k]
    near = vals > vals[k] - 20.0  # where the density is within e^-20 of its peak
    width = max(float(grid[near].max() - grid[near].min()), 1e-300)
    pts = [mode + c * width for c in (-1.0, -0.25, 0.0, 0.25, 1.0)]
    return [p for p in pts if lo < p < hi]


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
    family: Family, score: Sequence[sp.Expr], point: Mapping[sp.Symbol, float]
) -> tuple[list[list[mpmath.mpf]], mpmath.mpf]:
    r""":math:`\mathbb E[s s^\top]` at ``point`` and the largest error estimate."""
    n = len(score)
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    prods = [score[i] * score[j] for i, j in pairs]
    vals, errs = expectations_numeric(family, prods, point)
    F = [[mpmath.mpf(0)] * n for _ in range(n)]
    for (i, j), v in zip(pairs, vals, strict=True):
        F[i][j] = F[j][i] = v
    return F, max(errs) if errs else mpmath.mpf(0)
