r"""Resolve a family given by name or as a family object to its generated kernels.

Structured catalog families (``categorical_softmax``, ``categorical``,
``diag_gaussian``) take their size from the shape of :math:`\theta`, so a family
object such as ``sf.family("categorical_softmax", K=5)`` uses the catalog
kernels; any other user family needs ``path``, the folder it was generated into
(``sf.generate(family, path)``). The lookup is the one resolver of
:mod:`symfisher.verify.resolve`, by name only (neither SymPy nor the family load).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from symfisher.verify.resolve import FamilyLike, family_name, resolve

__all__ = ["FamilyLike", "family_kernels", "family_name"]


def family_kernels(family: FamilyLike, path: str | Path | None = None) -> ModuleType:
    """The generated kernel module of ``family``.

    Args:
      family: a catalog name or a family object.
      path: folder a user family was generated into; default the catalog.

    Raises:
      FamilyError: for an unknown family, naming the kernels that exist.
    """
    return resolve(family, path=path, build=False).kernels
