r"""K-FAC for dense policy networks, with any catalog family as the output head.

A network ``apply_fn(params, states) -> theta`` of shape ``(N, P)`` (the family's
parameters per state) whose dense layers compute :math:`s_l = a_l W_l + b_l`
gets the Kronecker-factored Fisher (Martens & Grosse 2015; ACKTR, Wu et al. 2017)

.. math::
   F_{[W_l; b_l]} \approx A_l \otimes G_l, \qquad
   A_l = \frac1N \sum_n \bar a_{l,n} \bar a_{l,n}^\top, \quad
   G_l = \frac1N \sum_n B_{l,n}^\top F_{\mathrm{out}}(\theta_n)\, B_{l,n},

with :math:`\bar a = [a, 1]` when the layer has a bias,
:math:`B_{l,n} = \partial\theta_n / \partial s_{l,n}` and :math:`F_{\mathrm{out}}`
the family's closed-form Fisher: the output side is the exact expectation over
actions (kfac-jax's ``"fisher_exact"`` mode), not a sample of labels, for every
family (Gaussian with learned :math:`\sigma`, Gamma, Beta, von Mises,
Student-t, categorical, ...). A weight gradient :math:`V` (``W``'s shape, the
bias gradient as its last row) is multiplied as :math:`V \mapsto A V G`.
:math:`G_l` is computed exactly from per-state output-side vectors
:math:`u^\top B_{l,n}`, the vector-Jacobian products of :math:`\theta` with
respect to a zero "tap" added to :math:`s_l`:

* rows :math:`u = e_r` for the columns :math:`r` of :math:`\theta` some dense
  layer reaches (a sound mask through the ``jaxpr``: a state-independent
  :math:`\log\sigma` is skipped) give the rows of :math:`B_{l,n}`, and
  :math:`G_l = \frac1N \sum_n B_{l,n}^\top (F_{\mathrm{out}} B_{l,n})` with the
  dense ``k.fisher`` (:math:`P \le 64`) or the kernels' ``fvp`` (larger
  :math:`P`: O(P) per column for structured families);
* with a square root :math:`L_n^\top L_n = F_{\mathrm{out}}(\theta_n)`
  (``fisher_sqrt`` of the kernels, shape ``(R, P)``) of no more rows than the
  reached columns, :math:`u = L_n[r]`:
  :math:`G_l = \frac1N \sum_{n,r} (L_n B_{l,n})[r]^\top (L_n B_{l,n})[r]`.

Both are exact; neither samples actions nor takes a per-state eigendecomposition
(a batched ``eigh`` of 2048 18 x 18 Fishers costs ~90 ms on CPU).

The damped inverse is exact for the damped Kronecker product (not the factored
Tikhonov :math:`(A + \pi\sqrt\lambda I)^{-1} \otimes (G + \sqrt\lambda/\pi\, I)^{-1}`
of Martens & Grosse): with :math:`A = Q_A \operatorname{diag}(\alpha) Q_A^\top`,
:math:`G = Q_G \operatorname{diag}(\gamma) Q_G^\top`,

.. math:: (A \otimes G + \lambda I)^{-1} V = Q_A \big[(Q_A^\top V Q_G) \oslash
   (\alpha \gamma^\top + \lambda)\big] Q_G^\top,

where a denominator :math:`\le \varepsilon \max` (the dtype's machine epsilon)
counts as 0 and its component is dropped (the pseudo-inverse, for
:math:`\lambda = 0` on a singular factor). Parameters outside dense layers (a
state-independent :math:`\log\sigma`, a scale, an unused leaf) form one more
block, their exact Fisher
:math:`F_o = \frac1N \sum_n J_{o,n}^\top F_{\mathrm{out}}(\theta_n) J_{o,n}`
(per-state Jacobians by ``jax.jvp``), inverted as
:math:`(F_o + \lambda I)^{-1}` by ``eigh``. Blocks are independent
(block-diagonal approximation). On CPU the ``eigh`` calls run in LAPACK from
scipy's OpenBLAS, whose own threads compete with XLA's: on a loaded 2-core
machine a 65 x 65 ``eigh`` took ~8 ms with the default threads and ~0.4 ms with
``OPENBLAS_NUM_THREADS=1`` (set before numpy loads).

Dense layers are found in the ``jaxpr`` of ``apply_fn`` (traced with
``jax.disable_jit`` so that jitted helpers are inlined): a 2-D parameter leaf
whose only use is as the right operand of one ``dot_general`` contracting the
last axis of the other operand (``a @ W``, or ``a @ W.T``; dtype conversions
and a transpose may come between), plus a 1-D leaf added to that product (the
product used nowhere else) as its bias. The layer inputs :math:`a_l` are
recorded and the taps added by re-evaluating the ``jaxpr``. The factorisation
assumes that :math:`\theta_n` depends on state :math:`n` only (no batch
statistics across states).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Literal

from symfisher.natural._tree import PyTree, check_like, nonnegative
from symfisher.natural.family_kernels import FamilyLike, family_kernels, family_name
from symfisher.natural.network import ApplyFn

__all__ = ["KFAC", "DenseLayer", "kfac"]

# value-preserving one-operand primitives a weight or bias may pass through
_CASTS = {"convert_element_type", "copy", "copy_p"}


class DenseLayer(NamedTuple):
    r"""One dense layer :math:`s = a W + b` found in ``apply_fn``.

    Attributes:
      weight: path of the weight leaf in ``params`` (``jax.tree_util.keystr``).
      bias: path of the bias leaf, or ``None``.
      transposed: ``True`` when the leaf is stored ``(d_out, d_in)`` and used as
        ``a @ W.T`` (the PyTorch layout).
    """

    weight: str
    bias: str | None
    transposed: bool


class KFAC(NamedTuple):
    r"""K-FAC of a policy network (see the module docstring for the formulas).

    Attributes:
      factors: per dense layer :math:`(A_l, G_l)`, shapes
        ``(d_in [+1], d_in [+1])`` and ``(d_out, d_out)``.
      layers: the :class:`DenseLayer` of each factor pair.
      other: paths of the parameter leaves outside dense layers (ravelled in
        this order in ``other_fisher``).
      other_fisher: their exact Fisher block :math:`F_o`, ``(n_o, n_o)``.
      damping: :math:`\lambda`.
      apply_inverse: ``g -> (F_{KFAC} + \lambda I)^{-1} g`` on a pytree shaped
        like ``params`` (the ACKTR natural gradient; a preconditioner for
        :func:`~symfisher.natural.conjugate_gradient`).
      matvec: ``v -> F_{KFAC} v`` (undamped) on a pytree shaped like ``params``.
    """

    factors: tuple[tuple[jax.Array, jax.Array], ...]
    layers: tuple[DenseLayer, ...]
    other: tuple[str, ...]
    other_fisher: jax.Array
    damping: Any
    apply_inverse: Callable[[PyTree], PyTree]
    matvec: Callable[[PyTree], PyTree]


class _Layer(NamedTuple):
    eqn: int  # index of the dot_general equation
    weight: int  # leaf index
    bias: int | None
    transposed: bool


# --------------------------------------------------------------------------
# finding the dense layers


def _uses(jaxpr) -> dict[Any, list[tuple[int, int]]]:
    """Uses of each variable: ``[(equation, operand position)]``, ``(-1, i)`` for output i."""
    uses: dict[Any, list[tuple[int, int]]] = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for j, v in enumerate(eqn.invars):
            if not isinstance(v, Literal):
                uses.setdefault(v, []).append((i, j))
    for j, v in enumerate(jaxpr.outvars):
        if not isinstance(v, Literal):
            uses.setdefault(v, []).append((-1, j))
    return uses


def _only_use(uses, var) -> tuple[int, int] | str:
    """The single (equation, position) using ``var``, or why there is none."""
    u = uses.get(var, [])
    if not u:
        return "unused"
    if len(u) > 1:
        return f"used {len(u)} times"
    if u[0][0] < 0:
        return "returned by apply_fn"
    return u[0]


def _weight_layer(jaxpr, uses, var, index) -> _Layer | str:
    """Follow a 2-D leaf to its ``dot_general``; a reason string when it is no layer."""
    transposed = False
    while True:
        use = _only_use(uses, var)
        if isinstance(use, str):
            return use
        i, pos = use
        eqn = jaxpr.eqns[i]
        name = eqn.primitive.name
        if name in _CASTS:
            var = eqn.outvars[0]
        elif name == "transpose" and tuple(eqn.params["permutation"]) == (1, 0):
            transposed, var = not transposed, eqn.outvars[0]
        elif name == "dot_general":
            (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0]
            if pos != 1:
                return "used as the left operand of a matrix product (W @ a)"
            if lb or rb or len(rc) != 1 or tuple(lc) != (len(lhs.aval.shape) - 1,):
                return (
                    "used in a dot_general that is not a @ W (one contraction "
                    "with the last axis of a, no batch axes)"
                )
            return _Layer(i, index, None, transposed ^ (rc[0] == 1))
        else:
            return f"used by {name!r}"


def _bias_target(jaxpr, uses, var, dense_out: dict) -> int | str:
    """Follow a 1-D leaf to an ``add`` with a dense output; that layer's index."""
    ax = 0
    while True:
        use = _only_use(uses, var)
        if isinstance(use, str):
            return use
        i, pos = use
        eqn = jaxpr.eqns[i]
        name, shape = eqn.primitive.name, var.aval.shape
        if name in _CASTS:
            pass
        elif name == "broadcast_in_dim":
            ax = eqn.params["broadcast_dimensions"][ax]
        elif name == "squeeze":
            ax -= sum(d < ax for d in eqn.params["dimensions"])
        elif name == "reshape":
            new = tuple(eqn.outvars[0].aval.shape)
            if math.prod(shape) != shape[ax]:  # more than the leaf axis is > 1
                return "reshaped together with other axes"
            hits = [d for d, n in enumerate(new) if n == shape[ax]]
            if shape[ax] == 1:
                hits = hits[-1:]
            if len(hits) != 1:
                return "reshaped ambiguously"
            ax = hits[0]
        elif name in ("add", "add_any"):
            other = eqn.invars[1 - pos]
            layer = dense_out.get(other)
            out = eqn.outvars[0].aval.shape
            if layer is None:
                return "added to something that is not a dense layer's a @ W"
            if len(shape) != len(out) or ax != len(out) - 1:
                return "not added along the last axis of a @ W"
            if len(uses.get(other, [])) != 1:
                return "a @ W is also used without the bias"
            return layer
        else:
            return f"used by {name!r}"
        var = eqn.outvars[0]


def _find_layers(closed, paths: list[str], n_leaves: int):
    """Dense layers (in equation order) and ``{leaf index: reason}`` for the rest."""
    jaxpr = closed.jaxpr
    uses = _uses(jaxpr)
    layers: list[_Layer] = []
    reasons: dict[int, str] = {}
    for k, var in enumerate(jaxpr.invars[:n_leaves]):
        if len(var.aval.shape) == 2:
            found = _weight_layer(jaxpr, uses, var, k)
            if isinstance(found, _Layer):
                layers.append(found)
                continue
            reasons[k] = found
        elif len(var.aval.shape) != 1:
            reasons[k] = f"a {len(var.aval.shape)}-D leaf"
    layers.sort(key=lambda layer: layer.eqn)
    dense_out = {jaxpr.eqns[layer.eqn].outvars[0]: j for j, layer in enumerate(layers)}
    for k, var in enumerate(jaxpr.invars[:n_leaves]):
        if len(var.aval.shape) != 1:
            continue
        target = _bias_target(jaxpr, uses, var, dense_out)
        if isinstance(target, str):
            reasons[k] = target
        elif layers[target].bias is not None:
            reasons[k] = f"a second bias of {paths[layers[target].weight]}"
        else:
            layers[target] = layers[target]._replace(bias=k)
    return layers, reasons


# up to this many family parameters the output Fisher is used as a dense matrix
_DENSE_P = 64
_ELEMENTWISE = {
    "abs", "add", "atan2", "clamp", "convert_element_type", "copy", "copy_p", "cos",
    "div", "erf", "exp", "exp2", "expm1", "integer_pow", "log", "log1p", "logistic",
    "max", "min", "mul", "neg", "pow", "rsqrt", "select_n", "sign", "sin", "sqrt",
    "square", "sub", "tan", "tanh",
}  # fmt: skip


def _reached_columns(closed, layers, P: int) -> np.ndarray:
    """Which of theta's P columns may depend on a dense layer's output.

    A sound over-approximation: a mask per variable over its last axis, exact
    through elementwise primitives and ``concatenate`` along the last axis, and
    "every column" after any other primitive with a dependent input.
    """
    jaxpr = closed.jaxpr
    taps = {layer.eqn for layer in layers}
    mask: dict[Any, Any] = {}

    def cols(v, width: int) -> np.ndarray:
        m = None if isinstance(v, Literal) else mask.get(v)
        if m is None:
            return np.zeros(width, bool)
        if m is True or len(m) != width:
            return np.full(width, bool(np.any(m)))
        return m

    for i, eqn in enumerate(jaxpr.eqns):
        deps = [mask.get(v) for v in eqn.invars if not isinstance(v, Literal)]
        if i in taps:
            out = True
        elif all(d is None for d in deps):
            out = None
        elif eqn.primitive.name in _ELEMENTWISE and eqn.outvars[0].aval.shape:
            width = eqn.outvars[0].aval.shape[-1]
            out = np.any([cols(v, width) for v in eqn.invars], axis=0)
        elif (
            eqn.primitive.name == "concatenate"
            and eqn.params["dimension"] == len(eqn.outvars[0].aval.shape) - 1
        ):
            out = np.concatenate([cols(v, v.aval.shape[-1]) for v in eqn.invars])
        else:
            out = True
        for v in eqn.outvars:
            mask[v] = out
    return cols(jaxpr.outvars[0], P)


def _evaluate(closed, layers, leaves, state_leaves, taps):
    """Run the jaxpr; record each layer's input ``a`` and add ``taps[l]`` to ``a @ W``."""
    jaxpr = closed.jaxpr
    env: dict[Any, Any] = {}
    at = {layer.eqn: j for j, layer in enumerate(layers)}
    acts: list[Any] = [None] * len(layers)

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for v, x in zip(jaxpr.constvars, closed.consts, strict=True):
        env[v] = x
    for v, x in zip(jaxpr.invars, [*leaves, *state_leaves], strict=True):
        env[v] = x
    for i, eqn in enumerate(jaxpr.eqns):
        invals = [read(v) for v in eqn.invars]
        bind = eqn.primitive.get_bind_params(eqn.params)
        subfuns, bind = bind if isinstance(bind, tuple) else ((), bind)
        ans = eqn.primitive.bind(*subfuns, *invals, **bind)
        if i in at:
            acts[at[i]] = invals[0]
            ans = ans + taps[at[i]]
        outs = ans if eqn.primitive.multiple_results else [ans]
        for v, x in zip(eqn.outvars, outs, strict=True):
            env[v] = x
    return read(jaxpr.outvars[0]), acts


# up to this many reached columns, F U is formed elementwise (r^2 N k products)
_ELEMENTWISE_R = 16


def _row_gram(X: jax.Array, Y: jax.Array) -> jax.Array:
    r""":math:`\sum_{r,n} X_{r,n}^\top Y_{r,n}` of ``(R, N..., k)`` arrays, ``(k, k)``.

    One batched product over the R row blocks, then their sum: a single
    ``X^T Y`` contracting the long ``R N`` axis runs 2-3x slower on CPU (the
    transposed-operand product leaves the fast matrix-multiply path).
    """
    k = X.shape[-1]
    X, Y = X.reshape(X.shape[0], -1, k), Y.reshape(Y.shape[0], -1, Y.shape[-1])
    return jnp.sum(jnp.einsum("rni,rnj->rij", X, Y), axis=0)


def _restrict(F: jax.Array, reach: np.ndarray, P: int) -> jax.Array:
    """``F[..., reach, reach]`` of a batch of (P, P) matrices (a slice when ``reach`` is a range)."""
    if len(reach) == P:
        return F
    if len(reach) == 0:
        return F[..., :0, :0]
    lo, hi = int(reach[0]), int(reach[-1]) + 1
    if hi - lo == len(reach):
        return F[..., lo:hi, lo:hi]
    return jnp.take(jnp.take(F, reach, axis=-2), reach, axis=-1)


# --------------------------------------------------------------------------
# damped inverses


def _inv_eigs(d: jax.Array) -> jax.Array:
    """1/d, with 0 where d <= eps max(d) (the pseudo-inverse of a PSD spectrum)."""
    eps = jnp.finfo(d.dtype).eps
    keep = d > eps * jnp.max(d)
    return jnp.where(keep, 1 / jnp.where(keep, d, 1), 0)


def _eigh_psd(M: jax.Array) -> tuple[jax.Array, jax.Array]:
    w, Q = jnp.linalg.eigh((M + M.T) / 2)
    return jnp.maximum(w, 0), Q


# --------------------------------------------------------------------------
# the public function


def kfac(
    apply_fn: ApplyFn,
    params: PyTree,
    states: Any,
    family: FamilyLike,
    damping: float = 0.0,
    *,
    path: str | Path | None = None,
    max_other: int = 1024,
) -> KFAC:
    r"""K-FAC factors of a dense policy network and its damped inverse.

    .. math:: (F_{KFAC} + \lambda I)^{-1} g, \qquad F_{KFAC} =
       \operatorname{blockdiag}(A_1 \otimes G_1, \dots, A_L \otimes G_L, F_o)

    Args:
      apply_fn: ``apply_fn(params, states) -> theta``, shape ``(N, P)``, the
        family's parameters per state in family order (as in
        :func:`~symfisher.natural.policy_fvp`); the leading axes of every dense
        layer's ``a @ W`` must be those of ``theta``.
      params: the weights, a pytree of float arrays.
      states: the states, passed to ``apply_fn`` unchanged (a pytree of arrays).
      family: the output head, a family name or object (its closed-form Fisher).
      damping: :math:`\lambda \ge 0` of ``apply_inverse``.
      path: folder of a user family's generated kernels.
      max_other: the largest number of parameters outside dense layers (their
        exact Fisher block is ``max_other``-squared at most).

    Returns:
      :class:`KFAC`: the factors, the exact block of the other parameters, and
      ``apply_inverse`` / ``matvec``, pure functions of a pytree shaped like
      ``params`` (usable under ``jit``; build once per update).

    Raises:
      ValueError: naming the parameter when more than ``max_other`` numbers lie
        outside dense layers (with the reason each such leaf is not a layer),
        when a layer's leading axes differ from ``theta``'s, or when
        ``apply_fn`` does not return ``(N, P)`` parameters of the family.
    """
    nonnegative("damping", damping)
    fam = family_name(family)
    k = family_kernels(family, path)
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [jax.tree_util.keystr(p) for p, _ in with_path]
    leaves = [jnp.asarray(x) for _, x in with_path]
    for name, x in zip(paths, leaves, strict=True):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"params{name} must be a floating array; got {x.dtype}")
    state_leaves, state_def = jax.tree.flatten(states)

    def flat_apply(leaves, state_leaves):
        return apply_fn(
            jax.tree.unflatten(treedef, leaves),
            jax.tree.unflatten(state_def, state_leaves),
        )

    spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), x.dtype), leaves)
    sspec = [
        jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in state_leaves
    ]
    with jax.disable_jit():
        closed = jax.make_jaxpr(flat_apply)(spec, sspec)
    out = closed.jaxpr.outvars
    if len(out) != 1 or not jnp.issubdtype(out[0].aval.dtype, jnp.floating):
        raise ValueError(
            f"apply_fn(params, states) must return one floating array of {fam} "
            f"parameters per state, shape (N, P); got {[v.aval for v in out]}"
        )
    theta_shape = tuple(out[0].aval.shape)
    try:
        jax.eval_shape(k.fvp, out[0].aval, out[0].aval)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"apply_fn(params, states) returned shape {theta_shape}, not (N, P) "
            f"parameters of family {fam!r}: {e}"
        ) from e
    layers, reasons = _find_layers(closed, paths, len(leaves))
    in_layer = {i for layer in layers for i in (layer.weight, layer.bias)}
    other = [i for i in range(len(leaves)) if i not in in_layer]
    n_other = sum(leaves[i].size for i in other)
    if n_other > max_other:
        big = max(other, key=lambda i: leaves[i].size)
        raise ValueError(
            f"kfac: {n_other} parameters lie outside dense layers s = a @ W + b, "
            f"more than max_other={max_other} (their Fisher block is exact and "
            f"dense); the largest is params{paths[big]} (shape "
            f"{leaves[big].shape}): {reasons.get(big, 'not a dense layer')}"
        )
    for layer in layers:
        s_shape = tuple(closed.jaxpr.eqns[layer.eqn].outvars[0].aval.shape)
        if s_shape[:-1] != theta_shape[:-1]:
            raise ValueError(
                f"kfac: the dense layer of params{paths[layer.weight]} has outputs "
                f"of shape {s_shape}, whose leading axes differ from those of "
                f"theta {theta_shape}: each state's outputs must come from its own "
                f"row"
            )

    n = math.prod(theta_shape[:-1])
    P = theta_shape[-1]
    zero_taps = [
        jnp.zeros(v.aval.shape, v.aval.dtype)
        for v in (closed.jaxpr.eqns[layer.eqn].outvars[0] for layer in layers)
    ]
    leaves_sg = [jax.lax.stop_gradient(x) for x in leaves]
    theta, tap_vjp, acts = jax.vjp(
        lambda taps: _evaluate(closed, layers, leaves_sg, state_leaves, taps),
        zero_taps,
        has_aux=True,
    )
    theta = jax.lax.stop_gradient(theta)
    # the columns of theta some dense layer reaches (a state-independent log
    # sigma is not): e_r rows for the others would be zero
    reach = np.flatnonzero(_reached_columns(closed, layers, P))
    fisher_sqrt = getattr(k, "fisher_sqrt", None)
    if fisher_sqrt is not None:
        R = jax.eval_shape(fisher_sqrt, theta).shape[-2]
        if R > len(reach):  # fewer backward passes with e_r rows
            fisher_sqrt = None
    lead = (1,) * (len(theta_shape) - 1)
    E = jnp.asarray(np.eye(P)[reach], theta.dtype)  # (|reach|, P)
    if fisher_sqrt is not None:
        L = jnp.moveaxis(fisher_sqrt(theta), -2, 0)  # (R, N..., P)
    else:
        L = jnp.broadcast_to(
            E.reshape((len(reach), *lead, P)), (len(reach), *theta_shape)
        )

    # small P: F_n U_n as a batched product with the dense Fisher restricted to
    # the reached columns, (N..., |reach|, |reach|) (U_n's other rows are 0)
    F_dense = None
    if fisher_sqrt is None and P <= _DENSE_P:
        F_dense = _restrict(k.fisher(theta), reach, P)

    def gram(rows: jax.Array) -> jax.Array:
        """(1/N) sum_n U_n^T F_n U_n from rows[r] = L_n[r] U_n (or e_r^T U_n, r in reach)."""
        if fisher_sqrt is not None:
            return _row_gram(rows, rows) / n
        if F_dense is not None and len(reach) <= _ELEMENTWISE_R:
            # (F_n U_n)[q] = sum_r F_n[q, r] U_n[r] in the rows' own (r, N..., k)
            # layout: no transposes of the large arrays
            # (a sum written out: as a reduction XLA materialises the
            # broadcast F, r times the rows' size, and reduces it slowly)
            Ft = jnp.moveaxis(F_dense, (-2, -1), (0, 1))[..., None]  # (q, r, N..., 1)
            FU = sum(Ft[:, j] * rows[j] for j in range(len(reach)))
        else:
            U = jnp.moveaxis(rows, 0, -2)  # (N..., |reach|, k)
            if F_dense is not None:
                FU = jnp.einsum("...pq,...qk->...pk", F_dense, U)
            else:
                # U padded to P rows and F U cut back to |reach| by one-hot
                # products (a scatter/gather here is ~10x slower on CPU)
                full = len(reach) == P
                U_full = U if full else jnp.einsum("...rk,rp->...pk", U, E)
                FU = jax.vmap(lambda u: k.fvp(theta, u), in_axes=-1, out_axes=-1)(
                    U_full
                )
                FU = FU if full else jnp.einsum("...pk,rp->...rk", FU, E)
            FU = jnp.moveaxis(FU, -2, 0)
        # materialised, then the products: F U fused into the contraction
        # recomputes the family's fvp per product (measured 5-10x slower on CPU)
        FU = jax.lax.optimization_barrier(FU)
        M = _row_gram(rows, FU) / n
        return (M + M.T) / 2

    factors = []
    if layers:
        (rows,) = jax.vmap(tap_vjp)(L)
        for layer, a, r in zip(layers, acts, rows, strict=True):
            a = jax.lax.stop_gradient(a).reshape(-1, a.shape[-1])
            if layer.bias is not None:
                a = jnp.concatenate([a, jnp.ones_like(a[:, :1])], axis=1)
            factors.append((a.T @ a / n, gram(r)))

    dt = jnp.result_type(*leaves) if leaves else theta.dtype
    sizes = [leaves[i].size for i in other]
    cuts = [int(c) for c in np.cumsum(sizes)[:-1]]
    if other:

        def theta_of_other(xs):
            full = list(leaves_sg)
            for i, x in zip(other, xs, strict=True):
                full[i] = x
            return _evaluate(closed, layers, full, state_leaves, zero_taps)[0]

        _, jvp_other = jax.linearize(theta_of_other, [leaves_sg[i] for i in other])
        J = jax.vmap(lambda e: jvp_other(_split(e, cuts, [leaves[i] for i in other])))(
            jnp.eye(n_other, dtype=dt)
        )  # (n_o, N..., P): column j of every J_n
        if fisher_sqrt is not None:
            F_other = gram(jnp.einsum("r...p,k...p->r...k", L, J))
        else:
            FJ = jax.vmap(lambda u: k.fvp(theta, u))(J)  # (n_o, N..., P)
            F_other = jnp.einsum("k...p,j...p->kj", J, FJ) / n
            F_other = (F_other + F_other.T) / 2
    else:
        F_other = jnp.zeros((0, 0), dt)
    return _result(
        treedef,
        leaves,
        paths,
        layers,
        tuple(factors),
        other,
        cuts,
        F_other,
        damping,
        params,
    )


def _split(e: jax.Array, cuts: list[int], like: list[jax.Array]) -> list[jax.Array]:
    """A flat vector as arrays shaped and typed like ``like``."""
    parts = jnp.split(e, cuts) if cuts else [e]
    return [
        p.reshape(x.shape).astype(x.dtype) for p, x in zip(parts, like, strict=True)
    ]


def _result(
    treedef, leaves, paths, layers, factors, other, cuts, F_other, damping, params
):
    """The :class:`KFAC` with its ``apply_inverse`` and ``matvec`` closures."""
    eigs = [(_eigh_psd(A), _eigh_psd(G)) for A, G in factors]
    eig_other = _eigh_psd(F_other) if other else None
    like_other = [leaves[i] for i in other]

    def leaves_of(name: str, v: PyTree) -> list[jax.Array]:
        check_like(name, v, params, "params")
        return [jnp.asarray(x) for x in jax.tree.leaves(v)]

    def stack(layer: _Layer, vs: list[jax.Array]) -> jax.Array:
        V = vs[layer.weight].T if layer.transposed else vs[layer.weight]
        if layer.bias is not None:
            V = jnp.concatenate([V, vs[layer.bias][None]], axis=0)
        return V

    def unstack(layer: _Layer, X: jax.Array, out: list) -> None:
        if layer.bias is not None:
            X, out[layer.bias] = X[:-1], X[-1].astype(leaves[layer.bias].dtype)
        out[layer.weight] = (X.T if layer.transposed else X).astype(
            leaves[layer.weight].dtype
        )

    def other_vec(vs: list[jax.Array]) -> jax.Array:
        return jnp.concatenate([vs[i].reshape(-1) for i in other])

    def put_other(x: jax.Array, out: list) -> None:
        for i, part in zip(other, _split(x, cuts, like_other), strict=True):
            out[i] = part

    def apply_inverse(g: PyTree) -> PyTree:
        vs = leaves_of("g", g)
        out = list(vs)
        for layer, ((a, QA), (c, QG)) in zip(layers, eigs, strict=True):
            V = stack(layer, vs).astype(QA.dtype)
            D = _inv_eigs(a[:, None] * c[None, :] + jnp.asarray(damping, a.dtype))
            unstack(layer, QA @ ((QA.T @ V @ QG) * D) @ QG.T, out)
        if other:
            w, Q = eig_other
            v = other_vec(vs).astype(Q.dtype)
            put_other(
                Q @ (_inv_eigs(w + jnp.asarray(damping, w.dtype)) * (Q.T @ v)), out
            )
        return jax.tree.unflatten(treedef, out)

    def matvec(v: PyTree) -> PyTree:
        vs = leaves_of("v", v)
        out = list(vs)
        for layer, (A, G) in zip(layers, factors, strict=True):
            unstack(layer, A @ stack(layer, vs).astype(A.dtype) @ G, out)
        if other:
            put_other(F_other @ other_vec(vs).astype(F_other.dtype), out)
        return jax.tree.unflatten(treedef, out)

    return KFAC(
        factors=factors,
        layers=tuple(
            DenseLayer(
                paths[layer.weight],
                None if layer.bias is None else paths[layer.bias],
                layer.transposed,
            )
            for layer in layers
        ),
        other=tuple(paths[i] for i in other),
        other_fisher=F_other,
        damping=damping,
        apply_inverse=apply_inverse,
        matvec=matvec,
    )
