"""K-FAC benchmarks: ``symfisher.natural.kfac`` against conjugate gradient on TRPO's FVP.

The networks are those of the ``fvp_mlp_*`` cases of ``benchmarks/natural_bench.py``
(MLP 17-64-64-6 tanh means with a state-independent log sigma, diag_gaussian,
5708 weights; MLP 8-64-64-18 logits, categorical_softmax, 6578 weights), 2048
states. The right-hand side is a policy gradient from sampled actions,
:math:`g = \\nabla_w \\frac1N \\sum_n \\log\\pi_w(a_n \\mid s_n)\\, \\hat A_n`, with
:math:`a_n \\sim \\pi_w(\\cdot \\mid s_n)` and :math:`\\hat A_n \\sim N(0, 1)`
(seeded). Damping :math:`\\lambda = 10^{-3}`. The naive FVP is TRPO's double
back-propagation of the mean KL (``natural.fvp_double_backprop`` of
``natural.policy_kl``), as in natural_bench's naive route.

Cases (timed in float32; ratio = naive / kernel):

* ``kfac_natgrad_mlp_gaussian``, ``kfac_natgrad_mlp_categorical``: one K-FAC
  natural-gradient application, factors included
  (``natural.kfac(...).apply_inverse(g)``), against 10 iterations of
  ``conjugate_gradient`` on the TRPO FVP; targets 2x (Gaussian) and 1x
  (categorical), with ``kernel_cosine >= naive_cosine``. Each side's
  ``*_cosine`` is its cosine with the exact solution :math:`(F + \\lambda I)^{-1} g`
  (float64 CG with ``natural.policy_fvp`` run to a relative residual of 1e-10)
  and ``*_residual`` is :math:`\\|(F + \\lambda I) x - g\\| / \\|g\\|` (float64).
  ``blockdiag_cosine`` is the cosine of the exact layer-block-diagonal solve
  (each dense layer's exact damped Fisher block, the log-sigma block apart;
  ``blockdiag_solution``): no layer-wise method, K-FAC included, can do better
  than this block-diagonal structure allows.
* ``pcg_mlp_gaussian``, ``pcg_mlp_categorical``: wall time until the relative
  (recursive) residual is <= 1e-3: ``conjugate_gradient(..., tol=1e-3,
  preconditioner=kfac(...).apply_inverse)`` (factors included) against plain
  CG, both on the TRPO FVP; each runs exactly the number of iterations it needs
  (found by a first, untimed solve with a generous limit), recorded as
  ``kernel_iterations`` / ``naive_iterations``; target 1x (never slower). The
  system's damping is :math:`10^{-3}`; the preconditioner's own damping is
  ``PRECONDITIONER_DAMPING`` = 0.1 (K-FAC damped like the system needed more
  iterations than plain CG on the categorical network, 70 vs 63; measured
  iterations for 1e-3 / 1e-2 / 0.1 / 1: categorical 70 / 63 / 50 / 60,
  Gaussian 208 / 179 / 139 / 135, plain CG 63 and 245; with the current
  factor code, at 0.1: categorical 50, Gaussian 131, plain CG 64 and 246).

The K-FAC side calls LAPACK (``eigh`` of each factor); ``benchmarks/run.py``
runs it with one OpenBLAS thread (see there; recorded as ``openblas_threads``).
On a 2-core machine under load, OpenBLAS's own threads made each small
``eigh`` ~20x slower and the K-FAC side 2-3x slower; the naive side, XLA's
products only, is not affected.

Both routes are ``jax.jit``-compiled ahead of time (compile seconds recorded),
warmed up, then called interleaved (naive, kernel, ...), each call ended by
``block_until_ready``; times are medians.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
from records import run_cases  # benchmarks/records.py

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import natural_bench  # noqa: E402

import symfisher as sf  # noqa: E402
from symfisher import natural  # noqa: E402

CASES = (
    "kfac_natgrad_mlp_gaussian",
    "kfac_natgrad_mlp_categorical",
    "pcg_mlp_gaussian",
    "pcg_mlp_categorical",
)
TARGETS = {
    "kfac_natgrad_mlp_gaussian": 2.0,
    "kfac_natgrad_mlp_categorical": 1.0,
    "pcg_mlp_gaussian": 1.0,
    "pcg_mlp_categorical": 1.0,
}
DAMPING = 1e-3
CG_ITERS = 10
PCG_TOL = 1e-3
PRECONDITIONER_DAMPING = 0.1
PCG_MAX_ITERS = 2000
EXACT_TOL = 1e-10
EXACT_MAX_ITERS = 20000
REPEATS = {"kfac_natgrad": 30, "pcg": 7}


# --------------------------------------------------------------------------
# the problem


def policy_gradient(apply_fn, family: str, params, states, seed: int):
    """g = grad (1/N) sum_n log pi(a_n | s_n) A_n, actions sampled from the policy."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(apply_fn(params, states), np.float64)
    n = theta.shape[0]
    if family == "diag_gaussian":
        d = theta.shape[1] // 2
        actions = theta[:, :d] + np.exp(theta[:, d:]) * rng.standard_normal((n, d))
    else:
        gumbel = -np.log(-np.log(rng.uniform(size=theta.shape)))
        actions = np.argmax(theta + gumbel, axis=1)
    adv = rng.standard_normal(n)
    log_prob = sf.kernels(family).log_prob

    def surrogate(p):
        return jnp.mean(log_prob(apply_fn(p, states), jnp.asarray(actions)) * adv)

    return jax.grad(surrogate)(params)


def problem(kind: str, dtype: str):
    """(apply_fn, family, params, states, g) in ``dtype``; g from the float64 weights."""
    apply_fn, family, params64, states64, _ = natural_bench.problem(kind, "float64")
    g = policy_gradient(apply_fn, family, params64, states64, natural_bench.SEED + 1)
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return (
        apply_fn,
        family,
        jax.tree.map(cast, params64),
        cast(states64),
        jax.tree.map(cast, g),
    )


def trpo_fvp(apply_fn, family, states, params):
    """TRPO's FVP: double back-propagation of the mean KL."""
    kl = natural.policy_kl(apply_fn, states, family)
    return lambda v: natural.fvp_double_backprop(kl, params, v)


@functools.cache
def exact_solution(kind: str):
    """((F + lambda I)^-1 g, its relative residual, iterations, residual function).

    Float64 CG with ``natural.policy_fvp`` to a relative residual of 1e-10; the
    iteration limit doubles from 500 until it is reached (the solver runs a
    fixed number of iterations, frozen once converged).
    """
    apply_fn, family, params, states, g = problem(kind, "float64")
    fvp = natural.policy_fvp(apply_fn, params, states, family)
    flat_g, unravel = ravel_pytree(g)

    def residual(x) -> float:
        x = unravel(jnp.asarray(ravel_pytree(x)[0], jnp.float64))
        Ax = ravel_pytree(fvp(x))[0] + DAMPING * ravel_pytree(x)[0]
        return float(jnp.linalg.norm(Ax - flat_g) / jnp.linalg.norm(flat_g))

    iters = 500
    while True:
        res = jax.jit(
            lambda g, iters=iters: natural.conjugate_gradient(
                fvp, g, DAMPING, iters, tol=EXACT_TOL
            )
        )(g)
        k = int(res.iterations)
        if k < iters or iters >= EXACT_MAX_ITERS:
            break
        iters *= 2
    return res.x, residual(res.x), k, residual


def _blocks(tree) -> list[list[int]]:
    """Leaf indices of K-FAC's blocks: each dense layer's ``(W, b)``, then the rest."""
    layers: dict[tuple, list[int]] = {}
    rest: list[int] = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
        if isinstance(path[-1], jax.tree_util.SequenceKey) and leaf.ndim in (1, 2):
            layers.setdefault(path[:-1], []).append(i)
        else:
            rest.append(i)
    return [*layers.values(), *([rest] if rest else [])]


@functools.cache
def blockdiag_solution(kind: str):
    r"""The exact layer-block-diagonal solve: each block's :math:`(F_{ll} + \lambda I)^{-1} g_l`.

    The best any layer-wise method can do (K-FAC approximates each block further
    by a Kronecker product): float64 CG on each block's FVP (the full FVP of a
    vector zero outside the block, read inside it) to a relative residual of 1e-10.
    """
    apply_fn, family, params, states, g = problem(kind, "float64")
    fvp = natural.policy_fvp(apply_fn, params, states, family)
    leaves, tdef = jax.tree.flatten(g)
    out = list(leaves)
    for block in _blocks(g):

        def mask(tree, block=block):
            return jax.tree.unflatten(
                tdef,
                [
                    leaf if i in block else jnp.zeros_like(leaf)
                    for i, leaf in enumerate(jax.tree.leaves(tree))
                ],
            )

        res = jax.jit(
            lambda g, mask=mask: natural.conjugate_gradient(
                lambda v: mask(fvp(mask(v))),
                g,
                DAMPING,
                EXACT_MAX_ITERS,
                tol=EXACT_TOL,
            )
        )(mask(g))
        for i in block:
            out[i] = jax.tree.leaves(res.x)[i]
    return jax.tree.unflatten(tdef, out)


def cosine(a, b) -> float:
    a = np.asarray(ravel_pytree(a)[0], np.float64)
    b = np.asarray(ravel_pytree(b)[0], np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --------------------------------------------------------------------------
# timing


def compile_ahead(fn: Callable, args: tuple) -> tuple[Callable, float]:
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def timed(fn: Callable, args: tuple) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def interleaved(naive, kernel, args, repeats: int):
    for _ in range(2):
        timed(naive, args), timed(kernel, args)
    t_naive, t_kernel = [], []
    for _ in range(repeats):
        t_naive.append(timed(naive, args))
        t_kernel.append(timed(kernel, args))
    return t_naive, t_kernel


# --------------------------------------------------------------------------
# cases


def run_case(case: str, machine: str) -> dict:
    kind = "categorical" if case.endswith("categorical") else "gaussian"
    apply_fn, family, params, states, g = problem(kind, "float32")
    x_star, star_residual, star_iters, residual = exact_solution(kind)
    kfac_route = f"natural.kfac({family} head).apply_inverse (factors included)"
    trpo = "TRPO FVP (grad(grad(mean KL) . v), generated KL)"

    if case.startswith("kfac_natgrad"):

        def naive(params, g):
            fvp = trpo_fvp(apply_fn, family, states, params)
            return natural.conjugate_gradient(fvp, g, DAMPING, CG_ITERS).x

        def kernel(params, g):
            return natural.kfac(
                apply_fn, params, states, family, DAMPING
            ).apply_inverse(g)

        naive_route = f"conjugate_gradient({CG_ITERS} iters) with {trpo}"
        kernel_route = f"one {kfac_route}"
        extra: dict = {}
    else:

        def solver(iters: int, pre: bool):
            def solve(params, g):
                fvp = trpo_fvp(apply_fn, family, states, params)
                M = None
                if pre:
                    M = natural.kfac(
                        apply_fn, params, states, family, PRECONDITIONER_DAMPING
                    ).apply_inverse
                return natural.conjugate_gradient(
                    fvp, g, DAMPING, iters, tol=PCG_TOL, preconditioner=M
                )

            return solve

        probe = {
            pre: jax.jit(solver(PCG_MAX_ITERS, pre))(params, g) for pre in (False, True)
        }
        its = {pre: int(r.iterations) for pre, r in probe.items()}
        reached = {
            pre: float(r.residuals[its[pre]] / r.residuals[0])
            for pre, r in probe.items()
        }
        if not max(reached.values()) <= PCG_TOL:
            raise AssertionError(
                f"{case}: relative residual {reached} not <= {PCG_TOL:g} within "
                f"{PCG_MAX_ITERS} iterations (float32)"
            )
        solve_naive, solve_kernel = (
            solver(max(its[False], 1), False),
            solver(max(its[True], 1), True),
        )

        def naive(params, g):
            return solve_naive(params, g).x

        def kernel(params, g):
            return solve_kernel(params, g).x

        naive_route = f"conjugate_gradient(tol={PCG_TOL:g}) with {trpo}"
        kernel_route = (
            f"conjugate_gradient(tol={PCG_TOL:g}, preconditioner={kfac_route}) "
            f"with {trpo}"
        )
        extra = {
            "naive_iterations": its[False],
            "kernel_iterations": its[True],
            "naive_recursive_residual": reached[False],
            "kernel_recursive_residual": reached[True],
        }
    args = (params, g)
    naive_c, naive_compile = compile_ahead(naive, args)
    kernel_c, kernel_compile = compile_ahead(kernel, args)
    x_naive, x_kernel = naive_c(*args), kernel_c(*args)
    for name, x in (("naive", x_naive), ("kernel", x_kernel)):
        if not np.isfinite(np.asarray(ravel_pytree(x)[0])).all():
            raise AssertionError(f"{case}: the {name} route returned non-finite values")
    load = os.getloadavg()[0]
    repeats = REPEATS["pcg" if case.startswith("pcg") else "kfac_natgrad"]
    t_naive, t_kernel = interleaved(naive_c, kernel_c, args, repeats)
    naive_s, kernel_s = statistics.median(t_naive), statistics.median(t_kernel)
    ratio = naive_s / kernel_s
    kernel_cos, naive_cos = cosine(x_kernel, x_star), cosine(x_naive, x_star)
    meets = ratio >= TARGETS[case]
    if case.startswith("kfac_natgrad"):
        meets = meets and kernel_cos >= naive_cos
        extra["blockdiag_cosine"] = cosine(blockdiag_solution(kind), x_star)
    return {
        "case": case,
        "dtype": "float32",
        "batch": natural_bench.STATES,
        "weights": int(ravel_pytree(params)[0].size),
        "damping": DAMPING,
        "preconditioner_damping": PRECONDITIONER_DAMPING
        if case.startswith("pcg")
        else None,
        "naive_s": naive_s,
        "kernel_s": kernel_s,
        "ratio": ratio,
        "target": TARGETS[case],
        "meets_target": bool(meets),
        "kernel_cosine": kernel_cos,
        "naive_cosine": naive_cos,
        "kernel_residual": residual(x_kernel),
        "naive_residual": residual(x_naive),
        **extra,
        "exact_residual": star_residual,
        "exact_iterations": star_iters,
        "naive_compile_s": naive_compile,
        "kernel_compile_s": kernel_compile,
        "repeats": repeats,
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
        CASES,
        only,
        run_case,
        machine,
        dtype="float32",
        batch=natural_bench.STATES,
        target=TARGETS,
    )


def table(records: list[dict], title: str):
    """A rich table: times, ratio against target, cosines, residuals, iterations."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case", "naive ms", "kernel ms", "ratio", "target", "meets",
        "cos naive / kernel", "cos block-diag", "residual naive / kernel",
        "iters naive / kernel",
        "compile s naive/kernel",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in records:
        if "error" in r:
            t.add_row(r["case"], "-", "-", "-", f">= {r['target']:g}x",
                      "[bold red]FAILED[/]", r["error"][:80], "-", "-", "-", "-")  # fmt: skip
            continue
        iters = (
            f"{r['naive_iterations']} / {r['kernel_iterations']}"
            if "naive_iterations" in r
            else f"{CG_ITERS} / 1 (K-FAC)"
        )
        t.add_row(
            r["case"],
            f"{r['naive_s'] * 1e3:.2f}",
            f"{r['kernel_s'] * 1e3:.2f}",
            f"{r['ratio']:.2f}x",
            f">= {r['target']:g}x",
            "yes" if r["meets_target"] else "[bold red]NO[/]",
            f"{r['naive_cosine']:.3f} / {r['kernel_cosine']:.3f}",
            f"{r['blockdiag_cosine']:.3f}" if "blockdiag_cosine" in r else "-",
            f"{r['naive_residual']:.2e} / {r['kernel_residual']:.2e}",
            iters,
            f"{r['naive_compile_s']:.2f} / {r['kernel_compile_s']:.2f}",
        )
    return t
