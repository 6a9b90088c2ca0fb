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


def _nan_outside(value, theta, event_dims=0):
    """``value`` where ``theta`` lies inside the simplex, NaN elsewhere."""
    ok = jnp.all(jnp.stack(param_checks(theta)), axis=0)
    return jnp.where(jnp.reshape(ok, ok.shape + (1,) * event_dims), value, jnp.nan)


def _onehot(x, theta):
    x = jnp.asarray(x)
    return (x[..., None] == jnp.arange(theta.shape[-1] + 1)).astype(theta.dtype)


def _logp(theta):
    r""":math:`\log p_k`, k = 0..K-1; :math:`\log p_{K-1}` by log1p when the sum is small."""
    total = jnp.sum(theta, axis=-1, keepdims=True)
    last = jnp.where(total < 0.5, jnp.log1p(-total), jnp.log(_last(theta)))
    return jnp.concatenate([jnp.log(theta), last], axis=-1)


def log_prob(theta, x):
    r"""Log-probability :math:`\log p_x`; -inf outside 0..K-1."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    inside = jnp.sum(oh, axis=-1) > 0
    value = jnp.where(inside, jnp.sum(jnp.where(oh > 0, _logp(theta), 0.0), axis=-1), -jnp.inf)
    return _nan_outside(value, theta)


def score(theta, x):
    r"""Score :math:`e_x / p - [x = K-1] / p_{K-1}`, shape ``(..., K-1)``."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    return _nan_outside(oh[..., :-1] / theta - oh[..., -1:] / _last(theta), theta, 1)


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-\operatorname{diag}(e_x/p^2) - [x = K-1]\,\mathbf 1\mathbf 1^\top / p_{K-1}^2`."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    last = (oh[..., -1:] / _last(theta) ** 2)[..., None]
    return _nan_outside(-(oh[..., :-1] / theta**2)[..., :, None] * eye - last, theta, 2)


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(1/p) + \mathbf 1\mathbf 1^\top / p_{K-1}`."""
    theta = _theta(theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    value = (1.0 / theta)[..., :, None] * eye + (1.0 / _last(theta))[..., None]
    return _nan_outside(value, theta, 2)


def fisher_diag(theta):
    r"""Diagonal :math:`1/p_i + 1/p_{K-1}`, in O(K)."""
    theta = _theta(theta)
    return _nan_outside(1.0 / theta + 1.0 / _last(theta), theta, 1)


def fvp(theta, v):
    r"""Fisher-vector product :math:`v/p + (\sum_i v_i)/p_{K-1}` in O(K)."""
    theta = _theta(theta)
    v = _theta(v, "v")
    value = v / theta + jnp.sum(v, axis=-1, keepdims=True) / _last(theta)
    return _nan_outside(value, theta, 1)


def cramer_rao(theta, n):
    r"""Cramér–Rao bound :math:`F^{-1}/n = (\operatorname{diag}(p) - p p^\top)/n`."""
    theta = _theta(theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    value = (theta[..., :, None] * eye - theta[..., :, None] * theta[..., None, :]) / n
    return _nan_outside(value, theta, 2)


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)` over all K outcomes."""
    theta_p = _theta(theta_p, "theta_p")
    theta_q = _theta(theta_q, "theta_q")
    logp, logq = _logp(theta_p), _logp(theta_q)
    value = jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)
    return _nan_outside(_nan_outside(value, theta_p), theta_q)
# end template: body
# fmt: on
