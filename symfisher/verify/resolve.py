r"""One resolver of a family and its kernels: the verifier's, the oracle's and natural's.

``family`` is a catalog name or a :class:`~symfisher.Family`. Its kernels are the
first of:

1. ``kernels``, when the caller passes them (a module or a mapping of callables);
2. the module generated into ``path`` (``sf.generate(family, path)``);
3. with ``generate=True``, for a family whose definition is not the catalog's at
   its size, a module generated on the fly into a temporary folder;
4. the catalog's, by name. Structured catalog families (``categorical_softmax``,
   ``categorical``, ``diag_gaussian``) take their size from the shape of
   :math:`\theta`, so ``sf.family("categorical_softmax", K=5)`` uses them.

``build=False`` resolves the kernels from the name alone (any object with a
``name``, or a string naming generated kernels) and loads neither SymPy nor the
family; importing this module loads neither SymPy nor JAX.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from symfisher.errors import FamilyError
from symfisher.kernels import available
from symfisher.kernels import kernels as load

if TYPE_CHECKING:
    from symfisher.families.family import Family

FamilyLike = Any  # a catalog name (str) or a symfisher Family object

_EXAMPLE = "sf.family('categorical_softmax', K=5)"


class Resolved(NamedTuple):
    """A resolved family: its name, the family object (None unless built), its kernels."""

    name: str
    family: Family | None
    kernels: Any


def family_name(family: FamilyLike) -> str:
    """The family's name, from a string or a family object."""
    name = getattr(family, "name", family)
    if not isinstance(name, str):
        raise FamilyError(
            "family must be a family name (str) or a family object such as "
            f"{_EXAMPLE}; got {family!r}"
        )
    return name


def resolve(
    family: FamilyLike,
    kernels: Any = None,
    *,
    path: str | Path | None = None,
    build: bool = True,
    generate: bool = False,
    generic_sampler: bool = False,
) -> Resolved:
    """The family and kernels ``family`` stands for (see the module docstring).

    Args:
      family: a catalog name or a family object.
      kernels: kernels to use as they are; default resolve them.
      path: folder a user family was generated into; default the catalog.
      build: return the :class:`~symfisher.Family` (a string must then be a
        catalog name); False: resolve the kernels by name only.
      generate: generate kernels on the fly for a family whose definition is not
        the catalog's (with ``build``, without ``kernels`` and ``path``).
      generic_sampler: give a family without a sampler the generic one of
        :mod:`symfisher.families.generic_sampler` (with ``build``).

    Raises:
      FamilyError: for something that is neither a name nor a family, an unknown
        name (naming the catalog), a family without kernels in the catalog
        (saying to generate them and pass ``path``), or a family the generic
        sampler cannot serve (saying to pass ``sampler=``).
    """
    fam = _family(family, generic_sampler) if build else None
    name = fam.name if fam is not None else family_name(family)
    if kernels is None:
        if path is not None:
            kernels = load(name, path)
        elif generate and fam is not None and not _is_catalog(fam):
            kernels = _generated(fam)
        else:
            kernels = _catalog_kernels(name)
    return Resolved(name, fam, kernels)


def _family(family: FamilyLike, generic_sampler: bool) -> Family:
    """The family object: a catalog one by name, or ``family`` itself."""
    from symfisher.families.catalog import family as catalog_family
    from symfisher.families.family import Family

    if isinstance(family, str):
        family = catalog_family(family)  # FamilyError naming the catalog
    if not isinstance(family, Family):
        raise FamilyError(
            "family must be a catalog name or a family object such as "
            f"{_EXAMPLE}; got {family!r}"
        )
    if generic_sampler and family.sampler is None:
        # the generic sampler (inverse CDF / exact categorical), or a FamilyError
        # saying what to pass where none can be built
        from symfisher.families.generic_sampler import with_sampler

        family = with_sampler(family)
    return family


def _is_catalog(family: Family) -> bool:
    """Whether ``family`` is the catalog's family of its name at its size."""
    from symfisher.families.catalog import families as catalog_names
    from symfisher.families.catalog import family as catalog_family

    return family.name in catalog_names() and (
        catalog_family(family.name, **dict(family.size)).definition_text()
        == family.definition_text()
    )


def _generated(family: Family) -> Any:
    """Kernels generated for ``family`` into a fresh temporary folder."""
    import tempfile

    from symfisher.codegen.generate import generate

    folder = tempfile.mkdtemp(prefix="symfisher-kernels-")
    generate(family, folder)
    return load(family, path=folder)


def _catalog_kernels(name: str) -> Any:
    """The catalog's kernel module of ``name``."""
    if name not in available():
        raise FamilyError(
            f"unknown family {name!r}: no generated kernels in the catalog "
            f"({', '.join(available())}); for your own family run "
            f"sf.generate(family, folder) and pass path=folder"
        )
    return load(name)
