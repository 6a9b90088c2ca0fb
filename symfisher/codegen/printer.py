"""Kernel printers that map every function the catalog uses, and fail loudly otherwise.

SymPy's own ``JaxPrinter`` prints ``loggamma`` as ``math.lgamma`` (scalar only)
and has no ``polygamma`` or ``besseli``; :class:`KernelPrinter` prints them to
``jax.scipy.special`` and refuses unknown nodes. The stable primitives of
:mod:`symfisher.codegen.rewrite` are printed by :class:`StablePrinting`, shared
with the PyTorch printer (:mod:`symfisher.codegen.printer_torch`): each
backend names its functions in :attr:`StablePrinting.NAMES`.
"""

from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.printing.numpy import JaxPrinter
from sympy.printing.precedence import PRECEDENCE

from symfisher.codegen import rewrite
from symfisher.codegen.rewrite import Erfc, ExpOf
from symfisher.errors import SymfisherError


class UnsupportedNodeError(SymfisherError):
    """An expression node has no translation for the kernel's backend."""


class StablePrinting:
    """Printing of the catalog's special functions and stable primitives.

    Mixed into a SymPy code printer; ``NAMES`` maps an operation to the
    backend's qualified function name (``"gammaln": "jss.gammaln"``).
    """

    NAMES: ClassVar[dict[str, str]] = {}
    BACKEND: ClassVar[str] = ""

    def _call(self, op: str, *args: sp.Expr | str) -> str:
        printed = (a if isinstance(a, str) else self._print(a) for a in args)  # type: ignore[attr-defined]
        return f"{self.NAMES[op]}({', '.join(printed)})"

    def _print_Pow(self, e: sp.Pow, rational: bool = False) -> str:
        # 1/b and b**(-2), as a person writes them (SymPy's NumPy printer
        # writes b**(-1.0) for arrays of integers, which kernels never see)
        if e.exp.is_Integer and e.exp < 0:
            base = sp.Pow(e.base, -e.exp, evaluate=False) if e.exp != -1 else e.base
            return f"1/{self.parenthesize(base, PRECEDENCE['Mul'])}"  # type: ignore[attr-defined]
        return self._pow(e, rational)

    def _pow(self, e: sp.Pow, rational: bool) -> str:
        return super()._print_Pow(e, rational)  # type: ignore[misc]

    def _print_loggamma(self, e: sp.loggamma) -> str:
        return self._call("gammaln", *e.args)

    def _print_gamma(self, e: sp.gamma) -> str:
        return self._call("exp", self._call("gammaln", *e.args))

    def _print_polygamma(self, e: sp.polygamma) -> str:
        n, x = e.args
        if n == 0:
            return self._call("digamma", x)
        return self._call("polygamma", n, x)

    def _print_besseli(self, e: sp.besseli) -> str:
        nu, x = e.args
        if nu in (0, 1):
            # exponentially scaled Bessel functions times exp(|x|): no overflow
            # until the final product.
            scale = self._call("exp", self._call("abs", x))
            return f"({self._call(f'i{int(nu)}e', x)} * {scale})"
        if nu.is_integer:
            n = abs(int(nu))  # I_{-n} = I_n
            if n >= 2:  # I_n = I_{n-2} - 2 (n-1)/x I_{n-1}
                return "({})".format(
                    self._print(
                        sp.besseli(n - 2, x, evaluate=False)
                        - 2 * (n - 1) / x * sp.besseli(n - 1, x, evaluate=False)
                    )
                )
            return self._print(sp.besseli(n, x))
        raise UnsupportedNodeError(
            f"besseli of order {nu} has no {self.BACKEND} kernel"
        )

    def _print_DiracDelta(self, e: sp.DiracDelta) -> str:
        # Kernels are evaluated pointwise: the almost-everywhere value is 0.
        return self._call("zeros_like", e.args[0])

    def _print_Max(self, e: sp.Max) -> str:
        # SymPy's printer would write functools.reduce (not a kernel import)
        return self._nested("maximum", e.args)

    def _print_Min(self, e: sp.Min) -> str:
        return self._nested("minimum", e.args)

    def _nested(self, op: str, args: tuple[sp.Expr, ...]) -> str:
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = self._call(op, a, out)
        return out

    def _print_factorial(self, e: sp.factorial) -> str:
        # n! = Gamma(n + 1); SymPy's printer would write math.factorial (scalar only)
        return self._call("exp", self._call("gammaln", e.args[0] + 1))

    def _print_erf(self, e: sp.erf) -> str:
        return self._call("erf", *e.args)

    def _print_Erfc(self, e: Erfc) -> str:
        return self._call("erfc", *e.args)

    def _print_erfc(self, e: sp.erfc) -> str:
        return self._call("erfc", *e.args)

    def _print_ExpOf(self, e: ExpOf) -> str:
        return self._call("exp", e.args[0])

    def _print_log(self, e: sp.log) -> str:
        c, rest = e.args[0].as_coeff_Mul()
        if isinstance(rest, Erfc) and c > 0:
            # log(c erfc(w)) = log(2c) + log Phi(-sqrt(2) w): stable, and so are
            # the derivatives of log_ndtr (those of log(erfc) overflow in the tail)
            out = self._call("log_ndtr", -sp.sqrt(2) * rest.args[0])
            return out if 2 * c == 1 else f"({self._print(sp.log(2 * c))} + {out})"
        plain = getattr(super(), "_print_log", None)  # SymPy's, where it has one
        return plain(e) if plain is not None else self._call("log", *e.args)

    def _print_Log1p(self, e: rewrite.Log1p) -> str:
        return self._call("log1p", *e.args)

    def _print_Expm1(self, e: rewrite.Expm1) -> str:
        return self._call("expm1", *e.args)

    def _print_Sigmoid(self, e: rewrite.Sigmoid) -> str:
        return self._call("expit", *e.args)

    def _print_Softplus(self, e: rewrite.Softplus) -> str:
        return self._call("softplus", *e.args)

    def _print_LogSumExp(self, e: rewrite.LogSumExp) -> str:
        return self._call("logsumexp", *e.args)

    def _print_ExpAbsRem(self, e: rewrite.ExpAbsRem) -> str:
        # e^-|z| - 1 + |z|: Taylor series below |z| = 0.05 (relative error < 1e-14,
        # and autodiff's second derivative at 0 is 1), expm1 above.
        z = self._print(e.args[0])  # type: ignore[attr-defined]
        a, z2 = self._call("abs", z), f"({z}) ** 2"
        series = (
            f"{z2} * (1 / 2 + {z2} * (1 / 24 + {z2} * (1 / 720 + {z2} / 40320))) "
            f"- {a} ** 3 * (1 / 6 + {z2} * (1 / 120 + {z2} / 5040))"
        )
        far = f"{self._call('expm1', f'-{a}')} + {a}"
        return self._call("where", f"{a} < 0.05", series, far)

    def _print_LogGamma(self, e: rewrite.LogGamma) -> str:
        return self._call("gammaln", *e.args)

    def _print_BesselIE(self, e: rewrite.BesselIE) -> str:
        nu, x = e.args
        if nu.is_integer:
            n = abs(int(nu))  # ie_{-n} = ie_n
            if n in (0, 1):
                return self._call(f"i{n}e", x)
            # I_n = I_{n-2} - 2 (n-1)/x I_{n-1}, scaled alike
            return "({})".format(
                self._print(
                    rewrite.BesselIE(n - 2, x)
                    - 2 * (n - 1) / x * rewrite.BesselIE(n - 1, x)
                )
            )
        raise UnsupportedNodeError(
            f"scaled besseli of order {nu} has no {self.BACKEND} kernel"
        )

    def _print_Symbol(self, e: sp.Symbol) -> str:
        return identifier(e)

    def emptyPrinter(self, expr: object) -> str:
        """Unknown nodes fail loudly."""
        raise UnsupportedNodeError(
            f"unsupported SymPy node {type(expr).__name__}: {expr}"
        )


class KernelPrinter(StablePrinting, JaxPrinter):
    """``JaxPrinter`` with the special functions of the catalog."""

    BACKEND = "JAX"
    NAMES: ClassVar[dict[str, str]] = {
        **{
            op: f"jnp.{op}"
            for op in ("exp", "abs", "log1p", "expm1", "where", "maximum", "minimum")
        },
        "zeros_like": "jnp.zeros_like",
        **{
            op: f"jss.{op}"
            for op in (
                "gammaln",
                "digamma",
                "polygamma",
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

    def _module_format(self, fqn: str, register: bool = True) -> str:
        # one prefix for jax.numpy in every expression: ``jnp.log``, never
        # ``jax.numpy.log`` beside ``jnp.where``
        if fqn.startswith("jax.numpy."):
            return "jnp." + fqn.removeprefix("jax.numpy.")
        return super()._module_format(fqn, register)

    def _print_Softplus(self, e: rewrite.Softplus) -> str:
        return f"jnp.logaddexp(0.0, {self._print(e.args[0])})"

    def _print_LogSumExp(self, e: rewrite.LogSumExp) -> str:
        terms = ", ".join(self._print(a) for a in e.args)
        return f"jss.logsumexp(jnp.stack(jnp.broadcast_arrays({terms})), axis=0)"


def identifier(s: sp.Symbol) -> str:
    """A Python identifier for a symbol (``mu'`` becomes ``mu_q``)."""
    return s.name.replace("'", "_q")
