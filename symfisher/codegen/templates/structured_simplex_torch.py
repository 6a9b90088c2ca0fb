# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the PyTorch kernels of the categorical in probabilities, any K.

The twin of ``structured_simplex.py`` (same formulas; its ``constants``
section serves both); ``_theta``, ``_x`` and ``_damping`` come from the
generated header (``kernel_torch.py``).
"""

import math

import torch

from symfisher.codegen.templates.kernel_torch import _theta, _x
from symfisher.codegen.templates.structured_softmax_torch import _damping

# fmt: off
# template: body


def _last(theta):
    r""":math:`p_{K-1} = (1 - p_{i^*}) - \sum_{i \ne i^*} p_i` with :math:`p_{i^*}` the largest (exact near 0)."""
    k = torch.arange(theta.shape[-1], device=theta.device)
    top = (k == torch.argmax(theta, dim=-1, keepdim=True)).to(theta.dtype)
    big = torch.sum(top * theta, dim=-1, keepdim=True)
    return (1.0 - big) - torch.sum((1.0 - top) * theta, dim=-1, keepdim=True)


def param_checks(theta):
    """Boolean tensors, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (torch.all(theta > 0, dim=-1), torch.all(theta < 1, dim=-1), _last(theta)[..., 0] > 0)


def _inside(theta):
    r"""``theta`` and :math:`p_{K-1}` (shape ``(..., 1)``), both NaN outside the simplex."""
    last = _last(theta)
    ok = torch.all(theta > 0, dim=-1, keepdim=True) & (last > 0)
    return torch.where(ok, theta, math.nan), torch.where(ok, last, math.nan)


def _onehot(x, theta):
    x = _x(x, theta)
    return (x[..., None] == torch.arange(theta.shape[-1] + 1, device=theta.device)).to(theta.dtype)


def _logp(theta, last):
    r""":math:`\log p_k`, k = 0..K-1; :math:`\log p_{K-1}` by log1p when the sum is small."""
    total = torch.sum(theta, dim=-1, keepdim=True)
    log_last = torch.where(total < 0.5, torch.log1p(-total), torch.log(last))
    return torch.cat([torch.log(theta), log_last], dim=-1)


def log_prob(theta, x):
    r"""Log-probability :math:`\log p_x`; -inf outside 0..K-1."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    inside = torch.sum(oh, dim=-1) > 0
    outside = -math.inf + 0.0 * last[..., 0]  # -inf, or NaN where theta is
    return torch.where(inside, torch.sum(torch.where(oh > 0, _logp(theta, last), 0.0), dim=-1), outside)


def score(theta, x):
    r"""Score :math:`e_x / p - [x = K-1] / p_{K-1}`, shape ``(..., K-1)``."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    return oh[..., :-1] / theta - oh[..., -1:] / last


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-\operatorname{diag}(e_x/p^2) - [x = K-1]\,\mathbf 1\mathbf 1^\top / p_{K-1}^2`."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    eye = torch.eye(theta.shape[-1], dtype=theta.dtype, device=theta.device)
    corner = (oh[..., -1:] / last**2)[..., None]
    return -(oh[..., :-1] / theta**2)[..., :, None] * eye - corner


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(1/p) + \mathbf 1\mathbf 1^\top / p_{K-1}`."""
    theta, last = _inside(_theta(theta))
    eye = torch.eye(theta.shape[-1], dtype=theta.dtype, device=theta.device)
    return (1.0 / theta)[..., :, None] * eye + (1.0 / last)[..., None]


def fisher_diag(theta):
    r"""Diagonal :math:`1/p_i + 1/p_{K-1}`, in O(K)."""
    theta, last = _inside(_theta(theta))
    return 1.0 / theta + 1.0 / last


def fvp(theta, v):
    r"""Fisher-vector product :math:`v/p + (\sum_i v_i)/p_{K-1}` in O(K)."""
    theta, last = _inside(_theta(theta))
    v = _theta(v, "v", theta)
    return v / theta + torch.sum(v, dim=-1, keepdim=True) / last


def cramer_rao(theta, n):
    r"""Cramér–Rao bound :math:`F^{-1}/n = (\operatorname{diag}(p) - p p^\top)/n`."""
    theta, _ = _inside(_theta(theta))
    eye = torch.eye(theta.shape[-1], dtype=theta.dtype, device=theta.device)
    return (theta[..., :, None] * eye - theta[..., :, None] * theta[..., None, :]) / n


def natural_gradient(theta, g, damping=0.0):
    r"""Natural gradient :math:`(F + \lambda I)^{-1} g` in O(K), by Sherman–Morrison.

    With :math:`D^{-1} = p/(1 + \lambda p)`:
    :math:`x = D^{-1} g - D^{-1}\mathbf 1\,(\mathbf 1^\top D^{-1} g) / (p_{K-1} + \mathbf 1^\top D^{-1} \mathbf 1)`.
    """
    theta, last = _inside(_theta(theta))
    g = _theta(g, "g", theta)
    lam = _damping(damping, g)[..., None]
    dinv = theta / (1.0 + lam * theta)
    dg = dinv * g
    return dg - dinv * (torch.sum(dg, dim=-1, keepdim=True) / (last + torch.sum(dinv, dim=-1, keepdim=True)))


def fisher_sqrt(theta):
    r"""Square root :math:`L = [\operatorname{diag}(1/\sqrt p);\ \mathbf 1^\top/\sqrt{p_{K-1}}]`, :math:`L^\top L = F`, shape ``(..., K, K-1)``."""
    theta, last = _inside(_theta(theta))
    eye = torch.eye(theta.shape[-1], dtype=theta.dtype, device=theta.device)
    top = eye * torch.rsqrt(theta)[..., None, :]
    bottom = torch.broadcast_to(torch.rsqrt(last)[..., None, :], (*theta.shape[:-1], 1, theta.shape[-1]))
    return torch.cat([top, bottom], dim=-2)


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)` over all K outcomes."""
    theta_p = _theta(theta_p, "theta_p")
    logp = _logp(*_inside(theta_p))
    logq = _logp(*_inside(_theta(theta_q, "theta_q", theta_p)))
    return torch.sum(torch.exp(logp) * (logp - logq), dim=-1)


def entropy(theta):
    r"""Entropy :math:`-\sum_k p_k \log p_k` over all K outcomes, on the closed simplex.

    Unlike the other kernels, a probability of exactly 0 is allowed here (the
    entropy has the limit :math:`0 \log 0 = 0`, ``xlogy`` semantics); NaN only
    where some :math:`p_k < 0`.
    """
    theta = _theta(theta)
    last = _last(theta)
    p = torch.cat([theta, last], dim=-1)
    ok = torch.all(p >= 0, dim=-1)
    safe = torch.where(p > 0, p, torch.ones_like(p))
    h = -torch.sum(torch.where(p > 0, p * torch.log(safe), torch.zeros_like(p)), dim=-1)
    return torch.where(ok, h, torch.full_like(h, math.nan))
# end template: body
# fmt: on
