"""Hints: the known bug patterns a failing comparison is matched against."""

from __future__ import annotations

import numpy as np

from symfisher.testing.setup import _Fam, _fmt, _ref


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


def _ratio_hint(
    c: float, n_states: int | None = None, n_dims: int | None = None
) -> str | None:
    def near(a: float) -> bool:
        return abs(c - a) <= 1e-4 * max(abs(a), 1e-12)

    if n_dims and n_dims > 1 and near(1.0 / n_dims):
        return (
            f"off by exactly 1/d = 1/{n_dims} everywhere, d the number of action "
            "dimensions: a mean over the action's dimensions where a sum was meant"
            + (" (or a 1/2 applied twice)" if n_dims == 2 else "")
            + "?"
        )

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
    if n_dims and n_dims > 1 and near(float(n_dims)):
        return (
            f"off by exactly d = {n_dims} everywhere, d the number of action "
            "dimensions: summed over dimensions twice?"
        )
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
    names = ", ".join(fam.names[i] for i in idx)
    if np.all(np.abs(G[idx, :]) <= 1e-12 * max(np.abs(F).max(), 1e-300)) and np.all(
        np.abs(diag_f) > 0
    ):
        return (
            f"the log σ rows and columns ({names}) are 0: the log σ block is "
            "missing (log σ held constant, under stop_gradient, or left out of the "
            "parameters the KL is differentiated in)?"
        )
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
        # empirical weights are frequencies: nonnegative, summing to 1
        freq = w.min() >= -1e-9 and abs(w.sum() - 1) <= 1e-6
        if fit and freq and np.abs(w - p).max() > 1e-3:
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
        hints.append(_ratio_hint(c, n_dims=len(fam.family.variables)))
    h = _probs_as_logits_hint(fam, theta, G)
    if h:
        return [*hints, h]
    for h in (_logstd_hint(fam, theta, G, F), _empirical_hint(fam, theta, G, F)):
        if h:
            hints.append(h)
    if not hints and not np.allclose(G, G.T, rtol=1e-6, atol=1e-12 * np.abs(G).max()):
        hints.append("got is not symmetric; a Fisher matrix is")
    return hints


def _probs_as_logits_hint(fam: _Fam, theta: np.ndarray, G: np.ndarray) -> str | None:
    """Softmax logits: is ``G`` the Fisher at softmax(theta) (probabilities as logits)?"""
    if fam.name != "categorical_softmax" or not np.isfinite(G).all():
        return None
    z = np.asarray(theta, np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    Fp = _ref(fam.kernels.fisher, p)
    if np.allclose(G, Fp, rtol=1e-6, atol=1e-12 * max(np.abs(Fp).max(), 1e-300)):
        return (
            "got equals the Fisher at softmax(theta): probabilities passed where "
            "logits were expected (softmax applied twice)?"
        )
    return None


def _damping_hint(
    F: np.ndarray, g: np.ndarray, got: np.ndarray, damping: float
) -> str | None:
    r"""Does ``got`` solve :math:`(F + \lambda' I) x = g` for a damping other than ours?"""
    got = np.asarray(got, np.float64)
    if not np.isfinite(got).all() or not np.any(got):
        return None
    lam = float((g - F @ got) @ got / (got @ got))
    res = np.abs(F @ got + lam * got - g).max()
    if lam <= 0 or res > 1e-5 * max(np.abs(g).max(), 1e-300):
        return None
    if abs(lam - damping) <= 1e-3 * max(lam, damping):
        return None
    return (
        f"got solves (F + λI) x = g with λ = {lam:.3g}, but the assertion's damping "
        f"is {damping:g}: the damping differs (pass damping={lam:.3g} if your "
        "solver is meant to use it)"
    )
