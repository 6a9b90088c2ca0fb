"""generated/CATALOG.md, the README catalog table and generated/VERIFIED.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symfisher import cli
from symfisher.codegen import generate as gen
from symfisher.derive.derivation import ROUTES, derive
from symfisher.families import catalog as catalog_mod
from symfisher.families import policies as policies_mod
from symfisher.latex import latex, tidy
from symfisher.publish import catalog as pub
from symfisher.publish import catalog_doc as cd
from symfisher.publish import record
from symfisher.verify.report import Report
from symfisher.verify.result import Check
from tests.conftest import CATALOG

ROOT = Path(__file__).resolve().parents[2]


def _section(name, records=None):
    d = derive(name)
    text = gen.module_text(d)
    v = record.verdict(name, text, records or {})
    return d, text, v, cd.family_section(d, v)


# -- one family's section -----------------------------------------------------------
@pytest.mark.parametrize("name", ["gamma", "bernoulli_logit", "categorical"])
def test_section_shows_the_derivations_own_fields(name):
    d, text, _, sec = _section(name)
    f = d.family
    assert sec.startswith(f"## {name}\n")
    rows = [line for line in sec.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(f.param_names)
    assert latex(tidy(f.log_density)) in sec
    assert latex(tidy(d.fisher)) in sec
    for r in ROUTES:
        assert d.provenance[r][0] in sec, r
    for (a, b), status in d.agreement.items():
        pair = f"{ROUTES.index(a) + 1} = {ROUTES.index(b) + 1}"
        assert f"| {pair} | {status} |" in sec
    assert d.kl_method in sec
    assert f"[{name}.py]({name}.py)" in sec
    assert record.source_sha256(text)[:12] in sec
    assert f"not verified — run `symfisher verify {name} --record`" in sec
    for _, text in f.constraints:
        assert text in sec


def test_section_domains_and_primed_kl_symbols():
    _, _, _, sec = _section("normal")
    assert "| `mu` | ℝ |" in sec and "| `sigma` | (0, ∞) |" in sec
    # KL in θ and θ′ with LaTeX names for the primed parameters
    assert r"\sigma'" in sec and "sigma'" not in sec.replace(r"\sigma'", "")
    # display math sits in fenced math blocks, one per formula
    assert sec.count("```math\n") == 4  # log p, F, KL, H
    assert "Entropy (exponential-family identity" in sec
    assert r"H(\theta) = " in sec


def test_entropy_column_states_each_familys_provenance():
    rows = {
        line.split("](#")[1].split(")")[0]: line
        for line in (ROOT / "generated" / "CATALOG.md").read_text().splitlines()
        if line.startswith("| [")
    }
    assert "| closed form (exp-family A − η·∇A) |" in rows["gamma"]
    assert "| closed form (finite sum) |" in rows["categorical_softmax"]
    assert "| closed form (integral) |" in rows["uniform"]
    for name in ("poisson", "student_t", "tanh_gaussian"):
        assert "| numeric (quadrature kernel) |" in rows[name], rows[name]


def test_non_regular_section_reports_the_routes_instead_of_a_fisher():
    d, _, _, sec = _section("uniform")
    assert not d.regular and d.fisher is None
    assert r"F(\theta) =" not in sec
    assert "**Non-regular:**" in sec
    assert d.regularity.removeprefix("non-regular: ").replace("*", r"\*") in sec
    for r in ROUTES:
        assert latex(tidy(d.routes[r])) in sec
    assert "| differs |" in sec


def test_kl_without_closed_form_is_said_plainly():
    """student_t: no closed-form KL; route 3 is the quadrature KL's Hessian, tested."""
    d, _, _, sec = _section("student_t")
    assert d.kl is None
    assert "KL divergence: no closed form" in sec
    assert "Hessian of the quadrature KL (numeric, 50 digits)" in sec
    assert "| 1 = 3 | tested |" in sec


# -- the whole document ---------------------------------------------------------------
NAMES = ["gamma", "uniform", "categorical_softmax", "normal"]


def _catalog(names, extra=()):
    ds = [derive(n) for n in names]
    vs = [
        record.verdict(n, gen.module_text(d), {})
        for n, d in zip(names, ds, strict=True)
    ]
    return cd.catalog_text(ds, vs, extra)


def test_catalog_text_is_deterministic_and_ordered():
    text = _catalog(NAMES)
    assert text == _catalog(NAMES)
    assert text.endswith("\n") and not text.endswith("\n\n")
    heads = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert heads == NAMES
    for n in NAMES:
        assert f"](#{n}) |" in text
    assert "State-conditioned policies" not in text


def test_catalog_text_is_the_same_under_another_hash_seed():
    """A fresh process (other PYTHONHASHSEED, same disk cache) renders the same bytes."""
    here = _catalog(NAMES)
    code = (
        "import sys\n"
        "from tests.publish.test_catalog_doc import _catalog, NAMES\n"
        "sys.stdout.write(_catalog(NAMES))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == here


def test_extra_sections_follow_under_state_conditioned_policies():
    extra = ["## linear_softmax\n\nA policy.\n", "## tabular_softmax\n\nAnother.\n"]
    text = _catalog(["gamma"], extra)
    head, tail = text.split("# State-conditioned policies\n")
    assert "## gamma" in head
    assert tail.index("## linear_softmax") < tail.index("## tabular_softmax")


def test_catalog_text_needs_one_verdict_per_derivation():
    with pytest.raises(ValueError, match="verdicts: need one per derivation"):
        cd.catalog_text([derive("gamma")], [])


def test_readme_block_replacement():
    text = f"intro\n{cd.README_START}\nold\n{cd.README_END}\nrest\n"
    new = cd.replace_readme_block(text, "| a |\n")
    assert new == f"intro\n{cd.README_START}\n| a |\n{cd.README_END}\nrest\n"
    with pytest.raises(ValueError, match="catalog-table:start"):
        cd.replace_readme_block("no markers", "x")


# -- generate: CATALOG.md in the stale check -------------------------------------------
def test_stale_check_catches_an_edited_or_missing_catalog(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(catalog_mod, "families", lambda: ["normal", "uniform"])
    monkeypatch.setattr(policies_mod, "policies", lambda: [])
    out = tmp_path / "kernels"
    assert cli.main(["generate", "--out", str(out)]) == 0
    path = out / "CATALOG.md"
    assert path.read_text(encoding="utf-8") == _catalog_for_records(
        ["normal", "uniform"]
    )
    assert cli.main(["generate", "--check", "--out", str(out)]) == 0
    path.write_text(path.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["generate", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"stale: {path} (differs)" in err
    assert f"fix with: symfisher generate --out {out}" in err
    path.unlink()
    assert cli.main(["generate", "--check", "--out", str(out)]) == 1
    assert f"stale: {path} (missing)" in capsys.readouterr().err


def _catalog_for_records(names):
    records = record.load(pub.records_path())
    modules = {n: gen.module_text(n) for n in names}
    return pub.catalog_texts(names, modules, records)[0]


def test_generating_a_subset_leaves_the_catalog_alone(tmp_path):
    out = tmp_path / "kernels"
    assert cli.main(["generate", "gamma", "--out", str(out)]) == 0
    assert not (out / "CATALOG.md").exists()


def test_readme_catalog_table_is_current():
    """The README table between the markers is what `symfisher generate` writes."""
    pols = policies_mod.policies()
    modules = {n: gen.module_text(n) for n in CATALOG}
    modules |= {n: gen.policy_text(n) for n in pols}
    records = record.load(pub.records_path())
    _, table = pub.catalog_texts(CATALOG, modules, records, pols)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = f"{cd.README_START}\n{table}{cd.README_END}"
    assert block in readme, (
        "README.md's catalog table is stale; fix with: symfisher generate"
    )
    for n in [*CATALOG, *pols]:
        assert f"(generated/CATALOG.md#{n})" in table


# -- VERIFIED.json ----------------------------------------------------------------------
def _module(body="PARAMS = ('mu',)\n", src="a" * 64):
    return f"# GENERATED by `symfisher generate x`. DO NOT EDIT.\n# source-sha256: {src}\n{body}"


def _report():
    checks = [
        Check("normal", "E[s] = 0", "(0,)", detectable=0.0123),
        Check("normal", "E[s s^T] = F", "(0, 0)", detectable=0.01912),
        Check("normal", "KL Hessian = F", kind="deterministic", detectable=None),
        Check("normal", "sampler", verdict="not applicable"),
        Check("gamma", "E[s] = 0", "(1,)", verdict="fail", detectable=0.05),
        Check("gamma", "-E[H] = F", "(0, 1)", verdict="error"),
        Check("gamma", "-E[H] = F", "(1, 1)", verdict="fail"),
        Check("gamma", "E[s s^T] = F", "(1, 1)"),
    ]
    settings = {"n_samples": {"normal": 4096, "gamma": 8192}, "seed": 3, "points": 2}
    settings |= {"alpha": 1e-3, "power": 0.9, "target_error": 0.02}
    return Report(checks, settings=settings)


def test_record_round_trip_and_verdicts(tmp_path):
    modules = {"normal": _module(), "gamma": _module("PARAMS = ('a', 'b')\n")}
    entries = record.entries(_report(), modules, samples=None, cramer_rao=False)
    path = record.update(tmp_path / "VERIFIED.json", entries)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    doc = json.loads(text)
    assert doc["schema"] == record.SCHEMA and doc["families"] == entries
    assert record.to_text(record.load(path)) == text  # deterministic
    orders = []
    json.loads(text, object_pairs_hook=lambda kv: orders.append([k for k, _ in kv]))
    assert orders and all(o == sorted(o) for o in orders)  # sorted keys

    n = entries["normal"]
    assert n["checks"] == 4 and n["not_applicable"] == 1 and n["failures"] == []
    assert n["worst_detectable"] == round(0.01912, 3)
    assert (n["seed"], n["points"], n["n_samples"], n["alpha"]) == (3, 2, 4096, 1e-3)
    assert n["samples"].startswith("auto") and n["cramer_rao"] is False
    assert n["source_sha256"] == "a" * 64

    records = record.load(path)
    v = record.verdict("normal", modules["normal"], records)
    assert v.status == "passed" and v.short == "passed"
    assert v.text == "passed (4 checks, 1 not applicable; detects ≥ 1.9% errors)"
    g = record.verdict("gamma", modules["gamma"], records)
    assert g.status == "failed"
    assert entries["gamma"]["failures"] == ["-E[H] = F", "E[s] = 0"]
    assert "-E[H] = F, E[s] = 0" in g.text

    # a new header alone keeps the verdict; new kernel code makes it stale
    v = record.verdict("normal", _module(src="b" * 64), records)
    assert v.status == "passed" and v.source_sha256 == "b" * 64
    stale = record.verdict("normal", _module("PARAMS = ('m',)\n"), records)
    assert stale.status == "stale"
    assert stale.text == (
        "recorded for an older kernel — run `symfisher verify normal --record`"
    )
    absent = record.verdict("poisson", _module(), records)
    assert absent.status == "absent" and absent.short == "not verified"

    # updating one family keeps the others
    again = record.entries(_report(), modules, samples=512)
    record.update(path, {"gamma": again["gamma"]})
    both = record.load(path)
    assert both["normal"] == entries["normal"]
    assert both["gamma"]["samples"] == "fixed: 512 draws per point"


def test_bad_record_files_are_named(tmp_path):
    path = tmp_path / "VERIFIED.json"
    assert record.load(path) == {}
    path.write_text("{", encoding="utf-8")
    with pytest.raises(record.RecordError, match="not valid JSON"):
        record.load(path)
    path.write_text('{"schema": "other", "families": {}}', encoding="utf-8")
    with pytest.raises(record.RecordError, match="schema must be"):
        record.load(path)
    doc = {"schema": record.SCHEMA, "families": {"normal": {"passed": True}}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(record.RecordError, match="'normal' lacks"):
        record.load(path)
    with pytest.raises(record.RecordError, match="source-sha256"):
        record.kernel_sha256("import jax\n")


def test_verify_record_cli_writes_the_family(tmp_path, monkeypatch, capsys):
    path = tmp_path / "VERIFIED.json"
    monkeypatch.setattr(pub, "records_path", lambda folder=None: path)
    argv = ["verify", "normal", "--points", "1", "--samples", "4096"]
    code = cli.main([*argv, "--no-cramer-rao", "--record"])
    assert code == 0, capsys.readouterr().err
    rec = record.load(path)["normal"]
    kernel = (ROOT / "generated" / "normal.py").read_text(encoding="utf-8")
    assert rec["kernel_sha256"] == record.kernel_sha256(kernel)
    assert rec["passed"] and rec["samples"] == "fixed: 4096 draws per point"


def test_every_catalog_kernel_has_a_passing_record_of_its_current_code():
    """Changing a kernel's code forces re-verification (`verify NAME --record`)."""
    records = record.load(pub.records_path())
    stale = []
    for name in [*CATALOG, *policies_mod.policies()]:
        text = (ROOT / "generated" / f"{name}.py").read_text(encoding="utf-8")
        rec = records.get(name)
        if rec is None or rec["kernel_sha256"] != record.kernel_sha256(text):
            stale.append(name)
        else:
            assert rec["passed"], f"{name}: recorded verification failed"
    assert not stale, (
        f"no verification record of the current kernels of {', '.join(stale)}; "
        f"fix with: symfisher verify {' '.join(stale)} --record && symfisher generate"
    )


def test_policy_section_renders_the_derivation():
    from symfisher.derive.policy_derivation import derive_policy

    d = derive_policy("linear_gaussian")
    v = record.verdict("linear_gaussian", gen.policy_text("linear_gaussian"), {})
    text = cd.policy_section(d, v)
    assert text.startswith("## linear_gaussian\n")
    assert latex(tidy(d.fisher)) in text
    assert latex(tidy(d.policy.log_density)) in text
    for r in d.routes.values():
        assert cd.cell(r.method) in text
    assert "not verified" in text  # no record given
    assert "E_s[F(s)]" in text and text == cd.policy_section(d, v)
