"""The oracle on sb3-contrib TRPO's Fisher-vector product, as the library runs it.

TRPO's FVP is the Hessian-vector product of the mean KL(π_new ‖ π_old) over the
actor weights, plus ``cg_damping * v``: at π_new = π_old that is
(F + λI) v with F = (1/N) Σ_n J_nᵀ F_out(θ_n) J_n. The oracle computes the same
from the family's closed-form output Fisher (diag Gaussian in (μ, log σ) for a
Box action space, softmax logits for Discrete) and ``torch.func`` jvp/vjp.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import TRPO
from stable_baselines3.common.distributions import kl_divergence

from symfisher.testing import assert_policy_fvp_close

CASES = {
    # env, family, family kwargs
    "continuous": ("Pendulum-v1", "diag_gaussian", {"d": 1}),
    "discrete": ("CartPole-v1", "categorical_softmax", {"K": 2}),
}


class _TwoActions(gym.Env):
    """A one-step environment with a 2-dimensional Box action space."""

    observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, seed=None, options=None):
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


def _model(env) -> TRPO:
    torch.manual_seed(0)
    return TRPO("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, device="cpu")


def _states(model: TRPO, n: int = 12) -> torch.Tensor:
    space = model.observation_space
    space.seed(1)
    return torch.as_tensor(np.stack([space.sample() for _ in range(n)]))


def _actor(model: TRPO) -> dict[str, torch.nn.Parameter]:
    """The weights TRPO steps: every policy parameter but the value function's."""
    return {n: p for n, p in model.policy.named_parameters() if "value" not in n}


def _head(model: TRPO, params: dict, obs: torch.Tensor) -> torch.Tensor:
    """The family parameters per state, the way MlpPolicy.get_distribution builds them."""
    policy = model.policy
    full = dict(params)
    latent = torch.func.functional_call(
        policy.mlp_extractor.policy_net,
        {
            k.removeprefix("mlp_extractor.policy_net."): v
            for k, v in full.items()
            if k.startswith("mlp_extractor.policy_net.")
        },
        (obs.to(next(iter(params.values())).dtype),),
    )
    out = torch.func.functional_call(
        policy.action_net,
        {
            k.removeprefix("action_net."): v
            for k, v in full.items()
            if k.startswith("action_net.")
        },
        (latent,),
    )
    if "log_std" in full:
        return torch.cat([out, full["log_std"].expand_as(out)], dim=-1)
    return out


def _trpo_fvp(model: TRPO, states: torch.Tensor, *, kl_scale: float = 1.0):
    """fn(params, states, v): sb3-contrib's own hessian_vector_product."""

    def fvp(params, obs, v):
        with torch.no_grad():  # in TRPO.train's order: the policy reuses one object
            old = copy.copy(model.policy.get_distribution(obs))
        dist = model.policy.get_distribution(obs)
        kl = kl_scale * kl_divergence(dist, old).mean()
        objective = dist.log_prob(dist.get_actions(deterministic=True).detach()).mean()
        actor, _, grad_kl, _ = model._compute_actor_grad(kl, objective)
        assert [id(p) for p in actor] == [id(p) for p in params.values()]
        flat_v = torch.cat([t.reshape(-1) for t in v.values()])
        return model.hessian_vector_product(actor, grad_kl, flat_v, retain_graph=False)

    return fvp


@pytest.mark.parametrize("case", sorted(CASES))
def test_head_is_the_policy_distribution(case):
    env, _, _ = CASES[case]
    model = _model(env)
    obs = _states(model)
    dist = model.policy.get_distribution(obs).distribution
    got = _head(model, _actor(model), obs)
    want = (
        torch.cat([dist.mean, dist.stddev.log()], -1)
        if case == "continuous"
        else dist.logits
    )
    if case == "discrete":  # torch normalises logits; the softmax Fisher ignores shifts
        got = got - got.logsumexp(-1, keepdim=True)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("case", sorted(CASES))
def test_trpo_fvp_passes(case):
    env, family, _ = CASES[case]
    model = _model(env)
    obs = _states(model)
    params = _actor(model)
    assert_policy_fvp_close(
        _trpo_fvp(model, obs),
        lambda p, s: _head(model, p, s),
        params,
        obs,
        family,
        damping=model.cg_damping,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_trpo_fvp_without_damping_is_caught(case):
    env, family, _ = CASES[case]
    model = _model(env)
    obs = _states(model)
    with pytest.raises(
        AssertionError, match=r"got = \(F \+ 0.1 I\) v.*pass damping=0.1"
    ):
        assert_policy_fvp_close(
            _trpo_fvp(model, obs),
            lambda p, s: _head(model, p, s),
            _actor(model),
            obs,
            family,
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_planted_kl_sum_over_states_is_caught(case):
    """A KL summed over states (not averaged) makes the FVP N times too large."""
    env, family, _ = CASES[case]
    model = _model(env)
    model.cg_damping = 0.0
    obs = _states(model)
    with pytest.raises(AssertionError, match="sum over states instead of a mean"):
        assert_policy_fvp_close(
            _trpo_fvp(model, obs, kl_scale=len(obs)),
            lambda p, s: _head(model, p, s),
            _actor(model),
            obs,
            family,
        )


def test_trpo_fvp_with_two_action_dimensions_is_f_over_d():
    """sb3-contrib 2.9.2 averages the diagonal Gaussian KL over action dimensions.

    SB3's ``kl_divergence`` returns the per-dimension KL of ``Normal`` (no
    ``Independent``), and TRPO takes ``.mean()`` over states *and* dimensions,
    so its FVP is (F / d + λI) v: the oracle says so (a finding, not a planted bug).
    """
    model = _model(_TwoActions())
    obs = _states(model)
    with pytest.raises(AssertionError, match=r"got = F v / 2 \(d = 2 action dim"):
        assert_policy_fvp_close(
            _trpo_fvp(model, obs),
            lambda p, s: _head(model, p, s),
            _actor(model),
            obs,
            "diag_gaussian",
            damping=model.cg_damping,
        )
