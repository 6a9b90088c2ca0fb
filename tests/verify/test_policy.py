"""Monte Carlo verification of the policy kernels, and planted bugs it must catch."""

from __future__ import annotations

import types

import jax.numpy as jnp
import pytest

from symfisher.families.policies import policies
from symfisher.kernels import kernels
from symfisher.verify.policy_checks import verify_policy


@pytest.mark.parametrize("name", policies())
def test_generated_policy_kernels_pass(name):
    r = verify_policy(name, points=2, samples=2**15, seed=0)
    assert r.passed, [(c.name, c.entry, c.message) for c in r.failures]
    kinds = {c.name for c in r.checks}
    assert {"E[s] = 0", "E[s s^T] = F", "-E[H] = F", "E_s[F(s)] = F"} <= kinds
    assert {"E_s[KL] = KL", "Hessian of kl = fisher", "fvp = F v"} <= kinds
    assert "E[-log pi] = E_s[H(s)]" in kinds
    stoch = [c for c in r.checks if c.kind == "stochastic"]
    assert stoch and all(0 < c.detectable < 0.25 for c in stoch)


def _planted(name: str, **replace) -> types.SimpleNamespace:
    k = kernels(name)
    ns = types.SimpleNamespace(
        **{a: getattr(k, a) for a in dir(k) if not a.startswith("__")}
    )
    for attr, fn in replace.items():
        setattr(ns, attr, fn(getattr(k, attr)))
    return ns


BUGS = {
    # per-state Fisher 5% too large
    "fisher_state": lambda f: lambda th, s: 1.05 * f(th, s),
    # score off by a constant in every coordinate (E[s] != 0)
    "score": lambda f: lambda th, s, a: f(th, s, a) + 0.05,
    # KL with the wrong curvature
    "kl": lambda f: lambda p, q, s, w=None: 1.1 * f(p, q, s, w),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
@pytest.mark.parametrize("name", ["linear_softmax", "linear_gaussian"])
def test_planted_bugs_are_caught(name, bug):
    k = _planted(name, **{bug: BUGS[bug]})
    r = verify_policy(name, points=1, samples=2**15, seed=1, kernels=k)
    assert not r.passed, f"{bug} in {name} not caught"


def test_entropy_with_half_log_sigma_is_caught():
    def half(f):
        def entropy(th, s):  # sum of 1/2 log sigma_i where log sigma_i belongs
            log_std = jnp.asarray(th)[:, -1]
            return f(th, s) - 0.5 * jnp.sum(log_std)

        return entropy

    k = _planted("linear_gaussian", entropy=half)
    r = verify_policy("linear_gaussian", points=1, samples=2**15, seed=1, kernels=k)
    assert [c.name for c in r.failures] == ["E[-log pi] = E_s[H(s)]"]


def test_wrong_sampler_is_caught():
    # actions from a policy with logits scaled by 1.2: scores no longer centred
    k = _planted(
        "tabular_softmax",
        sample=lambda f: lambda key, th, s: f(key, 1.2 * jnp.asarray(th), s),
    )
    r = verify_policy("tabular_softmax", points=1, samples=2**15, seed=2, kernels=k)
    assert not r.passed


@pytest.mark.parametrize(
    ("kw", "msg"), [({"points": 0}, "points"), ({"samples": 3}, "samples")]
)
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        verify_policy("linear_softmax", **kw)


def test_kernels_that_numpy_cannot_trace_still_run_eagerly():
    """A planted kernel with NumPy inside cannot be jitted: it runs op by op."""
    import numpy as np

    def host(f):
        return lambda th, s: jnp.asarray(1.05 * np.asarray(f(th, s)))

    k = _planted("linear_softmax", fisher_state=host)
    r = verify_policy("linear_softmax", points=1, samples=2**15, seed=1, kernels=k)
    assert "E_s[F(s)] = F" in {c.name for c in r.failures}


def test_kernel_calls_compile_once_per_function():
    """Each kernel is traced once for all points (not op by op at every point)."""
    from symfisher.verify import policy_checks

    calls = []

    def counting(f):
        def score(th, s, a):
            calls.append(1)
            return f(th, s, a)

        return score

    k = _planted("tabular_softmax", score=counting)
    r = verify_policy("tabular_softmax", points=3, samples=2**10, seed=3, kernels=k)
    assert r.passed, [(c.name, c.entry, c.message) for c in r.failures]
    assert len(calls) == 1  # traced once, run at three points
    assert any(fn is k.score for _, fn in policy_checks._JITTED)
