"""Verifier benchmarks: the whole-catalog run and Monte Carlo throughput per family.

Cases (each in fresh subprocesses, so memory high-water marks are per run):

* ``verify_all_default``: what ``symfisher verify --all`` verifies (every catalog
  family and policy) at default settings (sample size chosen per family to
  detect a 2% relative error at 90% power, Holm at family-wise alpha 1e-3,
  Cramér–Rao simulations included), twice on one fresh cache folder: cold (no
  compiled program kept yet; target < 60 s on the 2-core reference machine)
  and warm (JAX's persistent compilation cache filled by the cold run; target
  < 30 s), as ``symfisher verify --all`` runs it (:func:`symfisher.verify_all`:
  one worker process per core); ``verify_*_s`` leave the derivations out;
  records whether every family check reached the 2% power target (the
  policies' checks run at a fixed ``N_DEFAULT`` pairs and are reported apart),
  and the peak
  resident memory of the parent and of the largest worker;
* ``verify_throughput``: one record per family: ``symfisher.verify(name)``
  without the Cramér–Rao part; throughput = samples x stochastic checks / s
  (after compilation: a warm-up run with the same settings first), with the
  process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

CASES = ["verify_all_default", "verify_throughput"]

ALL = r"""
import json, resource, sys, time, warnings
t0 = time.perf_counter()
from symfisher.verify.run import verify_all
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    # what `symfisher verify --all` runs: derivations on every core, then the
    # families and policies in one worker process per core
    r = verify_all(progress=False)
from symfisher.families.policies import policies
pols = set(policies())
held = [c for c in r.checks if c.kind == "stochastic" and c.detectable is not None
        and not c.target_exempt]
det = [c.detectable for c in held if c.family not in pols]  # sized for 2%
det_pol = [c.detectable for c in held if c.family in pols]  # N_DEFAULT pairs
cr = [c.detectable for c in r.checks if c.target_exempt and c.detectable is not None]
print(json.dumps({
    "seconds": time.perf_counter() - t0,
    "verify_seconds": r.seconds,
    "passed": r.passed,
    "checks": len(r.checks),
    "failed": [f"{c.family}: {c.name} {c.entry}" for c in r.failures],
    "worst_detectable": max(det),
    "worst_detectable_policies": max(det_pol) if det_pol else None,
    "worst_detectable_cramer_rao": max(cr) if cr else None,
    "warnings": [str(x.message) for x in w],
    "max_rss_mb": hwm(),
    "max_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
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


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


#: seconds: ``verify --all`` with an empty cache folder, and run again
COLD_TARGET, WARM_TARGET = 60.0, 30.0


def run(only: set[str] | None, machine: str) -> list[dict]:
    """Records of the selected verifier cases."""
    records = []
    if not only or "verify_all_default" in only:
        with tempfile.TemporaryDirectory(prefix="symfisher-bench-") as cache_dir:
            env = {**os.environ, "SYMFISHER_CACHE_DIR": cache_dir}
            t = time.perf_counter()
            res = _child(ALL, env=env)  # cold: no compiled program kept yet
            wall = time.perf_counter() - t
            warm = _child(ALL, env=env)  # warm: JAX's cache in cache_dir/jax
        records.append(
            {
                "case": "verify_all_default",
                "seconds": round(res["seconds"], 2),
                "cold_s": round(res["seconds"], 2),
                "warm_s": round(warm["seconds"], 2),
                "verify_cold_s": round(res["verify_seconds"], 2),
                "verify_warm_s": round(warm["verify_seconds"], 2),
                "process_wall_s": round(wall, 2),
                "target_s": COLD_TARGET,
                "warm_target_s": WARM_TARGET,
                "meets_target": res["seconds"] < COLD_TARGET
                and warm["seconds"] < WARM_TARGET
                and res["worst_detectable"] <= 0.02,
                "same_verdicts_warm": res["failed"] == warm["failed"]
                and res["checks"] == warm["checks"],
                "passed": res["passed"],
                "checks": res["checks"],
                "failed": res["failed"],
                "worst_detectable": res["worst_detectable"],
                "worst_detectable_policies": res["worst_detectable_policies"],
                "worst_detectable_cramer_rao": res["worst_detectable_cramer_rao"],
                "warnings": res["warnings"],
                "max_rss_mb": round(res["max_rss_mb"], 1),
                "max_rss_workers_mb": round(res["max_rss_workers_mb"], 1),
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
                f"cold {r['cold_s']:.1f} s (< {r['target_s']:g}), warm "
                f"{r['warm_s']:.1f} s (< {r['warm_target_s']:g}) and detectable <= 2%: "
                f"{'yes' if r['meets_target'] else 'NO'}; worst detectable "
                f"{r['worst_detectable']:.2%} (policies at N_DEFAULT pairs: "
                f"{r['worst_detectable_policies'] or 0:.1%}; Cramér–Rao: "
                f"{r['worst_detectable_cramer_rao'] or 0:.0%}); "
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
