"""The catalog's documents: ``CATALOG.md``, the README table, the records they show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from symfisher.derive.derivation import derive
from symfisher.publish import catalog_doc, record

CATALOG_NAME = catalog_doc.CATALOG_NAME


def catalog_texts(
    names: Sequence[str],
    module_texts: Mapping[str, str],
    records: Mapping[str, Mapping[str, object]],
    policy_names: Sequence[str] = (),
) -> tuple[str, str]:
    """``CATALOG.md`` and the README catalog table for catalog families ``names``.

    Args:
      names: catalog names in display order.
      module_texts: family or policy name -> its current kernel module text.
      records: verification records (:func:`symfisher.publish.record.load`).
      policy_names: state-conditioned policies, rendered after the families.
    """
    from symfisher.derive.policy_derivation import derive_policy

    ds = [derive(n) for n in names]
    vs = [record.verdict(n, module_texts.get(n), records) for n in names]
    pols = [
        (derive_policy(n), record.verdict(n, module_texts.get(n), records))
        for n in policy_names
    ]
    extra = [catalog_doc.policy_section(d, v) for d, v in pols]
    return (
        catalog_doc.catalog_text(ds, vs, extra),
        catalog_doc.readme_table(ds, vs, pols),
    )


def records_path(folder: str | Path | None = None) -> Path:
    """``VERIFIED.json`` of the catalog kernels (default: the catalog folder)."""
    from symfisher.kernels import catalog_dir

    return Path(folder if folder is not None else catalog_dir()) / record.FILE_NAME


def readme_path() -> Path | None:
    """The checkout's README.md carrying the catalog-table markers, or ``None``.

    The catalog folder is ``generated/`` at the root of a checkout; an installed
    package has no README beside it.
    """
    from symfisher.kernels import catalog_dir

    path = catalog_dir().parent / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return path if catalog_doc.README_START in text else None
