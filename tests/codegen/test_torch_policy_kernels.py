"""PyTorch policy kernels (generated/torch/) against their JAX twins (generated/).

The hand-written policy templates have PyTorch twins
(``templates/policy_*_torch.py``); every function must give the JAX module's
numbers in float64 (1e-12 relative, floor 1e-12 of the largest entry).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import symfisher as sf

jax.config.update("jax_enable_x64", True)

RTOL = 1e-12


def _inputs(name):
    rng = np.random.default_rng(7)
    B = 6
    if name == "linear_softmax":
        theta = rng.normal(size=(4, 3))
        states = rng.normal(size=(B, 3))
        actions = rng.integers(0, 4, B)
    elif name == "linear_gaussian":
        theta = rng.normal(size=(2, 5)) * 0.5
        states = rng.normal(size=(B, 3))
        actions = rng.normal(size=(B, 2))
    else:  # tabular_softmax; state 1 is never visited
        theta = rng.normal(size=(3, 4))
        states = np.array([0, 2, 2, 0, 2, 0])
        actions = rng.integers(0, 4, B)
    weights = rng.uniform(0.1, 1.0, B)
    other = theta + 0.3 * rng.normal(size=theta.shape)
    v = rng.normal(size=theta.shape)
    return theta, states, actions, weights, other, v


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    np.testing.assert_allclose(
        got, want, rtol=RTOL, atol=1e-12 * np.max(np.abs(want)), err_msg=what
    )


@pytest.mark.parametrize(
    "name", ["linear_softmax", "linear_gaussian", "tabular_softmax"]
)
def test_torch_policy_kernels_equal_jax(name):
    j, t = sf.kernels(name), sf.kernels(name, backend="torch")
    theta, states, actions, weights, other, v = _inputs(name)
    T = lambda a: torch.as_tensor(a)  # noqa: E731
    cases = [
        (fn, (theta, states, actions))
        for fn in ("log_prob", "score", "hessian_log_prob")
    ]
    cases += [("fisher_state", (theta, states))]
    cases += [("fisher", (theta, states, None))]  # uniform weights
    w = weights
    cases += [
        (fn, (theta, states, w))
        for fn in ("fisher", "fisher_diag", "fisher_sqrt", "kfac_fisher")
    ]
    cases += [("fvp", (theta, states, v, w)), ("kl", (theta, other, states, w))]
    cases += [("natural_gradient", (theta, states, v, lam, w)) for lam in (0.0, 0.1)]
    for fn, args in cases:
        # jitted (one compilation per function, not per operation); None and
        # the damping stay Python values
        arrays = [
            i for i, a in enumerate(args) if not (a is None or isinstance(a, float))
        ]

        def call(*xs, fn=fn, args=args, arrays=arrays):
            full = list(args)
            for i, x in zip(arrays, xs, strict=True):
                full[i] = x
            return getattr(j, fn)(*full)

        want = jax.jit(call)(*[jnp.asarray(args[i]) for i in arrays])
        got = getattr(t, fn)(
            *[a if a is None or isinstance(a, float) else T(a) for a in args]
        )
        _close(got.numpy(), want, f"{name}.{fn}")
    for g, w in zip(t.kfac(T(theta), T(states)), j.kfac(theta, states), strict=True):
        _close(g.numpy(), w, f"{name}.kfac")
    gen = torch.Generator().manual_seed(0)
    draw = t.sample(T(theta), T(states), generator=gen)
    assert draw.shape == tuple(actions.shape)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda t: t.fisher(torch.ones(4, 3, dtype=torch.int64), torch.ones(2, 3)),
            TypeError,
            "theta must be a floating",
        ),
        (
            lambda t: t.fisher(torch.ones(4), torch.ones(2, 3)),
            ValueError,
            "theta must be a 2-D tensor",
        ),
        (
            lambda t: t.fisher(torch.ones(4, 3), torch.ones(2, 2)),
            ValueError,
            r"states must be \(B, 3\)",
        ),
        (
            lambda t: t.fisher(torch.ones(4, 3), torch.ones(2, 3, device="meta")),
            ValueError,
            "states is on device meta",
        ),
        (
            lambda t: t.log_prob(
                torch.ones(4, 3), torch.ones(2, 3), torch.tensor([0, 4])
            ),
            ValueError,
            r"actions rows \[1\] are outside",
        ),
        (
            lambda t: t.log_prob(
                torch.ones(4, 3), torch.ones(2, 3), torch.tensor([0.0, 1.0])
            ),
            TypeError,
            "actions must be an integer",
        ),
        (
            lambda t: t.fvp(torch.ones(4, 3), torch.ones(2, 3), torch.ones(3, 4)),
            ValueError,
            "v has shape",
        ),
        (
            lambda t: t.fisher(
                torch.ones(4, 3), torch.ones(2, 3), torch.tensor([-1.0, 1.0])
            ),
            ValueError,
            r"weights rows \[0\] are negative",
        ),
        (
            lambda t: t.natural_gradient(
                torch.ones(4, 3), torch.ones(2, 3), torch.ones(4, 3), -1.0
            ),
            ValueError,
            "damping must be finite",
        ),
        (
            lambda t: t.fisher(
                torch.ones(4, 3), torch.tensor([[1.0, float("nan"), 0.0]])
            ),
            ValueError,
            r"states rows \[0\] are not finite",
        ),
    ],
)
def test_torch_policy_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call(sf.kernels("linear_softmax", backend="torch"))


def test_torch_policy_fvp_under_vmap_and_autograd():
    t = sf.kernels("linear_softmax", backend="torch")
    theta, states, _, _, _, v = _inputs("linear_softmax")
    theta, states, v = (
        torch.as_tensor(theta),
        torch.as_tensor(states),
        torch.as_tensor(v),
    )
    vs = torch.stack([v, 2 * v])
    out = torch.func.vmap(lambda u: t.fvp(theta, states, u))(vs)
    torch.testing.assert_close(out[1], 2 * t.fvp(theta, states, v))
    q = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(t.kl(theta, q, states), q, create_graph=True)
    (hv,) = torch.autograd.grad((g * v).sum(), q)
    torch.testing.assert_close(hv, t.fvp(theta, states, v), rtol=1e-10, atol=1e-12)
