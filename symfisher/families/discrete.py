r"""Discrete catalog families: Bernoulli, Categorical, Poisson."""

from __future__ import annotations

import sympy as sp

from symfisher.families.domains import DOMAINS, SUPPORTS, positive, real
from symfisher.families.family import ExpFamily, Family, check_size
from symfisher.families.lazy import lazy_sampler

UNIT = DOMAINS["unit_interval"]
REAL = DOMAINS["real"]
POS = DOMAINS["positive"]


def bernoulli() -> Family:
    r""":math:`\log p = x\log p + (1-x)\log(1-p)`, :math:`x\in\{0,1\}`."""
    p = sp.Symbol("p", positive=True)
    x = sp.Symbol("x", integer=True, nonnegative=True)
    return Family(
        name="bernoulli",
        params=(p,),
        domains=(UNIT,),
        variables=(x,),
        log_density=x * sp.log(p) + (1 - x) * sp.log(1 - p),
        supports=(SUPPORTS["binary"],),
        sampler=lazy_sampler("bernoulli"),
        description="Bernoulli(p), probability parameter",
    )


def bernoulli_logit() -> Family:
    r""":math:`\log p = x\eta - \log(1 + e^\eta)`, :math:`x\in\{0,1\}`."""
    eta = real("eta")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    return Family(
        name="bernoulli_logit",
        params=(eta,),
        domains=(REAL,),
        variables=(x,),
        log_density=x * eta - sp.log(1 + sp.exp(eta)),
        supports=(SUPPORTS["binary"],),
        sampler=lazy_sampler("bernoulli_logit"),
        description="Bernoulli with logit eta, p = sigmoid(eta)",
    )


def _indicator_sum(x: sp.Symbol, values: list[sp.Expr]) -> sp.Expr:
    r""":math:`\sum_k [x = k]\, v_k` as a Piecewise over outcomes ``0..K-1``."""
    pieces = [(v, sp.Eq(x, k)) for k, v in enumerate(values[:-1])]
    return sp.Piecewise(*pieces, (values[-1], True))


def categorical(K: int = 3) -> Family:
    r"""Categorical(K) in probabilities :math:`p_0..p_{K-2}`, :math:`p_{K-1} = 1-\sum p`.

    .. math:: \log p(x) = \log p_x, \quad x \in \{0, \dots, K-1\}
    """
    check_size("categorical", "K", K, 2)
    ps = [sp.Symbol(f"p_{k}", positive=True) for k in range(K - 1)]
    last = 1 - sp.Add(*ps)
    x = sp.Symbol("x", integer=True, nonnegative=True)
    logs = [sp.log(p) for p in ps] + [sp.log(last)]
    return Family(
        name="categorical",
        params=tuple(ps),
        domains=tuple(UNIT for _ in ps),
        variables=(x,),
        log_density=_indicator_sum(x, logs),
        supports=(sp.Range(0, K),),
        sampler=lazy_sampler("categorical", K=K),
        constraints=((sp.Add(*ps) < 1, f"sum of p_0..p_{K - 2} must be < 1"),),
        size=(("K", K),),
        description=f"Categorical(K={K}) in probabilities, last one implied",
    )


def categorical_softmax(K: int = 3) -> Family:
    r"""Categorical(K) in logits :math:`z_0..z_{K-1}`, :math:`p = \mathrm{softmax}(z)`.

    .. math:: \log p(x) = z_x - \log \sum_k e^{z_k}

    The Fisher :math:`\mathrm{diag}(p) - p p^\top` is singular along
    :math:`\mathbf 1`.
    """
    check_size("categorical_softmax", "K", K, 2)
    zs = [real(f"z_{k}") for k in range(K)]
    x = sp.Symbol("x", integer=True, nonnegative=True)
    lse = sp.log(sp.Add(*[sp.exp(z) for z in zs]))
    return Family(
        name="categorical_softmax",
        params=tuple(zs),
        domains=tuple(REAL for _ in zs),
        variables=(x,),
        log_density=_indicator_sum(x, list(zs)) - lse,
        supports=(sp.Range(0, K),),
        sampler=lazy_sampler("categorical_softmax", K=K),
        size=(("K", K),),
        description=f"Categorical(K={K}) in softmax logits (singular Fisher)",
    )


def poisson() -> Family:
    r""":math:`\log p = x\log\lambda - \lambda - \log x!`."""
    lam = positive("lam")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    n = real("n_1")
    return Family(
        name="poisson",
        params=(lam,),
        domains=(POS,),
        variables=(x,),
        log_density=x * sp.log(lam) - lam - sp.loggamma(x + 1),
        supports=(SUPPORTS["nonnegative_integers"],),
        sampler=lazy_sampler("poisson"),
        expfam=ExpFamily(
            eta=(sp.log(lam),),
            T=(x,),
            A=sp.exp(n),
            nat=(n,),
            log_h=-sp.loggamma(x + 1),
        ),
        description="Poisson(lam), rate parameter",
    )


def poisson_log() -> Family:
    r""":math:`\log p = x\eta - e^\eta - \log x!`."""
    eta = real("eta")
    x = sp.Symbol("x", integer=True, nonnegative=True)
    n = real("n_1")
    return Family(
        name="poisson_log",
        params=(eta,),
        domains=(REAL,),
        variables=(x,),
        log_density=x * eta - sp.exp(eta) - sp.loggamma(x + 1),
        supports=(SUPPORTS["nonnegative_integers"],),
        sampler=lazy_sampler("poisson_log"),
        expfam=ExpFamily(
            eta=(eta,), T=(x,), A=sp.exp(n), nat=(n,), log_h=-sp.loggamma(x + 1)
        ),
        description="Poisson with log-rate eta",
    )
