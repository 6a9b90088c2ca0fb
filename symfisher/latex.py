r"""LaTeX of formulas as a reader writes them: ψ, ψ₁, log Γ, λ and primed names.

SymPy's own printer writes ``\operatorname{polygamma}{\left(1,a \right)}``,
``\operatorname{loggamma}`` and ``mu'`` (a symbol it does not split). Here

* :math:`\psi^{(0)} \to \psi`, :math:`\psi^{(1)} \to \psi_1`,
  :math:`\psi^{(n)}` otherwise; :math:`\log\Gamma(a)`;
* a name ending in ``'`` is the LaTeX of the rest and a prime (``mu'`` →
  :math:`\mu'`), ``lam`` is :math:`\lambda`;
* :func:`tidy` expands logarithms of products and powers of positive symbols,
  so that a KL shows :math:`a\log b - a'\log b'` rather than
  :math:`\log(b^{a} b'^{-a'})`.

Display only: kernels and checks never see these forms.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter

__all__ = ["FormulaLatexPrinter", "latex", "tidy"]

#: names SymPy does not know as Greek letters
_NAMES = {"lam": r"\lambda"}


class FormulaLatexPrinter(LatexPrinter):
    """``LatexPrinter`` with the special functions and names of the catalog."""

    def _fn(self, head: str, *args: sp.Expr, exp: str | None = None) -> str:
        inner = ", ".join(self._print(a) for a in args)
        power = f"^{{{exp}}}" if exp else ""
        return rf"{head}{power}\left({inner}\right)"

    def _print_polygamma(self, e: sp.polygamma, exp: str | None = None) -> str:
        n, x = e.args
        if n == 0:
            return self._fn(r"\psi", x, exp=exp)
        if n == 1:
            return self._fn(r"\psi_1", x, exp=exp)
        return self._fn(rf"\psi^{{({self._print(n)})}}", x, exp=exp)

    def _print_loggamma(self, e: sp.loggamma, exp: str | None = None) -> str:
        inner = self._fn(r"\log\Gamma", *e.args)
        return rf"\left({inner}\right)^{{{exp}}}" if exp else inner

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        name = expr.name
        if name.endswith("'") and len(name) > 1:
            return self._print_Symbol(sp.Symbol(name[:-1]), style) + "'"
        if name in _NAMES:
            return _NAMES[name]
        sub = name.rsplit("_", 1)
        if len(sub) == 2 and sub[0] in _NAMES and sub[1]:
            return f"{_NAMES[sub[0]]}_{{{sub[1]}}}"
        return super()._print_Symbol(expr, style)


def tidy(expr: sp.Basic) -> sp.Basic:
    r"""Display form: :math:`\log(x^a y^b) \to a\log x + b\log y` for positive x, y.

    ``expand_log`` without ``force``: a logarithm is split only where the
    assumptions make it an identity. Matrices are tidied entry by entry; what is
    not an expression (a set, a relation) is returned unchanged.
    """
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(tidy)
    if not isinstance(expr, sp.Expr):  # sets, relations, tuples: shown as they are
        return expr
    return sp.expand_log(expr, deep=True)


def latex(expr: Any, **settings: Any) -> str:
    """LaTeX of ``expr`` by :class:`FormulaLatexPrinter` (SymPy's settings apply)."""
    return FormulaLatexPrinter(settings).doprint(expr)
