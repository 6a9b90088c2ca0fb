r"""The KL assertion: pairs of points, or a fixed second argument q."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from symfisher.testing.backend import adapt
from symfisher.testing.compare import Case, check_cases
from symfisher.testing.hints import _constant_ratio
from symfisher.testing.points import inward, on_boundary, rounded_points
from symfisher.testing.setup import (
    N_POINTS,
    _check_atol,
    _dtype,
    _Fam,
    _fmt,
    _points,
    _ref,
    _resolve,
    _round,
)


def _pairs(fam: _Fam, pts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (p, q): each point with the next interior one, cyclically."""
    n = len(pts)
    inner = [i for i in range(n) if not on_boundary(fam, pts[i])]
    if n < 2 or not inner:
        raise ValueError(
            f"assert_kl_close needs at least 2 points (one inside the domain) or a "
            f"fixed q; got {n}"
        )
    pairs = []
    for i in range(n):
        j = next((j % n for j in range(i + 1, i + n + 1) if (j % n) in inner), None)
        if j is not None and j != i:
            pairs.append((pts[i], pts[j]))
    return pairs


def assert_kl_close(
    fn: Callable[..., Any],
    family: Any,
    points: Any = None,
    *,
    q: Any = None,
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
    r"""Assert ``fn(theta_p, theta_q)`` equals :math:`\mathrm{KL}(p_{\theta_p} \,\|\, p_{\theta_q})`.

    The pairs are consecutive points (cyclically): :math:`(\theta_1,\theta_2),
    \dots, (\theta_n, \theta_1)`, so both argument orders are met. With ``q``
    given, ``fn(theta)`` is tested as :math:`\theta \mapsto
    \mathrm{KL}(p_\theta \,\|\, p_q)` (a KL to a fixed prior) at every point.

    .. math:: |\mathrm{got} - \mathrm{KL}| \le \mathrm{atol} + \mathrm{rtol}\,|\mathrm{KL}|

    Args:
      fn: ``fn(theta_p, theta_q) -> scalar``; with ``q``: ``fn(theta) -> scalar``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points (n >= 2 without ``q``); default
        seeded random ones.
      q: a fixed second argument ``(P,)`` (inside the domain), or None.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float);
        the reference is computed at the rounded values ``fn`` receives.
      batched: also call ``fn`` on at least 3 stacked pairs (``(n, P)`` each)
        and require the stacked single results (a sum over the batch, or
        unpacking the parameter vector along the batch axis, is named).
      allow_boundary: first arguments may sit on the domain's closure
        (:math:`p_i = 0`, logits :math:`-\infty`; the limit, :math:`0\log 0 = 0`);
        second arguments stay inside.
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      AssertionError: naming the worst pair, expected vs got, and a hint (a
        missing 1/2, raw logits instead of log-probabilities, swapped
        arguments, an ε in a denominator).
    """
    fn = adapt(fn, backend, grad_args=())
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    k = fam.kernels
    if q is not None:
        qq = _round(_points(fam, q, 1, seed)[0], dt)
        pairs = [(p, qq) for p in pts]
    else:
        pairs = _pairs(fam, pts)
    cases = []
    for p, qv in pairs:
        exp = _ref(k.kl, inward(fam, p), qv)
        args = (p,) if q is not None else (p, qv)
        ctx = [f"  theta_p = {_fmt(p)}", f"  theta_q = {_fmt(qv)}"]
        cases.append(Case(args, exp, np.abs(exp), ctx))

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], _: int) -> list[str]:
        return _kl_hints(fam, pairs, np.array([float(g) for g in gots]), q is not None)

    check_cases(
        fn,
        "fn(theta)" if q is not None else "fn(theta_p, theta_q)",
        (),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = |KL|",
        hints=hints,
        at="pair",
    )


def _kl_hints(fam: _Fam, pairs: list, got: np.ndarray, fixed_q: bool) -> list[str]:
    if not np.isfinite(got).all():
        return ["non-finite values in got"]
    k = fam.kernels
    exp = np.array([float(_ref(k.kl, inward(fam, p), q)) for p, q in pairs])
    hints = []
    c = _constant_ratio(got, exp, np.abs(exp))
    if c is not None:
        if abs(c - 2) < 1e-4:
            hints.append("off by exactly 2 at every pair: KL missing its 1/2?")
        elif abs(c - 0.5) < 1e-4:
            hints.append("off by exactly 1/2 at every pair: an extra 1/2?")
        else:
            hints.append(f"off by a constant factor {c:.6g} at every pair")
    inner = [not on_boundary(fam, p) for p, _ in pairs]
    if any(inner):
        swapped = np.array(
            [
                float(_ref(k.kl, q, p)) if ok else np.nan
                for (p, q), ok in zip(pairs, inner, strict=True)
            ]
        )
        m = np.array(inner)
        if np.allclose(got[m], swapped[m], rtol=1e-6, atol=1e-12) and not np.allclose(
            exp[m], swapped[m]
        ):
            hints.append(
                "got = KL(q || p): the arguments are swapped (KL is not symmetric)"
                + ("; fn(theta) must be KL(p_theta || p_q)" if fixed_q else "")
            )
    if fam.name == "categorical_softmax":
        from scipy.special import logsumexp

        lse = [logsumexp(p) - logsumexp(q) for p, q in pairs]
        if np.allclose(got - exp, lse, rtol=1e-6, atol=1e-9):
            hints.append(
                "got - expected = logsumexp(z_p) - logsumexp(z_q) at every pair: KL "
                "computed on raw logits instead of log-probabilities (log_softmax)?"
            )
    return hints
