r"""The TRPO / NPG step assertion.

The step of size :math:`\delta` (``max_kl``) along the natural gradient:

.. math:: x = (F + \lambda I)^{-1} g, \qquad
   \Delta\theta = \sqrt{\frac{2\delta}{g^\top x}}\; x,

so that :math:`\tfrac12 \Delta\theta^\top F \Delta\theta = \delta` (at
:math:`\lambda = 0`). With :math:`\lambda = 0` and a singular Fisher,
:math:`x = F^+ g`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from symfisher.testing.assertions import _solve
from symfisher.testing.backend import adapt
from symfisher.testing.compare import Case, check_cases
from symfisher.testing.failures import _entry_name
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
)


def _step(F: np.ndarray, g: np.ndarray, max_kl: float, damping: float) -> np.ndarray:
    x, _ = _solve(F, g, damping)
    return np.sqrt(2 * max_kl / (g @ x)) * x


def _fitted_damping(F: np.ndarray, g: np.ndarray, d: np.ndarray) -> float | None:
    r""":math:`\lambda'` with :math:`(F + \lambda' I) d \propto g`, or None."""
    A = np.stack([g, -d], axis=1)
    sol, *_ = np.linalg.lstsq(A, F @ d, rcond=None)
    if np.abs(A @ sol - F @ d).max() > 1e-6 * max(np.abs(F @ d).max(), 1e-300):
        return None
    return float(sol[1])


def _step_hints(
    cases: Sequence[Case],
    gots: Sequence[np.ndarray],
    mats: Sequence[np.ndarray],
    max_kl: float,
    damping: float,
) -> list[str]:
    if not all(np.isfinite(g).all() for g in gots):
        return ["non-finite values in got"]

    def matches(alt: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> bool:
        return all(
            np.allclose(got, alt(F, c.args[1]), rtol=1e-5, atol=1e-12)
            for got, F, c in zip(gots, mats, cases, strict=True)
        )

    def along(y_of: Callable[[np.ndarray, np.ndarray], np.ndarray], k: float):
        def alt(F: np.ndarray, g: np.ndarray) -> np.ndarray:
            y = y_of(F, g)
            return np.sqrt(k * max_kl / (g @ y)) * y

        return alt

    def solve(F: np.ndarray, g: np.ndarray) -> np.ndarray:
        return _solve(F, g, damping)[0]

    def no_sqrt(F: np.ndarray, g: np.ndarray) -> np.ndarray:
        x = solve(F, g)
        return (2 * max_kl / (g @ x)) * x

    patterns = [
        (no_sqrt, "got = (2δ / gᵀx) x: the square root of the step size is missing"),
        (along(solve, 1.0), "got = sqrt(δ / gᵀx) x: δ where 2δ belongs (½ xᵀFx = δ)"),
        (along(solve, 4.0), "got = sqrt(4δ / gᵀx) x: 2δ counted twice"),
        (
            along(lambda F, g: F @ g + damping * g, 2.0),
            "got = sqrt(2δ / gᵀFg) F g: F used where F⁻¹ was meant (a Fisher-vector "
            "product instead of a solve)",
        ),
        (
            along(lambda F, g: g, 2.0),
            "got = sqrt(2δ / gᵀg) g: the plain gradient, not F⁻¹ g",
        ),
    ]
    hints = [text for alt, text in patterns if matches(alt)]
    if not hints:
        lams = [
            _fitted_damping(F, c.args[1], got)
            for got, F, c in zip(gots, mats, cases, strict=True)
        ]
        if all(lam is not None and lam >= 0 for lam in lams):
            lam = float(np.median(lams))
            if abs(lam - damping) > 1e-3 * max(lam, damping):
                hints.append(
                    f"got points along (F + λI)⁻¹ g with λ = {lam:.3g}, but the "
                    f"assertion's damping is {damping:g}: the damping differs (pass "
                    f"damping={lam:.3g} if intended)"
                )
    return hints


def assert_trpo_step_close(
    step_fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    max_kl: float,
    damping: float = 0.0,
    gradients: Any = None,
    n_points: int = N_POINTS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``step_fn(theta, g)`` is the TRPO step :math:`\sqrt{2\delta / g^\top x}\; x`, :math:`x = (F+\lambda I)^{-1} g`.

    .. math:: |\Delta_i - \Delta^\star_i| \le \mathrm{atol} + \mathrm{rtol}\,\kappa\,\|\Delta^\star\|_\infty

    (:math:`\kappa` the condition number of :math:`F + \lambda I`, as for
    :func:`assert_natural_gradient_close`).

    Args:
      step_fn: ``step_fn(theta, g) -> (P,)``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default seeded random valid points.
      max_kl: the trust region :math:`\delta > 0`.
      damping: the :math:`\lambda \ge 0` your step is meant to use.
      gradients: ``(n, P)`` gradients, one per point; default seeded normal ones.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the points and gradients.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of the output dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``step_fn``.
      batched: also call ``step_fn`` on at least 3 stacked ``(theta, g)`` pairs.
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``step_fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      ValueError: ``max_kl`` not > 0, ``damping`` < 0, gradients of a wrong shape.
      AssertionError: naming the worst entry, with hints (a missing square
        root, δ for 2δ, F for F⁻¹, the plain gradient, a different damping).
    """
    step_fn = adapt(step_fn, backend, grad_args=(0,))
    if not max_kl > 0:
        raise ValueError(f"max_kl must be > 0; got {max_kl!r}")
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0; got {damping!r}")
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt)
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
        step = _step(F, g, max_kl, damping)
        kappa = _solve(F, g, damping)[1]
        ctx = [
            f"  theta = {_fmt(theta)}",
            f"  g     = {_fmt(g)}",
            f"  max_kl = {max_kl:g}, damping = {damping:g}",
        ]
        scale = np.full(fam.P, kappa * np.abs(step).max())
        cases.append(Case((theta, g), step, scale, ctx))
        mats.append(F)

    check_cases(
        step_fn,
        "step_fn(theta, g)",
        (fam.P,),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = cond(F + damping I) * max|step|",
        entry_name=lambda e: _entry_name(fam, e),
        hints=lambda cs, gots, _: _step_hints(cs, gots, mats, max_kl, damping),
    )
