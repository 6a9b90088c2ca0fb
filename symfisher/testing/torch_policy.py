r"""The reference policy FVP for a PyTorch policy: :math:`\frac1N\sum_n J_n^\top F_{\mathrm{out}}(\theta_n) J_n v`.

``apply_fn`` maps the weights and the states to the family parameters of each
state, :math:`\theta_n = f(w; s_n)` of shape ``(N, P)``. It is either

* a ``torch.nn.Module`` whose ``forward(states)`` returns them, with ``params``
  its parameters by name (``dict(module.named_parameters())``, or a subset: the
  rest stay as they are in the module), called through
  ``torch.func.functional_call``; or
* a function ``apply_fn(params, states)``, ``params`` a tensor, a list/tuple of
  tensors or a dict of them.

:math:`J_n v` is one ``torch.func.jvp``, :math:`J^\top w` one ``torch.func.vjp``,
and :math:`F_{\mathrm{out}}` is the family's generated (JAX) Fisher evaluated in
float64, so the reference shares no code with a torch kernel under test. The
weights and states are cast to float64 (a copy of the module) where that works.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from symfisher.testing.backend import is_torch


def is_torch_params(params: Any) -> bool:
    """True when ``params`` is a tensor, or a dict/list/tuple of torch tensors."""
    if is_torch(params):
        return True
    leaves = params.values() if isinstance(params, dict) else params
    if isinstance(leaves, (list, tuple)) or hasattr(leaves, "__iter__"):
        leaves = list(leaves)
        return bool(leaves) and all(is_torch(p) for p in leaves)
    return False


class TorchTree:
    """The flat view of a tensor / list / tuple / dict of tensors."""

    def __init__(self, params: Any):
        if is_torch(params):
            self.keys, self.kind = [None], "tensor"
            tensors = [params]
        elif isinstance(params, dict):
            self.keys, self.kind = list(params), "dict"
            tensors = list(params.values())
        elif isinstance(params, (list, tuple)):
            self.keys, self.kind = list(range(len(params))), type(params).__name__
            tensors = list(params)
        else:
            raise TypeError(
                "params must be a torch tensor, or a list, tuple or dict of them; "
                f"got {type(params).__name__}"
            )
        self.shapes = [tuple(t.shape) for t in tensors]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.dtype = tensors[0].dtype
        self.device = tensors[0].device
        self.size = sum(self.sizes)

    def flatten(self, tree: Any) -> np.ndarray:
        """A tree like ``params`` (or one flat tensor of the right size) as float64."""
        if is_torch(tree) and self.kind != "tensor":
            t = tree.detach().cpu()
            if t.numel() != self.size:
                raise ValueError(f"{t.numel()} numbers; params has {self.size}")
            return t.double().numpy().reshape(-1)
        leaves = self._leaves(tree)
        return np.concatenate(
            [np.asarray(t.detach().cpu().double().numpy()).reshape(-1) for t in leaves]
        )

    def _leaves(self, tree: Any) -> list:
        if self.kind == "tensor":
            return [tree]
        if self.kind == "dict":
            if not isinstance(tree, dict) or list(tree) != self.keys:
                raise ValueError("a dict with the keys of params")
            return list(tree.values())
        if not isinstance(tree, (list, tuple)) or len(tree) != len(self.keys):
            raise ValueError(f"a {self.kind} of {len(self.keys)} tensors")
        return list(tree)

    def unflatten(self, flat: np.ndarray, dtype: Any = None, device: Any = None) -> Any:
        """A flat float array as a tree like ``params`` of ``dtype``."""
        import torch

        dtype, device = dtype or self.dtype, device or self.device
        parts, i = [], 0
        for shape, n in zip(self.shapes, self.sizes, strict=True):
            parts.append(
                torch.as_tensor(
                    np.asarray(flat[i : i + n]).reshape(shape), dtype=dtype
                ).to(device)
            )
            i += n
        if self.kind == "tensor":
            return parts[0]
        if self.kind == "dict":
            return dict(zip(self.keys, parts, strict=True))
        return type(parts)(parts) if self.kind == "list" else tuple(parts)


def _as_function(apply_fn: Any, to64: bool) -> Callable:
    import torch

    if isinstance(apply_fn, torch.nn.Module):
        module = copy.deepcopy(apply_fn).double() if to64 else apply_fn

        def f(p: Any, s: Any) -> Any:
            return torch.func.functional_call(module, p, (s,), strict=False)

        return f
    return apply_fn


def torch_policy_reference(
    apply_fn: Any,
    params: Any,
    states: Any,
    fisher_out: Callable[[np.ndarray], np.ndarray],
    damping: float = 0.0,
) -> tuple[TorchTree, Callable[[np.ndarray], np.ndarray], int, int]:
    r"""``(tree, v_flat -> (F + λI) v, N, P)`` for a torch policy.

    ``fisher_out(theta)``: ``(N, P) -> (N, P, P)`` output-space Fisher, float64.
    """
    import torch

    tree = TorchTree(params)
    if isinstance(apply_fn, torch.nn.Module) and tree.kind != "dict":
        raise TypeError(
            "with a torch.nn.Module as apply_fn, params must be a dict of its "
            "parameters by name, e.g. dict(module.named_parameters())"
        )
    flat0 = tree.flatten(params)
    for to64 in (True, False):
        dtype = torch.float64 if to64 else tree.dtype
        try:
            f = _as_function(apply_fn, to64)
            s = states
            if is_torch(states) and states.is_floating_point():
                s = states.detach().to(dtype)
            w0 = tree.unflatten(flat0, dtype)
            with torch.no_grad():
                out0 = f(w0, s)
            break
        except Exception:
            if not to64:
                raise
    out0 = out0.detach()
    P = out0.shape[-1]
    theta = out0.reshape(-1, P).cpu().double().numpy()
    N = theta.shape[0]
    F = torch.as_tensor(np.array(fisher_out(theta)), dtype=dtype).to(out0.device)

    def g(w: Any) -> Any:
        return f(w, s).reshape(-1, P)

    _, vjp = torch.func.vjp(g, w0)

    def ref(v_flat: np.ndarray) -> np.ndarray:
        v = tree.unflatten(v_flat, dtype)
        _, u = torch.func.jvp(g, (w0,), (v,))
        (back,) = vjp(torch.einsum("nij,nj->ni", F, u) / N)
        return tree.flatten(back) + damping * np.asarray(v_flat, np.float64)

    return tree, ref, N, P


def assert_torch_policy_fvp_close(
    fn: Callable[[Any, Any, Any], Any],
    apply_fn: Any,
    params: Any,
    states: Any,
    fisher_out: Callable[[np.ndarray], np.ndarray],
    name: str,
    *,
    vectors: Any,
    n_vectors: int,
    seed: int,
    rtol: float | None,
    atol: float,
    damping: float,
) -> None:
    """The torch branch of :func:`symfisher.testing.assert_policy_fvp_close`."""
    from symfisher.testing.failures import _fail, _update, _Worst
    from symfisher.testing.hints import _constant_ratio, _ratio_hint
    from symfisher.testing.setup import _rtol

    tree, ref, n_states, n_out = torch_policy_reference(
        apply_fn, params, states, fisher_out, damping
    )
    if vectors is None:
        rng = np.random.default_rng([seed, 2])
        flats = [rng.standard_normal(tree.size) for _ in range(n_vectors)]
    else:
        flats = [tree.flatten(v) for v in vectors]
    worst, rt = _Worst(), None
    gots, exps = [], []
    for i, v_flat in enumerate(flats):
        v = tree.unflatten(v_flat)
        try:
            out = fn(params, states, v)
        except Exception as e:
            raise AssertionError(
                f"fn(params, states, v) raised {type(e).__name__} at direction {i} "
                f"({tree.size} weights, {n_states} states)"
            ) from e
        try:
            got = tree.flatten(out)
        except Exception as e:
            raise AssertionError(
                "fn(params, states, v) must return a tree like params (or one flat "
                f"tensor of {tree.size} numbers); got {type(out).__name__}: {e}"
            ) from e
        rt = _rtol(rtol, np.zeros(0, _np_dtype(tree.dtype))) if rt is None else rt
        exp = ref(v_flat)
        _update(worst, i, got, exp, np.full(exp.shape, np.abs(exp).max()), atol, rt)
        gots.append(got)
        exps.append(exp)
    if worst.failed:
        G, E = np.concatenate(gots), np.concatenate(exps)
        V = damping * np.concatenate(flats)
        hints = []
        if np.isfinite(G).all():
            c = _constant_ratio(G - V, E - V, np.full(E.shape, np.abs(E - V).max()))
            if c is not None:
                hints.append(
                    _action_dims_hint(c, name, n_out) or _ratio_hint(c, n_states)
                )
        else:
            hints.append("non-finite values in got")
        lam = _extra_damping(G, E, np.concatenate(flats))
        if lam is not None:
            hints.append(
                f"got = (F + {damping + lam:.6g} I) v: your FVP adds damping * v "
                f"(TRPO's cg_damping); pass damping={damping + lam:.6g} to compare "
                "with (F + damping I) v"
            )
        _fail(
            "fn(params, states, v)",
            f"{name} torch policy, {n_states} states, {tree.size} weights"
            + (f", damping {damping:g}" if damping else ""),
            worst,
            len(flats),
            f"weight entry {worst.entry[0]} (of the flattened params)",
            [],
            rt,
            atol,
            "scale = max |(F + damping I) v|",
            [h for h in hints if h],
            at="direction",
        )


def _action_dims_hint(c: float, name: str, n_out: int) -> str | None:
    """A KL averaged over the d action dimensions of a diagonal Gaussian."""
    d = n_out // 2
    if name == "diag_gaussian" and d > 1 and abs(c * d - 1) <= 1e-4:
        return (
            f"got = F v / {d} (d = {d} action dimensions): a KL averaged over "
            "action dimensions instead of summed, e.g. torch.distributions.Normal "
            "without Independent (per-dimension KL) followed by .mean()"
        )
    return None


def _extra_damping(got: np.ndarray, exp: np.ndarray, v: np.ndarray) -> float | None:
    """``λ`` when ``got - exp = λ v`` on every entry (to 1e-3 of the scale), else None."""
    d = got - exp
    lam = float(d @ v / (v @ v))
    if abs(lam) > 0 and np.all(np.abs(d - lam * v) <= 1e-3 * np.abs(lam * v).max()):
        return lam
    return None


def _np_dtype(torch_dtype: Any) -> np.dtype:
    import torch

    return np.dtype(torch.empty((), dtype=torch_dtype).numpy().dtype)
