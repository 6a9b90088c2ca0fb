"""The policy FVP assertion on torch modules: double back-propagation of the KL."""

from __future__ import annotations

import pytest
import torch

from symfisher.testing import assert_policy_fvp_close


def _net(dtype=torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4)
    ).to(dtype)


def _double_backprop_fvp(net, *, raw_logits: bool = False):
    """Fv = ∇_w (∇_w KL(π_w0 ‖ π_w) · v) at w = w0, KL averaged over states."""

    def fvp(params, states, v):
        def kl(p):
            z = torch.func.functional_call(net, p, (states,))
            z0 = z.detach()
            if raw_logits:  # the bug: KL on logits, not log-probabilities
                return (torch.softmax(z0, -1) * (z0 - z)).sum(-1).mean()
            lp, lp0 = torch.log_softmax(z, -1), torch.log_softmax(z0, -1)
            return (lp0.exp() * (lp0 - lp)).sum(-1).mean()

        p = {k: t.detach().requires_grad_(True) for k, t in params.items()}
        grads = torch.autograd.grad(kl(p), list(p.values()), create_graph=True)
        dot = sum((g * v[k]).sum() for g, k in zip(grads, p, strict=True))
        hv = torch.autograd.grad(dot, list(p.values()), materialize_grads=True)
        return dict(zip(p, hv, strict=True))

    return fvp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_double_backprop_fvp_of_a_module_passes(dtype):
    net = _net(dtype)
    states = torch.randn(10, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    params = dict(net.named_parameters())
    assert_policy_fvp_close(
        _double_backprop_fvp(net), net, params, states, "categorical_softmax"
    )


def test_kl_on_raw_logits_is_caught():
    net = _net()
    states = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(AssertionError, match="differs from symfisher"):
        assert_policy_fvp_close(
            _double_backprop_fvp(net, raw_logits=True),
            net,
            dict(net.named_parameters()),
            states,
            "categorical_softmax",
        )


def test_module_needs_named_params():
    net = _net()
    with pytest.raises(TypeError, match="dict of its"):
        assert_policy_fvp_close(
            _double_backprop_fvp(net),
            net,
            list(net.parameters()),
            torch.zeros(2, 3),
            "categorical_softmax",
        )


def test_fn_that_raises_is_chained():
    net = _net()

    def broken(params, states, v):
        raise RuntimeError("boom")

    with pytest.raises(AssertionError, match="raised RuntimeError") as info:
        assert_policy_fvp_close(
            broken,
            net,
            dict(net.named_parameters()),
            torch.zeros(2, 3),
            "categorical_softmax",
        )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_batched_checks_half_of_the_states_too():
    net = _net(torch.float64)
    states = torch.randn(
        10, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    sizes = []
    inner = _double_backprop_fvp(net)

    def spy(params, s, v):
        sizes.append(len(s))
        return inner(params, s, v)

    params = dict(net.named_parameters())
    assert_policy_fvp_close(spy, net, params, states, "categorical_softmax")
    assert sorted(set(sizes)) == [5, 10]
    sizes.clear()
    assert_policy_fvp_close(
        spy, net, params, states, "categorical_softmax", batched=False
    )
    assert set(sizes) == {10}
