"""Policy-kernel benchmark: the linear_softmax ``fvp`` against double backprop.

Case (float32; target = minimum ratio naive / kernel):

* ``fvp_linear_softmax_1024x18``: K = 18 actions, d = 1024 features (P = 18432),
  B = 256 states, uniform weights. Kernel: ``linear_softmax.fvp`` (u = V phi,
  Fv = sum_b w_b (p_b * (u_b - p_b . u_b)) phi_b^T). Naive: TRPO's double
  back-propagation of the mean KL, ``symfisher.natural.fvp_double_backprop``
  with ``kl(p, q) = linear_softmax.kl(p, q, states)``. Target 2x.

B = 256 is a usual TRPO/NPG minibatch for a linear policy, and large enough that
the three B x K x d contractions both routes need (logits, V phi and the final
sum over states) dominate the time rather than per-call dispatch; with much
smaller B the ratio mostly measures how many small XLA ops each route launches.
The record also counts the ``dot`` instructions of each compiled program: XLA
drops the first-order gradient's contraction from the double-backprop graph
(only its transpose is needed), so both routes can end with the same three
products, which bounds the ratio on a CPU where those products dominate.

Before timing, the outputs must agree normwise (max |a - b| / max |b|) to 1e-5
in float32 and 1e-12 in float64 (not timed). Both routes are ``jax.jit``-compiled
ahead of time (compile seconds recorded), warmed up, then called interleaved
(naive, kernel, ...) ``REPEATS`` times, each ended by ``block_until_ready``;
times are medians. The kernel module is ``generated/linear_softmax.py`` when it
is checked in, else the text of ``policy_module_text`` written to a temporary
folder (``kernel_source`` says which).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import jax
from records import run_cases  # benchmarks/records.py

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import symfisher as sf  # noqa: E402
from symfisher import natural  # noqa: E402
from symfisher.errors import FamilyError  # noqa: E402

CASES = ("fvp_linear_softmax_1024x18",)
TARGETS = {"fvp_linear_softmax_1024x18": 2.0}
ACTIONS, FEATURES, STATES = 18, 1024, 256
SEED = 20240612
REPEATS = 50
RTOL = {"float32": 1e-5, "float64": 1e-12}


def load_kernels(folder: str) -> tuple[ModuleType, str]:
    """The linear_softmax module: checked-in, else freshly written into ``folder``."""
    try:
        return sf.kernels("linear_softmax"), "generated/linear_softmax.py"
    except FamilyError:
        from symfisher.codegen.policy_module import policy_module_text

        path = Path(folder) / "linear_softmax.py"
        path.write_text(policy_module_text("linear_softmax", "0" * 64), "utf-8")
        return sf.kernels("linear_softmax", path=folder), "policy_module_text (temp)"


def problem(dtype: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(theta, states, v) in ``dtype``: the same numbers for both dtypes."""
    rng = np.random.default_rng(SEED)
    theta = rng.normal(size=(ACTIONS, FEATURES)) / np.sqrt(FEATURES)
    states = rng.normal(size=(STATES, FEATURES))
    v = rng.normal(size=(ACTIONS, FEATURES))
    return tuple(jnp.asarray(a, dtype) for a in (theta, states, v))


def routes(k: ModuleType) -> tuple[Callable, Callable]:
    """(naive(theta, states, v), kernel(theta, states, v))."""

    def naive(theta, states, v):
        return natural.fvp_double_backprop(lambda p, q: k.kl(p, q, states), theta, v)

    def kernel(theta, states, v):
        return k.fvp(theta, states, v)

    return naive, kernel


def rel_diff(a, b) -> float:
    """Normwise relative difference max |a - b| / max |b| (inf when not finite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max() / np.abs(b).max())


def compile_ahead(fn: Callable, args: tuple):
    """(compiled, seconds, number of dot instructions in the optimised program)."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - t
    text = compiled.as_text() or ""
    return compiled, seconds, text.count(" dot(")


def timed(fn: Callable, args: tuple) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def run_case(case: str, machine: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="symfisher-policy-bench-") as folder:
        k, source = load_kernels(folder)
        naive, kernel = routes(k)
        diffs = {}
        for dtype in ("float64", "float32"):
            args = problem(dtype)
            naive_c, naive_compile, naive_dots = compile_ahead(naive, args)
            kernel_c, kernel_compile, kernel_dots = compile_ahead(kernel, args)
            diffs[dtype] = rel_diff(kernel_c(*args), naive_c(*args))
            if not diffs[dtype] <= RTOL[dtype]:
                raise AssertionError(
                    f"{case} ({dtype}): fvp differs from double backprop by "
                    f"{diffs[dtype]:.3g} (normwise relative) > {RTOL[dtype]:g}"
                )
        # timing: float32 (the last loop iteration's compiled functions)
        for _ in range(3):
            timed(naive_c, args), timed(kernel_c, args)
        load = os.getloadavg()[0]
        t_naive, t_kernel = [], []
        for _ in range(REPEATS):
            t_naive.append(timed(naive_c, args))
            t_kernel.append(timed(kernel_c, args))
    naive_s, kernel_s = statistics.median(t_naive), statistics.median(t_kernel)
    ratio = naive_s / kernel_s
    return {
        "case": case,
        "dtype": "float32",
        "batch": STATES,
        "actions": ACTIONS,
        "features": FEATURES,
        "params": ACTIONS * FEATURES,
        "naive_s": naive_s,
        "kernel_s": kernel_s,
        "ratio": ratio,
        "target": TARGETS[case],
        "meets_target": bool(ratio >= TARGETS[case]),
        "naive_compile_s": naive_compile,
        "kernel_compile_s": kernel_compile,
        "naive_dots": naive_dots,
        "kernel_dots": kernel_dots,
        "max_rel_diff": diffs["float32"],
        "max_rel_diff_float64": diffs["float64"],
        "repeats": REPEATS,
        "naive_min_s": min(t_naive),
        "kernel_min_s": min(t_kernel),
        "loadavg_1m_before": load,
        "naive_route": "fvp_double_backprop: grad(grad(mean KL(stop_gradient(W), W')) . v)",
        "kernel_route": "linear_softmax.fvp: sum_b w_b (p_b * (V phi_b - p_b . V phi_b)) phi_b^T",
        "kernel_source": source,
        "machine": machine,
    }


def run(only: set[str] | None, machine: str) -> list[dict]:
    """Records of the selected cases (a failed case records its error)."""
    return run_cases(
        CASES, only, run_case, machine, dtype="float32", batch=STATES, target=TARGETS
    )


def table(records: list[dict], title: str):
    """A rich table: times, ratio against target, agreement, compile time, dots."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case", "batch", "naive ms", "kernel ms", "ratio", "target", "meets",
        "rel diff f32 / f64", "compile s naive/kernel", "dots naive/kernel", "runs",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in records:
        if "error" in r:
            t.add_row(r["case"], str(r["batch"]), "-", "-", "-", f">= {r['target']:g}x",
                      "[bold red]FAILED[/]", r["error"][:80], "-", "-", "-")  # fmt: skip
            continue
        t.add_row(
            r["case"],
            str(r["batch"]),
            f"{r['naive_s'] * 1e3:.3f}",
            f"{r['kernel_s'] * 1e3:.3f}",
            f"{r['ratio']:.2f}x",
            f">= {r['target']:g}x",
            "yes" if r["meets_target"] else "[bold red]NO[/]",
            f"{r['max_rel_diff']:.1e} / {r['max_rel_diff_float64']:.1e}",
            f"{r['naive_compile_s']:.2f} / {r['kernel_compile_s']:.2f}",
            f"{r['naive_dots']} / {r['kernel_dots']}",
            str(r["repeats"]),
        )
    return t
