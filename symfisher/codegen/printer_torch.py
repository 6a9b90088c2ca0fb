r"""The PyTorch kernel printer: SymPy's ``TorchPrinter`` with the catalog's functions.

The special functions and stable primitives print as in the JAX printer
(:class:`symfisher.codegen.printer.StablePrinting`), to ``torch.special``
where PyTorch has them and to helpers of the generated module
(``_softplus``, ``_logsumexp``, ``_polygamma``, ``_maximum``, ``_minimum``)
where a scalar argument or accuracy needs care (``torch.special.polygamma``'s
trigamma is good to 5e-10 only, ``softplus`` returns its argument above 20). PyTorch's functions take tensors, not Python
numbers, so a constant subexpression (:math:`\log 2`, :math:`\sqrt{2\pi}`)
prints as its float64 value; powers print as ``**`` (``torch.pow`` rejects a
number base).
"""

from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from symfisher.codegen.printer import StablePrinting


class TorchKernelPrinter(StablePrinting, TorchPrinter):
    """``TorchPrinter`` with the special functions of the catalog."""

    BACKEND = "PyTorch"
    NAMES: ClassVar[dict[str, str]] = {
        "exp": "torch.exp",
        "log": "torch.log",
        "abs": "torch.abs",
        "log1p": "torch.log1p",
        "expm1": "torch.expm1",
        "where": "torch.where",
        "zeros_like": "torch.zeros_like",
        "maximum": "_maximum",
        "minimum": "_minimum",
        "softplus": "_softplus",
        "logsumexp": "_logsumexp",
        "polygamma": "_polygamma",
        **{
            op: f"torch.special.{op}"
            for op in (
                "gammaln",
                "digamma",
                "i0e",
                "i1e",
                "erf",
                "erfc",
                "log_ndtr",
                "expit",
            )
        },
    }

    def __init__(self) -> None:
        super().__init__({"strict": True})

    def _print(self, expr: object, **kwargs: object) -> str:
        if (
            isinstance(expr, sp.Expr)
            and expr.is_number
            and not isinstance(expr, (sp.Rational, sp.Float))
            and expr.is_real
        ):
            return repr(float(sp.N(expr, 30)))
        return super()._print(expr, **kwargs)

    def _print_Mul(self, e: sp.Mul) -> str:
        # one float for the constant factors: sqrt(2)*sqrt(pi)*x -> 2.5066...*x
        const = [a for a in e.args if a.is_number]
        if len(const) > 1 or (const and not isinstance(const[0], sp.Rational)):
            c = sp.Mul(*const)
            rest = [a for a in e.args if not a.is_number]
            if not isinstance(c, sp.Rational):
                c = sp.Float(float(sp.N(c, 30)))
            return super()._print_Mul(sp.Mul(c, *rest, evaluate=False))
        return super()._print_Mul(e)

    def _pow(self, e: sp.Pow, rational: bool) -> str:
        return self._hprint_Pow(e, rational=rational, sqrt="torch.sqrt")

    def _print_Float(self, e: sp.Float) -> str:
        return repr(float(e))

    def _print_Infinity(self, e: sp.Expr) -> str:
        return "math.inf"

    def _print_NegativeInfinity(self, e: sp.Expr) -> str:
        return "-math.inf"
