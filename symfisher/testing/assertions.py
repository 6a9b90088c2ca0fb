"""The assertions: Fisher, FVP, natural gradient, policy FVP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.testing.backend import adapt, to_numpy
from symfisher.testing.compare import Case, check_cases
from symfisher.testing.failures import _entry_name, _fail, _update, _Worst
from symfisher.testing.hints import (
    _constant_ratio,
    _damping_hint,
    _matrix_hints,
    _ratio_hint,
)
from symfisher.testing.points import inward, rounded_points
from symfisher.testing.setup import (
    N_POINTS,
    _check_atol,
    _directions,
    _dtype,
    _fmt,
    _ref,
    _resolve,
    _round,
    _rtol,
)


def assert_fisher_close(
    fn: Callable[[jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    n_points: int = N_POINTS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    allow_boundary: bool = False,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``fn(theta)`` equals the Fisher matrix :math:`F(\theta)` of ``family``.

    .. math:: |G_{ij} - F_{ij}| \le \mathrm{atol} + \mathrm{rtol}\sqrt{F_{ii}F_{jj}}

    Args:
      fn: ``fn(theta) -> (P, P)``, ``theta`` of shape ``(P,)`` in family order.
      family: a catalog name or a family object (``sf.family(name, K=5)``).
      points: ``(n, P)`` parameter points; default ``n_points`` seeded random
        valid points.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float);
        references are computed at the rounded values ``fn`` receives.
      batched: also call ``fn`` on at least 3 stacked points (a leading batch
        axis) and require the stacked single results.
      allow_boundary: points may sit on the domain's closure where the
        quantity has a finite limit (:mod:`symfisher.testing.points`).
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      AssertionError: naming the worst entry, the point, expected vs got, and a
        hint when the error matches a known bug pattern.
    """
    fn = adapt(fn, backend, grad_args=(0,))
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    cases = []
    for theta in pts:
        F = _ref(fam.kernels.fisher, inward(fam, theta))
        d = np.sqrt(np.abs(np.diag(F)))
        cases.append(Case((theta,), F, np.outer(d, d), [f"  theta = {_fmt(theta)}"]))

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], w: int) -> list[str]:
        return _matrix_hints(fam, inward(fam, cs[w].args[0]), gots[w], cs[w].expected)

    check_cases(
        fn,
        "fn(theta)",
        (fam.P, fam.P),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = sqrt(F_ii F_jj)",
        entry_name=lambda e: _entry_name(fam, e),
        hints=hints,
    )


def _probe_matrix(
    fn: Callable, theta: np.ndarray, P: int, dt: np.dtype
) -> np.ndarray | None:
    """The matrix ``[fn(theta, e_1), ..., fn(theta, e_P)]`` (for hints), or None."""
    if P > 64:
        return None
    try:
        cols = [
            to_numpy(fn(np.asarray(theta, dt), np.asarray(e, dt))).astype(np.float64)
            for e in np.eye(P)
        ]
        return np.stack(cols, axis=1)
    except Exception:
        return None


def assert_fvp_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    vectors: Any = None,
    n_points: int = N_POINTS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    allow_boundary: bool = False,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``fn(theta, v)`` equals the Fisher-vector product :math:`F(\theta)\,v`.

    .. math:: |(Gv)_i - (Fv)_i| \le \mathrm{atol} + \mathrm{rtol}\,
       \sqrt{F_{ii}} \textstyle\sum_j \sqrt{F_{jj}}\,|v_j|

    Args:
      fn: ``fn(theta, v) -> (P,)``, both arguments of shape ``(P,)``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default seeded random valid points.
      vectors: ``(n, P)`` directions, one per point; default seeded standard
        normal ones.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points and directions.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float);
        references are computed at the rounded values ``fn`` receives.
      batched: also call ``fn`` on at least 3 stacked points (a leading batch
        axis) and require the stacked single results.
      allow_boundary: points may sit on the domain's closure where the
        quantity has a finite limit (:mod:`symfisher.testing.points`).
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      AssertionError: as :func:`assert_fisher_close`; on failure the hint looks
        at the whole matrix ``[fn(theta, e_j)]_j`` at the worst point.
    """
    fn = adapt(fn, backend, grad_args=(0,))
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    if vectors is None:
        vs = _directions(len(pts), fam.P, seed)
    else:
        vs = (
            np.asarray(vectors, float).reshape(-1, fam.P)
            if np.size(vectors) % fam.P == 0
            else None
        )
        if vs is None or vs.shape != pts.shape:
            raise ValueError(
                f"vectors must have shape {pts.shape} (one direction per point, P = "
                f"{fam.P}); got shape {np.shape(vectors)}"
            )
    vs = _round(vs, dt)
    cases = []
    for theta, v in zip(pts, vs, strict=True):
        t = inward(fam, theta)
        exp = _ref(fam.kernels.fvp, t, v)
        d = np.sqrt(np.abs(_ref(fam.kernels.fisher_diag, t)))
        ctx = [f"  theta = {_fmt(theta)}", f"  v     = {_fmt(v)}"]
        cases.append(Case((theta, v), exp, d * np.sum(d * np.abs(v)), ctx))

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], w: int) -> list[str]:
        theta = cs[w].args[0]
        G = _probe_matrix(fn, theta, fam.P, dt)
        if G is None:
            return []
        t = inward(fam, theta)
        return [
            h.replace("got ", "the matrix [fn(theta, e_j)] ", 1)
            if h.startswith("got ")
            else h
            for h in _matrix_hints(fam, t, G, _ref(fam.kernels.fisher, t))
        ]

    check_cases(
        fn,
        "fn(theta, v)",
        (fam.P,),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = sqrt(F_ii) sum_j sqrt(F_jj) |v_j|",
        entry_name=lambda e: _entry_name(fam, e),
        hints=hints,
    )


def assert_natural_gradient_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    damping: float = 0.0,
    gradients: Any = None,
    n_points: int = N_POINTS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    allow_boundary: bool = False,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``fn(theta, g)`` equals the natural gradient :math:`(F(\theta) + \lambda I)^{-1} g`.

    With ``damping`` :math:`\lambda = 0` and a singular Fisher (softmax logits)
    the expected value is the minimum-norm solution :math:`F^{+} g`.

    .. math:: |x_i - x^\star_i| \le \mathrm{atol} + \mathrm{rtol}\,\kappa\,\|x^\star\|_\infty

    with :math:`\kappa` the condition number of :math:`F + \lambda I` (on the
    range of :math:`F` when :math:`\lambda = 0`).

    Args:
      fn: ``fn(theta, g) -> (P,)``, your (damped) natural gradient.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default seeded random valid points.
      damping: the :math:`\lambda \ge 0` your ``fn`` is meant to use.
      gradients: ``(n, P)`` gradients :math:`g`, one per point; default seeded
        standard normal ones.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points and directions.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float);
        references are computed at the rounded values ``fn`` receives.
      batched: also call ``fn`` on at least 3 stacked points (a leading batch
        axis) and require the stacked single results.
      allow_boundary: points may sit on the domain's closure where the
        quantity has a finite limit (:mod:`symfisher.testing.points`).
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      ValueError: for negative ``damping``.
      AssertionError: naming the worst entry, with hints (non-finite or
        exploding results of an undamped solve of a singular Fisher, damping not
        applied, a plain gradient).
    """
    fn = adapt(fn, backend, grad_args=(0,))
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0; got {damping!r}")
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    if gradients is None:
        gs = _directions(len(pts), fam.P, seed + 7)
    else:
        gs = np.asarray(gradients, float)
        if gs.shape != pts.shape:
            raise ValueError(
                f"gradients must have shape {pts.shape}; got shape {gs.shape}"
            )
    gs = _round(gs, dt)
    cases, mats = [], []
    for theta, g in zip(pts, gs, strict=True):
        F = _ref(fam.kernels.fisher, inward(fam, theta))
        x, kappa = _solve(F, g, damping)
        ctx = [
            f"  theta = {_fmt(theta)}",
            f"  g     = {_fmt(g)}",
            f"  damping = {damping:g}",
        ]
        cases.append(Case((theta, g), x, np.full(fam.P, kappa * np.abs(x).max()), ctx))
        mats.append(F)

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], w: int) -> list[str]:
        return _ng_hints(mats[w], cs[w].args[1], gots[w], cs[w].expected, damping)

    check_cases(
        fn,
        "fn(theta, g)",
        (fam.P,),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = cond(F + damping I) * max|x|",
        entry_name=lambda e: _entry_name(fam, e),
        hints=hints,
    )


def _solve(F: np.ndarray, g: np.ndarray, damping: float) -> tuple[np.ndarray, float]:
    r""":math:`(F + \lambda I)^{-1} g` (or :math:`F^+ g`) and the condition number used."""
    w, U = np.linalg.eigh(F + damping * np.eye(len(F)))
    keep = w > 1e-12 * w.max()
    inv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
    x = U @ (inv * (U.T @ g))
    return x, float(w[keep].max() / w[keep].min())


def _ng_hints(
    F: np.ndarray, g: np.ndarray, got: np.ndarray, x: np.ndarray, damping: float
) -> list[str]:
    w, U = np.linalg.eigh(F)
    null = U[:, w <= 1e-12 * w.max()]
    singular = null.shape[1] > 0
    other = _damping_hint(F, g, got, damping)
    if other:
        return [other]
    if not np.isfinite(got).all():
        if singular:
            return [
                "non-finite result on a singular Fisher (null direction "
                f"{_fmt(null[:, 0])}): conjugate gradient without damping diverges "
                "when g has a component F cannot reach; add damping (F + λI)"
            ]
        return ["non-finite values in got"]
    hints = []
    if singular:
        along = np.abs(null.T @ got).max()
        if (
            along > 10 * max(np.abs(null.T @ x).max(), 1e-8 * np.abs(x).max())
            and along > np.abs(x).max()
        ):
            hints.append(
                f"got has a large component ({along:.3g}) along the null direction of "
                "the singular Fisher (softmax logits: F 1 = 0): an undamped solve "
                "diverging? add damping"
            )
    if damping > 0:
        x0, _ = _solve(F, g, 0.0)
        if np.allclose(got, x0, rtol=1e-4, atol=1e-8 * np.abs(x0).max()):
            hints.append(
                f"got matches the undamped solution F^+ g: damping λ = {damping:g} not applied?"
            )
    if np.allclose(got, g, rtol=1e-6):
        hints.append("got = g: the plain gradient, not preconditioned by F^-1")
    if np.allclose(got, F @ g, rtol=1e-6):
        hints.append("got = F g: multiplied by the Fisher instead of solving with it")
    return hints


def assert_policy_fvp_close(
    fn: Callable[[Any, Any, Any], Any],
    apply_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    states: Any,
    family: Any,
    *,
    vectors: Sequence[Any] | None = None,
    n_vectors: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    path: str | Path | None = None,
    damping: float = 0.0,
    batched: bool = True,
) -> None:
    r"""Assert your policy FVP equals :math:`\frac1N\sum_n J_n^\top F_{\mathrm{out}} J_n v`.

    The reference is :func:`symfisher.natural.policy_fvp`, evaluated in float64
    (``params`` and ``states`` cast) where ``apply_fn`` allows it, plus
    ``damping`` times v.

    .. math:: |(\hat F v)_i - ((F + \lambda I) v)_i| \le \mathrm{atol} + \mathrm{rtol}\,\|(F + \lambda I) v\|_\infty

    PyTorch: when ``params`` is a tensor or a dict/list/tuple of torch tensors,
    ``apply_fn`` is a ``torch.nn.Module`` (``params`` its parameters by name,
    e.g. ``dict(module.named_parameters())``) or a function
    ``apply_fn(params, states)`` of tensors; ``fn`` gets ``v`` like ``params`` and
    may return a tree like ``params`` or one flat tensor (e.g. a TRPO
    Hessian-vector product over ``params`` in order). The reference is then
    :mod:`symfisher.testing.torch_policy` (``torch.func`` jvp/vjp in float64).

    Args:
      fn: ``fn(params, states, v) -> F v``, ``v`` and the result with the
        structure of ``params`` (wrap a closure as ``lambda p, s, v: fvp(v)``).
      apply_fn: ``apply_fn(params, states) -> (N, P)`` family parameters per
        state (see :func:`symfisher.natural.policy_fvp`).
      params: the network weights (any pytree of float arrays).
      states: the states (``N`` of them).
      family: the family of the policy's distribution (name or object).
      vectors: directions with the structure of ``params``; default
        ``n_vectors`` seeded standard normal ones.
      n_vectors: how many directions to draw when ``vectors`` is None.
      seed: seed of the directions.
      rtol: default :math:`\sqrt{\varepsilon}` of ``fn``'s output dtype.
      atol: absolute tolerance (default 0).
      path: folder of a user family's generated kernels.
      damping: :math:`\lambda \ge 0` your FVP adds (TRPO's ``cg_damping``).
      batched: the batch here is the states: also check ``fn`` on the first
        half of them (with at least 2), so that a reduction over states that
        does not scale with their number (a sum, not a mean) shows at two
        batch sizes.

    Raises:
      AssertionError: naming the worst weight entry, expected vs got, and a hint
        (a KL missing its 1/2, raw logits, a sum over states instead of a mean).
    """
    from jax.flatten_util import ravel_pytree

    from symfisher.natural.network import policy_fvp
    from symfisher.testing.torch_policy import (
        assert_torch_policy_fvp_close,
        is_torch_params,
    )

    _check_atol(atol)
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0; got {damping!r}")
    n_all = len(states) if hasattr(states, "__len__") else 0
    if batched:
        for S in (states, states[: n_all // 2]) if n_all >= 2 else (states,):
            assert_policy_fvp_close(
                fn,
                apply_fn,
                params,
                S,
                family,
                vectors=vectors,
                n_vectors=n_vectors,
                seed=seed,
                rtol=rtol,
                atol=atol,
                path=path,
                damping=damping,
                batched=False,
            )
        return
    if is_torch_params(params):
        fam = _resolve(family, path)
        assert_torch_policy_fvp_close(
            fn,
            apply_fn,
            params,
            states,
            lambda theta: _ref(fam.kernels.fisher, theta),
            fam.name,
            vectors=vectors,
            n_vectors=n_vectors,
            seed=seed,
            rtol=rtol,
            atol=atol,
            damping=float(damping),
        )
        return
    flat, unravel = ravel_pytree(params)
    if vectors is None:
        rng = np.random.default_rng([seed, 2])
        vectors = [
            unravel(jnp.asarray(rng.standard_normal(flat.shape), flat.dtype))
            for _ in range(n_vectors)
        ]
    ref64 = _policy_reference(apply_fn, params, states, family, path)
    ref_native = None
    if ref64 is None:
        ref_native = policy_fvp(apply_fn, params, states, family, path=path)
    name = getattr(family, "name", family)
    worst, rt = _Worst(), None
    gots, exps = [], []
    n_states = int(
        np.prod(jax.eval_shape(lambda p: apply_fn(p, states), params).shape[:-1])
    )
    for i, v in enumerate(vectors):
        try:
            out = fn(params, states, v)
        except Exception as exc:
            raise AssertionError(
                f"fn(params, states, v) with {flat.size} weights and states of shape "
                f"{jax.tree.map(jnp.shape, states)} raised {type(exc).__name__}: {exc}; "
                "expected a pytree like params"
            ) from exc
        try:
            got = np.asarray(ravel_pytree(out)[0])
        except Exception as e:
            raise AssertionError(
                "fn(params, states, v) must return a pytree like params"
            ) from e
        if got.shape != flat.shape:
            raise AssertionError(
                f"fn(params, states, v) returned {got.size} numbers; params has {flat.size}"
            )
        rt = _rtol(rtol, got) if rt is None else rt
        v_flat = np.asarray(ravel_pytree(v)[0], np.float64)
        exp = (
            ref64(v_flat)
            if ref64 is not None
            else np.asarray(ravel_pytree(ref_native(v))[0], np.float64)
        ) + damping * v_flat
        _update(worst, i, got, exp, np.full(exp.shape, np.abs(exp).max()), atol, rt)
        gots.append(got.astype(np.float64))
        exps.append(exp)
    if worst.failed:
        G, E = np.concatenate(gots), np.concatenate(exps)
        hints = []
        if np.isfinite(G).all():
            c = _constant_ratio(G, E, np.full(E.shape, np.abs(E).max()))
            if c is not None:
                hints.append(_ratio_hint(c, n_states))
        else:
            hints.append("non-finite values in got")
        _fail(
            "fn(params, states, v)",
            f"{name} policy, {n_states} states, {flat.size} weights",
            worst,
            len(vectors),
            f"weight entry {worst.entry[0]} (of the flattened params)",
            [],
            rt,
            atol,
            "scale = max |F v|",
            hints,
            at="direction",
        )


def _policy_reference(
    apply_fn: Callable, params: Any, states: Any, family: Any, path: Any
):
    """``v -> F v`` in float64 (flat arrays), or None when apply_fn fails in float64."""
    from jax.flatten_util import ravel_pytree

    from symfisher.natural.network import policy_fvp

    def cast(tree):
        return jax.tree.map(
            lambda a: (
                np.asarray(a, np.float64)
                if np.issubdtype(np.asarray(a).dtype, np.floating)
                else a
            ),
            tree,
        )

    try:
        with jax.enable_x64(True):
            p64, s64 = cast(params), cast(states)
            _, unravel = ravel_pytree(p64)
            fvp64 = policy_fvp(apply_fn, p64, s64, family, path=path)

            def ref(v_flat: np.ndarray) -> np.ndarray:
                with jax.enable_x64(True):
                    out = fvp64(unravel(jnp.asarray(v_flat, jnp.float64)))
                    return np.asarray(ravel_pytree(out)[0], np.float64)

            ref(np.zeros(ravel_pytree(p64)[0].shape))
            return ref
    except Exception:
        return None
