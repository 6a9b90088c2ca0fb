"""JAX's persistent compilation cache in the symfisher cache folder."""

from __future__ import annotations

from pathlib import Path

import jax

import symfisher as sf
from symfisher.verify import compile_cache


def test_the_folder_follows_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(tmp_path))
    assert compile_cache.folder() == tmp_path / "jax"


def test_the_env_var_turns_it_off(monkeypatch):
    monkeypatch.setenv(compile_cache.ENV, "0")
    assert not compile_cache.wanted()
    assert compile_cache.wanted(True)  # an explicit choice wins
    monkeypatch.setenv(compile_cache.ENV, "")
    assert compile_cache.wanted() and not compile_cache.wanted(False)


def test_verify_keeps_its_compiled_programs():
    sf.verify_many(["bernoulli"], n_samples=64, points=1, cramer_rao=False)
    folder = jax.config.jax_compilation_cache_dir
    assert folder and any(Path(folder).iterdir())
    assert compile_cache.enable() == Path(folder)  # a folder already set is kept
