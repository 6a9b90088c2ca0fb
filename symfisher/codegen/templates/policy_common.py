# Read as text by symfisher.codegen.policy_module (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: what the three policy kernel modules share.

Input checks (shapes, dtypes and, for concrete arrays, values), the state
weights, and the blocks of a softmax policy's Fisher. Every policy module holds
the ``common`` section between its own head and body sections, and ``DOC`` at
the end of its docstring; the constants below stand for those of the head.
"""

import jax
import jax.numpy as jnp

# stand-ins for the constants of a policy module's head section
POLICY = "policy"
_THETA_SHAPE = "(rows, columns)"
_THETA_MIN = (1, 1)

#: the end of every policy module's docstring
DOC = r"""
Every function takes ``weights=None`` (uniform :math:`1/B`) or ``(B,)``
nonnegative weights :math:`w`, normalised by their sum; ``fisher`` is
:math:`\sum_b w_b F(s_b)` and ``kl`` is
:math:`\sum_b w_b \mathrm{KL}(\pi_p(\cdot|s_b) \,\|\, \pi_q(\cdot|s_b))`.
Vectors over ``theta`` (rows and columns of the ``(P, P)`` matrices, P =
``theta.size``) are ``theta.reshape(-1)``, row-major.

Input checks (``check_inputs``, first line of every function): shapes and
dtypes always, also under ``jit``; values (finite states and actions, indices
in range, nonnegative weights) only when the arrays are concrete. Under
``jit``/``vmap`` the value checks are skipped and JAX conventions apply
(out-of-range indices are clamped, NaN propagates).
"""

# fmt: off
# template: common


def _concrete(x):
    """True when ``x`` holds values, False for a tracer of ``jit``, ``vmap`` or ``grad``."""
    return not isinstance(x, jax.core.Tracer)


def _rows(bad):
    """``[3, 17]``: the indices where ``bad`` is True, at most 10, then "…"."""
    idx = jnp.flatnonzero(bad)[:11].tolist()
    text = ", ".join(str(i) for i in idx[:10])
    return f"[{text}, …]" if len(idx) > 10 else f"[{text}]"


def _theta(theta, name="theta"):
    """``theta`` as a 2-D floating array of at least ``_THETA_MIN`` rows and columns."""
    theta = jnp.asarray(theta)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        raise TypeError(
            f"{POLICY}: {name} must be a floating array (float32 or float64); "
            f"got dtype {theta.dtype}"
        )
    if (
        theta.ndim != 2
        or theta.shape[0] < _THETA_MIN[0]
        or theta.shape[1] < _THETA_MIN[1]
    ):
        raise ValueError(
            f"{POLICY}: {name} must be a 2-D array {_THETA_SHAPE}; "
            f"got shape {theta.shape}"
        )
    return theta


def _like(v, theta, name):
    """``v`` as a floating array of ``theta``'s shape, in ``theta``'s dtype."""
    v = jnp.asarray(v)
    if not jnp.issubdtype(v.dtype, jnp.floating):
        raise TypeError(
            f"{POLICY}: {name} must be a floating array (float32 or float64); "
            f"got dtype {v.dtype}"
        )
    if v.shape != theta.shape:
        raise ValueError(
            f"{POLICY}: {name} has shape {v.shape} but theta has shape "
            f"{theta.shape}: {name} must have theta's shape"
        )
    return v.astype(theta.dtype)


def _real(x, name, dtype):
    """``x`` (integer or floating) in ``dtype``; non-finite rows named when concrete."""
    if not (
        jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
    ):
        raise TypeError(
            f"{POLICY}: {name} must be a real array (float or integer); "
            f"got dtype {x.dtype}"
        )
    x = x.astype(dtype)
    if _concrete(x):
        with jax.ensure_compile_time_eval():  # concrete even inside a jit trace
            bad = ~jnp.all(jnp.isfinite(x), axis=tuple(range(1, x.ndim)))
            if bool(jnp.any(bad)):
                raise ValueError(f"{POLICY}: {name} rows {_rows(bad)} are not finite (NaN or inf)")
    return x


def _indices(x, name, n, what):
    """``x`` as an integer array of indices in 0..n-1 (values checked when concrete)."""
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{POLICY}: {name} must be an integer array of {what} indices; "
            f"got dtype {x.dtype}"
        )
    if _concrete(x):
        with jax.ensure_compile_time_eval():  # concrete even inside a jit trace
            bad = (x < 0) | (x >= n)
            if bool(jnp.any(bad)):
                raise ValueError(
                    f"{POLICY}: {name} rows {_rows(bad)} are outside the valid range "
                    f"0..{n - 1} of {what} indices"
                )
    return x


def _nonempty(states):
    if states.shape[0] == 0:
        raise ValueError(f"{POLICY}: states have no rows: need at least one state (B >= 1)")


def _weights(weights, states, theta):
    r"""Normalised weights :math:`w / \sum w`, shape (B,); uniform when None."""
    B = states.shape[0]
    if weights is None:
        return jnp.full((B,), 1.0 / B, dtype=theta.dtype)
    w = jnp.asarray(weights)
    if w.shape != (B,):
        raise ValueError(
            f"{POLICY}: weights have shape {w.shape} but states have {B} rows: "
            f"weights must be ({B},), one nonnegative weight per state"
        )
    w = _real(w, "weights", theta.dtype)
    if _concrete(w):
        with jax.ensure_compile_time_eval():  # concrete even inside a jit trace
            neg = w < 0
            if bool(jnp.any(neg)):
                raise ValueError(f"{POLICY}: weights rows {_rows(neg)} are negative")
            if not bool(jnp.sum(w) > 0):
                raise ValueError(f"{POLICY}: weights sum to 0: at least one must be positive")
    return w / jnp.sum(w)


def _softmax_core(logp):
    r""":math:`\operatorname{diag}p - pp^\top` per row, (B, K, K); diagonal :math:`-p\operatorname{expm1}(\log p)`."""
    p = jnp.exp(logp)
    eye = jnp.eye(p.shape[-1], dtype=p.dtype)
    diag = p * -jnp.expm1(logp)
    return eye * diag[:, None, :] - (1.0 - eye) * p[:, :, None] * p[:, None, :]


def _softmax_fvp(logp, u):
    r""":math:`(\operatorname{diag}p - pp^\top) u = p \odot (u - p^\top u)` per row."""
    p = jnp.exp(logp)
    return p * (u - jnp.sum(p * u, axis=-1, keepdims=True))


def _softmax_kl(logp, logq, w):
    r""":math:`\sum_b w_b \sum_a p_{ba} (\log p_{ba} - \log q_{ba})`."""
    return jnp.sum(w * jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1))


def _damping(damping, theta):
    r"""The damping :math:`\lambda`, a scalar of theta's dtype, concrete when known (also under ``jit``).

    A known value must be finite and >= 0.
    """
    with jax.ensure_compile_time_eval():
        lam = jnp.asarray(damping)
        if lam.ndim != 0 or not (jnp.issubdtype(lam.dtype, jnp.floating) or jnp.issubdtype(lam.dtype, jnp.integer)):
            raise ValueError(f"{POLICY}: damping must be a real scalar; got {damping!r}")
        lam = lam.astype(theta.dtype)
        if _concrete(lam) and not bool(jnp.isfinite(lam) & (lam >= 0)):
            raise ValueError(f"{POLICY}: damping must be finite and >= 0; got {damping!r}")
    return lam


def _positive(lam):
    """True when ``lam`` is known (concrete) and > 0."""
    if not _concrete(lam):
        return False
    with jax.ensure_compile_time_eval():
        return bool(lam > 0)


def _softmax_solve(logp, g, lam):
    r"""Per row, :math:`(\operatorname{diag}p - pp^\top + \lambda I)^{-1} g`; :math:`F^{+} g` where :math:`\lambda = 0`.

    Sherman–Morrison with :math:`d = p + \lambda`, :math:`u = p/d`:
    :math:`x = g/d + u\,(u^\top g)/(\lambda\,\mathbf 1^\top u)`; at :math:`\lambda = 0`
    the minimum-norm :math:`C \operatorname{diag}(1/p)\, C g`, :math:`C = I - \mathbf 1\mathbf 1^\top/K`.
    ``lam`` broadcasts against ``logp[..., :1]``.
    """
    p = jnp.exp(logp)
    pos = lam > 0
    lam = jnp.where(pos, lam, 1.0)
    inv = 1.0 / (p + lam)
    u = p * inv
    damped = g * inv + u * (jnp.sum(u * g, axis=-1, keepdims=True) / (lam * jnp.sum(u, axis=-1, keepdims=True)))
    y = (g - jnp.mean(g, axis=-1, keepdims=True)) * jnp.exp(-logp)
    return jnp.where(pos, damped, y - jnp.mean(y, axis=-1, keepdims=True))


def _softmax_sqrt(logp):
    r""":math:`L = \operatorname{diag}\sqrt p - \sqrt p\, p^\top` per row, :math:`L^\top L = \operatorname{diag}p - pp^\top`, (..., K, K)."""
    p, r = jnp.exp(logp), jnp.exp(0.5 * logp)
    eye = jnp.eye(p.shape[-1], dtype=p.dtype)
    return eye * r[..., None, :] - r[..., :, None] * p[..., None, :]


def _eig(M):
    r""":math:`M = Q \operatorname{diag}(e) Q^\top`; eigenvalues below :math:`\varepsilon\,n\max|e|` set to 0."""
    e, Q = jnp.linalg.eigh(M)
    tol = jnp.finfo(M.dtype).eps * M.shape[-1] * jnp.max(jnp.abs(e))
    return Q, jnp.where(jnp.abs(e) > tol, e, 0.0)


def _kron_solve(G, A, g, lam):
    r""":math:`(G \otimes A + \lambda I)^{-1} \operatorname{vec}(g)` for ``g`` of shape (rows of G, rows of A).

    With :math:`G = U \operatorname{diag}(\gamma) U^\top`, :math:`A = V \operatorname{diag}(\alpha) V^\top`:
    :math:`X = U \big[(U^\top g V) / (\gamma \alpha^\top + \lambda)\big] V^\top`,
    entries with :math:`\gamma_k \alpha_i + \lambda = 0` set to 0 (minimum norm).
    """
    U, gam = _eig(G)
    V, alpha = _eig(A)
    den = gam[:, None] * alpha[None, :] + lam
    inv = jnp.where(den > 0, 1.0 / jnp.where(den > 0, den, 1.0), 0.0)
    return U @ ((U.T @ g @ V) * inv) @ V.T


def _softmax_kfac_g(logp, w):
    r""":math:`G = \sum_b w_b (\operatorname{diag}p_b - p_b p_b^\top)`, (K, K)."""
    p = jnp.exp(logp)
    wp = w[:, None] * p
    return jnp.diag(jnp.sum(wp, axis=0)) - wp.T @ p


def _softmax_entropy(logp):
    r""":math:`-\sum_a p_a \log p_a` per row, (B,); a :math:`p_a = 0` adds 0 (gradient too)."""
    p = jnp.exp(logp)
    return -jnp.sum(p * jnp.where(p > 0, logp, 0.0), axis=-1)
# end template: common
# fmt: on
