"""Time-limited simplification: never hangs, never loses exactness."""

from __future__ import annotations

import sympy as sp

from symfisher.derive.memo import once
from symfisher.errors import SymbolicTimeout
from symfisher.outcomes import fingerprint
from symfisher.timelimit import run_limited


def tidy(expr: sp.Expr, seconds: float = 2.0) -> sp.Expr:
    """``simplify(expr)`` within ``seconds``; on timeout a cheaper exact form.

    The fallback is ``cancel`` (itself limited), then ``expr`` unchanged.
    """
    if expr.is_number and expr.is_Rational:
        return expr
    key = fingerprint("tidy", seconds, expr)
    return once((key, expr), lambda: _tidy(expr, seconds, key))


def _tidy(expr: sp.Expr, seconds: float, key: str) -> sp.Expr:
    try:
        return run_limited(lambda: _simplify(expr), seconds, key=key)
    except SymbolicTimeout:
        try:
            return run_limited(
                lambda: sp.cancel(expr),
                seconds / 4,
                key=fingerprint("cancel", seconds / 4, expr),
            )
        except (SymbolicTimeout, sp.PolynomialError):
            return expr


def _simplify(expr: sp.Expr) -> sp.Expr:
    if _looks_constant(expr):
        # an identity (an entry that must vanish, a known constant): ``cancel``
        # proves it in a fraction of ``simplify``'s time, with the same result
        c = sp.cancel(expr)
        if c.is_Number:
            return c
    out = sp.simplify(expr)
    if out.has(sp.sin, sp.cos):
        out = sp.trigsimp(out)
    return out


#: points at which :func:`_looks_constant` evaluates, as (numerator, denominator)
_PROBES = ((7, 10), (13, 9))


def _looks_constant(expr: sp.Expr) -> bool:
    """Whether ``expr`` takes the same value at two fixed points (a gate, not a proof).

    Each free symbol is set to a positive value (a positive integer for an
    integer symbol), the same for all symbols shifted by their sorted position;
    a value that is not a real number answers ``False``.
    """
    syms = sorted(expr.free_symbols, key=sp.default_sort_key)
    values = []
    for num, den in _PROBES:
        at = {
            s: sp.Integer(2 + (num + i) % 3)
            if s.is_integer
            else sp.Float(sp.Rational(num + i, den), 30)
            for i, s in enumerate(syms)
        }
        v = expr.xreplace(at)
        if not (v.is_Number and v.is_finite and v.is_real):
            v = v.evalf(30)
            if not (v.is_Number and v.is_finite and v.is_real):
                return False
        values.append(v)
    a, b = values
    return bool(abs(a - b) <= 1e-20 * (1 + abs(a) + abs(b)))


def tidy_matrix(M: sp.Matrix, seconds: float = 2.0) -> sp.Matrix:
    """:func:`tidy` applied entry by entry, keeping symmetry."""
    out = sp.Matrix(M)
    for i in range(M.rows):
        for j in range(M.cols):
            if M.is_square and j < i and M[i, j] == M[j, i]:
                out[i, j] = out[j, i]
            else:
                out[i, j] = tidy(M[i, j], seconds)
    return out


def is_zero(expr: sp.Expr, seconds: float = 4.0) -> bool | None:
    """``True`` when ``expr`` simplifies to 0 within ``seconds``; ``None`` if unsure."""
    if expr == 0:
        return True
    key = fingerprint("is_zero", seconds, expr)
    return once((key, expr), lambda: _is_zero(expr, seconds, key))


def _is_zero(expr: sp.Expr, seconds: float, key: str) -> bool | None:
    try:
        out = run_limited(lambda: sp.simplify(expr), seconds, key=key)
    except SymbolicTimeout:
        return None
    if out == 0:
        return True
    try:
        out = run_limited(
            lambda: sp.simplify(sp.trigsimp(sp.expand_func(out))),
            seconds,
            key=fingerprint("is_zero.trig", seconds, out),
        )
    except SymbolicTimeout:
        return None
    return True if out == 0 else None
