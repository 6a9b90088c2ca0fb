"""Natural-gradient benchmarks: ``symfisher.natural.policy_fvp`` against autodiff FVPs.

A policy network's Fisher-vector product computed as J^T F_out J v (one
``jax.linearize`` / transpose pass through the network and the generated
closed-form output Fisher) against the routes TRPO code uses: double
back-propagation ``grad(grad(mean KL) . v)`` and forward-over-reverse
``jvp(grad(mean KL))``, the KL being the generated family KL of the network's
outputs (``symfisher.natural.policy_kl``). 2048 states from a seeded Generator.

Cases (timed in float32; target = minimum ratio naive / policy_fvp):

* ``fvp_mlp_gaussian``: MLP 17-64-64-6 (tanh) means and a state-independent
  log sigma (diag_gaussian, 5708 weights), one product, naive = double backprop,
  target 1.8x;
* ``cg10_mlp_gaussian``: 10 iterations of ``conjugate_gradient`` with damping
  0.1 on the same network, each route building its product once, target 1.8x;
* ``fvp_mlp_gaussian_vs_fwdrev``: one product, naive = forward over reverse,
  target 1.3x;
* ``fvp_mlp_categorical``: MLP 8-64-64-18 logits (categorical_softmax), one
  product, naive = double backprop, target 1.7x.

Before timing, each case's outputs must agree normwise (max |a - b| / max |b|
over the flattened weights) to 1e-5 in float32 and 1e-12 in float64 (the float64
check is not timed). Both routes are ``jax.jit``-compiled ahead of time (compile
seconds recorded), warmed up, then called interleaved (naive, kernel, ...) at
least 20 times, each ended by ``block_until_ready``; times are medians.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable

import jax
from records import run_cases  # benchmarks/records.py

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from symfisher import natural  # noqa: E402

CASES = (
    "fvp_mlp_gaussian",
    "cg10_mlp_gaussian",
    "fvp_mlp_gaussian_vs_fwdrev",
    "fvp_mlp_categorical",
)
TARGETS = {
    "fvp_mlp_gaussian": 1.8,
    "cg10_mlp_gaussian": 1.8,
    "fvp_mlp_gaussian_vs_fwdrev": 1.3,
    "fvp_mlp_categorical": 1.7,
}
STATES = 2048
SEED = 20240611
REPEATS = 40
RTOL = {"float32": 1e-5, "float64": 1e-12}


# --------------------------------------------------------------------------
# networks


def init_mlp(
    sizes: list[int], rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Dense layers with 1/sqrt(fan-in) weights and small biases (float64)."""
    return [
        (rng.standard_normal((a, b)) / np.sqrt(a), 0.1 * rng.standard_normal(b))
        for a, b in itertools.pairwise(sizes)
    ]


def mlp(layers, s):
    """tanh hidden layers, linear output."""
    for i, (w, b) in enumerate(layers):
        s = s @ w + b
        if i < len(layers) - 1:
            s = jnp.tanh(s)
    return s


def gaussian_apply(params, states):
    """[mu(s), log sigma]: MLP means, state-independent log sigma."""
    mu = mlp(params["mlp"], states)
    return jnp.concatenate([mu, jnp.broadcast_to(params["log_std"], mu.shape)], axis=-1)


def categorical_apply(params, states):
    """Logits."""
    return mlp(params, states)


def problem(kind: str, dtype: str):
    """(apply_fn, family, params, states, v) in ``dtype``, the same numbers for both dtypes."""
    rng = np.random.default_rng(SEED)
    if kind == "gaussian":
        params = {"mlp": init_mlp([17, 64, 64, 6], rng), "log_std": np.full(6, -0.5)}
        states = rng.standard_normal((STATES, 17))
        apply_fn, family = gaussian_apply, "diag_gaussian"
    else:
        params = init_mlp([8, 64, 64, 18], rng)
        states = rng.standard_normal((STATES, 8))
        apply_fn, family = categorical_apply, "categorical_softmax"
    flat, unravel = ravel_pytree(jax.tree.map(jnp.asarray, params))
    v = rng.standard_normal(flat.shape)
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return (
        apply_fn,
        family,
        jax.tree.map(cast, params),
        cast(states),
        unravel(jnp.asarray(v))
        if dtype == "float64"
        else jax.tree.map(cast, unravel(jnp.asarray(v))),
    )


# --------------------------------------------------------------------------
# the routes


def routes(
    case: str, apply_fn: Callable, family: str, states
) -> tuple[Callable, Callable, str, str]:
    """(naive(params, v), kernel(params, v), naive route, kernel route)."""
    kl = natural.policy_kl(apply_fn, states, family)

    def ours(params, v):
        return natural.policy_fvp(apply_fn, params, states, family)(v)

    def double_backprop(params, v):
        return natural.fvp_double_backprop(kl, params, v)

    def fwd_rev(params, v):
        return natural.fvp_forward_over_reverse(kl, params, v)

    kernel_route = (
        f"policy_fvp: J^T F_out J v (jax.linearize + transpose, {family}.fvp)"
    )
    dbp = "grad(grad(mean KL(stop_gradient(pi_w), pi_w')) . v), generated KL"
    if case == "cg10_mlp_gaussian":

        def cg_naive(params, v):
            return natural.conjugate_gradient(
                lambda u: double_backprop(params, u), v, 0.1, 10
            ).x

        def cg_ours(params, v):
            fvp = natural.policy_fvp(apply_fn, params, states, family)
            return natural.conjugate_gradient(fvp, v, 0.1, 10).x

        return (
            cg_naive,
            cg_ours,
            "conjugate_gradient(10 iters, damping 0.1) with " + dbp,
            ("conjugate_gradient(10 iters, damping 0.1) with " + kernel_route),
        )
    if case == "fvp_mlp_gaussian_vs_fwdrev":
        return (
            fwd_rev,
            ours,
            "jvp(grad(mean KL)) (forward over reverse), generated KL",
            kernel_route,
        )
    return double_backprop, ours, dbp, kernel_route


def rel_diff(a, b) -> float:
    """Normwise relative difference of two pytrees: max |a - b| / max |b|."""
    a = np.asarray(ravel_pytree(a)[0], np.float64)
    b = np.asarray(ravel_pytree(b)[0], np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max() / np.abs(b).max())


def compile_ahead(fn: Callable, args: tuple) -> tuple[Callable, float]:
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def timed(fn: Callable, args: tuple) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def run_case(case: str, machine: str) -> dict:
    kind = "categorical" if case == "fvp_mlp_categorical" else "gaussian"
    diffs = {}
    for dtype in ("float64", "float32"):
        apply_fn, family, params, states, v = problem(kind, dtype)
        naive, kernel, naive_route, kernel_route = routes(
            case, apply_fn, family, states
        )
        args = (params, v)
        naive_c, naive_compile = compile_ahead(naive, args)
        kernel_c, kernel_compile = compile_ahead(kernel, args)
        diffs[dtype] = rel_diff(kernel_c(*args), naive_c(*args))
        if not diffs[dtype] <= RTOL[dtype]:
            raise AssertionError(
                f"{case} ({dtype}): policy_fvp differs from the naive route by "
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
        "weights": int(ravel_pytree(params)[0].size),
        "naive_s": naive_s,
        "kernel_s": kernel_s,
        "ratio": ratio,
        "target": TARGETS[case],
        "meets_target": bool(ratio >= TARGETS[case]),
        "naive_compile_s": naive_compile,
        "kernel_compile_s": kernel_compile,
        "max_rel_diff": diffs["float32"],
        "max_rel_diff_float64": diffs["float64"],
        "repeats": REPEATS,
        "naive_min_s": min(t_naive),
        "kernel_min_s": min(t_kernel),
        "loadavg_1m_before": load,
        "naive_route": naive_route,
        "kernel_route": kernel_route,
        "machine": machine,
    }


def run(only: set[str] | None, machine: str) -> list[dict]:
    """Records of the selected cases (a failed case records its error)."""
    return run_cases(
        CASES, only, run_case, machine, dtype="float32", batch=STATES, target=TARGETS
    )


def table(records: list[dict], title: str):
    """A rich table: times, ratio against target, agreement, compile time."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case", "naive ms", "policy_fvp ms", "ratio", "target", "meets",
        "rel diff f32 / f64", "compile s naive/ours", "runs",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in records:
        if "error" in r:
            t.add_row(r["case"], "-", "-", "-", f">= {r['target']:g}x", "[bold red]FAILED[/]",
                      r["error"][:80], "-", "-")  # fmt: skip
            continue
        t.add_row(
            r["case"],
            f"{r['naive_s'] * 1e3:.3f}",
            f"{r['kernel_s'] * 1e3:.3f}",
            f"{r['ratio']:.2f}x",
            f">= {r['target']:g}x",
            "yes" if r["meets_target"] else "[bold red]NO[/]",
            f"{r['max_rel_diff']:.1e} / {r['max_rel_diff_float64']:.1e}",
            f"{r['naive_compile_s']:.2f} / {r['kernel_compile_s']:.2f}",
            str(r["repeats"]),
        )
    return t
