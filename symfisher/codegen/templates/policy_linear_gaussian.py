# Read as text by symfisher.codegen.policy_module (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
r"""Kernels of the linear_gaussian policy (linear mean, free log sigma).

:math:`a \sim N(\mu, \operatorname{diag}\sigma^2)`, :math:`\mu = Ws + b`.
``theta`` = :math:`[W \mid b \mid \log\sigma]`, shape (m, n + 2): column n holds b,
column n + 1 holds :math:`\log\sigma`; ``states`` (B, n); ``actions`` (B, m).
P = m (n + 2), index i (n + 2) + j. With :math:`z_i = (a_i - \mu_i)/\sigma_i`
and :math:`\hat s = [s; 1]`:

- score row i: :math:`[z_i/\sigma_i\, \hat s^\top,\; z_i^2 - 1]`;
- Hessian block i: :math:`[[-\hat s\hat s^\top/\sigma_i^2, -2z_i/\sigma_i\, \hat s],
  [-2z_i/\sigma_i\, \hat s^\top, -2z_i^2]]`, zero across rows;
- :math:`F(s)` block diagonal over i, block :math:`[[\hat s\hat s^\top/\sigma_i^2, 0], [0, 2]]`;
- ``fvp``: :math:`u_b = V_{[W|b]}\hat s_b`, row i of :math:`Fv` is
  :math:`[\sum_b w_b u_{bi} \hat s_b^\top / \sigma_i^2,\; 2 v_{i,\log\sigma}]`, O(B m n);
- ``kl``: :math:`\sum_i \log\sigma'_i - \log\sigma_i + (\sigma_i^2 + (\mu_i - \mu'_i)^2)
  /(2\sigma_i'^2) - 1/2`, computed as :math:`\tfrac12\operatorname{expm1}(2\delta_i) - \delta_i
  + \tfrac12((\mu_i - \mu'_i)/\sigma'_i)^2` with :math:`\delta = \log\sigma - \log\sigma'`;
- ``kfac``: :math:`L = \operatorname{diag}(1/\sigma^2)` (m x m),
  :math:`R = \sum_b w_b \hat s_b\hat s_b^\top` ((n+1) x (n+1)), the [W|b] part;
  ``kfac_fisher`` places :math:`L \otimes R` at the [W|b] entries and 2 on the
  :math:`\log\sigma` diagonal: it equals the Fisher here.
"""

# fmt: off
# template: head
import jax
import jax.numpy as jnp

POLICY = 'linear_gaussian'
FAMILY = POLICY
THETA = '[W | b | log sigma], shape (m, n + 2): W in columns 0..n-1, b in column n, log sigma in column n + 1; vec is row-major (index i*(n+2) + j)'
STATES = 'float (B, n): one state vector s_b per row'
ACTIONS = 'float (B, m): one action vector a_b per row'
_THETA_SHAPE = '(m, n + 2) with m >= 1 outputs and n + 2 >= 3 columns [W | b | log sigma]'
_THETA_MIN = (1, 3)
NATURAL_GRADIENT = 'exact'
# end template: head
# fmt: on

# the common section (policy_common.py) comes here in the generated module
from symfisher.codegen.templates.policy_common import (  # noqa: E402
    _damping,
    _eig,
    _like,
    _nonempty,
    _positive,
    _real,
    _theta,
    _weights,
)

# fmt: off
# template: body

_HALF_LOG_2PI = 0.9189385332046727


def check_inputs(theta, states, actions=None):
    """``(theta, states, actions)`` as arrays after validation (``actions`` may be None).

    theta: floating (m, n + 2), n >= 1; states: (B, n), B >= 1; actions: (B, m);
    states and actions are cast to theta's dtype and must be finite.
    Raises TypeError (dtype) or ValueError.
    """
    return _check(theta, states, actions, "theta")


def _check(theta, states, actions, name):
    theta = _theta(theta, name)
    m, n = theta.shape[0], theta.shape[1] - 2
    states = jnp.asarray(states)
    if states.ndim != 2 or states.shape[1] != n:
        raise ValueError(
            f"{POLICY}: states have shape {states.shape} but {name} has shape "
            f"{theta.shape}: states must be (B, {n}), one state vector per row"
        )
    _nonempty(states)
    states = _real(states, "states", theta.dtype)
    if actions is not None:
        actions = jnp.asarray(actions)
        B = states.shape[0]
        if actions.shape != (B, m):
            raise ValueError(
                f"{POLICY}: actions have shape {actions.shape} but states have "
                f"{B} rows and theta has shape {theta.shape}: actions must be "
                f"({B}, {m}), one action vector per state"
            )
        actions = _real(actions, "actions", theta.dtype)
    return theta, states, actions


def _split(theta):
    """``(W, b, log_sigma)`` from the columns of theta."""
    n = theta.shape[1] - 2
    return theta[:, :n], theta[:, n], theta[:, n + 1]


def _mean(theta, states):
    r""":math:`\mu_b = W s_b + b`, shape (B, m)."""
    W, b, _ = _split(theta)
    return states @ W.T + b


def _hat(states):
    r""":math:`\hat s = [s; 1]`, shape (B, n + 1)."""
    return jnp.concatenate([states, jnp.ones_like(states[:, :1])], axis=1)


def _z(theta, states, actions):
    r""":math:`z = (a - \mu)/\sigma` and :math:`1/\sigma`."""
    inv_std = jnp.exp(-_split(theta)[2])
    return (actions - _mean(theta, states)) * inv_std, inv_std


def _blockdiag(blocks):
    """``(..., m, q, q)`` blocks to the ``(..., m q, m q)`` block-diagonal matrix."""
    m, q = blocks.shape[-3], blocks.shape[-1]
    eye = jnp.eye(m, dtype=blocks.dtype)
    full = blocks[..., :, :, None, :] * eye[:, None, :, None]
    return full.reshape(*blocks.shape[:-3], m * q, m * q)


def _fisher_blocks(R, inv_var):
    r"""Blocks :math:`[[R/\sigma_i^2, 0], [0, 2]]`, ``(..., m, n + 2, n + 2)`` from ``R (..., n + 1, n + 1)``."""
    ww = R[..., None, :, :] * inv_var[:, None, None]
    q = R.shape[-1] + 1
    pad = [(0, 0)] * (ww.ndim - 2) + [(0, 1), (0, 1)]
    corner = jnp.zeros((q, q), R.dtype).at[q - 1, q - 1].set(2.0)
    return jnp.pad(ww, pad) + corner


def _second_moment(states, w):
    r""":math:`R = \sum_b w_b \hat s_b \hat s_b^\top`, (n + 1, n + 1)."""
    sh = _hat(states)
    return (w[:, None] * sh).T @ sh


def log_prob(theta, states, actions):
    r""":math:`\sum_i -z_i^2/2 - \log\sigma_i - \log(2\pi)/2`, shape (B,)."""
    theta, states, actions = check_inputs(theta, states, actions)
    z, _ = _z(theta, states, actions)
    return jnp.sum(-0.5 * z * z - _split(theta)[2] - _HALF_LOG_2PI, axis=-1)


def score(theta, states, actions):
    r"""Score, row i :math:`[z_i/\sigma_i\, \hat s^\top, z_i^2 - 1]`, shape (B, m, n + 2)."""
    theta, states, actions = check_inputs(theta, states, actions)
    z, inv_std = _z(theta, states, actions)
    g = (z * inv_std)[:, :, None] * _hat(states)[:, None, :]
    return jnp.concatenate([g, (z * z - 1.0)[:, :, None]], axis=-1)


def hessian_log_prob(theta, states, actions):
    r"""Hessian, block i :math:`[[-\hat s\hat s^\top/\sigma_i^2, -2z_i/\sigma_i\,\hat s], [\cdot, -2z_i^2]]`, (B, P, P)."""
    theta, states, actions = check_inputs(theta, states, actions)
    z, inv_std = _z(theta, states, actions)
    sh = _hat(states)
    ww = -(sh[:, :, None] * sh[:, None, :])[:, None] * (inv_std**2)[:, None, None]
    wr = (-2.0 * z * inv_std)[:, :, None] * sh[:, None, :]
    top = jnp.concatenate([ww, wr[:, :, :, None]], axis=-1)
    bottom = jnp.concatenate([wr, (-2.0 * z * z)[:, :, None]], axis=-1)[:, :, None, :]
    return _blockdiag(jnp.concatenate([top, bottom], axis=-2))


def fisher_state(theta, states):
    r"""Per-state Fisher, block i :math:`[[\hat s\hat s^\top/\sigma_i^2, 0], [0, 2]]`, (B, P, P)."""
    theta, states, _ = check_inputs(theta, states)
    sh = _hat(states)
    inv_var = jnp.exp(-2.0 * _split(theta)[2])
    return _blockdiag(_fisher_blocks(sh[:, :, None] * sh[:, None, :], inv_var))


def fisher(theta, states, weights=None):
    r"""Fisher, block i :math:`[[R/\sigma_i^2, 0], [0, 2]]`, :math:`R = \sum_b w_b \hat s_b\hat s_b^\top`, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    inv_var = jnp.exp(-2.0 * _split(theta)[2])
    return _blockdiag(_fisher_blocks(_second_moment(states, w), inv_var))


def fisher_diag(theta, states, weights=None):
    r"""Diagonal, row i :math:`[\sum_b w_b \hat s_b^2 / \sigma_i^2, 2]`, shape (m, n + 2), O(B n + m n)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    sh = _hat(states)
    r = jnp.sum(w[:, None] * sh * sh, axis=0)
    inv_var = jnp.exp(-2.0 * _split(theta)[2])
    ww = inv_var[:, None] * r[None, :]
    return jnp.concatenate([ww, jnp.full_like(ww[:, :1], 2.0)], axis=1)


def fvp(theta, states, v, weights=None):
    r"""Row i of :math:`Fv`: :math:`[\sum_b w_b u_{bi}\hat s_b^\top/\sigma_i^2, 2 v_{i,\log\sigma}]`, :math:`u_b = V_{[W|b]}\hat s_b`; O(B m n)."""
    theta, states, _ = check_inputs(theta, states)
    v = _like(v, theta, "v")
    w = _weights(weights, states, theta)
    sh = _hat(states)
    u = sh @ v[:, :-1].T
    inv_var = jnp.exp(-2.0 * _split(theta)[2])
    fw = ((w[:, None] * u).T @ sh) * inv_var[:, None]
    return jnp.concatenate([fw, 2.0 * v[:, -1:]], axis=1)


def kl(theta_p, theta_q, states, weights=None):
    r""":math:`\sum_b w_b \sum_i \tfrac12\operatorname{expm1}(2\delta_i) - \delta_i + \tfrac12((\mu_i - \mu'_i)/\sigma'_i)^2`, :math:`\delta = \log\sigma - \log\sigma'`."""
    theta_p, states, _ = _check(theta_p, states, None, "theta_p")
    theta_q = _like(_theta(theta_q, "theta_q"), theta_p, "theta_q")
    w = _weights(weights, states, theta_p)
    log_std_p, log_std_q = _split(theta_p)[2], _split(theta_q)[2]
    delta = log_std_p - log_std_q
    dmu = (_mean(theta_p, states) - _mean(theta_q, states)) * jnp.exp(-log_std_q)
    per = 0.5 * jnp.expm1(2.0 * delta) - delta + 0.5 * dmu * dmu
    return jnp.sum(w * jnp.sum(per, axis=-1))


def _kfac(theta, states, weights):
    w = _weights(weights, states, theta)
    return jnp.diag(jnp.exp(-2.0 * _split(theta)[2])), _second_moment(states, w)


def kfac(theta, states, weights=None):
    r"""K-FAC factors of the [W|b] part: :math:`L = \operatorname{diag}(1/\sigma^2)`, :math:`R = \sum_b w_b \hat s_b\hat s_b^\top`."""
    theta, states, _ = check_inputs(theta, states)
    return _kfac(theta, states, weights)


def kfac_fisher(theta, states, weights=None):
    r""":math:`L \otimes R` at the [W|b] entries, 2 on the :math:`\log\sigma` diagonal, zeros across, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    L, R = _kfac(theta, states, weights)
    m, q = theta.shape[0], R.shape[0]
    k4 = jnp.pad(jnp.kron(L, R).reshape(m, q, m, q), [(0, 0), (0, 1), (0, 0), (0, 1)])
    last = jnp.zeros(q + 1, theta.dtype).at[q].set(1.0)
    eye = jnp.eye(m, dtype=theta.dtype)
    k4 = k4 + 2.0 * eye[:, None, :, None] * last[None, :, None, None] * last
    return k4.reshape(m * (q + 1), m * (q + 1))


def natural_gradient(theta, states, g, damping=0.0, weights=None):
    r"""Exact :math:`(F + \lambda I)^{-1} g` through the Kronecker blocks, shape (m, n + 2).

    With :math:`R = Q \operatorname{diag}(r) Q^\top` ((n+1) x (n+1), one eigendecomposition),
    row i of the [W|b] part is :math:`Q\,[(Q^\top g_i) / (r/\sigma_i^2 + \lambda)]` and the
    :math:`\log\sigma` entry :math:`g_{i,\log\sigma} / (2 + \lambda)`; O(n^3 + m n^2).
    A damping known to be positive (not traced) takes m Cholesky solves of
    :math:`R/\sigma_i^2 + \lambda I` instead (the same numbers, faster than an
    eigendecomposition). At :math:`\lambda = 0` directions with :math:`r = 0` (fewer states than columns)
    get 0: the minimum-norm :math:`F^{+} g`.
    """
    theta, states, _ = check_inputs(theta, states)
    g = _like(g, theta, "g")
    lam = _damping(damping, theta)
    w = _weights(weights, states, theta)
    R = _second_moment(states, w)
    inv_var = jnp.exp(-2.0 * _split(theta)[2])
    if _positive(lam):  # m positive definite systems: Cholesky
        A = R * inv_var[:, None, None] + lam * jnp.eye(R.shape[0], dtype=R.dtype)
        L = jnp.linalg.cholesky(A)
        y = jax.lax.linalg.triangular_solve(L, g[:, :-1, None], left_side=True, lower=True)
        x = jax.lax.linalg.triangular_solve(L, y, left_side=True, lower=True, transpose_a=True)
        return jnp.concatenate([x[..., 0], g[:, -1:] / (2.0 + lam)], axis=1)
    Q, r = _eig(R)
    den = inv_var[:, None] * r[None, :] + lam
    inv = jnp.where(den > 0, 1.0 / jnp.where(den > 0, den, 1.0), 0.0)
    x = ((g[:, :-1] @ Q) * inv) @ Q.T
    return jnp.concatenate([x, g[:, -1:] / (2.0 + lam)], axis=1)


def fisher_sqrt(theta, states, weights=None):
    r""":math:`L` with :math:`L^\top L = F`, shape (m (B + 1), P): block i has rows :math:`[\sqrt{w_b}\,\hat s_b^\top/\sigma_i, 0]` and :math:`[0, \sqrt 2]`."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    m, B = theta.shape[0], states.shape[0]
    rows = jnp.sqrt(w)[:, None] * _hat(states)
    inv_std = jnp.exp(-_split(theta)[2])
    top = jnp.pad(inv_std[:, None, None] * rows, [(0, 0), (0, 0), (0, 1)])
    last = jnp.zeros_like(top[:, :1]).at[:, 0, -1].set(jnp.sqrt(jnp.asarray(2.0, theta.dtype)))
    blocks = jnp.concatenate([top, last], axis=1)
    eye = jnp.eye(m, dtype=theta.dtype)
    q = blocks.shape[-1]
    return (blocks[:, :, None, :] * eye[:, None, :, None]).reshape(m * (B + 1), m * q)


def sample(key, theta, states):
    r"""Actions :math:`a_b = W s_b + b + \sigma \odot \varepsilon_b`, :math:`\varepsilon_b \sim N(0, I)`, shape (B, m)."""
    theta, states, _ = check_inputs(theta, states)
    mu = _mean(theta, states)
    eps = jax.random.normal(key, mu.shape, dtype=theta.dtype)
    return mu + jnp.exp(_split(theta)[2]) * eps


def entropy(theta, states):
    r"""Per-state entropy :math:`\sum_i \log\sigma_i + \tfrac m2 (1 + \log 2\pi)`, shape (B,).

    The same for every state (the mean does not change it); ``states`` sets the shape.
    """
    theta, states, _ = check_inputs(theta, states)
    log_std = _split(theta)[2]
    m = log_std.shape[0]
    h = jnp.sum(log_std) + 0.5 * m * (1.0 + jnp.log(2.0 * jnp.pi))
    return jnp.broadcast_to(h.astype(theta.dtype), states.shape[:1])
# end template: body
# fmt: on
