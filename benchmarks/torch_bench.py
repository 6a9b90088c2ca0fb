r"""Torch kernels against torch double backprop of the KL (the TRPO way).

Cases ``torch_fvp_categorical_k128`` (categorical_softmax, K = 128) and
``torch_fvp_diag_gaussian_d16`` (diag_gaussian, d = 16): batch 4096, float32,
CPU. Routes, each timed as the median of interleaved calls:

* ``fvp``: the generated ``fvp(theta, v)``;
* ``double_backprop``: ``g = grad_q KL(p || q)`` with ``create_graph``, then
  ``grad_q (g . v)`` at ``q = p`` — the KL being the generated one, the
  strongest version a user writes (one closed-form KL, two backward passes);
* ``natural_gradient``: the generated ``natural_gradient(theta, g, 1e-3)``;
* ``fill``: the memory roofline, ``torch.empty_like(v).fill_(1.0)`` (time to
  merely write the output).
"""

from __future__ import annotations

import statistics
import time

import torch
from records import run_cases  # benchmarks/records.py

import symfisher as sf

CASES = ("torch_fvp_categorical_k128", "torch_fvp_diag_gaussian_d16")
B = 4096
REPEATS = 30


def _inputs(case: str) -> tuple[str, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if case == "torch_fvp_categorical_k128":
        name, n = "categorical_softmax", 128
    else:
        name, n = "diag_gaussian", 32
    theta = torch.randn(B, n, generator=g) * 0.5
    v = torch.randn(B, n, generator=g)
    return name, theta, v


def run_case(case: str, machine: str) -> dict:
    name, theta, v = _inputs(case)
    k = sf.kernels(name, backend="torch")

    def double_backprop() -> torch.Tensor:
        q = theta.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(k.kl(theta, q).sum(), q, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), q)
        return hv

    routes = {
        "fvp": lambda: k.fvp(theta, v),
        "double_backprop": double_backprop,
        "natural_gradient": lambda: k.natural_gradient(theta, v, 1e-3),
        "fill": lambda: torch.empty_like(v).fill_(1.0),
    }
    err = (routes["fvp"]() - double_backprop()).abs().max().item()
    scale = double_backprop().abs().max().item()
    times: dict[str, list[float]] = {r: [] for r in routes}
    for fn in routes.values():  # warm-up
        fn()
    for _ in range(REPEATS):
        for r, fn in routes.items():
            t0 = time.perf_counter()
            fn()
            times[r].append(time.perf_counter() - t0)
    med = {r: statistics.median(t) for r, t in times.items()}
    return {
        "case": case,
        "family": name,
        "batch": B,
        "dtype": "float32",
        "size": theta.shape[-1],
        **{f"{r}_s": s for r, s in med.items()},
        "ratio_double_backprop_over_fvp": med["double_backprop"] / med["fvp"],
        "fvp_over_fill": med["fvp"] / med["fill"],
        "fvp_vs_double_backprop_max_rel_diff": err / scale,
        "threads": torch.get_num_threads(),
        "machine": machine,
    }


def run(only: set[str] | None, machine: str) -> list[dict]:
    return run_cases(CASES, only, run_case, machine, dtype="float32", batch=B)


def table(records: list[dict]) -> str:
    head = "case | fvp ms | natural_gradient ms | double backprop ms | ratio | fill ms | fvp/fill | max rel diff"
    rows = [
        f"{r['case']} | {r['fvp_s'] * 1e3:.3f} | {r['natural_gradient_s'] * 1e3:.3f} | "
        f"{r['double_backprop_s'] * 1e3:.3f} | {r['ratio_double_backprop_over_fvp']:.1f}x | "
        f"{r['fill_s'] * 1e3:.3f} | {r['fvp_over_fill']:.1f} | "
        f"{r['fvp_vs_double_backprop_max_rel_diff']:.1e}"
        if "error" not in r
        else f"{r['case']} | error: {r['error']}"
        for r in records
    ]
    return "\n".join([head, *rows])
