r"""KL checks at one point, and the nearby point :math:`\theta'` they use.

* KL Hessian = F: :math:`\nabla^2_{\theta'} \mathrm{KL}(\theta\|\theta')|_{\theta'=\theta} = F`
  (deterministic, ``jax.hessian``);
* MC KL = KL: :math:`\overline{\log p_\theta - \log p_{\theta'}} = \mathrm{KL}(\theta\|\theta')`
  (z-test), at a :math:`\theta'` with :math:`\tfrac12 \delta^\top F \delta \approx \tfrac12`;
* KL ~ ½ δᵀFδ: :math:`\mathrm{KL}(\theta, \theta+\epsilon\delta) /
  (\tfrac12\epsilon^2 \delta^\top F \delta) \to 1` over ``KL_EPSILONS`` (deterministic).
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.families.family import Family
from symfisher.verify.kernel_access import Kernels, _jit
from symfisher.verify.points import _named
from symfisher.verify.result import Check
from symfisher.verify.z_checks import _z_check

KL_EPSILONS = (1e-1, 1e-2, 1e-3, 1e-4)


def _theta_q(
    fam: Family, theta: np.ndarray, F: np.ndarray | None, key: jax.Array
) -> np.ndarray:
    """A valid nearby point with KL about 1/2 (½ δᵀFδ = 1/2), shrunk into the domain."""
    P = len(theta)
    # depends on the point only, so that pilot and main runs test the same KL
    u = np.random.default_rng(zlib.crc32(theta.tobytes())).normal(size=P)
    if F is not None:
        quad = float(u @ F @ u)
        u = u / np.sqrt(quad) if quad > 0 else u
    for scale in (1.0, 0.5, 0.25, 0.1, 0.05, 0.01):
        q = theta + scale * u
        try:
            fam.point(list(q))
        except Exception:
            continue
        if fam.support_depends_on_params and np.any(q < theta):
            continue
        return q
    return theta * 1.01


def _kl_checks(
    fam: Family,
    K: Kernels,
    theta: np.ndarray,
    theta_q: np.ndarray,
    F: np.ndarray,
    llr: Any,
    N: int,
    key: jax.Array,
) -> list[Check]:
    kl = K.get("kl")
    named = _named(fam, theta)
    out = []
    t = jnp.asarray(theta)
    try:
        Hk = np.asarray(_jit(kl, "hessian")(t, t))
        rel = float(np.max(np.abs(Hk - F)) / np.max(np.abs(F)))
        # quadrature kernels: their stated accuracies on top of rounding
        tol = 1e-8 + K.accuracy("kl") + K.accuracy("fisher")
        ok = rel <= tol
        why = (
            f"max |hessian(kl) - F| / max|F| = {rel:.3g} > {tol:.3g} (autodiff of "
            "a closed form is exact to rounding; a quadrature kernel adds its stated "
            "accuracy)"
        )
        out.append(
            Check.deterministic(
                fam.name,
                "KL Hessian = F",
                named,
                rel,
                ok,
                "" if ok else why,
                expected=0.0,
                observed=rel,
            )
        )
    except Exception as e:
        out.append(
            Check.error(
                fam.name,
                "KL Hessian = F",
                named,
                f"jax.hessian(kl) at {named}: {type(e).__name__}: {e}",
            )
        )
    if llr is not None:
        kl_val = float(_jit(kl)(t, jnp.asarray(theta_q)))
        c = _z_check(
            fam,
            theta,
            "MC KL = KL",
            f"theta'={np.round(theta_q, 4).tolist()}",
            llr.mean,
            llr.se,
            kl_val,
            abs(kl_val),
            N,
            K.accuracy("kl") * abs(kl_val),
        )
        out.append(c)
    # KL(θ, θ + εδ) / (½ ε² δᵀFδ) → 1, with δ of unit length in the Fisher metric
    # (δᵀFδ = 1) so that ε is dimensionless: a raw normal δ stepped out of the
    # domain or far into the cubic term near a boundary (categorical with a
    # small p_k), and made KL comparable to rounding where F is small.
    u = np.asarray(jax.random.normal(jax.random.fold_in(key, 7), (len(theta),)))
    quad = float(u @ F @ u)
    if quad > 0:
        u, quad = u / np.sqrt(quad), 1.0
    ratios = []
    for eps in KL_EPSILONS:
        q = theta + eps * u
        try:
            fam.point(list(q))
        except Exception:
            ratios.append(float("nan"))
            continue
        ratios.append(
            float(_jit(kl)(t, jnp.asarray(q))) / (0.5 * eps**2 * quad)
            if quad > 0
            else float("nan")
        )
    last = abs(ratios[-1] - 1.0)
    # compare with the largest ε that stayed in the domain (NaN never compares)
    first = next((abs(r - 1.0) for r in ratios if np.isfinite(r)), float("nan"))
    ok = bool(np.isfinite(last) and last <= 1e-2 and last <= first + 1e-6)
    out.append(
        Check.deterministic(
            fam.name,
            "KL ~ ½ δᵀFδ",
            named,
            last,
            ok,
            "ratios "
            + ", ".join(f"{r:.6f}" for r in ratios)
            + (
                ""
                if ok
                else ": KL/(½ε²δᵀFδ) does not tend to 1 (|r-1| must shrink below 1e-2)"
            ),
            entry="eps=" + ",".join(f"{e:g}" for e in KL_EPSILONS),
            expected=1.0,
            observed=ratios[-1],
        )
    )
    return out
