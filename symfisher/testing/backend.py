r"""The framework of the user's function: JAX arrays in, or torch tensors in.

An assertion builds its points in NumPy (float64) and hands them to the user's
function through :func:`call`, which converts them to the function's framework:

* ``backend="jax"``: ``jax.numpy`` arrays of the requested dtype;
* ``backend="torch"``: ``torch`` tensors of the requested dtype (float inputs
  with ``requires_grad=True`` where the function may differentiate, e.g. a
  score or an FVP by double back-propagation);
* ``backend=None``: detected. The function is first called with JAX arrays; if
  it returns a ``torch.Tensor``, or raises and answers torch tensors with a
  ``torch.Tensor``, the backend is torch from then on.

Whatever comes back is turned into a NumPy array (``tensor.detach().cpu()``), so
the comparison, tolerances and hints are the same for both frameworks. torch is
imported only when a torch function is tested.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The frameworks a user's function may speak.
BACKENDS = ("jax", "torch")


def check_backend(backend: str | None) -> str | None:
    """``backend`` validated: None (detect), ``"jax"`` or ``"torch"``."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be None, 'jax' or 'torch'; got {backend!r}")
    if backend == "torch" and importlib.util.find_spec("torch") is None:
        raise ValueError(
            "backend='torch' needs PyTorch: pip install 'symfisher[torch]'"
        )
    return backend


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (never imports torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _torch_dtype(dt: np.dtype) -> Any:
    import torch

    table = {
        np.dtype(np.float16): torch.float16,
        np.dtype(np.float32): torch.float32,
        np.dtype(np.float64): torch.float64,
        np.dtype(np.int32): torch.int32,
        np.dtype(np.int64): torch.int64,
        np.dtype(np.bool_): torch.bool,
    }
    if dt not in table:
        raise ValueError(f"dtype {dt} has no torch counterpart")
    return table[dt]


def to_input(a: Any, backend: str, dtype: Any, *, requires_grad: bool = False) -> Any:
    """``a`` as an input of ``backend``: a JAX array or a torch tensor of ``dtype``."""
    arr = np.asarray(a, dtype)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(arr)
    import torch

    t = torch.as_tensor(arr.copy(), dtype=_torch_dtype(arr.dtype))
    if requires_grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def to_numpy(out: Any) -> np.ndarray:
    """A JAX array, torch tensor, NumPy array or number as a NumPy array.

    Raises:
      TypeError: ``out`` is not numeric (a string, None, a dict, ...).
    """
    if is_torch(out):
        t = out.detach().cpu()
        if t.dtype.is_floating_point and t.dtype not in _NUMPY_FLOATS():
            t = t.double()
        return t.numpy()
    arr = np.asarray(out)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{type(out).__name__} is not an array")
    return arr


def _NUMPY_FLOATS() -> tuple:
    import torch

    return (torch.float16, torch.float32, torch.float64)


def _inputs(backend: str, arrs: Sequence[np.ndarray], grads: Sequence[bool]) -> list:
    """The arguments in ``backend``: torch gets integers as int64 (its index dtype)."""
    out = []
    for a, g in zip(arrs, grads, strict=True):
        dt = a.dtype
        if backend == "torch" and np.issubdtype(dt, np.integer):
            dt = np.dtype(np.int64)
        out.append(to_input(a, backend, dt, requires_grad=g))
    return out


def _returns_torch(out: Any) -> bool:
    """True when ``out`` is a torch tensor or a tuple/list holding one."""
    if isinstance(out, (tuple, list)):
        return any(is_torch(o) for o in out)
    return is_torch(out)


@dataclass
class Caller:
    """One user function, called with arguments converted to its framework.

    ``backend`` starts as given (None: detect on the first call, see the module
    docstring) and is fixed after the first successful call.
    """

    fn: Callable
    backend: str | None = None
    grad_args: Sequence[int] = ()

    def __call__(self, *args: Any) -> Any:
        """``fn(*args)``, ``args`` JAX or NumPy arrays; the raw output."""
        arrs = [np.asarray(a) for a in args]
        grads = [i in self.grad_args for i in range(len(arrs))]
        if self.backend is not None:
            return self.fn(*_inputs(self.backend, arrs, grads))
        try:
            out = self.fn(*_inputs("jax", arrs, grads))
        except Exception as jax_error:
            if importlib.util.find_spec("torch") is None:
                raise
            try:
                out = self.fn(*_inputs("torch", arrs, grads))
            except Exception as torch_error:
                jax_error.add_note(
                    "called with torch tensors instead, it raised "
                    f"{type(torch_error).__name__}: {torch_error}"
                )
                raise jax_error from None
            if not _returns_torch(out):
                raise jax_error from None
            self.backend = "torch"
            return out
        self.backend = "torch" if _returns_torch(out) else "jax"
        return out


def adapt(fn: Callable, backend: str | None, grad_args: Sequence[int] = ()) -> Caller:
    """``fn`` as a :class:`Caller`: it takes JAX/NumPy arguments whatever it speaks.

    Args:
      fn: the user's function.
      backend: None (detect), ``"jax"`` or ``"torch"``.
      grad_args: positions of the arguments torch gets with ``requires_grad``.
    """
    return Caller(fn, check_backend(backend), tuple(grad_args))
