"""Subpackages that share a public function's name stay callable.

``symfisher.derive`` is both a subpackage and the function ``sf.derive``; once
the subpackage is imported, Python binds the module to that attribute. Making
the module callable keeps ``sf.derive(family)`` and ``sf.families()`` working
whichever binding is current.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(module_name: str, target: str) -> None:
    """Let module ``module_name`` be called as the function ``target`` (``pkg.mod:fn``)."""
    mod_path, fn_name = target.split(":")

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(mod_path), fn_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
