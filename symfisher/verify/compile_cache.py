"""JAX's persistent compilation cache, kept in the symfisher cache folder.

The verifier compiles a few hundred small programs; JAX can keep them on disk
(``jax_compilation_cache_dir``) so that a second run loads them instead of
compiling again. :func:`enable` turns this on in ``<cache folder>/jax``
(:func:`symfisher.cache.cache_dir`, so ``SYMFISHER_CACHE_DIR`` moves it too),
with every compilation kept however fast it was. The verifier calls it (the
``symfisher verify`` command, :func:`symfisher.verify` and
:func:`symfisher.verify_many`); importing symfisher or a generated kernel does
not.

It is left alone when the process already set ``jax_compilation_cache_dir``
(your folder is used), and it is off with ``SYMFISHER_JAX_CACHE=0`` or
``symfisher verify --no-jax-cache`` (``jax_cache=False`` in the API). Compiled
programs do not change results: a cached program is the program compiled.
Like any JAX compilation cache, the folder is trusted: do not share it with
users you do not trust.
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable: ``0``, ``off``, ``false`` or ``no`` turns the cache off
ENV = "SYMFISHER_JAX_CACHE"
_OFF = ("0", "off", "false", "no")


def folder() -> Path:
    """Where the compiled programs are kept: ``<symfisher cache folder>/jax``."""
    from symfisher.cache import cache_dir

    return cache_dir() / "jax"


def wanted(on: bool | None = None) -> bool:
    """``on`` if given, else whether ``SYMFISHER_JAX_CACHE`` leaves the cache on."""
    if on is not None:
        return bool(on)
    return os.environ.get(ENV, "").strip().lower() not in _OFF


def enable(on: bool | None = None) -> Path | None:
    """Keep JAX's compiled programs in :func:`folder` (see the module docstring).

    Returns:
      The folder in use (the caller's own when the process had set one), or
      ``None`` when the cache is off.
    """
    import jax

    mine = jax.config.jax_compilation_cache_dir
    if mine:
        return Path(mine)
    if not wanted(on):
        return None
    path = folder()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable cache folder: compile as before
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path
