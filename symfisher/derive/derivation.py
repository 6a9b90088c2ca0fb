r"""``derive(family)``: every symbolic quantity of a family, with provenance.

A :class:`Derivation` holds the score, Hessian, the three Fisher routes and
their pairwise agreement, the closed-form KL and entropy, and answers numeric
questions (:meth:`Derivation.fisher_at`, :meth:`Derivation.entropy_at`) even where
no closed form was found.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from symfisher.derive import agreement
from symfisher.derive import entropy as entropy_mod
from symfisher.derive import fisher as routes_mod
from symfisher.derive.kl import KL
from symfisher.derive.kl import kl as closed_kl
from symfisher.derive.numeric import DPS, expectation_numeric, fisher_numeric
from symfisher.derive.simplify import is_zero, tidy
from symfisher.errors import DerivationError, DomainError, SymbolicTimeout
from symfisher.families.family import Family
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited

ROUTES = routes_mod.ROUTES


class NumericFisher(np.ndarray):
    """A numeric Fisher matrix (a float64 ``ndarray``) that knows its provenance.

    Attributes:
      provenance: ``"closed form (...)"`` or the numeric method used.
      error: absolute error estimate (0 for closed forms, evaluated at ``DPS`` digits).
    """

    provenance: str
    error: float

    def __new__(cls, value: Any, provenance: str, error: float = 0.0) -> NumericFisher:
        """View ``value`` as float64 and attach its provenance and error estimate."""
        obj = np.asarray(value, dtype=np.float64).view(cls)
        obj.provenance = provenance
        obj.error = float(error)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        """Carry provenance through views and slices."""
        self.provenance = getattr(obj, "provenance", "")
        self.error = getattr(obj, "error", 0.0)

    @property
    def value(self) -> np.ndarray:
        """The matrix as a plain ``ndarray``."""
        return np.asarray(self).view(np.ndarray)


@dataclass
class Derivation:
    r"""Symbolic results for one family.

    Attributes:
      family: the family derived.
      score: column vector :math:`s(\theta; x)`.
      hessian: :math:`H(\theta; x)`.
      routes: route name to Fisher matrix, ``None`` where unresolved.
      provenance: route name to ``(method, detail, seconds)``.
      agreement: ``(route_a, route_b)`` to "proved", "tested", "differs" or
        "unresolved".
      fisher: the agreed closed form, or ``None``.
      mean_score: :math:`\mathbb E[s]` (zero for a regular family), or ``None``.
      mean_score_status: "proved", "tested", "nonzero" or "unresolved".
      kl: closed-form :math:`\mathrm{KL}(p_\theta\|p_{\theta'})` or ``None``.
      kl_primed: the primed symbols :math:`\theta'` used by ``kl``.
      kl_method: how the KL was obtained.
      regular: False when the support depends on the parameters.
      entropy: closed-form :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]`
        or ``None`` (then numeric: :meth:`entropy_at`).
      entropy_method: how the entropy was obtained (:mod:`symfisher.derive.entropy`),
        ``"unresolved"`` when no closed form was found.
      entropy_detail: the missing term or the assumption, when there is one.
      regularity: plain-language report of which identities fail (non-regular).
      seconds: wall time of the derivation.
      steps: fingerprint to outcome of every time-limited step
        (:mod:`symfisher.outcomes`).
      by_clock: how many steps the clock decided rather than a recorded outcome
        (0: the result does not depend on how busy the machine was).
      budget: the seconds it was allowed, times ``SYMFISHER_TIME_SCALE``.
    """

    family: Family
    score: sp.Matrix
    hessian: sp.Matrix
    routes: dict[str, sp.Matrix | None]
    provenance: dict[str, tuple[str, str, float]]
    agreement: dict[tuple[str, str], str]
    agreement_detail: dict[tuple[str, str], str]
    fisher: sp.Matrix | None
    mean_score: sp.Matrix | None
    mean_score_status: str
    kl: sp.Expr | None
    kl_primed: tuple[sp.Symbol, ...]
    kl_method: str
    kl_detail: str
    regular: bool
    regularity: str | None
    seconds: float
    entropy: sp.Expr | None = None
    entropy_method: str = "unresolved"
    entropy_detail: str = ""
    from_cache: bool = False
    steps: dict[str, str] = field(default_factory=dict, repr=False)
    by_clock: int = 0
    budget: float = 0.0
    _numeric: dict[Any, Any] = field(default_factory=dict, repr=False)

    # -- numbers --------------------------------------------------------------
    def fisher_at(
        self, point: Mapping[Any, Any] | Sequence[Any], dps: int = DPS
    ) -> NumericFisher:
        """Fisher matrix at a point: the closed form if any, else mpmath quadrature.

        Args:
          point: parameter values by name (or a sequence in parameter order).
          dps: working precision of the quadrature, in decimal digits (a
            float64 reference needs about 20; fewer digits are several times
            faster).

        Raises:
          DomainError: for a missing, extra or out-of-domain parameter.
          DerivationError: for a non-regular family (no Fisher information).
        """
        pt = self.family.point(point)
        if not self.regular:
            raise DerivationError(f"{self.family.name}: {self.regularity}")
        if self.fisher is not None:
            sub = {p: sp.Float(v, DPS) for p, v in pt.items()}
            vals = self.fisher.evalf(DPS, subs=sub)
            if all(v.is_number and v.is_real for v in vals):
                agreed = ", ".join(r for r in ROUTES if self.routes.get(r) is not None)
                return NumericFisher(
                    np.array(vals.tolist(), dtype=np.float64),
                    f"closed form (routes: {agreed}), evaluated at {DPS} digits",
                )
        if not (isinstance(dps, int) and 15 <= dps <= 1000):
            raise ValueError(
                f"fisher_at: dps must be an int in [15, 1000]; got {dps!r}"
            )
        F, err = fisher_numeric(self.family, list(self.score), pt, dps)
        with mpmath.workdps(dps):
            arr = np.array([[float(v) for v in row] for row in F])
        return NumericFisher(
            arr,
            f"numeric: mpmath quadrature of E[s s^T] at {dps} digits "
            "(no closed form found)",
            float(err),
        )

    def entropy_at(self, point: Mapping[Any, Any] | Sequence[Any]) -> NumericFisher:
        r"""Entropy :math:`H(\theta)` at a point: the closed form if any, else quadrature.

        A 0-d :class:`NumericFisher` (a float64 array) whose ``provenance`` says
        ``"closed form (<method>) ..."`` or ``"numeric: mpmath quadrature ..."``
        and whose ``error`` is the quadrature's error estimate (0 for a closed
        form). Valid for non-regular families too (Uniform(0, θ): log θ).

        Args:
          point: parameter values by name (or a sequence in parameter order).

        Raises:
          DomainError: for a missing, extra or out-of-domain parameter.
        """
        pt = self.family.point(point)
        if self.entropy is not None:
            sub = {p: sp.Float(v, DPS) for p, v in pt.items()}
            val = self.entropy.evalf(DPS, subs=sub)
            if val.is_number and val.is_real:
                return NumericFisher(
                    float(val),
                    f"closed form ({self.entropy_method}), evaluated at {DPS} digits",
                )
        value, err = expectation_numeric(self.family, -self.family.log_density, pt)
        why = f": {self.entropy_detail}" if self.entropy_detail else ""
        return NumericFisher(
            float(value),
            f"numeric: mpmath quadrature of -E[log p] at {DPS} digits "
            f"(no closed form found{why})",
            float(err),
        )

    def _require_fisher(self) -> sp.Matrix:
        if not self.regular:
            raise DerivationError(f"{self.family.name}: {self.regularity}")
        if self.fisher is None:
            raise DerivationError(
                f"{self.family.name}: no closed-form Fisher matrix; use fisher_at"
            )
        return self.fisher

    def cramer_rao(self, n: int | sp.Expr, g: Any = None) -> sp.Matrix | sp.Expr:
        r"""Cramér–Rao bound for ``n`` i.i.d. observations.

        .. math:: \operatorname{Cov}\hat\theta \succeq F^{-1}/n, \qquad
           \operatorname{Var}\widehat{g(\theta)} \ge \nabla g\,F^{-1}\nabla g^\top/n

        Args:
          n: sample size (positive integer or symbol).
          g: optional scalar function of the parameters (SymPy expression or a
            string parsed safely); a list gives a matrix bound.
        """
        if isinstance(n, int | np.integer) and n < 1:
            raise DomainError(f"n must be a positive integer, got {n}")
        F = self._require_fisher()
        Finv = _inverse(F, self.family)
        if g is None:
            return (Finv / n).applyfunc(tidy)
        gs = g if isinstance(g, list | tuple) else [g]
        exprs = [self._as_expr(e) for e in gs]
        J = sp.Matrix([[sp.diff(e, p) for p in self.family.params] for e in exprs])
        bound = (J * Finv * J.T / n).applyfunc(tidy)
        return bound[0, 0] if not isinstance(g, list | tuple) else bound

    def natural_gradient(self, g: Sequence[Any] | sp.Matrix, point: Any = None) -> Any:
        r"""Natural gradient :math:`F^{-1} g`, or :math:`F^{+} g` where :math:`F` is singular.

        Args:
          g: gradient in parameter order (expressions, numbers or strings).
          point: optional parameter point; then a float64 array is returned.
        """
        F = self._require_fisher()
        P = self.family.n_params
        gvec = sp.Matrix([self._as_expr(e) for e in g])
        if gvec.shape != (P, 1):
            raise DomainError(
                f"{self.family.name}: gradient must have {P} entries, got {len(gvec)}"
            )
        if point is not None:
            pt = self.family.point(point)
            sub = {p: sp.Float(v, DPS) for p, v in pt.items()}
            Fn = np.array(F.evalf(DPS, subs=sub).tolist(), dtype=float)
            gn = np.array(gvec.evalf(DPS, subs=sub).tolist(), dtype=float).ravel()
            return np.linalg.pinv(Fn, rcond=1e-12, hermitian=True) @ gn
        return pseudo_solve(F, gvec, self.family)

    def _as_expr(self, e: Any) -> sp.Expr:
        if isinstance(e, str):
            from symfisher.parse import parse_expr

            return parse_expr(e, {p.name: p for p in self.family.params})
        return sp.sympify(e) if isinstance(e, int | float) else e

    # -- views ----------------------------------------------------------------
    @property
    def method(self) -> dict[str, str]:
        """Route name to the method that produced it."""
        return {k: v[0] for k, v in self.provenance.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (strings for expressions)."""
        return {
            "family": self.family.name,
            "params": list(self.family.param_names),
            "regular": self.regular,
            "regularity": self.regularity,
            "fisher": None if self.fisher is None else sp.sstr(self.fisher.tolist()),
            "routes": {
                k: {
                    "matrix": None if m is None else sp.sstr(m.tolist()),
                    "method": self.provenance[k][0],
                    "detail": self.provenance[k][1],
                    "seconds": round(self.provenance[k][2], 4),
                }
                for k, m in self.routes.items()
            },
            "agreement": {f"{a} vs {b}": s for (a, b), s in self.agreement.items()},
            "mean_score": self.mean_score_status,
            "kl": None if self.kl is None else sp.sstr(self.kl),
            "kl_method": self.kl_method,
            "entropy": None if self.entropy is None else sp.sstr(self.entropy),
            "entropy_method": self.entropy_method,
            "entropy_detail": self.entropy_detail,
            "seconds": round(self.seconds, 3),
            "from_cache": self.from_cache,
        }


def _numerically_singular(F: sp.Matrix, family: Family) -> bool:
    """Whether ``F`` is singular at random valid points (50-digit arithmetic)."""
    import random

    from symfisher.derive.numeric import random_point

    rng = random.Random(family.definition_hash())
    for _ in range(3):
        pt = {p: sp.Float(v, DPS) for p, v in random_point(family, rng).items()}
        with mpmath.workdps(DPS):
            M = mpmath.matrix(
                [
                    [mpmath.mpf(str(v)) for v in row]
                    for row in F.evalf(DPS, subs=pt).tolist()
                ]
            )
            eig = mpmath.eigsy(M)[0]
            lo, hi = min(abs(e) for e in eig), max(abs(e) for e in eig)
            if lo > hi * mpmath.mpf(10) ** -30:
                return False
    return True


def _inverse(F: sp.Matrix, family: Family) -> sp.Matrix:
    if _numerically_singular(F, family):
        raise DerivationError(
            f"{family.name}: the Fisher matrix is singular; the Cramér–Rao bound "
            "needs F invertible (use natural_gradient for the pseudo-inverse)"
        )
    try:
        return run_limited(
            lambda: F.inv(method="LU").applyfunc(tidy),
            20,
            key=fingerprint("inverse", 20, F),
        )
    except SymbolicTimeout as e:
        raise DerivationError(
            f"{family.name}: the symbolic inverse of F exceeded its time limit; "
            "invert fisher_at(point) numerically instead"
        ) from e


def _constant_nullspace(F: sp.Matrix, family: Family) -> list[sp.Matrix] | None:
    """A parameter-free basis of ker F (e.g. the all-ones vector for softmax).

    Found numerically at a random point, rounded to rationals, then confirmed
    symbolically (``simplify(F v) == 0``); ``None`` when that fails.
    """
    import random

    from symfisher.derive.numeric import random_point

    pt = {
        p: sp.Float(v, DPS) for p, v in random_point(family, random.Random(1)).items()
    }
    Fn = np.array(F.evalf(DPS, subs=pt).tolist(), dtype=float)
    w, V = np.linalg.eigh(Fn)
    basis = []
    for k in np.flatnonzero(np.abs(w) <= 1e-12 * np.abs(w).max()):
        v = V[:, k] / V[np.argmax(np.abs(V[:, k])), k]
        vec = sp.Matrix([sp.nsimplify(round(c, 10), rational=True) for c in v])
        if any(tidy(e) != 0 for e in F * vec):
            return None
        basis.append(vec)
    return basis


def pseudo_solve(F: sp.Matrix, g: sp.Matrix, family: Family) -> sp.Matrix:
    r"""Minimum-norm solution :math:`F^{+} g` for a symmetric :math:`F`, time-limited.

    With :math:`P` the projector on :math:`\ker F`,
    :math:`F^+ = (F + P)^{-1} - P`; equals :math:`F^{-1}` when :math:`F` is
    invertible. Solved by LU, never by forming the inverse.

    Raises:
      DerivationError: when SymPy cannot finish in time (use a numeric point).
    """

    def compute() -> sp.Matrix:
        null = _constant_nullspace(F, family)
        if null is None:
            null = [v.applyfunc(tidy) for v in F.nullspace(simplify=True)]
        if not null:
            return F.LUsolve(g)
        N = sp.Matrix.hstack(*null)
        P = N * (N.T * N).inv() * N.T
        return (F + P).LUsolve(g) - P * g

    try:
        x = run_limited(compute, 30, key=fingerprint("pseudo_solve", 30, F, g))
    except SymbolicTimeout as e:
        raise DerivationError(
            f"{family.name}: the symbolic pseudo-inverse exceeded its time limit; "
            "pass point=... for a numeric natural gradient"
        ) from e
    return x.applyfunc(lambda e: tidy(e, 2.0))


# -- the derivation ----------------------------------------------------------------
def derive_uncached(family: Family, seconds: float = 20.0) -> Derivation:
    """Run every derivation for ``family`` (no cache) within ``seconds`` in all.

    Steps with a recorded outcome replay it (:mod:`symfisher.outcomes`); the rest
    share the budget, and what it cuts is left unresolved (answered numerically).
    """
    from symfisher.cache import timed

    return timed(lambda: _derive(family, seconds), seconds, total=True)


def _derive(family: Family, seconds: float) -> Derivation:
    t0 = time.perf_counter()
    s = routes_mod.score(family)
    H = routes_mod.hessian(family)
    r1, mean = routes_mod.score_covariance(family, s, seconds)
    r2 = routes_mod.neg_expected_hessian(family, H, seconds)
    div: KL = closed_kl(family, seconds / 4)
    r3 = routes_mod.kl_hessian(family, div, seconds)
    ent = entropy_mod.entropy(family, seconds / 4)
    route_list = [r1, r2, r3]
    routes = {r.name: r.matrix for r in route_list}
    prov = {r.name: (r.method, r.detail, r.seconds) for r in route_list}
    regular = not family.support_depends_on_params
    agree: dict[tuple[str, str], str] = {}
    agree_detail: dict[tuple[str, str], str] = {}
    for i, a in enumerate(ROUTES):
        for b in ROUTES[i + 1 :]:
            by_name = {r.name: r for r in route_list}
            st, det = agreement.compare_routes(family, by_name[a], by_name[b])
            agree[(a, b)] = st
            agree_detail[(a, b)] = det
    mean_status = _mean_score_status(family, mean)
    fisher = None
    regularity = None
    if regular:
        fisher = _agreed(routes, agree)
    else:
        regularity = _regularity_report(family, routes, mean)
    return Derivation(
        family=family,
        score=s,
        hessian=H,
        routes=routes,
        provenance=prov,
        agreement=agree,
        agreement_detail=agree_detail,
        fisher=fisher,
        mean_score=mean,
        mean_score_status=mean_status,
        kl=div.expr,
        kl_primed=div.primed,
        kl_method=div.method,
        kl_detail=div.detail,
        regular=regular,
        regularity=regularity,
        seconds=time.perf_counter() - t0,
        entropy=ent.expr,
        entropy_method=ent.method,
        entropy_detail=ent.detail,
    )


def _mean_score_status(family: Family, mean: sp.Matrix | None) -> str:
    if mean is None:
        return agreement.UNRESOLVED
    if all(is_zero(m) is True for m in mean):
        return agreement.PROVED
    gap = agreement.numeric_gap(family, mean, sp.zeros(*mean.shape))
    if gap is not None and gap <= sp.Float(10) ** -40:
        return agreement.TESTED
    return "nonzero"


def _agreed(
    routes: dict[str, sp.Matrix | None], agree: dict[tuple[str, str], str]
) -> sp.Matrix | None:
    """The simplest resolved route, provided no resolved pair differs."""
    if any(s == agreement.DIFFERS for s in agree.values()):
        return None
    resolved = [m for m in routes.values() if m is not None]
    if not resolved:
        return None
    return min(resolved, key=lambda m: sp.count_ops(m))


def _regularity_report(
    family: Family, routes: dict[str, sp.Matrix | None], mean: sp.Matrix | None
) -> str:
    deps = ", ".join(p.name for p in family.support_depends_on_params)
    parts = [
        f"non-regular: the support {sp.sstr(family.support)} depends on {deps}, "
        "so differentiation and integration do not commute and the Fisher "
        "identities fail"
    ]
    if mean is not None:
        parts.append(f"E[s] = {sp.sstr(mean.T.tolist()[0])} (not 0)")
    for name in ROUTES:
        m = routes.get(name)
        shown = "unresolved" if m is None else sp.sstr(m.tolist())
        parts.append(f"{name} = {shown}")
    parts.append(
        "these disagree, so no Fisher matrix is claimed and the Cramér–Rao bound "
        "does not apply"
    )
    return "; ".join(parts)


# -- cached entry point --------------------------------------------------------------
_MEMORY: dict[str, Derivation] = {}
_FIELDS = (
    "score",
    "hessian",
    "routes",
    "provenance",
    "agreement",
    "agreement_detail",
    "fisher",
    "mean_score",
    "mean_score_status",
    "kl",
    "kl_primed",
    "kl_method",
    "kl_detail",
    "regular",
    "regularity",
    "seconds",
    "entropy",
    "entropy_method",
    "entropy_detail",
    "steps",
    "by_clock",
    "budget",
)


def derive(
    family: Family | str, *, use_cache: bool = True, seconds: float = 20.0, **size: int
) -> Derivation:
    """Derive score, Hessian, Fisher (three routes), KL, entropy for a family; cached.

    Args:
      family: a :class:`Family` or a catalog name (then ``size`` keywords apply).
      use_cache: read and write the on-disk cache (and an in-memory memo).
      seconds: time budget of the whole symbolic derivation (and the nominal
        limit of each route's integration); what it cuts is marked unresolved and
        answered numerically (:meth:`Derivation.fisher_at`). A cached result cut
        short by less time is not reused.
      **size: size keywords of a catalog name (``K=5``, ``d=3``).
    """
    from symfisher import cache

    if isinstance(family, str):
        from symfisher.families.catalog import family as by_name

        family = by_name(family, **size)
    elif size:
        raise DomainError("size keywords apply only to catalog names")
    if not use_cache:
        return derive_uncached(family, seconds)
    fam = family
    return cache.cached(
        fam,
        _MEMORY,
        seconds,
        lambda: derive_uncached(fam, seconds),
        lambda payload: Derivation(family=fam, from_cache=True, **payload),
        _FIELDS,
    )
