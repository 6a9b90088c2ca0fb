"""On-disk cache of derivations, keyed by what determines their content.

Key: SHA-256 of the family definition, the symfisher version, the SymPy
version and the source of ``symfisher/derive``. Each entry stores its key and
a SHA-256 of its payload; an entry that fails either check, or cannot be
read, is deleted and rebuilt, never trusted. Location: ``SYMFISHER_CACHE_DIR``
or the platform's user cache folder.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import sympy as sp

from symfisher import __version__
from symfisher.families.family import Family

FORMAT = 1


def cache_dir() -> Path:
    """The cache folder: ``$SYMFISHER_CACHE_DIR`` or the platform convention."""
    env = os.environ.get("SYMFISHER_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("symfisher"))


@cache
def _code_hash() -> str:
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted([*(root / "derive").glob("*.py"), root / "timelimit.py"]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key(family: Family) -> str:
    """Cache key of a family's derivation."""
    text = "\n".join(
        [
            f"format={FORMAT}",
            f"symfisher={__version__}",
            f"sympy={sp.__version__}",
            f"code={_code_hash()}",
            family.definition_text(),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def path_for(family: Family) -> Path:
    """Where the entry of ``family`` lives."""
    return cache_dir() / f"{family.name}-{key(family)[:32]}.pkl"


def load(family: Family) -> dict[str, Any] | None:
    """The cached payload for ``family``, or ``None`` (missing, corrupt or stale)."""
    path = path_for(family)
    if not path.exists():
        return None
    try:
        with path.open("rb") as fh:
            entry = pickle.load(fh)
        ok = (
            isinstance(entry, dict)
            and entry.get("key") == key(family)
            and hashlib.sha256(entry["payload"]).hexdigest() == entry.get("sha256")
        )
        if not ok:
            raise ValueError("key or checksum mismatch")
        return pickle.loads(entry["payload"])
    except Exception as e:
        warnings.warn(
            f"symfisher: discarding corrupt or stale cache entry {path} ({e})",
            stacklevel=2,
        )
        path.unlink(missing_ok=True)
        return None


def store(family: Family, payload: dict[str, Any]) -> Path | None:
    """Write ``payload`` atomically; return the path, or ``None`` if unwritable."""
    path = path_for(family)
    tmp = None
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        entry = {
            "key": key(family),
            "sha256": hashlib.sha256(data).hexdigest(),
            "payload": data,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(entry, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except Exception as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        warnings.warn(f"symfisher: cannot write cache entry {path} ({e})", stacklevel=2)
        return None
    return path


def clear() -> int:
    """Delete every cache entry; return how many were removed."""
    n = 0
    for p in cache_dir().glob("*.pkl"):
        p.unlink(missing_ok=True)
        n += 1
    return n
