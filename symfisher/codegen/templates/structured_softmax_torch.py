# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the PyTorch kernels of the softmax categorical, any number of classes K.

The twin of ``structured_softmax.py`` (same formulas, same docstrings' maths;
its ``constants`` section serves both); ``_theta``, ``_x`` and ``_damping``
come from the generated header (``kernel_torch.py``).
"""

import math

import torch

from symfisher.codegen.templates.kernel_torch import _theta, _x

# fmt: off
# template: body


def param_checks(theta):
    """Boolean tensors, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (torch.all(torch.isfinite(theta), dim=-1),)


def _onehot(x, theta):
    x = _x(x, theta)
    return (x[..., None] == torch.arange(theta.shape[-1], device=theta.device)).to(theta.dtype)


def _lse(theta):
    r""":math:`\log\sum_j e^{z_j} = m + \operatorname{log1p}(s)`, as (m, log1p part).

    :math:`m = \max_j z_j` and :math:`s = \sum_{z_j < m} e^{z_j - m}` plus the
    number of further ties, so :math:`\log p_{j^*}` stays accurate when the top
    probability is close to 1 (where :math:`\sum_j e^{z_j - m} - 1` would cancel).
    """
    m = torch.amax(theta, dim=-1, keepdim=True).detach()
    d = theta - m
    top = d == 0
    s = torch.sum(torch.where(top, 0.0, torch.exp(d)), dim=-1, keepdim=True)
    # ties beyond the first, and expm1(0) = 0 entries that carry the gradient
    s = s + (torch.sum(top, dim=-1, keepdim=True) - 1) + torch.sum(
        torch.where(top, torch.expm1(d), 0.0), dim=-1, keepdim=True
    )
    return m, torch.log1p(s)


def _log_softmax(theta):
    r""":math:`\log p_k = (z_k - m) - \operatorname{log1p}(\cdot)`; see ``_lse``."""
    m, r = _lse(theta)
    return (theta - m) - r


def log_prob(theta, x):
    r"""Log-probability :math:`z_x - \log\sum_k e^{z_k}`; -inf outside 0..K-1."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    logp = _log_softmax(theta)
    inside = torch.sum(oh, dim=-1) > 0
    return torch.where(inside, torch.sum(torch.where(oh > 0, logp, 0.0), dim=-1), -math.inf)


def score(theta, x):
    r"""Score :math:`e_x - p`, shape ``(..., K)``."""
    theta = _theta(theta)
    return _onehot(x, theta) - torch.softmax(theta, dim=-1)


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-(\operatorname{diag}(p) - p p^\top)` (it does not depend on x)."""
    theta = _theta(theta)
    shape = torch.broadcast_shapes(theta.shape[:-1], _x(x, theta).shape)
    return -torch.broadcast_to(fisher(theta), (*shape, theta.shape[-1], theta.shape[-1]))


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(p) - p p^\top`, shape ``(..., K, K)``.

    :math:`F_{ij} = p_i (\delta_{ij} (1 - p_j) - (1 - \delta_{ij}) p_j)`; where
    :math:`p_k > 1/2`, :math:`1 - p_k` is :math:`\sum_{j \ne k} p_j`, a sum without
    cancellation, so :math:`F_{kk}` keeps its relative accuracy as :math:`p_k \to 1`.
    """
    theta = _theta(theta)
    p = torch.softmax(theta, dim=-1)
    big = p > 0.5
    rest = torch.sum(torch.where(big, 0.0, p), dim=-1, keepdim=True)
    q = torch.where(big, rest, 1.0 - p)  # 1 - p
    k = torch.arange(theta.shape[-1], device=theta.device)
    on_diagonal = k[:, None] == k
    return p[..., :, None] * torch.where(on_diagonal, q[..., None, :], -p[..., None, :])


def fisher_diag(theta):
    r"""Diagonal :math:`p_k (1 - p_k)`, with :math:`1 - p_k = -\operatorname{expm1}(\log p_k)`."""
    theta = _theta(theta)
    logp = _log_softmax(theta)
    return torch.exp(logp) * -torch.expm1(logp)


def fvp(theta, v):
    r"""Fisher-vector product :math:`p \odot (v - p^\top v)` in O(K)."""
    theta = _theta(theta)
    v = _theta(v, "v", theta)
    p = torch.softmax(theta, dim=-1)
    return p * (v - torch.sum(p * v, dim=-1, keepdim=True))


def cramer_rao(theta, n):
    r"""Pseudo-inverse bound :math:`F^{+}/n = C \operatorname{diag}(1/p) C / n`, :math:`C = I - \mathbf 1 \mathbf 1^\top/K`."""
    theta = _theta(theta)
    K = theta.shape[-1]
    inv_p = torch.exp(-_log_softmax(theta))
    C = torch.eye(K, dtype=theta.dtype, device=theta.device) - 1.0 / K
    return (C * inv_p[..., None, :]) @ C / n


def _solve_damped(p, g, lam):
    r""":math:`(\operatorname{diag}p - pp^\top + \lambda I)^{-1} g`, :math:`\lambda > 0`, by Sherman–Morrison."""
    inv = 1.0 / (p + lam)
    u = p * inv
    return g * inv + u * (torch.sum(u * g, dim=-1, keepdim=True) / (lam * torch.sum(u, dim=-1, keepdim=True)))


def _solve_pinv(logp, g):
    r"""Minimum-norm :math:`F^{+} g = C \operatorname{diag}(1/p)\, C g`."""
    y = (g - torch.mean(g, dim=-1, keepdim=True)) * torch.exp(-logp)
    return y - torch.mean(y, dim=-1, keepdim=True)


def _known_sign(lam):
    """"positive" or "zero" when every entry of ``lam`` is known to be; else None (under ``vmap``)."""
    try:
        if bool(torch.all(lam > 0)):
            return "positive"
        return "zero" if bool(torch.all(lam == 0)) else None
    except RuntimeError:  # a value that only a transform knows
        return None


def natural_gradient(theta, g, damping=0.0):
    r"""Natural gradient :math:`(F + \lambda I)^{-1} g` in O(K); :math:`F^{+} g` at :math:`\lambda = 0`.

    Sherman–Morrison for :math:`\lambda > 0` (``_solve_damped``), the minimum-norm
    pseudo-inverse solution for :math:`\lambda = 0` (``_solve_pinv``); a damping
    mixing both computes both and selects per entry.
    """
    theta = _theta(theta)
    g = _theta(g, "g", theta)
    lam = _damping(damping, g)
    known = _known_sign(lam)
    lam = lam[..., None]
    if known == "positive":
        return _solve_damped(torch.softmax(theta, dim=-1), g, lam)
    if known == "zero":
        return _solve_pinv(_log_softmax(theta), g)
    logp = _log_softmax(theta)
    pos = lam > 0
    damped = _solve_damped(torch.exp(logp), g, torch.where(pos, lam, 1.0))
    return torch.where(pos, damped, _solve_pinv(logp, g))


def fisher_sqrt(theta):
    r"""Square root :math:`L = \operatorname{diag}(\sqrt p) - \sqrt p\, p^\top`, :math:`L^\top L = F`, shape ``(..., K, K)``."""
    theta = _theta(theta)
    logp = _log_softmax(theta)
    p, r = torch.exp(logp), torch.exp(0.5 * logp)
    eye = torch.eye(theta.shape[-1], dtype=theta.dtype, device=theta.device)
    return eye * r[..., None, :] - r[..., :, None] * p[..., None, :]


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)`, logs differenced before rounding."""
    theta_p = _theta(theta_p, "theta_p")
    theta_q = _theta(theta_q, "theta_q", theta_p)
    mp, rp = _lse(theta_p)
    mq, rq = _lse(theta_q)
    # log p_k - log q_k from differences of logits and of the small log1p parts
    diff = (theta_p - theta_q) - ((mp - mq) + (rp - rq))
    return torch.sum(torch.exp((theta_p - mp) - rp) * diff, dim=-1)


def entropy(theta):
    r"""Entropy :math:`-\sum_k p_k \log p_k = \log\sum_j e^{z_j} - \sum_k p_k z_k`, via ``_lse``.

    A class with :math:`p_k = 0` (a logit of -inf, or one far below the
    others) adds 0 (:math:`0 \log 0 = 0`), gradient included; only the
    classes with :math:`p_k > 0` need finite logits.
    """
    theta = _theta(theta)
    logp = _log_softmax(theta)
    p = torch.exp(logp)
    safe = torch.where(p > 0, logp, torch.zeros_like(logp))
    return -torch.sum(p * safe, dim=-1)
# end template: body
# fmt: on


def _damping(damping, ref):
    """Stand-in for ``_damping`` of the generated header."""
    return torch.as_tensor(damping, dtype=ref.dtype, device=ref.device)
