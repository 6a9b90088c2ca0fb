r"""Damped conjugate gradient for Fisher systems, safe in float32 and on singular F.

Solves :math:`(F + \lambda I)\,x = g` given only products :math:`v \mapsto Fv`.

``jax.scipy.sparse.linalg.cg`` with ``tol=0`` stops as soon as the recursive
residual :math:`r^\top r` underflows to 0, and returns NaN when the curvature
:math:`p^\top A p` of a search direction underflows (measured on the singular
softmax Fisher in float32: K = 2 logits, right-hand side in the range of
:math:`F`: NaN in about a third of random cases). Here every solve runs a fixed
number of iterations (``lax.scan``) and freezes the iterate, instead of dividing,
once any of these holds:

* the residual reached the round-off floor, a normwise backward error of
  :math:`\varepsilon` (the dtype's machine epsilon),
  :math:`\|r\| \le \varepsilon\,(\hat\lambda\,\|x\| + \|g\|)`, or the caller's
  :math:`\|r\| \le \mathrm{tol}\,\|g\|`; below it the recursive residual is
  rounding noise, whose null-space part would be amplified;
* the direction has numerically zero (or negative) curvature,
  :math:`p^\top A p \le \varepsilon\,\hat\lambda\,p^\top p`, with
  :math:`\hat\lambda` the largest Rayleigh quotient met so far (a lower bound on
  :math:`\lambda_{\max}`): a null direction of a singular Fisher;
* a non-finite value appeared.

Started from :math:`x_0 = 0` with :math:`g` in the range of a singular :math:`F`
and no damping, the iterates stay in that range and converge to the
minimum-norm solution :math:`F^{+} g`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from symfisher.natural._tree import PyTree, check_like, nonnegative

FVP = Callable[[PyTree], PyTree]
Preconditioner = Callable[[PyTree], PyTree]


class CGResult(NamedTuple):
    r"""A conjugate-gradient solve.

    Attributes:
      x: the solution, with the structure of ``g``.
      residuals: :math:`\|r_k\|` for k = 0..iters (recursive residuals;
        constant after the solver stopped), shape ``(iters + 1,)``.
      iterations: the number of steps taken before stopping (at most ``iters``).
    """

    x: PyTree
    residuals: jax.Array
    iterations: jax.Array


def _dtype(g: PyTree):
    leaves = jax.tree.leaves(g)
    if not leaves:
        raise ValueError("g must contain at least one array")
    dt = jnp.result_type(*leaves)
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"g must hold floating arrays; got dtype {dt}")
    return dt


def conjugate_gradient(
    fvp: FVP,
    g: PyTree,
    damping: float = 0.0,
    iters: int = 10,
    *,
    tol: float = 0.0,
    preconditioner: Preconditioner | None = None,
) -> CGResult:
    r"""Solve :math:`(F + \lambda I)\,x = g` by (preconditioned) CG from :math:`x_0 = 0`.

    .. math::
       z_k = M^{-1} r_k, \quad
       \alpha_k = \frac{r_k^\top z_k}{p_k^\top A p_k}, \quad
       x_{k+1} = x_k + \alpha_k p_k, \quad r_{k+1} = r_k - \alpha_k A p_k, \quad
       p_{k+1} = z_{k+1} + \frac{r_{k+1}^\top z_{k+1}}{r_k^\top z_k}\, p_k,

    with :math:`A = F + \lambda I`, :math:`p_0 = z_0` and :math:`M^{-1} = I`
    without a preconditioner (plain CG); a fixed number of iterations with the
    safe stopping rule of this module's docstring (on :math:`\|r_k\|`), so it
    never returns NaN from an underflowed residual or curvature. With a
    preconditioner it also stops, keeping the last step, once
    :math:`r^\top M^{-1} r \le 0` or is not finite (:math:`M^{-1}` not positive
    definite on :math:`r`, or :math:`r = 0`). Works under ``jit`` and on pytrees.

    Args:
      fvp: :math:`v \mapsto F v` (same structure in and out as ``g``).
      g: right-hand side (e.g. the policy gradient).
      damping: :math:`\lambda \ge 0`, added as :math:`\lambda v` to every
        product; needed when :math:`g` is not in the range of a singular
        :math:`F` (softmax logits: :math:`F\mathbf 1 = 0`).
      iters: number of iterations (static, >= 1).
      tol: stop once :math:`\|r\| \le \mathrm{tol}\,\|g\|` (0: run to the
        round-off floor).
      preconditioner: :math:`r \mapsto M^{-1} r` for a symmetric positive
        definite :math:`M \approx F + \lambda I` (same structure in and out as
        ``g``), e.g. ``kfac(...).apply_inverse``; ``None``: plain CG.

    Returns:
      :class:`CGResult` with the solution and the residual history.

    Raises:
      ValueError: for negative ``damping`` or ``tol``, ``iters < 1``, or a
        ``preconditioner`` returning another structure than ``g``.
      TypeError: for a ``preconditioner`` that is not callable.
    """
    nonnegative("damping", damping)
    nonnegative("tol", tol)
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 1:
        raise ValueError(f"iters must be an integer >= 1; got {iters!r}")
    if preconditioner is not None and not callable(preconditioner):
        raise TypeError(
            "preconditioner must be a function r -> M^-1 r (same structure as g) "
            f"or None; got {type(preconditioner).__name__}"
        )
    dt = _dtype(g)
    eps = jnp.finfo(dt).eps
    damping = jnp.asarray(damping, dt)
    # one flat vector: a handful of vector ops per iteration, whatever the tree
    b, unravel = ravel_pytree(g)
    b = b.astype(dt)

    def A(v):
        Fv = ravel_pytree(fvp(unravel(v)))[0]
        if Fv.shape != v.shape:
            raise ValueError(
                f"fvp(v) must return the structure and shapes of g ({v.size} "
                f"numbers); got {Fv.size}"
            )
        return Fv.astype(dt) + damping * v

    def M(r):
        if preconditioner is None:
            return r
        z = preconditioner(unravel(r))
        check_like("preconditioner(r)", z, g, "g")
        return ravel_pytree(z)[0].astype(dt)

    def dot(a, c):
        return jnp.vdot(a, c).real.astype(dt)

    rs0 = dot(b, b)
    g_norm = jnp.sqrt(rs0)
    tol2 = jnp.asarray(tol, dt) ** 2 * rs0
    z0 = M(b)
    rz0 = rs0 if preconditioner is None else dot(b, z0)

    def step(carry, _):
        # rz = r^T M^-1 r (= rs = r^T r without a preconditioner)
        x, r, p, rz, rs, lam, done, k = carry
        Ap = A(p)
        pAp, pp = dot(p, Ap), dot(p, p)
        lam_new = jnp.maximum(lam, jnp.where(pp > 0, pAp / jnp.where(pp > 0, pp, 1), 0))
        floor = eps * (lam_new * jnp.sqrt(dot(x, x)) + g_norm)
        ok = (
            ~done
            & (rs > tol2)
            & (rs > floor**2)
            & (pAp > eps * lam_new * pp)
            & jnp.isfinite(pAp)
            & jnp.isfinite(rs)
        )
        if preconditioner is not None:
            ok = ok & (rz > 0) & jnp.isfinite(rz)
        alpha = jnp.where(ok, rz / jnp.where(ok, pAp, 1), 0)
        x_new = x + alpha * p
        r_new = r - alpha * Ap
        rs_new = dot(r_new, r_new)
        ok = ok & jnp.isfinite(rs_new)
        if preconditioner is None:
            z_new, rz_new, done_new = r_new, rs_new, ~ok
        else:
            z_new = M(r_new)
            rz_new = dot(r_new, z_new)
            ok = ok & jnp.isfinite(rz_new)
            # a step taken, but no next direction: keep it and stop
            done_new = ~ok | ~(rz_new > 0)
        beta = jnp.where(ok, rz_new / jnp.where(ok, rz, 1), 0)
        p_new = z_new + beta * p
        carry = (
            jnp.where(ok, x_new, x),
            jnp.where(ok, r_new, r),
            jnp.where(ok, p_new, p),
            jnp.where(ok, rz_new, rz),
            jnp.where(ok, rs_new, rs),
            jnp.where(ok, lam_new, lam),
            done_new,
            k + ok.astype(jnp.int32),
        )
        return carry, jnp.sqrt(carry[4])

    zero = jnp.zeros((), dt)
    init = (
        jnp.zeros_like(b),
        b,
        z0,
        rz0,
        rs0,
        zero,
        jnp.zeros((), bool),
        jnp.zeros((), jnp.int32),
    )
    (x, *_, k), history = jax.lax.scan(step, init, None, length=iters)
    residuals = jnp.concatenate([jnp.sqrt(rs0)[None], history])
    x = unravel(x)
    return CGResult(x, residuals, k)
