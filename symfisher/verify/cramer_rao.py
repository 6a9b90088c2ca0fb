r"""Cramér–Rao checks by simulation: an unbiased estimator, the MLE, non-regular families.

For :math:`n` i.i.d. draws from a regular family with Fisher information
:math:`F(\theta)`, every unbiased estimator :math:`T` of :math:`g(\theta)` obeys

.. math:: \operatorname{Cov}_\theta T \succeq B = J F^{+} J^\top / n, \qquad
   J = \partial g / \partial \theta^\top ,

and the maximum-likelihood estimator attains :math:`F^{+}/n` as
:math:`n \to \infty`. :func:`cramer_rao_checks` tests both with the generated
kernels at one parameter point:

(a) **Unbiased estimator.** :math:`T = \bar x` is unbiased for
    :math:`g(\theta) = \mathbb E_\theta[x]`. Its Jacobian is the closed form of
    :math:`\partial \mathbb E[x] / \partial\theta` where
    :func:`~symfisher.derive.expectation.expect` finds one quickly, else the
    score identity

    .. math:: J = \partial_\theta \mathbb E_\theta[x]
       = \int x\, \partial_\theta p_\theta = \operatorname{Cov}(x, s(\theta; x))

    estimated with the kernels' ``score`` from the :math:`R n` simulated draws. With
    :math:`C` the covariance of :math:`\bar x` over :math:`R` simulated data
    sets, :math:`C \succeq B` is the eigenvalue condition
    :math:`\lambda_{\min}(B^{-1/2} C B^{-1/2}) \ge 1` on the range of
    :math:`B`. It is tested on the log scale (where a variance ratio's
    standard error is nearly constant): :math:`\log\hat\lambda_{\min}`, less
    its mean under the least favourable null :math:`C = B` for Gaussian
    :math:`\bar x` (eigenvalue spreading biases a sample minimum low by about
    :math:`\sqrt{d/R}`), over its bootstrap standard error (replicates
    resampled; the Monte Carlo error of :math:`J` added), one-sided p-value
    from :func:`~symfisher.verify.stats.one_sided_below`.
    The efficiencies :math:`B_{jj} / C_{jj}` of :math:`\bar x_j` are reported
    (1 for a Normal mean, 1/2 for a Laplace location), and the derivation's
    symbolic bound :math:`\nabla g\, F^{-1} \nabla g^\top / n` is compared with
    the numeric :math:`J F^{+} J^\top / n` (a deterministic check of ``fisher``).

(b) **MLE efficiency.** For each sample size, Fisher scoring

    .. math:: \theta \leftarrow \theta + t\, F(\theta)^{+}\, \tfrac1n
       \textstyle\sum_i s(\theta; x_i)

    from the true :math:`\theta` (step :math:`t` halved until the step stays in
    the domain, the log-likelihood is finite and rises by Armijo's
    :math:`10^{-4} t\, \bar s^\top F^{+} \bar s`), then the eigenvalues of
    :math:`(nF)^{1/2} \operatorname{Cov}(\hat\theta)\,(nF)^{1/2}` on the range
    of :math:`F` (all 1 for an efficient estimator; for the softmax logits the
    unidentifiable direction :math:`\mathbf 1` is projected out). Each size gives
    a "report"; the largest gives a stochastic check that the smallest and the
    largest eigenvalue are 1: two-sided z-tests on the log scale, centred by
    their means under :math:`\operatorname{Cov} = F^{+}/n` for Gaussian
    :math:`\hat\theta`, bootstrap standard errors, Bonferroni over the two.

(c) **Non-regular families** (the support depends on :math:`\theta`, e.g.
    :math:`\mathcal U(0, \theta)`): the identities fail, so nothing can pass;
    the records say so, and show that the MLE :math:`\max_i x_i` has variance
    :math:`\theta^2 n / ((n+1)^2 (n+2)) = O(1/n^2)`, below the naive "bound"
    :math:`1 / (n\,\mathbb E[s^2]) = \theta^2 / n`.

Records (:class:`~symfisher.verify.result.Check`) of a regular family:

``"Cov(unbiased) >= CR bound"`` (stochastic, one-sided)
    observed :math:`\hat\lambda_{\min}` (null-centred), expected 1, p-value of
    "the sample mean beats the claimed bound": small when ``fisher`` is too small.
``"efficiency of sample mean"`` (report, entry ``x`` or ``x[j]``)
    :math:`B_{jj} / C_{jj}` with a bootstrap se.
``"symbolic CR bound of E[x]"`` (deterministic, or report without a closed form)
    relative error between the derivation's bound and :math:`J F^{+} J^\top/n`.
``"MLE efficiency"`` (report, entry ``n=10``, ...)
    the null-centred extreme eigenvalue farthest from 1; the message lists all
    eigenvalues, per-parameter efficiencies and the fractions of replicates left
    out (MLE on the edge of the parameter space, or not converged).
``"MLE efficiency -> 1"`` (stochastic, two-sided, entry ``n=<largest>``)
    p-value of "the MLE's whitened covariance is I"; small when ``fisher`` is
    wrong in either direction. More than ``MAX_NONCONVERGED`` of replicates not
    converging at the largest n is a "fail" with p = 0.

A non-regular family gives ``"Cramér–Rao bound"`` and ``"MLE variance
(non-regular)"`` records with verdict "not applicable". A broken kernel gives
a single ``"Cramér–Rao simulation"`` record with verdict "error" naming the
function, the point and what was expected, never an exception.

Everything is seeded from the key, vectorised over replicates, jitted (compiled
functions are reused across points of a family: one compilation of the
sampler and one of Fisher scoring, whose sample size is traced) and chunked so
that at most ``CHUNK_DRAWS`` draws are held at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from symfisher.verify.result import Check
from symfisher.verify.stats import ALPHA, detectable, one_sided_below, z_test

__all__ = ["cramer_rao_checks"]

#: Most draws held in memory at once (replicates x sample size).
CHUNK_DRAWS = 2**19
#: Bootstrap resamples of the replicates.
BOOTSTRAP = 200
#: Accepted Fisher-scoring steps at most (the loop stops once every replicate
#: of a chunk has converged) and trial steps at most, halvings included.
ITERATIONS = 25
MAX_TRIALS = 60
#: Halvings of one step before it is given up.
HALVINGS = 30
#: Converged when :math:`n\,\bar s^\top F^{+}\bar s` (the squared step in
#: standard errors) is below this and the step is small in absolute terms.
DECREMENT_TOL = 1e-10
STEP_TOL = 1e-6
#: Armijo constant of the line search.
ARMIJO = 1e-4
#: Relative eigenvalue cut-off of the pseudo-inverses (softmax's F 1 = 0).
RCOND = 1e-9
#: Largest fraction of replicates at the largest n that may fail to converge in
#: the interior before the stochastic MLE check is failed outright.
MAX_NONCONVERGED = 0.05
#: Time given to :func:`expect` for a closed form of E[x] (memoised per family).
EXPECT_SECONDS = 10.0

#: Gaussian sample covariances behind the null means of log extreme eigenvalues.
NULL_DRAWS = 2000

_COMPILED: dict[tuple, tuple[tuple[Any, ...], Callable]] = {}
_NULL: dict[tuple[int, int], np.ndarray] = {}
_MEAN_FORMS: dict[Any, tuple[list[sp.Expr] | None, str]] = {}
_SYMBOLIC: dict[Any, tuple[Any, sp.Matrix | None, str]] = {}


class _KernelError(Exception):
    """A kernel failed; ``message`` names the function, the point and the expectation."""


def cramer_rao_checks(
    family: Any,
    kernels: Any,
    theta: np.ndarray,
    key: jax.Array,
    *,
    replicates: int = 400,
    sizes: Sequence[int] = (10, 100, 1000),
    m_tests: int = 1,
    alpha: float = ALPHA,
    symbolic: bool = True,
    bootstrap: int = BOOTSTRAP,
) -> list[Check]:
    r"""Cramér–Rao checks of one family's kernels at one point (see the module doc).

    Args:
      family: a :class:`~symfisher.Family` (or a catalog name); its ``sampler``
        draws the data.
      kernels: generated kernels module, or a mapping of callables with the
        generated signatures (``log_prob``, ``score``, ``fisher``; optional
        ``param_checks``).
      theta: the parameter point, shape ``(P,)``.
      key: JAX PRNG key; every draw (data, Jacobian, bootstrap) derives from it.
      replicates: simulated data sets :math:`R` per sample size.
      sizes: sample sizes :math:`n`; data sets of the smaller sizes are the
        leading draws of the largest. The stochastic checks use the largest.
      m_tests: number of stochastic checks in the whole run (only for the
        ``detectable`` column; the caller applies Holm to the p-values).
      alpha: family-wise level the ``detectable`` column refers to.
      symbolic: use closed forms: :math:`J` from :func:`expect`'s E[x] (at most
        ``EXPECT_SECONDS``, memoised per family) and the comparison with the
        derivation's bound (:func:`symfisher.derive`, cached on disk). False:
        :math:`J` by Monte Carlo and no comparison.
      bootstrap: bootstrap resamples of the replicates.

    Returns:
      Records, in order: "Cov(unbiased) >= CR bound" (stochastic, one-sided,
      :math:`\lambda_{\min} \ge 1`), "efficiency of sample mean" per coordinate
      (report), "symbolic CR bound of E[x]" (deterministic, or report when
      :math:`J` is a Monte Carlo estimate), "MLE efficiency" per ``n`` (report),
      "MLE efficiency -> 1" at the largest ``n`` (stochastic, two-sided). A
      non-regular family gives "not applicable" records instead; a broken
      kernel gives an "error" record naming it.
    """
    try:
        if isinstance(family, str):
            from symfisher.families.catalog import family as by_name

            family = by_name(family)
        names = list(family.param_names)
    except Exception as e:
        return [
            Check(
                family=str(family),
                name="Cramér–Rao simulation",
                kind="deterministic",
                verdict="error",
                message=f"not a family: {type(e).__name__}: {e}",
            )
        ]
    values = [float(v) for v in np.ravel(np.asarray(theta, dtype=np.float64))]
    if len(values) == len(names):
        point = dict(zip(names, values, strict=True))
    else:  # reported by _run with the raw values
        point = {f"theta[{i}]": v for i, v in enumerate(values)}
    ctx = _Ctx(
        family.name,
        point,
        max(int(m_tests), 1),
        float(alpha),
        int(replicates),
        tuple(sorted({int(n) for n in sizes})),
    )
    with jax.enable_x64(True):
        try:
            return _run(ctx, family, kernels, values, key, symbolic, bootstrap)
        except _KernelError as e:
            return [ctx.error("Cramér–Rao simulation", str(e))]
        except Exception as e:  # last resort: never raise out of a verifier
            return [
                ctx.error(
                    "Cramér–Rao simulation", f"{type(e).__name__}: {e} (at {ctx.where})"
                )
            ]


# -- records -------------------------------------------------------------------
class _Ctx:
    """What every record of one call shares."""

    def __init__(
        self,
        family: str,
        point: dict[str, float],
        m: int,
        alpha: float,
        R: int,
        sizes: tuple[int, ...],
    ) -> None:
        self.family, self.point, self.m, self.alpha = family, point, m, alpha
        self.R, self.sizes = R, sizes

    @property
    def where(self) -> str:
        return (
            "theta = (" + ", ".join(f"{k}={v:.6g}" for k, v in self.point.items()) + ")"
        )

    def check(self, name: str, **kw: Any) -> Check:
        c = Check(family=self.family, name=name, point=dict(self.point), **kw)
        if c.kind == "stochastic" and c.se is not None:
            c.scale = 1.0  # run.py recomputes detectable
            c.detectable = detectable(c.se, 1.0, self.m, self.alpha)
        return c

    def error(self, name: str, message: str) -> Check:
        return self.check(name, kind="deterministic", verdict="error", message=message)


# -- kernels -------------------------------------------------------------------
def _get(kernels: Any, fn: str) -> Callable | None:
    f = kernels.get(fn) if isinstance(kernels, Mapping) else getattr(kernels, fn, None)
    return f if callable(f) else None


class _K:
    """The kernels a simulation calls; ``fns`` (the functions) key the jit cache."""

    def __init__(self, kernels: Any, need: Sequence[str], where: str) -> None:
        self.obj = kernels
        for fn in need:
            f = _get(kernels, fn)
            if f is None:
                raise _KernelError(
                    f"kernels.{fn} is missing or not callable; expected a function "
                    f"{fn}(theta, ...) with the generated signature ({where})"
                )
            setattr(self, fn, f)
        self.param_checks = _get(kernels, "param_checks")
        self.fns = (*(getattr(self, fn) for fn in need), self.param_checks)


def _call(
    fn: str, f: Callable, args: tuple, shape: tuple[int, ...], where: str
) -> np.ndarray:
    """Call one kernel eagerly and check its output's shape and finiteness."""
    try:
        out = np.asarray(f(*args), dtype=np.float64)
    except Exception as e:
        raise _KernelError(
            f"{fn} raised {type(e).__name__}: {e} at {where}; expected an array of "
            f"shape {shape}"
        ) from None
    if out.shape != shape:
        raise _KernelError(
            f"{fn} returned shape {out.shape} at {where}; expected shape {shape}"
        )
    if not np.all(np.isfinite(out)):
        bad = np.argwhere(~np.isfinite(out))[:3].tolist()
        raise _KernelError(
            f"{fn} returned NaN or inf at {where} (entries {bad}); expected finite "
            f"values at a valid point"
        )
    return out


def _valid(k: _K, th: jax.Array) -> jax.Array:
    """True where every ``param_checks`` entry holds (True when there are none)."""
    ok = jnp.asarray(True)
    if k.param_checks is not None:
        for c in k.param_checks(th):
            ok = ok & jnp.all(c)
    return ok


def _probe(k: _K, theta: np.ndarray, where: str) -> np.ndarray:
    """Check the point with ``param_checks`` and return a validated ``fisher(theta)``."""
    P = theta.shape[0]
    t = jnp.asarray(theta)
    if k.param_checks is not None:
        try:
            checks = [np.asarray(c) for c in k.param_checks(t)]
        except Exception as e:
            raise _KernelError(
                f"param_checks raised {type(e).__name__}: {e} at {where}; expected a "
                "tuple of boolean arrays"
            ) from None
        if not all(bool(np.all(c)) for c in checks):
            msgs = list(getattr(k.obj, "DOMAIN_CHECKS", None) or ())
            msgs += [""] * (len(checks) - len(msgs))
            broken = [
                m or f"check {i}"
                for i, (m, c) in enumerate(zip(msgs, checks, strict=False))
                if not np.all(c)
            ]
            raise _KernelError(
                f"param_checks says {where} is outside the domain "
                f"({'; '.join(broken)}); expected a valid point"
            )
    F = _call("fisher", k.fisher, (t,), (P, P), where)
    scale = max(float(np.max(np.abs(F))), 1e-300)
    if np.max(np.abs(F - F.T)) > 1e-8 * scale:
        raise _KernelError(
            f"fisher returned a non-symmetric matrix at {where}: {F.tolist()}; "
            "expected a symmetric positive semi-definite matrix"
        )
    w = np.linalg.eigvalsh(F)
    if w[0] < -1e-8 * max(w[-1], 0.0) or w[-1] <= 0.0:
        raise _KernelError(
            f"fisher returned a matrix with eigenvalues {w.tolist()} at {where}; "
            "expected a positive semi-definite matrix"
        )
    return F


def _range(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(w, U)``: the eigenpairs of symmetric ``A`` above ``RCOND`` times the largest."""
    w, U = np.linalg.eigh((A + A.T) / 2)
    keep = w > RCOND * max(w[-1], 0.0)
    return w[keep], U[:, keep]


def _pinv(A: np.ndarray) -> np.ndarray:
    w, U = _range(A)
    return (U / w) @ U.T


def _jpinv(F: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pseudo-inverse of a symmetric PSD matrix (eigenvalues below RCOND max dropped), rank."""
    w, U = jnp.linalg.eigh((F + F.T) / 2)
    keep = w > RCOND * jnp.max(w)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, w, 1.0), 0.0)
    return (U * inv) @ U.T, jnp.sum(keep)


# -- the run -------------------------------------------------------------------
def _run(
    ctx: _Ctx,
    fam: Any,
    kernels: Any,
    theta: Any,
    key: jax.Array,
    symbolic: bool,
    n_boot: int,
) -> list[Check]:
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if getattr(fam, "sampler", None) is None:
        raise _KernelError(f"{ctx.family} has no sampler; the simulation needs one")
    if len(fam.params) != theta.shape[0]:
        raise _KernelError(
            f"theta has {theta.shape[0]} entries at {ctx.where}; expected "
            f"{len(fam.params)} ({', '.join(fam.param_names)})"
        )
    if not ctx.sizes or ctx.sizes[0] < 2 or ctx.R < 10:
        raise ValueError(
            f"need sizes >= 2 and replicates >= 10; got {ctx.sizes}, {ctx.R}"
        )
    if fam.support_depends_on_params:
        return _non_regular(ctx, fam, kernels, theta, key, n_boot)
    k = _K(kernels, ("log_prob", "score", "fisher"), ctx.where)
    k_data, k_boot, k_pert = jax.random.split(key, 3)
    F = _probe(k, theta, ctx.where)

    # One simulation: per replicate x-bar, sums for Cov(x, s), the MLE at each n.
    t0 = time.perf_counter()
    sim = _simulate(k, fam, theta, k_data, ctx)
    seconds = time.perf_counter() - t0
    draws = ctx.R * ctx.sizes[-1]
    for fn in ("score", "log_prob"):
        bad = int(np.sum(sim[f"bad_{fn}"]))
        if bad:
            raise _KernelError(
                f"{fn} returned NaN or inf for {bad} of {draws} draws at {ctx.where}; "
                "expected finite values on the support"
            )
    for n in ctx.sizes:
        codes = sim[f"kbad{n}"]
        if np.any(codes > 0):
            i = int(np.argmax(codes > 0))
            fn = "fisher" if codes[i] == 2 else "score"
            at = ", ".join(
                f"{a}={v:.6g}"
                for a, v in zip(fam.param_names, sim[f"kbad_at{n}"][i], strict=True)
            )
            raise _KernelError(
                f"{fn} returned NaN or inf at theta = ({at}), a point inside the "
                f"domain (param_checks hold, log_prob finite) reached by Fisher "
                f"scoring from {ctx.where} in {int(np.sum(codes > 0))} of {ctx.R} "
                f"replicates at n = {n}; expected finite values"
            )

    # Jacobian of E[x]: the closed form, else J = Cov(x, s) from the same draws.
    forms, how = _mean_forms(fam) if symbolic else (None, "not asked")
    if forms is not None and len(forms) == sim["xbar"].shape[1]:
        sub = {p: sp.Float(v, 30) for p, v in zip(fam.params, theta, strict=True)}
        J = np.array(
            [
                [float(sp.diff(g, p).evalf(30, subs=sub)) for p in fam.params]
                for g in forms
            ]
        )
        J_se = np.zeros_like(J)
        j_note = "J = dE[x]/dtheta in closed form"
    else:
        forms = None
        mx, ms, mxs = (sim[a].sum(0) / draws for a in ("sx", "ss", "sxs"))
        J = mxs - np.outer(mx, ms)
        J_se = np.sqrt(np.maximum(sim["sxs2"].sum(0) / draws - mxs**2, 0.0) / draws)
        rel = np.max(J_se / np.maximum(np.abs(J), 1e-300))
        j_note = (
            f"J = Cov(x, s) from the {draws} simulated draws (no closed form for "
            f"E[x]: {how}); largest relative se of J {rel:.1e}, propagated into se"
        )
    if not np.all(np.isfinite(J)):
        raise _KernelError(
            f"the Jacobian of E[x] is not finite at {ctx.where}: {J.tolist()}"
        )

    boot_idx = _boot(k_boot, n_boot, ctx.R)
    out = _unbiased(ctx, F, J, J_se, sim["xbar"], boot_idx, k_pert, j_note)
    if symbolic:
        out.append(_symbolic(ctx, fam, F, J, forms, how))
    out += _mle(ctx, F, theta, sim, k_boot, n_boot, seconds)
    return out


# -- (a) unbiased estimator ----------------------------------------------------
def _whitened_eigs(C: np.ndarray, W: np.ndarray) -> np.ndarray:
    r"""Eigenvalues of :math:`W^\top C W`, batched over leading axes of ``C``."""
    M = np.swapaxes(W, -1, -2) @ C @ W
    return np.linalg.eigvalsh((M + np.swapaxes(M, -1, -2)) / 2)


def _covs(Y: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """Sample covariance of the rows of ``Y`` (or of each bootstrap resample ``Y[idx]``)."""
    Z = Y if idx is None else Y[idx]
    Z = Z - Z.mean(axis=-2, keepdims=True)
    return np.swapaxes(Z, -1, -2) @ Z / (Z.shape[-2] - 1)


def _unbiased(
    ctx: _Ctx,
    F: np.ndarray,
    J: np.ndarray,
    J_se: np.ndarray,
    xbar: np.ndarray,
    boot_idx: np.ndarray,
    key: jax.Array,
    j_note: str,
) -> list[Check]:
    name = "Cov(unbiased) >= CR bound"
    n = ctx.sizes[-1]
    Fp = _pinv(F)
    B = J @ Fp @ J.T / n
    wB, UB = _range(B)
    if wB.size == 0:
        return [
            ctx.check(
                name,
                kind="report",
                verdict="not applicable",
                message=f"E[x] does not depend on theta at {ctx.where} (J = 0), so the bound is 0",
            )
        ]
    W = UB / np.sqrt(wB)  # B^{-1/2} on the range of B
    C = _covs(xbar)
    lam = float(_whitened_eigs(C, W)[0])
    if not lam > 0.0:
        return [
            ctx.check(
                name,
                kind="stochastic",
                expected=1.0,
                observed=lam,
                p_value=0.0,
                statistic=float("-inf"),
                n=ctx.R,
                verdict="fail",
                message=f"Cov(x-bar) is singular along a direction where the bound "
                f"B = J F^+ J^T / n is positive (smallest eigenvalue {lam:.3g}) at n = {n}",
            )
        ]
    # The test is on log(lambda_min): its bootstrap sd is nearly constant (a
    # variance ratio's sd is proportional to it, which makes a linear z-test
    # anti-conservative on the low side). The least favourable null is C = B
    # (all eigenvalues 1), where the sample minimum is biased low by eigenvalue
    # spreading (about -sqrt(d/R)); log(lambda_min) is centred by its mean under
    # that null for Gaussian x-bar (a CLT mean at n draws).
    lam_b = _whitened_eigs(_covs(xbar, boot_idx), W)[:, 0]
    sd_log = float(np.std(np.log(np.maximum(lam_b, 1e-300)), ddof=1))
    shift = float(_null_log_extremes(wB.size, ctx.R)[0])
    # The Monte Carlo error of J (zero for a closed form) enters B; it is
    # propagated by perturbing J within its standard errors.
    se_j = 0.0
    if np.any(J_se > 0):
        eps = np.asarray(jax.random.normal(key, (64, *J.shape)), dtype=np.float64)
        logs = []
        for e in eps:
            Jp = J + e * J_se
            w2, U2 = _range(Jp @ Fp @ Jp.T / n)
            if w2.size == wB.size:
                logs.append(np.log(max(_whitened_eigs(C, U2 / np.sqrt(w2))[0], 1e-300)))
        se_j = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    se_log = math.hypot(sd_log, se_j)
    est = math.log(lam) - shift
    z, p = one_sided_below(est, se_log, 0.0)
    lam_c = math.exp(est)
    dvals = np.diag(C)
    eff = np.diag(B) / np.where(dvals > 0, dvals, np.nan)
    eff_b = np.diag(B) / np.diagonal(_covs(xbar, boot_idx), axis1=-2, axis2=-1)
    out = [
        ctx.check(
            name,
            kind="stochastic",
            expected=1.0,
            observed=lam_c,
            se=lam_c * se_log,
            statistic=z,
            p_value=p,
            n=ctx.R,
            message=(
                f"smallest eigenvalue of B^(-1/2) C B^(-1/2), C = Cov(x-bar) over "
                f"{ctx.R} data sets of n = {n}, B = J F^+ J^T / n: {lam:.4g}"
                + (
                    f" ({lam_c:.4g} centred for eigenvalue spreading)"
                    if wB.size > 1
                    else ""
                )
                + "; must be >= 1 for an unbiased estimator (one-sided z on the log "
                f"scale, bootstrap sd {se_log:.3g}). {j_note}"
            ),
        )
    ]
    for j in range(J.shape[0]):
        out.append(
            ctx.check(
                "efficiency of sample mean",
                entry=f"x[{j}]" if J.shape[0] > 1 else "x",
                kind="report",
                verdict="report",
                observed=float(eff[j]),
                se=float(np.std(eff_b[:, j], ddof=1)),
                n=ctx.R,
                message=(
                    f"bound / Var(x-bar) = {B[j, j]:.4g} / {dvals[j]:.4g} at n = {n}: "
                    "1 when the sample mean is efficient for E[x] (exponential "
                    "families in their sufficient statistic), e.g. 1/2 for a "
                    "Laplace location"
                ),
            )
        )
    return out


def _null_log_extremes(r: int, R: int) -> np.ndarray:
    r"""Mean log of the smallest and largest eigenvalue of a Gaussian sample covariance.

    For :math:`R` draws of :math:`y \sim N(0, I_r)`, :math:`S \sim W_r(I, R-1)/(R-1)`;
    eigenvalue spreading biases :math:`\lambda_{\min}(S)` below 1 and
    :math:`\lambda_{\max}(S)` above it by about :math:`\sqrt{r/R}`. The means of
    their logs are simulated once per ``(r, R)`` (``NULL_DRAWS`` covariances, a
    fixed seed: a constant of the test, not a draw of the check); their Monte
    Carlo error is about :math:`0.07 / \sqrt{2000} \approx 0.002`, 0.03 se.
    """
    if (r, R) not in _NULL:
        rng = np.random.default_rng(20_240_917)
        logs = []
        for _ in range(NULL_DRAWS // 250):
            e = np.linalg.eigvalsh(_covs(rng.standard_normal((250, R, r))))
            logs.append(np.log(e[:, [0, -1]]))
        _NULL[(r, R)] = np.concatenate(logs).mean(axis=0)
    return _NULL[(r, R)]


def _mean_forms(fam: Any) -> tuple[list[sp.Expr] | None, str]:
    """Closed forms of E[x_j] (memoised per family definition), or ``(None, why)``."""
    try:
        memo_key: Any = fam.definition_text()
    except Exception:
        memo_key = ("name", fam.name)
    if memo_key in _MEAN_FORMS:
        return _MEAN_FORMS[memo_key]
    try:
        from symfisher.derive.expectation import expect

        got = expect(fam, list(fam.variables), seconds=EXPECT_SECONDS)
        vals = got.values
        if vals is None or any(v is None for v in vals):
            res: tuple[list[sp.Expr] | None, str] = (None, got.detail or got.method)
        elif any(set(v.free_symbols) - set(fam.params) for v in vals):
            res = (None, "the closed form has free symbols")
        else:
            res = (list(vals), got.method)
    except Exception as e:
        res = (None, f"{type(e).__name__}: {e}")
    _MEAN_FORMS[memo_key] = res
    return res


def _symbolic(
    ctx: _Ctx,
    fam: Any,
    F: np.ndarray,
    J: np.ndarray,
    forms: list[sp.Expr] | None,
    how: str,
) -> Check:
    name = "symbolic CR bound of E[x]"
    n = ctx.sizes[-1]
    B = J @ _pinv(F) @ J.T / n
    if forms is None:
        return ctx.check(
            name,
            kind="report",
            verdict="report",
            message=f"no closed form of E[x] within {EXPECT_SECONDS:g} s ({how}); skipped",
        )
    S, route = _symbolic_bound(fam, forms, np.array(list(ctx.point.values())))
    if S is None:
        return ctx.check(
            name, kind="report", verdict="report", message=f"no symbolic bound: {route}"
        )
    S = S / n
    rel = float(np.linalg.norm(B - S) / max(np.linalg.norm(S), 1e-300))
    # J is exact here (the closed form differentiated at 30 digits), so B and S
    # differ only through the kernels' float64 Fisher matrix: its rounding
    # (a few ulps, special functions ~1e-13) is amplified at most by cond(F)
    # in the (pseudo-)inverse. 1e-9 cond(F) leaves four orders of margin.
    w, _ = _range(F)
    tol = 1e-9 * max(1.0, float(w[-1] / w[0]))
    ok = rel <= tol
    return ctx.check(
        name,
        kind="deterministic",
        expected=float(S[0, 0]),
        observed=float(B[0, 0]),
        statistic=rel,
        verdict="pass" if ok else "fail",
        message=(
            f"derivation's grad(g) F^-1 grad(g)^T / n (via {route}) for g = E[x] = "
            f"{', '.join(map(str, forms))} at n = {n} vs J F^+ J^T / n with the "
            f"kernels' fisher: relative error {rel:.2e} (tolerance {tol:.1e})"
            + ("" if ok else f"; symbolic {S.tolist()}, kernels {B.tolist()}")
        ),
    )


def _symbolic_bound(
    fam: Any, forms: list[sp.Expr], theta: np.ndarray
) -> tuple[np.ndarray | None, str]:
    r"""The derivation's bound :math:`\nabla g\, F^{-1} \nabla g^\top` (n = 1) for g = E[x] at ``theta``.

    ``Derivation.cramer_rao`` gives it in closed form (memoised per family); where
    the Fisher matrix is singular (softmax logits) ``Derivation.natural_gradient``
    gives :math:`F^{+} \nabla g_j` from the derivation's Fisher at 30 digits.
    """
    try:
        memo_key: Any = fam.definition_text()
    except Exception:
        memo_key = ("name", fam.name)
    if memo_key not in _SYMBOLIC:
        try:
            from symfisher.derive.derivation import derive

            d = derive(fam)
            try:
                _SYMBOLIC[memo_key] = (d, sp.Matrix(d.cramer_rao(1, g=list(forms))), "")
            except Exception as e:  # singular F: the pseudo-inverse route below
                _SYMBOLIC[memo_key] = (d, None, f"{type(e).__name__}: {e}")
        except Exception as e:
            _SYMBOLIC[memo_key] = (None, None, f"{type(e).__name__}: {e}")
    d, expr, why = _SYMBOLIC[memo_key]
    if d is None:
        return None, why
    sub = {p: sp.Float(v, 30) for p, v in zip(fam.params, theta, strict=True)}
    try:
        if expr is not None:
            return np.array(
                expr.evalf(30, subs=sub).tolist(), dtype=np.float64
            ), "cramer_rao"
        grads = [[sp.diff(g, p) for p in fam.params] for g in forms]
        G = np.array([[float(e.evalf(30, subs=sub)) for e in row] for row in grads])
        V = np.array([d.natural_gradient(row, point=list(theta)) for row in grads])
        return G @ V.T, "natural_gradient: F is singular, pseudo-inverse"
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"


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


# -- (c) non-regular -----------------------------------------------------------
def _non_regular(
    ctx: _Ctx, fam: Any, kernels: Any, theta: np.ndarray, key: jax.Array, n_boot: int
) -> list[Check]:
    dep = ", ".join(str(p) for p in fam.support_depends_on_params)
    support = fam.support
    head = (
        f"{ctx.family} is non-regular: its support {support} depends on {dep}, so "
        "differentiation under the integral fails and the Fisher identities "
        "(E[s] = 0, E[s s^T] = -E[H]) do not hold; the Cramér–Rao bound does not apply"
    )
    out = [
        ctx.check(
            "Cramér–Rao bound",
            kind="report",
            verdict="not applicable",
            message=head + ".",
        )
    ]
    mle = _support_mle(fam)
    if mle is None:
        return out
    i_par, use_max, end = mle
    th = float(theta[i_par])
    k_x, k_s, k_b = jax.random.split(key, 3)
    # E[s^2] from the kernels' score, the naive "Fisher information".
    es2 = None
    f = _get(kernels, "score")
    if f is None:
        out.append(
            ctx.error(
                "naive bound 1/(n E[s^2])",
                f"kernels.score is missing at {ctx.where}; expected score(theta, x)",
            )
        )
    else:
        try:
            x = np.asarray(fam.sampler(k_s, jnp.asarray(theta), (4096,)))
            s = _call(
                "score", f, (jnp.asarray(theta), x), (4096, theta.size), ctx.where
            )
            es2 = float(np.mean(s[:, i_par] ** 2))
        except _KernelError as e:
            out.append(ctx.error("naive bound 1/(n E[s^2])", str(e)))
    n_max = ctx.sizes[-1]
    chunk = int(max(1, min(ctx.R, CHUNK_DRAWS // n_max)))
    fn = _compiled(
        ("extreme", ctx.sizes, chunk, use_max),
        (fam.sampler,),
        lambda: _extreme_fn(fam.sampler, ctx.sizes, chunk, use_max),
    )
    n_chunks = -(-ctx.R // chunk)
    keys = jax.random.split(k_x, n_chunks)
    ext = np.concatenate(
        [np.asarray(fn(keys[c], jnp.asarray(theta))) for c in range(n_chunks)]
    )[: ctx.R]
    idx = np.asarray(jax.random.randint(k_b, (n_boot, ctx.R), 0, ctx.R))
    word = "max" if use_max else "min"
    for j, n in enumerate(ctx.sizes):
        e = ext[:, j] - end  # distance from the fixed end of the support
        v = float(np.var(e, ddof=1))
        v_b = np.var(e[idx], axis=1, ddof=1)
        scaled = n * n * v
        exact = th**2 * n / ((n + 1) ** 2 * (n + 2)) if end == 0.0 else None
        naive = 1.0 / (n * es2) if es2 else None
        msg = (
            f"{head}. The MLE {word}(x) of {fam.params[i_par]} has variance "
            f"O(1/n^2), not O(1/n): simulated n^2 Var = {scaled:.4g} at n = {n} "
            f"(tends to {fam.params[i_par]}^2 = {th**2:.4g}"
            + (f"; exactly {n * n * exact:.4g} at this n" if exact is not None else "")
            + f"), Var = {v:.3g}"
        )
        if naive is not None:
            msg += (
                f", below the naive 'bound' 1/(n E[s^2]) = {naive:.3g} "
                f"(E[s^2] = {es2:.4g}, i.e. {fam.params[i_par]}^2/n)"
                if v < naive
                else f", not below the naive 'bound' 1/(n E[s^2]) = {naive:.3g} at this n"
            )
        out.append(
            ctx.check(
                "MLE variance (non-regular)",
                entry=f"n={n}",
                kind="report",
                verdict="not applicable",
                expected=th**2,
                observed=scaled,
                se=float(n * n * np.std(v_b, ddof=1)),
                n=ctx.R,
                message=msg + ".",
            )
        )
    return out


def _support_mle(fam: Any) -> tuple[int, bool, float] | None:
    r"""``(parameter index, MLE is the max, the fixed end)`` for U(0, theta)-like supports.

    The MLE is :math:`\max_i x_i` when the support is :math:`(c, \theta)` with the
    density decreasing in :math:`\theta` (as for :math:`1/(\theta - c)`), and
    :math:`\min_i x_i` for :math:`(\theta, c)`; other shapes return ``None``.
    """
    if len(fam.variables) != 1 or len(fam.params) != 1:
        return None
    s = fam.supports[0]
    p = fam.params[0]
    try:
        lo, hi = s.inf, s.sup
    except Exception:
        return None
    if hi == p and lo.is_number and lo.is_finite:
        return 0, True, float(lo)
    if lo == p and hi.is_number and hi.is_finite:
        return 0, False, float(hi)
    return None


def _extreme_fn(
    sampler: Callable, sizes: tuple[int, ...], chunk: int, use_max: bool
) -> Callable:
    n_max = sizes[-1]

    def fn(key: jax.Array, theta: jax.Array) -> jax.Array:
        x = sampler(key, theta, (chunk, n_max)).astype(theta.dtype)
        red = jnp.max if use_max else jnp.min
        return jnp.stack([red(x[:, :n], axis=1) for n in sizes], axis=1)

    return jax.jit(fn)
