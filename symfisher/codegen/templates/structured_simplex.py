# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the kernels of the categorical in probabilities, any number of classes.

``theta[..., i]`` is p_i for i < K-1 and p_{K-1} = 1 - sum(theta)
(``categorical``); :mod:`symfisher.codegen.structured` writes the sections
below after the generated header, whose ``_theta`` (here a stand-in) checks
the size.
"""

import jax
import jax.numpy as jnp

from symfisher.codegen.templates.structured_sizes import _damping
from symfisher.codegen.templates.structured_sizes import _theta_at_least as _theta

# fmt: off
# template: constants
DOMAIN_CHECKS = ("p_i must be > 0", "p_i must be < 1", "sum of p_0..p_{K-2} must be < 1")
REGULAR = True
REGULARITY = None
# end template: constants

# template: body


def _last(theta):
    r""":math:`p_{K-1} = (1 - p_{i^*}) - \sum_{i \ne i^*} p_i` with :math:`p_{i^*}` the largest.

    :math:`1 - p_{i^*}` is exact when :math:`p_{i^*} \ge 1/2`, so a last
    probability near 0 keeps its relative accuracy.
    """
    top = jax.nn.one_hot(jnp.argmax(theta, axis=-1), theta.shape[-1], dtype=theta.dtype)
    big = jnp.sum(top * theta, axis=-1, keepdims=True)
    return (1.0 - big) - jnp.sum((1.0 - top) * theta, axis=-1, keepdims=True)


def param_checks(theta):
    """Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (jnp.all(theta > 0, axis=-1), jnp.all(theta < 1, axis=-1), _last(theta)[..., 0] > 0)


def _inside(theta):
    r"""``theta`` and :math:`p_{K-1}` (shape ``(..., 1)``), both NaN outside the simplex.

    Every :math:`p_i > 0` and :math:`p_{K-1} > 0` is the whole domain (each
    :math:`p_i < 1` follows). Every output below depends on them, so NaN in, NaN
    out: two passes over ``theta``, none over a ``(K-1)^2`` output.
    """
    last = _last(theta)
    ok = jnp.all(theta > 0, axis=-1, keepdims=True) & (last > 0)
    return jnp.where(ok, theta, jnp.nan), jnp.where(ok, last, jnp.nan)


def _onehot(x, theta):
    x = jnp.asarray(x)
    return (x[..., None] == jnp.arange(theta.shape[-1] + 1)).astype(theta.dtype)


def _logp(theta, last):
    r""":math:`\log p_k`, k = 0..K-1; :math:`\log p_{K-1}` by log1p when the sum is small."""
    total = jnp.sum(theta, axis=-1, keepdims=True)
    log_last = jnp.where(total < 0.5, jnp.log1p(-total), jnp.log(last))
    return jnp.concatenate([jnp.log(theta), log_last], axis=-1)


def log_prob(theta, x):
    r"""Log-probability :math:`\log p_x`; -inf outside 0..K-1."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    inside = jnp.sum(oh, axis=-1) > 0
    outside = -jnp.inf + 0.0 * last[..., 0]  # -inf, or NaN where theta is
    return jnp.where(inside, jnp.sum(jnp.where(oh > 0, _logp(theta, last), 0.0), axis=-1), outside)


def score(theta, x):
    r"""Score :math:`e_x / p - [x = K-1] / p_{K-1}`, shape ``(..., K-1)``."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    return oh[..., :-1] / theta - oh[..., -1:] / last


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-\operatorname{diag}(e_x/p^2) - [x = K-1]\,\mathbf 1\mathbf 1^\top / p_{K-1}^2`."""
    theta, last = _inside(_theta(theta))
    oh = _onehot(x, theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    corner = (oh[..., -1:] / last**2)[..., None]
    return -(oh[..., :-1] / theta**2)[..., :, None] * eye - corner


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(1/p) + \mathbf 1\mathbf 1^\top / p_{K-1}`."""
    theta, last = _inside(_theta(theta))
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return (1.0 / theta)[..., :, None] * eye + (1.0 / last)[..., None]


def fisher_diag(theta):
    r"""Diagonal :math:`1/p_i + 1/p_{K-1}`, in O(K)."""
    theta, last = _inside(_theta(theta))
    return 1.0 / theta + 1.0 / last


def fvp(theta, v):
    r"""Fisher-vector product :math:`v/p + (\sum_i v_i)/p_{K-1}` in O(K)."""
    theta, last = _inside(_theta(theta))
    v = _theta(v, "v")
    return v / theta + jnp.sum(v, axis=-1, keepdims=True) / last


def cramer_rao(theta, n):
    r"""Cramér–Rao bound :math:`F^{-1}/n = (\operatorname{diag}(p) - p p^\top)/n`."""
    theta, _ = _inside(_theta(theta))
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return (theta[..., :, None] * eye - theta[..., :, None] * theta[..., None, :]) / n


def natural_gradient(theta, g, damping=0.0):
    r"""Natural gradient :math:`(F + \lambda I)^{-1} g` in O(K), by Sherman–Morrison.

    With :math:`D = \operatorname{diag}(1/p + \lambda)`, :math:`D^{-1} = p/(1 + \lambda p)`:
    :math:`x = D^{-1} g - D^{-1}\mathbf 1\,(\mathbf 1^\top D^{-1} g) / (p_{K-1} + \mathbf 1^\top D^{-1} \mathbf 1)`;
    at :math:`\lambda = 0` this is :math:`(\operatorname{diag}(p) - p p^\top)\, g`.
    """
    theta, last = _inside(_theta(theta))
    g = _theta(g, "g")
    lam = _damping(damping, g)[..., None]
    dinv = theta / (1.0 + lam * theta)
    dg = dinv * g
    return dg - dinv * (jnp.sum(dg, axis=-1, keepdims=True) / (last + jnp.sum(dinv, axis=-1, keepdims=True)))


def fisher_sqrt(theta):
    r"""Square root :math:`L = [\operatorname{diag}(1/\sqrt p);\ \mathbf 1^\top/\sqrt{p_{K-1}}]`, :math:`L^\top L = F`, shape ``(..., K, K-1)``."""
    theta, last = _inside(_theta(theta))
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    top = eye * jax.lax.rsqrt(theta)[..., None, :]
    bottom = jnp.broadcast_to(jax.lax.rsqrt(last)[..., None, :], (*theta.shape[:-1], 1, theta.shape[-1]))
    return jnp.concatenate([top, bottom], axis=-2)


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)` over all K outcomes."""
    logp = _logp(*_inside(_theta(theta_p, "theta_p")))
    logq = _logp(*_inside(_theta(theta_q, "theta_q")))
    return jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)


def entropy(theta):
    r"""Entropy :math:`-\sum_k p_k \log p_k` over all K outcomes, on the closed simplex.

    Unlike the other kernels, a probability of exactly 0 is allowed here (the
    entropy has the limit :math:`0 \log 0 = 0`, ``xlogy`` semantics); NaN only
    where some :math:`p_k < 0`.
    """
    theta = _theta(theta)
    last = _last(theta)
    p = jnp.concatenate([theta, last], axis=-1)
    ok = jnp.all(p >= 0, axis=-1)
    safe = jnp.where(p > 0, p, 1.0)
    h = -jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0), axis=-1)
    return jnp.where(ok, h, jnp.nan)
# end template: body
# fmt: on
