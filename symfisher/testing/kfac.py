r"""The K-FAC factor assertion for the built-in linear policies.

For ``linear_softmax`` (:math:`\theta = W`, shape ``(K, d)``) and
``linear_gaussian`` (:math:`\theta = [W \mid b \mid \log\sigma]`, shape
``(m, n + 2)``, factors of the :math:`[W \mid b]` part) the K-FAC Fisher of the
row-major :math:`\operatorname{vec} W` is :math:`G \otimes A`: :math:`A` the
input-side factor (the second moment of the features :math:`\phi(s)`, or of
:math:`[s; 1]`), :math:`G` the output-side one, averaged over the states.

The user's factors are compared through their Kronecker product, which does
not depend on how a constant is shared between them (:math:`cA`,
:math:`G / c`); the order of the pair is recognised from the factors' shapes
when they differ (``(A, G)`` or ``(G, A)``).

.. math:: |(G \otimes A)_{ij} - K_{ij}| \le \mathrm{atol} + \mathrm{rtol}\sqrt{K_{ii}K_{jj}}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.testing.backend import adapt, to_numpy
from symfisher.testing.calls import _called
from symfisher.testing.failures import _fail, _update, _Worst
from symfisher.testing.hints import _constant_ratio
from symfisher.testing.setup import _check_atol, _dtype, _fmt, _round, _rtol

KFAC_POLICIES = ("linear_softmax", "linear_gaussian")


def _policy(policy: Any, n_features: int) -> Any:
    from symfisher.families.policies import policy as build

    if isinstance(policy, str):
        if policy not in KFAC_POLICIES:
            raise ValueError(
                f"policy must be one of {', '.join(KFAC_POLICIES)} (or such a "
                f"policy object); got {policy!r}"
            )
        key = "d" if policy == "linear_softmax" else "n"
        return build(policy, **{key: n_features})
    name = getattr(policy, "name", None)
    if name not in KFAC_POLICIES:
        raise ValueError(
            f"policy must be one of {', '.join(KFAC_POLICIES)}; got {policy!r}"
        )
    return policy


def _factors(out: Any, what: str, args: tuple, shapes: tuple) -> tuple:
    """The user's pair as (A, G) float64 arrays, recognising the order by shape."""
    try:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("not a pair")
        a, g = out
        A, G = to_numpy(a).astype(np.float64), to_numpy(g).astype(np.float64)
    except Exception as exc:
        raise AssertionError(
            f"{_called(what, args)} returned {type(out).__name__}; expected a pair "
            f"(A, G) of arrays of shapes {shapes[0]} and {shapes[1]}"
        ) from exc
    if (A.shape, G.shape) == shapes:
        return A, G
    if (G.shape, A.shape) == shapes:
        return G, A
    raise AssertionError(
        f"{_called(what, args)} returned factors of shapes {A.shape} and {G.shape}; "
        f"expected (A, G) of shapes {shapes[0]} (input side) and {shapes[1]} "
        "(output side)"
    )


def assert_kfac_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    policy: Any,
    states: Any,
    points: Any = None,
    *,
    n_points: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    path: str | Path | None = None,
    backend: str | None = None,
    batched: bool = True,
) -> None:
    r"""Assert ``fn(theta, states)`` returns the K-FAC factors ``(A, G)`` of a linear policy.

    The reference is the generated kernel ``kfac(theta, states)`` (uniform
    weights over the states), compared as :math:`G \otimes A` (see the module
    docstring).

    Args:
      fn: ``fn(theta, states) -> (A, G)``; ``theta`` of the policy's shape
        (``(K, d)`` or ``(m, n + 2)``), ``states`` ``(B, d)`` / ``(B, n)``.
      policy: ``"linear_softmax"``, ``"linear_gaussian"`` or such a policy
        object (``sf.policy("linear_softmax", K=3, d=2)``); a name takes its
        feature size from ``states`` and its default number of actions.
      states: ``(B, d)`` state features.
      points: ``(n, *theta_shape)`` parameters; default ``n_points`` seeded
        standard normal ones.
      n_points: how many to draw when ``points`` is None.
      seed: their seed.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of the output dtype.
      atol: absolute tolerance.
      dtype: dtype of ``theta`` and ``states`` passed to ``fn``.
      path: folder of user-generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).
      batched: the batch here is the states: also check ``fn`` on the first
        half of them (at least 2 states are needed), so that a reduction that
        does not scale with the batch (a sum, :math:`1/B^2`) shows at two
        batch sizes.

    Raises:
      ValueError: an unknown policy, states of a wrong shape.
      AssertionError: naming the worst entry of :math:`G \otimes A`, with hints
        (a factor from a mean-reduced loss, off by :math:`1/B^2`; a sum over
        states instead of a mean).
    """
    fn = adapt(fn, backend, grad_args=(0,))
    from symfisher.kernels import kernels

    if batched:
        B = np.shape(states)[0] if np.ndim(states) == 2 else 0
        for S in (states, states[: B // 2]) if B >= 2 else (states,):
            assert_kfac_close(
                fn,
                policy,
                S,
                points,
                n_points=n_points,
                seed=seed,
                rtol=rtol,
                atol=atol,
                dtype=dtype,
                path=path,
                batched=False,
            )
        return

    _check_atol(atol)
    dt = _dtype(dtype)
    S = _round(states, dt)
    if S.ndim != 2 or S.shape[0] < 1:
        raise ValueError(f"states must have shape (B, n_features); got {S.shape}")
    pol = _policy(policy, S.shape[1])
    k = kernels(pol.name, path)
    shape = tuple(pol.theta_shape)
    if points is None:
        rng = np.random.default_rng([seed, 5])
        pts = rng.standard_normal((n_points, *shape))
    else:
        pts = np.asarray(points, float)
        pts = pts[None] if pts.shape == shape else pts
        if pts.shape[1:] != shape:
            raise ValueError(
                f"points must have shape (n, {', '.join(map(str, shape))}); got "
                f"{np.shape(points)}"
            )
    pts = _round(pts, dt)
    B = S.shape[0]
    worst, rt, mats = _Worst(), None, []
    what = "fn(theta, states)"
    for i, theta in enumerate(pts):
        L, R = (np.asarray(x, np.float64) for x in _ref_pair(k, theta, S))
        args = (np.asarray(theta, dt), np.asarray(S, dt))
        try:
            out = fn(*args)
        except Exception as exc:
            raise AssertionError(
                f"{_called(what, args)} raised {type(exc).__name__}: {exc}; expected "
                f"a pair (A, G) of shapes {R.shape} and {L.shape}"
            ) from exc
        A, G = _factors(out, what, args, (R.shape, L.shape))
        got, ref = np.kron(G, A), np.kron(L, R)
        rt = _rtol(rtol, to_numpy(out[0])) if rt is None else rt
        d = np.sqrt(np.abs(np.diag(ref)))
        _update(worst, i, got, ref, np.outer(d, d), atol, rt)
        mats.append((got, ref, theta))
    if worst.failed:
        got, ref, theta = mats[worst.point]
        hints = []
        d = np.sqrt(np.abs(np.diag(ref)))
        c = (
            _constant_ratio(got, ref, np.outer(d, d))
            if np.isfinite(got).all()
            else None
        )
        if c is not None:

            def near(a: float) -> bool:
                return abs(c - a) <= 1e-4 * a

            if B > 1 and near(1.0 / B**2):
                hints.append(
                    f"off by exactly 1/B² = 1/{B}² (B = {B} states): a factor built "
                    "from the gradients of a mean-reduced loss (each per-state "
                    "gradient carries 1/B, squared in the outer product)?"
                )
            elif B > 1 and near(float(B**2)):
                hints.append(f"off by exactly B² = {B}²: summed twice over the states?")
            elif B > 1 and near(float(B)):
                hints.append(
                    f"off by exactly B = {B}: a sum over states instead of a mean?"
                )
            elif B > 1 and near(1.0 / B):
                hints.append(
                    f"off by exactly 1/B = 1/{B}: divided by the number of states twice?"
                )
            else:
                hints.append(f"G ⊗ A is off by a constant factor {c:.6g}")
        _fail(
            what,
            f"{pol.name} K-FAC G ⊗ A, {B} states",
            worst,
            len(pts),
            f"entry {', '.join(map(str, worst.entry))} of G ⊗ A",
            [f"  theta = {_fmt(theta)}"],
            rt,
            atol,
            "scale = sqrt(K_ii K_jj)",
            hints,
            source="generated kfac kernel, float64",
        )


def _ref_pair(k: Any, theta: np.ndarray, S: np.ndarray) -> tuple:
    with jax.enable_x64(True):
        L, R = k.kfac(jnp.asarray(theta, jnp.float64), jnp.asarray(S, jnp.float64))
        return np.asarray(L, np.float64), np.asarray(R, np.float64)
