"""Numeric JAX samplers of the catalog families, by name.

Each catalog family's sampler lives in its module
(``symfisher/families/catalog/<name>.py``, the factory ``sampler``); the Monte
Carlo verifier uses them to check derived quantities (score, Fisher, KL) against
data. The signature they share is :class:`Sampler` (see
:mod:`symfisher.families.sampling`).

:data:`SAMPLERS` maps each catalog name to its factory, which takes the size
keywords (or none) and returns the sampler, e.g. ``SAMPLERS["gamma"]()`` or
``SAMPLERS["categorical"](K=4)``.
"""

from __future__ import annotations

from collections.abc import Callable

from symfisher.families.catalog import MODULES
from symfisher.families.sampling import Sampler

__all__ = ["SAMPLERS", "Sampler"]

SAMPLERS: dict[str, Callable[..., Sampler]] = {
    name: module.sampler for name, module in MODULES.items()
}
"""Catalog name -> factory. Factories take size keywords (``K=``, ``d=``, ``nu=``)."""
