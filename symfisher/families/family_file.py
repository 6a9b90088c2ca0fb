"""A family defined in a user's own Python file (``symfisher generate --family-file``).

The file is run as a module, as Python runs any file the user names on the
command line; it must leave ``family`` (one :class:`Family`) or ``families``
(a list), and may leave ``quadrature_ranges``. Nothing is evaluated from a string.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from symfisher.errors import SymfisherError

#: What a family file passed to ``symfisher generate --family-file`` defines.
FAMILY_FILE_HELP = (
    "a Python file that defines `family = <a symfisher Family>` (e.g. from "
    "symfisher.define_family) or `families = [<Family>, ...]`; optionally "
    "`quadrature_ranges = {'param': (lo, hi)}` (for `families`: "
    "{'family_name': {'param': (lo, hi)}}), the parameter ranges over which "
    "quadrature kernels are chosen and their accuracy stated"
)


def load_family_file(path: str) -> tuple[list, dict[str, dict]]:
    """The families a family file defines, and their quadrature ranges by name.

    Running the file executes its code: it is the user's own file, named on
    the command line. Nothing is ever evaluated from a string.

    Raises:
      SymfisherError: naming the file and what it should define.
    """
    from symfisher.families.family import Family  # SymPy: only when a file is loaded

    file = Path(path)
    if not file.is_file():
        raise SymfisherError(
            f"family file {path} not found; expected {FAMILY_FILE_HELP}"
        )
    tag = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"symfisher_family_file_{tag}", file)
    if spec is None or spec.loader is None:
        raise SymfisherError(f"family file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SymfisherError as e:
        raise SymfisherError(f"{path}: {e}") from e
    except Exception as e:
        raise SymfisherError(
            f"{path}: running the family file raised {type(e).__name__}: {e}"
        ) from e
    one, many = getattr(module, "family", None), getattr(module, "families", None)
    if (one is None) == (many is None):
        found = "both" if one is not None else "neither"
        raise SymfisherError(
            f"{path} defines {found} of `family` and `families`; expected "
            + FAMILY_FILE_HELP
        )
    fams = [one] if one is not None else list(many)
    bad = [f for f in fams if not isinstance(f, Family)]
    if bad or not fams:
        what = type(bad[0]).__name__ if bad else "an empty list"
        raise SymfisherError(
            f"{path}: `{'family' if one is not None else 'families'}` holds "
            f"{what}, not symfisher Family objects; expected {FAMILY_FILE_HELP}"
        )
    names = [f.name for f in fams]
    if len(set(names)) != len(names):
        raise SymfisherError(f"{path}: family names repeat: {names}")
    raw = getattr(module, "quadrature_ranges", None) or {}
    ranges = {fams[0].name: dict(raw)} if one is not None else dict(raw)
    unknown = sorted(set(ranges) - set(names))
    if unknown:
        raise SymfisherError(
            f"{path}: quadrature_ranges names unknown families {unknown}; "
            f"families: {names}"
        )
    return fams, ranges
