r"""The Monte Carlo Fisher estimator assertion: a t-test per entry on replicates.

The estimator is called ``replicates`` times at each point with independent
keys. For every entry (the upper triangle of :math:`F`, or its diagonal) the
mean :math:`\bar F` of the :math:`R` replicates is compared with the closed-form
:math:`F` by Student's t on :math:`R - 1` degrees of freedom,

.. math:: t = \frac{\bar F_{ij} - F_{ij}}{\sqrt{s_{ij}^2 / R + (\tau\,\mathrm{scale}_{ij})^2}},

with :math:`s_{ij}` the replicates' standard deviation (their own spread: no
hand-picked rtol) and :math:`\tau = \sqrt{\varepsilon}` of the estimator's dtype
a floor for estimators without spread (an exact Fisher). The two-sided
p-values of all entries at all points are decided together by Holm's method at
family-wise level ``alpha``, so a correct estimator fails with probability at
most ``alpha``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from scipy import stats

from symfisher.testing.backend import adapt
from symfisher.testing.calls import call
from symfisher.testing.points import rounded_points
from symfisher.testing.setup import _dtype, _Fam, _fmt, _ref, _resolve


def _holm(p: np.ndarray, alpha: float) -> np.ndarray:
    """Rejections of Holm's step-down procedure at family-wise level ``alpha``."""
    order = np.argsort(p)
    m = len(p)
    reject = np.zeros(m, bool)
    for rank, i in enumerate(order):
        if p[i] <= alpha / (m - rank):
            reject[i] = True
        else:
            break
    return reject


def _check_int(name: str, n: Any, least: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise ValueError(f"{name} must be an integer >= {least}; got {n!r}")


def _hints(
    fam: _Fam,
    mean: np.ndarray,
    se: np.ndarray,
    F: np.ndarray,
    diagonal: bool,
    n: int,
    theta: np.ndarray,
) -> list[str]:
    """Patterns of the replicate mean against the true Fisher."""
    hints = []
    fd = np.diag(F) if not diagonal else F
    md = np.diag(mean) if not diagonal else mean
    if np.all(np.abs(md) < 0.2 * np.abs(fd)):
        hints.append(
            "the estimate is near 0 on the diagonal where F is not: (E[s])², the "
            "square of the mean score (which is 0), instead of E[s²] = E[s s^T]?"
        )
    # loose on purpose: a hint names a pattern, the t-test above decided
    tol = 8 * se + 1e-12 * np.abs(F).max()
    alts: dict[str, np.ndarray] = {}
    if diagonal:
        full = _ref(fam.kernels.fisher, theta)
        alts[
            "the estimate is mean_j F_ij: averaged over the wrong axis (a mean of "
            "s_i s_j over the parameter index j instead of s_i² over the samples)?"
        ] = full.mean(axis=1)
    for c, why in (
        (n, f"n_samples = {n}: a sum over samples instead of a mean?"),
        (1.0 / n, f"1/n_samples = 1/{n}: divided by the sample count twice?"),
        (
            1.0 / fam.P,
            f"1/P = 1/{fam.P}: averaged over the parameter axis "
            "as well as the samples (wrong axes)?",
        ),
    ):
        alts[f"the estimate is {c:.4g} x F, off by {why}"] = c * F
    for text, alt in alts.items():
        d = np.sqrt(np.abs(alt if diagonal else np.diag(alt)))
        rel = 0.05 * (d if diagonal else np.outer(d, d))
        if np.all(np.abs(mean - alt) <= tol + rel):
            hints.append(text)
    return hints


def assert_fisher_estimate_close(
    estimator: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    n_samples: int,
    diagonal: bool = False,
    replicates: int = 8,
    n_points: int = 3,
    seed: int = 0,
    alpha: float = 1e-3,
    dtype: Any = None,
    batched: bool = True,
    path: str | Path | None = None,
    backend: str | None = None,
) -> None:
    r"""Assert a Monte Carlo estimator of the Fisher matrix (or its diagonal) is unbiased.

    ``estimator(theta, key)`` is called ``replicates`` times per point with
    independent keys; the mean of the replicates is t-tested against the
    closed-form :math:`F(\theta)` entry by entry (see the module docstring), Holm
    over all entries and points.

    Args:
      estimator: ``estimator(theta, key) -> (P, P)`` (or ``(P,)`` with
        ``diagonal``), an estimate from ``n_samples`` draws.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points; default ``n_points`` seeded ones.
      n_samples: the number of draws your estimator uses (named in the report,
        and to recognise a sum over samples instead of a mean).
      diagonal: the estimator returns the diagonal of :math:`F`.
      replicates: independent calls per point (>= 3).
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the points and keys.
      alpha: family-wise false-alarm rate of the whole assertion.
      dtype: dtype of ``theta`` (default JAX's default float).
      batched: also call ``estimator(thetas, keys)`` on all points stacked
        (``(n, P)`` and ``(n,)`` keys; ``(n, *shape)`` out) ``replicates`` times
        with fresh keys, and t-test those estimates too (random draws differ
        between a batched and a single call, so they are tested, not matched).
      path: folder of a user family's generated kernels.
      backend: ``None`` (detected), ``"jax"`` or ``"torch"``: the framework of
        ``estimator``; torch gets tensors of ``dtype`` (see
        :mod:`symfisher.testing.backend`).

    Raises:
      ValueError: bad ``n_samples``, ``replicates``, ``alpha``.
      AssertionError: naming the worst entry, the point, F, the replicates' mean
        and standard error, t and the p-value; hints for :math:`(E[s])^2`,
        wrong axes, a sum over samples.
    """
    estimator = adapt(estimator, backend, grad_args=(0,), key_args=(1,))
    fam = _resolve(family, path)
    _check_int("n_samples", n_samples, 1)
    _check_int("replicates", replicates, 3)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt)
    shape = (fam.P,) if diagonal else (fam.P, fam.P)
    tau = float(np.sqrt(np.finfo(dt).eps))
    base = jax.random.PRNGKey(seed)
    keys = [
        jax.random.split(jax.random.fold_in(base, i), replicates)
        for i in range(len(pts))
    ]
    sets = {  # how the estimates were obtained -> (n_points, replicates, *shape)
        "single calls": np.stack(
            [
                np.stack(
                    [
                        call(
                            estimator,
                            f"estimator(theta, key) (point {i}, replicate {r})",
                            shape,
                            np.asarray(theta, dt),
                            keys[i][r],
                        ).astype(np.float64)
                        for r in range(replicates)
                    ]
                )
                for i, theta in enumerate(pts)
            ]
        )
    }
    if batched:
        sets["batched calls"] = _batched_reps(
            estimator, pts, dt, shape, replicates, jax.random.fold_in(base, 10**6)
        )
    rows = []  # (how, point, entry, t, p, mean, se, F)
    per_point = {}
    for how, all_reps in sets.items():
        for i, theta in enumerate(pts):
            reps = all_reps[i]
            F = _ref(fam.kernels.fisher_diag if diagonal else fam.kernels.fisher, theta)
            d = np.sqrt(np.abs(np.diag(F) if not diagonal else F))
            scale = d if diagonal else np.outer(d, d)
            mean = reps.mean(axis=0)
            se = np.sqrt(reps.var(axis=0, ddof=1) / replicates + (tau * scale) ** 2)
            t = (mean - F) / np.where(se > 0, se, 1e-300)
            p = 2 * stats.t.sf(np.abs(t), replicates - 1)
            entries = (
                [(j,) for j in range(fam.P)]
                if diagonal
                else [(a, b) for a in range(fam.P) for b in range(a, fam.P)]
            )
            for e in entries:
                rows.append((how, i, e, t[e], p[e], mean[e], se[e], F[e]))
            per_point[how, i] = (mean, se, F)
    pvals = np.array([r[4] for r in rows])
    reject = _holm(pvals, alpha)
    if not reject.any():
        return
    w = int(np.argmin(pvals))
    how, i, e, t, p, mean, se, F = rows[w]
    n_bad = len({rows[j][1] for j in np.flatnonzero(reject)})
    name = ", ".join(fam.names[j] for j in e)
    m_all, se_all, F_all = per_point[how, i]
    lines = [
        f"estimator(theta, key) is biased for {fam.label()}'s "
        f"{'Fisher diagonal' if diagonal else 'Fisher'} at {n_bad} of {len(pts)} "
        f"points; worst entry {', '.join(map(str, e))} ({name}) at point {i}:",
        f"  theta = {_fmt(pts[i])}",
        f"  expected F = {float(F)!r} (generated closed form, float64)",
        f"  mean of {replicates} replicates ({how}, {n_samples} draws each) = "
        f"{float(mean)!r} "
        f"± {se:.3g} (standard error from their spread)",
        f"  t = {t:.3g} on {replicates - 1} degrees of freedom, p = {p:.3g}: "
        f"rejected by Holm over {len(rows)} entries at family-wise alpha = {alpha:g}",
    ]
    lines += [
        f"  hint: {h}"
        for h in _hints(fam, m_all, se_all, F_all, diagonal, n_samples, pts[i])
    ]
    raise AssertionError("\n".join(lines))


def _batched_reps(
    estimator: Callable,
    pts: np.ndarray,
    dt: np.dtype,
    shape: tuple[int, ...],
    replicates: int,
    key: jax.Array,
) -> np.ndarray:
    """``(n_points, replicates, *shape)`` estimates from batched calls."""
    n = len(pts)
    if n < 3:  # a batch of fewer than 3 hides sums over the batch: cycle
        pts = np.concatenate([pts] * 3)[: max(3, n)]
    thetas = np.asarray(pts, dt)
    out = []
    for r in range(replicates):
        ks = jax.random.split(jax.random.fold_in(key, r), len(pts))
        got = call(
            estimator,
            f"batched estimator(thetas, keys) (replicate {r})",
            (len(pts), *shape),
            thetas,
            ks,
            event_hint="an extra axis: the estimate is not reduced over the samples?",
        )
        out.append(got[:n].astype(np.float64))
    return np.stack(out, axis=1)
