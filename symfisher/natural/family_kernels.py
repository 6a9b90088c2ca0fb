r"""Resolve a family given by name or as a family object to its generated kernels.

Structured catalog families (``categorical_softmax``, ``categorical``,
``diag_gaussian``) take their size from the shape of :math:`\theta`, so a family
object such as ``sf.family("categorical_softmax", K=5)`` uses the catalog
kernels; any other user family needs ``path``, the folder it was generated into
(``sf.generate(family, path)``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from symfisher.errors import FamilyError
from symfisher.kernels import available, kernels

FamilyLike = Any  # a catalog name (str) or a symfisher Family object


def family_name(family: FamilyLike) -> str:
    """The family's name, from a string or a family object."""
    name = getattr(family, "name", family)
    if not isinstance(name, str):
        raise FamilyError(
            "family must be a family name (str) or a family object such as "
            f"sf.family('categorical_softmax', K=5); got {family!r}"
        )
    return name


def family_kernels(family: FamilyLike, path: str | Path | None = None) -> ModuleType:
    """The generated kernel module of ``family``.

    Args:
      family: a catalog name or a family object.
      path: folder a user family was generated into; default the catalog.

    Raises:
      FamilyError: for an unknown family, naming the kernels that exist.
    """
    name = family_name(family)
    if path is None and name not in available():
        raise FamilyError(
            f"unknown family {name!r}: no generated kernels in the catalog "
            f"({', '.join(available())}); for your own family run "
            f"sf.generate(family, folder) and pass path=folder"
        )
    return kernels(name, path)
