"""The built-in catalog: name -> builder of a :class:`Family`, one module per family.

Each public module ``symfisher/families/catalog/<name>.py`` is one family: its
``ORDER`` (display position), ``build(**size) -> Family`` (log-density, domains,
exponential-family form) and ``sampler(**size) -> Sampler`` (the JAX sampler,
importing JAX only when called). Modules whose names start with ``_`` hold shared
pieces. Adding a family is adding a module; the registry finds it here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from functools import cache
from types import ModuleType

from symfisher.errors import FamilyError
from symfisher.families.family import Family

#: what a family module must define
REQUIRED = ("ORDER", "build", "sampler")


def _family_modules() -> list[ModuleType]:
    """Every public module of this package, imported (in name order)."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
    )
    return [importlib.import_module(f"{__name__}.{n}") for n in names]


def _registry(mods: Iterable[ModuleType]) -> dict[str, ModuleType]:
    """Family modules by name, in display order (``ORDER``), after checking them.

    Raises:
      FamilyError: for a module missing ``ORDER``, ``build`` or ``sampler``, an
        ``ORDER`` that is not an int or is taken twice, or a ``sampler`` whose size
        keywords (names and defaults) differ from those of ``build``.
    """
    by_order: dict[int, ModuleType] = {}
    for mod in mods:
        name = mod.__name__.rpartition(".")[2]
        missing = [a for a in REQUIRED if not hasattr(mod, a)]
        if missing:
            raise FamilyError(
                f"catalog module {name!r} does not define {', '.join(missing)}"
            )
        order = mod.ORDER
        if not isinstance(order, int) or isinstance(order, bool):
            raise FamilyError(f"catalog module {name!r}: ORDER must be an int")
        if order in by_order:
            other = by_order[order].__name__.rpartition(".")[2]
            raise FamilyError(
                f"catalog modules {other!r} and {name!r} share ORDER = {order}"
            )
        if _keywords(mod.build) != _keywords(mod.sampler):
            raise FamilyError(
                f"catalog module {name!r}: sampler takes {_keywords(mod.sampler)}, "
                f"build takes {_keywords(mod.build)}"
            )
        by_order[order] = mod
    return {m.__name__.rpartition(".")[2]: m for _, m in sorted(by_order.items())}


def _keywords(fn: Callable[..., object]) -> dict[str, object]:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()}


#: Family modules in display order.
MODULES: dict[str, ModuleType] = _registry(_family_modules())

#: Catalog builders in display order; size-generic ones take keywords.
BUILDERS: dict[str, Callable[..., Family]] = {n: m.build for n, m in MODULES.items()}


def families() -> list[str]:
    """Names in the built-in catalog, in display order."""
    return list(BUILDERS)


def size_keywords(name: str) -> dict[str, int]:
    """Size keywords of a catalog family and their defaults (``{"K": 3}``)."""
    return _keywords(_builder(name))  # type: ignore[return-value]


def family(name: str, **size: int) -> Family:
    """A catalog family by name, e.g. ``family("categorical_softmax", K=5)``.

    Raises:
      FamilyError: for an unknown name or a size keyword the family does not take.
    """
    _builder(name)
    allowed = size_keywords(name)
    extra = sorted(set(size) - set(allowed))
    if extra:
        takes = f"takes {sorted(allowed)}" if allowed else "takes no size keywords"
        raise FamilyError(f"family {name!r} {takes}; got {extra}")
    return _build(name, tuple(sorted(size.items())))


@cache
def _build(name: str, size: tuple[tuple[str, int], ...]) -> Family:
    return BUILDERS[name](**dict(size))


def _builder(name: str) -> Callable[..., Family]:
    try:
        return BUILDERS[name]
    except (KeyError, TypeError):
        raise FamilyError(
            f"unknown family {name!r}; the catalog has {', '.join(BUILDERS)}"
        ) from None


def catalog() -> list[Family]:
    """Every catalog family at its default size."""
    return [family(n) for n in BUILDERS]
