r"""Fisher-vector products of a neural policy through its output-space Fisher.

A policy maps states to the parameters of a distribution family,
:math:`\theta(s) = f_w(s)` (``apply_fn(params, states)``, shape ``(N, P)``: for
``diag_gaussian`` the means and the log standard deviations
:math:`[\mu(s), \log\sigma]`, for ``categorical_softmax`` the logits). Its Fisher
in the weights :math:`w` is the state average of the pulled-back output Fisher,

.. math:: F(w)\,v = \frac1N \sum_{n=1}^{N} J_n^\top\, F_{\mathrm{out}}(\theta(s_n))\,
   J_n v, \qquad J_n = \frac{\partial \theta(s_n)}{\partial w},

where :math:`F_{\mathrm{out}}` is the family's closed-form Fisher (the generated
``fvp``, O(P) per state). :math:`J v` is one forward-mode product (``jax.jvp``,
linearised once with ``jax.linearize`` so that repeated products reuse the forward
pass) and :math:`J^\top u` one reverse-mode product (the transpose of that linear
map, i.e. ``jax.vjp``). This equals the Hessian of the mean KL in :math:`w` at
:math:`w' = w` (:func:`policy_kl` with
:func:`~symfisher.natural.fvp_double_backprop`), without differentiating twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from symfisher.natural._tree import PyTree, check_like
from symfisher.natural.family_kernels import FamilyLike, family_kernels, family_name

ApplyFn = Callable[[PyTree, Any], jax.Array]


def _outputs(apply_fn: ApplyFn, params: PyTree, states: Any, k: Any, fam: str):
    """``apply_fn`` as a function of the weights, after checking its output shape."""

    def f(p):
        return apply_fn(p, states)

    shape = jax.eval_shape(f, params)
    if not hasattr(shape, "shape") or not jnp.issubdtype(shape.dtype, jnp.floating):
        raise ValueError(
            f"apply_fn(params, states) must return one floating array of "
            f"{fam} parameters per state, shape (N, P); got {shape}"
        )
    try:
        jax.eval_shape(k.fvp, shape, shape)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"apply_fn(params, states) returned shape {shape.shape}, not "
            f"(N, P) parameters of family {fam!r}: {e}"
        ) from e
    n = math.prod(shape.shape[:-1])
    return f, n


def policy_fvp(
    apply_fn: ApplyFn,
    params: PyTree,
    states: Any,
    family: FamilyLike,
    *,
    path: str | Path | None = None,
) -> Callable[[PyTree], PyTree]:
    r"""The Fisher-vector product :math:`v \mapsto F(w)\,v` of a policy network.

    .. math:: F(w)\,v = \frac1N \sum_n J_n^\top F_{\mathrm{out}}(\theta(s_n)) J_n v

    Args:
      apply_fn: ``apply_fn(params, states) -> theta`` of shape ``(N, P)`` (any
        leading axes; all are averaged over): the family's parameters per
        state, in family order (``diag_gaussian``: :math:`[\mu(s), \log\sigma]`;
        a state-independent :math:`\log\sigma` is broadcast inside
        ``apply_fn``; ``categorical_softmax``: the logits).
      params: the network weights :math:`w`, any pytree of float arrays.
      states: the states :math:`s_1..s_N`, passed to ``apply_fn`` unchanged.
      family: a family name or object (its generated ``fvp`` is the output
        Fisher).
      path: folder of a user family's generated kernels.

    Returns:
      ``fvp(v)``, a pure function of a direction ``v`` with the structure of
      ``params``, returning :math:`F v` with that structure. Build it once per
      update (it holds the linearised forward pass) and call it many times,
      e.g. in :func:`~symfisher.natural.conjugate_gradient`.

    Raises:
      ValueError: when ``apply_fn``'s output is not ``(N, P)`` parameters of the
        family, or (when called) ``v`` is not shaped like ``params``.
    """
    fam = family_name(family)
    k = family_kernels(family, path)
    f, n = _outputs(apply_fn, params, states, k, fam)
    theta, jvp_fn = jax.linearize(f, params)
    vjp_fn = jax.linear_transpose(jvp_fn, params)
    theta = jax.lax.stop_gradient(theta)

    def fvp(v: PyTree) -> PyTree:
        check_like("v", v, params, "params")
        u = k.fvp(theta, jvp_fn(v)) / jnp.asarray(n, theta.dtype)
        (out,) = vjp_fn(u)
        return out

    return fvp


def policy_kl(
    apply_fn: ApplyFn,
    states: Any,
    family: FamilyLike,
    *,
    path: str | Path | None = None,
) -> Callable[[PyTree, PyTree], jax.Array]:
    r"""Mean KL between two weight settings of a policy, over the states.

    .. math:: \overline{\mathrm{KL}}(w, w') = \frac1N \sum_n
       \mathrm{KL}\big(p_{\theta_w(s_n)} \,\|\, p_{\theta_{w'}(s_n)}\big)

    Args:
      apply_fn: as in :func:`policy_fvp`.
      states: the states.
      family: a family name or object (its generated ``kl``).
      path: folder of a user family's generated kernels.

    Returns:
      ``kl(params_old, params_new) -> scalar``, e.g. for
      :func:`~symfisher.natural.fvp_double_backprop` (the TRPO reference) or the
      KL constraint of :func:`~symfisher.natural.line_search`.
    """
    k = family_kernels(family, path)

    def kl(params_old: PyTree, params_new: PyTree) -> jax.Array:
        return jnp.mean(
            k.kl(apply_fn(params_old, states), apply_fn(params_new, states))
        )

    return kl
