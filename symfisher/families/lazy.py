"""Samplers bound lazily, so that defining a family never imports JAX."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LazySampler:
    """``sample(key, theta, shape)`` of a catalog family, built on first call.

    It is ``symfisher.families.catalog.<name>.sampler(**size)``.
    """

    name: str
    size: tuple[tuple[str, Any], ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, key: Any, theta: Any, shape: tuple[int, ...] = ()) -> Any:
        """Draw ``shape + event_shape`` samples at parameter vector ``theta``."""
        fn = self._cache.get("fn")
        if fn is None:
            module = importlib.import_module(f"symfisher.families.catalog.{self.name}")
            fn = module.sampler(**dict(self.size))
            self._cache["fn"] = fn
        return fn(key, theta, shape)


def lazy_sampler(name: str, **size: Any) -> LazySampler:
    """The catalog sampler ``name`` with its size keywords."""
    return LazySampler(name, tuple(sorted(size.items())))
