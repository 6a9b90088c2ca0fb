"""The on-disk derivation cache (``symfisher.cache``) as seen through ``derive``."""

from __future__ import annotations

import hashlib
import pickle
import warnings

import pytest
import sympy as sp

import symfisher
from symfisher import cache
from symfisher.derive import derivation
from symfisher.derive.derivation import derive


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """A fresh cache folder and an empty in-memory memo for every test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(d))
    monkeypatch.setattr(derivation, "_MEMORY", {})
    return d


def _entries(d):
    return sorted(p.name for p in d.glob("*.pkl")) if d.exists() else []


def _forget():
    """Drop the in-memory memo so that the next ``derive`` goes to disk."""
    derivation._MEMORY.clear()


def _no_rebuild(monkeypatch):
    """Make any fresh derivation an error: the result must come from the cache."""

    def boom(*a, **k):
        raise AssertionError("derive_uncached called although a valid entry exists")

    monkeypatch.setattr(derivation, "derive_uncached", boom)


@pytest.fixture
def fam():
    return symfisher.family("exponential")


def _user_family(log_density: str):
    return symfisher.define_family(
        "mine", log_density, params={"lam": "positive"}, support="positive_reals"
    )


# -- location --------------------------------------------------------------------
def test_env_var_sets_the_cache_dir(private_cache, fam):
    assert cache.cache_dir() == private_cache
    assert cache.path_for(fam).parent == private_cache
    assert cache.path_for(fam).name.startswith("exponential-")
    assert cache.path_for(fam).suffix == ".pkl"


def test_env_var_is_read_at_call_time(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(other))
    assert cache.cache_dir() == other


def test_without_env_var_a_user_cache_folder_is_used(monkeypatch):
    monkeypatch.delenv("SYMFISHER_CACHE_DIR")
    d = cache.cache_dir()
    assert d.is_absolute()
    assert "symfisher" in d.parts


# -- write, then read back -------------------------------------------------------
def test_first_derive_writes_one_entry(private_cache, fam):
    assert _entries(private_cache) == []
    d = derive(fam)
    assert d.from_cache is False
    assert _entries(private_cache) == [cache.path_for(fam).name]
    # the atomic write leaves no temporary file behind
    assert list(private_cache.glob("*.tmp")) == []
    assert d.fisher == sp.Matrix([[d.family.params[0] ** -2]])


def test_second_derive_reads_the_entry(private_cache, fam, monkeypatch):
    first = derive(fam)
    _forget()
    _no_rebuild(monkeypatch)
    second = derive(fam)
    assert second is not first
    assert second.from_cache is True
    assert second.fisher == first.fisher
    assert second.kl == first.kl
    assert second.kl_primed == first.kl_primed
    assert second.routes == first.routes
    assert second.agreement == first.agreement
    assert second.regular == first.regular
    assert _entries(private_cache) == [cache.path_for(fam).name]


def test_memo_returns_the_same_object_without_disk(private_cache, fam):
    first = derive(fam)
    cache.path_for(fam).unlink()
    again = derive(fam)
    assert again is first
    assert _entries(private_cache) == []  # the memo hit did not touch the disk


def test_use_cache_false_neither_reads_nor_writes(private_cache, fam):
    d = derive(fam, use_cache=False)
    assert d.from_cache is False
    assert _entries(private_cache) == []
    derive(fam)
    _forget()
    d = derive(fam, use_cache=False)
    assert d.from_cache is False


def test_load_and_store_round_trip(private_cache, fam):
    assert cache.load(fam) is None
    payload = {"answer": sp.Rational(1, 3), "matrix": sp.Matrix([[1, 2]])}
    path = cache.store(fam, payload)
    assert path == cache.path_for(fam)
    assert path.exists()
    assert cache.load(fam) == payload


# -- corrupt and stale entries ---------------------------------------------------
def _garbage(path, fam):
    path.write_bytes(b"\x00this is not a pickle\xff" * 8)


def _truncate(path, fam):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path, fam):
    path.write_bytes(b"")


def _flip_payload_byte(path, fam):
    """Change one letter inside the pickled payload; it still unpickles."""
    raw = bytearray(path.read_bytes())
    payload = pickle.loads(bytes(raw))["payload"]
    start = bytes(raw).find(payload)
    at = payload.find(b"closed-form")  # in the provenance of the KL route
    assert start > 0 and at >= 0
    raw[start + at] = ord("C")
    path.write_bytes(bytes(raw))
    # still a well-formed entry whose payload still unpickles (to a different
    # value): only the checksum can catch this
    entry = pickle.loads(bytes(raw))
    assert entry["key"] == cache.key(fam)
    assert b"Closed-form" in entry["payload"]
    pickle.loads(entry["payload"])
    assert hashlib.sha256(entry["payload"]).hexdigest() != entry["sha256"]


@pytest.mark.parametrize(
    "corrupt",
    [_garbage, _truncate, _empty, _flip_payload_byte],
    ids=["garbage", "truncated", "empty", "flipped-payload-byte"],
)
def test_corrupt_entry_is_detected_and_rebuilt(private_cache, fam, corrupt):
    first = derive(fam)
    path = cache.path_for(fam)
    good = path.read_bytes()
    corrupt(path, fam)
    assert path.read_bytes() != good
    _forget()
    with pytest.warns(UserWarning, match="corrupt or stale"):
        d = derive(fam)
    assert d.from_cache is False
    assert d.fisher == first.fisher
    # a valid entry was written again and loads without complaint
    assert _entries(private_cache) == [path.name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        payload = cache.load(fam)
        assert payload is not None
        _forget()
        assert derive(fam).from_cache is True


def test_checksum_mismatch_is_named(fam):
    derive(fam)
    path = cache.path_for(fam)
    _flip_payload_byte(path, fam)
    with pytest.warns(UserWarning, match="checksum"):
        assert cache.load(fam) is None
    assert not path.exists()  # the bad entry is deleted, never trusted


def test_entry_with_a_wrong_key_is_rejected(private_cache, fam):
    first = derive(fam)
    path = cache.path_for(fam)
    payload = pickle.loads(path.read_bytes())["payload"]
    forged = {
        "key": "wrong",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
    }
    path.write_bytes(pickle.dumps(forged))
    _forget()
    with pytest.warns(UserWarning, match="corrupt or stale"):
        d = derive(fam)
    assert d.from_cache is False
    assert d.fisher == first.fisher
    rewritten = pickle.loads(path.read_bytes())
    assert rewritten["key"] == cache.key(fam)
    assert hashlib.sha256(rewritten["payload"]).hexdigest() == rewritten["sha256"]


@pytest.mark.parametrize(
    "entry",
    [
        ["not", "a", "dict"],
        {"key": "whatever"},  # no payload at all
        "just a string",
    ],
    ids=["list", "dict-without-payload", "str"],
)
def test_malformed_entries_are_rejected(fam, entry):
    path = cache.path_for(fam)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry))
    with pytest.warns(UserWarning, match="corrupt or stale"):
        assert cache.load(fam) is None
    assert not path.exists()


def test_correct_key_and_checksum_of_a_foreign_payload_is_accepted(fam):
    # the cache trusts exactly what key+checksum vouch for (no other checks)
    data = pickle.dumps({"x": 1})
    entry = {"key": cache.key(fam), "sha256": hashlib.sha256(data).hexdigest()}
    entry["payload"] = data
    path = cache.path_for(fam)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry))
    assert cache.load(fam) == {"x": 1}


# -- what the key depends on -------------------------------------------------------
def test_key_is_deterministic(fam):
    assert cache.key(fam) == cache.key(symfisher.family("exponential"))
    assert len(cache.key(fam)) == 64
    int(cache.key(fam), 16)


def test_key_differs_between_families():
    keys = {cache.key(symfisher.family(n)) for n in ("exponential", "poisson")}
    assert len(keys) == 2


def test_key_changes_with_the_size_keyword():
    k3 = symfisher.family("categorical_softmax", K=3)
    k4 = symfisher.family("categorical_softmax", K=4)
    assert cache.key(k3) != cache.key(k4)
    assert cache.path_for(k3) != cache.path_for(k4)
    assert cache.key(k3) == cache.key(symfisher.family("categorical_softmax"))


def test_key_changes_with_the_log_density():
    a = _user_family("log(lam) - lam*x")
    a_again = _user_family("log(lam) - lam*x")
    b = _user_family("2*log(lam) + log(x) - lam*x")
    assert cache.key(a) == cache.key(a_again)
    assert cache.key(a) != cache.key(b)
    assert cache.path_for(a) != cache.path_for(b)


def test_redefined_family_is_not_served_a_stale_entry(private_cache):
    lam = sp.Symbol("lam", positive=True)
    a = derive(_user_family("log(lam) - lam*x"))
    _forget()
    b = derive(_user_family("2*log(lam) + log(x) - lam*x"))
    assert b.from_cache is False
    assert sp.simplify(a.fisher[0, 0].subs(a.family.params[0], lam) - lam**-2) == 0
    assert sp.simplify(b.fisher[0, 0].subs(b.family.params[0], lam) - 2 / lam**2) == 0
    assert len(_entries(private_cache)) == 2


def test_key_changes_with_the_symfisher_version(fam, monkeypatch):
    before = cache.key(fam)
    # cache.py does ``from symfisher import __version__``: its own binding counts
    monkeypatch.setattr(cache, "__version__", symfisher.__version__ + ".post1")
    after = cache.key(fam)
    assert after != before
    monkeypatch.undo()
    assert cache.key(fam) == before


def test_key_changes_with_the_sympy_version(fam, monkeypatch):
    before = cache.key(fam)
    monkeypatch.setattr(sp, "__version__", "0.0.1")
    assert cache.key(fam) != before
    monkeypatch.undo()
    assert cache.key(fam) == before


def test_version_bump_misses_the_old_entry(private_cache, fam, monkeypatch):
    derive(fam)
    _forget()
    monkeypatch.setattr(sp, "__version__", "0.0.1")
    d = derive(fam)
    assert d.from_cache is False
    assert len(_entries(private_cache)) == 2


def test_key_changes_with_the_derivation_code(fam, monkeypatch):
    before = cache.key(fam)
    monkeypatch.setattr(cache, "_code_hash", lambda: "0" * 64)
    assert cache.key(fam) != before


# -- clear -------------------------------------------------------------------------
def test_clear_removes_entries_and_counts_them(private_cache):
    derive(symfisher.family("exponential"))
    derive(symfisher.family("poisson"))
    assert len(_entries(private_cache)) == 2
    (private_cache / "notes.txt").write_text("not an entry")
    assert cache.clear() == 2
    assert _entries(private_cache) == []
    assert (private_cache / "notes.txt").exists()
    assert cache.clear() == 0


def test_clear_of_a_missing_folder_is_zero(private_cache):
    assert not private_cache.exists()
    assert cache.clear() == 0


def test_after_clear_derive_rebuilds(fam):
    derive(fam)
    cache.clear()
    _forget()
    assert derive(fam).from_cache is False


# -- an unwritable cache -----------------------------------------------------------
@pytest.fixture
def unwritable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("I am not a folder")
    d = blocker / "cache"
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(d))
    return d


def test_unwritable_cache_warns_and_still_derives(unwritable, fam):
    assert cache.cache_dir() == unwritable
    with pytest.warns(UserWarning, match="cannot write cache entry"):
        d = derive(fam)
    assert d.from_cache is False
    assert d.fisher == sp.Matrix([[d.family.params[0] ** -2]])
    assert not unwritable.exists()


def test_unwritable_cache_store_load_clear(unwritable, fam):
    with pytest.warns(UserWarning, match="cannot write"):
        assert cache.store(fam, {"a": 1}) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.load(fam) is None
        assert cache.clear() == 0


# -- honesty: a result cut short by the clock is not served to a call with more time ---
def _laplace_user():
    return symfisher.define_family(
        "mylaplace",
        "-log(2*b) - abs(x - mu)/b",
        params={"mu": "real", "b": "positive"},
        support="reals",
    )


LAPLACE_FISHER = sp.Matrix([[1, 0], [0, 1]]) / sp.Symbol("b", positive=True) ** 2


def _is_laplace_fisher(F):
    return F is not None and all(sp.simplify(e) == 0 for e in F - LAPLACE_FISHER)


def test_result_cut_short_is_not_served_to_a_call_with_more_time(
    private_cache, monkeypatch
):
    fam = _laplace_user()
    short = derive(fam, seconds=0.001)  # the budget is gone before the routes start
    assert short.by_clock > 0 and short.fisher is None
    assert _entries(private_cache)  # it is cached for calls with as little time
    _forget()
    assert derive(fam, seconds=0.001).from_cache
    # a user family's steps are timed by the clock: every limit x4, so that a
    # busy machine still finishes them
    monkeypatch.setenv("SYMFISHER_TIME_SCALE", "4")
    full = derive(fam)  # the default budget, from the memo and then the disk: neither
    assert not full.from_cache
    assert _is_laplace_fisher(full.fisher)
    _forget()
    assert derive(fam).fisher == full.fisher


def test_complete_result_serves_calls_with_less_time(private_cache, monkeypatch):
    fam = _laplace_user()
    full = derive(fam)
    _forget()
    _no_rebuild(monkeypatch)
    small = derive(fam, seconds=0.001)
    assert small.from_cache and small.fisher == full.fisher


def test_time_scale_counts_in_what_a_result_was_allowed(private_cache, monkeypatch):
    fam = _laplace_user()
    monkeypatch.setenv("SYMFISHER_TIME_SCALE", "0.25")
    scaled = derive(fam, seconds=0.004)  # 1 ms once scaled: cut short
    assert scaled.by_clock > 0 and scaled.budget == pytest.approx(0.001)
    _forget()
    assert derive(fam, seconds=0.004).from_cache
    monkeypatch.setenv("SYMFISHER_TIME_SCALE", "1")
    _forget()
    assert not derive(fam, seconds=0.004).from_cache  # 4 ms > 1 ms: recomputed


def test_entry_disagreeing_with_the_recorded_outcomes_is_recomputed(
    private_cache, fam, monkeypatch
):
    from symfisher import outcomes

    first = derive(fam)
    key, outcome = next(iter(first.steps.items()))
    flipped = {outcomes.DONE: outcomes.TIMEOUT, outcomes.TIMEOUT: outcomes.DONE}
    monkeypatch.setattr(outcomes, "_recorded", lambda: {key: flipped[outcome]})
    _forget()
    assert not derive(fam).from_cache
