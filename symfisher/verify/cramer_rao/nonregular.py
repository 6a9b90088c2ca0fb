"""(c) Families whose support depends on the parameters (no Cramér–Rao bound)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.verify.cramer_rao.common import (
    CHUNK_DRAWS,
    _call,
    _Ctx,
    _get,
    _KernelError,
)
from symfisher.verify.cramer_rao.mle import _compiled
from symfisher.verify.result import Check


# -- (c) non-regular -----------------------------------------------------------
def _non_regular(
    ctx: _Ctx, fam: Any, kernels: Any, theta: np.ndarray, key: jax.Array, n_boot: int
) -> list[Check]:
    dep = ", ".join(str(p) for p in fam.support_depends_on_params)
    support = fam.support
    head = (
        f"{ctx.family} is non-regular: its support {support} depends on {dep}, so "
        "differentiation under the integral fails and the Fisher identities "
        "(E[s] = 0, E[s s^T] = -E[H]) do not hold; the Cramér–Rao bound does not apply"
    )
    out = [
        ctx.check(
            "Cramér–Rao bound",
            kind="report",
            verdict="not applicable",
            message=head + ".",
        )
    ]
    mle = _support_mle(fam)
    if mle is None:
        return out
    i_par, use_max, end = mle
    th = float(theta[i_par])
    k_x, k_s, k_b = jax.random.split(key, 3)
    # E[s^2] from the kernels' score, the naive "Fisher information".
    es2 = None
    f = _get(kernels, "score")
    if f is None:
        out.append(
            ctx.error(
                "naive bound 1/(n E[s^2])",
                f"kernels.score is missing at {ctx.where}; expected score(theta, x)",
            )
        )
    else:
        try:
            x = np.asarray(fam.sampler(k_s, jnp.asarray(theta), (4096,)))
            s = _call(
                "score", f, (jnp.asarray(theta), x), (4096, theta.size), ctx.where
            )
            es2 = float(np.mean(s[:, i_par] ** 2))
        except _KernelError as e:
            out.append(ctx.error("naive bound 1/(n E[s^2])", str(e)))
    n_max = ctx.sizes[-1]
    chunk = int(max(1, min(ctx.R, CHUNK_DRAWS // n_max)))
    fn = _compiled(
        ("extreme", ctx.sizes, chunk, use_max),
        (fam.sampler,),
        lambda: _extreme_fn(fam.sampler, ctx.sizes, chunk, use_max),
    )
    n_chunks = -(-ctx.R // chunk)
    keys = jax.random.split(k_x, n_chunks)
    ext = np.concatenate(
        [np.asarray(fn(keys[c], jnp.asarray(theta))) for c in range(n_chunks)]
    )[: ctx.R]
    idx = np.asarray(jax.random.randint(k_b, (n_boot, ctx.R), 0, ctx.R))
    word = "max" if use_max else "min"
    for j, n in enumerate(ctx.sizes):
        e = ext[:, j] - end  # distance from the fixed end of the support
        v = float(np.var(e, ddof=1))
        v_b = np.var(e[idx], axis=1, ddof=1)
        scaled = n * n * v
        exact = th**2 * n / ((n + 1) ** 2 * (n + 2)) if end == 0.0 else None
        naive = 1.0 / (n * es2) if es2 else None
        msg = (
            f"{head}. The MLE {word}(x) of {fam.params[i_par]} has variance "
            f"O(1/n^2), not O(1/n): simulated n^2 Var = {scaled:.4g} at n = {n} "
            f"(tends to {fam.params[i_par]}^2 = {th**2:.4g}"
            + (f"; exactly {n * n * exact:.4g} at this n" if exact is not None else "")
            + f"), Var = {v:.3g}"
        )
        if naive is not None:
            msg += (
                f", below the naive 'bound' 1/(n E[s^2]) = {naive:.3g} "
                f"(E[s^2] = {es2:.4g}, i.e. {fam.params[i_par]}^2/n)"
                if v < naive
                else f", not below the naive 'bound' 1/(n E[s^2]) = {naive:.3g} at this n"
            )
        out.append(
            ctx.check(
                "MLE variance (non-regular)",
                entry=f"n={n}",
                kind="report",
                verdict="not applicable",
                expected=th**2,
                observed=scaled,
                se=float(n * n * np.std(v_b, ddof=1)),
                n=ctx.R,
                message=msg + ".",
            )
        )
    return out


def _support_mle(fam: Any) -> tuple[int, bool, float] | None:
    r"""``(parameter index, MLE is the max, the fixed end)`` for U(0, theta)-like supports.

    The MLE is :math:`\max_i x_i` when the support is :math:`(c, \theta)` with the
    density decreasing in :math:`\theta` (as for :math:`1/(\theta - c)`), and
    :math:`\min_i x_i` for :math:`(\theta, c)`; other shapes return ``None``.
    """
    if len(fam.variables) != 1 or len(fam.params) != 1:
        return None
    s = fam.supports[0]
    p = fam.params[0]
    try:
        lo, hi = s.inf, s.sup
    except Exception:
        return None
    if hi == p and lo.is_number and lo.is_finite:
        return 0, True, float(lo)
    if lo == p and hi.is_number and hi.is_finite:
        return 0, False, float(hi)
    return None


def _extreme_fn(
    sampler: Callable, sizes: tuple[int, ...], chunk: int, use_max: bool
) -> Callable:
    n_max = sizes[-1]

    def fn(key: jax.Array, theta: jax.Array) -> jax.Array:
        x = sampler(key, theta, (chunk, n_max)).astype(theta.dtype)
        red = jnp.max if use_max else jnp.min
        return jnp.stack([red(x[:, :n], axis=1) for n in sizes], axis=1)

    return jax.jit(fn)
