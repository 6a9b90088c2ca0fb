r"""Assertions on log-probabilities and scores at outcomes drawn from the family."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from symfisher.testing.backend import adapt
from symfisher.testing.compare import Case, check_cases
from symfisher.testing.points import inward, rounded_points
from symfisher.testing.samples import latent_log_prob, latent_outcomes, outcomes
from symfisher.testing.setup import (
    N_POINTS,
    _check_atol,
    _dtype,
    _Fam,
    _fmt,
    _ref,
    _resolve,
)

#: Outcomes drawn per point (besides the hard ones of :mod:`samples`).
N_SAMPLES = 8

_EVENT_HINT = (
    "an event axis is not reduced: a per-dimension log-probability not summed "
    "over the action's dimensions?"
)


def _cases(
    fam: _Fam,
    pts: np.ndarray,
    n_samples: int,
    seed: int,
    dt: np.dtype,
    value: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    latent: bool,
) -> list[Case]:
    cases = []
    for i, theta in enumerate(pts):
        ref_theta = inward(fam, theta)
        xs = (
            latent_outcomes(ref_theta, n_samples, seed + i, dt)
            if latent
            else outcomes(fam, theta, ref_theta, n_samples, seed + i, dt)
        )
        for x in xs:
            exp, scale = value(ref_theta, x)
            xa = x.astype(np.int32) if fam.family.is_discrete and not latent else x
            name = "u" if latent else "x"
            cases.append(
                Case(
                    (theta, xa),
                    exp,
                    scale,
                    [f"  theta = {_fmt(theta)}", f"  {name}     = {_fmt(x)}"],
                )
            )
    return cases


def _offset_hints(cases: Sequence[Case], gots: Sequence[np.ndarray]) -> list[str]:
    """Hints from got - expected over all cases (log-probabilities)."""
    got = np.array([float(g) for g in gots])
    exp = np.array([float(c.expected) for c in cases])
    if not np.isfinite(got).all():
        return []
    d = got - exp
    hints = []
    if np.allclose(got, -exp, rtol=1e-6, atol=1e-9):
        return ["sign flipped: the negative log-likelihood (a loss) instead of log p?"]
    if np.ptp(d) <= 1e-6 * (1 + np.abs(d).max()) and abs(d[0]) > 1e-9:
        c = float(d.mean())
        known = {
            0.5 * np.log(2 * np.pi): "½ log 2π",
            np.log(2 * np.pi): "log 2π",
            np.log(2.0): "log 2",
            0.5 * np.log(np.pi): "½ log π",
        }
        name = next(
            (f" = ±{v}" for k, v in known.items() if abs(abs(c) - k) < 1e-6), ""
        )
        hints.append(
            f"got - expected = {c:.6g}{name} at every point and outcome: a wrong "
            "normalising constant?"
        )
        return hints
    by_point: dict[bytes, list[float]] = {}
    for c, di in zip(cases, d, strict=True):
        by_point.setdefault(np.asarray(c.args[0]).tobytes(), []).append(float(di))
    groups = [np.array(v) for v in by_point.values() if len(v) > 1]
    if groups and all(np.ptp(g) <= 1e-6 * (1 + np.abs(g).max()) for g in groups):
        hints.append(
            "got - expected is constant in x at each point but changes with theta: a "
            "normaliser of your own (probabilities normalised differently from the "
            "sampler, e.g. over other categories or without the implicit last one)?"
        )
    return hints


def _sigma_variance_hint(
    fam: _Fam, cases: Sequence[Case], gots: Sequence[np.ndarray], latent: bool
) -> list[str]:
    """Got = log p with sigma read as a variance (sigma -> sqrt(sigma))?"""
    idx = [i for i, n in enumerate(fam.names) if n.split("_")[0] in ("sigma", "omega")]
    if not idx or latent or not np.isfinite(np.array(gots, float)).all():
        return []
    alt = []
    for c in cases:
        t = inward(fam, np.asarray(c.args[0], np.float64)).copy()
        for i in idx:
            t[i] = np.sqrt(t[i]) if fam.names[i].startswith("sigma") else t[i] / 2
        alt.append(float(_ref(fam.kernels.log_prob, t, np.asarray(c.args[1], float))))
    if np.allclose(np.array(gots, float), alt, rtol=1e-6, atol=1e-9):
        return [
            "got matches log p with σ read as a variance (N(x; μ, σ) with σ² = σ): "
            "σ treated as the variance? (use σ² = σ**2, log σ for the constant)"
        ]
    return []


def _tanh_hints(
    cases: Sequence[Case], gots: Sequence[np.ndarray], latent: bool, dt: np.dtype
) -> list[str]:
    from symfisher.kernels import kernels

    got = np.array([float(g) for g in gots])
    exp = np.array([float(c.expected) for c in cases])
    bad = ~(np.abs(got - exp) <= 1e-4 * (1 + np.abs(exp)))
    hints = []
    if latent:
        us = np.array([float(c.args[1]) for c in cases])
        thetas = [np.asarray(c.args[0], np.float64) for c in cases]
        gauss = np.array(
            [
                float(_ref(kernels("normal").log_prob, t, u))
                for t, u in zip(thetas, us, strict=True)
            ]
        )
        with np.errstate(divide="ignore"):
            unsquashed = gauss - np.log(np.abs(1 - us**2))
        ok = np.isfinite(got) & np.isfinite(unsquashed)
        if ok.sum() >= 2 and np.allclose(got[ok], unsquashed[ok], rtol=1e-4, atol=1e-5):
            hints.append(
                "got matches log N(u) - log|1 - u²|: the tanh Jacobian applied to "
                "the unsquashed sample u instead of to tanh(u)"
            )
            return hints
        err = np.where(np.isfinite(got), np.abs(got - exp), np.inf)
        w = int(np.argmax(err))
        a = np.abs(np.tanh(us).astype(dt).astype(np.float64))
        if bad[w] and 1 - a[w] < 1e-5:
            sat = "rounds to ±1" if a[w] == 1 else "is within 1e-5 of ±1"
            hints.append(
                f"largest error at u = {us[w]:g}, where tanh(u) {sat} in {dt}: "
                "log(1 - tanh(u)² + ε) or atanh(clip(a)) lose the tail there (tens "
                "of nats at |u| = 12); compute from u: log(1 - tanh²u) = "
                "2 (log 2 - u - softplus(-2u)), and the Gaussian term at u itself"
            )
        return hints
    xs = np.array([float(c.args[1]) for c in cases])
    thetas = [np.asarray(c.args[0], np.float64) for c in cases]
    gauss = np.array(
        [
            float(_ref(kernels("normal").log_prob, t, np.arctanh(x)))
            for t, x in zip(thetas, xs, strict=True)
        ]
    )
    alts = {
        "the tanh Jacobian is missing (the Gaussian log-density of atanh(a) "
        "without - log(1 - a²); or a Jacobian applied to unsquashed samples)": gauss,
        "the Jacobian is evaluated at the squashed action: log(1 - tanh(a)²) with "
        "a already tanh(u); use log(1 - a²)": gauss - np.log1p(-(np.tanh(xs) ** 2)),
        "the Jacobian enters with the wrong sign (+ log(1 - a²))": gauss
        + np.log1p(-xs)
        + np.log1p(xs),
    }
    for text, alt in alts.items():
        if np.isfinite(got).all() and np.allclose(got, alt, rtol=1e-5, atol=1e-6):
            hints.append(text)
    near = 1 - np.abs(xs) < 1e-6
    far = (1 - np.abs(xs) > 1e-3) & np.isfinite(got)
    fit = max(1e-5, 100 * float(np.finfo(dt).eps))
    for eps in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
        alt = gauss - np.log(1 - xs**2 + eps)
        size = fit * (1 + np.abs(alt) + np.abs(np.arctanh(xs)))
        close = np.abs(got - alt) <= size
        shifted = (far & (np.abs(got - exp) > size)).any()  # shows away from ±1
        if not hints and shifted and far.sum() >= 2 and np.all(close[far]):
            hints.append(
                f"got matches log N(atanh a) - log(1 - a² + ε) with ε = {eps:g} away "
                "from ±1: the ε shifts every log-prob by about ε/(1 - a²) and "
                f"dominates near saturation (error {np.max(np.abs(got - exp)):.3g} "
                "nats here); use log1p(-a) + log1p(a), or compute from the "
                "pre-squash u (latent=True)"
            )
    if not hints and bad.any() and np.all(near[bad]) and not np.all(near):
        hints.append(
            "wrong only within 1e-6 of ±1: atanh(clip(a, -1 + ε, 1 - ε)) or "
            "log(1 - a² + ε) change the density there; use log1p(-a) + log1p(a)"
        )
    return hints


def assert_log_prob_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    n_points: int = N_POINTS,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    allow_boundary: bool = False,
    latent: bool = False,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``fn(theta, x)`` equals :math:`\log p_\theta(x)` at outcomes drawn from the family.

    The outcomes (:mod:`symfisher.testing.samples`): ``n_samples`` draws from
    the family's sampler at each point, every category of a finite support,
    the ends of a bounded support, tanh actions within a float32 step of ±1.

    .. math:: |\mathrm{got} - \log p| \le \mathrm{atol} + \mathrm{rtol}
       \,\big(1 + |\log p| + \textstyle\sum_i |\theta_i\, s_i(\theta; x)|\big)

    (:math:`s` the score: the size of the terms a correct evaluation sums).

    Args:
      fn: ``fn(theta, x) -> scalar``; ``theta`` ``(P,)``, ``x`` of the event's
        shape (integers for discrete families), in ``dtype``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default seeded random valid points.
      n_points: how many points to pick when ``points`` is None.
      n_samples: draws per point.
      seed: seed of the points and the draws.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float);
        references are computed in float64 at the rounded values ``fn`` gets.
      batched: also call ``fn`` on a stack of at least 3 ``(theta, x)`` pairs
        and require the stacked single results (shape ``(n,)``).
      allow_boundary: include points on the domain's closure (:mod:`points`);
        outcomes of zero probability there are skipped.
      latent: ``tanh_gaussian`` only: ``fn(theta, u)`` gets the pre-squash
        value :math:`u` (up to ±12, where :math:`\tanh u = \pm 1` in float32) and
        returns :math:`\log p(x = \tanh u)`, as SAC computes it; the reference
        is exact in :math:`u`. In the action form, actions that round to ±1
        are outside the support and never passed.
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      ValueError: ``latent`` for another family; bad points, sizes, tolerances.
      AssertionError: naming the worst point and outcome, expected vs got, with
        hints (a wrong constant, σ as a variance, the tanh Jacobian at the
        squashed action or missing, saturation in float32, a sign, a
        normaliser of one's own, a per-dimension log-prob not summed).
    """
    fn = adapt(fn, backend, grad_args=())
    fam = _resolve(family, path)
    _check_atol(atol)
    if latent and fam.name != "tanh_gaussian":
        raise ValueError(f"latent=True is for tanh_gaussian only; got {fam.label()}")
    _check_count("n_samples", n_samples, 0)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    k = fam.kernels

    def value(theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if latent:
            lp = latent_log_prob(theta, x)
            s = _ref(k.score, theta, np.tanh(x))
        else:
            lp = _ref(k.log_prob, theta, x)
            s = _ref(k.score, theta, x)
        return lp, 1.0 + np.abs(lp) + np.sum(np.abs(theta * s))

    cases = _cases(fam, pts, n_samples, seed, dt, value, latent)

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], _: int) -> list[str]:
        h = _offset_hints(cs, gots) + _sigma_variance_hint(fam, cs, gots, latent)
        if fam.name == "tanh_gaussian":
            h += _tanh_hints(cs, gots, latent, dt)
        return h

    check_cases(
        fn,
        "fn(theta, u)" if latent else "fn(theta, x)",
        (),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = 1 + |log p| + sum_i |theta_i s_i|",
        hints=hints,
        event_hint=_EVENT_HINT,
        at="case",
        source=(
            "float64, exact in u: log N(u) - 2 (log 2 - |u| - softplus(-2|u|))"
            if latent
            else "generated closed form, float64"
        ),
    )


def _check_count(name: str, n: Any, least: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise ValueError(f"{name} must be an integer >= {least}; got {n!r}")


def assert_score_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    n_points: int = N_POINTS,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    batched: bool = True,
    allow_boundary: bool = False,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert ``fn(theta, x)`` equals the score :math:`\nabla_\theta \log p_\theta(x)`.

    Outcomes as :func:`assert_log_prob_close`.

    .. math:: |g_i - s_i| \le \mathrm{atol} + \mathrm{rtol}\,(|s_i| + \sqrt{F_{ii}})

    Args:
      fn: ``fn(theta, x) -> (P,)``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default seeded random valid points.
      n_points: how many points to pick when ``points`` is None.
      n_samples: draws per point.
      seed: seed of the points and the draws.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn``.
      batched: also check a call on a stack of at least 3 pairs (``(n, P)`` out).
      allow_boundary: include points on the domain's closure.
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``fn``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      AssertionError: naming the worst entry, with hints (a sign flip, which the
        score covariance :math:`E[s s^\top]` cannot see; a constant factor).
    """
    fn = adapt(fn, backend, grad_args=(0,))
    from symfisher.testing.failures import _entry_name
    from symfisher.testing.hints import _constant_ratio

    fam = _resolve(family, path)
    _check_atol(atol)
    _check_count("n_samples", n_samples, 0)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    k = fam.kernels

    def value(theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = _ref(k.score, theta, x)
        return s, np.abs(s) + np.sqrt(np.abs(_ref(k.fisher_diag, theta)))

    cases = _cases(fam, pts, n_samples, seed, dt, value, False)

    def hints(cs: Sequence[Case], gots: Sequence[np.ndarray], _: int) -> list[str]:
        G = np.concatenate([g.ravel() for g in gots])
        S = np.concatenate([np.ravel(c.expected) for c in cs])
        sc = np.concatenate([np.ravel(c.scale) for c in cs])
        if not np.isfinite(G).all():
            return []
        c = _constant_ratio(G, S, sc)
        if c is None:
            return []
        if abs(c + 1) < 1e-4:
            return [
                "got = -score at every outcome: a sign error (the gradient of the "
                "loss -log p); E[s s^T], the Fisher, cannot see it"
            ]
        return [f"got = {c:.6g} x score at every outcome: a constant factor"]

    check_cases(
        fn,
        "fn(theta, x)",
        (fam.P,),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text="scale = |s_i| + sqrt(F_ii)",
        entry_name=lambda e: _entry_name(fam, e),
        hints=hints,
        at="case",
        event_hint="an extra axis: a per-dimension score not summed over the event?",
    )
