r"""``natural_gradient`` and ``fisher_sqrt`` of a kernel module, from its Fisher entries.

With :math:`A = F + \lambda I` (:math:`\lambda \ge 0`, the damping):

.. math::
   \texttt{natural\_gradient}(\theta, g, \lambda) = A^{-1} g
   = \frac{\operatorname{adj}(A)\, g}{\det A}, \qquad
   \texttt{fisher\_sqrt}(\theta) = R,\ R^\top R = F,

:math:`R` upper triangular (the transposed Cholesky factor). For up to
:data:`MAX_SYMBOLIC` parameters both are printed in closed form from a generic
symmetric matrix with the zero pattern of the family's Fisher (a diagonal
Fisher gives :math:`x_i = g_i/(F_{ii} + \lambda)` and
:math:`R = \operatorname{diag}(\sqrt{F_{ii}})`); beyond, a batched
:math:`P \times P` solve and Cholesky factorisation of the same matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple

import sympy as sp

from symfisher.codegen.backend import for_printer
from symfisher.codegen.emit import function, stack_matrix
from symfisher.codegen.printer import StablePrinting

#: the most parameters whose inverse and Cholesky factor are printed in closed form
MAX_SYMBOLIC = 3

Pattern = Collection[tuple[int, int]]


def _entry(i: int, j: int) -> sp.Symbol:
    i, j = min(i, j), max(i, j)
    return sp.Symbol(f"a_{i}_{j}", real=True)


def _matrix(P: int, nonzero: Pattern | None) -> sp.Matrix:
    r"""Symmetric ``P x P`` matrix of symbols ``a_i_j`` (zeros outside ``nonzero``).

    The diagonal is always symbolic: it holds :math:`F_{ii} + \\lambda`.
    """

    def cell(i: int, j: int) -> sp.Expr:
        if i == j or nonzero is None or (i, j) in nonzero or (j, i) in nonzero:
            return _entry(i, j)
        return sp.S.Zero

    return sp.Matrix(P, P, cell)


def used_entries(P: int, nonzero: Pattern | None) -> list[tuple[int, int]]:
    """The ``(i, j)``, ``i <= j``, whose symbol ``a_i_j`` the printed formulas read."""
    A = _matrix(P, nonzero)
    return [(i, j) for i in range(P) for j in range(i, P) if A[i, j] != 0]


def _print(
    printer: StablePrinting, exprs: list[sp.Expr], prefix: str
) -> tuple[list[str], list[str]]:
    repl, reduced = sp.cse(
        exprs, symbols=sp.numbered_symbols(prefix), order="canonical"
    )
    lines = [f"{s} = {printer.doprint(v)}" for s, v in repl]
    return lines, [printer.doprint(e) for e in reduced]


def solve_lines(
    P: int, nonzero: Pattern | None, printer: StablePrinting
) -> tuple[list[str], list[str]]:
    r"""Statements and outputs of :math:`x = A^{-1} g` over names ``a_i_j``, ``g_i``.

    Each :math:`x_i` is a cancelled rational function of the entries (Cramer's
    rule, the adjugate over the determinant).
    """
    A = _matrix(P, nonzero)
    g = sp.Matrix([sp.Symbol(f"g_{i}", real=True) for i in range(P)])
    x = A.LUsolve(g)
    return _print(printer, [sp.factor(sp.cancel(e)) for e in x], "_s")


def cholesky_lines(
    P: int, nonzero: Pattern | None, printer: StablePrinting
) -> tuple[list[str], list[str]]:
    r"""Statements and the ``P * P`` entries (row-major) of :math:`R`, :math:`R^\top R = A`."""
    A = _matrix(P, nonzero)
    R = A.cholesky(hermitian=False).T
    return _print(printer, list(R), "_r")


def dense_functions(
    P: int,
    nonzero: Pattern | None,
    source: str,
    printer: StablePrinting,
) -> str:
    """``natural_gradient`` and ``fisher_sqrt`` of a module with a ``fisher(theta)``.

    Args:
      P: number of parameters.
      nonzero: the ``(i, j)`` where the symbolic Fisher may be nonzero (None:
        all; a quadrature Fisher).
      source: how the Fisher is computed, for the docstrings ("closed form",
        "quadrature").
      printer: the kernel printer.
    """
    symbolic = P <= MAX_SYMBOLIC
    B = for_printer(printer)
    head = [
        B.arg("g", "g", "theta"),
        "lam = _damping(damping, g)",
        "F = fisher(theta)",
    ]
    if symbolic:
        e = elementwise(lambda i, j: f"F[..., {i}, {j}]", P, nonzero, printer)
        g_lines = [f"g_{i} = g[..., {i}]" for i in range(P)]
        ng_lines = head + e.damped_entries + g_lines + e.solve
        ng_ret = B.stack(e.x, -1)
        how = (
            "Printed from the adjugate of a symmetric matrix with the Fisher's zero\n"
            "    pattern (Cramer's rule), elementwise over the leading axes."
        )
    else:
        ng_lines = [
            *head,
            f"A = F + lam[..., None, None] * {B.eye('F.shape[-1]', 'F')}",
            f"shape = {B.call('broadcast_shapes', 'A.shape[:-2]', 'g.shape[:-1]')}",
            f"A = {B.call('broadcast_to', 'A', '(*shape, *A.shape[-2:])')}",
            f"g = {B.call('broadcast_to', 'g', '(*shape, g.shape[-1])')}",
        ]
        ng_ret = f"{B.linalg('solve', 'A', 'g[..., None]')}[..., 0]"
        how = "By a batched ``P x P`` solve (LU with partial pivoting)."
    src = function(
        "natural_gradient",
        "theta, g, damping=0.0",
        r"Natural gradient :math:`(F(\theta) + \lambda I)^{-1} g`, shape ``(..., P)``."
        "\n\n"
        f"    ``damping`` :math:`\\lambda \\ge 0`; :math:`F` from ``fisher`` ({source}).\n"
        f"    {how}\n    ",
        ng_lines,
        ng_ret,
    )
    if symbolic:
        sq_lines = ["F = fisher(theta)", *e.entries, *e.cholesky]
        sq_ret = stack_matrix(
            [o if o != "0" else "0.0 * F[..., 0, 0]" for o in e.R], P, B
        )
        how = (
            "Printed from the Cholesky factorisation of a symmetric matrix with the\n"
            "    Fisher's zero pattern."
        )
    else:
        sq_lines = ["F = fisher(theta)"]
        sq_ret = B.call("swapaxes", B.linalg("cholesky", "F"), "-1", "-2")
        how = "The transposed Cholesky factor of ``fisher(theta)``."
    src += function(
        "fisher_sqrt",
        "theta",
        r"Upper-triangular :math:`R` with :math:`R^\top R = F(\theta)`, shape ``(..., P, P)``."
        f"\n\n    {how}\n    ",
        sq_lines,
        sq_ret,
    )
    return src


def unavailable(reason: str) -> str:
    """``natural_gradient`` and ``fisher_sqrt`` that raise ``NotImplementedError``."""
    src = ""
    for name, args in [
        ("natural_gradient", "theta, g, damping=0.0"),
        ("fisher_sqrt", "theta"),
    ]:
        src += (
            f"\n\ndef {name}({args}):\n"
            f'    """Not available: {reason.split(";")[0]}."""\n'
            f"    raise NotImplementedError(FAMILY + ': ' + {reason!r})\n"
        )
    return src


class Printed(NamedTuple):
    """Statements and outputs of the solve and the Cholesky factor over named entries.

    ``damped_entries`` assign ``a_i_j`` (``+ lam`` on the diagonal) and ``solve``
    then computes the outputs ``x`` (over ``g_i``, which the caller assigns);
    ``entries`` assign the undamped ``a_i_j`` and ``cholesky`` computes ``R``
    (``P * P`` entries, row-major).
    """

    damped_entries: list[str]
    solve: list[str]
    x: list[str]
    entries: list[str]
    cholesky: list[str]
    R: list[str]


def elementwise(
    names: Callable[[int, int], str],
    P: int,
    nonzero: Pattern | None,
    printer: StablePrinting,
) -> Printed:
    """Solve and Cholesky statements over entries named by ``names(i, j)``.

    ``F[..., i, j]`` for a dense module; for a coordinates module, the printed
    Fisher entries, arrays over the coordinates.
    """
    entries = used_entries(P, nonzero)
    solve, x = solve_lines(P, nonzero, printer)
    chol, R = cholesky_lines(P, nonzero, printer)
    return Printed(
        [
            f"a_{i}_{j} = {names(i, j)}" + (" + lam" if i == j else "")
            for i, j in entries
        ],
        solve,
        x,
        [f"a_{i}_{j} = {names(i, j)}" for i, j in entries],
        chol,
        R,
    )
