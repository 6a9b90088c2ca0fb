# Read as text by symfisher.codegen.policy_module (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
r"""Kernels of the linear_softmax policy (Boltzmann over features).

:math:`\pi(a|s) = p_a`, :math:`p = \operatorname{softmax}(W\phi(s))`, i.e.
features :math:`\phi(s, a) = e_a \otimes \phi(s)`. ``theta`` is W, shape
(K, d): K >= 2 actions, d features; ``states`` (B, d) rows :math:`\phi(s_b)`;
``actions`` (B,) integers in 0..K-1. P = K d, index k d + i for :math:`W_{ki}`.

- score :math:`(e_a - p)\phi^\top`; Hessian of :math:`\log\pi` is :math:`-F(s)`
  (independent of a);
- :math:`F(s) = (\operatorname{diag}p - pp^\top) \otimes \phi\phi^\top`;
- ``fvp``: :math:`u_b = V\phi_b`,
  :math:`Fv = \sum_b w_b \big(p_b \odot (u_b - p_b^\top u_b)\big)\phi_b^\top`,
  O(B K d), no P x P array;
- ``kl``: :math:`\sum_a p_a(\log p_a - \log q_a)` from ``log_softmax``;
- ``kfac``: :math:`L = G = \sum_b w_b (\operatorname{diag}p_b - p_b p_b^\top)`,
  :math:`R = A = \sum_b w_b \phi_b\phi_b^\top`, K-FAC :math:`F \approx G \otimes A`
  (exact when p does not vary with s or :math:`\phi\phi^\top` does not).
"""

# fmt: off
# template: head
import jax
import jax.numpy as jnp

POLICY = 'linear_softmax'
FAMILY = POLICY
THETA = 'W, shape (K, d): logits W phi(s) over K >= 2 actions; vec is row-major (index k*d + i)'
STATES = 'float (B, d): one feature vector phi(s_b) per row'
ACTIONS = 'int (B,): action indices in 0..K-1'
_THETA_SHAPE = '(K, d) with K >= 2 actions and d >= 1 features'
_THETA_MIN = (2, 1)
NATURAL_GRADIENT = 'K-FAC approximation (G kron A + damping I)^-1 g: exact only when p or phi phi^T does not vary across states'
# end template: head
# fmt: on

# the common section (policy_common.py) comes here in the generated module
from symfisher.codegen.templates.policy_common import (  # noqa: E402
    _damping,
    _indices,
    _kron_solve,
    _like,
    _nonempty,
    _real,
    _softmax_core,
    _softmax_entropy,
    _softmax_kfac_g,
    _softmax_kl,
    _softmax_sqrt,
    _theta,
    _weights,
)

# fmt: off
# template: body


def check_inputs(theta, states, actions=None):
    """``(theta, states, actions)`` as arrays after validation (``actions`` may be None).

    theta: floating (K, d), K >= 2; states: (B, d), B >= 1, cast to theta's dtype;
    actions: integer (B,) in 0..K-1. Raises TypeError (dtype) or ValueError.
    """
    return _check(theta, states, actions, "theta")


def _check(theta, states, actions, name):
    theta = _theta(theta, name)
    K, d = theta.shape
    states = jnp.asarray(states)
    if states.ndim != 2 or states.shape[1] != d:
        raise ValueError(
            f"{POLICY}: states have shape {states.shape} but {name} has shape "
            f"{theta.shape}: states must be (B, {d}), one feature vector per row"
        )
    _nonempty(states)
    states = _real(states, "states", theta.dtype)
    if actions is not None:
        actions = jnp.asarray(actions)
        B = states.shape[0]
        if actions.shape != (B,):
            raise ValueError(
                f"{POLICY}: actions have shape {actions.shape} but states have "
                f"{B} rows: actions must be ({B},), one action index per state"
            )
        actions = _indices(actions, "actions", K, "action")
    return theta, states, actions


def _log_policy(theta, states):
    r""":math:`\log\pi(\cdot|s_b)`, (B, K): ``log_softmax`` of the logits :math:`W\phi_b`."""
    return jax.nn.log_softmax(states @ theta.T, axis=-1)


def log_prob(theta, states, actions):
    r""":math:`\log\pi(a_b|s_b) = (W\phi_b)_{a_b} - \log\sum_k e^{(W\phi_b)_k}`, shape (B,)."""
    theta, states, actions = check_inputs(theta, states, actions)
    logp = _log_policy(theta, states)
    return jnp.take_along_axis(logp, actions[:, None], axis=-1)[:, 0]


def score(theta, states, actions):
    r"""Score :math:`(e_a - p)\phi^\top`, shape (B, K, d)."""
    theta, states, actions = check_inputs(theta, states, actions)
    p = jnp.exp(_log_policy(theta, states))
    g = jax.nn.one_hot(actions, theta.shape[0], dtype=theta.dtype) - p
    return g[:, :, None] * states[:, None, :]


def _fisher_state(theta, states):
    K, d = theta.shape
    C = _softmax_core(_log_policy(theta, states))
    F = jnp.einsum("bkl,bi,bj->bkilj", C, states, states)
    return F.reshape(states.shape[0], K * d, K * d)


def hessian_log_prob(theta, states, actions):
    r"""Hessian :math:`-(\operatorname{diag}p - pp^\top) \otimes \phi\phi^\top`, (B, P, P); independent of a."""
    theta, states, actions = check_inputs(theta, states, actions)
    return -_fisher_state(theta, states)


def fisher_state(theta, states):
    r"""Per-state Fisher :math:`(\operatorname{diag}p - pp^\top) \otimes \phi\phi^\top`, (B, P, P)."""
    theta, states, _ = check_inputs(theta, states)
    return _fisher_state(theta, states)


def fisher(theta, states, weights=None):
    r"""Fisher :math:`\sum_b w_b (\operatorname{diag}p_b - p_b p_b^\top) \otimes \phi_b\phi_b^\top`, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    K, d = theta.shape
    C = _softmax_core(_log_policy(theta, states)) * w[:, None, None]
    return jnp.einsum("bkl,bi,bj->kilj", C, states, states).reshape(K * d, K * d)


def fisher_diag(theta, states, weights=None):
    r"""Diagonal :math:`\sum_b w_b\, p_{bk}(1 - p_{bk})\, \phi_{bi}^2`, shape (K, d), O(B K d)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    logp = _log_policy(theta, states)
    c = w[:, None] * jnp.exp(logp) * -jnp.expm1(logp)
    return c.T @ (states * states)


def fvp(theta, states, v, weights=None):
    r""":math:`Fv = \sum_b w_b (p_b \odot (u_b - p_b^\top u_b)) \phi_b^\top`, :math:`u_b = V\phi_b`; O(B K d)."""
    theta, states, _ = check_inputs(theta, states)
    v = _like(v, theta, "v")
    w = _weights(weights, states, theta)
    K = theta.shape[0]
    zu = states @ jnp.concatenate([theta, v]).T  # logits and V phi: one pass over states
    p = jax.nn.softmax(zu[:, :K], axis=-1)
    u = zu[:, K:]
    g = p * (u - jnp.sum(p * u, axis=-1, keepdims=True))
    return (w[:, None] * g).T @ states


def kl(theta_p, theta_q, states, weights=None):
    r""":math:`\sum_b w_b \sum_a p_a (\log p_a - \log q_a)` at the states :math:`s_b`."""
    theta_p, states, _ = _check(theta_p, states, None, "theta_p")
    theta_q = _like(_theta(theta_q, "theta_q"), theta_p, "theta_q")
    w = _weights(weights, states, theta_p)
    return _softmax_kl(_log_policy(theta_p, states), _log_policy(theta_q, states), w)


def _kfac(theta, states, weights):
    w = _weights(weights, states, theta)
    G = _softmax_kfac_g(_log_policy(theta, states), w)
    A = (w[:, None] * states).T @ states
    return G, A


def kfac(theta, states, weights=None):
    r"""K-FAC factors :math:`(G, A)`: :math:`G = \sum_b w_b(\operatorname{diag}p_b - p_b p_b^\top)`, :math:`A = \sum_b w_b \phi_b\phi_b^\top`."""
    theta, states, _ = check_inputs(theta, states)
    return _kfac(theta, states, weights)


def kfac_fisher(theta, states, weights=None):
    r"""Dense K-FAC approximation :math:`G \otimes A`, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    G, A = _kfac(theta, states, weights)
    return jnp.kron(G, A)


def natural_gradient(theta, states, g, damping=0.0, weights=None):
    r"""K-FAC natural gradient :math:`(G \otimes A + \lambda I)^{-1} g`, shape (K, d): an approximation.

    ``NATURAL_GRADIENT`` says so: the Fisher :math:`\sum_b w_b C_b \otimes \phi_b\phi_b^\top`
    is not a Kronecker product unless :math:`C_b = \operatorname{diag}p_b - p_b p_b^\top`
    or :math:`\phi_b\phi_b^\top` is the same for every state (then this is exact). With
    :math:`G = U \operatorname{diag}(\gamma) U^\top`, :math:`A = V \operatorname{diag}(\alpha) V^\top`:
    :math:`X = U [(U^\top g V) / (\gamma\alpha^\top + \lambda)] V^\top`, O(K^3 + d^3 + K d (K + d));
    zero denominators (:math:`\lambda = 0`, :math:`G\mathbf 1 = 0`) give 0 (minimum norm).
    Measured against the exact :math:`(F + 10^{-3} I)^{-1} g` for policy gradients
    from sampled actions (5 seeds each, K x d x B = 4 x 3 x 32, 18 x 16 x 256,
    6 x 32 x 1024): cosine at least 0.919 (medians 0.977, 0.967, 0.992), median
    relative error 0.22, 0.26, 0.13.
    """
    theta, states, _ = check_inputs(theta, states)
    g = _like(g, theta, "g")
    lam = _damping(damping, theta)
    G, A = _kfac(theta, states, weights)
    return _kron_solve(G, A, g, lam)


def fisher_sqrt(theta, states, weights=None):
    r""":math:`L` with :math:`L^\top L = F`, shape (B K, P): rows :math:`\sqrt{w_b}\,(L_b \otimes \phi_b^\top)`, :math:`L_b = \operatorname{diag}\sqrt{p_b} - \sqrt{p_b}\, p_b^\top`."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    K, d = theta.shape
    L = jnp.sqrt(w)[:, None, None] * _softmax_sqrt(_log_policy(theta, states))
    return (L[:, :, :, None] * states[:, None, None, :]).reshape(states.shape[0] * K, K * d)


def sample(key, theta, states):
    r"""Actions :math:`a_b \sim \operatorname{softmax}(W\phi_b)`, shape (B,)."""
    theta, states, _ = check_inputs(theta, states)
    return jax.random.categorical(key, states @ theta.T, axis=-1)


def entropy(theta, states):
    r"""Per-state entropy :math:`H(\pi(\cdot|s_b)) = -\sum_a p_a \log p_a`, :math:`p = \operatorname{softmax}(W\phi_b)`, shape (B,).

    From ``log_softmax``; an action with :math:`p_a = 0` adds 0 (no NaN).
    """
    theta, states, _ = check_inputs(theta, states)
    return _softmax_entropy(_log_policy(theta, states))
# end template: body
# fmt: on
