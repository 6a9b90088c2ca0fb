r"""``generated/VERIFIED.json``: the recorded verification verdict of each kernel.

Monte Carlo verification takes minutes, so ``symfisher generate`` does not run
it; ``symfisher verify NAME … --record`` stores its outcome per family, keyed
by the kernel it verified::

    {"schema": "symfisher.verified/1",
     "families": {name: {"kernel_sha256", "source_sha256", "passed", "checks",
                         "not_applicable", "failures", "worst_detectable",
                         "points", "seed", "samples", "n_samples", "alpha",
                         "cramer_rao"}}}

``kernel_sha256`` is :math:`\mathrm{SHA256}` of the module's code (every line
after the two header comments), ``source_sha256`` the header's hash of what it
was generated from. A record applies while ``kernel_sha256`` equals the current
kernel's: a change of the kernel's code forces re-verification, a new header
alone (an unrelated edit of ``derive/`` or ``codegen/``) does not. The file is
deterministic: sorted keys, indent 2, a trailing newline, the worst detectable
relative error rounded to 2 significant digits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symfisher.errors import SymfisherError
from symfisher.files import write_atomic

SCHEMA = "symfisher.verified/1"
FILE_NAME = "VERIFIED.json"
HEADER_LINES = 2
FIELDS = (
    "kernel_sha256",
    "source_sha256",
    "passed",
    "checks",
    "not_applicable",
    "failures",
    "worst_detectable",
    "points",
    "seed",
    "samples",
    "n_samples",
    "alpha",
    "cramer_rao",
)


class RecordError(SymfisherError):
    """``VERIFIED.json`` cannot be read, or a kernel module has no header."""


# -- kernel identity -------------------------------------------------------------
def source_sha256(module_text: str) -> str:
    """The ``# source-sha256: …`` value in a kernel module's header."""
    for line in module_text.splitlines()[:HEADER_LINES]:
        if line.startswith("# source-sha256: "):
            return line.split()[-1]
    raise RecordError(
        "kernel module has no '# source-sha256: ' line among its first "
        f"{HEADER_LINES} lines; regenerate it with `symfisher generate`"
    )


def kernel_sha256(module_text: str) -> str:
    """SHA-256 of a kernel module's code: its text after the header comments."""
    source_sha256(module_text)  # a kernel module, not any text
    body = module_text.split("\n", HEADER_LINES)[-1]
    return hashlib.sha256(body.encode()).hexdigest()


# -- records ---------------------------------------------------------------------
def round2(x: float | None) -> float | None:
    """``x`` rounded to 2 significant digits (``None`` stays ``None``)."""
    return None if x is None else float(f"{x:.2g}")


def samples_policy(samples: int | None, target_error: float, power: float) -> str:
    """How the Monte Carlo sample size was chosen, in words."""
    if samples is None:
        return (
            f"auto: a pilot run sizes n to detect a {target_error:.0%} relative "
            f"error with {power:.0%} power"
        )
    return f"fixed: {samples} draws per point"


def entries(
    report: Any,
    module_texts: Mapping[str, str],
    *,
    samples: int | None = None,
    cramer_rao: bool = True,
) -> dict[str, dict[str, Any]]:
    """Records of the families in a :class:`~symfisher.verify.report.Report`.

    Args:
      report: the verification report.
      module_texts: family name -> text of the kernel module that was verified.
      samples: the ``n_samples`` the run was asked for (``None``: automatic).
      cramer_rao: whether the Cramér–Rao simulations ran.
    """
    st = report.settings
    policy = samples_policy(samples, st.get("target_error", 0.02), st.get("power", 0.9))
    summary = report.summary()
    out = {}
    for fam, s in summary.items():
        if fam not in module_texts:
            raise RecordError(f"no kernel module text for family {fam!r}")
        text = module_texts[fam]
        failures = sorted(
            {c.name for c in report.checks if c.family == fam and c.failed}
        )
        out[fam] = {
            "kernel_sha256": kernel_sha256(text),
            "source_sha256": source_sha256(text),
            "passed": bool(s["passed"]),
            "checks": int(s["checks"]),
            "not_applicable": int(s["not_applicable"]),
            "failures": failures,
            "worst_detectable": round2(s["worst_detectable"]),
            "points": st.get("points"),
            "seed": st.get("seed"),
            "samples": policy,
            "n_samples": (st.get("n_samples") or {}).get(fam),
            "alpha": st.get("alpha"),
            "cramer_rao": bool(cramer_rao),
        }
    return out


def to_text(records: Mapping[str, Mapping[str, Any]]) -> str:
    """Deterministic JSON text of the records (sorted keys, indent 2, newline)."""
    doc = {"schema": SCHEMA, "families": dict(records)}
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records by family from ``path``; ``{}`` when the file does not exist.

    Raises:
      RecordError: naming the file and the fix when it is not a valid record.
    """
    path = Path(path)
    if not path.exists():
        return {}
    fix = "fix it or delete it and run `symfisher verify --all --record`"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: not valid JSON ({e}); {fix}") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise RecordError(f"{path}: schema must be {SCHEMA!r}; {fix}")
    fams = doc.get("families")
    if not isinstance(fams, dict):
        raise RecordError(f"{path}: 'families' must be an object; {fix}")
    for name, e in fams.items():
        missing = [f for f in FIELDS if not isinstance(e, dict) or f not in e]
        if missing:
            raise RecordError(f"{path}: record {name!r} lacks {missing}; {fix}")
    return fams


def update(path: str | Path, new: Mapping[str, Mapping[str, Any]]) -> Path:
    """Merge ``new`` records into the file at ``path`` (other families kept)."""
    path = Path(path)
    records = {**load(path), **new}
    write_atomic(path, to_text(dict(sorted(records.items()))))
    return path


# -- verdicts --------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What the catalog says about a family's verification.

    Attributes:
      status: "passed", "failed", "stale" (recorded for other kernel code),
        "absent" (never recorded) or "no kernels".
      text: one sentence for the family's section.
      short: a few words for tables.
      source_sha256: the current kernel module's header hash (``None``: no module).
    """

    status: str
    text: str
    short: str
    source_sha256: str | None


def percent(x: float) -> str:
    """A fraction as a percentage with 2 significant digits (``0.019`` -> ``1.9%``)."""
    return f"{float(f'{100 * x:.2g}'):g}%"


def verdict(
    name: str, module_text: str | None, records: Mapping[str, Mapping[str, Any]]
) -> Verdict:
    r"""The verdict on family ``name`` whose current kernel module is ``module_text``.

    ``passed`` / ``failed`` when the record's ``kernel_sha256`` equals the
    current module's, ``stale`` when it differs, ``absent`` without a record.
    """
    if module_text is None:
        return Verdict(
            "no kernels", "no kernels, nothing to verify", "no kernels", None
        )
    src = source_sha256(module_text)
    fix = f"run `symfisher verify {name} --record`"
    rec = records.get(name)
    if rec is None:
        return Verdict("absent", f"not verified — {fix}", "not verified", src)
    if rec["kernel_sha256"] != kernel_sha256(module_text):
        return Verdict(
            "stale", f"recorded for an older kernel — {fix}", "stale record", src
        )
    n = rec["checks"]
    na = rec["not_applicable"]
    parts = [f"{n} checks" + (f", {na} not applicable" if na else "")]
    if rec["worst_detectable"] is not None:
        parts.append(f"detects ≥ {percent(rec['worst_detectable'])} errors")
    if rec["passed"]:
        return Verdict("passed", f"passed ({'; '.join(parts)})", "passed", src)
    fails = rec["failures"]
    return Verdict(
        "failed",
        f"FAILED ({len(fails)} failing check kind(s) of {n} checks: "
        f"{', '.join(fails)}) — run `symfisher verify {name}` for details",
        "FAILED",
        src,
    )
