"""test_sb3_policy.py: Stable-Baselines3 code, as it runs, against symfisher."""

import copy

import torch
from sb3_contrib import TRPO
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    kl_divergence,
)

import symfisher as sf
from symfisher.testing import (
    assert_entropy_close,
    assert_kl_close,
    assert_log_prob_close,
    assert_policy_fvp_close,
)

K = 2  # CartPole's actions
LOGITS = sf.family("categorical_softmax", K=K)  # theta = the K logits


def dist(theta):
    """SB3's distribution at logits theta (leading axes flattened to its batch)."""
    return CategoricalDistribution(K).proba_distribution(theta.reshape(-1, K))


def log_prob(theta, a):
    return dist(theta).log_prob(a.reshape(-1)).reshape(theta.shape[:-1])


def entropy(theta):
    return dist(theta).entropy().reshape(theta.shape[:-1])


def kl(theta_p, theta_q):
    return kl_divergence(dist(theta_p), dist(theta_q)).reshape(theta_p.shape[:-1])


def test_log_prob_entropy_kl():
    assert_log_prob_close(log_prob, LOGITS, dtype=torch.float32)
    assert_entropy_close(entropy, LOGITS)
    assert_kl_close(kl, LOGITS)


def test_trpo_fisher_vector_product():
    torch.manual_seed(0)
    model = TRPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    policy = model.policy
    actor = {n: p for n, p in policy.named_parameters() if "value" not in n}
    obs = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))

    def part(params, prefix):
        n = len(prefix)
        return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}

    def logits(params, s):
        """The actor as MlpPolicy runs it: policy_net, then action_net."""
        net, head = policy.mlp_extractor.policy_net, policy.action_net
        h = torch.func.functional_call(
            net, part(params, "mlp_extractor.policy_net."), s
        )
        return torch.func.functional_call(head, part(params, "action_net."), h)

    def trpo_fvp(params, s, v):
        """sb3-contrib's own Hessian-vector product of the KL (with cg_damping)."""
        with torch.no_grad():
            old = copy.copy(policy.get_distribution(s))
        new = policy.get_distribution(s)
        objective = new.log_prob(new.get_actions(deterministic=True)).mean()
        kl_mean = kl_divergence(new, old).mean()
        used, _, grad_kl, _ = model._compute_actor_grad(kl_mean, objective)
        flat_v = torch.cat([t.reshape(-1) for t in v.values()])
        return model.hessian_vector_product(used, grad_kl, flat_v)

    assert_policy_fvp_close(
        trpo_fvp, logits, actor, obs, LOGITS, damping=model.cg_damping
    )
