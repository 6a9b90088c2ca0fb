r"""Fisher information of a state-conditioned policy, by three routes, over states.

.. math::
   F^{(1)} = \mathbb E_s \mathbb E_{a\mid s}[s_\theta s_\theta^\top], \quad
   F^{(2)} = -\mathbb E_s \mathbb E_{a\mid s}[\nabla^2_\theta \log\pi], \quad
   F^{(3)} = \nabla^2_{\theta'} \mathbb E_s\,\mathrm{KL}\big(\pi_\theta(\cdot\mid s)
   \,\|\,\pi_{\theta'}(\cdot\mid s)\big)\big|_{\theta'=\theta}

The inner expectations over actions use the family machinery on the conditional
family (parameters :math:`(\theta, s)`, derivatives in :math:`\theta` only); the
outer one the state distribution (Gaussian moments or an exact finite sum). The
three routes stay independent; their agreement is proved (``simplify``) or tested
at 50 digits, as for families.

Also derived, for the linear policies: the diagonal and K-FAC approximations
(:mod:`symfisher.derive.approximations`) with their exact Frobenius errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symfisher.derive import agreement
from symfisher.derive.derivation import _agreed, _mean_score_status
from symfisher.derive.expectation import expect
from symfisher.derive.fisher import ROUTES, _pairs, _symmetric
from symfisher.derive.kl import kl as closed_kl
from symfisher.derive.memo import once
from symfisher.derive.simplify import tidy
from symfisher.errors import DerivationError, SymbolicTimeout
from symfisher.families.policy import Policy
from symfisher.families.states import NotPolynomialInStates
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited

DPS = 50


@dataclass(frozen=True)
class PolicyRoute:
    r"""One route's :math:`\mathbb E_s[F(s)]` (or ``None``) and how it was obtained."""

    name: str
    conditional: sp.Matrix | None  # F(s) by this route, before the state expectation
    matrix: sp.Matrix | None  # E_s[F(s)]
    method: str
    seconds: float


@dataclass
class PolicyDerivation:
    r"""Symbolic results for one state-conditioned policy.

    Attributes:
      policy: the policy derived.
      score: :math:`\nabla_\theta \log\pi(a\mid s)` (column).
      hessian: :math:`\nabla^2_\theta \log\pi(a\mid s)`.
      routes: route name to :class:`PolicyRoute`.
      agreement: ``(route_a, route_b)`` to proved / tested / differs / unresolved,
        for :math:`\mathbb E_s[F(s)]`.
      conditional_agreement: the same for :math:`F(s)` before the state expectation.
      fisher_state: the agreed :math:`F(s)`, or ``None``.
      fisher: the agreed :math:`\mathbb E_s[F(s)]`, or ``None``.
      mean_score: :math:`\mathbb E_s\mathbb E_{a|s}[s_\theta]` and its status.
      kl_state: :math:`\mathrm{KL}(\pi_\theta(\cdot|s)\|\pi_{\theta'}(\cdot|s))`.
      kl: :math:`\mathbb E_s[\mathrm{KL}]`, or ``None``.
      kl_primed: the symbols :math:`\theta'`.
      seconds: wall time.
      steps, by_clock, budget: how the clock shaped it (as in
        :class:`~symfisher.derive.derivation.Derivation`).
    """

    policy: Policy
    score: sp.Matrix
    hessian: sp.Matrix
    routes: dict[str, PolicyRoute]
    agreement: dict[tuple[str, str], str]
    agreement_detail: dict[tuple[str, str], str]
    conditional_agreement: dict[tuple[str, str], str]
    fisher_state: sp.Matrix | None
    fisher: sp.Matrix | None
    mean_score: sp.Matrix | None
    mean_score_status: str
    kl_state: sp.Expr | None
    kl: sp.Expr | None
    kl_primed: tuple[sp.Symbol, ...]
    seconds: float
    from_cache: bool = False
    steps: dict[str, str] = field(default_factory=dict, repr=False)
    by_clock: int = 0
    budget: float = 0.0
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def provenance(self) -> dict[str, str]:
        r"""Route name to how :math:`\mathbb E_s[F(s)]` was obtained."""
        return {k: r.method for k, r in self.routes.items()}

    def fisher_at(self, point: dict[str, float]) -> np.ndarray:
        r""":math:`\mathbb E_s[F(s)]` at :math:`\theta` and the state distribution's values.

        Missing state-distribution values take their defaults; float64 out.

        Raises:
          DerivationError: when no route gave a closed form.
          DomainError: for an unknown name.
        """
        if self.fisher is None:
            raise DerivationError(
                f"{self.policy.name}: no closed-form E_s[F(s)] "
                f"({'; '.join(f'{k}: {v}' for k, v in self.provenance.items())}); "
                "use the generated kernels over state samples"
            )
        sub = self.substitution(point)
        vals = self.fisher.evalf(DPS, subs=sub)
        return np.array(vals.tolist(), dtype=np.float64)

    def substitution(self, point: dict[str, float]) -> dict[sp.Symbol, sp.Float]:
        r"""Symbols of :math:`\theta` and :math:`\psi` to 50-digit values."""
        from symfisher.errors import DomainError

        pol = self.policy
        st = pol.states
        by_name = {p.name: p for p in (*pol.theta, *st.params)}
        unknown = sorted(set(point) - set(by_name))
        if unknown:
            raise DomainError(
                f"{pol.name}: unknown parameter(s) {unknown}; expected "
                f"{[p.name for p in pol.theta]} and state parameters "
                f"{[p.name for p in st.params]}"
            )
        missing = [p.name for p in pol.theta if p.name not in point]
        if missing:
            raise DomainError(f"{pol.name}: missing parameter(s) {missing}")
        sub = dict(zip(st.params, st.default, strict=True))
        sub |= {by_name[k]: v for k, v in point.items()}
        return {k: sp.Float(float(v), DPS) for k, v in sub.items()}

    def summary(self) -> dict[str, Any]:
        """Plain-data summary for tables and JSON."""
        return {
            "policy": self.policy.name,
            "parameters": [p.name for p in self.policy.theta],
            "states": self.policy.states.description,
            "routes": {
                k: {"method": r.method, "resolved": r.matrix is not None}
                for k, r in self.routes.items()
            },
            "agreement": {f"{a} = {b}": s for (a, b), s in self.agreement.items()},
            "mean_score": self.mean_score_status,
            "fisher": None if self.fisher is None else sp.sstr(self.fisher.tolist()),
        }


#: Entries larger than this (``count_ops``) are kept as derived, not simplified:
#: whether a bigger simplification finishes within its time limit depends on the
#: machine, and the catalog document must be the same everywhere.
TIDY_OPS = 80


def _tidy(expr: sp.Expr) -> sp.Expr:
    """Simplify small expressions (well inside the limit on any machine), keep big ones."""
    return tidy(expr, seconds=20.0) if sp.count_ops(expr) <= TIDY_OPS else expr


def _tidy_matrix(M: sp.Matrix) -> sp.Matrix:
    return M.applyfunc(_tidy)


def _state_expect(policy: Policy, M: sp.Matrix, seconds: float) -> sp.Matrix | None:
    st = policy.states

    def run() -> sp.Matrix:
        return sp.Matrix(M.rows, M.cols, st.expect(list(M)))

    try:
        key = fingerprint("state_expect", seconds, policy.definition_text(), M)
        return run_limited(run, seconds, key=key)
    except (NotPolynomialInStates, SymbolicTimeout):
        return None


def _why_not(policy: Policy, M: sp.Matrix) -> str:
    try:
        policy.states.expect([M[0, 0]])
    except NotPolynomialInStates as e:
        return f"unresolved: E_s has no closed form ({e}); use state samples"
    return "unresolved: the state expectation exceeded its time limit"


def derive_policy_uncached(policy: Policy, seconds: float = 20.0) -> PolicyDerivation:
    """Run every derivation for ``policy`` (no cache); ``seconds`` bounds each step."""
    t0 = time.perf_counter()
    fam = policy.conditional
    theta = policy.theta
    n = len(theta)
    logp = fam.log_density
    s = sp.Matrix([sp.diff(logp, p) for p in theta])
    H = sp.hessian(logp, theta)
    pairs = _pairs(n)

    conditional: dict[str, sp.Matrix | None] = {}
    methods: dict[str, str] = {}
    times: dict[str, float] = {}

    # route 1 and the mean score
    t = time.perf_counter()
    res = expect(
        fam, [s[i] for i in range(n)] + [s[i] * s[j] for i, j in pairs], seconds
    )
    mean_cond = None
    if res.values is None:
        conditional[ROUTES[0]], methods[ROUTES[0]] = None, f"unresolved: {res.detail}"
    else:
        mean_cond = sp.Matrix(res.values[:n])
        conditional[ROUTES[0]] = _symmetric(n, list(res.values[n:]))
        methods[ROUTES[0]] = f"E_a|s: {res.method}"
    times[ROUTES[0]] = time.perf_counter() - t

    # route 2
    t = time.perf_counter()
    res = expect(fam, [-H[i, j] for i, j in pairs], seconds)
    if res.values is None:
        conditional[ROUTES[1]], methods[ROUTES[1]] = None, f"unresolved: {res.detail}"
    else:
        conditional[ROUTES[1]] = _symmetric(n, list(res.values))
        methods[ROUTES[1]] = f"E_a|s: {res.method}"
    times[ROUTES[1]] = time.perf_counter() - t

    # route 3: KL(pi(.|s; theta) || pi(.|s; theta')) with the state held fixed
    t = time.perf_counter()
    div = closed_kl(fam, seconds / 4)
    primed_all = div.primed
    theta_p = primed_all[:n]
    same_state = dict(zip(primed_all[n:], fam.params[n:], strict=True))
    kl_state = None if div.expr is None else div.expr.subs(same_state)
    kl_mean = None
    if kl_state is not None:
        cond3 = _kl_hessian(kl_state, theta, theta_p, seconds)
        conditional[ROUTES[2]] = cond3
        methods[ROUTES[2]] = f"Hessian of E_s[KL]; KL|s: {div.method}"
        km = _state_expect(policy, sp.Matrix([kl_state]), seconds)
        kl_mean = None if km is None else _tidy(km[0])
    else:
        conditional[ROUTES[2]] = None
        methods[ROUTES[2]] = f"unresolved: no closed-form KL|s ({div.detail})"
    times[ROUTES[2]] = time.perf_counter() - t

    # outer expectation over states, each route on its own
    routes: dict[str, PolicyRoute] = {}
    for name in ROUTES[:2]:
        t = time.perf_counter()
        Fs = conditional[name]
        M = None if Fs is None else _state_expect(policy, Fs, seconds)
        method = methods[name]
        if Fs is not None:
            method = (
                f"{method}; E_s: {policy.states.method}"
                if M is not None
                else _why_not(policy, Fs)
            )
        routes[name] = PolicyRoute(
            name,
            None if Fs is None else _tidy_matrix(Fs),
            None if M is None else _tidy_matrix(M),
            method,
            times[name] + time.perf_counter() - t,
        )
    t = time.perf_counter()
    M3 = None
    method3 = methods[ROUTES[2]]
    if kl_mean is not None:
        M3 = _kl_hessian(kl_mean, theta, theta_p, seconds)
        method3 = f"{method3}; E_s: {policy.states.method}"
    elif kl_state is not None:
        method3 = _why_not(policy, sp.Matrix([kl_state]))
    c3 = conditional[ROUTES[2]]
    routes[ROUTES[2]] = PolicyRoute(
        ROUTES[2],
        None if c3 is None else _tidy_matrix(c3),
        None if M3 is None else _tidy_matrix(M3),
        method3,
        times[ROUTES[2]] + time.perf_counter() - t,
    )

    cmp_fam = policy.parameter_family()
    agree, detail, cond_agree = {}, {}, {}
    for i, a in enumerate(ROUTES):
        for b in ROUTES[i + 1 :]:
            st, det = _compare(cmp_fam, routes[a].matrix, routes[b].matrix)
            agree[(a, b)], detail[(a, b)] = st, det
            cond_agree[(a, b)] = _compare(
                fam, routes[a].conditional, routes[b].conditional
            )[0]
    mean = None if mean_cond is None else _state_expect(policy, mean_cond, seconds)
    mean_status = _mean_score_status(cmp_fam, mean)
    return PolicyDerivation(
        policy=policy,
        score=s,
        hessian=H,
        routes=routes,
        agreement=agree,
        agreement_detail=detail,
        conditional_agreement=cond_agree,
        fisher_state=_agreed({k: r.conditional for k, r in routes.items()}, cond_agree),
        fisher=_agreed({k: r.matrix for k, r in routes.items()}, agree),
        mean_score=None if mean is None else _tidy_matrix(mean),
        mean_score_status=mean_status,
        kl_state=None if kl_state is None else _tidy(kl_state),
        kl=kl_mean,
        kl_primed=tuple(theta_p),
        seconds=time.perf_counter() - t0,
    )


def _exp_free(expr: sp.Expr) -> sp.Expr:
    r""":math:`e^{c\,w}\mapsto u_w^c` for every symbol :math:`w`: a rational function."""
    expr = sp.expand(sp.powsimp(expr), power_exp=True, mul=False, log=False)
    atoms = sorted(
        {e.args[0] for e in expr.atoms(sp.exp) if e.args[0].is_Symbol}, key=str
    )
    sub = {sp.exp(w): sp.Dummy(f"u_{w}", positive=True) for w in atoms}
    return expr.xreplace(sub)


def _rational_zero(expr: sp.Expr, seconds: float = 30.0) -> bool:
    """``expr == 0`` shown by cancelling it as a rational function of the ``e^w``."""
    if expr == 0:
        return True
    key = fingerprint("rational_zero", seconds, expr)

    def cancels() -> bool:
        free = _exp_free(expr)
        return not _nonzero_at_a_point(free) and sp.cancel(free) == 0

    def compute() -> bool:
        try:
            return run_limited(cancels, seconds, key=key)
        except (SymbolicTimeout, sp.PolynomialError):
            return False

    return once((key, expr), compute)


def _nonzero_at_a_point(expr: sp.Expr) -> bool:
    r"""Whether ``expr`` is a nonzero rational number at one exact rational point.

    ``cancel`` takes :math:`e^{c\,w}` (integer :math:`c`) as :math:`g_w^c` with
    :math:`g_w = e^w` a generator of its own. Giving every symbol and every
    :math:`g_w` a rational value evaluates the rational function ``cancel`` would
    reduce; a nonzero value there proves that ``cancel(expr) != 0``, without the
    (slow) cancellation. ``False`` says nothing: ``cancel`` decides.
    """
    gens: dict[sp.Expr, sp.Expr] = {}
    for e in expr.atoms(sp.exp):
        c, w = e.args[0].as_coeff_Mul()
        if not (c.is_Integer and w.is_Symbol):
            return False
        gens[e] = sp.exp(w)
    names = sorted({*expr.free_symbols, *gens.values()}, key=sp.default_sort_key)
    value = {g: sp.Rational(k + 2, k + 3) for k, g in enumerate(names)}
    point = {e: value[g] ** e.args[0].as_coeff_Mul()[0] for e, g in gens.items()}
    point |= {s: value[s] for s in expr.free_symbols}
    out = expr.xreplace(point)
    return out.is_Rational and out != 0


def _compare(fam: Any, a: sp.Matrix | None, b: sp.Matrix | None) -> tuple[str, str]:
    """Agreement of two matrices: the rational fast path, else :func:`agreement.compare`."""
    if a is not None and b is not None:
        if all(_rational_zero(x - y) for x, y in zip(a, b, strict=True)):
            return agreement.PROVED, "cancel(a - b) == 0 as rational functions of e^w"
    return agreement.compare(fam, a, b)


def _kl_hessian(
    expr: sp.Expr,
    theta: tuple[sp.Symbol, ...],
    primed: tuple[sp.Symbol, ...],
    seconds: float,
) -> sp.Matrix | None:
    back = dict(zip(primed, theta, strict=True))
    n = len(theta)

    def hess() -> sp.Matrix:
        vals = [sp.diff(expr, primed[i], primed[j]).subs(back) for i, j in _pairs(n)]
        return _symmetric(n, vals)

    try:
        key = fingerprint("policy_kl_hessian", seconds, expr, theta, primed)
        return run_limited(hess, seconds, key=key)
    except SymbolicTimeout:
        return None


# -- cached entry point --------------------------------------------------------------
_MEMORY: dict[str, PolicyDerivation] = {}
_FIELDS = (
    "score",
    "hessian",
    "routes",
    "agreement",
    "agreement_detail",
    "conditional_agreement",
    "fisher_state",
    "fisher",
    "mean_score",
    "mean_score_status",
    "kl_state",
    "kl",
    "kl_primed",
    "seconds",
    "steps",
    "by_clock",
    "budget",
)


def derive_policy(
    policy: Policy | str,
    *,
    use_cache: bool = True,
    seconds: float = 20.0,
    **size: int,
) -> PolicyDerivation:
    r"""Derive :math:`F(s)` and :math:`\mathbb E_s[F(s)]` by three routes; cached on disk.

    Args:
      policy: a :class:`~symfisher.families.policy.Policy` or a built-in name
        (``linear_softmax``, ``linear_gaussian``, ``tabular_softmax``).
      use_cache: read and write the on-disk derivation cache.
      seconds: time limit of each symbolic step.
      **size: size keywords of a built-in name (``K=4``, ``d=3``, ``n=2``, …).
    """
    from symfisher import cache

    if isinstance(policy, str):
        from symfisher.families.policies import policy as by_name

        policy = by_name(policy, **size)
    elif size:
        raise DerivationError("size keywords apply only to built-in policy names")
    pol = policy

    def compute() -> PolicyDerivation:
        run = lambda: derive_policy_uncached(pol, seconds)  # noqa: E731
        return cache.timed(run, seconds, total=False)

    if not use_cache:
        return compute()
    return cache.cached(
        pol,  # type: ignore[arg-type]
        _MEMORY,
        seconds,
        compute,
        lambda payload: PolicyDerivation(policy=pol, from_cache=True, **payload),
        _FIELDS,
    )
