"""(b) The maximum-likelihood estimator by Fisher scoring, and its efficiency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.verify.cramer_rao.common import (
    _COMPILED,
    _K,
    ARMIJO,
    CHUNK_DRAWS,
    DECREMENT_TOL,
    HALVINGS,
    ITERATIONS,
    MAX_NONCONVERGED,
    MAX_TRIALS,
    STEP_TOL,
    _Ctx,
    _jpinv,
    _KernelError,
    _range,
    _valid,
)
from symfisher.verify.cramer_rao.unbiased import _covs, _null_log_extremes
from symfisher.verify.result import Check
from symfisher.verify.stats import z_test


# -- (b) MLE by Fisher scoring -------------------------------------------------
def _compiled(
    tag: tuple, fns: tuple[Any, ...], build: Callable[[], Callable]
) -> Callable:
    """A jitted function per (tag, functions it calls), reused across points.

    Keyed by the identities of the kernel functions and the sampler (kept
    alive with the entry), so a new mapping of the same functions reuses the
    compilation and a changed one does not.
    """
    key = (tag, *map(id, fns))
    hit = _COMPILED.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], fns, strict=True)):
        return hit[1]
    if len(_COMPILED) > 256:
        _COMPILED.clear()
    fn = build()
    _COMPILED[key] = (fns, fn)
    return fn


def _fit(k: _K, theta0: jax.Array, x: jax.Array, n: jax.Array) -> dict[str, jax.Array]:
    r"""Fisher scoring on the first ``n`` draws of ``x`` from ``theta0``.

    ``n`` is traced (a mask selects the draws), so one compilation serves every
    sample size. One loop, one trial step per pass: the trial
    :math:`\theta + t\,\Delta` is accepted when it stays in the domain, its mean
    log-likelihood is finite and rises by at least
    :math:`10^{-4} t\, \bar s^\top F^{+} \bar s` (Armijo; a rounding slack of
    :math:`10^{-13}(1 + |\ell|)`); then :math:`t = 1` and a new direction
    :math:`\Delta = F^{+}\bar s` is taken, else :math:`t` is halved. The first
    pass "accepts" ``theta0`` itself (zero step from a log-likelihood of
    :math:`-\infty`) and records, at :math:`\theta_0`, the sums behind
    :math:`\operatorname{Cov}(x, s)` and the counts of non-finite scores and
    log-densities: every kernel is traced once.

    Returns:
      ``theta`` (the estimate), ``conv`` (converged: :math:`n\,\bar s^\top F^{+}
      \bar s` below ``DECREMENT_TOL`` and a small step), ``bnd`` (on the edge:
      the last full step left the domain, e.g. Bernoulli data that are all 0,
      or :math:`F(\hat\theta)` lost rank, e.g. a softmax class never seen) and
      the sums at :math:`\theta_0`.
    """
    n_all, P = x.shape[0], theta0.shape[0]
    use = jnp.arange(n_all) < n
    nf = n.astype(theta0.dtype)
    X = x.reshape(n_all, -1)

    def body(state: tuple) -> tuple:
        trials, steps, th, ll, step, dec, t, conv, bnd, rank, stats, bad = state
        th_try = th + t * step
        lp = _shape("log_prob", k.log_prob(th_try, x), (n_all,), P)
        ll_try = jnp.sum(jnp.where(use, lp, 0.0)) / nf
        inside = (
            _valid(k, th_try) & jnp.isfinite(ll_try) & jnp.all(jnp.isfinite(th_try))
        )
        good = inside & (ll_try >= ll + ARMIJO * t * dec - 1e-13 * (1.0 + jnp.abs(ll)))
        # The next direction, from the trial point (used when it is accepted).
        sc = _shape("score", k.score(th_try, x), (n_all, P), P)
        fin = jnp.all(jnp.isfinite(sc), axis=-1) & use
        sc = jnp.where(fin[:, None], sc, 0.0)
        g = jnp.sum(sc, axis=0) / nf
        Fm = _shape("fisher", k.fisher(th_try), (P, P), P)
        Fp, rank_n = _jpinv(Fm)
        step_n = Fp @ g
        # A NaN from score or fisher at an in-domain point is a kernel error,
        # not an edge of the parameter space: the first such point is kept.
        code = jnp.where(
            ~jnp.all(jnp.isfinite(Fm)), 2, jnp.where(jnp.all(fin | ~use), 0, 1)
        )
        new_bad = inside & (code > 0) & (bad[0] == 0)
        bad = (jnp.where(new_bad, code, bad[0]), jnp.where(new_bad, th_try, bad[1]))
        dec_n = g @ step_n
        conv_n = (
            (nf * dec_n < DECREMENT_TOL)
            & (jnp.max(jnp.abs(step_n)) <= STEP_TOL * (1.0 + jnp.max(jnp.abs(th_try))))
            & jnp.isfinite(dec_n)
            & jnp.all(fin | ~use)
        )
        xs = X[:, :, None] * sc[:, None, :]
        first = {
            "sx": jnp.sum(jnp.where(use[:, None], X, 0.0), axis=0),
            "ss": g * nf,
            "sxs": xs.sum(0),
            "sxs2": (xs**2).sum(0),
            "bad_score": jnp.sum(use & ~fin),
            "bad_log_prob": jnp.sum(use & ~jnp.isfinite(lp)),
            "rank0": rank_n,
        }
        stats = jax.tree.map(lambda a, b: jnp.where(trials == 0, a, b), first, stats)
        bnd = jnp.where(t == 1.0, ~inside, bnd)
        return (
            trials + 1,
            steps + good,
            jnp.where(good, th_try, th),
            jnp.where(good, ll_try, ll),
            jnp.where(good, step_n, step),
            jnp.where(good, dec_n, dec),
            jnp.where(good, 1.0, t / 2),
            jnp.where(good, conv_n, conv),
            bnd,
            jnp.where(good, rank_n, rank),
            stats,
            bad,
        )

    def cond(state: tuple) -> jax.Array:
        trials, steps, *_, t, conv, _, _, _, _ = state
        return (
            (trials <= MAX_TRIALS)
            & (steps <= ITERATIONS)
            & ~conv
            & (t > 2.0**-HALVINGS)
        )

    zero = jnp.zeros_like(theta0)
    one = jnp.ones((), theta0.dtype)
    d = X.shape[1]
    stats0 = {
        "sx": jnp.zeros(d, theta0.dtype),
        "ss": zero,
        "sxs": jnp.zeros((d, P), theta0.dtype),
        "sxs2": jnp.zeros((d, P), theta0.dtype),
        "bad_score": jnp.asarray(0),
        "bad_log_prob": jnp.asarray(0),
        "rank0": jnp.asarray(0),
    }
    false = jnp.asarray(False)
    bad0 = (jnp.asarray(0), jnp.full_like(theta0, jnp.nan))
    init = (
        0,
        0,
        theta0,
        -jnp.inf * one,
        zero,
        0 * one,
        one,
        false,
        false,
        0,
        stats0,
        bad0,
    )
    out = jax.lax.while_loop(cond, body, init)
    # An information that lost rank on the way (a softmax logit of a class never
    # seen drifting to -inf) marks an MLE on the edge of the parameter space too.
    stats = out[10]
    bnd = out[8] | (out[9] < stats.pop("rank0"))
    return {
        "theta": out[2],
        "conv": out[7],
        "bnd": bnd,
        "kbad": out[11][0],
        "kbad_at": out[11][1],
        **stats,
    }


def _shape(fn: str, arr: jax.Array, want: tuple[int, ...], P: int) -> jax.Array:
    """Raise (at trace time) when a kernel's output has the wrong shape."""
    if tuple(arr.shape) != want:
        raise _KernelError(
            f"{fn} returned shape {tuple(arr.shape)} for theta of shape ({P},) and "
            f"x of {want[0]} draws; expected shape {want}"
        )
    return arr


def _sample_fn(sampler: Callable, chunk: int, n_max: int) -> Callable:
    def fn(key: jax.Array, theta: jax.Array) -> jax.Array:
        return sampler(key, theta, (chunk, n_max)).astype(theta.dtype)

    return jax.jit(fn)


def _fit_fn(k: _K) -> Callable:
    def one(x: jax.Array, theta: jax.Array, n: jax.Array) -> dict[str, jax.Array]:
        out = _fit(k, theta, x, n)
        out["xbar"] = jnp.mean(x.reshape(x.shape[0], -1), axis=0)
        return out

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _simulate(
    k: _K, fam: Any, theta: np.ndarray, key: jax.Array, ctx: _Ctx
) -> dict[str, np.ndarray]:
    """Per replicate: x-bar and J sums at the largest n, the MLE at every n; in chunks."""
    n_max = ctx.sizes[-1]
    chunk = int(max(1, min(ctx.R, CHUNK_DRAWS // n_max)))
    draw = _compiled(
        ("draw", chunk, n_max),
        (fam.sampler,),
        lambda: _sample_fn(fam.sampler, chunk, n_max),
    )
    fit = _compiled(("fit",), k.fns, lambda: _fit_fn(k))
    n_chunks = -(-ctx.R // chunk)
    keys = jax.random.split(key, n_chunks)  # the last chunk's extras are dropped
    t = jnp.asarray(theta)
    parts = []
    for c in range(n_chunks):
        try:
            x = draw(keys[c], t)
        except Exception as e:
            raise _KernelError(
                f"the family's sampler failed at {ctx.where}: {type(e).__name__}: {e}"
            ) from None
        got: dict[str, np.ndarray] = {}
        for n in ctx.sizes:
            try:
                res = fit(x, t, jnp.asarray(n))
            except _KernelError as e:
                raise _KernelError(f"{e} (at {ctx.where})") from None
            except Exception as e:
                raise _KernelError(
                    f"Fisher scoring with the kernels' log_prob, score, fisher and "
                    f"param_checks failed under jit/vmap at {ctx.where}: "
                    f"{type(e).__name__}: {e}; expected the generated signatures "
                    "(theta of shape (P,), x of shape (n,) or (n, d))"
                ) from None
            res = {a: np.asarray(b) for a, b in res.items()}
            if n == n_max:  # x-bar, J sums and bad counts over all the draws
                got.update(
                    {
                        a: b
                        for a, b in res.items()
                        if a not in ("theta", "conv", "bnd", "kbad", "kbad_at")
                    }
                )
            for a in ("theta", "conv", "bnd", "kbad", "kbad_at"):
                got[f"{a}{n}"] = res[a]
        parts.append(got)
    return {a: np.concatenate([p[a] for p in parts])[: ctx.R] for a in parts[0]}


def _boot(key: jax.Array, n_boot: int, R: int) -> np.ndarray:
    """Bootstrap indices: ``n_boot`` resamples of ``R`` replicates (seeded from ``key``)."""
    k = jax.random.fold_in(key, R)
    return np.asarray(jax.random.randint(k, (n_boot, R), 0, R), dtype=np.int64)


def _eigen_test(Y: np.ndarray, idx: np.ndarray) -> dict[str, Any]:
    r"""Extreme eigenvalues of ``Cov(Y)`` against 1 (two-sided, log scale).

    :math:`z = (\log\hat\lambda - \mathbb E_0 \log\hat\lambda) / \mathrm{sd}^*`
    for the smallest and the largest eigenvalue, with :math:`\mathbb E_0` the mean
    under :math:`\operatorname{Cov} = I` for Gaussian rows (eigenvalue
    spreading; :func:`_null_log_extremes`) and :math:`\mathrm{sd}^*` the
    bootstrap sd of :math:`\log\lambda^*` (it carries the rows' kurtosis);
    Bonferroni over the two. Null-centred eigenvalues :math:`e^{\log\hat\lambda -
    \mathbb E_0}` are returned as ``centred``.
    """
    eig = np.linalg.eigvalsh(_covs(Y))
    logb = np.log(np.maximum(np.linalg.eigvalsh(_covs(Y, idx)), 1e-300))
    shift = np.zeros_like(eig)
    shift[[0, -1]] = _null_log_extremes(eig.size, Y.shape[0])
    est = np.log(np.maximum(eig, 1e-300)) - shift
    sd = np.std(logb, axis=0, ddof=1)
    ends = sorted({0, eig.size - 1})
    tests = [(i, *z_test(est[i], sd[i], 0.0)) for i in ends]
    i, z, p = min(tests, key=lambda t: t[2])
    centred = np.exp(est)
    return {
        "eig": eig,
        "centred": centred,
        "worst": float(centred[i]),
        "se": float(centred[i] * sd[i]),
        "z": float(z),
        "p": float(min(1.0, p * len(tests))),
    }


def _mle(
    ctx: _Ctx,
    F: np.ndarray,
    theta: np.ndarray,
    sim: dict[str, np.ndarray],
    key: jax.Array,
    n_boot: int,
    seconds: float,
) -> list[Check]:
    wF, UF = _range(F)
    out = []
    for n in ctx.sizes:
        th, conv, bnd = sim[f"theta{n}"], sim[f"conv{n}"], sim[f"bnd{n}"]
        ok = conv & ~bnd & np.all(np.isfinite(th), axis=1)
        f_bnd, f_non = float(np.mean(bnd)), float(np.mean(~ok & ~bnd))
        flags = (
            f"{f_bnd:.1%} of replicates ended on the edge of the parameter space "
            "(a full step left the domain, or F lost rank) and "
            f"{f_non:.1%} did not converge in {ITERATIONS} iterations; both are "
            "left out"
        )
        largest = n == ctx.sizes[-1]
        # Whitened on the range of F (softmax: the all-ones direction of the
        # logits is projected out): y = (n Lambda)^{1/2} U^T (theta_hat - theta),
        # whose covariance has the eigenvalues of (nF)^{1/2} Cov (nF)^{1/2}.
        Y = (th[ok] - theta) @ (UF * np.sqrt(n * wF))
        R_ok = Y.shape[0]
        if R_ok < 10:
            msg = f"only {R_ok} of {ctx.R} replicates usable at n = {n}: {flags}"
            if largest:
                out.append(
                    ctx.check(
                        "MLE efficiency -> 1",
                        entry=f"n={n}",
                        kind="stochastic",
                        expected=1.0,
                        p_value=0.0,
                        statistic=float("nan"),
                        verdict="fail",
                        n=R_ok,
                        message="Fisher scoring from the true theta with the kernels' "
                        f"score and fisher failed: {msg}",
                    )
                )
            else:
                out.append(
                    ctx.check(
                        "MLE efficiency",
                        entry=f"n={n}",
                        kind="report",
                        verdict="report",
                        n=R_ok,
                        message=msg,
                    )
                )
            continue
        t = _eigen_test(Y, _boot(key, n_boot, R_ok))
        var = np.var(th[ok], axis=0, ddof=1)
        Fp = (UF / (n * wF)) @ UF.T
        per = np.diag(Fp) / np.where(var > 0, var, np.nan)
        text = (
            f"eigenvalues of (nF)^(1/2) Cov(theta_hat) (nF)^(1/2) over {R_ok} MLEs "
            f"at n = {n}: {_fmt(t['eig'])}"
            + (
                f" (extremes centred for eigenvalue spreading: {_fmt(t['centred'][[0, -1]])})"
                if t["eig"].size > 1
                else ""
            )
            + ", 1 for an efficient estimator; per-parameter efficiency "
            f"diag(F^+/n) / Var(theta_hat_i) = {_fmt(per)}; {flags}"
        )
        out.append(
            ctx.check(
                "MLE efficiency",
                entry=f"n={n}",
                kind="report",
                verdict="report",
                expected=1.0,
                observed=t["worst"],
                se=t["se"],
                n=R_ok,
                message=text,
            )
        )
        if not largest:
            continue
        # The O(1/n) finite-sample deviation of the MLE's covariance from F^-1/n
        # (about c/n with c = O(1) at moderate points: 1e-3 at n = 1000) is
        # negligible against the bootstrap error of an eigenvalue (about
        # sqrt(2/R) = 0.07 for R = 400).
        p, verdict = t["p"], "pass"
        msg = (
            text
            + f"; two-sided z on the log scale, Bonferroni over the smallest and largest; simulation {seconds:.2f} s"
        )
        if f_non > MAX_NONCONVERGED:
            p, verdict = 0.0, "fail"
            msg = (
                f"Fisher scoring from the true theta did not converge for {f_non:.1%} "
                f"of replicates at n = {n} (more than {MAX_NONCONVERGED:.0%}): the "
                "kernels' score, fisher and log_prob disagree. " + msg
            )
        out.append(
            ctx.check(
                "MLE efficiency -> 1",
                entry=f"n={n}",
                kind="stochastic",
                expected=1.0,
                observed=t["worst"],
                se=t["se"],
                statistic=t["z"],
                p_value=p,
                verdict=verdict,
                n=R_ok,
                message=msg,
            )
        )
    return out


def _fmt(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in np.ravel(v)) + "]"
