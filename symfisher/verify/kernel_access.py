"""Uniform access to kernels (a generated module or a mapping of callables), jitted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Kernels:
    """Uniform access to a kernels module or mapping of callables."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, name: str) -> Callable | None:
        """The callable ``name``, or None when missing or not callable."""
        f = (
            self.obj.get(name)
            if isinstance(self.obj, Mapping)
            else getattr(self.obj, name, None)
        )
        return f if callable(f) else None

    def accuracy(self, name: str) -> float:
        """The accuracy a quadrature kernel states (``QUADRATURE_ACCURACY``), else 0."""
        acc = getattr(self.obj, "QUADRATURE_ACCURACY", None)
        return float(acc.get(name, 0.0)) if isinstance(acc, Mapping) else 0.0

    def ranges(self) -> dict[str, tuple[float, float]] | None:
        """``QUADRATURE_RANGES``: where the stated accuracy holds (None: everywhere)."""
        r = getattr(self.obj, "QUADRATURE_RANGES", None)
        return dict(r) if isinstance(r, Mapping) else None


_JITTED: dict[tuple, tuple] = {}


def _jit(f: Callable, how: str = "", extra: tuple = ()) -> Callable:
    """``jax.jit(f)`` (or of its ``jax.hessian`` in the second argument), cached.

    ``extra`` are trailing arguments fixed at trace time (Python constants, as an
    eager call passes them): ``_jit(f, extra=(c,))(a, b)`` is ``f(a, b, c)``.
    """
    import jax

    key = (id(f), how, extra)
    if key not in _JITTED:
        g = jax.hessian(f, argnums=1) if how == "hessian" else f
        if extra:
            g = _bound(g, extra)
        _JITTED[key] = (jax.jit(g), f)  # holding f keeps its id unique
    return _JITTED[key][0]


def _bound(g: Callable, extra: tuple) -> Callable:
    def call(*args: Any) -> Any:
        return g(*args, *extra)

    return call
