"""symfisher benchmarks: prints a table and writes JSON records.

Cases (names are stable, so runs can be compared):

* ``derive_catalog_cold``: derive every catalog family with an empty cache
  (target < 60 s on a 2-core machine);
* ``derive_catalog_cached``: the same from the on-disk cache in a new process
  (target < 3 s).

Each case runs in its own subprocess so that no in-memory memo is shared.
Usage: ``python benchmarks/run.py [--only CASE ...] [--json FILE]``.
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

CHILD = r"""
import json, time, sys
t0 = time.perf_counter()
import symfisher as sf
per = {}
for name in sf.families():
    t = time.perf_counter()
    d = sf.derive(name)
    per[name] = [time.perf_counter() - t, d.from_cache]
print(json.dumps({"total_s": time.perf_counter() - t0, "per_family": per}))
"""

TARGETS = {"derive_catalog_cold": 60.0, "derive_catalog_cached": 3.0}


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
    """Cold then cached derivation of the whole catalog."""
    records = []
    with tempfile.TemporaryDirectory(prefix="symfisher-bench-") as cache_dir:
        for case in ("derive_catalog_cold", "derive_catalog_cached"):
            if (
                only
                and case not in only
                and not (
                    case == "derive_catalog_cached"
                    and "derive_catalog_cold" not in only
                )
            ):
                continue
            t = time.perf_counter()
            res = _run_child(cache_dir)
            wall = time.perf_counter() - t
            records.append(
                {
                    "case": case,
                    "seconds": round(res["total_s"], 3),
                    "process_wall_s": round(wall, 3),
                    "target_s": TARGETS[case],
                    "meets_target": res["total_s"] < TARGETS[case],
                    "per_family_s": {
                        k: round(v[0], 3) for k, v in res["per_family"].items()
                    },
                    "machine": machine(),
                }
            )
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", metavar="CASE")
    ap.add_argument("--json", default="benchmarks/results.json", metavar="FILE")
    args = ap.parse_args(argv)
    only = set(args.only) if args.only else None
    records = bench_derive(only)
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"symfisher benchmarks ({machine()})")
    for col in ("case", "seconds", "target", "meets target", "slowest families"):
        t.add_column(col)
    for r in records:
        slow = sorted(r["per_family_s"].items(), key=lambda kv: -kv[1])[:3]
        t.add_row(
            r["case"],
            f"{r['seconds']:.2f}",
            f"< {r['target_s']:g} s",
            "yes" if r["meets_target"] else "NO",
            ", ".join(f"{k} {v:.1f}s" for k, v in slow),
        )
    Console(width=160).print(t)
    with open(args.json, "w") as fh:
        json.dump(records, fh, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
