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

Modules: :mod:`~symfisher.verify.cramer_rao.common` (settings, records, kernel
calls, linear algebra), :mod:`~symfisher.verify.cramer_rao.unbiased` (a),
:mod:`~symfisher.verify.cramer_rao.mle` (b),
:mod:`~symfisher.verify.cramer_rao.nonregular` (c); this one runs them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import sympy as sp

from symfisher.verify.cramer_rao.common import _K, BOOTSTRAP, _Ctx, _KernelError, _probe
from symfisher.verify.cramer_rao.mle import _boot, _mle, _simulate
from symfisher.verify.cramer_rao.nonregular import _non_regular
from symfisher.verify.cramer_rao.unbiased import _mean_forms, _symbolic, _unbiased
from symfisher.verify.result import Check
from symfisher.verify.stats import ALPHA

__all__ = ["cramer_rao_checks"]


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
