r"""``verify``: Monte Carlo and deterministic checks of a family's kernels.

A family defined without a sampler gets the generic one of
:mod:`symfisher.families.generic_sampler` (exact categorical on finite supports,
inverse CDF with a stated u-error of 1e-10 otherwise); a report line at each
point names it and its measured error, and where none can be built the run
raises :class:`~symfisher.errors.FamilyError` saying to pass ``sampler=``.

At each of several seeded valid parameter points, with :math:`x_i \sim p_\theta`
drawn by the family's sampler and :math:`F` the kernels' ``fisher``:

=============================  =====================================================
check                          claim (per entry, z-test unless noted)
=============================  =====================================================
sampler                        :math:`\overline{x} = \mathbb E[x]`,
                               :math:`\overline{x^2} = \mathbb E[x^2]` (light tails)
E[s] = 0                       :math:`\overline{s_i} = 0`
E[s s^T] = F                   :math:`\overline{s_i s_j} = F_{ij}`
-E[H] = F                      :math:`-\overline{H_{ij}} = F_{ij}`
KL Hessian = F                 :math:`\nabla^2_{\theta'} \mathrm{KL}(\theta\|\theta')|_{\theta'=\theta} = F`
                               (deterministic, ``jax.hessian``)
MC KL = KL                     :math:`\overline{\log p_\theta - \log p_{\theta'}} = \mathrm{KL}`
MC entropy = H                 :math:`\overline{-\log p_\theta} = H(\theta)` (``entropy``
                               kernel; also for non-regular families)
KL ~ quadratic form            :math:`\mathrm{KL}(\theta, \theta+\epsilon\delta) /
                               (\tfrac12\epsilon^2 \delta^\top F \delta) \to 1` (deterministic)
Cramér–Rao                     see :mod:`symfisher.verify.cramer_rao`
=============================  =====================================================

Standard errors are sample standard deviations over :math:`\sqrt n`; the
products :math:`s_i s_j` and :math:`H_{ij}` have finite variance for every
catalog family (their scores have finite fourth moments), and second sample
moments are only tested for families with light tails (exponential families,
finite supports). A floor of :math:`64\,\varepsilon_{64}` times the entry's
scale stands for floating-point rounding when a quantity does not vary with
:math:`x`. Holm's procedure over every stochastic check of the run keeps the
family-wise false-alarm rate at ``alpha``; each check states the smallest
relative error it would detect with probability ``power``.

This module is the API (:func:`verify`, :func:`verify_many`) and the run's
orchestration: the pilot that picks the sample size, the progress bar, the
Cramér–Rao glue and Holm's decision. The checks live by what they hold:
:mod:`~symfisher.verify.resolve` (family and kernels),
:mod:`~symfisher.verify.points` (parameter points, kernel probe),
:mod:`~symfisher.verify.moments` (closed-form moments of the sampler check),
:mod:`~symfisher.verify.identities` (per-point identity checks, sampling,
traces), :mod:`~symfisher.verify.kl_checks`, :mod:`~symfisher.verify.z_checks`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from symfisher.errors import DomainError
from symfisher.families.family import Family
from symfisher.verify import stats
from symfisher.verify.identities import _generic_sampler_note, _verify_point
from symfisher.verify.kernel_access import Kernels
from symfisher.verify.kl_checks import KL_EPSILONS as KL_EPSILONS  # re-exported
from symfisher.verify.points import _named, _points
from symfisher.verify.report import Report, Trace
from symfisher.verify.resolve import resolve
from symfisher.verify.result import Check
from symfisher.verify.z_checks import EPS_FLOOR as EPS_FLOOR  # re-exported
from symfisher.verify.z_checks import _z_check as _z_check  # re-exported

KERNEL_FUNCTIONS = ("log_prob", "score", "hessian_log_prob", "fisher", "kl", "entropy")
PILOT = 2**16
MAX_SAMPLES = 2**23


def _resolve(family: Family | str, kernels: Any) -> tuple[Family, Any]:
    """The family, with a sampler, and its kernels: given, the catalog's, or generated."""
    r = resolve(family, kernels, generate=True, generic_sampler=True)
    return r.family, r.kernels


def verify(
    family: Family | str,
    kernels: Any = None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    points: int | Sequence[Any] = 3,
    alpha: float = stats.ALPHA,
    power: float = stats.POWER,
    target_error: float = 0.02,
    chunk: int = 2**15,
    cramer_rao: bool = True,
    cramer_rao_replicates: int = 400,
    devices: Sequence[Any] | None = None,
    progress: bool | None = None,
    processes: int | None = None,
    coordinator: str | None = None,
    process_id: int | None = None,
    jax_cache: bool | None = None,
) -> Report:
    r"""Verify one family's kernels; see the module docstring for the checks.

    Args:
      family: catalog name or :class:`~symfisher.Family`.
      kernels: module or mapping with ``log_prob``, ``score``,
        ``hessian_log_prob``, ``fisher``, ``kl`` and optionally ``entropy``
        (generated signatures; without ``entropy`` its check is not applicable);
        default the generated kernels (generated on the fly for user families).
      n_samples: Monte Carlo draws per point: fewer than ``chunk`` exactly (one
        chunk of that size), more rounded up to whole chunks (with a warning);
        too few for ``target_error`` warn with the error they can detect. The
        default picks it per family from a pilot run of ``PILOT`` draws: enough
        for every check to detect ``target_error`` at ``power`` (at most ``MAX_SAMPLES``).
      seed: seeds the points and every draw.
      points: number of random valid points, or the points themselves
        (mappings by parameter name, or arrays in parameter order).
      alpha: family-wise false-alarm rate (Holm) over the run's stochastic checks.
      power: power at which ``detectable`` errors are stated.
      target_error: warn when a check cannot detect this relative error.
      chunk: samples per jitted chunk (bounds memory).
      cramer_rao: also run the Cramér–Rao simulations (first point).
      cramer_rao_replicates: simulated data sets per sample size.
      devices: devices to shard Monte Carlo chunks over (default: all).
      progress: show a progress bar on stderr (default: when stderr is a terminal).
      processes: spread the families over this many processes with JAX's
        multi-process runtime (:mod:`symfisher.verify.distributed`); without
        ``process_id`` they are started on this machine.
      coordinator: ``HOST:PORT`` of process 0, when each process is started by
        hand (on several hosts), each with its own ``process_id``.
      process_id: this process's index, ``0 <= process_id < processes``.
      jax_cache: keep JAX's compiled programs in ``<cache folder>/jax``
        (:mod:`symfisher.verify.compile_cache`); default on unless
        ``SYMFISHER_JAX_CACHE=0``.
    """
    return verify_many([family], [kernels], **_settings(locals()))


def _settings(loc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in loc.items() if k not in ("family", "kernels")}


def verify_many(
    families: Sequence[Family | str],
    kernels: Sequence[Any] | None = None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    points: int | Sequence[Any] = 3,
    alpha: float = stats.ALPHA,
    power: float = stats.POWER,
    target_error: float = 0.02,
    chunk: int = 2**15,
    cramer_rao: bool = True,
    cramer_rao_replicates: int = 400,
    devices: Sequence[Any] | None = None,
    progress: bool | None = None,
    processes: int | None = None,
    coordinator: str | None = None,
    process_id: int | None = None,
    jax_cache: bool | None = None,
    jobs: int = 1,
) -> Report:
    """Verify several families in one run: one Holm correction over all of them.

    Settings as in :func:`verify`. With ``processes=N`` the families are spread
    over N processes (:mod:`symfisher.verify.distributed`) for the verdicts,
    p-values and Holm decisions of one process. With ``jobs=N`` they are
    verified by N local worker processes (:mod:`symfisher.verify.workers`),
    with the same result.
    """
    return _verify_many(**locals())[0]


def _verify_many(
    families: Sequence[Family | str],
    kernels: Sequence[Any] | None = None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    points: int | Sequence[Any] = 3,
    alpha: float = stats.ALPHA,
    power: float = stats.POWER,
    target_error: float = 0.02,
    chunk: int = 2**15,
    cramer_rao: bool = True,
    cramer_rao_replicates: int = 400,
    devices: Sequence[Any] | None = None,
    progress: bool | None = None,
    processes: int | None = None,
    coordinator: str | None = None,
    process_id: int | None = None,
    jax_cache: bool | None = None,
    jobs: int = 1,
    extra: Sequence[tuple[str, tuple[Any, ...]]] = (),
) -> tuple[Report, list[Any]]:
    """:func:`verify_many`, and the results of ``extra`` worker tasks run with it.

    ``extra`` holds :func:`symfisher.verify.workers.task` calls (policies) that
    share the worker processes of ``jobs > 1``; with one job they run here,
    after the families, and with ``processes`` in process 0 only.
    """
    if n_samples is not None and (
        not isinstance(n_samples, int | np.integer) or n_samples < 2
    ):
        raise DomainError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if not 0 < alpha < 1:
        raise DomainError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise DomainError(f"power must lie in (0, 1), got {power}")
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise DomainError(f"chunk must be a positive integer, got {chunk!r}")
    from symfisher.pool import check_jobs
    from symfisher.verify import compile_cache, distributed, workers

    jobs = check_jobs(jobs)
    share = distributed.check(processes, coordinator, process_id)
    if share is not None and jobs > 1:
        _jobs_or_processes(jobs, processes)
    in_workers = jobs > 1 and len(families) + len(extra) > 1
    if in_workers and kernels is not None and any(k is not None for k in kernels):
        raise DomainError(
            "jobs > 1 verifies generated kernels only: pass kernels=None "
            "(user families get theirs generated in each worker)"
        )
    if in_workers and devices is not None:
        raise DomainError(
            "devices and jobs > 1 do not combine: each worker uses its own devices"
        )
    if share is not None and share.local:
        settings = {k: v for k, v in locals().items() if k in _SHARED}
        report = distributed.launch(families, kernels, share.processes, settings)
        return report, [workers.task(kind, *args) for kind, args in extra]
    compile_cache.enable(jax_cache)
    if share is not None:
        distributed.initialize(share)
        if devices is None:
            devices = jax.local_devices()
    if n_samples is not None and n_samples < chunk:
        chunk = int(n_samples)  # honoured exactly: one chunk of that size
    elif n_samples is not None and n_samples % chunk:
        warnings.warn(
            f"n_samples={n_samples} rounded up to {-(-n_samples // chunk) * chunk} "
            f"(whole chunks of {chunk} draws)",
            stacklevel=3,
        )
    kernels = list(kernels) if kernels is not None else [None] * len(families)
    # float64 statistics whatever the caller's setting
    with jax.enable_x64(True):
        start = time.perf_counter()
        resolved = [_resolve(f, k) for f, k in zip(families, kernels, strict=True)]
        all_points = [
            _points(fam, points, seed, Kernels(k).ranges()) for fam, k in resolved
        ]
        mine = (
            list(range(len(resolved)))
            if share is None
            else distributed.assigned(len(resolved), share)
        )
        # generic samplers build their tables here, outside jit, so that a point
        # they cannot serve raises a FamilyError naming it before any sampling
        notes = {
            j: [_generic_sampler_note(resolved[j][0], th) for th in all_points[j]]
            for j in mine
        }
        m_est = sum(
            len(pts) * (2 * len(fam.variables) + fam.n_params * (fam.n_params + 2) + 4)
            for (fam, _), pts in zip(resolved, all_points, strict=True)
        )
        run = dict(
            n_samples=n_samples,
            seed=seed,
            chunk=chunk,
            devices=devices,
            target_error=target_error,
            m_est=m_est,
            alpha=alpha,
            power=power,
            cramer_rao=cramer_rao,
            cramer_rao_replicates=cramer_rao_replicates,
        )
        bar = _progress(progress)
        more: list[Any] = []
        if in_workers:
            parts, more = workers.run(
                families, all_points, notes, run, extra, jobs, jax_cache, bar
            )
        elif share is None:
            with bar:
                parts = {
                    j: _family(*resolved[j], all_points[j], notes[j], bar, **run)
                    for j in mine
                }
        else:
            parts = distributed.run_share(
                mine,
                lambda j: _family(*resolved[j], all_points[j], notes[j], bar, **run),
                bar,
            )
        checks: list[Check] = []
        traces: list[Trace] = []
        chosen: dict[str, int] = {}
        for j, (fam, _) in enumerate(resolved):
            c, t, n = parts[j]
            checks += c
            traces += t
            chosen[fam.name] = n
        _decide(checks, alpha, power, target_error)
        n_devices = len(devices) if devices is not None else len(jax.devices())
        settings = {
            "n_samples": chosen,
            "seed": seed,
            "points": points if isinstance(points, int) else len(points),
            "alpha": alpha,
            "power": power,
            "target_error": target_error,
            "chunk": int(chunk),
            "devices": n_devices,
        }
        report = Report(checks, traces, settings, time.perf_counter() - start)
    if not in_workers and not (share is not None and share.process_id):
        # after the families, here (with processes, in process 0 only)
        more = [workers.task(kind, *args) for kind, args in extra]
    return report, more


def verify_all(
    names: Sequence[str] | None = None,
    policies: Sequence[str] | None = None,
    *,
    jobs: int | None = None,
    samples: int | None = None,
    seed: int = 0,
    points: int = 3,
    alpha: float = stats.ALPHA,
    cramer_rao: bool = True,
    progress: bool | None = None,
    jax_cache: bool | None = None,
    processes: int | None = None,
    coordinator: str | None = None,
    process_id: int | None = None,
) -> Report:
    """What ``symfisher verify --all`` runs: catalog families, then policies, one report.

    The derivations come first, on every core (:func:`symfisher.derive_many`);
    the families share one Holm correction (:func:`verify_many`), and each
    policy keeps its own (:func:`~symfisher.verify.policy_checks.verify_policy`,
    ``samples`` state-action pairs per point, default ``N_DEFAULT``). Families
    and policies are verified by ``jobs`` worker processes (default: one per
    usable core; :mod:`symfisher.verify.workers`), with the report of one.

    Args:
      names: catalog families (default: all of them).
      policies: built-in policies (default: all of them).
      jobs: worker processes; 1 verifies in this process.
      samples: draws per point (default: chosen per family, as
        :func:`verify_many`; ``N_DEFAULT`` for policies).
      seed: seeds the points and every draw.
      points: parameter points per family and policy.
      alpha: family-wise false-alarm rate (Holm).
      cramer_rao: also run the families' Cramér–Rao simulations.
      progress: show a progress bar on stderr (default: when stderr is a terminal).
      jax_cache: keep JAX's compiled programs (as :func:`verify_many`).
      processes: spread the families over this many processes with
        ``jax.distributed`` instead of ``jobs`` workers (as :func:`verify_many`);
        the policies are process 0's.
      coordinator: ``HOST:PORT`` of process 0, each process started by hand.
      process_id: this process's index, ``0 <= process_id < processes``.
    """
    from symfisher.families.catalog import families as catalog
    from symfisher.families.policies import policies as builtin
    from symfisher.pool import Subject, check_jobs, derive_many
    from symfisher.verify.policy_checks import N_DEFAULT

    spread = (processes, coordinator, process_id) != (None, None, None)
    if spread and jobs not in (None, 1):
        _jobs_or_processes(jobs, processes)
    jobs = check_jobs(jobs)
    names = list(catalog() if names is None else names)
    pols = list(builtin() if policies is None else policies)
    if len(names) + len(pols) > 1:
        derive_many([*names, *(Subject(n, True) for n in pols)], jobs=jobs)
    start = time.perf_counter()
    pol_settings = dict(
        points=points, samples=samples or N_DEFAULT, seed=seed, alpha=alpha
    )
    extra = [("policy", (n, pol_settings)) for n in pols]
    if names:
        report, more = _verify_many(
            names,
            n_samples=samples,
            seed=seed,
            points=points,
            alpha=alpha,
            cramer_rao=cramer_rao,
            progress=progress,
            jax_cache=jax_cache,
            jobs=1 if spread else jobs,
            processes=processes,
            coordinator=coordinator,
            process_id=process_id,
            extra=extra,
        )
    else:
        from symfisher.verify import workers

        report = Report(checks=[], traces=[], settings={}, seconds=0.0)
        more = [] if process_id else [workers.task(k, *a) for k, a in extra]
    for r in more:
        report.checks += r.checks
    report.seconds = time.perf_counter() - start  # wall time, derivations aside
    return report


def _jobs_or_processes(jobs: Any, processes: Any) -> None:
    """Raise: local workers and ``jax.distributed`` processes are either-or."""
    raise DomainError(
        f"jobs={jobs} (local workers) and processes={processes} "
        "(jax.distributed) do not combine: give one of them"
    )


#: the settings a local multi-process run hands to its processes
_SHARED = (
    "n_samples",
    "seed",
    "points",
    "alpha",
    "power",
    "target_error",
    "chunk",
    "cramer_rao",
    "cramer_rao_replicates",
    "progress",
    "jax_cache",
)


def _family(
    fam: Family,
    kmod: Any,
    pts: Sequence[np.ndarray],
    notes: Sequence[Check | None],
    bar: Any,
    *,
    n_samples: int | None,
    seed: int,
    chunk: int,
    devices: Sequence[Any] | None,
    target_error: float,
    m_est: int,
    alpha: float,
    power: float,
    cramer_rao: bool,
    cramer_rao_replicates: int,
) -> tuple[list[Check], list[Trace], int]:
    """One family's checks, traces and samples per point (before Holm).

    Its draws depend on ``seed`` and the point's index only, not on the other
    families of the run, so any process can verify it.
    """
    checks: list[Check] = []
    traces: list[Trace] = []
    task = bar.add_task(f"verifying {fam.name}", total=len(pts))
    smooth = _smooth(fam)
    n_fam = n_samples
    if n_fam is None:  # pilot runs at every point, with keys not reused later
        pilot = []
        for i, theta in enumerate(pts):
            pkey = jax.random.fold_in(jax.random.key(seed + 2**20), i)
            pilot += _verify_point(
                fam, Kernels(kmod), theta, pkey, PILOT, chunk, devices, smooth
            )[0]
        n_fam = _enough(pilot, target_error, m_est, alpha, power, chunk)
    for i, theta in enumerate(pts):
        key = jax.random.fold_in(jax.random.key(seed), i)
        c, t = _verify_point(
            fam, Kernels(kmod), theta, key, n_fam, chunk, devices, smooth
        )
        for tr in t:
            tr.point_index = i
        note = notes[i]
        checks += ([note] if note is not None else []) + c
        traces += t
        if cramer_rao and i == 0:
            checks += _cramer_rao(fam, kmod, theta, key, cramer_rao_replicates, alpha)
        bar.advance(task)
    return checks, traces, int(-(-n_fam // chunk) * chunk)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def advance(self, *a: Any, **k: Any) -> None:
        return None


def _progress(show: bool | None) -> Any:
    import sys

    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return _NoBar()
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=True)


def _cramer_rao(
    fam: Family, kmod: Any, theta: np.ndarray, key: jax.Array, R: int, alpha: float
) -> list[Check]:
    from symfisher.verify.cramer_rao import cramer_rao_checks

    try:
        out = cramer_rao_checks(
            fam, kmod, theta, jax.random.fold_in(key, 1000), replicates=R, alpha=alpha
        )
    except Exception as e:  # a broken kernel must not crash the run
        out = [
            Check.error(
                fam.name,
                "Cramér–Rao simulation",
                _named(fam, theta),
                f"{type(e).__name__}: {e}",
            )
        ]
    for c in out:
        # R simulated data sets resolve tens of percent, not 2%: their detectable
        # error is reported, but they are not held to the Monte Carlo target
        c.target_exempt = True
    return out


def _smooth(fam: Family) -> bool:
    """False when a second derivative of the log-density has a Dirac mass (|x - mu|)."""
    import sympy as sp

    lp = fam.log_density
    for i, p in enumerate(fam.params):
        for q in fam.params[i:]:
            if sp.diff(lp, p, q).has(sp.DiracDelta, sp.Heaviside):
                return False
    return True


def _enough(
    pilot: list[Check], target: float, m: int, alpha: float, power: float, chunk: int
) -> int:
    """Samples for every pilot check to detect ``target`` (10% margin on the pilot's spread)."""
    rel = [
        c.se * np.sqrt(c.n) / abs(c.scale)
        for c in pilot
        if c.kind == "stochastic" and c.se and c.n and c.scale
    ]
    if not rel:
        return PILOT
    n = stats.samples_for(1.1 * max(rel), target, m, alpha, power)
    return int(min(max(n, PILOT), MAX_SAMPLES))


def _decide(checks: list[Check], alpha: float, power: float, target: float) -> None:
    """Holm (:func:`stats.decide`); warn when a check cannot detect ``target``."""
    weak = [
        c
        for c in stats.decide(checks, alpha, power)
        if c.detectable is not None and c.detectable > target and not c.target_exempt
    ]
    if weak:
        worst = max(weak, key=lambda c: c.detectable)
        warnings.warn(
            f"{len(weak)} check(s) cannot detect a {target:.0%} relative error at "
            f"{power:.0%} power; worst: {worst.family} {worst.name} {worst.entry} "
            f"detects {worst.detectable:.1%} with n = {worst.n}. Increase n_samples.",
            stacklevel=3,
        )
