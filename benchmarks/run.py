"""symfisher benchmarks: prints a table and writes JSON records.

Cases (names are stable, so runs can be compared):

* ``derive_catalog_cold``: what ``symfisher derive --all`` derives (every catalog
  family and policy) with an empty cache, in ``jobs`` = cores worker processes
  (:func:`symfisher.derive_many`; target < 20 s on a 2-core machine);
* ``derive_catalog_cached``: the same from the on-disk cache in a new process
  (target < 3 s).

Each derive case runs in its own subprocess so that no in-memory memo is shared;
per-family figures are each derivation's own seconds (in its worker).

Kernel cases (``benchmarks/kernels.py``, whose docstring describes them): the
speed of the generated JAX kernels against naive autodiff routes,
``fisher_diag_gaussian_d16`` (float32 and float64 records),
``fisher_categorical_k16``, ``fisher_categorical_k128``,
``fvp_categorical_k16``, ``fvp_categorical_k128``, ``fvp_categorical_k1024``,
``fisher_gamma``, ``fisher_beta``, ``fisher_von_mises``; and the process cases
``import_kernels_overhead`` and ``generate_catalog_cold``. The categorical cases
also time the strongest autodiff route (``alt_*`` fields, target ratio >= 1).

Roofline cases (``benchmarks/roofline.py``): a kernel against a fill that writes
an output of the same shape from the same inputs, ratio = fill / kernel,
``roofline_fisher_categorical_k16`` and ``roofline_fvp_categorical_k1024``
(target 0.67, within 1.5x of the memory limit) and
``roofline_fisher_diag_gaussian_d16`` (reported only).

Verifier cases (``benchmarks/verify_bench.py``): ``verify_all_default`` (what
``symfisher verify --all`` verifies, at default settings, cold and again warm on
one cache folder: targets < 60 s and < 30 s with every check able to detect a 2%
error) and ``verify_throughput`` (samples x checks per second and peak memory,
per family).

Natural-gradient cases (``benchmarks/natural_bench.py``): ``fvp_mlp_gaussian``,
``cg10_mlp_gaussian``, ``fvp_mlp_gaussian_vs_fwdrev``, ``fvp_mlp_categorical``:
``symfisher.natural.policy_fvp`` (J^T F_out J v) against TRPO's double backprop
and forward-over-reverse FVPs of MLP policies on 2048 states.

K-FAC cases (``benchmarks/kfac_bench.py``): ``kfac_natgrad_mlp_gaussian``,
``kfac_natgrad_mlp_categorical`` (one ``symfisher.natural.kfac`` natural-gradient
application against 10 CG iterations on TRPO's FVP, with each side's cosine with
the exact solution), ``pcg_mlp_gaussian``, ``pcg_mlp_categorical`` (K-FAC
preconditioned CG against plain CG to a relative residual of 1e-3).

Policy-kernel case (``benchmarks/policy_bench.py``): ``fvp_linear_softmax_1024x18``,
the linear_softmax ``fvp`` (K = 18, d = 1024, B = 256) against double backprop
of the mean KL.

Exact natural-gradient cases (``benchmarks/natgrad_bench.py``):
``natgrad_categorical_k16``, ``natgrad_categorical_k128``,
``natgrad_categorical_k1024``, ``natgrad_diag_gaussian_d16``,
``natgrad_linear_gaussian``: the generated ``natural_gradient`` against 10
conjugate-gradient iterations on the double-backprop FVP (TRPO's solve), with
both sides' residuals.

Usage: ``python benchmarks/run.py [--only CASE ...] [--json FILE]``; the exit
status is 1 when a case failed (e.g. naive and kernel outputs disagree), not
when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# LAPACK (the eigh and Cholesky factorisations of natural_gradient and K-FAC)
# runs in scipy's OpenBLAS; its worker threads spin-wait for each other next to
# XLA's own thread pool, which on a small shared machine made a 65 x 65 eigh take
# ~8 ms instead of ~0.4 ms (2 cores, load ~5). XLA's matrix products do not use
# OpenBLAS, so this only removes that oversubscription; an explicit setting wins.
# Set before numpy/scipy load; recorded as ``openblas_threads`` in every record.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import symfisher as sf
from symfisher.pool import Subject, default_jobs
jobs = default_jobs()
subjects = [Subject(n) for n in sf.families()] + [Subject(n, True) for n in sf.policies()]
per = {}
t = time.perf_counter()
for s, d in zip(subjects, sf.derive_many(subjects, jobs=jobs), strict=True):
    per[s.name] = [d.seconds, d.from_cache]
print(json.dumps({"total_s": time.perf_counter() - t0, "jobs": jobs, "per_family": per}))
"""

TARGETS = {"derive_catalog_cold": 20.0, "derive_catalog_cached": 3.0}
DERIVE_CASES = tuple(TARGETS)


def machine() -> str:
    """Where the numbers were measured."""
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}"


def _run_child(cache_dir: str) -> dict:
    env = {**os.environ, "SYMFISHER_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_derive(only: set[str] | None) -> list[dict]:
    """Cold then cached derivation of the whole catalog.

    The cold run always precedes the cached one (it fills the cache), but is
    recorded only when selected.
    """
    wanted = [c for c in DERIVE_CASES if not only or c in only]
    if not wanted:
        return []
    records = []
    with tempfile.TemporaryDirectory(prefix="symfisher-bench-") as cache_dir:
        for case in DERIVE_CASES:
            if case not in wanted and case != "derive_catalog_cold":
                continue
            t = time.perf_counter()
            res = _run_child(cache_dir)
            wall = time.perf_counter() - t
            if case not in wanted:
                continue
            records.append(
                {
                    "case": case,
                    "seconds": round(res["total_s"], 3),
                    "process_wall_s": round(wall, 3),
                    "target": TARGETS[case],
                    "target_s": TARGETS[case],
                    "meets_target": res["total_s"] < TARGETS[case],
                    "jobs": res["jobs"],
                    "per_family_s": {
                        k: round(v[0], 3) for k, v in res["per_family"].items()
                    },
                    "machine": machine(),
                }
            )
    return records


def _slowest(per_family: dict[str, float]) -> str:
    slow = sorted(per_family.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k} {v:.1f}s" for k, v in slow)


def _yes_no(meets: bool | None) -> str:
    return "report" if meets is None else ("yes" if meets else "[bold red]NO[/]")


def process_table(records: list[dict], title: str):
    """Derive and process cases: seconds against a time limit."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("case", "seconds", "target", "meets target", "details"):
        t.add_column(col)
    for r in records:
        if "error" in r:
            t.add_row(r["case"], "-", "-", "[bold red]FAILED[/]", r["error"][:200])
            continue
        if r["case"] == "import_kernels_overhead":
            target = f"<= {r['target']:g} s, no sympy"
            details = (
                f"import jax alone {r['import_jax_s']:.2f}s; sympy imported: "
                f"{'YES' if r['sympy_imported'] else 'no'}; median of {r['runs']}"
            )
        else:
            target = f"< {r['target_s']:g} s"
            details = _slowest(r["per_family_s"])
            if "jobs" in r:
                details = f"{r['jobs']} jobs; slowest: {details}"
            if r.get("errors"):
                details += f"; errors: {', '.join(r['errors'])}"
            if "differs_from_checked_in" in r:
                n = len(r["differs_from_checked_in"])
                details += f"; {n} differ from generated/" + (
                    f" ({', '.join(r['differs_from_checked_in'])})" if n else ""
                )
        t.add_row(
            r["case"],
            f"{r['seconds']:.2f}",
            target,
            _yes_no(r["meets_target"]),
            details,
        )
    return t


def speed_table(records: list[dict], title: str):
    """Kernel speed cases: naive and kernel times, their ratio and the target."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case",
        "dtype",
        "batch",
        "naive ms",
        "kernel ms",
        "ratio",
        "target",
        "meets",
        "compile s naive/kernel",
        "max rel diff",
        "runs",
    ):
        t.add_column(col, justify="left" if col in ("case", "dtype") else "right")
    for r in records:
        target = "report" if r["target"] is None else f">= {r['target']:g}x"
        if "error" in r:
            t.add_row(
                r["case"], r["dtype"], str(r["batch"]), "-", "-", "-", target,
                "[bold red]FAILED[/]", r["error"][:60], "-", "-",
            )  # fmt: skip
            continue
        t.add_row(
            r["case"],
            r["dtype"],
            str(r["batch"]),
            f"{r['naive_s'] * 1e3:.3f}",
            f"{r['kernel_s'] * 1e3:.3f}",
            f"{r['ratio']:.2f}x",
            target,
            _yes_no(r["meets_target"]),
            f"{r['naive_compile_s']:.2f} / {r['kernel_compile_s']:.2f}",
            f"{r['max_rel_diff']:.1e}",
            str(r["repeats"]),
        )
    return t


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kernels as kernel_bench
    import kfac_bench
    import natgrad_bench
    import natural_bench
    import policy_bench
    import roofline
    import torch_bench
    import verify_bench

    known = (
        *DERIVE_CASES,
        *kernel_bench.CASES,
        *roofline.CASES,
        *verify_bench.CASES,
        *natural_bench.CASES,
        *kfac_bench.CASES,
        *policy_bench.CASES,
        *natgrad_bench.CASES,
        *torch_bench.CASES,
    )
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", metavar="CASE", help=", ".join(known))
    ap.add_argument("--json", default="benchmarks/results.json", metavar="FILE")
    args = ap.parse_args(argv)
    only = set(args.only) if args.only else None
    if only and only - set(known):
        ap.error(
            f"unknown case(s) {', '.join(sorted(only - set(known)))}; "
            f"known: {', '.join(known)}"
        )
    records = bench_derive(only)
    if not only or only & set(kernel_bench.CASES):
        records += kernel_bench.run(only)
    from rich.console import Console

    console = Console(width=180)
    where = kernel_bench.machine()
    if not only or only & set(roofline.CASES):
        records += roofline.run(only)
    if not only or only & set(verify_bench.CASES):
        records += verify_bench.run(only, where)
    if not only or only & set(natural_bench.CASES):
        records += natural_bench.run(only, where)
    if not only or only & set(kfac_bench.CASES):
        records += kfac_bench.run(only, where)
    if not only or only & set(policy_bench.CASES):
        records += policy_bench.run(only, where)
    if not only or only & set(natgrad_bench.CASES):
        records += natgrad_bench.run(only, where)
    if not only or only & set(torch_bench.CASES):
        torch_records = torch_bench.run(only, where)
        records += torch_records
        print(torch_bench.table(torch_records))
    verifier = [r for r in records if r["case"] in verify_bench.CASES]
    natural = [r for r in records if r["case"] in natural_bench.CASES]
    policy = [r for r in records if r["case"] in policy_bench.CASES]
    natgrad = [r for r in records if r["case"] in natgrad_bench.CASES]
    roof = [r for r in records if r["case"] in roofline.CASES]
    kfac = [r for r in records if r["case"] in kfac_bench.CASES]
    speed = [r for r in records if r["case"] in kernel_bench.SPEED_CASES]
    other = [
        r
        for r in records
        if r["case"] not in kernel_bench.SPEED_CASES
        and r["case"] not in verify_bench.CASES
        and r["case"] not in natural_bench.CASES
        and r["case"] not in policy_bench.CASES
        and r["case"] not in natgrad_bench.CASES
        and r["case"] not in roofline.CASES
        and r["case"] not in kfac_bench.CASES
        and not r["case"].startswith("torch_")
    ]
    if other:
        console.print(process_table(other, f"symfisher benchmarks ({where})"))
    if speed:
        title = (
            "kernel speed: naive / kernel, jitted, median of interleaved calls"
            f" ({where})"
        )
        console.print(speed_table(speed, title))
        for r in speed:
            if "alt_ratio" in r:
                goal = (
                    "information only"
                    if r.get("alt_target") is None
                    else f"target >= {r['alt_target']:g}x: "
                    + _yes_no(r["alt_meets_target"])
                )
                console.print(
                    f"  {r['case']} ({r['dtype']}), other naive route "
                    f"({r['alt_naive_route']}): {r['alt_naive_s'] * 1e3:.3f} ms, "
                    f"ratio {r['alt_ratio']:.2f}x ({goal})"
                )
    if roof:
        title = f"roofline: fill / kernel, float32, jitted, median ({where})"
        console.print(roofline.table(roof, title))
    if verifier:
        console.print(verify_bench.table(verifier, f"verifier ({where})"))
    if natural:
        title = f"natural gradient: naive FVP / policy_fvp, float32, jitted, median ({where})"
        console.print(natural_bench.table(natural, title))
    if kfac:
        title = f"K-FAC: CG on TRPO's FVP / K-FAC, float32, jitted, median ({where})"
        console.print(kfac_bench.table(kfac, title))
    if policy:
        title = f"policy kernels: double backprop / kernel fvp, float32, jitted, median ({where})"
        console.print(policy_bench.table(policy, title))
    if natgrad:
        title = (
            f"natural gradient: {natgrad_bench.CG_ITERS} CG iterations on the TRPO FVP / "
            f"natural_gradient, damping {natgrad_bench.DAMPING:g}, float32 ({where})"
        )
        console.print(natgrad_bench.table(natgrad, title))
    for r in records:
        r.setdefault("openblas_threads", os.environ["OPENBLAS_NUM_THREADS"])
    with open(args.json, "w") as fh:
        json.dump(records, fh, indent=2)
    print(f"wrote {args.json}")
    failed = [r["case"] for r in records if "error" in r]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
