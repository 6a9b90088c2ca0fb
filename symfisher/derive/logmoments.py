r"""Log-moments of the standard bases that location–scale standardisation lands on.

After :func:`symfisher.derive.expectation._substitution` standardises :math:`x`
(:math:`x = \mu + \sigma y`, or :math:`x = s\,e^{c y}`), many textbook families
leave a *base* distribution of :math:`y` free of every parameter. Their
expectations are then a table lookup instead of a long ``sympy.integrate``:

=======================  =============================  =================================================================================
base                     :math:`\log p(y)`              moment (closed form)
=======================  =============================  =================================================================================
gamma (shape :math:`a`)  :math:`(a-1)\log y - y`        :math:`\mathbb E[Y^m \log^j Y] = \Gamma^{(j)}(a+m)/\Gamma(a)`
                         :math:`-\log\Gamma(a)`
Gumbel (maximum)         :math:`-y - e^{-y}`            :math:`\mathbb E[Y^j e^{\alpha Y}] = (-1)^j\,\Gamma^{(j)}(1-\alpha)` (:math:`e^{-Y}\sim` Exp(1))
Gumbel (minimum)         :math:`y - e^{y}`              :math:`\mathbb E[Y^j e^{\alpha Y}] = \Gamma^{(j)}(1+\alpha)` (:math:`e^{Y}\sim` Exp(1))
logistic                 :math:`-y - 2\log(1+e^{-y})`   :math:`\mathbb E[Y^j e^{\alpha Y}(1+e^Y)^{-\beta}] = \sum_i \binom ji (-1)^{j-i}\,`
                                                        :math:`\partial_p^i\partial_q^{j-i} B(p, q)`, :math:`p = 1+\alpha`, :math:`q = 1+\beta-\alpha`
=======================  =============================  =================================================================================

(for the logistic base :math:`U = \sigma(Y)` is uniform, :math:`Y = \log U - \log(1-U)`).
With :math:`\Gamma^{(j)}(s) = \Gamma(s)\,P_j(s)`, :math:`P_0 = 1`,
:math:`P_{j+1} = P_j' + \psi(s) P_j` (so :math:`P_1 = \psi`,
:math:`P_2 = \psi^2 + \psi_1`), SymPy evaluates the polygammas at integers to
:math:`\gamma` (``EulerGamma``) and :math:`\pi^2/6`: e.g. for the standard Gumbel
:math:`\mathbb E[Y] = \gamma`, :math:`\mathbb E[Y^2] = \gamma^2 + \pi^2/6`,
:math:`\mathbb E[Y e^{-Y}] = \gamma - 1`.

A base is recognised when the standardised log-density differs from the
table's by nothing (its derivative in :math:`y` simplifies to 0 and the two
agree at :math:`y = 1`). A term the table does not cover gives ``None`` (the
caller integrates it). Each entry is checked against 30-digit quadrature in
``tests/derive/test_logmoments.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import comb

import sympy as sp

_s = sp.Symbol("s", positive=True)
_p, _q = sp.symbols("p q", positive=True)
_W = sp.Symbol("W", positive=True)  # stands for exp(y) while a term is parsed


@dataclass(frozen=True)
class Base:
    r"""One standard base distribution of :math:`y`.

    Attributes:
      name: short name, used in provenance.
      support: the support of :math:`y`.
      log_density: :math:`\log p(y)` as a function of :math:`y` (and the shape).
      moment: closed form of the expectation of one parsed monomial (see
        :func:`moment`), or ``None`` where it does not exist or is not covered.
      terms: the monomials the table covers, in words.
    """

    name: str
    support: sp.Set
    log_density: Callable[..., sp.Expr]
    moment: Callable[..., sp.Expr | None]
    terms: str
    shaped: bool = False


# -- closed forms ------------------------------------------------------------------
def gamma_log_derivative(j: int, s: sp.Expr) -> sp.Expr:
    r""":math:`P_j(s) = \Gamma^{(j)}(s) / \Gamma(s)` in polygammas, at ``s``."""
    P = sp.Integer(1)
    for _ in range(j):
        P = sp.expand(sp.diff(P, _s) + sp.polygamma(0, _s) * P)
    return P.subs(_s, s)


def beta_derivative(i: int, k: int, p: sp.Expr, q: sp.Expr) -> sp.Expr:
    r""":math:`\partial_p^i \partial_q^k B(p, q)` in gammas and polygammas."""
    L = sp.loggamma(_p) + sp.loggamma(_q) - sp.loggamma(_p + _q)
    Q = sp.Integer(1)
    for v, n in ((_p, i), (_q, k)):
        for _ in range(n):
            Q = sp.expand(sp.diff(Q, v) + sp.diff(L, v) * Q)
    Q = Q.subs({_p: p, _q: q}, simultaneous=True)
    return sp.gamma(p) * sp.gamma(q) / sp.gamma(p + q) * Q


def _gamma_ratio(a: sp.Expr, m: sp.Expr) -> sp.Expr:
    r""":math:`\Gamma(a + m)/\Gamma(a)`, a rising factorial for integer :math:`m`."""
    if m.is_Integer and m >= 0:
        return sp.Mul(*[a + i for i in range(int(m))])
    return sp.gamma(a + m) / sp.gamma(a)


def _positive(e: sp.Expr) -> bool:
    return e.is_positive is True


def _gamma_moment(j: int, m: sp.Expr, a: sp.Expr) -> sp.Expr | None:
    if not _positive(a + m):
        return None
    return _gamma_ratio(a, m) * gamma_log_derivative(j, a + m)


def _gumbel_max_moment(j: int, alpha: sp.Expr, beta: sp.Expr) -> sp.Expr | None:
    if beta != 0 or not _positive(1 - alpha):
        return None
    return (-1) ** j * sp.gamma(1 - alpha) * gamma_log_derivative(j, 1 - alpha)


def _gumbel_min_moment(j: int, alpha: sp.Expr, beta: sp.Expr) -> sp.Expr | None:
    if beta != 0 or not _positive(1 + alpha):
        return None
    return sp.gamma(1 + alpha) * gamma_log_derivative(j, 1 + alpha)


def _logistic_moment(j: int, alpha: sp.Expr, beta: sp.Expr) -> sp.Expr | None:
    p, q = 1 + alpha, 1 + beta - alpha
    if not (_positive(p) and _positive(q)):
        return None
    return sp.Add(
        *[
            comb(j, i) * (-1) ** (j - i) * beta_derivative(i, j - i, p, q)
            for i in range(j + 1)
        ]
    )


REALS = sp.Interval(-sp.oo, sp.oo)
POSITIVE = sp.Interval.open(0, sp.oo)

#: The table: one entry per base.
BASES: tuple[Base, ...] = (
    Base(
        "gamma",
        POSITIVE,
        lambda y, a: (a - 1) * sp.log(y) - y - sp.loggamma(a),
        _gamma_moment,
        "y^m log(y)^j",
        shaped=True,
    ),
    Base(
        "Gumbel (maximum)",
        REALS,
        lambda y: -y - sp.exp(-y),
        _gumbel_max_moment,
        "y^j exp(alpha y)",
    ),
    Base(
        "Gumbel (minimum)",
        REALS,
        lambda y: y - sp.exp(y),
        _gumbel_min_moment,
        "y^j exp(alpha y)",
    ),
    Base(
        "logistic",
        REALS,
        lambda y: -y - 2 * sp.log(1 + sp.exp(-y)),
        _logistic_moment,
        "y^j exp(alpha y) (1 + exp(y))^-beta",
    ),
)


# -- recognising a base --------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """A recognised base and its shape (``None`` for bases without one)."""

    base: Base
    shape: sp.Expr | None = None


def identify(log_density: sp.Expr, y: sp.Symbol, support: sp.Set) -> Match | None:
    r"""The table's base whose log-density equals ``log_density`` (in ``y``), if any."""
    for base in BASES:
        if base.support != support:
            continue
        if base.shaped:
            shape = _gamma_shape(log_density, y)
            if shape is not None:
                return Match(base, shape)
            continue
        if _same(log_density, base.log_density(y), y):
            return Match(base)
    return None


def _gamma_shape(log_density: sp.Expr, y: sp.Symbol) -> sp.Expr | None:
    e = sp.expand(sp.expand_log(log_density, force=True))
    coeffs = {sp.log(y): sp.Integer(0), y: sp.Integer(0)}
    rest = sp.Integer(0)
    for t in sp.Add.make_args(e):
        for atom in coeffs:
            c = t / atom
            if t.has(atom) and not c.has(y):
                coeffs[atom] += c
                break
        else:
            rest += t
    if coeffs[y] != -1 or rest.has(y):
        return None
    a = coeffs[sp.log(y)] + 1
    if not _positive(a):
        return None
    return a if _is_zero(rest + sp.loggamma(a)) else None


def _same(a: sp.Expr, b: sp.Expr, y: sp.Symbol) -> bool:
    d = a - b
    return _is_zero(sp.diff(d, y)) and _is_zero(d.subs(y, 1))


def _is_zero(e: sp.Expr) -> bool:
    if e == 0:
        return True
    e = e.replace(  # log Gamma(z) = log(Gamma(z)) for z > 0
        lambda n: isinstance(n, sp.loggamma) and n.args[0].is_positive,
        lambda n: sp.log(sp.gamma(n.args[0])),
    )
    return sp.simplify(sp.expand_func(sp.expand_log(e, force=True))) == 0


# -- parsing a term and looking it up ----------------------------------------------------
def moment(match: Match, term: sp.Expr, y: sp.Symbol) -> sp.Expr | None:
    r""":math:`\mathbb E[h(Y)]` for one term ``h`` under the matched base, or ``None``."""
    if match.base.shaped:
        return _sum_of(lambda t: _gamma_term(match, t, y), term, y)
    return _sum_of(lambda t: _exp_term(match, t, y), term, y)


def _sum_of(fn: Callable[[sp.Expr], sp.Expr | None], term: sp.Expr, y: sp.Symbol):
    if term.has(sp.log):
        term = sp.expand(sp.expand_log(term, force=True))
    total = sp.Integer(0)
    for t in sp.Add.make_args(term):
        v = fn(t)
        if v is None:
            return None
        total += v
    return total


def _gamma_term(match: Match, t: sp.Expr, y: sp.Symbol) -> sp.Expr | None:
    """``c y^m log(y)^j`` -> its expectation under Gamma(shape, 1)."""
    coeff, m, j = sp.Integer(1), sp.Integer(0), 0
    for f in sp.Mul.make_args(t):
        base, e = f.as_base_exp()
        if not f.has(y):
            coeff *= f
        elif base == y and not e.has(y):
            m += e
        elif base == sp.log(y) and e.is_Integer and e > 0:
            j += int(e)
        else:
            return None
    v = match.base.moment(j, m, match.shape)
    return None if v is None else coeff * v


def _exp_term(match: Match, t: sp.Expr, y: sp.Symbol) -> sp.Expr | None:
    r"""``c y^j e^{alpha y} (1 + e^y)^{-beta}`` -> its expectation under the base."""
    w = _W
    t = t.replace(
        lambda e: isinstance(e, sp.Pow) and isinstance(e.base, sp.exp),
        lambda e: sp.exp(e.base.args[0] * e.exp),
    )

    def to_w(e: sp.exp) -> sp.Expr:
        arg = sp.expand(e.args[0])
        a = sp.diff(arg, y)
        if a.has(y):
            raise _NotCovered
        return sp.exp(arg - a * y) * w**a

    try:
        t = t.replace(lambda e: isinstance(e, sp.exp) and e.has(y), to_w)
    except _NotCovered:
        return None
    if t.has(sp.exp) and any(e.has(y) for e in t.atoms(sp.exp)):
        return None
    if any(isinstance(a, sp.Add) and a.has(w) for a in _denominators(t)):
        t = sp.factor(t)
    coeff, j, alpha, beta = sp.Integer(1), 0, sp.Integer(0), sp.Integer(0)
    for f in sp.Mul.make_args(t):
        base, e = f.as_base_exp()
        if not f.has(y, w):
            coeff *= f
        elif base == y and e.is_Integer and e > 0:
            j += int(e)
        elif base == w and not e.has(y, w):
            alpha += e
        elif base in (w + 1, 1 + w) and not e.has(y, w):
            beta -= e
        else:
            return None
    v = match.base.moment(j, alpha, beta)
    return None if v is None else coeff * v


def _denominators(t: sp.Expr) -> list[sp.Expr]:
    return [
        f.base
        for f in sp.Mul.make_args(t)
        if isinstance(f, sp.Pow) and f.exp.is_negative
    ]


class _NotCovered(Exception):
    pass
