"""The ``symfisher`` command line (``symfisher.cli``)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

import symfisher
from symfisher import cli
from symfisher.derive import derivation

ROUTE_NAMES = ("score_covariance", "neg_expected_hessian", "kl_hessian")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own cache folder, an empty memo and a wide console."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SYMFISHER_CACHE_DIR", str(d))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(derivation, "_MEMORY", {})
    return d


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys, *argv):
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "symfisher.derive/1"
    return doc


# -- list ----------------------------------------------------------------------------
def test_list_prints_every_catalog_name(capsys):
    rc, out, _ = run(capsys, "list")
    assert rc == 0
    names = symfisher.families()
    assert len(names) > 5
    for name in names:
        assert name in out, name
    assert "K=3" in out  # the size column of categorical / categorical_softmax


def test_module_entry_point_lists_the_catalog(private_cache):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["SYMFISHER_CACHE_DIR"] = str(private_cache)
    proc = subprocess.run(
        [sys.executable, "-m", "symfisher.cli", "list"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for name in symfisher.families():
        assert name in proc.stdout, name


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


# -- derive: the table ---------------------------------------------------------------
def test_derive_table(capsys):
    rc, out, _ = run(capsys, "derive", "poisson")
    assert rc == 0
    assert "poisson" in out
    assert "[[1/lam]]" in out
    assert "P P P" in out  # all three route pairs proved equal
    assert "derived 1 families" in out


def test_derive_table_two_families(capsys):
    rc, out, _ = run(capsys, "derive", "poisson", "exponential")
    assert rc == 0
    assert "[[1/lam]]" in out
    assert "[[lam**(-2)]]" in out
    assert "derived 2 families" in out


def test_second_run_reads_the_disk_cache(capsys, private_cache):
    run(capsys, "derive", "poisson")
    assert len(list(private_cache.glob("poisson-*.pkl"))) == 1
    derivation._MEMORY.clear()
    rc, out, _ = run(capsys, "derive", "poisson")
    assert rc == 0
    assert "(cache)" in out
    assert "0.0 s of fresh derivation" in out


# -- derive: JSON --------------------------------------------------------------------
def test_derive_json(capsys):
    doc = run_json(capsys, "derive", "poisson")
    assert len(doc["families"]) == 1
    f = doc["families"][0]
    assert f["family"] == "poisson"
    assert f["params"] == ["lam"]
    assert f["regular"] is True
    assert f["regularity"] is None
    assert f["fisher"] == "[[1/lam]]"
    assert set(f["routes"]) == set(ROUTE_NAMES)
    for name in ROUTE_NAMES:
        r = f["routes"][name]
        assert r["matrix"] == "[[1/lam]]"
        assert r["method"]
        assert r["seconds"] >= 0
    assert f["agreement"] == {
        "score_covariance vs neg_expected_hessian": "proved",
        "score_covariance vs kl_hessian": "proved",
        "neg_expected_hessian vs kl_hessian": "proved",
    }
    assert f["mean_score"] == "proved"
    assert "lam" in f["kl"]
    assert f["from_cache"] is False


def test_json_reports_from_cache(capsys):
    run_json(capsys, "derive", "exponential")
    derivation._MEMORY.clear()
    doc = run_json(capsys, "derive", "exponential")
    assert doc["families"][0]["from_cache"] is True


def test_no_cache_flag_bypasses_the_cache(capsys, private_cache):
    doc = run_json(capsys, "derive", "exponential", "--no-cache")
    assert doc["families"][0]["from_cache"] is False
    assert list(private_cache.glob("*.pkl")) == []
    run_json(capsys, "derive", "exponential")  # fill the cache
    derivation._MEMORY.clear()
    doc = run_json(capsys, "derive", "exponential", "--no-cache")
    assert doc["families"][0]["from_cache"] is False


def test_json_keeps_the_order_of_the_names(capsys):
    doc = run_json(capsys, "derive", "exponential", "bernoulli", "poisson")
    assert [f["family"] for f in doc["families"]] == [
        "exponential",
        "bernoulli",
        "poisson",
    ]


def test_uniform_is_reported_non_regular(capsys):
    rc, out, _ = run(capsys, "derive", "uniform", "--json")
    assert rc == 0  # non-regular is a property, not a failed check
    f = json.loads(out)["families"][0]
    assert f["regular"] is False
    assert f["fisher"] is None
    assert "support" in f["regularity"]
    assert "theta" in f["regularity"]


def test_uniform_table_says_non_regular(capsys):
    rc, out, _ = run(capsys, "derive", "uniform")
    assert rc == 0
    assert "non-regular" in out


# -- derive: LaTeX -------------------------------------------------------------------
def test_derive_latex(capsys):
    rc, out, _ = run(capsys, "derive", "poisson", "--latex")
    assert rc == 0
    assert out.startswith("% poisson: parameters lam")
    # symfisher.latex writes the rate "lam" as \lambda (SymPy's printer would not)
    assert (
        r"F(\theta) = \left[\begin{matrix}\frac{1}{\lambda}\end{matrix}\right]" in out
    )
    assert r"s(\theta; x) = " in out
    assert r"\mathrm{KL}" in out
    for name in ROUTE_NAMES:
        assert f"% route {name}:" in out


def test_latex_and_json_are_exclusive(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["derive", "poisson", "--latex", "--json"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


# -- derive: sizes -------------------------------------------------------------------
def test_size_keyword_is_applied(capsys):
    # K=2 is cheap (K=4 takes ~20 s on a small machine); the default is K=3,
    # so the absence of z_2 shows the keyword took effect.
    doc = run_json(capsys, "derive", "categorical_softmax", "--size", "K=2")
    f = doc["families"][0]
    assert f["params"] == ["z_0", "z_1"]
    assert "z_1" in f["fisher"]
    assert "z_2" not in f["fisher"]


@pytest.mark.parametrize("bad", ["K=x", "K", "K=", "K=-3", "K=2.5"])
def test_bad_size_is_a_usage_error(capsys, bad):
    rc, out, err = run(capsys, "derive", "categorical_softmax", "--size", bad)
    assert rc == 2
    assert "KEY=INTEGER" in err
    assert repr(bad) in err
    assert out == ""


def test_unicode_digit_size_is_a_usage_error(capsys):
    rc, _, err = run(capsys, "derive", "categorical_softmax", "--size", "K=\u00b2")
    assert rc == 2
    assert "KEY=INTEGER" in err


def test_size_out_of_range_is_a_usage_error(capsys):
    rc, _, err = run(capsys, "derive", "categorical_softmax", "--size", "K=1")
    assert rc == 2
    assert "K" in err


def test_size_for_a_family_without_sizes_is_a_usage_error(capsys):
    rc, _, err = run(capsys, "derive", "poisson", "--size", "K=3")
    assert rc == 2
    assert "poisson" in err
    assert "no size keywords" in err


# -- derive: errors ------------------------------------------------------------------
def test_unknown_family_exits_2(capsys):
    rc, out, err = run(capsys, "derive", "nope")
    assert rc == 2
    assert "'nope'" in err
    assert err.startswith("symfisher: error:")
    assert out == ""


def test_unknown_family_among_good_ones_derives_nothing(capsys, private_cache):
    rc, _, err = run(capsys, "derive", "poisson", "nope")
    assert rc == 2
    assert "'nope'" in err
    assert list(private_cache.glob("*.pkl")) == []


def test_derive_needs_names_or_all(capsys):
    rc, out, err = run(capsys, "derive")
    assert rc == 2
    assert "--all" in err
    assert out == ""


def test_derive_names_and_all_together_is_an_error(capsys):
    rc, _, err = run(capsys, "derive", "poisson", "--all")
    assert rc == 2
    assert "not both" in err


def test_routes_that_differ_exit_1(capsys, monkeypatch):
    real = derivation.derive

    def differing(fam, **kw):
        d = real(fam, **kw)
        return dataclasses.replace(
            d, agreement={k: "differs" for k in d.agreement}, fisher=None
        )

    monkeypatch.setattr(derivation, "derive", differing)
    rc, out, err = run(capsys, "derive", "poisson", "--json")
    assert rc == 1
    assert "routes differ for: poisson" in err
    assert json.loads(out)["families"][0]["family"] == "poisson"


def test_derive_a_policy_prints_its_table(capsys):
    rc, out, err = run(capsys, "derive", "linear_gaussian")
    assert rc == 0, err
    assert "state-conditioned policies" in out and "linear_gaussian" in out
    assert "P P P" in out
    assert "derived 0 families and 1 policies" in out


def test_verify_a_policy_by_name(capsys):
    rc, out, err = run(
        capsys, "verify", "linear_gaussian", "--points", "1", "--samples", "4096"
    )
    assert rc == 0, err
    assert "linear_gaussian" in out and "PASSED" in out and "over 1 families" in out


def test_generate_a_policy_module(capsys, tmp_path):
    rc, _, err = run(capsys, "generate", "tabular_softmax", "--out", str(tmp_path))
    assert rc == 0, err
    text = (tmp_path / "tabular_softmax.py").read_text()
    assert text == (symfisher.kernels.catalog_dir() / "tabular_softmax.py").read_text()
    rc, _, err = run(capsys, "verify", "no_such_policy", "--points", "1")
    assert rc == 2 and "linear_softmax" in err


FAMILY_FILE = """
import symfisher as sf

family = sf.define_family(
    "rayleigh_file",
    params={"s": "positive"},
    log_density="log(x) - 2*log(s) - x**2/(2*s**2)",
    support="positive_reals",
)
"""


def _symfisher(cmd, cwd):
    """Run a `symfisher ...` command line (as a header names it) in ``cwd``."""
    import shlex

    argv = shlex.split(cmd)
    assert argv[0] == "symfisher"
    return subprocess.run(
        [sys.executable, "-m", "symfisher.cli", *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_generate_family_file_header_command_regenerates_the_same_bytes(tmp_path):
    (tmp_path / "my_family.py").write_text(FAMILY_FILE, encoding="utf-8")
    done = _symfisher(
        "symfisher generate --family-file my_family.py --out kernels", tmp_path
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "kernels" / "rayleigh_file.py"
    first = path.read_bytes()
    header = first.decode().splitlines()[0]
    assert header == (
        "# GENERATED by `symfisher generate --family-file my_family.py "
        "--out kernels`. DO NOT EDIT."
    )
    command = header.split("`")[1]
    path.unlink()
    again = _symfisher(command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert path.read_bytes() == first
    check = _symfisher(command + " --check", tmp_path)
    assert check.returncode == 0, check.stderr
    path.write_text(first.decode().replace("DO NOT EDIT", "edited"), encoding="utf-8")
    stale = _symfisher(command + " --check", tmp_path)
    assert stale.returncode == 1
    assert f"fix with: {command}" in stale.stderr
    assert "PROVENANCE = {" in first.decode()


def test_generate_family_file_defaults_to_the_files_folder(tmp_path, capsys):
    file = tmp_path / "fam.py"
    file.write_text(FAMILY_FILE, encoding="utf-8")
    rc, _, err = run(capsys, "generate", "--family-file", str(file))
    assert rc == 0, err
    text = (tmp_path / "rayleigh_file.py").read_text(encoding="utf-8")
    assert text.startswith(f"# GENERATED by `symfisher generate --family-file {file}`")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines neither of `family` and `families`"),
        ("family = 3\n", "holds int, not symfisher Family objects"),
        ("families = []\n", "holds an empty list"),
        ("raise RuntimeError('boom')\n", "running the family file raised RuntimeError"),
    ],
)
def test_bad_family_file_is_a_usage_error_naming_what_to_define(
    tmp_path, capsys, source, message
):
    file = tmp_path / "bad.py"
    file.write_text(source, encoding="utf-8")
    rc, _, err = run(capsys, "generate", "--family-file", str(file))
    assert rc == 2
    assert message in err
    assert "family = <a symfisher Family>" in err or "RuntimeError" in err


def test_missing_family_file_and_names_with_family_file(tmp_path, capsys):
    rc, _, err = run(capsys, "generate", "--family-file", str(tmp_path / "no.py"))
    assert rc == 2 and "not found" in err
    (tmp_path / "f.py").write_text(FAMILY_FILE, encoding="utf-8")
    rc, _, err = run(
        capsys, "generate", "normal", "--family-file", str(tmp_path / "f.py")
    )
    assert rc == 2 and "not both" in err


# -- rough edges a new user hit (issue 16) -----------------------------------------
def test_list_shows_the_policies_too(capsys):
    from symfisher.families.policies import policies

    rc, out, _ = run(capsys, "list")
    assert rc == 0
    for name in policies():
        assert name in out, name


def test_unknown_name_suggests_the_nearest_and_lists_families_and_policies(capsys):
    for cmd in ("derive", "verify", "generate"):
        rc, _, err = run(capsys, cmd, "gama")
        assert rc == 2
        assert "unknown name 'gama' (did you mean 'gamma'?)" in err, (cmd, err)
        assert "families: " in err and "policies: " in err and "linear_gaussian" in err


def test_a_bad_option_shows_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["derive", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: symfisher derive" in err and "unrecognized arguments: --bogus" in err


def test_every_argument_has_help():
    parser = cli.build_parser()
    for name, sub in parser.commands.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)


def test_derive_a_policy_as_json_and_latex(capsys):
    doc = run_json(capsys, "derive", "linear_gaussian")
    assert doc["families"] == []
    assert [p["policy"] for p in doc["policies"]] == ["linear_gaussian"]
    rc, out, _ = run(capsys, "derive", "linear_gaussian", "--latex")
    assert rc == 0
    assert r"\log \pi_\theta(a \mid s) = " in out and r"F(\theta) = " in out


# -- narrow terminals ---------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [("list",), ("derive", "normal", "beta", "uniform", "linear_gaussian")],
    ids=["list", "derive"],
)
def test_tables_fit_80_columns_on_a_narrow_terminal(capsys, monkeypatch, argv):
    monkeypatch.setenv("COLUMNS", "80")
    rc, out, _ = run(capsys, *argv)
    assert rc == 0
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    for name in argv[1:]:
        assert any(f" {name} " in ln for ln in lines), name  # names never cut


def test_a_wide_terminal_keeps_the_fisher_column(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    _, out, _ = run(capsys, "derive", "normal")
    assert "Fisher" in out and "routes" in out
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run(capsys, "derive", "normal")
    assert "Fisher" not in out.split("┃ family")[1].split("\n")[0]


def test_verify_table_fits_80_columns():
    from rich.console import Console

    from symfisher.verify.report import Report
    from symfisher.verify.result import Check

    r = Report(
        [
            Check("categorical_softmax", "E[s] = 0", verdict="pass"),
            Check("gamma", "Fisher", entry="[0, 1]", verdict="fail", message="x" * 200),
        ]
    )
    for width, fits in [(80, True), (160, False)]:
        c = Console(width=width, record=True)
        c.print(r.table(width=width))
        lines = c.export_text().splitlines()
        assert max(len(ln) for ln in lines) <= width
        assert any("categorical_softmax" in ln for ln in lines)
        assert any("xxxx" in ln for ln in lines) is not fits


def test_verify_several_derives_them_first_on_every_core(capsys, monkeypatch):
    """`verify A B` hands every derivation to derive_many before verifying."""
    from symfisher import pool

    asked = []
    real = pool.derive_many

    def spy(subjects, **kw):
        asked.append(
            [s if isinstance(s, str) else (s.name, s.policy) for s in subjects]
        )
        kw.pop("jobs", None)
        return real(subjects, jobs=1, **kw)

    monkeypatch.setattr(pool, "derive_many", spy)
    rc, out, err = run(
        capsys, "verify", "exponential", "linear_gaussian", "--points", "1",
        "--samples", "4096", "--no-cramer-rao",
    )  # fmt: skip
    assert rc == 0, err
    assert asked == [["exponential", ("linear_gaussian", True)]]
    assert "PASSED" in out and "over 2 families" in out
