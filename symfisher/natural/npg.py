r"""Natural-policy-gradient step for a KL budget, and TRPO's backtracking line search.

With :math:`x = F^{-1} g` (damped conjugate gradient), the step that maximises
the linearised objective :math:`g^\top s` subject to the quadratic KL model
:math:`\tfrac12 s^\top F s \le \delta` is

.. math:: s = \sqrt{\frac{2\delta}{g^\top F^{-1} g}}\; F^{-1} g,
   \qquad \tfrac12 s^\top F s = \delta, \qquad g^\top s = \sqrt{2\delta\, g^\top F^{-1} g}.

:func:`line_search` then shrinks :math:`s` until the *true* mean KL is within
:math:`\delta` and a user surrogate improves (Schulman et al., 2015, appendix C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from symfisher.natural._tree import PyTree, axpy, concrete_float, positive, scale, vdot
from symfisher.natural.cg import CGResult, conjugate_gradient


class NPGStep(NamedTuple):
    r"""A natural-gradient step.

    Attributes:
      step: :math:`s = \sqrt{2\delta / g^\top x}\, x` (zero when
        :math:`g^\top x \le 0`), with the structure of ``g``.
      direction: :math:`x \approx (F + \lambda I)^{-1} g`.
      step_size: :math:`\sqrt{2\delta / g^\top x}`.
      quadratic: :math:`g^\top x = g^\top F^{-1} g`.
      expected_improvement: :math:`g^\top s`, the linearised gain of the step.
      cg: the conjugate-gradient solve.
    """

    step: PyTree
    direction: PyTree
    step_size: jax.Array
    quadratic: jax.Array
    expected_improvement: jax.Array
    cg: CGResult


def npg_step(
    g: PyTree,
    fvp: Callable[[PyTree], PyTree],
    max_kl: float,
    *,
    damping: float = 0.0,
    iters: int = 10,
) -> NPGStep:
    r"""The natural-gradient step of KL size ``max_kl`` along the ascent direction ``g``.

    .. math:: s = \sqrt{\frac{2\delta}{g^\top F^{-1} g}}\; F^{-1} g

    Args:
      g: gradient of the objective to *maximise* (negate a loss gradient).
      fvp: :math:`v \mapsto F v`, e.g. :func:`~symfisher.natural.policy_fvp`.
      max_kl: the KL budget :math:`\delta > 0` of the quadratic model.
      damping: :math:`\lambda \ge 0` of the solve (:math:`F + \lambda I`).
      iters: conjugate-gradient iterations.

    Returns:
      :class:`NPGStep`.

    Raises:
      ValueError: for ``max_kl <= 0`` or negative ``damping``.
    """
    positive("max_kl", max_kl)
    res = conjugate_gradient(fvp, g, damping=damping, iters=iters)
    x = res.x
    quad = vdot(g, x).real
    dt = quad.dtype
    ok = (quad > 0) & jnp.isfinite(quad)
    size = jnp.where(
        ok, jnp.sqrt(2 * jnp.asarray(max_kl, dt) / jnp.where(ok, quad, 1)), 0
    )
    step = scale(size, x)
    return NPGStep(step, x, size, quad, size * quad, res)


class LineSearchResult(NamedTuple):
    r"""Outcome of :func:`line_search`.

    Attributes:
      params: the accepted parameters (the old ones when nothing was accepted).
      accepted: whether a step was accepted.
      fraction: the accepted fraction :math:`\beta^k` of the full step (0 if none).
      improvement: surrogate(new) - surrogate(old) at the accepted step (0 if none).
      kl: KL(old, new) at the accepted step (0 if none).
      backtracks: how many fractions were tried.
    """

    params: PyTree
    accepted: jax.Array
    fraction: jax.Array
    improvement: jax.Array
    kl: jax.Array
    backtracks: jax.Array


def line_search(
    surrogate: Callable[[PyTree], jax.Array],
    kl: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    step: PyTree,
    max_kl: float,
    *,
    expected_improvement: jax.Array | None = None,
    accept_ratio: float = 0.1,
    backtrack: float = 0.5,
    max_backtracks: int = 10,
) -> LineSearchResult:
    r"""TRPO backtracking line search with a KL constraint.

    Tries :math:`w_k = w + \beta^k s` for :math:`k = 0, 1, \dots` and accepts the
    first with

    .. math:: \mathrm{KL}(w, w_k) \le \delta, \qquad
       \Delta_k = L(w_k) - L(w) > 0, \qquad
       \Delta_k \ge \rho\, \beta^k\, g^\top s \ \ (\text{when } g^\top s
       \text{ is given}).

    Args:
      surrogate: :math:`L(w)`, the objective to maximise (e.g. the importance-
        weighted advantage).
      kl: ``kl(params_old, params_new)``, the mean KL (e.g.
        :func:`~symfisher.natural.policy_kl`).
      params: the current parameters :math:`w`.
      step: the full step :math:`s` (e.g. ``npg_step(...).step``).
      max_kl: the KL bound :math:`\delta > 0`.
      expected_improvement: :math:`g^\top s` (``npg_step(...).expected_improvement``);
        when given, a step must also achieve the fraction ``accept_ratio`` of
        its linearised gain.
      accept_ratio: :math:`\rho \ge 0`.
      backtrack: shrink factor :math:`\beta \in (0, 1)`.
      max_backtracks: number of fractions to try (>= 1).

    Returns:
      :class:`LineSearchResult`; works under ``jit`` (a ``lax.while_loop``).

    Raises:
      ValueError: for ``max_kl <= 0``, ``backtrack`` outside (0, 1), negative
        ``accept_ratio`` or ``max_backtracks < 1``.
    """
    positive("max_kl", max_kl)
    b = concrete_float("backtrack", backtrack)
    if b is not None and not 0 < b < 1:
        raise ValueError(f"backtrack must lie in (0, 1); got {backtrack!r}")
    a = concrete_float("accept_ratio", accept_ratio)
    if a is not None and not a >= 0:
        raise ValueError(f"accept_ratio must be >= 0; got {accept_ratio!r}")
    if not isinstance(max_backtracks, int) or max_backtracks < 1:
        raise ValueError(
            f"max_backtracks must be an integer >= 1; got {max_backtracks!r}"
        )
    base = surrogate(params)
    dt = jnp.result_type(base)
    expected = (
        None if expected_improvement is None else jnp.asarray(expected_improvement, dt)
    )

    def try_fraction(frac):
        new = axpy(frac, step, params)
        improve = surrogate(new) - base
        d = kl(params, new)
        ok = (d <= max_kl) & (improve > 0) & jnp.isfinite(improve) & jnp.isfinite(d)
        if expected is not None:
            ok = ok & (improve >= accept_ratio * frac * expected)
        return ok, improve.astype(dt), jnp.asarray(d, dt)

    def cond(c):
        k, accepted, *_ = c
        return (k < max_backtracks) & ~accepted

    def body(c):
        k, _, _, _, _ = c
        frac = jnp.asarray(backtrack, dt) ** k.astype(dt)
        ok, improve, d = try_fraction(frac)
        return (
            k + 1,
            ok,
            jnp.where(ok, frac, 0),
            jnp.where(ok, improve, 0),
            jnp.where(ok, d, 0),
        )

    zero = jnp.zeros((), dt)
    k, accepted, frac, improve, d = jax.lax.while_loop(
        cond, body, (jnp.zeros((), jnp.int32), jnp.zeros((), bool), zero, zero, zero)
    )
    new = axpy(frac, step, params)
    return LineSearchResult(new, accepted, frac, improve, d, k)
