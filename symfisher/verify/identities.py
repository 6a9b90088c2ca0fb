r"""Per-point identity checks: sampler moments, E[s] = 0, E[s sᵀ] = F, -E[H] = F, entropy.

:func:`_verify_point` draws :math:`x_i \sim p_\theta` with the family's sampler,
averages the per-sample quantities of :func:`_sample_fn` (sharded over devices by
:func:`~symfisher.verify.montecarlo.mc_means`), and turns each entry into a
z-test (:func:`~symfisher.verify.z_checks._z_check`); the KL checks of
:mod:`~symfisher.verify.kl_checks` use the same draws. A family whose support
depends on its parameters gets a "not applicable" report of the estimates
instead; one whose log-density is not twice differentiable skips
:math:`-\mathbb E[H] = F`. The entropy check
:math:`\overline{-\log p_\theta(x_i)} = H(\theta)` (``entropy`` kernel) needs no
regularity, so it runs for every family (Uniform(0, θ) included). Traces record
each estimate's error along the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.families.family import Family
from symfisher.verify.kernel_access import Kernels
from symfisher.verify.kl_checks import _kl_checks, _theta_q
from symfisher.verify.moments import _moments
from symfisher.verify.montecarlo import mc_means
from symfisher.verify.points import _named, _probe
from symfisher.verify.report import Trace
from symfisher.verify.result import Check
from symfisher.verify.solve_checks import solve_checks
from symfisher.verify.z_checks import _z_check


def _sample_fn(K: Kernels, P: int, parts: set[str]) -> Callable:
    """Per-sample quantities; theta_all = concat(theta, theta_q)."""
    log_prob, score, hess = K.get("log_prob"), K.get("score"), K.get("hessian_log_prob")

    def fn(theta_all: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
        theta, theta_q = theta_all[:P], theta_all[P:]
        out = {}
        xf = x.astype(jnp.float64).reshape(x.shape[0], -1)
        out["x"] = xf
        out["x2"] = xf**2
        if "score" in parts:
            s = score(theta, x)
            out["s"] = s
            out["ss"] = s[:, :, None] * s[:, None, :]
        if "hessian_log_prob" in parts:
            out["H"] = hess(theta, x)
        if "log_prob" in parts:
            lp = log_prob(theta, x)
            out["llr"] = lp - log_prob(theta_q, x)
            out["nlp"] = -lp
        return out

    return fn


_FN_CACHE: dict[tuple, tuple[Callable, tuple]] = {}


def _cached_fn(K: Kernels, P: int, parts: set[str]) -> Callable:
    # Keyed by the callables themselves, not by id(K.obj): a mapping may be
    # mutated between runs, and a freed mapping's id may be reused. The cached
    # value holds the callables, so their ids stay unique while cached.
    funcs = tuple(K.get(n) for n in ("log_prob", "score", "hessian_log_prob"))
    key = (tuple(id(f) for f in funcs), P, tuple(sorted(parts)))
    if key not in _FN_CACHE:
        _FN_CACHE[key] = (_sample_fn(K, P, parts), funcs)
    return _FN_CACHE[key][0]


def _generic_sampler_note(fam: Family, theta: np.ndarray) -> Check | None:
    """A report line naming the generic sampler and its error at ``theta``."""
    from symfisher.families.generic_sampler import GenericSampler

    if not isinstance(fam.sampler, GenericSampler):
        return None
    info = fam.sampler.info(theta)
    err = "exact" if info.stated_error == 0 else f"u-error ≤ {info.stated_error:.0e}"
    return Check(
        family=fam.name,
        name=f"sampler: generic {info.method}, {err}",
        entry="",
        point=_named(fam, theta),
        kind="report",
        verdict="report",
        message=info.describe()
        + " (the family has no sampler of its own: pass sampler= to define_family "
        "to use one)",
    )


_SAMPLER_CACHE: dict[tuple, Callable] = {}


def _sampler(fam: Family, P: int) -> Callable:
    key = (fam.name, id(fam.sampler), P)
    if key not in _SAMPLER_CACHE:
        _SAMPLER_CACHE[key] = _make_sampler(fam, P)
    return _SAMPLER_CACHE[key]


def _make_sampler(fam: Family, P: int) -> Callable:
    sample = fam.sampler

    def draw(key: jax.Array, theta_all: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return sample(key, theta_all[:P], shape)

    return draw


_PROBE_CACHE: dict[tuple, tuple[Callable, Callable]] = {}
PROBE_DRAWS = 8


def _probe_draw(fam: Family) -> Callable:
    """``jit(key, theta -> sampler(key, theta, (8,)))``, one program per sampler.

    Called eagerly, a sampler built on ``lax.while_loop`` (gamma, beta, von
    Mises) would compile its loop anew at every point: a fresh closure each time.
    """
    key = (fam.name, id(fam.sampler))
    if key not in _PROBE_CACHE:
        sample = fam.sampler
        draw = jax.jit(lambda k, theta: sample(k, theta, (PROBE_DRAWS,)))
        _PROBE_CACHE[key] = (sample, draw)  # the sampler kept: its id stays unique
    return _PROBE_CACHE[key][1]


def _verify_point(
    fam: Family,
    K: Kernels,
    theta: np.ndarray,
    key: jax.Array,
    n: int,
    chunk: int,
    devices: Sequence[Any] | None,
    smooth: bool = True,
) -> tuple[list[Check], list[Trace]]:
    P = fam.n_params
    named = _named(fam, theta)
    x_probe = _probe_draw(fam)(jax.random.fold_in(key, 12345), jnp.asarray(theta))
    ok, bad = _probe(K, fam, theta, x_probe)
    checks = []
    regular = not fam.support_depends_on_params
    for fname, problem in bad:
        if fname in ("fisher", "kl") and not regular:
            continue
        if fname == "kl" and problem.startswith("not available"):
            checks.append(Check.not_applicable(fam.name, "KL checks", named, problem))
            continue
        if fname == "entropy" and problem.startswith(("not available", "missing")):
            checks.append(Check.not_applicable(fam.name, ENTROPY, named, problem))
            continue
        checks.append(
            Check.error(
                fam.name, f"kernel {fname}", named, f"{fname} at {named}: {problem}"
            )
        )
    F = ok.get("fisher")
    theta_q = _theta_q(fam, theta, F, key)
    parts = set(ok) & {"score", "hessian_log_prob", "log_prob"}
    fn = _cached_fn(K, P, parts)
    est = mc_means(
        fn,
        _sampler(fam, P),
        jnp.asarray(np.concatenate([theta, theta_q])),
        jax.random.fold_in(key, 1),
        n,
        chunk,
        list(devices) if devices is not None else None,
    )
    N = est["x"].n
    traces: list[Trace] = []
    # sampler sanity
    try:
        moments, how = _moments(fam, theta)
    except Exception as e:
        moments, how = [], f"moments unavailable ({type(e).__name__})"
    if not moments:
        checks.append(Check.not_applicable(fam.name, "sampler moments", named, how))
    for label, value, scale, second, j in moments:
        e = est["x2" if second else "x"]
        checks.append(
            _z_check(
                fam,
                theta,
                "sampler moments",
                label,
                e.mean[j],
                e.se[j],
                value,
                scale,
                N,
            )
        )
    if "entropy" in ok and "nlp" in est:
        c = entropy_check(fam, K, theta, float(ok["entropy"]), est["nlp"], N)
        checks.append(c)
        traces.append(
            _trace(
                fam, ENTROPY, est["nlp"], np.asarray(c.expected), np.asarray(c.scale)
            )
        )
    if not regular:
        checks.append(_non_regular(fam, theta, est, ok))
        return checks, traces
    if F is None:
        return checks, traces
    d = np.sqrt(np.abs(np.diag(F)))
    f_bound = K.accuracy("fisher") * float(np.max(np.abs(F)))  # quadrature F
    if "score" in ok:
        s = est["s"]
        for i in range(P):
            checks.append(
                _z_check(
                    fam, theta, "E[s] = 0", f"({i})", s.mean[i], s.se[i], 0.0, d[i], N
                )
            )
        ss = est["ss"]
        for i in range(P):
            for j in range(i, P):
                checks.append(
                    _z_check(
                        fam,
                        theta,
                        "E[s s^T] = F",
                        f"({i}, {j})",
                        ss.mean[i, j],
                        ss.se[i, j],
                        F[i, j],
                        d[i] * d[j],
                        N,
                        f_bound,
                    )
                )
        traces.append(_trace(fam, "E[s s^T] = F", ss, F, np.outer(d, d)))
    if "hessian_log_prob" in ok and not smooth:
        checks.append(
            Check.not_applicable(
                fam.name,
                "-E[H] = F",
                named,
                "the log-density is not twice differentiable in the parameters "
                "(e.g. |x - mu|): the pointwise Hessian misses the Dirac mass of the "
                "second derivative, so -E[H] = F does not hold for it; E[s sᵀ] = F does",
            )
        )
    elif "hessian_log_prob" in ok:
        H = est["H"]
        for i in range(P):
            for j in range(i, P):
                checks.append(
                    _z_check(
                        fam,
                        theta,
                        "-E[H] = F",
                        f"({i}, {j})",
                        -H.mean[i, j],
                        H.se[i, j],
                        F[i, j],
                        d[i] * d[j],
                        N,
                        f_bound,
                    )
                )
        traces.append(_trace(fam, "-E[H] = F", H, -F, np.outer(d, d)))
    if F is not None:
        checks += solve_checks(fam, K, theta, F)
    if "kl" in ok:
        kl_checks = _kl_checks(fam, K, theta, theta_q, F, est.get("llr"), N, key)
        checks += kl_checks
        mc = [c for c in kl_checks if c.name == "MC KL = KL"]
        if mc:  # the closed-form KL that check compared against
            kl_val = mc[0].expected
            traces.append(
                _trace(
                    fam,
                    "MC KL = KL",
                    est["llr"],
                    np.asarray(kl_val),
                    np.asarray(abs(kl_val)),
                )
            )
    return checks, traces


#: name of the entropy check in reports
ENTROPY = "MC entropy = H"


def entropy_check(
    fam: Family, K: Kernels, theta: np.ndarray, H: float, nlp: Any, N: int
) -> Check:
    r"""z-test of :math:`\overline{-\log p_\theta(x_i)}` against the kernel's :math:`H(\theta)`.

    The scale is :math:`\max(1, |H|)`: an entropy may be 0 or negative, so
    errors are relative above 1 nat and absolute below. A quadrature kernel's
    stated accuracy (relative to the same scale) widens the test.
    """
    scale = max(1.0, abs(H))
    return _z_check(
        fam,
        theta,
        ENTROPY,
        "",
        float(nlp.mean),
        float(nlp.se),
        H,
        scale,
        N,
        K.accuracy("entropy") * scale,
    )


def _non_regular(
    fam: Family, theta: np.ndarray, est: dict[str, Any], ok: dict[str, Any]
) -> Check:
    parts = []
    if "s" in est:
        parts.append(f"E[s] ≈ {np.round(est['s'].mean, 6).tolist()} (not 0)")
        parts.append(f"E[s²] ≈ {np.round(np.diag(est['ss'].mean), 6).tolist()}")
    if "H" in est:
        parts.append(f"-E[H] ≈ {np.round(-np.diag(est['H'].mean), 6).tolist()}")
    return Check(
        family=fam.name,
        name="Fisher identities",
        entry="",
        point=_named(fam, theta),
        kind="report",
        verdict="not applicable",
        message="the support depends on the parameters, so differentiation and integration "
        "do not commute and the identities E[s] = 0, E[s sᵀ] = -E[H] fail: "
        + "; ".join(parts),
    )


def _trace(
    fam: Family, name: str, e: Any, expected: np.ndarray, scale: np.ndarray
) -> Trace:
    err = np.abs(e.trace_mean - expected) / np.where(scale > 0, scale, 1.0)
    axes = tuple(range(1, err.ndim))
    worst = np.max(err, axis=axes) if axes else err
    sd = e.se * np.sqrt(e.n) / np.where(scale > 0, scale, 1.0)
    ref = float(np.max(sd)) / np.sqrt(e.trace_n)
    return Trace(fam.name, name, e.trace_n.tolist(), worst.tolist(), ref.tolist())
