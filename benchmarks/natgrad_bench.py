r"""Exact natural gradients against the conjugate-gradient solves TRPO code runs.

Each case solves :math:`(F + \lambda I)\,x = g` with :math:`\lambda = 10^{-3}`
in float32. The naive route is what TRPO/NPG implementations do: 10 iterations
of plain conjugate gradient (``lax.fori_loop``) on the double-backprop
Fisher-vector product ``grad_q(grad_q KL(p, q) . v)`` of a KL written by hand
(``log_softmax`` for the categorical, the Gaussian formula otherwise). The
kernel route is the generated ``natural_gradient``, one closed-form pass.

Cases (target = minimum ratio naive / kernel):

* ``natgrad_categorical_k16``, ``natgrad_categorical_k128``,
  ``natgrad_categorical_k1024``: B = 4096 logit vectors (categorical_softmax,
  Sherman–Morrison), targets 5, 5, 10;
* ``natgrad_diag_gaussian_d16``: B = 4096 points :math:`(\mu, \log\sigma)`,
  d = 16 (diag_gaussian, elementwise), target 5;
* ``natgrad_linear_gaussian``: the linear_gaussian policy, 64 features, 6
  actions, 2048 states (exact Kronecker solve), target 5.

The right-hand side is a policy gradient from sampled actions,
:math:`g = \mathrm{adv} \cdot \nabla_\theta \log\pi(a \mid \theta)` with actions
drawn from the distribution and standard normal advantages. Records carry
``naive_residual`` and ``kernel_residual``, the relative residual
:math:`\|(F + \lambda I)x - g\| / \|g\|` of each side with :math:`F x` from the
generated ``fvp`` in float64 (a categorical case meets its target only if
``kernel_residual`` <= 1e-5 as well). Routes are compiled ahead, warmed up and
called interleaved; times are medians.

Records also carry each side's minor page faults per call
(``*_page_faults_per_call``) and the kernel timed alone, back to back
(``kernel_alone_s``, the same timing with no other route in between). At
K = 1024 the CG route maps fresh pages at every call (about 16,400 faults, 64 MiB),
and the kernel called right after it ran 2-3x slower than back to back without a
fault of its own: the ratio depends on what ran before the kernel, and these
fields show by how much.

``natgrad_linear_gaussian`` also times, interleaved with both routes, the one
product no exact solve can skip, the Gram matrix ``states.T @ states`` of the
2048 x 64 states (every entry of :math:`R = \sum_b w_b \hat s_b \hat s_b^\top`
enters the solution): ``floor_s``, and ``floor_ratio`` = naive / floor, the
ratio the kernel would reach if its m = 6 Cholesky solves cost nothing. By
operation count the naive route's 10 iterations take 30 products of
2 B n m flops (47 MFLOP) against the Gram's 2 B n^2 (17 MFLOP): 2.8x at equal
speed per flop.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import jax
import kernels as kb  # benchmarks/kernels.py: timed (seconds and page faults)
from records import run_cases  # benchmarks/records.py

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import symfisher as sf  # noqa: E402

CASES = (
    "natgrad_categorical_k16",
    "natgrad_categorical_k128",
    "natgrad_categorical_k1024",
    "natgrad_diag_gaussian_d16",
    "natgrad_linear_gaussian",
)
TARGETS = {
    "natgrad_categorical_k16": 5.0,
    "natgrad_categorical_k128": 5.0,
    "natgrad_categorical_k1024": 10.0,
    "natgrad_diag_gaussian_d16": 5.0,
    "natgrad_linear_gaussian": 5.0,
}
RESIDUAL_TARGET = 1e-5
BATCH = 4096
STATES = 2048
DAMPING = 1e-3
CG_ITERS = 10
REPEATS = 30
SEED = 20261130


def plain_cg(fvp: Callable, g: jax.Array, damping: float, iters: int) -> jax.Array:
    """TRPO's conjugate gradient: ``iters`` steps from 0 on ``v -> fvp(v) + damping v``."""

    def body(_, carry):
        x, r, p, rs = carry
        Ap = fvp(p) + damping * p
        alpha = rs / jnp.vdot(p, Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rs_new = jnp.vdot(r, r)
        return x, r, r + (rs_new / rs) * p, rs_new

    init = (jnp.zeros_like(g), g, g, jnp.vdot(g, g))
    return jax.lax.fori_loop(0, iters, body, init)[0]


def double_backprop(kl: Callable, theta: jax.Array) -> Callable:
    """``v -> grad_q(grad_q kl(theta, q) . v)`` at ``q = theta`` (p held fixed)."""
    p = jax.lax.stop_gradient(theta)
    grad_kl = jax.grad(lambda q: kl(p, q))
    return lambda v: jax.grad(lambda q: jnp.vdot(grad_kl(q), v))(theta)


def kl_logits(p, q):
    """Summed KL of categoricals from logits, written from ``log_softmax``."""
    logp, logq = jax.nn.log_softmax(p, axis=-1), jax.nn.log_softmax(q, axis=-1)
    return jnp.sum(jnp.exp(logp) * (logp - logq))


def kl_diag_gaussian(p, q):
    """Summed KL of diagonal Gaussians, theta = [mu | log sigma]."""
    d = p.shape[-1] // 2
    mp, lp, mq, lq = p[..., :d], p[..., d:], q[..., :d], q[..., d:]
    return jnp.sum(
        lq - lp + (jnp.exp(2 * lp) + (mp - mq) ** 2) / (2 * jnp.exp(2 * lq)) - 0.5
    )


def _categorical(k: int, rng: np.random.Generator):
    theta = rng.standard_normal((BATCH, k))
    p = np.exp(theta - theta.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    a = (rng.random((BATCH, 1)) > np.cumsum(p, -1)).sum(-1).clip(0, k - 1)
    g = (np.eye(k)[a] - p) * rng.standard_normal((BATCH, 1))
    kern = sf.kernels("categorical_softmax")
    return theta, g, kl_logits, kern.natural_gradient, kern.fvp, "categorical_softmax"


def _diag_gaussian(d: int, rng: np.random.Generator):
    mu = rng.standard_normal((BATCH, d))
    log_std = rng.uniform(-1.0, 0.5, (BATCH, d))
    a = mu + np.exp(log_std) * rng.standard_normal((BATCH, d))
    z = (a - mu) * np.exp(-log_std)
    score = np.concatenate([z * np.exp(-log_std), z * z - 1.0], axis=-1)
    g = score * rng.standard_normal((BATCH, 1))
    theta = np.concatenate([mu, log_std], axis=-1)
    kern = sf.kernels("diag_gaussian")
    return theta, g, kl_diag_gaussian, kern.natural_gradient, kern.fvp, "diag_gaussian"


def _linear_gaussian(rng: np.random.Generator):
    m, n = 6, 64
    theta = np.concatenate(
        [rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal((m, 1)),
         np.full((m, 1), -0.5)], axis=1,
    )  # fmt: skip
    states = rng.standard_normal((STATES, n))
    kern = sf.kernels("linear_gaussian")
    actions = np.asarray(kern.sample(jax.random.key(SEED), theta, states))
    adv = rng.standard_normal(STATES)

    def log_pi(t):
        mu = jnp.asarray(states) @ t[:, :n].T + t[:, n]
        z = (jnp.asarray(actions) - mu) * jnp.exp(-t[:, n + 1])
        return jnp.sum(-0.5 * z * z - t[:, n + 1], axis=-1)

    g = np.asarray(jax.grad(lambda t: jnp.mean(log_pi(t) * adv))(jnp.asarray(theta)))

    def kl(s, p, q):
        """Mean KL over the states ``s`` of diagonal Gaussian policies."""
        lp, lq = p[:, n + 1], q[:, n + 1]
        dmu = s @ (p[:, :n] - q[:, :n]).T + (p[:, n] - q[:, n])
        per = lq - lp + (jnp.exp(2 * lp) + dmu**2) / (2 * jnp.exp(2 * lq))
        return jnp.mean(jnp.sum(per - 0.5, axis=-1))

    return theta, states, g, kl, kern


def _time(fns: list[Callable], args: list[tuple]) -> list[tuple[float, float]]:
    """Median seconds and minor page faults per call of each route, called interleaved.

    With one route, the calls are back to back.
    """
    for fn, a in zip(fns, args, strict=False):  # warm up
        jax.block_until_ready(fn(*a))
    calls: list[list[tuple]] = [[] for _ in fns]
    for _ in range(REPEATS):
        for i, (fn, a) in enumerate(zip(fns, args, strict=False)):
            calls[i].append(kb.timed(fn, a))
    return [
        (statistics.median(c[0] for c in cs), statistics.median(c[1] for c in cs))
        for cs in calls
    ]


def _residual(fvp64: Callable, x, g) -> float:
    r""":math:`\|(F + \lambda I)x - g\| / \|g\|` in float64."""
    x64, g64 = jnp.asarray(x, jnp.float64), jnp.asarray(g, jnp.float64)
    r = fvp64(x64) + DAMPING * x64 - g64
    return float(jnp.linalg.norm(r) / jnp.linalg.norm(g64))


def run_case(case: str, machine: str) -> dict:
    rng = np.random.default_rng(SEED)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    if case == "natgrad_linear_gaussian":
        theta, states, g, kl_of, kern = _linear_gaussian(rng)

        def naive(t, s, g):
            return plain_cg(
                double_backprop(lambda p, q: kl_of(s, p, q), t), g, DAMPING, CG_ITERS
            )

        def kernel(t, s, g):
            return kern.natural_gradient(t, s, g, DAMPING)

        def fvp64(x):
            return kern.fvp(jnp.asarray(theta), jnp.asarray(states), x)

        family, shape = "linear_gaussian", f"m=6, n=64, B={STATES}"
        args = (f32(theta), f32(states), f32(g))
    else:
        if case.startswith("natgrad_categorical"):
            k = int(case.rsplit("_k", 1)[1])
            theta, g, kl, ng, fvp, family = _categorical(k, rng)
            shape = f"B={BATCH}, K={k}"
        else:
            theta, g, kl, ng, fvp, family = _diag_gaussian(16, rng)
            shape = f"B={BATCH}, d=16"

        def naive(t, g):
            return plain_cg(double_backprop(kl, t), g, DAMPING, CG_ITERS)

        def kernel(t, g):
            return ng(t, g, DAMPING)

        def fvp64(x):
            return fvp(jnp.asarray(theta), x)

        args = (f32(theta), f32(g))
    t0 = time.perf_counter()
    naive_c = jax.jit(naive).lower(*args).compile()
    t1 = time.perf_counter()
    kernel_c = jax.jit(kernel).lower(*args).compile()
    t2 = time.perf_counter()
    naive_res = _residual(fvp64, naive_c(*args), g)
    kernel_res = _residual(fvp64, kernel_c(*args), g)
    load = os.getloadavg()[0]
    extra: dict = {}
    if case == "natgrad_linear_gaussian":
        floor_c = jax.jit(lambda t, s, g: s.T @ s).lower(*args).compile()
        timed = _time([naive_c, kernel_c, floor_c], [args] * 3)
        floor_s = timed[2][0]
        extra = {"floor_s": floor_s, "floor_ratio": timed[0][0] / floor_s}
    else:
        timed = _time([naive_c, kernel_c], [args, args])
    (naive_s, naive_faults), (kernel_s, kernel_faults) = timed[:2]
    kernel_alone_s, kernel_alone_faults = _time([kernel_c], [args])[0]
    ratio = naive_s / kernel_s
    meets = ratio >= TARGETS[case]
    if case.startswith("natgrad_categorical"):
        meets = meets and kernel_res <= RESIDUAL_TARGET
    return {
        "case": case,
        "dtype": "float32",
        "shape": shape,
        "damping": DAMPING,
        "naive_s": naive_s,
        "kernel_s": kernel_s,
        "ratio": ratio,
        "target": TARGETS[case],
        "meets_target": bool(meets),
        "naive_residual": naive_res,
        "kernel_residual": kernel_res,
        "naive_page_faults_per_call": naive_faults,
        "kernel_page_faults_per_call": kernel_faults,
        "kernel_alone_s": kernel_alone_s,
        "kernel_alone_page_faults_per_call": kernel_alone_faults,
        **extra,
        "naive_compile_s": t1 - t0,
        "kernel_compile_s": t2 - t1,
        "repeats": REPEATS,
        "loadavg_1m_before": load,
        "naive_route": f"{CG_ITERS} plain CG iterations on the double-backprop FVP of a hand-written KL",
        "kernel_route": f"generated {family}.natural_gradient",
        "machine": machine,
    }


def run(only: set[str] | None, machine: str) -> list[dict]:
    """Records of the selected cases (a failed case records its error)."""
    return run_cases(CASES, only, run_case, machine, dtype="float32", target=TARGETS)


def table(records: list[dict], title: str):
    """A rich table: times, ratio against target, residuals of both sides."""
    from rich.table import Table

    t = Table(title=title)
    for col in (
        "case", "shape", "CG ms", "kernel ms", "ratio", "target", "meets",
        "CG residual", "kernel residual", "CG / Gram alone",
        "faults CG / kernel", "kernel ms alone",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col in ("case", "shape") else "right")
    for r in records:
        if "error" in r:
            t.add_row(r["case"], "-", "-", "-", "-", f">= {r['target']:g}x",
                      "[bold red]FAILED[/]", r["error"][:60], "-", "-", "-", "-")  # fmt: skip
            continue
        t.add_row(
            r["case"],
            r["shape"],
            f"{r['naive_s'] * 1e3:.3f}",
            f"{r['kernel_s'] * 1e3:.3f}",
            f"{r['ratio']:.1f}x",
            f">= {r['target']:g}x",
            "yes" if r["meets_target"] else "[bold red]NO[/]",
            f"{r['naive_residual']:.1e}",
            f"{r['kernel_residual']:.1e}",
            f"{r['floor_ratio']:.1f}x" if "floor_ratio" in r else "-",
            f"{r['naive_page_faults_per_call']:.0f} / "
            f"{r['kernel_page_faults_per_call']:.0f}",
            f"{r['kernel_alone_s'] * 1e3:.3f}",
        )
    return t
