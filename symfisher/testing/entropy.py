r"""The entropy assertion: ``fn(theta)`` against :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]`.

The reference is the generated ``entropy`` kernel (closed form, or quadrature
with its stated accuracy: see the module's ``PROVENANCE``), in float64 at the
points ``fn`` receives. Hints name the entropy bugs RL code has had: a wrong
constant (½ log 2πe per dimension), ½ log σ for log σ, a sum over action
dimensions that never runs, an estimate from sampled log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from symfisher.testing.compare import Case, check_theta_function
from symfisher.testing.setup import N_POINTS

#: Constants an entropy is commonly off by, and how they are named.
_CONSTANTS = {
    0.5 * np.log(2 * np.pi * np.e): "½ log 2πe",
    0.5 * np.log(2 * np.pi): "½ log 2π",
    0.5: "½",
    np.log(2.0): "log 2",
}


def _constant_name(c: float) -> str:
    """``c`` as ``k × constant`` for a known constant and a small integer k."""
    for value, name in _CONSTANTS.items():
        k = c / value
        if abs(k - round(k)) < 1e-6 and 1 <= abs(round(k)) <= 64:
            n = round(k)
            return f" = {'' if n == 1 else '-' if n == -1 else f'{n} × '}{name}"
    return ""


def _entropy_hints(
    cases: Sequence[Case], gots: Sequence[np.ndarray], _: int
) -> list[str]:
    """Patterns of got - expected over the points (and the log-σ entries)."""
    got = np.array([float(g) for g in gots])
    exp = np.array([float(c.expected) for c in cases])
    thetas = [np.asarray(c.args[0], np.float64) for c in cases]
    if not np.isfinite(got).all():
        return [
            "non-finite entropy: 0 log 0 evaluated as NaN (use xlogy, or "
            "p * where(p > 0, log p, 0)), or log_softmax of -inf logits?"
        ]
    d = got - exp
    tiny = 1e-6 * (1 + np.abs(exp).max())
    if np.ptp(d) <= tiny and abs(d[0]) > tiny:
        c = float(d.mean())
        return [
            f"got - expected = {c:.6g}{_constant_name(c)} at every point: a wrong "
            "constant (the Gaussian's ½ log 2πe per dimension dropped or doubled?)"
        ]
    hints = []
    P = thetas[0].shape[-1]
    for lo, hi in ((P // 2, P), (1, 2)):  # log σ block of (mu, omega) / (mu, sigma)
        if hi > P or lo >= hi:
            continue
        for form, logs in (
            ("ω = log σ", [t[lo:hi] for t in thetas]),
            ("σ", [np.log(np.abs(t[lo:hi])) for t in thetas]),
        ):
            half = np.array([-0.5 * np.sum(s) for s in logs])
            if np.allclose(d, half, rtol=1e-6, atol=tiny):
                hints.append(
                    f"got - expected = -½ Σ log σ at every point (σ from {form}): "
                    "½ log σ instead of log σ (the entropy of N(μ, σ²) is "
                    "½ log(2πe) + log σ)?"
                )
                return hints
    ratio = got / np.where(exp != 0, exp, np.nan)
    if np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-6 * abs(ratio[0]):
        r = float(ratio[0])
        k = 1 / r if r else np.inf
        if abs(k - round(k)) < 1e-6 and round(k) > 1:
            hints.append(
                f"got = expected / {round(k)} at every point: a mean over the "
                f"{round(k)} action dimensions instead of a sum (or a sum "
                "that never runs)?"
            )
            return hints
        hints.append(f"got = {r:.6g} × expected at every point")
        return hints
    rel = np.abs(d) / np.maximum(1.0, np.abs(exp))
    if np.any(d > 0) and np.any(d < 0) and rel.max() < 0.2:
        hints.append(
            "got scatters around expected with no pattern (both signs, at most "
            f"{rel.max():.2g} relative): an estimate from sampled log-probabilities "
            "(-mean log p(a)) instead of the closed form?"
        )
    return hints


def assert_entropy_close(
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
    r"""Assert ``fn(theta)`` equals the entropy :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]`.

    .. math:: |\mathrm{got} - H| \le \mathrm{atol} + \mathrm{rtol}\,(1 + |H|)

    The reference is the family's generated ``entropy`` kernel in float64 at
    the (rounded) points ``fn`` receives; with ``allow_boundary`` points sit
    on the closure of the domain (a probability of 0, a logit of -inf) and the
    reference is the limit (:math:`0 \log 0 = 0`).

    Args:
      fn: ``fn(theta) -> scalar``, ``theta`` of shape ``(P,)`` in family order.
      family: a catalog name or a family object (``sf.family(name, d=3)``).
      points: ``(n, P)`` parameter points; default ``n_points`` seeded ones.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn``.
      batched: also call ``fn`` on at least 3 stacked points (shape ``(n,)``).
      allow_boundary: include points on the domain's closure.
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype``.

    Raises:
      AssertionError: naming the worst point, expected vs got, with hints (a
        wrong constant, ½ log σ, a mean over dimensions, a sampled estimate,
        NaN at zero probabilities).
    """
    check_theta_function(
        fn,
        family,
        "entropy",
        points=points,
        n_points=n_points,
        seed=seed,
        rtol=rtol,
        atol=atol,
        dtype=dtype,
        batched=batched,
        allow_boundary=allow_boundary,
        path=path,
        scale=lambda h, theta: 1.0 + np.abs(h),
        scale_text="scale = 1 + |H|",
        hints=_entropy_hints,
        backend=backend,
        event_hint="an entropy per dimension, not summed over the event axis?",
    )
