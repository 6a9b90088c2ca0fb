r"""The array library a kernel module is printed for: JAX (default) or PyTorch.

Both modules of a family are printed from the same expressions by the same
emitters (:mod:`symfisher.codegen.emit`, ``dense_module``, ``structured``,
``solve_kernels``, ``quadrature_kernels``); a :class:`Backend` supplies what
differs: the expression printer, the module's header helpers and the names of
the array functions the emitters write around printed expressions
(:meth:`Backend.call`). A kernel function printed from an expression therefore
exists for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from symfisher.codegen.printer import KernelPrinter, StablePrinting

#: the backends, by the name ``symfisher generate --backend`` takes
NAMES = ("jax", "torch")


@dataclass(frozen=True)
class Backend:
    """What a kernel module's text depends on besides the expressions.

    Attributes:
      name: ``"jax"`` or ``"torch"``.
      folder: the catalog's subfolder of ``generated/`` ("" for JAX).
      printer: a new expression printer.
      ops: neutral operation -> the module's function (``"concatenate"`` ->
        ``"torch.cat"``).
      axis: the keyword of an axis argument (``axis`` or ``dim``).
      keepdims: the keyword that keeps a reduced axis.
      inf: printed infinity.
      label: the ``BACKEND`` of its printer, how the backend is named in errors.
    """

    name: str
    folder: str
    printer: Callable[[], StablePrinting]
    ops: dict[str, str] = field(repr=False)
    axis: str
    keepdims: str
    inf: str
    label: str

    def call(
        self, op: str, *args: str, axis: int | None = None, keepdims: bool = False
    ) -> str:
        """``fn(args..., axis=k, keepdims=True)`` in the backend's names."""
        parts = list(args)
        if axis is not None:
            parts.append(f"{self.axis}={axis}")
        if keepdims:
            parts.append(f"{self.keepdims}=True")
        return f"{self.ops[op]}({', '.join(parts)})"

    def linalg(self, op: str, *args: str) -> str:
        """``inv``, ``solve`` or ``cholesky`` of printed arrays, the result only."""
        field = {"inv": "inverse", "solve": "result", "cholesky": "L"}[op]
        out = self.call(op, *args)
        return out if self.name == "jax" else f"{out}.{field}"

    def stack(self, items: list[str], axis: int) -> str:
        """Printed stack of printed arrays along ``axis``."""
        return self.call("stack", f"[{', '.join(items)}]", axis=axis)

    def concat(self, items: list[str], axis: int) -> str:
        """Printed concatenation of printed arrays along ``axis``."""
        return self.call("concatenate", f"[{', '.join(items)}]", axis=axis)

    def arg(self, var: str, name: str, ref: str) -> str:
        """The statement that checks an array argument ``var`` besides ``ref``.

        PyTorch's check also names a device that differs from ``ref``'s.
        """
        if self.name == "jax":
            return f"{var} = _theta({var}, {name!r})"
        return f"{var} = _theta({var}, {name!r}, {ref})"

    def stop_gradient(self, x: str) -> str:
        """``x`` with no gradient flowing back."""
        return f"jax.lax.stop_gradient({x})" if self.name == "jax" else f"{x}.detach()"

    def constant(self, x: str, ref: str) -> str:
        """Module constant ``x`` as an array in the dtype (and device) of ``ref``."""
        if self.name == "jax":
            return f"jnp.asarray({x}, dtype={ref}.dtype)"
        return f"torch.as_tensor({x}, dtype={ref}.dtype, device={ref}.device)"

    @property
    def compiled(self) -> str:
        """Decorator of a large kernel, compiled as a whole (``""``: none).

        JAX runs an undecorated function op by op and compiles each operation
        for each new shape; a quadrature kernel has hundreds of them, so a first
        call takes seconds where one ``jax.jit`` compilation takes a fraction.
        """
        return "jax.jit" if self.name == "jax" else ""

    def eye(self, n: str, ref: str) -> str:
        """Identity of size ``n`` in the dtype (and device) of ``ref``."""
        if self.name == "jax":
            return f"jnp.eye({n}, dtype={ref}.dtype)"
        return f"torch.eye({n}, dtype={ref}.dtype, device={ref}.device)"


_SHARED = (
    "stack",
    "sum",
    "where",
    "einsum",
    "zeros_like",
    "exp",
    "isfinite",
    "all",
    "abs",
    "finfo",
)

JAX = Backend(
    name="jax",
    folder="",
    printer=KernelPrinter,
    ops={
        **{op: f"jnp.{op}" for op in _SHARED},
        "concatenate": "jnp.concatenate",
        "max": "jnp.max",
        "swapaxes": "jnp.swapaxes",
        "broadcast_arrays": "jnp.broadcast_arrays",
        "broadcast_shapes": "jnp.broadcast_shapes",
        "broadcast_to": "jnp.broadcast_to",
        "inv": "jnp.linalg.inv",
        "solve": "jnp.linalg.solve",
        "cholesky": "jnp.linalg.cholesky",
        "logsumexp": "jss.logsumexp",
    },
    axis="axis",
    keepdims="keepdims",
    inf="jnp.inf",
    label="JAX",
)


def _torch_printer() -> StablePrinting:
    from symfisher.codegen.printer_torch import TorchKernelPrinter

    return TorchKernelPrinter()


TORCH = Backend(
    name="torch",
    folder="torch",
    printer=_torch_printer,
    ops={
        **{op: f"torch.{op}" for op in _SHARED},
        "concatenate": "torch.cat",
        "max": "torch.amax",
        "swapaxes": "torch.swapaxes",
        "broadcast_arrays": "torch.broadcast_tensors",
        "broadcast_shapes": "torch.broadcast_shapes",
        "broadcast_to": "torch.broadcast_to",
        # the _ex forms return inf/NaN for a singular matrix, as JAX does, where
        # the plain ones raise
        "inv": "torch.linalg.inv_ex",
        "solve": "torch.linalg.solve_ex",
        "cholesky": "torch.linalg.cholesky_ex",
        "logsumexp": "torch.logsumexp",
    },
    axis="dim",
    keepdims="keepdim",
    inf="math.inf",
    label="PyTorch",
)

BACKENDS = {"jax": JAX, "torch": TORCH}


def backend(name: str | Backend) -> Backend:
    """The backend called ``name`` (a :class:`Backend` passes through).

    Raises:
      ValueError: naming the backends when ``name`` is not one.
    """
    if isinstance(name, Backend):
        return name
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"backend must be one of {', '.join(NAMES)}; got {name!r}"
        ) from None


def for_printer(printer: StablePrinting) -> Backend:
    """The backend whose modules ``printer`` prints expressions for."""
    return next(b for b in BACKENDS.values() if b.label == printer.BACKEND)
