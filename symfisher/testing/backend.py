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


def _torch_input(a: Any, dtype: Any, *, requires_grad: bool = False) -> Any:
    """``a`` as a torch tensor of ``dtype`` (JAX inputs: :func:`_jax_inputs`)."""
    arr = np.asarray(a, dtype)
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
        if t.dtype.is_floating_point and t.dtype not in _numpy_floats():
            t = t.double()
        return t.numpy()
    arr = np.asarray(out)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{type(out).__name__} is not an array")
    return arr


def _numpy_floats() -> tuple:
    import torch

    return (torch.float16, torch.float32, torch.float64)


def _inputs(arrs: Sequence[Any], grads: Sequence[bool], keys: Sequence[bool]) -> list:
    """The arguments as torch tensors.

    Integers become int64 (torch's index dtype); a JAX PRNG key (``uint32``,
    last axis 2) becomes an int64 tensor of seeds, one per batch entry, for a
    ``torch.Generator().manual_seed(int(seed))``.
    """
    out = []
    for a, g, k in zip(arrs, grads, keys, strict=True):
        a = np.asarray(a)
        if k:
            a = (a[..., 0].astype(np.int64) << 31) ^ a[..., 1].astype(np.int64)
        dt = np.dtype(np.int64) if np.issubdtype(a.dtype, np.integer) else a.dtype
        out.append(_torch_input(a, dt, requires_grad=g))
    return out


def _jax_inputs(args: Sequence[Any]) -> list:
    """NumPy arrays as JAX arrays of their dtype; anything else as it is."""
    import jax.numpy as jnp

    return [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]


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
    key_args: Sequence[int] = ()

    def _torch(self, args: Sequence[Any]) -> list:
        n = range(len(args))
        return _inputs(
            args, [i in self.grad_args for i in n], [i in self.key_args for i in n]
        )

    def __call__(self, *args: Any) -> Any:
        """``fn(*args)``: NumPy ``args`` become JAX arrays or torch tensors."""
        if self.backend == "torch":
            return self.fn(*self._torch(args))
        jargs = _jax_inputs(args)
        if self.backend == "jax":
            return self.fn(*jargs)
        try:
            out = self.fn(*jargs)
        except Exception as jax_error:
            if importlib.util.find_spec("torch") is None:
                raise
            try:
                out = self.fn(*self._torch(args))
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


def adapt(
    fn: Callable,
    backend: str | None,
    grad_args: Sequence[int] = (),
    key_args: Sequence[int] = (),
) -> Caller:
    """``fn`` as a :class:`Caller`: it takes JAX/NumPy arguments whatever it speaks.

    Args:
      fn: the user's function.
      backend: None (detect), ``"jax"`` or ``"torch"``.
      grad_args: positions of the arguments torch gets with ``requires_grad``.
      key_args: positions of JAX PRNG keys (torch gets int64 seeds).
    """
    if isinstance(fn, Caller):
        return fn
    return Caller(fn, check_backend(backend), tuple(grad_args), tuple(key_args))
