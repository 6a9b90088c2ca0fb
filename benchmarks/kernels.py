"""Kernel-speed benchmarks of the generated JAX kernels (``symfisher.kernels``).

Each speed case times a naive autodiff route against the generated kernel, both
``jax.jit``-compiled ahead of time (compile time reported apart), on a batch of
4096 random valid parameter points from a seeded ``numpy`` Generator. Before any
timing the two outputs must agree (rtol 1e-4 in float32, 1e-10 in float64);
otherwise the case fails with :class:`Disagreement`. Timings are the median of
at least 20 interleaved calls (naive, kernel, naive, kernel, ...), each ended by
``block_until_ready``; ``ratio`` = naive time / kernel time.

Speed cases (float32 unless noted; target = minimum ratio):

* ``fisher_diag_gaussian_d16``: diagonal of ``vmap(jax.hessian(kl))`` in
  ``theta_q`` at ``theta_q = theta_p`` vs ``fisher_diag`` (d = 16, P = 32),
  target 8x; a second record with dtype float64, target 40x;
* ``fisher_categorical_k16``, ``fisher_categorical_k128``: ``vmap(jax.hessian(kl))``
  vs the dense ``fisher`` of ``categorical_softmax``, targets 15x and 3.5x;
* ``fvp_categorical_k16``, ``fvp_categorical_k128``, ``fvp_categorical_k1024``:
  the TRPO Fisher-vector product, ``grad_q(grad_q KL(p, q) . v)`` at ``q = p``
  on a KL written here from ``log_softmax``, vs ``fvp``; targets 3x, 3x, 1.5x;
* alternative routes (``alt_*`` fields): on ``fisher_diag_gaussian_d16`` the
  diagonal taken inside the jit (information only); on every categorical case
  the strongest autodiff route, target ``alt_ratio`` >= 1 (never slower than
  autodiff): ``vmap(jax.hessian)`` of a KL written from ``jax.nn.log_softmax``
  for ``fisher``, forward over reverse ``jax.jvp(jax.grad(KL), v)`` for ``fvp``;
* ``fisher_gamma``, ``fisher_beta``, ``fisher_von_mises``:
  ``vmap(jax.hessian(kl))`` vs ``fisher``, report only.

Process cases (each in fresh subprocesses):

* ``import_kernels_overhead``: ``import symfisher; symfisher.kernels("normal")``
  after ``import jax``, median of 7 runs, target <= 0.2 s and no SymPy import;
* ``generate_catalog_cold``: the source text of every catalog kernel module, in
  memory, with an empty ``SYMFISHER_CACHE_DIR``, target < 60 s.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import symfisher as sf  # noqa: E402

BATCH = 4096
SEED = 20240601
MIN_REPEATS = 20
#: Interleaved pairs per case, unless the naive side is slow (then fewer, >= 20).
REPEATS = 50
#: Seconds of timed calls a case may spend before falling back to MIN_REPEATS.
CASE_BUDGET_S = 6.0
RTOL = {"float32": 1e-4, "float64": 1e-10}


class Disagreement(AssertionError):
    """Naive and kernel outputs differ: the case is not timed."""


@dataclass(frozen=True)
class Case:
    """A naive route and a kernel computing the same array."""

    name: str
    dtype: str
    target: float | None
    naive: Callable
    kernel: Callable
    args: Callable[[np.random.Generator], tuple[np.ndarray, ...]]
    naive_route: str
    kernel_route: str
    #: Applied (outside the timing) to the naive output before comparing.
    compare_naive: Callable[[np.ndarray], np.ndarray] = lambda a: a
    #: A second naive route, timed alongside for information (``alt_*`` fields).
    alt_naive: Callable | None = None
    alt_naive_route: str | None = None
    #: Minimum ``alt_ratio`` (alt time / kernel time); None: information only.
    alt_target: float | None = None


# --------------------------------------------------------------------------
# where the numbers come from


@cache
def cpu_model() -> str:
    """CPU model name, from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def machine() -> str:
    """Host, CPU, cores, Python, JAX version and default backend/device."""
    dev = jax.devices()[0]
    return (
        f"{platform.node()} {platform.machine()} {cpu_model()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"jax {jax.__version__} (default backend {jax.default_backend()}, {dev!r})"
    )


# --------------------------------------------------------------------------
# naive routes


def hessian_of_kl(kl: Callable) -> Callable:
    """``theta -> vmap(jax.hessian(q -> kl(theta, q)))(theta)``: the Fisher at q = p."""

    def one(theta):
        return jax.hessian(lambda q: kl(theta, q))(theta)

    return jax.vmap(one)


def kl_logits(p_logits, q_logits):
    """KL(p || q) of two categoricals from their logits, via ``log_softmax``."""
    logp = jax.nn.log_softmax(p_logits, axis=-1)
    logq = jax.nn.log_softmax(q_logits, axis=-1)
    return jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)


def kl_hessian_logits(z):
    """``vmap(jax.hessian(q -> kl_logits(z, q)))(z)``: autodiff's Fisher of the softmax."""
    return hessian_of_kl(kl_logits)(z)


def jvp_grad_kl_logits(z, v):
    """Forward over reverse: ``jvp`` of ``q -> grad_q sum KL(p, q)`` at ``q = p = z``."""
    p = jax.lax.stop_gradient(z)

    def grad_kl(q):
        return jax.grad(lambda q: jnp.sum(kl_logits(p, q)))(q)

    return jax.jvp(grad_kl, (z,), (v,))[1]


def trpo_fvp(theta, v):
    """Double back-propagation: ``grad_q(grad_q KL(p, q) . v)`` at ``q = p = theta``."""
    p = jax.lax.stop_gradient(theta)

    def grad_kl(q):
        return jax.grad(lambda q: jnp.sum(kl_logits(p, q)))(q)

    def grad_kl_dot_v(q):
        return jnp.sum(grad_kl(q) * v)

    return jax.grad(grad_kl_dot_v)(theta)


# --------------------------------------------------------------------------
# random valid parameter points


def logits(k: int, dtype: str):
    def make(rng):
        return (rng.standard_normal((BATCH, k)).astype(dtype),)

    return make


def logits_and_vector(k: int, dtype: str):
    def make(rng):
        z = rng.standard_normal((BATCH, k)).astype(dtype)
        v = rng.standard_normal((BATCH, k)).astype(dtype)
        return z, v

    return make


def diag_gaussian_points(d: int, dtype: str):
    def make(rng):
        mu = rng.standard_normal((BATCH, d))
        omega = rng.uniform(-1.0, 1.0, (BATCH, d))  # log sigma
        return (np.concatenate([mu, omega], axis=-1).astype(dtype),)

    return make


def positive_pair(dtype: str):
    """Gamma (shape, rate) or Beta (a, b): each exp(U(-1, 1))."""

    def make(rng):
        return (np.exp(rng.uniform(-1.0, 1.0, (BATCH, 2))).astype(dtype),)

    return make


def von_mises_points(dtype: str):
    def make(rng):
        mu = rng.uniform(-np.pi, np.pi, BATCH)
        kappa = np.exp(rng.uniform(-1.0, 2.0, BATCH))
        return (np.stack([mu, kappa], axis=-1).astype(dtype),)

    return make


def diagonal(a: np.ndarray) -> np.ndarray:
    return np.diagonal(a, axis1=-2, axis2=-1)


def diagonal_of(fn: Callable) -> Callable:
    """``fn`` followed by the diagonal of its ``(..., P, P)`` result."""
    return lambda *args: jnp.diagonal(fn(*args), axis1=-2, axis2=-1)


def cases() -> list[Case]:
    """Every speed case, in table order."""
    gauss = sf.kernels("diag_gaussian")
    cat = sf.kernels("categorical_softmax")
    hess = "vmap(jax.hessian(k.kl)) at theta_q = theta_p"
    out = []
    for dtype, target in (("float32", 8.0), ("float64", 40.0)):
        out.append(
            Case(
                "fisher_diag_gaussian_d16",
                dtype,
                target,
                naive=hessian_of_kl(gauss.kl),
                kernel=gauss.fisher_diag,
                args=diag_gaussian_points(16, dtype),
                naive_route=hess + " (full 32x32 Hessian; its diagonal compared)",
                kernel_route="diag_gaussian.fisher_diag",
                compare_naive=diagonal,
                alt_naive=diagonal_of(hessian_of_kl(gauss.kl)),
                alt_naive_route="jnp.diagonal of the same Hessian inside the jit",
            )
        )
    for k, target in ((16, 15.0), (128, 3.5)):
        out.append(
            Case(
                f"fisher_categorical_k{k}",
                "float32",
                target,
                naive=hessian_of_kl(cat.kl),
                kernel=cat.fisher,
                args=logits(k, "float32"),
                naive_route=hess,
                kernel_route="categorical_softmax.fisher",
                alt_naive=kl_hessian_logits,
                alt_naive_route="vmap(jax.hessian(kl)) of a KL from jax.nn.log_softmax",
                alt_target=1.0,
            )
        )
    for k, target in ((16, 3.0), (128, 3.0), (1024, 1.5)):
        out.append(
            Case(
                f"fvp_categorical_k{k}",
                "float32",
                target,
                naive=trpo_fvp,
                kernel=cat.fvp,
                args=logits_and_vector(k, "float32"),
                naive_route="jax.grad(jax.grad(sum KL(stop_gradient(p), q)) . v), "
                "KL from log_softmax",
                kernel_route="categorical_softmax.fvp",
                alt_naive=jvp_grad_kl_logits,
                alt_naive_route="jax.jvp(jax.grad(sum KL(stop_gradient(p), q)), v), "
                "KL from log_softmax",
                alt_target=1.0,
            )
        )
    for name, points in (
        ("gamma", positive_pair("float32")),
        ("beta", positive_pair("float32")),
        ("von_mises", von_mises_points("float32")),
    ):
        k = sf.kernels(name)
        out.append(
            Case(
                f"fisher_{name}",
                "float32",
                None,
                naive=hessian_of_kl(k.kl),
                kernel=k.fisher,
                args=points,
                naive_route=hess,
                kernel_route=f"{name}.fisher",
            )
        )
    return out


SPEED_CASES = (
    "fisher_diag_gaussian_d16",
    "fisher_categorical_k16",
    "fisher_categorical_k128",
    "fvp_categorical_k16",
    "fvp_categorical_k128",
    "fvp_categorical_k1024",
    "fisher_gamma",
    "fisher_beta",
    "fisher_von_mises",
)
PROCESS_CASES = ("import_kernels_overhead", "generate_catalog_cold")
CASES = SPEED_CASES + PROCESS_CASES


# --------------------------------------------------------------------------
# timing


def compile_ahead(fn: Callable, args: tuple) -> tuple[Callable, float]:
    """``jax.jit(fn)`` lowered and compiled for ``args``, and the seconds it took."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def timed(fn: Callable, args: tuple) -> tuple[float, int, float]:
    """Wall seconds of one call, and the minor page faults and system seconds in it."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime


def differences(naive: np.ndarray, kernel: np.ndarray, rtol: float) -> dict:
    """Largest absolute and relative differences; raise if beyond ``rtol``.

    The relative difference is normwise per batch point: the largest absolute
    difference over a point's entries divided by the largest absolute entry of
    the kernel's output for that point. (Entrywise it would flag round-off in
    entries that are themselves cancellations, such as ``v_k - p.v`` in a
    Fisher-vector product, or structural zeros.)
    """
    if naive.shape != kernel.shape:
        raise Disagreement(f"shapes differ: naive {naive.shape}, kernel {kernel.shape}")
    a = naive.astype(np.float64).reshape(naive.shape[0], -1)
    b = kernel.astype(np.float64).reshape(kernel.shape[0], -1)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise Disagreement(
            f"non-finite values: naive {int((~np.isfinite(a)).sum())}, "
            f"kernel {int((~np.isfinite(b)).sum())}"
        )
    diff = np.abs(a - b).max(axis=1)
    scale = np.abs(b).max(axis=1)
    rel = diff / np.where(scale > 0, scale, 1.0)
    worst = int(np.argmax(rel))
    if rel[worst] > rtol:
        j = int(np.argmax(np.abs(a[worst] - b[worst])))
        raise Disagreement(
            f"relative difference {rel[worst]:.3g} > rtol {rtol:g} at batch point "
            f"{worst}, flat entry {j}: naive {a[worst, j]!r}, kernel {b[worst, j]!r}"
        )
    return {"max_abs_diff": float(diff.max()), "max_rel_diff": float(rel.max())}


def run_speed_case(case: Case, rng: np.random.Generator) -> dict:
    """Check agreement, then time naive and kernel interleaved."""
    args = tuple(jnp.asarray(a) for a in case.args(rng))
    assert all(a.dtype == np.dtype(case.dtype) for a in args), case
    naive, naive_compile = compile_ahead(case.naive, args)
    kernel, kernel_compile = compile_ahead(case.kernel, args)
    out_naive = np.asarray(jax.block_until_ready(naive(*args)))
    out_kernel = np.asarray(jax.block_until_ready(kernel(*args)))
    if out_kernel.dtype != np.dtype(case.dtype):
        raise Disagreement(f"kernel returned {out_kernel.dtype}, not {case.dtype}")
    diffs = differences(case.compare_naive(out_naive), out_kernel, RTOL[case.dtype])
    alt = None
    if case.alt_naive is not None:
        alt, alt_compile = compile_ahead(case.alt_naive, args)
        out_alt = np.asarray(jax.block_until_ready(alt(*args)))
        differences(out_alt, out_kernel, RTOL[case.dtype])
    # warm-up (caches, thread pools), then size the run from it
    per_pair = min(timed(naive, args)[0] + timed(kernel, args)[0] for _ in range(3))
    repeats = int(max(MIN_REPEATS, min(REPEATS, CASE_BUDGET_S // per_pair)))
    load = os.getloadavg()[0]
    t_naive, t_kernel, t_alt = [], [], []
    for _ in range(repeats):
        t_naive.append(timed(naive, args))
        t_kernel.append(timed(kernel, args))
        if alt is not None:
            t_alt.append(timed(alt, args))
    naive_s = statistics.median(t[0] for t in t_naive)
    kernel_s = statistics.median(t[0] for t in t_kernel)
    ratio = naive_s / kernel_s
    extra = {}
    if alt is not None:
        alt_s = statistics.median(t[0] for t in t_alt)
        extra = {
            "alt_naive_route": case.alt_naive_route,
            "alt_naive_s": alt_s,
            "alt_ratio": alt_s / kernel_s,
            "alt_target": case.alt_target,
            "alt_meets_target": None
            if case.alt_target is None
            else bool(alt_s / kernel_s >= case.alt_target),
            "alt_naive_compile_s": alt_compile,
            "alt_naive_page_faults_per_call": statistics.median(t[1] for t in t_alt),
        }
    return {
        "case": case.name,
        "dtype": case.dtype,
        "batch": BATCH,
        "naive_s": naive_s,
        "kernel_s": kernel_s,
        "ratio": ratio,
        "target": case.target,
        "meets_target": None if case.target is None else bool(ratio >= case.target),
        "naive_compile_s": naive_compile,
        "kernel_compile_s": kernel_compile,
        "repeats": repeats,
        "naive_min_s": min(t[0] for t in t_naive),
        "kernel_min_s": min(t[0] for t in t_kernel),
        **diffs,
        "shape": list(out_kernel.shape),
        # first-touch page faults of fresh output buffers, a cost of the OS
        "naive_page_faults_per_call": statistics.median(t[1] for t in t_naive),
        "kernel_page_faults_per_call": statistics.median(t[1] for t in t_kernel),
        "naive_sys_s_per_call": statistics.fmean(t[2] for t in t_naive),
        "kernel_sys_s_per_call": statistics.fmean(t[2] for t in t_kernel),
        "loadavg_1m_before": load,
        **extra,
        "naive_route": case.naive_route,
        "kernel_route": case.kernel_route,
        "machine": machine(),
    }


# --------------------------------------------------------------------------
# process cases


IMPORT_JAX = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
jax_s = time.perf_counter() - t0
"""

IMPORT_SYMFISHER = r"""
t1 = time.perf_counter()
import symfisher
symfisher.kernels("normal")
sf_s = time.perf_counter() - t1
"""

GENERATE_CATALOG = r"""
import json, sys, time
t0 = time.perf_counter()
import symfisher as sf
from symfisher.codegen.generate import module_text
per, texts, errors = {}, {}, {}
for name in sf.families():
    t = time.perf_counter()
    try:
        texts[name] = module_text(name)
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
    per[name] = time.perf_counter() - t
total = time.perf_counter() - t0
from symfisher.kernels import catalog_dir
folder = catalog_dir()
differs = sorted(
    n for n, text in texts.items()
    if not (folder / f"{n}.py").is_file() or (folder / f"{n}.py").read_text() != text
)
print(json.dumps({"total_s": total, "per_family": per, "errors": errors,
                  "differs_from_checked_in": differs}))
"""


def _child(code: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"child process failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_kernels_overhead(runs: int = 7) -> dict:
    """``import jax`` alone vs then ``import symfisher; kernels("normal")``."""
    only_jax = IMPORT_JAX + 'print(json.dumps({"jax_s": jax_s}))\n'
    with_sf = (
        IMPORT_JAX
        + IMPORT_SYMFISHER
        + 'print(json.dumps({"jax_s": jax_s, "sf_s": sf_s,'
        ' "sympy": "sympy" in sys.modules}))\n'
    )
    alone, jax_then, sf_part, sympy = [], [], [], []
    _child(with_sf)  # warm the file system cache / .pyc files
    for _ in range(runs):
        alone.append(_child(only_jax)["jax_s"])
        r = _child(with_sf)
        jax_then.append(r["jax_s"])
        sf_part.append(r["sf_s"])
        sympy.append(r["sympy"])
    overhead = statistics.median(sf_part)
    target = 0.2
    total = statistics.median([a + b for a, b in zip(jax_then, sf_part, strict=True)])
    return {
        "case": "import_kernels_overhead",
        "dtype": None,
        "batch": None,
        "naive_s": None,
        "kernel_s": None,
        "ratio": None,
        "max_abs_diff": None,
        "max_rel_diff": None,
        "seconds": overhead,
        "overhead_s": overhead,
        "import_jax_s": statistics.median(alone),
        "import_jax_then_symfisher_total_s": total,
        "overhead_by_difference_s": total - statistics.median(alone),
        "sympy_imported": any(sympy),
        "runs": runs,
        "target": target,
        "target_s": target,
        "meets_target": overhead <= target and not any(sympy),
        "machine": machine(),
    }


def generate_catalog_cold() -> dict:
    """Every catalog module's text from an empty derivation cache."""
    target = 60.0
    with tempfile.TemporaryDirectory(prefix="symfisher-bench-gen-") as cache_dir:
        t = time.perf_counter()
        res = _child(GENERATE_CATALOG, {"SYMFISHER_CACHE_DIR": cache_dir})
        wall = time.perf_counter() - t
    return {
        "case": "generate_catalog_cold",
        "dtype": None,
        "batch": None,
        "naive_s": None,
        "kernel_s": None,
        "ratio": None,
        "max_abs_diff": None,
        "max_rel_diff": None,
        "seconds": res["total_s"],
        "process_wall_s": wall,
        "target": target,
        "target_s": target,
        "meets_target": res["total_s"] < target and not res["errors"],
        "per_family_s": {k: round(v, 3) for k, v in res["per_family"].items()},
        "errors": res["errors"],
        "differs_from_checked_in": res["differs_from_checked_in"],
        "machine": machine(),
    }


# --------------------------------------------------------------------------


def run(only: set[str] | None = None) -> list[dict]:
    """Records of the selected speed cases, then of the process cases.

    A case whose outputs disagree (or that raises) gives a record with ``error``
    and ``meets_target`` False instead of timings.
    """
    records = []
    for case in cases():
        if only and case.name not in only:
            continue
        # the same points for both dtypes of a case
        rng = np.random.default_rng([SEED, SPEED_CASES.index(case.name)])
        try:
            records.append(run_speed_case(case, rng))
        except Exception as exc:
            records.append(failure(case.name, case.dtype, case.target, exc))
            print(f"FAILED {case.name} [{case.dtype}]: {exc}", file=sys.stderr)
    for name, fn in (
        ("import_kernels_overhead", import_kernels_overhead),
        ("generate_catalog_cold", generate_catalog_cold),
    ):
        if only and name not in only:
            continue
        try:
            records.append(fn())
        except Exception as exc:
            records.append(failure(name, None, None, exc))
            print(f"FAILED {name}: {exc}", file=sys.stderr)
    return records


def failure(name: str, dtype: str | None, target: float | None, exc: Exception) -> dict:
    return {
        "case": name,
        "dtype": dtype,
        "batch": BATCH if name in SPEED_CASES else None,
        "naive_s": None,
        "kernel_s": None,
        "ratio": None,
        "max_abs_diff": None,
        "max_rel_diff": None,
        "target": target,
        "meets_target": False,
        "error": f"{type(exc).__name__}: {exc}",
        "machine": machine(),
    }
