r"""(a) An unbiased estimator against the bound :math:`J F^{+} J^\top / n`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import sympy as sp

from symfisher.verify.cramer_rao.common import (
    _MEAN_FORMS,
    _NULL,
    _SYMBOLIC,
    EXPECT_SECONDS,
    NULL_DRAWS,
    _Ctx,
    _pinv,
    _range,
)
from symfisher.verify.result import Check
from symfisher.verify.stats import one_sided_below


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


@dataclass
class _Forms:
    """Closed forms of E[x] (or None) and how they were found; traced like a derivation."""

    values: list[sp.Expr] | None
    how: str
    steps: dict[str, str] = field(default_factory=dict)
    by_clock: int = 0
    budget: float = 0.0


class _MeanOf:
    """The on-disk cache subject of a family's E[x] (beside its derivation's entry)."""

    def __init__(self, fam: Any) -> None:
        self.name = f"{fam.name}.mean_x"
        self._text = "closed forms of E[x] for\n" + fam.definition_text()

    def definition_text(self) -> str:
        return self._text


def symbolic_steps(fam: Any) -> None:
    """The verifier's time-limited symbolic steps for ``fam``, taken afresh (no disk cache).

    The closed forms of E[x], then the derivation's Cramér–Rao bound of them.
    ``symfisher generate`` takes them for every catalog family so that the book
    records their outcomes: beta's and von Mises' integrations run into their
    10 s limit, and without a record the clock would decide, on every cold run,
    whether the unbiased-estimator check gets a closed form (and its bound's
    inversion and tidying, limited too, whether it gets a symbolic bound).
    """
    forms = _compute_forms(fam).values
    if forms is not None:
        _bound_expr(fam, forms)


def _compute_forms(fam: Any) -> _Forms:
    try:
        from symfisher.derive.expectation import expect

        got = expect(fam, list(fam.variables), seconds=EXPECT_SECONDS)
        vals = got.values
        if vals is None or any(v is None for v in vals):
            return _Forms(None, got.detail or got.method)
        if any(set(v.free_symbols) - set(fam.params) for v in vals):
            return _Forms(None, "the closed form has free symbols")
        return _Forms(list(vals), got.method)
    except Exception as e:
        return _Forms(None, f"{type(e).__name__}: {e}")


def _mean_forms(fam: Any) -> tuple[list[sp.Expr] | None, str]:
    """Closed forms of E[x] (cached on disk per family definition), or ``(None, why)``.

    The symbolic expectation is the slowest part of a verification whose
    kernels compile from JAX's cache; like a derivation it is stored with its
    time-limited steps (:func:`symfisher.cache.cached`), so a later run reuses
    it exactly when a new computation would give the same answer.
    """
    from symfisher import cache

    try:
        subject = _MeanOf(fam)
    except Exception:  # no definition text: compute, do not store
        got = _compute_forms(fam)
        return got.values, got.how
    got = cache.cached(
        subject,
        _MEAN_FORMS,
        EXPECT_SECONDS,
        lambda: cache.timed(lambda: _compute_forms(fam), EXPECT_SECONDS, total=False),
        lambda payload: _Forms(**payload),
        ("values", "how", "steps", "by_clock", "budget"),
    )
    return got.values, got.how


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


def _bound_expr(fam: Any, forms: list[sp.Expr]) -> tuple[Any, sp.Matrix | None, str]:
    """(derivation, its closed-form bound for g = ``forms`` at n = 1 or None, why), memoised."""
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
            except Exception as e:  # singular F: the pseudo-inverse route
                _SYMBOLIC[memo_key] = (d, None, f"{type(e).__name__}: {e}")
        except Exception as e:
            _SYMBOLIC[memo_key] = (None, None, f"{type(e).__name__}: {e}")
    return _SYMBOLIC[memo_key]


def _symbolic_bound(
    fam: Any, forms: list[sp.Expr], theta: np.ndarray
) -> tuple[np.ndarray | None, str]:
    r"""The derivation's bound :math:`\nabla g\, F^{-1} \nabla g^\top` (n = 1) for g = E[x] at ``theta``.

    ``Derivation.cramer_rao`` gives it in closed form (memoised per family); where
    the Fisher matrix is singular (softmax logits) ``Derivation.natural_gradient``
    gives :math:`F^{+} \nabla g_j` from the derivation's Fisher at 30 digits.
    """
    d, expr, why = _bound_expr(fam, forms)
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
