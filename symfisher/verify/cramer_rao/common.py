"""Shared parts of the Cramér–Rao simulations: settings, records, kernel calls, linear algebra."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from symfisher.verify.kernel_access import Kernels, _jit
from symfisher.verify.result import Check
from symfisher.verify.stats import detectable

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
_MEAN_FORMS: dict[str, Any] = {}  # by cache key: unbiased._Forms
_SYMBOLIC: dict[Any, tuple[Any, sp.Matrix | None, str]] = {}


class _KernelError(Exception):
    """A kernel failed; ``message`` names the function, the point and the expectation."""


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
    return Kernels(kernels).get(fn)


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
    """Call one kernel, jitted, and check its output's shape and finiteness.

    Jitted, a kernel is one compiled program rather than one per operation.
    """
    try:
        out = np.asarray(_jit(f)(*args), dtype=np.float64)
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
            checks = [np.asarray(c) for c in _jit(k.param_checks)(t)]
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
