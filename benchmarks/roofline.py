"""Roofline benchmarks: a generated kernel against a fill of its output's shape.

A kernel whose output is much larger than its input (the dense Fisher, B x K x K
from B x K logits) cannot beat the time it takes to write that output. The
*fill* is the cheapest program that writes an array of the same shape and dtype
from the same inputs, one add per element:

* Fisher cases, output ``(B, P, P)``: ``theta[..., :, None] + theta[..., None, :]``;
* FVP cases, output ``(B, P)``: ``theta + v``.

``ratio`` = fill time / kernel time (1 = at the memory limit). Both are
``jax.jit``-compiled ahead of time and called interleaved (fill, kernel, ...),
each call ended by ``block_until_ready``; times are medians, as in
``benchmarks/kernels.py`` (B = 4096, float32, the same seeded points).

Cases (target = minimum ratio; 0.67 is "within 1.5x of the memory limit"):

* ``roofline_fisher_categorical_k16``: ``categorical_softmax.fisher``, K = 16,
  target 0.67;
* ``roofline_fvp_categorical_k1024``: ``categorical_softmax.fvp``, K = 1024,
  target 0.67;
* ``roofline_fisher_diag_gaussian_d16``: ``diag_gaussian.fisher``, d = 16
  (P = 32), reported only: there the exponentials, not memory, set the time.

Each record also times, for information, a *plain* closed form of the same
output with no care for rounding (``plain_s``, ``plain_ratio`` = fill / plain):
for the softmax, ``diag(p) - p p^T`` from ``jax.nn.softmax``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import kernels as kb  # benchmarks/kernels.py: points, timing, machine
import numpy as np

import symfisher as sf

TARGET = 0.67
REPEATS = 50


@dataclass(frozen=True)
class RooflineCase:
    """A kernel, a fill of its output's shape, and a plain closed form."""

    name: str
    target: float | None
    kernel: Callable
    fill: Callable
    plain: Callable
    args: Callable[[np.random.Generator], tuple[np.ndarray, ...]]
    kernel_route: str
    fill_route: str
    plain_route: str


def outer_fill(theta: jax.Array) -> jax.Array:
    """``theta_i + theta_j``: one add per entry of a ``(..., P, P)`` output."""
    return theta[..., :, None] + theta[..., None, :]


def vector_fill(theta: jax.Array, v: jax.Array) -> jax.Array:
    """``theta + v``: one add per entry of a ``(..., P)`` output."""
    return theta + v


def softmax_fisher_plain(z: jax.Array) -> jax.Array:
    r""":math:`\operatorname{diag}(p) - p p^\top`, ``p = softmax(z)``, as written."""
    p = jax.nn.softmax(z, axis=-1)
    eye = jnp.eye(z.shape[-1], dtype=z.dtype)
    return eye * p[..., None, :] - p[..., :, None] * p[..., None, :]


def softmax_fvp_plain(z: jax.Array, v: jax.Array) -> jax.Array:
    r""":math:`p \odot (v - p^\top v)`, ``p = softmax(z)``."""
    p = jax.nn.softmax(z, axis=-1)
    return p * (v - jnp.sum(p * v, axis=-1, keepdims=True))


def diag_gaussian_fisher_plain(theta: jax.Array) -> jax.Array:
    r"""Block diagonal :math:`\operatorname{diag}(e^{-2\omega}, 2)` built with ``eye``."""
    d = theta.shape[-1] // 2
    diag = jnp.concatenate(
        [jnp.exp(-2.0 * theta[..., d:]), jnp.full_like(theta[..., d:], 2.0)], axis=-1
    )
    return jnp.eye(2 * d, dtype=theta.dtype) * diag[..., None, :]


def cases() -> list[RooflineCase]:
    """Every roofline case, in table order."""
    cat = sf.kernels("categorical_softmax")
    gauss = sf.kernels("diag_gaussian")
    return [
        RooflineCase(
            "roofline_fisher_categorical_k16",
            TARGET,
            kernel=cat.fisher,
            fill=outer_fill,
            plain=softmax_fisher_plain,
            args=kb.logits(16, "float32"),
            kernel_route="categorical_softmax.fisher",
            fill_route="z[..., :, None] + z[..., None, :]",
            plain_route="eye * p - p p^T, p = jax.nn.softmax(z)",
        ),
        RooflineCase(
            "roofline_fvp_categorical_k1024",
            TARGET,
            kernel=cat.fvp,
            fill=vector_fill,
            plain=softmax_fvp_plain,
            args=kb.logits_and_vector(1024, "float32"),
            kernel_route="categorical_softmax.fvp",
            fill_route="z + v",
            plain_route="p * (v - p.v), p = jax.nn.softmax(z)",
        ),
        RooflineCase(
            "roofline_fisher_diag_gaussian_d16",
            None,
            kernel=gauss.fisher,
            fill=outer_fill,
            plain=diag_gaussian_fisher_plain,
            args=kb.diag_gaussian_points(16, "float32"),
            kernel_route="diag_gaussian.fisher",
            fill_route="theta[..., :, None] + theta[..., None, :]",
            plain_route="eye * concat(exp(-2 omega), 2)",
        ),
    ]


CASES = (
    "roofline_fisher_categorical_k16",
    "roofline_fvp_categorical_k1024",
    "roofline_fisher_diag_gaussian_d16",
)


def run_case(case: RooflineCase, rng: np.random.Generator) -> dict:
    """Check shapes (and the plain form against the kernel), then time all three."""
    args = tuple(jnp.asarray(a) for a in case.args(rng))
    kernel, kernel_compile = kb.compile_ahead(case.kernel, args)
    fill, fill_compile = kb.compile_ahead(case.fill, args)
    plain, _ = kb.compile_ahead(case.plain, args)
    out_kernel = np.asarray(jax.block_until_ready(kernel(*args)))
    out_fill = np.asarray(jax.block_until_ready(fill(*args)))
    if (out_fill.shape, out_fill.dtype) != (out_kernel.shape, out_kernel.dtype):
        raise kb.Disagreement(
            f"fill {out_fill.shape} {out_fill.dtype} is not the kernel's "
            f"{out_kernel.shape} {out_kernel.dtype}"
        )
    dtype = str(out_kernel.dtype)
    plain_diffs = kb.differences(np.asarray(plain(*args)), out_kernel, kb.RTOL[dtype])
    for _ in range(3):  # warm-up
        for fn in (fill, kernel, plain):
            kb.timed(fn, args)
    load = os.getloadavg()[0]
    t_fill, t_kernel, t_plain = [], [], []
    for _ in range(REPEATS):
        t_fill.append(kb.timed(fill, args))
        t_kernel.append(kb.timed(kernel, args))
        t_plain.append(kb.timed(plain, args))
    fill_s = statistics.median(t[0] for t in t_fill)
    kernel_s = statistics.median(t[0] for t in t_kernel)
    plain_s = statistics.median(t[0] for t in t_plain)
    ratio = fill_s / kernel_s
    return {
        "case": case.name,
        "dtype": dtype,
        "batch": kb.BATCH,
        "shape": list(out_kernel.shape),
        "kernel_s": kernel_s,
        "fill_s": fill_s,
        "ratio": ratio,
        "target": case.target,
        "meets_target": None if case.target is None else bool(ratio >= case.target),
        "plain_s": plain_s,
        "plain_ratio": fill_s / plain_s,
        "plain_max_rel_diff": plain_diffs["max_rel_diff"],
        "kernel_compile_s": kernel_compile,
        "fill_compile_s": fill_compile,
        "repeats": REPEATS,
        "kernel_min_s": min(t[0] for t in t_kernel),
        "fill_min_s": min(t[0] for t in t_fill),
        "kernel_page_faults_per_call": statistics.median(t[1] for t in t_kernel),
        "fill_page_faults_per_call": statistics.median(t[1] for t in t_fill),
        "loadavg_1m_before": load,
        "kernel_route": case.kernel_route,
        "fill_route": case.fill_route,
        "plain_route": case.plain_route,
        "machine": kb.machine(),
    }


def run(only: set[str] | None = None) -> list[dict]:
    """Records of the selected cases; a failed case records its ``error``."""
    records = []
    for case in cases():
        if only and case.name not in only:
            continue
        rng = np.random.default_rng([kb.SEED, CASES.index(case.name)])
        try:
            records.append(run_case(case, rng))
        except Exception as exc:
            records.append(
                {"case": case.name, "dtype": "float32", "batch": kb.BATCH,
                 "target": case.target, "meets_target": False,
                 "error": f"{type(exc).__name__}: {exc}", "machine": kb.machine()}
            )  # fmt: skip
    return records


def table(records: list[dict], title: str):
    """Kernel and fill times, their ratio against the target, the plain form."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case", "shape", "fill ms", "kernel ms", "ratio", "target", "meets",
        "plain ms", "plain ratio", "runs",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in records:
        target = "report" if r["target"] is None else f">= {r['target']:g}"
        if "error" in r:
            t.add_row(r["case"], "-", "-", "-", "-", target, "[bold red]FAILED[/]",
                      r["error"][:60], "-", "-")  # fmt: skip
            continue
        meets = r["meets_target"]
        t.add_row(
            r["case"],
            "x".join(map(str, r["shape"])),
            f"{r['fill_s'] * 1e3:.3f}",
            f"{r['kernel_s'] * 1e3:.3f}",
            f"{r['ratio']:.2f}",
            target,
            "report" if meets is None else ("yes" if meets else "[bold red]NO[/]"),
            f"{r['plain_s'] * 1e3:.3f}",
            f"{r['plain_ratio']:.2f}",
            str(r["repeats"]),
        )
    return t
