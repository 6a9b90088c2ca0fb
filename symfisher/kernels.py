r"""Load generated kernel modules, without importing SymPy.

.. code-block:: python

    k = symfisher.kernels("gamma")    # generated/gamma.py
    k.fisher(theta)                   # theta[..., :] = (a, b)
    t = symfisher.kernels("gamma", backend="torch")  # generated/torch/gamma.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from symfisher.errors import DomainError, FamilyError

PACKAGE = "symfisher._generated"
#: backend -> subfolder of the catalog folder holding its modules
BACKEND_FOLDERS = {"jax": "", "torch": "torch"}
_LOADED: dict[Path, ModuleType] = {}


def catalog_dir() -> Path:
    """Folder holding the checked-in catalog kernels (``generated/`` in a checkout)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FamilyError(
            "the catalog kernels are not installed (package symfisher._generated); "
            "reinstall symfisher or run `symfisher generate --out DIR`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def available(path: str | Path | None = None) -> list[str]:
    """Names of the kernel modules in ``path`` (default: the catalog folder)."""
    folder = Path(path) if path is not None else catalog_dir()
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def kernels(
    name: Any, path: str | Path | None = None, backend: str = "jax"
) -> ModuleType:
    """The generated kernel module of a family.

    Args:
      name: a catalog name, or a family object (its ``name`` is used).
      path: folder the module was generated into (``symfisher generate --out``
        or ``symfisher.generate(family, out)``); default the catalog folder
        of ``backend``.
      backend: ``"jax"`` (``generated/``) or ``"torch"`` (``generated/torch/``,
        modules that need only PyTorch). Loading imports neither SymPy nor JAX.

    Raises:
      FamilyError: naming the folder and the kernels it holds when ``name`` has
        no module there.
      ValueError: when ``backend`` is not one of the backends.
    """
    if not isinstance(backend, str) or backend not in BACKEND_FOLDERS:
        raise ValueError(
            f"backend must be one of {', '.join(BACKEND_FOLDERS)}; got {backend!r}"
        )
    name = getattr(name, "name", name)
    if not isinstance(name, str) or not name.isidentifier():
        raise FamilyError(
            f"name must be a family name (a Python identifier); got {name!r}"
        )
    sub = BACKEND_FOLDERS[backend]
    folder = Path(path) if path is not None else catalog_dir() / sub
    file = (folder / f"{name}.py").resolve()
    if file in _LOADED:
        return _LOADED[file]
    if not file.is_file():
        raise FamilyError(
            f"no generated kernels for {name!r} in {folder}; available: "
            f"{', '.join(available(folder)) or 'none'}"
            + (
                ""
                if path is None
                else f". Run symfisher.generate(family, {str(folder)!r}"
                + ("" if backend == "jax" else f", backend={backend!r}")
                + ")"
            )
        )
    if path is None:
        modname = f"{PACKAGE}.{sub}.{name}" if sub else f"{PACKAGE}.{name}"
    else:
        tag = hashlib.sha256(str(file).encode()).hexdigest()[:12]
        modname = f"symfisher_kernels_{tag}.{name}"
    spec = importlib.util.spec_from_file_location(modname, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    _LOADED[file] = module
    return module


def check_params(name: Any, theta: Any, path: str | Path | None = None) -> None:
    """Raise :class:`DomainError` naming every parameter of ``theta`` outside its domain.

    Kernels themselves return NaN for parameters outside the domain;
    call this where an error is wanted instead.
    """
    import numpy as np

    k = kernels(name, path)
    theta = np.asarray(theta)
    if theta.dtype.kind in "fc" and not np.isfinite(theta).all():
        bad = np.argwhere(~np.isfinite(theta))[:5]
        names = getattr(k, "PARAMS", ())
        at = ", ".join(
            f"{names[w[-1]] if len(names) > w[-1] else w[-1]} at batch index "
            f"{tuple(int(i) for i in w[:-1])}"
            for w in bad
        )
        raise DomainError(f"{k.FAMILY}: parameters must be finite (NaN or inf: {at})")
    results = k.param_checks(theta)
    problems = []
    for msg, ok in zip(k.DOMAIN_CHECKS, results, strict=True):
        ok = np.asarray(ok)
        if not ok.all():
            where = np.argwhere(
                ~np.broadcast_to(ok, theta.shape[:-1]) if ok.ndim else ~ok
            )
            at = ", ".join(str(tuple(int(i) for i in w)) for w in where[:5])
            problems.append(f"{msg} (fails at batch index {at or '()'})")
    if problems:
        raise DomainError(f"{k.FAMILY}: " + "; ".join(problems))


def _bind() -> None:
    from symfisher._callable import make_callable

    make_callable(__name__, "symfisher.kernels:kernels")


_bind()
