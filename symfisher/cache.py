"""On-disk cache of derivations, keyed by what determines their content.

Key: SHA-256 of the family definition, the symfisher version, the SymPy
version and the source of ``symfisher/derive``. Each entry stores its key and
a SHA-256 of its payload; an entry that fails either check, or cannot be
read, is deleted and rebuilt, never trusted. Location: ``SYMFISHER_CACHE_DIR``
or the platform's user cache folder.

A result is served only where it is the result the request would compute
(:func:`serves`): one that a time limit cut short is never served to a request
with more time, and one that disagrees with the recorded outcomes
(:mod:`symfisher.outcomes`) is recomputed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, MutableMapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sympy as sp

from symfisher import __version__, outcomes
from symfisher.families.family import Family
from symfisher.timelimit import budget

FORMAT = 3  # 3: derivations carry the entropy


class Timed(Protocol):
    """A derivation that knows how the clock shaped it."""

    steps: dict[str, str]  # fingerprint -> outcome of each time-limited step
    by_clock: int  # steps whose outcome the clock decided
    budget: float  # seconds it was allowed (times SYMFISHER_TIME_SCALE)


R = TypeVar("R", bound=Timed)


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
    own = [root / "timelimit.py", root / "outcomes.py"]
    for path in sorted([*(root / "derive").glob("*.py"), *own]):
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


def serves(result: Timed, seconds: float) -> bool:
    """Whether a stored result is what a request with ``seconds`` would compute.

    A result the clock cut short serves only requests with no more time than it
    had; none serves when a step's outcome differs from the recorded one.
    """
    allowed = seconds * outcomes.time_scale()
    complete = result.by_clock == 0 or allowed <= result.budget
    return complete and not outcomes.disagreements(result.steps)


def timed(compute: Callable[[], R], seconds: float, *, total: bool) -> R:
    """Run ``compute`` tracing its steps; ``total`` caps them at ``seconds`` in all."""
    with outcomes.tracing() as trace:
        if total:
            with budget(seconds):
                result = compute()
        else:
            result = compute()
    result.steps = dict(sorted(trace.steps.items()))
    result.by_clock = trace.by_clock
    result.budget = seconds * outcomes.time_scale()
    return result


def cached(
    subject: Family,
    memory: MutableMapping[str, R],
    seconds: float,
    compute: Callable[[], R],
    build: Callable[[dict[str, Any]], R],
    fields: Sequence[str],
) -> R:
    """The stored result for ``subject`` if it :func:`serves`, else a new one, stored.

    Args:
      subject: a family or policy (anything with ``definition_text``).
      memory: the in-process memo, by :func:`key`.
      seconds: the request's time limit.
      compute: computes a fresh result (:func:`timed`).
      build: a result from a stored payload.
      fields: the attributes stored.
    """
    result = lookup(subject, memory, seconds, build)
    if result is None:
        result = compute()
        store(subject, {f: getattr(result, f) for f in fields})
        memory[key(subject)] = result
    return result


def lookup(
    subject: Family,
    memory: MutableMapping[str, R],
    seconds: float,
    build: Callable[[dict[str, Any]], R],
) -> R | None:
    """The result :func:`cached` would serve without computing, or ``None``.

    A served result is memoised and its steps replayed to open traces.
    """
    k = key(subject)
    result = memory.get(k)
    if result is None or not serves(result, seconds):
        payload = load(subject)
        result = None if payload is None else build(payload)
    if result is None or not serves(result, seconds):
        return None
    outcomes.replay(result.steps, result.by_clock)
    memory[k] = result
    return result
