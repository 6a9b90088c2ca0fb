r"""An optax transformation that preconditions updates by a policy's damped Fisher.

.. math:: u \;\mapsto\; (F(w) + \lambda I)^{-1} u \quad\text{or, with a KL budget
   } \delta,\quad \sqrt{\frac{2\delta}{u^\top (F + \lambda I)^{-1} u}}\,
   (F + \lambda I)^{-1} u

:math:`F(w)` is the policy Fisher of :func:`~symfisher.natural.policy_fvp` at the
current weights and states, the solve is :func:`~symfisher.natural.conjugate_gradient`.
Chain it with a learning rate and the sign of your objective, e.g.
``optax.chain(scale_by_fisher(apply_fn, "diag_gaussian", damping=1e-2),
optax.scale(-lr))`` to minimise a loss by natural gradient descent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from symfisher.natural._tree import nonnegative, positive, vdot
from symfisher.natural.cg import conjugate_gradient
from symfisher.natural.family_kernels import FamilyLike, family_kernels
from symfisher.natural.network import ApplyFn, policy_fvp


class ScaleByFisherState(NamedTuple):
    r"""Diagnostics of the last solve.

    Attributes:
      residual: final conjugate-gradient residual norm :math:`\|r\|`.
      iterations: conjugate-gradient steps taken.
    """

    residual: jax.Array
    iterations: jax.Array


def scale_by_fisher(
    apply_fn: ApplyFn,
    family: FamilyLike,
    *,
    damping: float = 1e-3,
    iters: int = 10,
    max_kl: float | None = None,
    states: Any = None,
    path: str | Path | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Precondition updates by :math:`(F(w) + \lambda I)^{-1}`, the damped policy Fisher.

    Args:
      apply_fn: ``apply_fn(params, states) -> (N, P)`` family parameters per
        state (see :func:`~symfisher.natural.policy_fvp`).
      family: the policy's distribution family (name or object).
      damping: :math:`\lambda \ge 0`.
      iters: conjugate-gradient iterations per update.
      max_kl: when given, rescale the preconditioned update to the KL budget
        :math:`\delta` of :func:`~symfisher.natural.npg_step` (then use a
        learning rate of 1).
      states: default states; an update may pass ``states=`` instead (optax
        forwards extra keyword arguments through ``optax.chain``).
      path: folder of a user family's generated kernels.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update(updates, state,
      params, *, states=None)`` needs ``params``.

    Raises:
      ValueError: for negative ``damping``, ``max_kl <= 0``, or (at update time)
        missing ``params`` or ``states``.
    """
    nonnegative("damping", damping)
    if max_kl is not None:
        positive("max_kl", max_kl)
    family_kernels(family, path)  # fail early on an unknown family
    default_states = states

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        dt = jnp.result_type(*leaves) if leaves else jnp.float32
        return ScaleByFisherState(jnp.zeros((), dt), jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, states=None, **extra):
        del extra
        if params is None:
            raise ValueError(
                "scale_by_fisher: update needs params (the policy weights)"
            )
        states = default_states if states is None else states
        if states is None:
            raise ValueError(
                "scale_by_fisher: no states; pass states= to scale_by_fisher or to update"
            )
        fvp = policy_fvp(apply_fn, params, states, family, path=path)
        res = conjugate_gradient(fvp, updates, damping=damping, iters=iters)
        x = res.x
        if max_kl is not None:
            quad = vdot(updates, x).real
            ok = (quad > 0) & jnp.isfinite(quad)
            size = jnp.where(ok, jnp.sqrt(2 * max_kl / jnp.where(ok, quad, 1)), 0)
            x = jax.tree.map(lambda a: jnp.asarray(size, a.dtype) * a, x)
        new_state = ScaleByFisherState(
            res.residuals[-1].astype(state.residual.dtype), res.iterations
        )
        return x, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
