# Read as text by symfisher.codegen.policy_module (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
r"""Kernels of the tabular_softmax policy (a logits table).

:math:`\pi(a|s) = \operatorname{softmax}(\theta_s)_a`. ``theta`` is the table,
shape (S, K): S >= 1 states, K >= 2 actions; ``states`` (B,) integers in
0..S-1; ``actions`` (B,) integers in 0..K-1. P = S K, index s K + k. It is
linear_softmax with one-hot features, with theta laid out (S, K).

- score :math:`e_s (e_a - p_s)^\top`; Hessian of :math:`\log\pi` is
  :math:`-F(s)` (independent of a);
- :math:`F(s) = e_s e_s^\top \otimes (\operatorname{diag}p_s - p_s p_s^\top)`;
- ``fvp``: :math:`(Fv)_s = \sum_{b: s_b = s} w_b\, p_s \odot (v_s - p_s^\top v_s)`,
  a scatter-add, O(B K);
- ``kl``: :math:`\sum_a p_{s,a}(\log p_{s,a} - \log q_{s,a})` from ``log_softmax``;
- ``kfac``: :math:`L = A = \operatorname{diag}(\sum_b w_b e_{s_b})` (state
  frequencies), :math:`R = G = \sum_b w_b (\operatorname{diag}p_{s_b} - p_{s_b}
  p_{s_b}^\top)`, K-FAC :math:`F \approx A \otimes G` (exact with one state).
"""

# fmt: off
# template: head
import jax
import jax.numpy as jnp

POLICY = 'tabular_softmax'
FAMILY = POLICY
THETA = 'logits table, shape (S, K): row s holds the K >= 2 action logits of state s; vec is row-major (index s*K + k)'
STATES = 'int (B,): state indices in 0..S-1'
ACTIONS = 'int (B,): action indices in 0..K-1'
_THETA_SHAPE = '(S, K) with S >= 1 states and K >= 2 actions'
_THETA_MIN = (1, 2)
NATURAL_GRADIENT = 'exact'
# end template: head
# fmt: on

# the common section (policy_common.py) comes here in the generated module
from symfisher.codegen.templates.policy_common import (  # noqa: E402
    _damping,
    _indices,
    _like,
    _nonempty,
    _softmax_core,
    _softmax_entropy,
    _softmax_fvp,
    _softmax_kfac_g,
    _softmax_kl,
    _softmax_solve,
    _softmax_sqrt,
    _theta,
    _weights,
)

# fmt: off
# template: body


def check_inputs(theta, states, actions=None):
    """``(theta, states, actions)`` as arrays after validation (``actions`` may be None).

    theta: floating (S, K), K >= 2; states: integer (B,) in 0..S-1, B >= 1;
    actions: integer (B,) in 0..K-1. Raises TypeError (dtype) or ValueError.
    """
    return _check(theta, states, actions, "theta")


def _check(theta, states, actions, name):
    theta = _theta(theta, name)
    S, K = theta.shape
    states = jnp.asarray(states)
    if states.ndim != 1:
        raise ValueError(
            f"{POLICY}: states have shape {states.shape} but {name} has shape "
            f"{theta.shape}: states must be (B,), one state index in 0..{S - 1} per row"
        )
    _nonempty(states)
    states = _indices(states, "states", S, "state")
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
    r""":math:`\log\pi(\cdot|s_b)`, (B, K): ``log_softmax`` of the rows :math:`\theta_{s_b}`."""
    return jax.nn.log_softmax(theta[states], axis=-1)


def _scatter(theta, states, rows):
    r""":math:`\sum_b e_{s_b} r_b^\top`, theta's shape, from rows ``(B, K)``."""
    return jnp.zeros_like(theta).at[states].add(rows)


def log_prob(theta, states, actions):
    r""":math:`\log\pi(a_b|s_b) = \theta_{s_b a_b} - \log\sum_k e^{\theta_{s_b k}}`, shape (B,)."""
    theta, states, actions = check_inputs(theta, states, actions)
    logp = _log_policy(theta, states)
    return jnp.take_along_axis(logp, actions[:, None], axis=-1)[:, 0]


def score(theta, states, actions):
    r"""Score :math:`e_s (e_a - p_s)^\top`, shape (B, S, K)."""
    theta, states, actions = check_inputs(theta, states, actions)
    S, K = theta.shape
    p = jnp.exp(_log_policy(theta, states))
    g = jax.nn.one_hot(actions, K, dtype=theta.dtype) - p
    return jax.nn.one_hot(states, S, dtype=theta.dtype)[:, :, None] * g[:, None, :]


def _fisher_state(theta, states):
    S, K = theta.shape
    C = _softmax_core(_log_policy(theta, states))
    E = jax.nn.one_hot(states, S, dtype=theta.dtype)
    F = jnp.einsum("bs,bt,bkl->bsktl", E, E, C)
    return F.reshape(states.shape[0], S * K, S * K)


def hessian_log_prob(theta, states, actions):
    r"""Hessian :math:`-e_s e_s^\top \otimes (\operatorname{diag}p_s - p_s p_s^\top)`, (B, P, P); independent of a."""
    theta, states, actions = check_inputs(theta, states, actions)
    return -_fisher_state(theta, states)


def fisher_state(theta, states):
    r"""Per-state Fisher :math:`e_s e_s^\top \otimes (\operatorname{diag}p_s - p_s p_s^\top)`, (B, P, P)."""
    theta, states, _ = check_inputs(theta, states)
    return _fisher_state(theta, states)


def fisher(theta, states, weights=None):
    r"""Fisher, block diagonal over table rows: block s is :math:`\sum_{b: s_b = s} w_b (\operatorname{diag}p_s - p_s p_s^\top)`, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    S, K = theta.shape
    C = _softmax_core(_log_policy(theta, states)) * w[:, None, None]
    blocks = jnp.zeros((S, K, K), theta.dtype).at[states].add(C)
    eye = jnp.eye(S, dtype=theta.dtype)
    return (blocks[:, :, None, :] * eye[:, None, :, None]).reshape(S * K, S * K)


def fisher_diag(theta, states, weights=None):
    r"""Diagonal :math:`\sum_{b: s_b = s} w_b\, p_{sk}(1 - p_{sk})`, shape (S, K), O(B K)."""
    theta, states, _ = check_inputs(theta, states)
    w = _weights(weights, states, theta)
    logp = _log_policy(theta, states)
    return _scatter(theta, states, w[:, None] * jnp.exp(logp) * -jnp.expm1(logp))


def fvp(theta, states, v, weights=None):
    r""":math:`(Fv)_s = \sum_{b: s_b = s} w_b\, p_s \odot (v_s - p_s^\top v_s)`, O(B K)."""
    theta, states, _ = check_inputs(theta, states)
    v = _like(v, theta, "v")
    w = _weights(weights, states, theta)
    g = _softmax_fvp(_log_policy(theta, states), v[states])
    return _scatter(theta, states, w[:, None] * g)


def kl(theta_p, theta_q, states, weights=None):
    r""":math:`\sum_b w_b \sum_a p_{s_b a} (\log p_{s_b a} - \log q_{s_b a})`."""
    theta_p, states, _ = _check(theta_p, states, None, "theta_p")
    theta_q = _like(_theta(theta_q, "theta_q"), theta_p, "theta_q")
    w = _weights(weights, states, theta_p)
    return _softmax_kl(_log_policy(theta_p, states), _log_policy(theta_q, states), w)


def _kfac(theta, states, weights):
    w = _weights(weights, states, theta)
    A = jnp.diag(jnp.zeros(theta.shape[0], theta.dtype).at[states].add(w))
    G = _softmax_kfac_g(_log_policy(theta, states), w)
    return A, G


def kfac(theta, states, weights=None):
    r"""K-FAC factors :math:`(A, G)`: :math:`A = \operatorname{diag}(\sum_b w_b e_{s_b})`, :math:`G = \sum_b w_b(\operatorname{diag}p_{s_b} - p_{s_b} p_{s_b}^\top)`."""
    theta, states, _ = check_inputs(theta, states)
    return _kfac(theta, states, weights)


def kfac_fisher(theta, states, weights=None):
    r"""Dense K-FAC approximation :math:`A \otimes G`, (P, P)."""
    theta, states, _ = check_inputs(theta, states)
    A, G = _kfac(theta, states, weights)
    return jnp.kron(A, G)


def _visits(theta, states, weights):
    r""":math:`W_s = \sum_{b: s_b = s} w_b`, shape (S,)."""
    w = _weights(weights, states, theta)
    return jnp.zeros(theta.shape[0], theta.dtype).at[states].add(w)


def natural_gradient(theta, states, g, damping=0.0, weights=None):
    r"""Exact :math:`(F + \lambda I)^{-1} g`, per table row in O(K), shape (S, K).

    Block s of F is :math:`W_s (\operatorname{diag}p_s - p_s p_s^\top)`, so row s is
    :math:`W_s^{-1} (\operatorname{diag}p_s - p_s p_s^\top + (\lambda/W_s) I)^{-1} g_s`
    (Sherman–Morrison; the minimum-norm pseudo-inverse at :math:`\lambda = 0`),
    and :math:`g_s/\lambda` (0 at :math:`\lambda = 0`) for a state never visited.
    """
    theta, states, _ = check_inputs(theta, states)
    g = _like(g, theta, "g")
    lam = _damping(damping, theta)
    W = _visits(theta, states, weights)[:, None]
    seen = W > 0
    Ws = jnp.where(seen, W, 1.0)
    x = _softmax_solve(jax.nn.log_softmax(theta, axis=-1), g, lam / Ws) / Ws
    unseen = jnp.where(lam > 0, g / jnp.where(lam > 0, lam, 1.0), 0.0)
    return jnp.where(seen, x, unseen)


def fisher_sqrt(theta, states, weights=None):
    r""":math:`L` with :math:`L^\top L = F`, (P, P), block diagonal: block s is :math:`\sqrt{W_s}\,(\operatorname{diag}\sqrt{p_s} - \sqrt{p_s}\, p_s^\top)`."""
    theta, states, _ = check_inputs(theta, states)
    S, K = theta.shape
    W = _visits(theta, states, weights)
    blocks = jnp.sqrt(W)[:, None, None] * _softmax_sqrt(jax.nn.log_softmax(theta, axis=-1))
    eye = jnp.eye(S, dtype=theta.dtype)
    return (blocks[:, :, None, :] * eye[:, None, :, None]).reshape(S * K, S * K)


def sample(key, theta, states):
    r"""Actions :math:`a_b \sim \operatorname{softmax}(\theta_{s_b})`, shape (B,)."""
    theta, states, _ = check_inputs(theta, states)
    return jax.random.categorical(key, theta[states], axis=-1)


def entropy(theta, states):
    r"""Per-state entropy :math:`H(\pi(\cdot|s_b)) = -\sum_a p_a \log p_a`, :math:`p = \operatorname{softmax}(\theta_{s_b})`, shape (B,).

    From ``log_softmax``; an action with :math:`p_a = 0` adds 0 (no NaN).
    """
    theta, states, _ = check_inputs(theta, states)
    return _softmax_entropy(_log_policy(theta, states))
# end template: body
# fmt: on
