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
    out = sp.simplify(expr)
    if out.has(sp.sin, sp.cos):
        out = sp.trigsimp(out)
    return out


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
