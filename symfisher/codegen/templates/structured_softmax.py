# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the kernels of the softmax categorical, any number of classes K.

``theta[..., k]`` is the logit of class k (``categorical_softmax``);
:mod:`symfisher.codegen.structured` writes the sections below after the
generated header, whose ``_theta`` (here a stand-in) checks the size.
"""

import jax
import jax.numpy as jnp

from symfisher.codegen.templates.structured_sizes import _damping
from symfisher.codegen.templates.structured_sizes import _theta_at_least as _theta

# fmt: off
# template: constants
DOMAIN_CHECKS = ("logits z_k must be finite",)
REGULAR = True
REGULARITY = None
# end template: constants

# template: body


def param_checks(theta):
    """Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (jnp.all(jnp.isfinite(theta), axis=-1),)


def _onehot(x, theta):
    x = jnp.asarray(x)
    return (x[..., None] == jnp.arange(theta.shape[-1])).astype(theta.dtype)


def _lse(theta):
    r""":math:`\log\sum_j e^{z_j} = m + \operatorname{log1p}(s)`, as (m, log1p part).

    :math:`m = \max_j z_j` and :math:`s = \sum_{z_j < m} e^{z_j - m}` plus the
    number of further ties, so :math:`\log p_{j^*}` stays accurate when the top
    probability is close to 1 (where :math:`\sum_j e^{z_j - m} - 1` would cancel).
    """
    m = jax.lax.stop_gradient(jnp.max(theta, axis=-1, keepdims=True))
    d = theta - m
    top = d == 0
    s = jnp.sum(jnp.where(top, 0.0, jnp.exp(d)), axis=-1, keepdims=True)
    # ties beyond the first, and expm1(0) = 0 entries that carry the gradient
    s = s + (jnp.sum(top, axis=-1, keepdims=True) - 1) + jnp.sum(
        jnp.where(top, jnp.expm1(d), 0.0), axis=-1, keepdims=True
    )
    return m, jnp.log1p(s)


def _log_softmax(theta):
    r""":math:`\log p_k = (z_k - m) - \operatorname{log1p}(\cdot)`; see ``_lse``."""
    m, r = _lse(theta)
    return (theta - m) - r


def log_prob(theta, x):
    r"""Log-probability :math:`z_x - \log\sum_k e^{z_k}`; -inf outside 0..K-1."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    logp = _log_softmax(theta)
    inside = jnp.sum(oh, axis=-1) > 0
    return jnp.where(inside, jnp.sum(jnp.where(oh > 0, logp, 0.0), axis=-1), -jnp.inf)


def score(theta, x):
    r"""Score :math:`e_x - p`, shape ``(..., K)``."""
    theta = _theta(theta)
    return _onehot(x, theta) - jax.nn.softmax(theta, axis=-1)


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-(\operatorname{diag}(p) - p p^\top)` (it does not depend on x)."""
    theta = _theta(theta)
    shape = jnp.broadcast_shapes(theta.shape[:-1], jnp.shape(x))
    return -jnp.broadcast_to(fisher(theta), (*shape, theta.shape[-1], theta.shape[-1]))


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(p) - p p^\top`, shape ``(..., K, K)``.

    :math:`F_{ij} = p_i (\delta_{ij} (1 - p_j) - (1 - \delta_{ij}) p_j)`, one softmax
    and one select per entry. Where :math:`p_k > 1/2` (then k is the only such
    class), :math:`1 - p_k` is :math:`\sum_{j \ne k} p_j`, a sum without
    cancellation, so :math:`F_{kk}` keeps its relative accuracy as :math:`p_k \to 1`.
    """
    theta = _theta(theta)
    p = jax.nn.softmax(theta, axis=-1)
    big = p > 0.5
    rest = jnp.sum(jnp.where(big, 0.0, p), axis=-1, keepdims=True)
    q = jnp.where(big, rest, 1.0 - p)  # 1 - p
    K = theta.shape[-1]
    on_diagonal = jnp.arange(K)[:, None] == jnp.arange(K)
    return p[..., :, None] * jnp.where(on_diagonal, q[..., None, :], -p[..., None, :])


def fisher_diag(theta):
    r"""Diagonal :math:`p_k (1 - p_k)`, with :math:`1 - p_k = -\operatorname{expm1}(\log p_k)`."""
    theta = _theta(theta)
    logp = _log_softmax(theta)
    return jnp.exp(logp) * -jnp.expm1(logp)


def fvp(theta, v):
    r"""Fisher-vector product :math:`p \odot (v - p^\top v)` in O(K)."""
    theta = _theta(theta)
    v = _theta(v, "v")
    p = jax.nn.softmax(theta, axis=-1)
    return p * (v - jnp.sum(p * v, axis=-1, keepdims=True))


def cramer_rao(theta, n):
    r"""Pseudo-inverse bound :math:`F^{+}/n = C \operatorname{diag}(1/p) C / n`.

    The softmax Fisher is singular (adding a constant to every logit changes
    nothing, :math:`F \mathbf 1 = 0`); :math:`C = I - \mathbf 1 \mathbf 1^\top/K`
    projects onto the identifiable directions.
    """
    theta = _theta(theta)
    K = theta.shape[-1]
    inv_p = jnp.exp(-_log_softmax(theta))
    C = jnp.eye(K, dtype=theta.dtype) - 1.0 / K
    return (C * inv_p[..., None, :]) @ C / n


def _solve_damped(p, g, lam):
    r""":math:`(\operatorname{diag}p - pp^\top + \lambda I)^{-1} g`, :math:`\lambda > 0`, by Sherman–Morrison.

    With :math:`D = \operatorname{diag}(p) + \lambda I` and :math:`u = D^{-1} p`:
    :math:`x = D^{-1} g + u\,(u^\top g) / (\lambda\,\mathbf 1^\top u)`, the denominator
    being :math:`1 - p^\top D^{-1} p` written without cancellation.
    """
    inv = 1.0 / (p + lam)
    u = p * inv
    return g * inv + u * (jnp.sum(u * g, axis=-1, keepdims=True) / (lam * jnp.sum(u, axis=-1, keepdims=True)))


def _solve_pinv(logp, g):
    r"""Minimum-norm :math:`F^{+} g = C \operatorname{diag}(1/p)\, C g`, :math:`C = I - \mathbf 1\mathbf 1^\top/K` (:math:`F\mathbf 1 = 0`)."""
    y = (g - jnp.mean(g, axis=-1, keepdims=True)) * jnp.exp(-logp)
    return y - jnp.mean(y, axis=-1, keepdims=True)


def _known_sign(lam):
    """"positive" or "zero" when every entry of a known (concrete) ``lam`` is; else None."""
    if isinstance(lam, jax.core.Tracer):
        return None
    with jax.ensure_compile_time_eval():
        if bool(jnp.all(lam > 0)):
            return "positive"
        return "zero" if bool(jnp.all(lam == 0)) else None


def natural_gradient(theta, g, damping=0.0):
    r"""Natural gradient :math:`(F + \lambda I)^{-1} g` in O(K); :math:`F^{+} g` at :math:`\lambda = 0`.

    Sherman–Morrison for :math:`\lambda > 0` (``_solve_damped``), the minimum-norm
    pseudo-inverse solution for :math:`\lambda = 0` (``_solve_pinv``). A damping
    known at trace time (a Python number, also under ``jit``) takes one of the
    two; a traced one computes both and selects per entry.
    """
    theta = _theta(theta)
    g = _theta(g, "g")
    lam = _damping(damping, g)
    known = _known_sign(lam)
    lam = lam[..., None]
    if known == "positive":
        return _solve_damped(jax.nn.softmax(theta, axis=-1), g, lam)
    if known == "zero":
        return _solve_pinv(_log_softmax(theta), g)
    logp = _log_softmax(theta)
    pos = lam > 0
    damped = _solve_damped(jnp.exp(logp), g, jnp.where(pos, lam, 1.0))
    return jnp.where(pos, damped, _solve_pinv(logp, g))


def fisher_sqrt(theta):
    r"""Square root :math:`L = \operatorname{diag}(\sqrt p) - \sqrt p\, p^\top`, :math:`L^\top L = F`, shape ``(..., K, K)``.

    :math:`L^\top L = \operatorname{diag}(p) - 2 p p^\top + p\,(\sqrt p^\top \sqrt p)\, p^\top`
    and :math:`\sqrt p^\top \sqrt p = 1`.
    """
    theta = _theta(theta)
    logp = _log_softmax(theta)
    p, r = jnp.exp(logp), jnp.exp(0.5 * logp)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return eye * r[..., None, :] - r[..., :, None] * p[..., None, :]


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)`, logs differenced before rounding."""
    theta_p = _theta(theta_p, "theta_p")
    theta_q = _theta(theta_q, "theta_q")
    mp, rp = _lse(theta_p)
    mq, rq = _lse(theta_q)
    # log p_k - log q_k from differences of logits and of the small log1p parts
    diff = (theta_p - theta_q) - ((mp - mq) + (rp - rq))
    return jnp.sum(jnp.exp((theta_p - mp) - rp) * diff, axis=-1)


def entropy(theta):
    r"""Entropy :math:`-\sum_k p_k \log p_k = \log\sum_j e^{z_j} - \sum_k p_k z_k`, via ``_lse``.

    A class with :math:`p_k = 0` (a logit of -inf, or one far below the
    others) adds 0 (:math:`0 \log 0 = 0`), gradient included; only the
    classes with :math:`p_k > 0` need finite logits.
    """
    theta = _theta(theta)
    logp = _log_softmax(theta)
    p = jnp.exp(logp)
    safe = jnp.where(p > 0, logp, 0.0)
    return -jnp.sum(p * safe, axis=-1)
# end template: body
# fmt: on
