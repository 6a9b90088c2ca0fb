r"""Torch kernels against torch double backprop of the KL (the TRPO way).

Cases ``torch_fvp_categorical_k128`` (categorical_softmax, K = 128) and
``torch_fvp_diag_gaussian_d16`` (diag_gaussian, d = 16): batch 4096, float32,
CPU. Routes, each timed as the median of interleaved calls:

* ``fvp``: the generated ``fvp(theta, v)``;
* ``double_backprop``: ``g = grad_q KL(p || q)`` with ``create_graph``, then
  ``grad_q (g . v)`` at ``q = p``, with the KL written as a competent user
  writes it (``log_softmax`` for the categorical; the Gaussian formula in
  :math:`(\mu, \log\sigma)` otherwise) — the TRPO Fisher-vector product;
* ``natural_gradient``: the generated ``natural_gradient(theta, g, 1e-3)``;
* ``cg10_double_backprop``: what TRPO code runs for the same solve, 10
  conjugate-gradient iterations of :math:`(F + 10^{-3} I) x = g` on the
  double-backprop product (one system over the whole batch: F is block
  diagonal over it);
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


def _user_kl(name: str, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The summed KL(p || q) as a user writes it in PyTorch."""
    if name == "categorical_softmax":
        lp, lq = torch.log_softmax(p, dim=-1), torch.log_softmax(q, dim=-1)
        return torch.sum(torch.exp(lp) * (lp - lq))
    d = p.shape[-1] // 2
    mp, op, mq, oq = p[..., :d], p[..., d:], q[..., :d], q[..., d:]
    var = (torch.exp(2 * op) + (mp - mq) ** 2) / (2 * torch.exp(2 * oq))
    return torch.sum(oq - op + var - 0.5)


def _double_backprop(name: str, theta: torch.Tensor):
    """``v -> F v`` by two backward passes through the KL at ``q = theta``."""
    q = theta.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_user_kl(name, theta, q), q, create_graph=True)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        (hv,) = torch.autograd.grad((g * v).sum(), q, retain_graph=True)
        return hv

    return fvp


def _cg(fvp, b: torch.Tensor, damping: float, iters: int = 10) -> torch.Tensor:
    """``iters`` conjugate-gradient steps for ``(F + damping I) x = b``."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = torch.sum(r * r)
    for _ in range(iters):
        Ap = fvp(p) + damping * p
        alpha = rr / torch.sum(p * Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.sum(r * r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def run_case(case: str, machine: str) -> dict:
    name, theta, v = _inputs(case)
    k = sf.kernels(name, backend="torch")

    def double_backprop() -> torch.Tensor:
        return _double_backprop(name, theta)(v)

    def cg10() -> torch.Tensor:
        return _cg(_double_backprop(name, theta), v, 1e-3)

    routes = {
        "fvp": lambda: k.fvp(theta, v),
        "double_backprop": double_backprop,
        "natural_gradient": lambda: k.natural_gradient(theta, v, 1e-3),
        "cg10_double_backprop": cg10,
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
        "ratio_cg10_over_natural_gradient": med["cg10_double_backprop"]
        / med["natural_gradient"],
        "fvp_over_fill": med["fvp"] / med["fill"],
        "fvp_vs_double_backprop_max_rel_diff": err / scale,
        "threads": torch.get_num_threads(),
        "machine": machine,
    }


def run(only: set[str] | None, machine: str) -> list[dict]:
    return run_cases(CASES, only, run_case, machine, dtype="float32", batch=B)


def table(records: list[dict]) -> str:
    """Plain-text table of the records (ms, medians)."""
    head = (
        "case | fvp | double backprop | ratio | natural_gradient | CG10 on double"
        " backprop | ratio | fill | fvp/fill | fvp vs double backprop (max rel)"
    )
    rows = [
        f"{r['case']} | {r['fvp_s'] * 1e3:.3f} | {r['double_backprop_s'] * 1e3:.3f} | "
        f"{r['ratio_double_backprop_over_fvp']:.1f}x | "
        f"{r['natural_gradient_s'] * 1e3:.3f} | "
        f"{r['cg10_double_backprop_s'] * 1e3:.3f} | "
        f"{r['ratio_cg10_over_natural_gradient']:.1f}x | "
        f"{r['fill_s'] * 1e3:.3f} | {r['fvp_over_fill']:.1f} | "
        f"{r['fvp_vs_double_backprop_max_rel_diff']:.1e}"
        if "error" not in r
        else f"{r['case']} | error: {r['error']}"
        for r in records
    ]
    return "\n".join(
        ["times in ms, float32, batch 4096, medians of interleaved calls", head, *rows]
    )
