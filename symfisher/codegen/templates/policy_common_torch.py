# Read as text by symfisher.codegen.policy_module (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: what the three PyTorch policy kernel modules share.

The twin of ``policy_common.py``: input checks (shapes, dtypes, devices and
values), the state weights, and the blocks of a softmax policy's Fisher. A
value check that only a transform (``torch.func.vmap``) could evaluate is
skipped there, as the JAX modules skip it under ``jit``.
"""

import torch

# stand-ins for the constants of a policy module's head section
POLICY = "policy"
_THETA_SHAPE = "(rows, columns)"
_THETA_MIN = (1, 1)

#: the end of every PyTorch policy module's docstring
DOC = r"""
Every function takes ``weights=None`` (uniform :math:`1/B`) or ``(B,)``
nonnegative weights :math:`w`, normalised by their sum; ``fisher`` is
:math:`\sum_b w_b F(s_b)` and ``kl`` is
:math:`\sum_b w_b \mathrm{KL}(\pi_p(\cdot|s_b) \,\|\, \pi_q(\cdot|s_b))`.
Vectors over ``theta`` (rows and columns of the ``(P, P)`` matrices, P =
``theta.numel()``) are ``theta.reshape(-1)``, row-major.

PyTorch twin of the JAX module of the same name (the same formulas): every
tensor lives on ``theta``'s device, in its dtype. Input checks
(``check_inputs``, first line of every function): shapes, dtypes and devices
always; values (finite states and actions, indices in range, nonnegative
weights) where they can be read (not inside ``torch.func.vmap``).
``sample(theta, states, generator=None)`` draws with a ``torch.Generator``.
"""

# fmt: off
# template: common


def _known(cond):
    """``bool(cond)``, or None where only a transform knows the value (``vmap``)."""
    try:
        return bool(cond)
    except RuntimeError:
        return None


def _rows(bad):
    """``[3, 17]``: the indices where ``bad`` is True, at most 10, then "…"."""
    idx = torch.nonzero(bad.reshape(-1))[:11, 0].tolist()
    text = ", ".join(str(i) for i in idx[:10])
    return f"[{text}, …]" if len(idx) > 10 else f"[{text}]"


def _tensor(x, theta, name):
    """``x`` as a tensor on ``theta``'s device."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, device=theta.device)
    if x.device != theta.device:
        raise ValueError(
            f"{POLICY}: {name} is on device {x.device} but theta is on "
            f"{theta.device}: {name} must be on theta's device"
        )
    return x


def _theta(theta, name="theta"):
    """``theta`` as a 2-D floating tensor of at least ``_THETA_MIN`` rows and columns."""
    if not isinstance(theta, torch.Tensor):
        theta = torch.as_tensor(theta)
    if not theta.is_floating_point():
        raise TypeError(
            f"{POLICY}: {name} must be a floating tensor (float32 or float64); "
            f"got dtype {theta.dtype}"
        )
    if (
        theta.ndim != 2
        or theta.shape[0] < _THETA_MIN[0]
        or theta.shape[1] < _THETA_MIN[1]
    ):
        raise ValueError(
            f"{POLICY}: {name} must be a 2-D tensor {_THETA_SHAPE}; "
            f"got shape {tuple(theta.shape)}"
        )
    return theta


def _like(v, theta, name):
    """``v`` as a floating tensor of ``theta``'s shape, dtype and device."""
    v = _tensor(v, theta, name)
    if not v.is_floating_point():
        raise TypeError(
            f"{POLICY}: {name} must be a floating tensor (float32 or float64); "
            f"got dtype {v.dtype}"
        )
    if v.shape != theta.shape:
        raise ValueError(
            f"{POLICY}: {name} has shape {tuple(v.shape)} but theta has shape "
            f"{tuple(theta.shape)}: {name} must have theta's shape"
        )
    return v.to(theta.dtype)


def _is_integer(x):
    return not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)


def _real(x, name, dtype):
    """``x`` (integer or floating) in ``dtype``; non-finite rows named when readable."""
    if not (x.is_floating_point() or _is_integer(x)):
        raise TypeError(
            f"{POLICY}: {name} must be a real tensor (float or integer); "
            f"got dtype {x.dtype}"
        )
    x = x.to(dtype)
    bad = ~torch.all(torch.isfinite(x.reshape(x.shape[0], -1)), dim=1) if x.ndim else ~torch.isfinite(x)
    if _known(torch.any(bad)):
        raise ValueError(f"{POLICY}: {name} rows {_rows(bad)} are not finite (NaN or inf)")
    return x


def _indices(x, name, n, what):
    """``x`` as an int64 tensor of indices in 0..n-1 (values checked when readable)."""
    if not _is_integer(x):
        raise TypeError(
            f"{POLICY}: {name} must be an integer tensor of {what} indices; "
            f"got dtype {x.dtype}"
        )
    bad = (x < 0) | (x >= n)
    if _known(torch.any(bad)):
        raise ValueError(
            f"{POLICY}: {name} rows {_rows(bad)} are outside the valid range "
            f"0..{n - 1} of {what} indices"
        )
    return x.long()


def _nonempty(states):
    if states.shape[0] == 0:
        raise ValueError(f"{POLICY}: states have no rows: need at least one state (B >= 1)")


def _one_hot(idx, n, like):
    """``(B, n)`` rows :math:`e_{idx_b}` in ``like``'s dtype."""
    return (idx[:, None] == torch.arange(n, device=like.device)).to(like.dtype)


def _weights(weights, states, theta):
    r"""Normalised weights :math:`w / \sum w`, shape (B,); uniform when None."""
    B = states.shape[0]
    if weights is None:
        return torch.full((B,), 1.0 / B, dtype=theta.dtype, device=theta.device)
    w = _tensor(weights, theta, "weights")
    if tuple(w.shape) != (B,):
        raise ValueError(
            f"{POLICY}: weights have shape {tuple(w.shape)} but states have {B} rows: "
            f"weights must be ({B},), one nonnegative weight per state"
        )
    w = _real(w, "weights", theta.dtype)
    neg = w < 0
    if _known(torch.any(neg)):
        raise ValueError(f"{POLICY}: weights rows {_rows(neg)} are negative")
    if _known(torch.sum(w) > 0) is False:
        raise ValueError(f"{POLICY}: weights sum to 0: at least one must be positive")
    return w / torch.sum(w)


def _softmax_core(logp):
    r""":math:`\operatorname{diag}p - pp^\top` per row, (B, K, K); diagonal :math:`-p\operatorname{expm1}(\log p)`."""
    p = torch.exp(logp)
    eye = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
    diag = p * -torch.expm1(logp)
    return eye * diag[:, None, :] - (1.0 - eye) * p[:, :, None] * p[:, None, :]


def _softmax_fvp(logp, u):
    r""":math:`(\operatorname{diag}p - pp^\top) u = p \odot (u - p^\top u)` per row."""
    p = torch.exp(logp)
    return p * (u - torch.sum(p * u, dim=-1, keepdim=True))


def _softmax_kl(logp, logq, w):
    r""":math:`\sum_b w_b \sum_a p_{ba} (\log p_{ba} - \log q_{ba})`."""
    return torch.sum(w * torch.sum(torch.exp(logp) * (logp - logq), dim=-1))


def _damping(damping, theta):
    r"""The damping :math:`\lambda`, a scalar tensor of theta's dtype and device; a readable value must be finite and >= 0."""
    # a Python number in float64 (torch's default dtype, float32, would round 0.1)
    lam = damping if isinstance(damping, torch.Tensor) else torch.as_tensor(damping, dtype=torch.float64)
    if lam.ndim != 0 or not (lam.is_floating_point() or _is_integer(lam)):
        raise ValueError(f"{POLICY}: damping must be a real scalar; got {damping!r}")
    lam = lam.to(dtype=theta.dtype, device=theta.device)
    if _known(torch.isfinite(lam) & (lam >= 0)) is False:
        raise ValueError(f"{POLICY}: damping must be finite and >= 0; got {damping!r}")
    return lam


def _positive(lam):
    """True when ``lam`` is readable and > 0."""
    return bool(_known(lam > 0))


def _softmax_solve(logp, g, lam):
    r"""Per row, :math:`(\operatorname{diag}p - pp^\top + \lambda I)^{-1} g`; :math:`F^{+} g` where :math:`\lambda = 0`.

    Sherman–Morrison with :math:`d = p + \lambda`, :math:`u = p/d`:
    :math:`x = g/d + u\,(u^\top g)/(\lambda\,\mathbf 1^\top u)`; at :math:`\lambda = 0`
    the minimum-norm :math:`C \operatorname{diag}(1/p)\, C g`, :math:`C = I - \mathbf 1\mathbf 1^\top/K`.
    ``lam`` broadcasts against ``logp[..., :1]``.
    """
    p = torch.exp(logp)
    pos = lam > 0
    lam = torch.where(pos, lam, 1.0)
    inv = 1.0 / (p + lam)
    u = p * inv
    damped = g * inv + u * (torch.sum(u * g, dim=-1, keepdim=True) / (lam * torch.sum(u, dim=-1, keepdim=True)))
    y = (g - torch.mean(g, dim=-1, keepdim=True)) * torch.exp(-logp)
    return torch.where(pos, damped, y - torch.mean(y, dim=-1, keepdim=True))


def _softmax_sqrt(logp):
    r""":math:`L = \operatorname{diag}\sqrt p - \sqrt p\, p^\top` per row, :math:`L^\top L = \operatorname{diag}p - pp^\top`, (..., K, K)."""
    p, r = torch.exp(logp), torch.exp(0.5 * logp)
    eye = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
    return eye * r[..., None, :] - r[..., :, None] * p[..., None, :]


def _eig(M):
    r""":math:`M = Q \operatorname{diag}(e) Q^\top`; eigenvalues below :math:`\varepsilon\,n\max|e|` set to 0."""
    e, Q = torch.linalg.eigh(M)
    tol = torch.finfo(M.dtype).eps * M.shape[-1] * torch.max(torch.abs(e))
    return Q, torch.where(torch.abs(e) > tol, e, 0.0)


def _kron_solve(G, A, g, lam):
    r""":math:`(G \otimes A + \lambda I)^{-1} \operatorname{vec}(g)` for ``g`` of shape (rows of G, rows of A).

    With :math:`G = U \operatorname{diag}(\gamma) U^\top`, :math:`A = V \operatorname{diag}(\alpha) V^\top`:
    :math:`X = U \big[(U^\top g V) / (\gamma \alpha^\top + \lambda)\big] V^\top`,
    entries with :math:`\gamma_k \alpha_i + \lambda = 0` set to 0 (minimum norm).
    """
    U, gam = _eig(G)
    V, alpha = _eig(A)
    den = gam[:, None] * alpha[None, :] + lam
    inv = torch.where(den > 0, 1.0 / torch.where(den > 0, den, 1.0), 0.0)
    return U @ ((U.T @ g @ V) * inv) @ V.T


def _softmax_kfac_g(logp, w):
    r""":math:`G = \sum_b w_b (\operatorname{diag}p_b - p_b p_b^\top)`, (K, K)."""
    p = torch.exp(logp)
    wp = w[:, None] * p
    return torch.diag(torch.sum(wp, dim=0)) - wp.T @ p


def _softmax_entropy(logp):
    r""":math:`-\sum_a p_a \log p_a` per row, (B,); a :math:`p_a = 0` adds 0 (gradient too)."""
    p = torch.exp(logp)
    return -torch.sum(p * torch.where(p > 0, logp, torch.zeros_like(logp)), dim=-1)
# end template: common
# fmt: on
