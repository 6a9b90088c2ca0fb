"""Verifier benchmarks: the whole-catalog run and Monte Carlo throughput per family.

Cases (each in fresh subprocesses, so memory high-water marks are per run):

* ``verify_all_default``: ``symfisher verify --all`` at default settings (sample
  size chosen per family to detect a 2% relative error at 90% power, Holm at
  family-wise alpha 1e-3, Cramér–Rao simulations included); target < 120 s on the
  2-core reference machine; records whether every check reached the 2% power
  target and the peak resident memory;
* ``verify_throughput``: one record per family: ``symfisher.verify(name)``
  without the Cramér–Rao part; throughput = samples x stochastic checks / s
  (after compilation: a warm-up run with the same settings first), with the
  process's peak resident memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

CASES = ["verify_all_default", "verify_throughput"]

ALL = r"""
import json, resource, sys, time, warnings
t0 = time.perf_counter()
from symfisher.families.catalog import families
from symfisher.verify.run import verify_many
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    r = verify_many(families(), progress=False)
det = [c.detectable for c in r.checks if c.kind == "stochastic" and c.detectable is not None
       and not getattr(c, "_no_target", False)]
cr = [c.detectable for c in r.checks if getattr(c, "_no_target", False) and c.detectable is not None]
print(json.dumps({
    "seconds": time.perf_counter() - t0,
    "verify_seconds": r.seconds,
    "passed": r.passed,
    "checks": len(r.checks),
    "failed": [f"{c.family}: {c.name} {c.entry}" for c in r.failures],
    "worst_detectable": max(det),
    "worst_detectable_cramer_rao": max(cr) if cr else None,
    "warnings": [str(x.message) for x in w],
    "max_rss_mb": hwm(),
}))
"""

ONE = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from symfisher.verify.run import verify
name = sys.argv[1]
verify(name, cramer_rao=False, progress=False)  # compile and size
t = time.perf_counter()
r = verify(name, cramer_rao=False, progress=False)
secs = time.perf_counter() - t
sto = [c for c in r.checks if c.kind == "stochastic"]
n = sum(r.settings["n_samples"].values()) * r.settings["points"]
print(json.dumps({
    "seconds": secs,
    "samples": n,
    "stochastic_checks": len(sto),
    "throughput": n * len(sto) / secs,
    "passed": r.passed,
    "max_rss_mb": hwm(),
}))
"""


# Peak resident memory of this process image: VmHWM (ru_maxrss would carry the
# parent's high-water mark across fork and exec).
HWM = r"""
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
ALL = HWM + ALL
ONE = HWM + ONE


def _child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(only: set[str] | None, machine: str) -> list[dict]:
    """Records of the selected verifier cases."""
    records = []
    if not only or "verify_all_default" in only:
        t = time.perf_counter()
        res = _child(ALL)
        records.append(
            {
                "case": "verify_all_default",
                "seconds": round(res["seconds"], 2),
                "process_wall_s": round(time.perf_counter() - t, 2),
                "target_s": 120.0,
                "meets_target": res["seconds"] < 120.0
                and res["worst_detectable"] <= 0.02,
                "passed": res["passed"],
                "checks": res["checks"],
                "failed": res["failed"],
                "worst_detectable": res["worst_detectable"],
                "worst_detectable_cramer_rao": res["worst_detectable_cramer_rao"],
                "warnings": res["warnings"],
                "max_rss_mb": round(res["max_rss_mb"], 1),
                "machine": machine,
            }
        )
    if not only or "verify_throughput" in only:
        from symfisher.families.catalog import families

        for name in families():
            res = _child(ONE, name)
            records.append(
                {
                    "case": "verify_throughput",
                    "family": name,
                    "seconds": round(res["seconds"], 3),
                    "samples": res["samples"],
                    "stochastic_checks": res["stochastic_checks"],
                    "throughput": res["throughput"],
                    "passed": res["passed"],
                    "max_rss_mb": round(res["max_rss_mb"], 1),
                    "machine": machine,
                }
            )
    return records


def table(records: list[dict], title: str):
    """A rich table of verifier records."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case",
        "family",
        "seconds",
        "samples",
        "checks",
        "samples x checks / s",
        "peak RSS MB",
        "notes",
    ):
        t.add_column(col)
    for r in records:
        if r["case"] == "verify_all_default":
            note = (
                f"target < {r['target_s']:g} s and detectable <= 2%: "
                f"{'yes' if r['meets_target'] else 'NO'}; worst detectable "
                f"{r['worst_detectable']:.2%} (Cramér–Rao: {r['worst_detectable_cramer_rao'] or 0:.0%}); "
                + ("passed" if r["passed"] else "FAILED " + "; ".join(r["failed"][:3]))
            )
            t.add_row(
                r["case"],
                "all",
                f"{r['seconds']:.1f}",
                "",
                str(r["checks"]),
                "",
                f"{r['max_rss_mb']:.0f}",
                note,
            )
        else:
            t.add_row(
                r["case"],
                r["family"],
                f"{r['seconds']:.2f}",
                f"{r['samples']:,}",
                str(r["stochastic_checks"]),
                f"{r['throughput']:.3g}",
                f"{r['max_rss_mb']:.0f}",
                "" if r["passed"] else "FAILED",
            )
    return t
