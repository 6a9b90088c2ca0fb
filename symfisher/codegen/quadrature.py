r"""Fixed-order quadrature rules for kernels of quantities with no closed form.

A family whose Fisher information or KL divergence has no closed form still gets
kernels: the closed-form log-density and score are summed over fixed nodes,

.. math:: F(\theta) \approx \sum_i w_i\, p_\theta(x_i)\, s(\theta; x_i)\, s(\theta; x_i)^\top,
   \qquad \mathrm{KL}(\theta_p \| \theta_q) \approx
   \sum_i w_i\, p_{\theta_p}(x_i) \big(\log p_{\theta_p}(x_i) - \log p_{\theta_q}(x_i)
   + (\theta_q - \theta_p) \cdot s(\theta_p; x_i)\big),
   \qquad H(\theta) \approx -\sum_i w_i\, p_\theta(x_i) \log p_\theta(x_i)

(the score term integrates to 0 and removes the first-order part of the
log-ratio, so that the KL's error shrinks with it for nearby points).

The nodes live in a standardised variable :math:`y`; where the family is a
(log-)location-scale family (:func:`symfisher.derive.expectation.location_scale`)
:math:`x = g_\theta(y)` follows the parameters, so one set of nodes serves every
location and scale. The rule on :math:`y`'s support is a double-exponential
trapezoid rule in :math:`t`:

================  ==============================================  =============
support of y      map                                             name
================  ==============================================  =============
:math:`(-∞, ∞)`   :math:`y = \sinh(\frac{\pi}{2}\sinh t)`           sinh-sinh
:math:`(a, ∞)`    :math:`y = a + e^{\frac{\pi}{2}\sinh t}`         exp-sinh
:math:`(a, b)`    :math:`y = a + (b-a)\,\sigma(\pi \sinh t)`       tanh-sinh
counts from a     :math:`y = a, a+1, \dots, a+N-1`                truncated sum
================  ==============================================  =============

Everything is decided at generation time, in 30-digit arithmetic (mpmath), at
the corners and the centre of a box of parameter values (:func:`param_box`):
the span of :math:`t` (nodes whose contribution is below ``NEGLIGIBLE`` of the
total everywhere are dropped), the step (halved until the rule agrees with the
rule of half its step to ``TARGET``), the number of terms of a sum (until the
remaining tail, bounded by a geometric series, is below ``NEGLIGIBLE``). The
estimated error of the emitted rule is the difference from the rule of half
its step plus the dropped contributions. The nodes are evaluated exactly as the
kernel will see them (rounded to float64), so the same source gives the same
bytes on any machine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from symfisher.codegen.rewrite import erf_complements
from symfisher.errors import SymbolicTimeout, SymfisherError
from symfisher.families.family import Family, finite_values
from symfisher.families.normalizer import has_normalizer, mp_function

#: Working precision (decimal digits) of the generation-time rule selection.
DPS = 30
#: Relative size below which a node's contribution is dropped.
NEGLIGIBLE = mpmath.mpf("1e-20")
#: Agreement with the half-step rule at which the step stops halving.
TARGET = 1e-13
#: Smallest step (``2**-FINEST_LEVEL``) tried.
FINEST_LEVEL = 7
#: Half-width of the scanned span of ``t`` per map.
T_SPAN = {"sinh-sinh": 4.5, "exp-sinh": 4.5, "tanh-sinh": 4.0}
#: Most terms of a truncated sum.
MAX_TERMS = 4096
#: Smallest accuracy a docstring claims (float64 rounding of the sums).
FLOOR = 1e-12
#: Seconds the location-scale standardisation may take.
STANDARDISE_SECONDS = 30.0
#: Largest condition number of F at which Cramér–Rao accuracy is measured.
MAX_COND = 1e8

Y = sp.Symbol("_y", real=True)


class QuadratureError(SymfisherError):
    """No quadrature rule could be built for a family."""


@dataclass(frozen=True)
class Rule:
    r"""A fixed quadrature rule for a family, in a standardised variable ``y``.

    Attributes:
      kind: ``"sinh-sinh"``, ``"exp-sinh"``, ``"tanh-sinh"`` or ``"sum"``.
      y: nodes in ``y`` (float64 values).
      log_w: log-weights in ``y`` (float64 values; 0 for sums).
      x_of_y: :math:`x = g_\theta(y)` in the parameters and :data:`Y`.
      log_jacobian: :math:`\log g_\theta'(y)`.
      box: ``(lo, hi)`` per parameter: the range the accuracy is stated for.
      step: the trapezoid step in ``t`` (0 for sums).
      error: function name -> estimated relative error at generation time.
      claim: function name -> the bound the docstrings state.
    """

    kind: str
    y: tuple[float, ...]
    log_w: tuple[float, ...]
    x_of_y: sp.Expr
    log_jacobian: sp.Expr
    box: tuple[tuple[float, float], ...]
    step: float
    error: dict[str, float] = field(default_factory=dict)
    claim: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.y)

    def description(self) -> str:
        """One line for ``PROVENANCE``: rule, nodes, map."""
        if self.kind == "sum":
            lo, hi = round(self.y[0]), round(self.y[-1])
            return (
                f"quadrature: sum over x = {lo}..{hi} ({self.n} terms; the tail "
                "beyond is bounded by a geometric series)"
            )
        names = {
            "sinh-sinh": "trapezoid in t, sinh-sinh map",
            "exp-sinh": "trapezoid in t, exp-sinh map",
            "tanh-sinh": "trapezoid in t, tanh-sinh map",
        }
        step = f" (step 2^{round(math.log2(self.step))})" if self.step else ""
        xmap = "x = y" if self.x_of_y == Y else f"x = {sp.sstr(self.x_of_y)}"
        xmap = xmap.replace("_y", "y")
        return f"quadrature: {names[self.kind]}{step}, {self.n} nodes, {xmap}"


# -- the parameter box -------------------------------------------------------------
def param_box(
    fam: Family, ranges: Mapping[str, tuple[float, float]] | None = None
) -> tuple[tuple[float, float], ...]:
    """The parameter range the rule is chosen for and its accuracy is stated over.

    ``ranges`` (parameter name -> ``(lo, hi)``) sets it; otherwise reals: [-2, 2];
    ``(a, oo)``: [a + 0.5, a + 4]; ``(-oo, b)``: [b - 4, b - 0.5]; a bounded
    interval: its middle 90%; a finite set: its least and largest value.

    Raises:
      QuadratureError: for an unknown name or a range outside the domain.
    """
    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(fam.param_names))
    if unknown:
        raise QuadratureError(
            f"{fam.name}: quadrature ranges name unknown parameter(s) {unknown}; "
            f"parameters: {list(fam.param_names)}"
        )
    out = []
    for p, dom in zip(fam.params, fam.domains, strict=True):
        if p.name in ranges:
            lo, hi = (float(v) for v in ranges[p.name])
            if not (
                lo <= hi and dom.contains(sp.Float(lo)) and dom.contains(sp.Float(hi))
            ):
                raise QuadratureError(
                    f"{fam.name}: quadrature range {p.name} in [{lo}, {hi}] must "
                    f"lie in the domain {sp.sstr(dom)}"
                )
            out.append((lo, hi))
            continue
        vals = finite_values(dom) if isinstance(dom, sp.FiniteSet | sp.Range) else None
        if vals:
            out.append((float(min(vals)), float(max(vals))))
            continue
        lo, hi = dom.inf, dom.sup
        if lo == -sp.oo and hi == sp.oo:
            out.append((-2.0, 2.0))
        elif hi == sp.oo:
            out.append((float(lo) + 0.5, float(lo) + 4.0))
        elif lo == -sp.oo:
            out.append((float(hi) - 4.0, float(hi) - 0.5))
        else:
            a, b = float(lo), float(hi)
            out.append((a + 0.05 * (b - a), a + 0.95 * (b - a)))
    return tuple(out)


def box_points(fam: Family, box: Sequence[tuple[float, float]]) -> list[tuple]:
    """Valid corners and the centre of the box (at most 16 corners)."""
    corners = list(itertools.product(*box))
    if len(corners) > 16:
        corners = corners[:: len(corners) // 16 + 1]
    centre = tuple((a + b) / 2 for a, b in box)
    out = []
    for pt in [*corners, centre]:
        try:
            fam.point(pt)
        except SymfisherError:
            continue
        if pt not in out:
            out.append(pt)
    if not out:
        raise QuadratureError(f"{fam.name}: no valid point in the box {box}")
    return out


def box_text(fam: Family, box: Sequence[tuple[float, float]]) -> str:
    """``mu in [-2, 2], sigma in [0.5, 4]``."""
    return ", ".join(
        f"{p.name} in [{a:g}, {b:g}]" for p, (a, b) in zip(fam.params, box, strict=True)
    )


# -- standardisation ---------------------------------------------------------------
def standardise(fam: Family) -> tuple[sp.Expr, sp.Set]:
    """``(x = g(Y), support of Y)``: a location-scale map where one is found, else x = Y.

    The search is SymPy work under a time limit (a recorded step, see
    :mod:`symfisher.outcomes`); when the limit is hit the identity map is used
    (the rule is then chosen for the parameter box only).
    """
    from symfisher.derive.expectation import location_scale
    from symfisher.outcomes import fingerprint
    from symfisher.timelimit import run_limited

    (x,) = fam.variables
    support = fam.supports[0]
    if isinstance(support, sp.Interval) and not fam.is_discrete:
        try:
            found = run_limited(
                lambda: location_scale(fam, fam.log_density, x, support),
                STANDARDISE_SECONDS,
                key=fingerprint(
                    "standardise", STANDARDISE_SECONDS, fam.definition_text()
                ),
            )
        except SymbolicTimeout:
            found = None
        if found is not None:
            y, g, sup = found
            return g.xreplace({y: Y}), sup
    return Y, support


# -- nodes -------------------------------------------------------------------------
def _map(kind: str, a: mpmath.mpf, b: mpmath.mpf) -> Callable:
    """``t -> (y, log dy/dt)`` in mpmath."""
    half_pi = mpmath.pi / 2
    if kind == "sinh-sinh":
        return lambda t: (
            mpmath.sinh(half_pi * mpmath.sinh(t)),
            mpmath.log(
                half_pi * mpmath.cosh(t) * mpmath.cosh(half_pi * mpmath.sinh(t))
            ),
        )
    if kind == "exp-sinh" and a is not None:
        return lambda t: (
            a + mpmath.exp(half_pi * mpmath.sinh(t)),
            half_pi * mpmath.sinh(t) + mpmath.log(half_pi * mpmath.cosh(t)),
        )
    if kind == "exp-sinh":  # (-oo, b)
        return lambda t: (
            b - mpmath.exp(half_pi * mpmath.sinh(t)),
            half_pi * mpmath.sinh(t) + mpmath.log(half_pi * mpmath.cosh(t)),
        )

    def tanh_sinh(t: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
        u = mpmath.pi * mpmath.sinh(t)
        lo_part = 1 / (1 + mpmath.exp(u))  # 1 - sigma(u)
        sig = 1 / (1 + mpmath.exp(-u))
        y = a + (b - a) * sig if u <= 0 else b - (b - a) * lo_part
        return y, mpmath.log((b - a) * sig * lo_part * mpmath.pi * mpmath.cosh(t))

    return tanh_sinh


def _kind(support: sp.Set) -> tuple[str, mpmath.mpf | None, mpmath.mpf | None]:
    if isinstance(support, sp.Range | sp.FiniteSet):
        return "sum", None, None
    if not isinstance(support, sp.Interval):
        raise QuadratureError(f"no quadrature rule for the support {support}")
    lo, hi = support.inf, support.sup
    if lo == -sp.oo and hi == sp.oo:
        return "sinh-sinh", None, None
    if hi == sp.oo:
        return "exp-sinh", mpmath.mpf(str(sp.N(lo, DPS))), None
    if lo == -sp.oo:
        return "exp-sinh", None, mpmath.mpf(str(sp.N(hi, DPS)))
    return "tanh-sinh", mpmath.mpf(str(sp.N(lo, DPS))), mpmath.mpf(str(sp.N(hi, DPS)))


def _float_node(y: mpmath.mpf, support: sp.Set) -> float | None:
    """``y`` rounded to float64, or ``None`` when that leaves the open support."""
    f = float(y)
    if not math.isfinite(f):
        return None
    lo, hi = support.inf, support.sup
    if lo.is_finite and f <= float(lo):
        return None
    if hi.is_finite and f >= float(hi):
        return None
    return f


# -- the integrands at a point -----------------------------------------------------
class _Integrands:
    """Score outer products and KL terms of a family at parameter points (mpmath)."""

    def __init__(
        self,
        fam: Family,
        score: Sequence[sp.Expr],
        x_of_y: sp.Expr,
        log_jac: sp.Expr,
        points: list[tuple],
        entropy_offset: sp.Expr | None = None,
    ) -> None:
        (x,) = fam.variables
        args = [*fam.params, x]
        self.fam = fam

        def fn(e: sp.Expr) -> Callable:
            e = erf_complements(e)
            mods = [{"Erfc": mpmath.erfc, "ExpOf": mpmath.exp}, "mpmath"]
            if has_normalizer(e):  # Z by quadrature, once per point
                return mp_function(e, fam.params, x, mods)
            return sp.lambdify(args, e, modules=mods, dummify=True)

        self.lp = fn(fam.log_density)
        self.off = None if entropy_offset is None else fn(entropy_offset)
        self._off: dict[tuple[int, float], mpmath.mpf] = {}
        self.s = [fn(e) for e in score]
        yargs = [*fam.params, Y]
        self.g = sp.lambdify(yargs, x_of_y, modules="mpmath", dummify=True)
        self.lj = sp.lambdify(yargs, log_jac, modules="mpmath", dummify=True)
        self.points = [[mpmath.mpf(v) for v in pt] for pt in points]
        # each point's KL partner: the next point
        self.partner = [
            self.points[(i + 1) % len(points)] for i in range(len(self.points))
        ]
        self._cache: dict[tuple[int, float], tuple] = {}

    def at(self, i: int, y: float, log_w: float) -> tuple:
        """``(w p, s, log p, log q)`` at node ``y`` of point ``i``, cached."""
        key = (i, y)
        if key not in self._cache:
            th = self.points[i]
            ym = mpmath.mpf(y)
            x = int(y) if self.fam.is_discrete else self.g(*th, ym)
            lp = self.lp(*th, x)
            dens = mpmath.exp(self.lj(*th, ym) + lp)
            try:
                s = [f(*th, x) for f in self.s]
            except ZeroDivisionError:
                if dens != 0:
                    raise
                s = [mpmath.mpf(0)] * len(self.s)  # no mass here: dropped
            lq = self.lp(*self.partner[i], x)
            if dens == 0:  # no mass here (0 * inf and 0/0 of the terms: dropped)
                s, lp, lq = [mpmath.mpf(0)] * len(self.s), mpmath.mpf(0), mpmath.mpf(0)
            self._cache[key] = (dens, s, lp, lq)
        dens, s, lp, lq = self._cache[key]
        return mpmath.exp(mpmath.mpf(log_w)) * dens, s, lp, lq

    def offset(self, i: int, y: float) -> mpmath.mpf:
        """The entropy integrand's offset at node ``y`` of point ``i`` (0 without one)."""
        if self.off is None:
            return mpmath.mpf(0)
        key = (i, y)
        if key not in self._off:
            th = self.points[i]
            x = int(y) if self.fam.is_discrete else self.g(*th, mpmath.mpf(y))
            self._off[key] = self.off(*th, x)
        return self._off[key]

    def size(self, i: int, y: float, log_w: float) -> mpmath.mpf:
        """Magnitude of the node's contribution to any integrand."""
        wp, s, lp, lq = self.at(i, y, log_w)
        return abs(wp) * (1 + sum(abs(v) ** 2 for v in s) + abs(lp) + abs(lq))

    def sums(
        self, i: int, nodes: Sequence[tuple[float, float]]
    ) -> tuple[mpmath.matrix, mpmath.mpf, mpmath.mpf, mpmath.mpf]:
        """``(F, KL, total mass, entropy)`` by the rule ``nodes`` (pairs ``(y, log w)``) at point ``i``."""
        P = self.fam.n_params
        F = mpmath.matrix(P, P)
        kl = mass = ent = mpmath.mpf(0)
        # the kernel's control variate: (theta_q - theta_p) . s integrates to 0
        step = [q - t for q, t in zip(self.partner[i], self.points[i], strict=True)]
        for y, lw in nodes:
            wp, s, lp, lq = self.at(i, y, lw)
            for a in range(P):
                for b in range(P):
                    F[a, b] += wp * s[a] * s[b]
            kl += wp * (
                lp - lq + mpmath.fsum(d * v for d, v in zip(step, s, strict=True))
            )
            mass += wp
            if wp != 0:
                ent -= wp * (lp - self.offset(i, y))
        return F, kl, mass, ent


def _errors(
    fine: Sequence[tuple[mpmath.matrix, mpmath.mpf, mpmath.mpf, mpmath.mpf]],
    coarse: Sequence[tuple[mpmath.matrix, mpmath.mpf, mpmath.mpf, mpmath.mpf]],
    extra: Sequence[mpmath.mpf],
) -> dict[str, float]:
    r"""Relative differences per function between two rules, plus ``extra``.

    ``"normalizer"``: the total mass (1 exactly), the relative error of a
    normaliser :math:`Z` summed by the rule (the absolute error of
    :math:`\log Z`). ``"entropy"``: relative to :math:`\max(1, |H|)` (an
    entropy may be 0 or negative).
    """
    ef = ek = ec = ez = eh = 0.0
    for (F1, k1, m1, h1), (F0, k0, m0, h0), add in zip(
        fine, coarse, extra, strict=True
    ):
        ez = max(ez, float(abs(m1 - m0) / abs(m1) + add) if m1 != 0 else ez)
        eh = max(eh, float(abs(h1 - h0) / max(abs(h1), 1) + add))
        scale = max(abs(v) for v in F1)
        if scale == 0:
            continue
        ef = max(ef, float(max(abs(v) for v in (F1 - F0)) / scale + add))
        if k1 != 0:
            ek = max(ek, float(abs(k1 - k0) / abs(k1) + add))
        try:
            inv1 = F1**-1
            inv0 = F0**-1
        except ZeroDivisionError:
            continue
        cond = mpmath.mnorm(F1, 1) * mpmath.mnorm(inv1, 1)
        if cond < MAX_COND:
            s1 = max(abs(v) for v in inv1)
            ec = max(ec, float(max(abs(v) for v in (inv1 - inv0)) / s1 + cond * add))
    return {
        "fisher": ef,
        "kl": ek,
        "cramer_rao": ec,
        "normalizer": ez,
        "entropy": eh,
    }


def claim(err: float) -> float:
    """The bound a docstring states: the next power of ten, at least ``FLOOR``."""
    if err <= 0:
        return FLOOR
    return max(FLOOR, 10.0 ** math.ceil(math.log10(err)))


# -- rules -------------------------------------------------------------------------
def build_rule(
    fam: Family,
    score: Sequence[sp.Expr],
    box: Sequence[tuple[float, float]] | None = None,
    entropy_offset: sp.Expr | None = None,
) -> Rule:
    r"""Choose the rule for a one-variable family (see the module docstring).

    ``entropy_offset`` :math:`c_\theta(x)` makes the entropy integrand
    :math:`-p (\log p - c)` (a latent family's :math:`\log g'(u)`,
    :func:`symfisher.codegen.latent_entropy.latent_family`).

    Raises:
      QuadratureError: for several variables or a support with no rule.
    """
    if len(fam.variables) != 1:
        raise QuadratureError(
            f"{fam.name}: quadrature kernels need one variable, "
            f"got {len(fam.variables)}"
        )
    box = tuple(box) if box is not None else param_box(fam)
    points = box_points(fam, box)
    x_of_y, support = standardise(fam)
    log_jac = sp.expand_log(sp.log(sp.diff(x_of_y, Y)), force=True)
    kind, a, b = _kind(support)
    with mpmath.workdps(DPS):
        ig = _Integrands(fam, score, x_of_y, log_jac, points, entropy_offset)
        if kind == "sum":
            return _sum_rule(fam, support, ig, box)
        return _trapezoid_rule(fam, support, kind, a, b, ig, box, x_of_y, log_jac)


def _sum_rule(fam: Family, support: sp.Set, ig: _Integrands, box: tuple) -> Rule:
    vals = finite_values(support)
    tail_err = [mpmath.mpf(0)] * len(ig.points)
    if vals is None:
        lo = int(support.inf)
        last = lo
        for i in range(len(ig.points)):
            total, prev, k, ok = mpmath.mpf(0), None, lo, False
            while k < lo + MAX_TERMS:
                c = ig.size(i, float(k), 0.0)
                total += c
                if prev is not None and prev > 0 and k >= lo + 8:
                    r = c / prev
                    if r < 1 and c * r / (1 - r) < NEGLIGIBLE * total:
                        tail_err[i] = c * r / (1 - r) / total
                        ok = True
                        break
                prev, k = c, k + 1
            if not ok:
                raise QuadratureError(
                    f"{fam.name}: the sum over the support needs more than "
                    f"{MAX_TERMS} terms at {box_text(fam, box)}"
                )
            last = max(last, k)
        n = -(-(last - lo + 1) // 8) * 8
        vals = tuple(range(lo, lo + n))
    nodes = [(float(v), 0.0) for v in vals]
    sums = [ig.sums(i, nodes) for i in range(len(ig.points))]
    err = _errors(sums, sums, tail_err)  # exact but for the bounded tail
    return Rule(
        kind="sum",
        y=tuple(float(v) for v in vals),
        log_w=(0.0,) * len(vals),
        x_of_y=Y,
        log_jacobian=sp.Integer(0),
        box=box,
        step=0.0,
        error=err,
        claim={k: claim(v) for k, v in err.items()},
    )


def _trapezoid_rule(
    fam: Family,
    support: sp.Set,
    kind: str,
    a: mpmath.mpf | None,
    b: mpmath.mpf | None,
    ig: _Integrands,
    box: tuple,
    x_of_y: sp.Expr,
    log_jac: sp.Expr,
) -> Rule:
    fmap = _map(kind, a, b)
    y_support = support
    scale = 2**FINEST_LEVEL
    node_cache: dict[int, tuple[float, float] | None] = {}

    def node(m: int, level: int) -> tuple[float, float] | None:
        """Node ``t = m / 2**FINEST_LEVEL`` with the weight of step ``2**-level``."""
        if m not in node_cache:
            y, lw = fmap(mpmath.mpf(m) / scale)
            fy = _float_node(y, y_support)
            node_cache[m] = None if fy is None else (fy, lw)
        got = node_cache[m]
        if got is None:
            return None
        fy, lw = got
        return fy, float(lw + mpmath.log(mpmath.mpf(2) ** -level))

    # the span of t: the coarse nodes (step 1/4) that matter at some point
    T = T_SPAN[kind]
    coarse = 2 ** (FINEST_LEVEL - 2)
    ms = range(-round(T * 4) * coarse, round(T * 4) * coarse + 1, coarse)
    sizes = {}
    for m in ms:
        nd = node(m, 2)
        if nd is not None:
            sizes[m] = [ig.size(i, *nd) for i in range(len(ig.points))]
    if not sizes:
        raise QuadratureError(f"{fam.name}: no quadrature node inside the support")
    totals = [mpmath.fsum(v[i] for v in sizes.values()) for i in range(len(ig.points))]
    keep = [
        m
        for m, v in sizes.items()
        if any(v[i] > NEGLIGIBLE * totals[i] for i in range(len(totals)))
    ]
    m_lo, m_hi = min(keep) - coarse, max(keep) + coarse
    dropped = [
        mpmath.fsum(v[i] for m, v in sizes.items() if not m_lo <= m <= m_hi) / totals[i]
        for i in range(len(totals))
    ]

    # the outermost nodes: where the span ends inside the support (the scan's
    # end) ten times their contribution; where float64 ran out of room before an
    # end of the support (a singular end of an interval), the density there
    # times the gap to that end, twice
    def edge(m: int, i: int) -> mpmath.mpf:
        if m in (ms[0], ms[-1]):
            return 10 * sizes[m][i]
        y, lw = node(m, 2)
        end = y_support.sup if m > 0 else y_support.inf
        gap = abs(mpmath.mpf(float(end)) - mpmath.mpf(y))
        return 2 * sizes[m][i] / mpmath.exp(mpmath.mpf(lw)) * gap

    truncation = [
        d + (edge(min(sizes), i) + edge(max(sizes), i)) / totals[i]
        for i, d in enumerate(dropped)
    ]

    def rule(level: int) -> list[tuple[float, float]]:
        step = 2 ** (FINEST_LEVEL - level)
        start = -(-m_lo // step) * step
        out = []
        for m in range(start, m_hi + 1, step):
            nd = node(m, level)
            if nd is not None:
                out.append(nd)
        return out

    def sums(level: int) -> list:
        nodes = rule(level)
        return [ig.sums(i, nodes) for i in range(len(ig.points))]

    level = 1
    now = sums(level)
    while True:
        nxt = sums(level + 1)
        err = _errors(nxt, now, truncation)
        step_err = _errors(nxt, now, [0] * len(truncation))  # what halving can fix
        if (
            max(step_err["fisher"], step_err["kl"], step_err["entropy"]) <= TARGET
            or level + 1 >= FINEST_LEVEL
        ):
            break
        level, now = level + 1, nxt
    nodes = rule(level)
    return Rule(
        kind=kind,
        y=tuple(y for y, _ in nodes),
        log_w=tuple(lw for _, lw in nodes),
        x_of_y=x_of_y,
        log_jacobian=log_jac,
        box=box,
        step=2.0**-level,
        error=err,
        claim={k: claim(v) for k, v in err.items()},
    )


def constants(rule: Rule) -> str:
    """Module-level ``_QUAD_Y`` and ``_QUAD_LOGW`` tuples (float reprs, 4 a line)."""

    def tup(name: str, vals: Sequence[float]) -> str:
        lines = [
            "    " + " ".join(f"{v!r}," for v in vals[i : i + 4])
            for i in range(0, len(vals), 4)
        ]
        return f"{name} = (\n" + "\n".join(lines) + "\n)\n"

    return tup("_QUAD_Y", rule.y) + tup("_QUAD_LOGW", rule.log_w)


def ranges_repr(fam: Family, rule: Rule) -> str:
    """``{'mu': (-2.0, 2.0), ...}`` for ``QUADRATURE_RANGES``."""
    return repr(
        {
            p.name: (float(a), float(b))
            for p, (a, b) in zip(fam.params, rule.box, strict=True)
        }
    )


def claims_repr(rule: Rule, names: Mapping[str, str]) -> str:
    """``{'fisher': 1e-12, ...}`` for ``QUADRATURE_ACCURACY``: function -> bound."""
    return repr({fn: rule.claim[src] for fn, src in names.items()})
