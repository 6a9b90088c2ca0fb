r"""Rewrites of derived expressions into numerically stable primitives.

Each rewrite is an identity on the family's domain; :func:`stable` applies them
all and :func:`elementary` undoes them, so ``elementary(stable(e)) - e`` can be
checked numerically (``codegen.emit`` does so before printing).

=====================================  ==========================================
derived form                           stable form (printed as)
=====================================  ==========================================
:math:`\log(1 + y)`                    ``Log1p(y)`` (``jnp.log1p``)
:math:`\log(1 - y^2)`                  ``Log1p(-y) + Log1p(y)``
:math:`\log(1 + e^a)`                  ``Softplus(a)`` (``jnp.logaddexp(0, a)``)
:math:`\log \sum_i e^{a_i}`            ``LogSumExp`` (``jss.logsumexp``)
:math:`e^{ka} / (1 + e^a)^m`           :math:`\sigma(a)^k \sigma(-a)^{m-k}` (``jss.expit``)
:math:`\cosh(a)^{-2}`                  :math:`4 \sigma(2a) \sigma(-2a)`
:math:`I_n(x)`, :math:`x > 0`          :math:`e^{x}\, \mathrm{ie}_n(x)` (``jss.i0e``, ``jss.i1e``)
:math:`c e^{-k|u|} + c k |u|`          :math:`c\,(\varphi(ku) + 1)`, ``ExpAbsRem`` (series / ``expm1``)
:math:`\pm(1 - b^c)`, :math:`b > 0`    :math:`\mp\mathrm{expm1}(c \log b)` (``jnp.expm1``; symbolic :math:`c`)
=====================================  ==========================================
"""

from __future__ import annotations

import sympy as sp


class Log1p(sp.Function):
    r""":math:`\log(1 + y)`, accurate for small :math:`y`."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return 1 / (1 + self.args[0])


class Sigmoid(sp.Function):
    r""":math:`\sigma(a) = 1 / (1 + e^{-a})`."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        a = self.args[0]
        return Sigmoid(a) * Sigmoid(-a)


class Softplus(sp.Function):
    r""":math:`\log(1 + e^{a})`, finite for any :math:`a`."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return Sigmoid(self.args[0])


class LogSumExp(sp.Function):
    r""":math:`\log \sum_i e^{a_i}`, shifted by the largest :math:`a_i`."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return sp.exp(self.args[argindex - 1] - self)


class LogGamma(sp.Function):
    r""":math:`\log\Gamma(z)` that stays unevaluated.

    SymPy's ``loggamma`` of an integer-valued argument turns back into
    ``log(gamma(z))``, which overflows.
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return sp.polygamma(0, self.args[0])


class BesselIE(sp.Function):
    r"""Exponentially scaled Bessel function :math:`\mathrm{ie}_n(x) = e^{-|x|} I_n(x)`."""

    nargs = 2

    def fdiff(self, argindex: int = 2) -> sp.Expr:  # noqa: D102
        n, x = self.args
        if argindex != 2:
            raise sp.ArgumentIndexError(self, argindex)
        # x > 0: d/dx e^{-x} I_n = e^{-x} (I_{n-1} + I_{n+1}) / 2 - e^{-x} I_n
        return (BesselIE(n - 1, x) + BesselIE(n + 1, x)) / 2 - BesselIE(n, x)


class Expm1(sp.Function):
    r""":math:`e^{u} - 1`, accurate for small :math:`u`.

    :math:`1 - x^a` (Kumaraswamy) rounds to 0 in float64 for :math:`x` within
    a few ulps of 1 or small :math:`a`; :math:`-\mathrm{expm1}(a \log x)` keeps
    its digits, and ``log`` of it stays finite inside the support.
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return sp.exp(self.args[0])


class ExpAbsRem(sp.Function):
    r""":math:`\varphi(z) = e^{-|z|} - 1 + |z|`: even, :math:`C^2`, :math:`z^2/2 + O(|z|^3)`.

    The Laplace KL is :math:`c\,(\varphi(z) + 1)` plus smooth terms; printed as a
    Taylor series near 0 (so that autodiff's second derivative at :math:`z = 0`
    is the true one, 1, not the 0 that ``abs`` gives) and ``expm1(-|z|) + |z|``
    elsewhere.
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        z = self.args[0]
        return sp.sign(z) * (1 - sp.exp(-sp.Abs(z)))


class Erfc(sp.Function):
    r""":math:`\mathrm{erfc}(z)` that stays as written.

    SymPy turns ``erfc(-z)`` into ``2 - erfc(z)``, which rounds to 0 in float64
    for :math:`z > 6`; this node keeps the complement (see
    :func:`erf_complements`).
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        z = self.args[0]
        return -2 * sp.exp(-(z**2)) / sp.sqrt(sp.pi)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.erfc(self.args[0])._eval_evalf(prec)


class ExpOf(sp.Function):
    r""":math:`e^{u}` that SymPy does not split.

    :math:`e^{A - k \log \mathrm{erfc}(w)}` stays one exponential (SymPy would
    write :math:`e^{A} / \mathrm{erfc}(w)^k`, which is 0/0 in float64 once
    :math:`\mathrm{erfc}(w)` underflows, a skew-normal's score far in the
    tail); the log is printed as ``log_ndtr``.
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:  # noqa: D102
        return self

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.exp(self.args[0])._eval_evalf(prec)


STABLE_FUNCTIONS = (
    Log1p,
    Sigmoid,
    Softplus,
    LogSumExp,
    LogGamma,
    BesselIE,
    ExpAbsRem,
    Expm1,
)


def elementary(expr: sp.Expr) -> sp.Expr:
    """Undo :func:`stable`: every stable primitive back to its defining formula."""
    return expr.replace(lambda e: isinstance(e, STABLE_FUNCTIONS), _elementary_node)


def _elementary_node(e: sp.Expr) -> sp.Expr:
    a = e.args
    if isinstance(e, Log1p):
        return sp.log(1 + a[0])
    if isinstance(e, Sigmoid):
        return 1 / (1 + sp.exp(-a[0]))
    if isinstance(e, Softplus):
        return sp.log(1 + sp.exp(a[0]))
    if isinstance(e, LogSumExp):
        return sp.log(sp.Add(*[sp.exp(t) for t in a]))
    if isinstance(e, LogGamma):
        return sp.loggamma(a[0])
    if isinstance(e, ExpAbsRem):
        return sp.exp(-sp.Abs(a[0])) - 1 + sp.Abs(a[0])
    if isinstance(e, Expm1):
        return sp.exp(a[0]) - 1
    n, x = a
    return sp.besseli(n, x) * sp.exp(-sp.Abs(x))


def stable(expr: sp.Expr) -> sp.Expr:
    """``expr`` rewritten with the stable primitives of this module."""
    if expr.has(sp.besseli):
        expr = expr.replace(
            lambda e: isinstance(e, sp.besseli) and e.args[1].is_positive,
            lambda e: sp.exp(e.args[1]) * BesselIE(*e.args),
        )
        # pull e^x out of sums so that it cancels against e^-x
        expr = sp.factor_terms(expr)
    expr = sp.expand_log(expr, force=False)
    expr = expr.replace(
        lambda e: (
            isinstance(e, sp.log)
            and isinstance(e.args[0], sp.gamma)
            and e.args[0].args[0].is_positive
        ),
        lambda e: LogGamma(e.args[0].args[0]),
    )
    expr = expr.replace(
        lambda e: isinstance(e, sp.Pow) and isinstance(e.base, sp.cosh) and e.exp == -2,
        lambda e: 4 * Sigmoid(2 * e.base.args[0]) * Sigmoid(-2 * e.base.args[0]),
    )
    expr = expr.replace(lambda e: isinstance(e, sp.Add), _square)
    if expr.has(sp.Abs):
        expr = expr.replace(lambda e: isinstance(e, sp.Add), _exp_abs)
    if _has_logistic(expr):
        expr = _logistic(expr)
    expr = expr.replace(lambda e: isinstance(e, sp.Add), _one_minus_power)
    return expr.replace(lambda e: isinstance(e, sp.log), _log)


def _one_minus_power(e: sp.Add) -> sp.Expr:
    r""":math:`\pm(1 - b^c)` (:math:`b > 0`, :math:`c` symbolic) as :math:`\mp\mathrm{expm1}(c \log b)`."""
    if len(e.args) != 2:
        return e
    for one, sign in ((sp.S.One, -1), (sp.S.NegativeOne, 1)):
        if one in e.args:
            p = sign * (e - one)
            if isinstance(p, sp.Pow) and p.base.is_positive and not p.exp.is_number:
                return sign * Expm1(p.exp * sp.log(p.base))
    return e


def _split_monomial(t: sp.Expr) -> tuple[sp.Expr, tuple[tuple[sp.Symbol, int], ...]]:
    """``t = coeff * prod(sym**k)`` with the symbol powers as a sorted tuple."""
    coeff, mono = sp.S.One, []
    for base, k in t.as_powers_dict().items():
        if isinstance(base, sp.Symbol) and k.is_Integer and k > 0:
            mono.append((base, int(k)))
        else:
            coeff *= base**k
    return coeff, tuple(sorted(mono, key=lambda bk: bk[0].name))


def _square(e: sp.Add) -> sp.Expr:
    """Terms :math:`c a^2 - 2 c a b + c b^2` of a sum, as :math:`c (a - b)^2`.

    The expanded form cancels catastrophically for close :math:`a, b` (a KL
    between nearby Gaussians); the square does not.
    """
    if len(e.args) < 3:
        return e
    parts = {t: _split_monomial(t) for t in e.args}
    by_mono: dict[tuple, list[sp.Expr]] = {}
    for t, (_, mono) in parts.items():
        by_mono.setdefault(mono, []).append(t)
    used: set[sp.Expr] = set()
    out = []
    for t, (c_ab, mono) in parts.items():
        if t in used or len(mono) != 2 or any(k != 1 for _, k in mono):
            continue
        (a, _), (b, _) = mono
        sq_a = [u for u in by_mono.get(((a, 2),), []) if u not in used]
        sq_b = [u for u in by_mono.get(((b, 2),), []) if u not in used]
        for ua in sq_a:
            for ub in sq_b:
                c_a, c_b = parts[ua][0], parts[ub][0]
                if sp.simplify(c_a - c_b) == 0 and sp.simplify(c_ab + 2 * c_a) == 0:
                    used.update((t, ua, ub))
                    out.append(c_a * (a - b) ** 2)
                    break
            if t in used:
                break
    if not out:
        return e
    return sp.Add(*[t for t in e.args if t not in used], *out)


def _exp_abs(e: sp.Add) -> sp.Expr:
    r"""Terms :math:`c\,e^{-k|u|} + c\,k|u|` of a sum as :math:`c\,(\varphi(k u) + 1)`.

    (:class:`ExpAbsRem`; :math:`k > 0`.) The Laplace KL
    :math:`\frac{b}{b'} e^{-|\mu-\mu'|/b} + \frac{|\mu-\mu'|}{b'}` is one.
    """
    terms = list(e.args)
    for t in terms:
        exps = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.exp)]
        if len(exps) != 1:
            continue
        arg = exps[0].args[0]
        abss = arg.atoms(sp.Abs)
        if len(abss) != 1:
            continue
        (A,) = abss
        k = sp.cancel(-arg / A)
        if k.has(sp.Abs) or k.is_positive is not True:
            continue
        c = t / exps[0]
        partner = c * k * A
        for other in terms:
            if other is not t and sp.expand(other - partner) == 0:
                rest = [r for r in terms if r is not t and r is not other]
                # c phi + c, not c (phi + 1): phi ~ z^2/2 must not round into the 1
                return sp.Add(*rest, c * ExpAbsRem(k * A.args[0]), c)
    return e


def _log(e: sp.log) -> sp.Expr:
    arg = e.args[0]
    if not isinstance(arg, sp.Add):
        return e
    terms = arg.args
    if all(isinstance(t, sp.exp) for t in terms) and len(terms) > 1:
        return LogSumExp(*sorted((t.args[0] for t in terms), key=sp.default_sort_key))
    if sp.S.One in terms:
        rest = arg - 1
        if isinstance(rest, sp.exp):
            return Softplus(rest.args[0])
        y2 = -rest
        if (
            isinstance(y2, sp.Pow) and y2.exp == 2
        ):  # 1 - y^2 = (1 - y)(1 + y), unrounded
            return Log1p(-y2.base) + Log1p(y2.base)
        return Log1p(rest)
    return e


def _one_plus_exp(e: sp.Expr) -> sp.Expr | None:
    """``a`` when ``e`` is ``1 + exp(a)``."""
    if isinstance(e, sp.Add) and len(e.args) == 2 and sp.S.One in e.args:
        other = e - 1
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _has_logistic(expr: sp.Expr) -> bool:
    return any(
        isinstance(p, sp.Pow)
        and p.exp.is_negative
        and _one_plus_exp(p.base) is not None
        for p in expr.atoms(sp.Pow)
    )


def _logistic(expr: sp.Expr) -> sp.Expr:
    """Terms ``c e^{ka} (1 + e^a)^{-m}`` with ``0 <= k <= m`` become sigmoids."""
    terms = sp.Add.make_args(sp.expand_mul(expr))
    group = [t for t in terms if _has_logistic(t)]
    rest = [t for t in terms if not _has_logistic(t)]
    if len(group) > 1:  # one fraction, so that 1 - sigma(a) never appears
        num, den = sp.fraction(sp.cancel(sp.together(sp.Add(*group))))
        group = [sp.expand_mul(num / sp.factor(den))]
    expr = sp.Add(*rest, *group)
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _logistic_term)
    return expr.replace(lambda e: isinstance(e, sp.Pow), _logistic_term)


def _logistic_term(term: sp.Expr) -> sp.Expr:
    factors = sp.Mul.make_args(term)
    for f in factors:
        if not (isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0):
            continue
        a = _one_plus_exp(f.base)
        if a is None:
            continue
        m = -int(f.exp)
        rest = [g for g in factors if g is not f]
        k = 0
        for g in list(rest):
            if isinstance(g, sp.exp):
                ratio = sp.simplify(g.args[0] / a)
                if ratio.is_Integer and 0 <= int(ratio) <= m - k:
                    k += int(ratio)
                    rest.remove(g)
        return sp.Mul(*rest) * Sigmoid(a) ** k * Sigmoid(-a) ** (m - k)
    return term


def erf_complements(expr: sp.Expr) -> sp.Expr:
    r""":math:`c \pm c\,\mathrm{erf}(z)` and :math:`2c - c\,\mathrm{erfc}(z)` as :math:`c\,\mathrm{erfc}(\mp z)`.

    :math:`1 + \mathrm{erf}(z)` rounds to 0 for :math:`z < -6` in float64;
    :math:`\mathrm{erfc}(-z)` stays accurate down to :math:`z \approx -26`
    (a skew-normal written with ``erf``). SymPy writes
    :math:`\mathrm{erfc}(-z)` as :math:`2 - \mathrm{erfc}(z)` whenever it
    rebuilds the node (a substitution, ``lambdify``'s dummies), so every
    ``erfc`` becomes :class:`Erfc`, which stays as
    written.
    """
    if not expr.has(sp.erf, sp.erfc):
        return expr

    def fold(e: sp.Add) -> sp.Expr:
        const, terms = e.as_coeff_Add()
        if const == 0:
            return e
        for t in sp.Add.make_args(terms):
            c, f = t.as_coeff_Mul()
            if isinstance(f, sp.erf) and c != 0:
                z = f.args[0]
                if const == c:
                    return terms - t + c * Erfc(-z)
                if const == -c:
                    return terms - t - c * Erfc(z)
            if isinstance(f, sp.erfc) and c != 0 and const == -2 * c:
                return terms - t - c * Erfc(-f.args[0])  # 2k - k erfc(z)
        return e

    out = expr.replace(lambda e: isinstance(e, sp.Add), fold)
    out = out.replace(sp.erfc, Erfc)
    return out.replace(lambda e: isinstance(e, sp.Mul), _exp_over_erfc)


def _exp_over_erfc(m: sp.Mul) -> sp.Expr:
    r""":math:`e^{A} / \mathrm{erfc}(w)^k` as :math:`e^{A - k \log \mathrm{erfc}(w)}` (:class:`ExpOf`)."""
    exps = [f for f in m.args if isinstance(f, sp.exp)]
    inv = [
        f
        for f in m.args
        if isinstance(f, sp.Pow) and isinstance(f.base, Erfc) and f.exp.is_negative
    ]
    if not exps or not inv:
        return m
    arg = sp.Add(*[e.args[0] for e in exps], *[f.exp * sp.log(f.base) for f in inv])
    rest = [f for f in m.args if f not in exps and f not in inv]
    return sp.Mul(*rest) * ExpOf(arg)
