r"""The built-in state-conditioned policies, at small symbolic sizes.

- ``linear_softmax(K, d)``: :math:`\pi(a\mid s) = \mathrm{softmax}(W\varphi(s))_a`,
  a Boltzmann policy over features :math:`\varphi(s, a) = e_a \otimes \varphi(s)`,
  :math:`\theta = W \in \mathbb R^{K\times d}`; states finite with probabilities
  :math:`\rho`.
- ``linear_gaussian(n, m)``: :math:`a \sim \mathcal N(W s + b, \mathrm{diag}\,e^{2\omega})`,
  :math:`\theta = [W \mid b \mid \omega] \in \mathbb R^{m\times(n+2)}`,
  :math:`s \sim \mathcal N(0, \Sigma)`.
- ``tabular_softmax(S, K)``: :math:`\pi(a\mid s) = \mathrm{softmax}(\theta_{s})_a`,
  :math:`\theta \in \mathbb R^{S\times K}` (linear-softmax over one-hot states),
  :math:`s` with probabilities :math:`\rho`.

The generated kernels take any size from their inputs' shapes; the symbolic sizes
here are what the derivation proves things at.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache

import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.catalog._gaussian import LOG_2PI, _normal_expfam
from symfisher.families.catalog._indicator import _indicator_sum
from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import ExpFamily, Family, check_size
from symfisher.families.policy import Policy
from symfisher.families.states import FiniteStates, GaussianStates

REAL = DOMAINS["real"]
UNIT = DOMAINS["unit_interval"]
POS = DOMAINS["positive"]


def _state_probs(S: int) -> tuple[tuple[sp.Expr, ...], tuple[sp.Symbol, ...]]:
    r""":math:`\rho_0..\rho_{S-2}` free, :math:`\rho_{S-1} = 1 - \sum_i \rho_i`."""
    if S == 2:
        rho = sp.Symbol("rho", positive=True)
        return (rho, 1 - rho), (rho,)
    rhos = tuple(sp.Symbol(f"rho_{i}", positive=True) for i in range(S - 1))
    return (*rhos, 1 - sp.Add(*rhos)), rhos


def _softmax_conditional(
    name: str,
    theta: list[sp.Symbol],
    logits: list[sp.Expr],
    states: tuple[sp.Symbol, ...],
    K: int,
) -> Family:
    a = sp.Symbol("a", integer=True, nonnegative=True)
    lse = sp.log(sp.Add(*[sp.exp(z) for z in logits]))
    return Family(
        name=f"{name} | s",
        params=(*theta, *states),
        domains=tuple(REAL for _ in (*theta, *states)),
        variables=(a,),
        log_density=_indicator_sum(a, logits) - lse,
        supports=(sp.Range(0, K),),
        description=f"{name} conditional on the state",
    )


def linear_softmax(K: int = 2, d: int = 2) -> Policy:
    r""":math:`\pi(a\mid s) = e^{z_a}/\sum_b e^{z_b}`, :math:`z = W\varphi(s)`.

    States: :math:`\varphi(s_0) = e_0` and :math:`\varphi(s_i) = e_0 + e_i`
    (a bias feature and one indicator), with probabilities :math:`\rho`.
    """
    check_size("linear_softmax", "K", K, 2)
    check_size("linear_softmax", "d", d, 1)
    W = [[real(f"w_{a}{j}") for j in range(d)] for a in range(K)]
    phi = tuple(real(f"phi_{j}") for j in range(d))
    logits = [sp.Add(*[w * f for w, f in zip(row, phi, strict=True)]) for row in W]
    theta = [w for row in W for w in row]
    support = tuple(
        tuple(sp.Integer(int(j == 0 or j == i)) for j in range(d)) for i in range(d)
    )
    probs, rho = _state_probs(d) if d > 1 else ((sp.Integer(1),), ())
    states = FiniteStates(
        symbols=phi,
        support=support,
        probs=probs,
        params=rho,
        domains=tuple(UNIT for _ in rho),
        default=tuple(1.0 / d for _ in rho),
    )
    return Policy(
        name="linear_softmax",
        theta=tuple(theta),
        theta_shape=(K, d),
        conditional=_softmax_conditional("linear_softmax", theta, logits, phi, K),
        states=states,
        state_format="features",
        size=(("K", K), ("d", d)),
        description=f"Linear-softmax policy, K={K} actions, d={d} state features",
    )


def tabular_softmax(S: int = 2, K: int = 2) -> Policy:
    r""":math:`\pi(a\mid s) = \mathrm{softmax}(\theta_s)_a` over one-hot states :math:`e_s`."""
    check_size("tabular_softmax", "S", S, 2)
    check_size("tabular_softmax", "K", K, 2)
    T = [[real(f"theta_{s}{a}") for a in range(K)] for s in range(S)]
    e = tuple(real(f"e_{s}") for s in range(S))
    logits = [sp.Add(*[e[s] * T[s][a] for s in range(S)]) for a in range(K)]
    theta = [t for row in T for t in row]
    probs, rho = _state_probs(S)
    states = FiniteStates(
        symbols=e,
        support=tuple(
            tuple(sp.Integer(int(i == j)) for j in range(S)) for i in range(S)
        ),
        probs=probs,
        params=rho,
        domains=tuple(UNIT for _ in rho),
        default=tuple(1.0 / S for _ in rho),
    )
    return Policy(
        name="tabular_softmax",
        theta=tuple(theta),
        theta_shape=(S, K),
        conditional=_softmax_conditional("tabular_softmax", theta, logits, e, K),
        states=states,
        state_format="index",
        size=(("S", S), ("K", K)),
        description=f"Tabular softmax policy, S={S} states, K={K} actions",
    )


def linear_gaussian(n: int = 2, m: int = 1) -> Policy:
    r""":math:`a_i \sim \mathcal N(\mu_i, e^{2\omega_i})`, :math:`\mu = W s + b`, :math:`s\sim\mathcal N(0,\Sigma)`.

    .. math:: \log\pi = \sum_i -\tfrac12 (a_i-\mu_i)^2 e^{-2\omega_i} - \omega_i
       - \tfrac12 \log 2\pi
    """
    check_size("linear_gaussian", "n", n, 1)
    check_size("linear_gaussian", "m", m, 1)
    s = tuple(real(f"s_{j}") for j in range(1, n + 1))
    rows, mus, omegas, acts = [], [], [], []
    for i in range(1, m + 1):
        w = [real(f"w_{i}{j}") for j in range(1, n + 1)]
        b, om = real(f"b_{i}"), real(f"omega_{i}")
        rows.append([*w, b, om])
        mus.append(sp.Add(*[wj * sj for wj, sj in zip(w, s, strict=True)]) + b)
        omegas.append(om)
        acts.append(real(f"a_{i}"))
    theta = [t for row in rows for t in row]
    logp = sp.Add(
        *[
            -((a - mu) ** 2) * sp.exp(-2 * om) / 2 - om - LOG_2PI / 2
            for a, mu, om in zip(acts, mus, omegas, strict=True)
        ]
    )
    parts = [
        _normal_expfam(a, mu, sp.exp(2 * om), suffix=f"_{i}")
        for i, (a, mu, om) in enumerate(zip(acts, mus, omegas, strict=True), 1)
    ]
    expfam = ExpFamily(
        eta=tuple(e for p in parts for e in p.eta),
        T=tuple(t for p in parts for t in p.T),
        A=sp.Add(*[p.A for p in parts]),
        nat=tuple(v for p in parts for v in p.nat),
        log_h=-m * LOG_2PI / 2,
        atoms=tuple(2 * i for i in range(m)),
    )
    conditional = Family(
        name="linear_gaussian | s",
        params=(*theta, *s),
        domains=tuple(REAL for _ in (*theta, *s)),
        variables=tuple(acts),
        log_density=logp,
        supports=tuple(SUPPORTS["reals"] for _ in acts),
        expfam=expfam,
        description="linear_gaussian conditional on the state",
    )
    cov = sp.zeros(n, n)
    params, domains, default = [], [], []
    for i in range(n):
        for j in range(i, n):
            sym = (
                sp.Symbol(f"Sigma_{i + 1}{j + 1}", positive=True)
                if i == j
                else real(f"Sigma_{i + 1}{j + 1}")
            )
            cov[i, j] = cov[j, i] = sym
            params.append(sym)
            domains.append(POS if i == j else REAL)
            default.append(1.0 if i == j else 0.3)
    states = GaussianStates(
        symbols=s,
        mean=sp.zeros(n, 1),
        cov=cov,
        params=tuple(params),
        domains=tuple(domains),
        default=tuple(default),
    )
    return Policy(
        name="linear_gaussian",
        theta=tuple(theta),
        theta_shape=(m, n + 2),
        conditional=conditional,
        states=states,
        state_format="features",
        size=(("n", n), ("m", m)),
        description=f"Linear-Gaussian policy, n={n} state dims, m={m} action dims",
    )


#: Policy builders in display order.
BUILDERS: dict[str, Callable[..., Policy]] = {
    "linear_softmax": linear_softmax,
    "linear_gaussian": linear_gaussian,
    "tabular_softmax": tabular_softmax,
}


def policies() -> list[str]:
    """Names of the built-in state-conditioned policies."""
    return list(BUILDERS)


def policy(name: str, **size: int) -> Policy:
    """A built-in policy by name, e.g. ``policy("linear_softmax", K=4, d=3)``.

    Raises:
      FamilyError: for an unknown name or a size keyword the policy does not take.
    """
    if name not in BUILDERS:
        raise FamilyError(
            f"unknown policy {name!r}; the catalog has {', '.join(BUILDERS)}"
        )
    allowed = inspect.signature(BUILDERS[name]).parameters
    extra = sorted(set(size) - set(allowed))
    if extra:
        raise FamilyError(f"policy {name!r} takes {sorted(allowed)}; got {extra}")
    return _build(name, tuple(sorted(size.items())))


@cache
def _build(name: str, size: tuple[tuple[str, int], ...]) -> Policy:
    return BUILDERS[name](**dict(size))
