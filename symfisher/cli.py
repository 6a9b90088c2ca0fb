"""The ``symfisher`` command line.

Exit codes: 0 success; 1 a finding (routes that differ, a failed check);
2 bad usage (unknown family, bad size keyword).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from symfisher.errors import HangError, SymfisherError
from symfisher.families.family_file import FAMILY_FILE_HELP, load_family_file

if TYPE_CHECKING:
    from symfisher.verify.report import Report


def _sizes(items: Sequence[str]) -> dict[str, int]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        value = value.strip()
        if not sep or not (value.isascii() and value.isdigit()):
            raise SymfisherError(f"--size expects KEY=INTEGER (e.g. K=5), got {item!r}")
        out[key.strip()] = int(value)
    return out


def _check_names(names: Sequence[str]) -> None:
    """Raise naming each unknown NAME, the nearest known one, and every family and policy."""
    import difflib

    from symfisher.families.catalog import families
    from symfisher.families.policies import policies

    known, pols = families(), policies()
    unknown = [n for n in names if n not in known and n not in pols]
    if not unknown:
        return
    hints = []
    for n in unknown:
        near = difflib.get_close_matches(n, known + pols, n=1)
        hints.append(f"{n!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise SymfisherError(
        f"unknown name {', '.join(hints)}; families: {', '.join(known)}; "
        f"policies: {', '.join(pols)}"
    )


def _console() -> Any:
    """A console as wide as the terminal; 200 columns into a pipe unless COLUMNS says."""
    from rich.console import Console

    wide = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(width=None if wide else 200)


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from symfisher.families.catalog import families, family, size_keywords
    from symfisher.families.policies import policies, policy

    t = Table(title="symfisher catalog: families")
    for col in ("family", "parameters", "sizes", "description"):
        t.add_column(col)
    for name in families():
        f = family(name)
        sizes = ", ".join(f"{k}={v}" for k, v in size_keywords(name).items())
        t.add_row(name, ", ".join(f.param_names), sizes, f.description)
    console = _console()
    console.print(t)
    pt = Table(title="symfisher catalog: state-conditioned policies")
    for col in ("policy", "theta", "states", "description"):
        pt.add_column(col)
    for name in policies():
        pol = policy(name)
        pt.add_row(
            name,
            f"{pol.theta_shape[0]}x{pol.theta_shape[1]}",
            pol.states.description,
            pol.description,
        )
    console.print(pt)
    return 0


def _cmd_derive(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from symfisher.families.catalog import families
    from symfisher.pool import Subject, check_jobs, derive_many
    from symfisher.publish import derivation_report as report

    console = _console()
    if args.all == bool(args.names):
        raise SymfisherError("give family names or --all (not both, not neither)")
    from symfisher.families.policies import policies

    jobs = check_jobs(args.jobs)
    pols = policies()
    _check_names(args.names)
    names = families() if args.all else [n for n in args.names if n not in pols]
    pol_names = pols if args.all else [n for n in args.names if n in pols]
    sizes = tuple(_sizes(args.size).items())
    subjects = [Subject(n, False, sizes) for n in names] + [
        Subject(n, True, () if args.all else sizes) for n in pol_names
    ]
    with Progress(console=Console(stderr=True), transient=True) as progress:
        what = f"deriving ({jobs} jobs)" if jobs > 1 else "deriving"
        task = progress.add_task(what, total=len(subjects))

        def done(name: str) -> None:
            progress.update(task, description=f"{what}: {name} done")
            progress.advance(task)

        results = derive_many(
            subjects, jobs=jobs, use_cache=not args.no_cache, on_done=done
        )
    out, pout = results[: len(names)], results[len(names) :]
    if args.json:
        print(report.to_json(out, pout))
    elif args.latex:
        print(
            "\n\n".join(
                [report.to_latex(d) for d in out]
                + [report.policy_to_latex(d) for d in pout]
            )
        )
    else:
        if out:
            console.print(report.table(out, width=console.width))
        if pout:
            console.print(report.policy_table(pout, width=console.width))
        total = sum(d.seconds for d in [*out, *pout] if not d.from_cache)
        console.print(
            f"derived {len(out)} families and {len(pout)} policies; "
            f"{total:.1f} s of fresh derivation"
        )
    differs = [
        d.family.name for d in out if "differs" in d.agreement.values() and d.regular
    ] + [d.policy.name for d in pout if "differs" in d.agreement.values()]
    if differs:
        print(f"routes differ for: {', '.join(differs)}", file=sys.stderr)
        return 1
    return 0


def _family_file_command(args: argparse.Namespace) -> str:
    """The command that regenerates the modules of a family file (paths as given)."""
    import shlex

    cmd = f"symfisher generate --family-file {shlex.quote(args.family_file)}"
    if args.backend != "jax":
        cmd += f" --backend {args.backend}"
    if args.out:
        cmd += f" --out {shlex.quote(args.out)}"
    if args.seconds is not None:
        cmd += f" --seconds {args.seconds:g}"
    return cmd


def _generate_family_file(args: argparse.Namespace) -> int:
    """``symfisher generate --family-file PATH [--out DIR] [--seconds S] [--check]``."""
    from pathlib import Path

    from symfisher.codegen import generate as gen
    from symfisher.derive.derivation import derive

    if args.names:
        raise SymfisherError("give family names or --family-file, not both")
    fams, ranges = load_family_file(args.family_file)
    out = Path(args.out) if args.out else Path(args.family_file).parent
    command = _family_file_command(args)
    texts = {}
    for fam in fams:
        d = derive(fam, seconds=args.seconds) if args.seconds else derive(fam)
        texts[f"{fam.name}.py"] = gen.module_text(
            d, command=command, ranges=ranges.get(fam.name), backend=args.backend
        )
    if args.check:
        stale = gen.check(texts, out)
        for s in stale:
            print(f"stale: {s.path} ({s.reason})", file=sys.stderr)
        if stale:
            print(
                f"{len(stale)} generated file(s) differ from the current code; "
                f"fix with: {command}",
                file=sys.stderr,
            )
            return 1
        print(f"{len(texts)} generated file(s) in {out} are up to date")
        return 0
    for fname, text in texts.items():
        gen.write_atomic(out / fname, text)
    print(f"generated {len(texts)} kernel module(s) into {out}: {', '.join(texts)}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    if args.family_file is not None:
        return _generate_family_file(args)

    from rich.console import Console
    from rich.progress import Progress

    from symfisher import outcomes
    from symfisher.codegen import generate as gen
    from symfisher.families.catalog import families, family
    from symfisher.families.policies import policies
    from symfisher.kernels import catalog_dir
    from symfisher.verify.cramer_rao.unbiased import symbolic_steps
    from symfisher.verify.moments import moment_forms

    known, pols = families(), policies()
    _check_names(args.names)
    names = [n for n in args.names if n in known] if args.names else known
    pol_names = [n for n in args.names if n in pols] if args.names else pols
    jax = args.backend == "jax"
    out = (
        Path(args.out)
        if args.out
        else (catalog_dir() if jax else catalog_dir() / args.backend)
    )
    start = time.perf_counter()
    texts: dict[str, str] = {}
    with (
        outcomes.tracing() as trace,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        task = progress.add_task("generating", total=len(names) + len(pol_names))
        for name in names:
            progress.update(task, description=f"generating {name}")
            texts[f"{name}.py"] = gen.module_text(name, backend=args.backend)
            if jax:  # the verifier's symbolic steps, for the book
                moment_forms(family(name))
                symbolic_steps(family(name))
            progress.advance(task)
        for name in pol_names:
            progress.update(task, description=f"generating {name}")
            texts[f"{name}.py"] = gen.policy_text(name, backend=args.backend)
            progress.advance(task)
        readme: tuple[Path, str, str] | None = None
        if not args.names and not jax:
            texts[gen.INIT_NAME] = gen.init_text(names + pol_names, args.backend)
        if (
            not args.names and jax
        ):  # the whole catalog: also CATALOG.md and the README table
            from symfisher.publish import catalog, record
            from symfisher.publish.catalog_doc import replace_readme_block

            texts[gen.INIT_NAME] = gen.init_text(names + pol_names)
            modules = {n: texts[f"{n}.py"] for n in names + pol_names}
            records = record.load(catalog.records_path())
            texts[catalog.CATALOG_NAME], table = catalog.catalog_texts(
                names, modules, records, pol_names
            )
            path = (
                catalog.readme_path()
                if out.resolve() == catalog_dir().resolve()
                else None
            )
            if path is not None:
                now = path.read_text(encoding="utf-8")
                try:
                    readme = (path, now, replace_readme_block(now, table))
                except ValueError as e:
                    raise SymfisherError(f"{path}: {e}") from e
    # the recorded outcomes of the time-limited steps, kept with a checkout's code
    book = None
    from symfisher.publish.catalog import readme_path

    if jax and out.resolve() == catalog_dir().resolve() and readme_path() is not None:
        book = gen.book_update(trace.steps, whole=not args.names)
    if trace.unrecorded() or trace.cut:
        print(
            f"note: the clock decided {len(trace.unrecorded())} time-limited "
            f"step(s) that {outcomes.BOOK.name} does not record"
            + (f" and the time budget cut {trace.cut} step(s)" if trace.cut else "")
            + "; `symfisher generate` records outcomes (on a quiet machine, or "
            f"with {outcomes.SCALE_ENV} > 1 on a busy one)",
            file=sys.stderr,
        )
    fix = (
        "symfisher generate"
        + ("" if jax else f" --backend {args.backend}")
        + (f" --out {args.out}" if args.out else "")
    )
    if args.check:
        stale = gen.check(texts, out)
        for extra in (readme, book):
            if extra is not None and extra[1] != extra[2]:
                stale.append(gen.differs(*extra))
        for s in stale:
            print(f"stale: {s.path} ({s.reason})", file=sys.stderr)
            if s.diff:
                print(textwrap.indent(s.diff, "    "), end="", file=sys.stderr)
        if stale:
            extra = [s.path for s in stale if s.reason == "extra"]
            print(
                f"{len(stale)} generated file(s) differ from the current code; "
                f"fix with: {fix}"
                + (f" (and delete {', '.join(map(str, extra))})" if extra else ""),
                file=sys.stderr,
            )
            return 1
        print(f"{len(texts)} generated file(s) in {out} are up to date")
        return 0
    for fname, text in texts.items():
        gen.write_atomic(out / fname, text)
    if readme is not None and readme[1] != readme[2]:
        gen.write_atomic(readme[0], readme[2])
        print(f"updated the catalog table in {readme[0]}")
    if book is not None and book[1] != book[2]:
        gen.write_atomic(book[0], book[2])
        print(f"updated the recorded outcomes in {book[0]}")
    seconds = time.perf_counter() - start
    print(
        f"generated {len(names) + len(pol_names)} kernel module(s) into {out} "
        f"in {seconds:.1f} s"
    )
    return 0


def _verify_all(
    args: argparse.Namespace, names: list[str], pol_names: list[str]
) -> Report:
    """One report over catalog families and state-conditioned policies."""
    from symfisher.verify.run import verify_all

    return verify_all(
        names,
        pol_names,
        jobs=args.jobs,
        samples=args.samples,
        seed=args.seed,
        points=args.points,
        alpha=args.alpha,
        cramer_rao=not args.no_cramer_rao,
        progress=True,
        jax_cache=False if args.no_jax_cache else None,
        processes=args.processes,
        coordinator=args.coordinator,
        process_id=args.process_id,
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    from symfisher.families.catalog import families

    if args.all == bool(args.names):
        raise SymfisherError("give family names or --all (not both, not neither)")
    from symfisher.families.policies import policies

    known, pols = families(), policies()
    _check_names(args.names)
    pol_names = pols if args.all else [n for n in args.names if n in pols]
    names = known if args.all else [n for n in args.names if n in known]
    if args.record:  # the kernels as verified, read before the run
        from symfisher.kernels import catalog_dir

        modules = {
            n: (catalog_dir() / f"{n}.py").read_text(encoding="utf-8")
            for n in names + pol_names
        }
    if args.process_id and (args.json or args.markdown or args.plots or args.record):
        raise SymfisherError(
            "--json, --markdown, --plots and --record are process 0's; "
            f"this is process {args.process_id}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _verify_all(args, names, pol_names)
    console = _console()
    if args.process_id:
        console.print(
            f"process {args.process_id} of {args.processes}: done; process 0 "
            f"prints the report ({'PASSED' if report.passed else 'FAILED'} so far)"
        )
        return 0 if report.passed else 1
    console.print(report.table(width=console.width))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(report.to_json(), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(report.to_markdown(), encoding="utf-8")
    if args.plots:
        report.plot(args.plots)
    if args.record:
        from symfisher.publish import record
        from symfisher.publish.catalog import records_path

        entries = record.entries(
            report, modules, samples=args.samples, cramer_rao=not args.no_cramer_rao
        )
        path = record.update(records_path(), entries)
        console.print(
            f"recorded {len(entries)} verdict(s) in {path}; "
            "run `symfisher generate` to update CATALOG.md"
        )
    verdict = "PASSED" if report.passed else "FAILED"
    console.print(
        f"{verdict}: {len(report.checks)} checks over {len(names) + len(pol_names)} families in "
        f"{report.seconds:.1f} s ({len(report.failures)} failed; family-wise "
        f"alpha = {args.alpha:g}, Holm)"
    )
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="symfisher",
        description="Derive, generate and verify the information geometry of "
        "parametric policy families.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    p.commands = sub.choices  # type: ignore[attr-defined]
    sub.add_parser(
        "list", help="the built-in catalog: families and policies"
    ).set_defaults(fn=_cmd_list)
    d = sub.add_parser("derive", help="derive score, Fisher (three routes), KL")
    d.add_argument(
        "names", nargs="*", metavar="NAME", help="catalog families or policies"
    )
    d.add_argument("--all", action="store_true", help="every catalog family")
    fmt = d.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="print LaTeX")
    fmt.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="KEY=N",
        help="size keyword of size-generic families, e.g. K=5",
    )
    d.add_argument("--no-cache", action="store_true", help="ignore the on-disk cache")
    d.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: the cores this process may use); "
        "results do not depend on N",
    )
    d.set_defaults(fn=_cmd_derive)
    g = sub.add_parser(
        "generate",
        help="write the JAX (generated/) or PyTorch (generated/torch/) kernel modules",
    )
    g.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="catalog families or policies (default: the whole catalog)",
    )
    g.add_argument("--out", metavar="DIR", help="folder (default: the catalog kernels)")
    g.add_argument(
        "--backend",
        choices=("jax", "torch"),
        default="jax",
        help="array library of the modules (default jax; torch writes "
        "generated/torch/ by default, printed from the same expressions)",
    )
    g.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the fix when a file is stale",
    )
    g.add_argument(
        "--family-file",
        metavar="PATH",
        help=FAMILY_FILE_HELP.replace("%", "%%")
        + " (default --out: the file's folder)",
    )
    g.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help="time limit of each symbolic route of a --family-file derivation",
    )
    g.epilog = (
        "Without NAME: every kernel module, __init__.py and CATALOG.md (with the "
        "verdicts in VERIFIED.json), and in a checkout the catalog table of "
        "README.md. With NAME: only those modules (CATALOG.md is left as it is). "
        "With --family-file PATH: the modules of the families PATH defines, in "
        "--out or PATH's folder; their header names the command that regenerates "
        "them. Quantities with no closed form get quadrature kernels (PROVENANCE "
        "in each module says which)."
    )
    g.set_defaults(fn=_cmd_generate)
    v = sub.add_parser("verify", help="Monte Carlo verification of the kernels")
    v.add_argument(
        "names", nargs="*", metavar="NAME", help="catalog families or policies"
    )
    v.add_argument("--all", action="store_true", help="every catalog family")
    v.add_argument("--json", metavar="FILE", help="write the JSON report")
    v.add_argument("--markdown", metavar="FILE", help="write the Markdown report")
    v.add_argument("--plots", metavar="DIR", help="write convergence plots (PNG)")
    v.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="draws per point (default: chosen to detect a 2%% error)",
    )
    v.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the parameter points and the draws (default 0)",
    )
    v.add_argument("--points", type=int, default=3, help="parameter points per family")
    v.add_argument(
        "--alpha", type=float, default=1e-3, help="family-wise false-alarm rate"
    )
    v.add_argument(
        "--no-cramer-rao", action="store_true", help="skip the Cramér–Rao simulations"
    )
    v.add_argument(
        "--record",
        action="store_true",
        help="store each family's verdict in generated/VERIFIED.json "
        "(read by `symfisher generate` for CATALOG.md)",
    )
    v.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: the cores this process may use); "
        "the report does not depend on N",
    )
    v.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="spread the families over N processes (jax.distributed); the same "
        "verdicts as one process. Alone: N local processes",
    )
    v.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="with --processes and --process-id: process 0's address, to run "
        "one process per host (README: verification on several hosts)",
    )
    v.add_argument(
        "--process-id",
        type=int,
        default=None,
        metavar="I",
        help="this process's index in [0, N) (process 0 prints the report)",
    )
    v.add_argument(
        "--no-jax-cache",
        action="store_true",
        help="do not keep compiled programs in the cache folder's jax/ "
        "(also SYMFISHER_JAX_CACHE=0)",
    )
    v.set_defaults(fn=_cmd_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``symfisher`` command."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the subcommand's usage, not the top level's
        parser.commands[args.command].error(
            f"unrecognized arguments: {' '.join(extra)}"
        )
    try:
        return args.fn(args)
    except (SymfisherError, HangError) as e:
        print(f"symfisher: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
