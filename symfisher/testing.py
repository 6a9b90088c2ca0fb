r"""A correctness oracle for your own Fisher, FVP, KL and natural-gradient code.

Each assertion calls your function at seeded valid parameter points of a family
(or at points you pass), compares it with symfisher's generated closed forms
evaluated in float64, and raises :class:`AssertionError` naming the worst entry,
the point, expected and got, and a hint when the error matches a known bug:

.. code-block:: python

    from symfisher.testing import assert_fvp_close
    assert_fvp_close(my_fvp, "categorical_softmax")   # my_fvp(theta, v) -> F v

Your function is called with one parameter vector :math:`\theta` (and one
direction :math:`v`) of shape ``(P,)`` in the family's parameter order
(``sf.family(name).param_names``), as ``jax.numpy`` arrays of ``dtype``
(default: JAX's default float, float64 under ``JAX_ENABLE_X64``).

Tolerances. An entry passes when :math:`|\text{got} - \text{expected}| \le
\text{atol} + \text{rtol}\cdot\text{scale}`, with a scale that bounds the
entry's size (and so the round-off of any correct computation of it):

* Fisher :math:`F_{ij}`: :math:`\sqrt{F_{ii} F_{jj}}` (Cauchy–Schwarz,
  :math:`|F_{ij}| \le \sqrt{F_{ii}F_{jj}}`);
* FVP :math:`(Fv)_i`: :math:`\sqrt{F_{ii}}\sum_j \sqrt{F_{jj}}\,|v_j|`;
* KL: :math:`|\mathrm{KL}|`; policy FVP: :math:`\|Fv\|_\infty`;
* natural gradient :math:`x = (F + \lambda I)^{-1} g`: :math:`\kappa\,\|x\|_\infty`
  with :math:`\kappa` the condition number of :math:`F + \lambda I` (on the range
  of :math:`F` when :math:`\lambda = 0`), the forward-error bound of a
  backward-stable solve.

The default ``rtol`` is :math:`\sqrt{\varepsilon}` of the dtype of your output
(1.5e-8 in float64, 3.5e-4 in float32): half the digits may be lost to
cancellation, while every bug pattern above is an O(1) relative error.
``atol`` defaults to 0.

Hypothesis strategies of valid parameters: :func:`params_strategy`,
:func:`direction_strategy`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.errors import DomainError, FamilyError

__all__ = [
    "assert_fisher_close",
    "assert_fvp_close",
    "assert_kl_close",
    "assert_natural_gradient_close",
    "assert_policy_fvp_close",
    "direction_strategy",
    "params_strategy",
]

#: Number of seeded points an assertion picks when none are passed.
N_POINTS = 5


# --------------------------------------------------------------------------
# families and points


@dataclass(frozen=True)
class _Fam:
    name: str
    family: Any  # symfisher Family
    kernels: ModuleType
    names: tuple[str, ...]

    @property
    def P(self) -> int:
        return len(self.names)

    def label(self) -> str:
        return f"{self.name}({', '.join(self.names)})"


def _resolve(family: Any, path: str | Path | None) -> _Fam:
    from symfisher.families.catalog import family as catalog_family
    from symfisher.natural.family import family_kernels

    if isinstance(family, str):
        fam = catalog_family(family)
    elif hasattr(family, "params") and hasattr(family, "name"):
        fam = family
    else:
        raise FamilyError(
            "family must be a catalog name or a family object such as "
            f"sf.family('categorical_softmax', K=5); got {family!r}"
        )
    k = family_kernels(fam, path)
    return _Fam(fam.name, fam, k, tuple(fam.param_names))


def _points(fam: _Fam, points: Any, n_points: int, seed: int) -> np.ndarray:
    """``(n, P)`` float64 valid points: the caller's, validated, or seeded random ones."""
    if points is None:
        from symfisher.derive.numeric import random_point

        if not isinstance(n_points, int) or n_points < 1:
            raise ValueError(f"n_points must be an integer >= 1; got {n_points!r}")
        rng = random.Random(seed)
        pts = [random_point(fam.family, rng) for _ in range(n_points)]
        return np.array([[pt[p] for p in fam.family.params] for pt in pts], float)
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[-1] != fam.P:
        raise ValueError(
            f"points must have shape (n, {fam.P}) or ({fam.P},) for {fam.label()}; "
            f"got shape {np.shape(points)}"
        )
    for row in arr:
        fam.family.point(list(row))  # DomainError naming the parameter
    return arr


def _directions(n: int, P: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 1]).standard_normal((n, P))


def _dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(jnp.zeros(()).dtype if dtype is None else dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype must be a floating dtype; got {dt}")
    return dt


def _rtol(rtol: float | None, got: np.ndarray) -> float:
    if rtol is not None:
        if not rtol >= 0:
            raise ValueError(f"rtol must be >= 0; got {rtol!r}")
        return float(rtol)
    dt = got.dtype if np.issubdtype(got.dtype, np.floating) else np.float64
    return float(np.sqrt(np.finfo(dt).eps))


def _check_atol(atol: float) -> None:
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0; got {atol!r}")


def _call(fn: Callable, what: str, shape: tuple[int, ...], *args: Any) -> np.ndarray:
    """Call the user's function and check the shape of its output."""
    out = fn(*args)
    try:
        arr = np.asarray(out)
    except Exception as e:
        raise AssertionError(
            f"{what} returned {type(out).__name__}, not an array"
        ) from e
    if arr.shape != shape:
        raise AssertionError(f"{what} returned shape {arr.shape}; expected {shape}")
    return arr


def _ref(fn: Callable, *args: np.ndarray) -> np.ndarray:
    """A generated kernel evaluated in float64."""
    with jax.enable_x64(True):
        return np.asarray(fn(*(np.asarray(a, np.float64) for a in args)), np.float64)


def _fmt(a: Any) -> str:
    return np.array2string(
        np.asarray(a, np.float64), precision=10, separator=", ", max_line_width=100
    )


# --------------------------------------------------------------------------
# hints: known bug patterns


def _constant_ratio(
    got: np.ndarray, exp: np.ndarray, scale: np.ndarray
) -> float | None:
    """``c`` when ``got = c * expected`` on every significant entry (to 1e-6)."""
    mask = np.abs(exp) > 1e-3 * np.max(np.abs(exp), initial=0.0)
    if not mask.any() or not np.isfinite(got).all():
        return None
    c = float(np.sum(got[mask] * exp[mask]) / np.sum(exp[mask] ** 2))
    if np.all(
        np.abs(got - c * exp) <= 1e-6 * (np.abs(c) + 1) * np.maximum(scale, 1e-300)
    ):
        return c
    return None


def _ratio_hint(c: float, n_states: int | None = None) -> str | None:
    def near(a: float) -> bool:
        return abs(c - a) <= 1e-4 * max(abs(a), 1e-12)

    if abs(c) <= 1e-6:
        return (
            "got is (nearly) 0 where expected is not: the Hessian of a KL computed "
            "on raw logits, sum p (z_p - z_q), vanishes in z_q: KL computed on raw "
            "logits instead of log-probabilities (log_softmax)?"
        )
    if near(2.0):
        return (
            "off by exactly 2 everywhere: a KL missing its 1/2 (the Hessian of "
            "2 KL is 2F), or a Gaussian KL without its 1/2?"
        )
    if near(0.5):
        return "off by exactly 1/2 everywhere: a 1/2 applied twice (1/2 times the Hessian of KL)?"
    if near(-1.0):
        return "sign flipped: the Hessian of log p instead of minus it?"
    if n_states and n_states > 1 and near(float(n_states)):
        return f"off by exactly N = {n_states}: a sum over states instead of a mean?"
    if n_states and n_states > 1 and near(1.0 / n_states):
        return (
            f"off by exactly 1/N = 1/{n_states}: divided by the number of states twice?"
        )
    return f"off by a constant factor {c:.6g} everywhere"


def _logstd_indices(fam: _Fam) -> list[int]:
    return [i for i, n in enumerate(fam.names) if n.split("_")[0] == "omega"]


def _logstd_hint(
    fam: _Fam, theta: np.ndarray, G: np.ndarray, F: np.ndarray
) -> str | None:
    """Patterns on the log-sigma rows and columns of a Fisher-like matrix."""
    idx = _logstd_indices(fam)
    if not idx:
        return None
    others = [i for i in range(fam.P) if i not in idx]
    ok_others = np.allclose(
        G[np.ix_(others, others)], F[np.ix_(others, others)], rtol=1e-6, atol=1e-12
    )
    diag_g, diag_f = np.diag(G)[idx], np.diag(F)[idx]
    if not (np.isfinite(diag_g).all() and (diag_f != 0).all()):
        return None
    ratio = diag_g / diag_f
    sigma = np.exp(theta[idx])
    for power in (-2, 2):
        if np.allclose(ratio, sigma**power, rtol=1e-6) and not np.allclose(sigma, 1):
            return (
                f"log σ entries are σ^{power} times the expected ones: the Fisher "
                "for σ used with log σ? (F_logσ = (dσ/dlogσ)² F_σ = σ² F_σ)"
            )
    nice = any(np.isclose(ratio[0], c, rtol=1e-6) for c in (2, 0.5, 4, 0.25))
    same = np.allclose(ratio, ratio[0], rtol=1e-6) and (len(idx) > 1 or nice)
    if same and ok_others and not np.isclose(ratio[0], 1):
        return (
            f"off by exactly {ratio[0]:.6g} on log σ entries "
            f"({', '.join(fam.names[i] for i in idx)}): Fisher for σ used with log σ?"
        )
    return None


def _finite_support(fam: _Fam) -> list[int] | None:
    from symfisher.families.family import finite_values

    fam_obj = fam.family
    if len(fam_obj.supports) != 1:
        return None
    vals = finite_values(fam_obj.supports[0])
    if vals is None or len(vals) > 64:
        return None
    return [int(v) for v in vals]


def _empirical_hint(
    fam: _Fam, theta: np.ndarray, G: np.ndarray, F: np.ndarray
) -> str | None:
    r"""Is ``G`` a weighted sum of score outer products with weights other than p?"""
    if not np.isfinite(G).all():
        return None
    support = _finite_support(fam)
    if support is not None:
        k = fam.kernels
        S = np.stack([_ref(k.score, theta, np.asarray(x, float)) for x in support])
        p = np.exp([_ref(k.log_prob, theta, np.asarray(x, float)) for x in support])
        A = np.stack([np.outer(s, s).ravel() for s in S], axis=1)
        w, *_ = np.linalg.lstsq(A, G.ravel(), rcond=None)
        fit = np.abs(A @ w - G.ravel()).max() <= 1e-6 * max(np.abs(G).max(), 1e-300)
        if fit and np.abs(w - p).max() > 1e-3:
            return (
                f"got = sum_x w_x s(x) s(x)^T with weights w = {_fmt(w)} instead of "
                f"p(x) = {_fmt(p)}: the empirical Fisher (outer products of "
                "observed-label scores) where the true Fisher E_x~p[s s^T] was meant?"
            )
    rank_g = np.linalg.matrix_rank(G, tol=1e-8 * max(np.abs(G).max(), 1e-300))
    rank_f = np.linalg.matrix_rank(F, tol=1e-8 * max(np.abs(F).max(), 1e-300))
    if (
        rank_g < rank_f
        and np.allclose(G, G.T)
        and np.linalg.eigvalsh(G).min() > -1e-8 * np.abs(G).max()
    ):
        return (
            f"got has rank {rank_g} but the Fisher has rank {rank_f}: an outer "
            "product of a few observed scores (empirical Fisher) instead of the "
            "expectation under the model?"
        )
    return None


def _matrix_hints(
    fam: _Fam, theta: np.ndarray, G: np.ndarray, F: np.ndarray
) -> list[str]:
    hints = []
    if not np.isfinite(G).all():
        return ["non-finite values in got"]
    scale = np.sqrt(np.outer(np.abs(np.diag(F)), np.abs(np.diag(F))))
    c = _constant_ratio(G, F, scale)
    if c is not None:
        hints.append(_ratio_hint(c))
    for h in (_logstd_hint(fam, theta, G, F), _empirical_hint(fam, theta, G, F)):
        if h:
            hints.append(h)
    if not hints and not np.allclose(G, G.T, rtol=1e-6, atol=1e-12 * np.abs(G).max()):
        hints.append("got is not symmetric; a Fisher matrix is")
    return hints


# --------------------------------------------------------------------------
# failure reports


@dataclass
class _Worst:
    excess: float = -np.inf  # (|err| - atol) / scale, compared with rtol
    point: int = -1
    entry: tuple[int, ...] = ()
    got: float = 0.0
    expected: float = 0.0
    scale: float = 0.0
    failed: int = 0


def _update(
    worst: _Worst,
    i: int,
    got: np.ndarray,
    exp: np.ndarray,
    scale: np.ndarray,
    atol: float,
    rtol: float,
) -> bool:
    """Record point ``i``'s worst entry; return whether the point fails."""
    err = np.abs(got.astype(np.float64) - exp)
    err = np.where(np.isfinite(got), err, np.inf)
    safe = np.where(scale > 0, scale, np.finfo(float).tiny)
    excess = (err - atol) / safe
    j = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    bad = bool(np.any(err > atol + rtol * scale))
    if bad:
        worst.failed += 1
    if excess[j] > worst.excess:
        worst.excess = float(excess[j])
        worst.point, worst.entry = i, tuple(int(x) for x in j)
        worst.got, worst.expected, worst.scale = (
            float(got[j]),
            float(exp[j]),
            float(scale[j]),
        )
    return bad


def _fail(
    what: str,
    fam_label: str,
    worst: _Worst,
    n: int,
    entry_name: str,
    context: list[str],
    rtol: float,
    atol: float,
    scale_text: str,
    hints: list[str],
    at: str = "point",
) -> None:
    lines = [
        f"{what} differs from symfisher ({fam_label}) at {worst.failed} of {n} {at}s; "
        f"worst {entry_name} at {at} {worst.point}:",
        *context,
        f"  expected {worst.expected!r} (generated closed form, float64)",
        f"  got      {worst.got!r}",
        f"  |got - expected| = {abs(worst.got - worst.expected):.3g} > "
        f"atol + rtol * scale = {atol:g} + {rtol:.3g} * {worst.scale:.3g}  ({scale_text})",
    ]
    lines += [f"  hint: {h}" for h in hints]
    raise AssertionError("\n".join(lines))


def _entry_name(fam: _Fam, entry: tuple[int, ...]) -> str:
    if not entry:
        return "value"
    return (
        f"entry {', '.join(map(str, entry))} ({', '.join(fam.names[i] for i in entry)})"
    )


# --------------------------------------------------------------------------
# assertions


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
    path: str | Path | None = None,
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
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float).
      path: folder of a user family's generated kernels.

    Raises:
      AssertionError: naming the worst entry, the point, expected vs got, and a
        hint when the error matches a known bug pattern.
    """
    fam = _resolve(family, path)
    _check_atol(atol)
    pts, dt = _points(fam, points, n_points, seed), _dtype(dtype)
    worst, rt = _Worst(), None
    mats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, theta in enumerate(pts):
        got = _call(fn, "fn(theta)", (fam.P, fam.P), jnp.asarray(theta, dt))
        rt = _rtol(rtol, got) if rt is None else rt
        F = _ref(fam.kernels.fisher, theta)
        d = np.sqrt(np.abs(np.diag(F)))
        _update(worst, i, got, F, np.outer(d, d), atol, rt)
        mats[i] = (got.astype(np.float64), F)
    if worst.failed:
        G, F = mats[worst.point]
        _fail(
            "fn(theta)",
            fam.label(),
            worst,
            len(pts),
            _entry_name(fam, worst.entry),
            [f"  theta = {_fmt(pts[worst.point])}"],
            rt,
            atol,
            "scale = sqrt(F_ii F_jj)",
            _matrix_hints(fam, pts[worst.point], G, F),
        )


def _probe_matrix(
    fn: Callable, theta: np.ndarray, P: int, dt: np.dtype
) -> np.ndarray | None:
    """The matrix ``[fn(theta, e_1), ..., fn(theta, e_P)]`` (for hints), or None."""
    if P > 64:
        return None
    try:
        cols = [
            np.asarray(fn(jnp.asarray(theta, dt), jnp.asarray(e, dt)), np.float64)
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
    path: str | Path | None = None,
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
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float).
      path: folder of a user family's generated kernels.

    Raises:
      AssertionError: as :func:`assert_fisher_close`; on failure the hint looks
        at the whole matrix ``[fn(theta, e_j)]_j`` at the worst point.
    """
    fam = _resolve(family, path)
    _check_atol(atol)
    pts, dt = _points(fam, points, n_points, seed), _dtype(dtype)
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
    worst, rt = _Worst(), None
    for i, (theta, v) in enumerate(zip(pts, vs, strict=True)):
        got = _call(
            fn, "fn(theta, v)", (fam.P,), jnp.asarray(theta, dt), jnp.asarray(v, dt)
        )
        rt = _rtol(rtol, got) if rt is None else rt
        exp = _ref(fam.kernels.fvp, theta, v)
        d = np.sqrt(np.abs(_ref(fam.kernels.fisher_diag, theta)))
        _update(worst, i, got, exp, d * np.sum(d * np.abs(v)), atol, rt)
    if worst.failed:
        theta, v = pts[worst.point], vs[worst.point]
        G = _probe_matrix(fn, theta, fam.P, dt)
        hints = []
        if G is not None:
            hints = _matrix_hints(fam, theta, G, _ref(fam.kernels.fisher, theta))
            hints = [
                h.replace("got ", "the matrix [fn(theta, e_j)] ", 1)
                if h.startswith("got ")
                else h
                for h in hints
            ]
        _fail(
            "fn(theta, v)",
            fam.label(),
            worst,
            len(pts),
            _entry_name(fam, worst.entry),
            [f"  theta = {_fmt(theta)}", f"  v     = {_fmt(v)}"],
            rt,
            atol,
            "scale = sqrt(F_ii) sum_j sqrt(F_jj) |v_j|",
            hints,
        )


def _pairs(pts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (p, q): each point with the next one, cyclically."""
    n = len(pts)
    if n < 2:
        raise ValueError(f"assert_kl_close needs at least 2 points; got {n}")
    return [(pts[i], pts[(i + 1) % n]) for i in range(n)]


def assert_kl_close(
    fn: Callable[[jax.Array, jax.Array], Any],
    family: Any,
    points: Any = None,
    *,
    n_points: int = N_POINTS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
    path: str | Path | None = None,
) -> None:
    r"""Assert ``fn(theta_p, theta_q)`` equals :math:`\mathrm{KL}(p_{\theta_p} \,\|\, p_{\theta_q})`.

    The pairs are consecutive points (cyclically): :math:`(\theta_1,\theta_2),
    \dots, (\theta_n, \theta_1)`, so both argument orders are met.

    .. math:: |\mathrm{got} - \mathrm{KL}| \le \mathrm{atol} + \mathrm{rtol}\,|\mathrm{KL}|

    Args:
      fn: ``fn(theta_p, theta_q) -> scalar``.
      family: a catalog name or a family object.
      points: ``(n, P)`` parameter points, n >= 2; default seeded random ones.
      n_points: how many points to pick when ``points`` is None.
      seed: seed of the picked points and directions.
      rtol: relative tolerance; default :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance (default 0).
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float).
      path: folder of a user family's generated kernels.

    Raises:
      AssertionError: naming the worst pair, expected vs got, and a hint (a
        missing 1/2, raw logits instead of log-probabilities, swapped arguments).
    """
    fam = _resolve(family, path)
    _check_atol(atol)
    pts, dt = _points(fam, points, n_points, seed), _dtype(dtype)
    pairs = _pairs(pts)
    worst, rt = _Worst(), None
    gots, exps = [], []
    for i, (p, q) in enumerate(pairs):
        got = _call(
            fn, "fn(theta_p, theta_q)", (), jnp.asarray(p, dt), jnp.asarray(q, dt)
        )
        rt = _rtol(rtol, got) if rt is None else rt
        exp = _ref(fam.kernels.kl, p, q)
        _update(worst, i, got, exp, np.abs(exp), atol, rt)
        gots.append(float(got))
        exps.append(float(exp))
    if worst.failed:
        p, q = pairs[worst.point]
        _fail(
            "fn(theta_p, theta_q)",
            fam.label(),
            worst,
            len(pairs),
            "pair",
            [f"  theta_p = {_fmt(p)}", f"  theta_q = {_fmt(q)}"],
            rt,
            atol,
            "scale = |KL|",
            _kl_hints(fam, pairs, np.array(gots), np.array(exps)),
        )


def _kl_hints(fam: _Fam, pairs: list, got: np.ndarray, exp: np.ndarray) -> list[str]:
    if not np.isfinite(got).all():
        return ["non-finite values in got"]
    hints = []
    c = _constant_ratio(got, exp, np.abs(exp))
    if c is not None:
        if abs(c - 2) < 1e-4:
            hints.append("off by exactly 2 at every pair: KL missing its 1/2?")
        elif abs(c - 0.5) < 1e-4:
            hints.append("off by exactly 1/2 at every pair: an extra 1/2?")
        else:
            hints.append(f"off by a constant factor {c:.6g} at every pair")
    k = fam.kernels
    swapped = np.array([_ref(k.kl, q, p) for p, q in pairs])
    if np.allclose(got, swapped, rtol=1e-6, atol=1e-12) and not np.allclose(
        exp, swapped
    ):
        hints.append("got = KL(q || p): arguments swapped (KL is not symmetric)?")
    if fam.name == "categorical_softmax":
        from scipy.special import logsumexp

        lse = [logsumexp(p) - logsumexp(q) for p, q in pairs]
        if np.allclose(got - exp, lse, rtol=1e-6, atol=1e-9):
            hints.append(
                "got - expected = logsumexp(z_p) - logsumexp(z_q) at every pair: KL "
                "computed on raw logits instead of log-probabilities (log_softmax)?"
            )
    return hints


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
    path: str | Path | None = None,
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
      dtype: dtype of the arrays passed to ``fn`` (default JAX's default float).
      path: folder of a user family's generated kernels.

    Raises:
      ValueError: for negative ``damping``.
      AssertionError: naming the worst entry, with hints (non-finite or
        exploding results of an undamped solve of a singular Fisher, damping not
        applied, a plain gradient).
    """
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0; got {damping!r}")
    fam = _resolve(family, path)
    _check_atol(atol)
    pts, dt = _points(fam, points, n_points, seed), _dtype(dtype)
    if gradients is None:
        gs = _directions(len(pts), fam.P, seed + 7)
    else:
        gs = np.asarray(gradients, float)
        if gs.shape != pts.shape:
            raise ValueError(
                f"gradients must have shape {pts.shape}; got shape {gs.shape}"
            )
    worst, rt = _Worst(), None
    cases = []
    for i, (theta, g) in enumerate(zip(pts, gs, strict=True)):
        got = _call(
            fn, "fn(theta, g)", (fam.P,), jnp.asarray(theta, dt), jnp.asarray(g, dt)
        )
        rt = _rtol(rtol, got) if rt is None else rt
        F = _ref(fam.kernels.fisher, theta)
        x, kappa = _solve(F, g, damping)
        _update(worst, i, got, x, np.full(fam.P, kappa * np.abs(x).max()), atol, rt)
        cases.append((theta, g, got.astype(np.float64), F, x))
    if worst.failed:
        theta, g, got, F, x = cases[worst.point]
        _fail(
            "fn(theta, g)",
            fam.label(),
            worst,
            len(pts),
            _entry_name(fam, worst.entry),
            [
                f"  theta = {_fmt(theta)}",
                f"  g     = {_fmt(g)}",
                f"  damping = {damping:g}",
            ],
            rt,
            atol,
            "scale = cond(F + damping I) * max|x|",
            _ng_hints(F, g, got, x, damping),
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
) -> None:
    r"""Assert your policy FVP equals :math:`\frac1N\sum_n J_n^\top F_{\mathrm{out}} J_n v`.

    The reference is :func:`symfisher.natural.policy_fvp`, evaluated in float64
    (``params`` and ``states`` cast) where ``apply_fn`` allows it.

    .. math:: |(\hat F v)_i - (F v)_i| \le \mathrm{atol} + \mathrm{rtol}\,\|F v\|_\infty

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

    Raises:
      AssertionError: naming the worst weight entry, expected vs got, and a hint
        (a KL missing its 1/2, raw logits, a sum over states instead of a mean).
    """
    from jax.flatten_util import ravel_pytree

    from symfisher.natural.policy import policy_fvp

    _check_atol(atol)
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
        out = fn(params, states, v)
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
        )
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

    from symfisher.natural.policy import policy_fvp

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


# --------------------------------------------------------------------------
# Hypothesis strategies


def _family_object(family: Any) -> Any:
    if isinstance(family, str):
        from symfisher.families.catalog import family as catalog_family

        return catalog_family(family)
    if hasattr(family, "params") and hasattr(family, "domains"):
        return family
    raise FamilyError(
        f"family must be a catalog name or a family object; got {family!r}"
    )


def _hypothesis():
    try:
        from hypothesis import strategies as st
    except ImportError as e:  # pragma: no cover - hypothesis is a test extra
        raise ImportError(
            "symfisher.testing strategies need Hypothesis: pip install hypothesis"
        ) from e
    return st


def params_strategy(
    family: Any,
    *,
    real_bound: float = 3.0,
    log_bound: float = 2.0,
    unit_margin: float = 0.02,
):
    r"""A Hypothesis strategy of valid parameter vectors of ``family``, shape ``(P,)``.

    Each parameter is drawn inside its domain, moderate in scale:

    * real line: uniform-ish on :math:`[-\text{real\_bound}, \text{real\_bound}]`;
    * half-lines :math:`(a, \infty)`: :math:`a + e^{u}`,
      :math:`u \in [-\text{log\_bound}, \text{log\_bound}]` (likewise
      :math:`(-\infty, b)`);
    * intervals :math:`(a, b)`: the inner :math:`1 - 2\,\text{unit\_margin}` of it.

    Joint constraints (the simplex of ``categorical``) are met by construction
    for ``categorical`` (normalised positive weights) and by filtering otherwise.

    Args:
      family: a catalog name or a family object.
      real_bound: bound of real-valued parameters.
      log_bound: bound of the log-offset of half-line parameters.
      unit_margin: margin kept from the ends of bounded intervals.

    Returns:
      ``SearchStrategy[numpy.ndarray]`` of float64 vectors in family order.

    Example:
      >>> from hypothesis import given
      >>> @given(theta=params_strategy("gamma"))
      ... def test_mine(theta): ...
    """
    import sympy as sp

    st = _hypothesis()
    fam_obj = _family_object(family)
    if not (real_bound > 0 and log_bound > 0 and 0 <= unit_margin < 0.5):
        raise ValueError(
            "real_bound and log_bound must be > 0 and unit_margin in [0, 0.5); got "
            f"{real_bound!r}, {log_bound!r}, {unit_margin!r}"
        )

    def one(dom):
        lo, hi = dom.inf, dom.sup
        if lo == -sp.oo and hi == sp.oo:
            return st.floats(-real_bound, real_bound)
        offsets = st.floats(-log_bound, log_bound).map(math.exp)
        if hi == sp.oo:
            return offsets.map(lambda e, a=float(lo): a + e)
        if lo == -sp.oo:
            return offsets.map(lambda e, b=float(hi): b - e)
        a, b = float(lo), float(hi)
        return st.floats(a + unit_margin * (b - a), b - unit_margin * (b - a))

    if fam_obj.name == "categorical" and fam_obj.constraints:
        K = len(fam_obj.params) + 1
        weights = st.lists(
            st.floats(-log_bound, log_bound).map(math.exp), min_size=K, max_size=K
        )
        return weights.map(lambda w: np.asarray(w[:-1], float) / sum(w))

    vec = st.tuples(*(one(d) for d in fam_obj.domains)).map(
        lambda t: np.asarray(t, float)
    )
    if not fam_obj.constraints:
        return vec

    def valid(theta: np.ndarray) -> bool:
        try:
            fam_obj.point(list(theta))
        except DomainError:
            return False
        return True

    return vec.filter(valid)


def direction_strategy(family: Any, *, bound: float = 3.0):
    """A Hypothesis strategy of directions ``v`` of shape ``(P,)``, entries in ``[-bound, bound]``.

    Args:
      family: a catalog name or a family object (fixes ``P``).
      bound: largest absolute entry.
    """
    st = _hypothesis()
    P = len(_family_object(family).params)
    return st.tuples(*(st.floats(-bound, bound) for _ in range(P))).map(
        lambda t: np.asarray(t, float)
    )
