r"""Fisher-vector products of one distribution family.

Two routes to :math:`F(\theta)\,v`:

* :func:`fvp`: the generated closed form (``sf.kernels(name).fvp``), O(P) for
  structured families, never forming :math:`F`;
* :func:`fvp_double_backprop`: the TRPO way, reverse over reverse mode,

  .. math:: F(\theta) v = \nabla_q\big(\nabla_q \mathrm{KL}(p_\theta \,\|\, p_q)
     \cdot v\big)\Big|_{q=\theta},

  used as the reference, with :func:`fvp_forward_over_reverse` (``jax.jvp`` of
  the KL gradient) next to it. Both work on any pytree of parameters, e.g. the
  weights of a policy network with ``kl`` from :func:`symfisher.natural.policy_kl`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from symfisher.natural._tree import PyTree, check_like, vdot
from symfisher.natural.family_kernels import FamilyLike, family_kernels

KL = Callable[[PyTree, PyTree], jax.Array]


def fvp(
    family: FamilyLike,
    theta: jax.Array,
    v: jax.Array,
    *,
    path: str | Path | None = None,
) -> jax.Array:
    r"""Closed-form Fisher-vector product :math:`F(\theta)\,v` from generated kernels.

    Args:
      family: a catalog name or a family object.
      theta: parameters, shape ``(..., P)`` in the family's order.
      v: direction, the shape of ``theta`` (leading axes broadcast).
      path: folder of a user family's generated kernels.

    Returns:
      :math:`F v`, shape ``broadcast(theta, v)``.

    Raises:
      ValueError: when ``v``'s last axis differs from ``theta``'s.
    """
    theta, v = jnp.asarray(theta), jnp.asarray(v)
    if v.ndim == 0 or theta.ndim == 0 or v.shape[-1] != theta.shape[-1]:
        raise ValueError(
            f"v must have the last-axis length of theta (P = "
            f"{theta.shape[-1] if theta.ndim else '?'}); got v.shape {v.shape}, "
            f"theta.shape {theta.shape}"
        )
    return family_kernels(family, path).fvp(theta, v)


def family_kl(family: FamilyLike, path: str | Path | None = None) -> KL:
    r""":math:`(\theta_p, \theta_q) \mapsto \sum_{\text{batch}} \mathrm{KL}(p \,\|\, q)` from the kernels."""
    k = family_kernels(family, path)
    return lambda p, q: jnp.sum(k.kl(p, q))


def _as_kl(kl: KL | FamilyLike) -> KL:
    return kl if callable(kl) else family_kl(kl)


def fvp_double_backprop(kl: KL | FamilyLike, theta: PyTree, v: PyTree) -> PyTree:
    r"""Reference FVP by double back-propagation of the KL (the TRPO way).

    .. math:: F v = \nabla_q \big( \nabla_q \mathrm{KL}(p_{\bar\theta} \,\|\, p_q)
       \cdot v \big) \big|_{q = \theta},
       \qquad \bar\theta = \mathrm{stop\_gradient}(\theta)

    Args:
      kl: ``kl(theta_p, theta_q) -> scalar``, or a family (its generated KL,
        summed over batch axes).
      theta: the point, any pytree (an array ``(P,)`` for a distribution, network
        weights for a policy).
      v: direction, same structure as ``theta``.

    Returns:
      :math:`F v`, same structure as ``theta``.
    """
    kl = _as_kl(kl)
    check_like("v", v, theta, "theta")
    p = jax.lax.stop_gradient(theta)

    def grad_dot_v(q):
        return vdot(jax.grad(lambda q: kl(p, q))(q), v)

    return jax.grad(grad_dot_v)(theta)


def fvp_forward_over_reverse(kl: KL | FamilyLike, theta: PyTree, v: PyTree) -> PyTree:
    r"""FVP as a Jacobian-vector product of the KL gradient (forward over reverse).

    .. math:: F v = \frac{d}{d\epsilon}\, \nabla_q \mathrm{KL}(p_{\bar\theta} \,\|\,
       p_{\theta + \epsilon v}) \big|_{\epsilon = 0}

    Arguments as in :func:`fvp_double_backprop`.
    """
    kl = _as_kl(kl)
    check_like("v", v, theta, "theta")
    p = jax.lax.stop_gradient(theta)
    return jax.jvp(jax.grad(lambda q: kl(p, q)), (theta,), (v,))[1]
