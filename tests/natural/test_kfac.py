"""symfisher.natural.kfac: factors against a brute-force computation, exactness where
the Fisher is a Kronecker product, the damped inverse, and K-FAC-preconditioned CG.

Brute force (float64): per-state Jacobians B_n = d theta_n / d s_{l,n} by
``jax.jacfwd`` of the network's remainder from the pre-activation s_l, the dense
output Fisher ``k.fisher(theta_n)``, G = mean_n B_n^T F_n B_n and
A = mean_n [a_n, 1][a_n, 1]^T. Tolerance 1e-10 relative to max |factor|: both
sides sum N = 64 products of O(1) numbers, ~1e-14 each.
"""

import importlib
import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import symfisher as sf
from symfisher import natural

kfac_module = importlib.import_module(
    "symfisher.natural.kfac"
)  # the function shadows it

N, D_IN, HIDDEN = 64, 5, (7, 6)
RTOL = 1e-10


def softplus1(x):
    return jax.nn.softplus(x) + 0.1


# head: (family, outputs of the MLP, theta from the MLP's outputs)
HEADS = {
    "diag_gaussian": ("diag_gaussian", 6, lambda o: o),  # [mu(s), log sigma(s)]
    "diag_gaussian_shared_logstd": ("diag_gaussian", 3, None),  # params["log_std"]
    "normal_logstd": ("normal_logstd", 2, lambda o: o),
    "categorical_softmax": ("categorical_softmax", 4, lambda o: o),
    "gamma": ("gamma", 2, softplus1),
    "beta": ("beta", 2, softplus1),
    "von_mises": (
        "von_mises",
        2,
        lambda o: jnp.stack([o[..., 0], softplus1(o[..., 1])], -1),
    ),
    "student_t": (
        "student_t",
        2,
        lambda o: jnp.stack([o[..., 0], softplus1(o[..., 1])], -1),
    ),
}


def init(sizes, rng):
    return [
        (
            jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a)),
            jnp.asarray(0.1 * rng.standard_normal(b)),
        )
        for a, b in itertools.pairwise(sizes)
    ]


def mlp_from(layers, i, s):
    """The network from layer i's pre-activation s (incl. bias) to the outputs."""
    for w, b in layers[i + 1 :]:
        s = jnp.tanh(s) @ w + b
    return s


def mlp(layers, states):
    """tanh MLP, linear outputs."""
    return mlp_from(layers, 0, states @ layers[0][0] + layers[0][1])


def make(head, rng, transposed=False):
    """(apply_fn, family, params, states, theta_of_outputs)."""
    fam, n_out, out_to_theta = HEADS[head]
    layers = init([D_IN, *HIDDEN, n_out], rng)
    params = {"mlp": layers}
    if out_to_theta is None:
        params["log_std"] = jnp.asarray([-0.3, 0.2, 0.5])

        def out_to_theta(o, p=None):
            ls = params["log_std"] if p is None else p["log_std"]
            return jnp.concatenate([o, jnp.broadcast_to(ls, o.shape)], -1)

        def apply_fn(p, s):
            return out_to_theta(mlp(p["mlp"], s), p)
    else:

        def apply_fn(p, s):
            return out_to_theta(mlp(p["mlp"], s))

    if transposed:  # PyTorch layout: W stored (d_out, d_in), applied as a @ W.T
        params["mlp"] = [(w.T, b) for w, b in layers]

        def apply_fn(p, s):
            o = s
            for i, (w, b) in enumerate(p["mlp"]):
                o = o @ w.T + b
                if i < len(p["mlp"]) - 1:
                    o = jnp.tanh(o)
            return out_to_theta(o)

    states = jnp.asarray(rng.standard_normal((N, D_IN)))
    return apply_fn, fam, params, states, out_to_theta, layers


def brute_force(layers, states, k, out_to_theta):
    """[(A_l, G_l)] by per-state Jacobians and the dense output Fisher."""
    acts, s = [], states
    for i, (w, b) in enumerate(layers):
        a = s if i == 0 else jnp.tanh(s)
        acts.append(a)
        s = a @ w + b
    theta = out_to_theta(s)
    F = k.fisher(theta)
    out = []
    for i, ((w, b), a) in enumerate(zip(layers, acts, strict=True)):
        S = a @ w + b
        B = jax.vmap(
            jax.jacfwd(lambda s_row, i=i: out_to_theta(mlp_from(layers, i, s_row)))
        )(S)
        G = jnp.einsum("npo,npq,nqr->or", B, F, B) / N
        abar = jnp.concatenate([a, jnp.ones((N, 1))], 1)
        out.append((abar.T @ abar / N, G))
    return out


def assert_close(got, want, rtol=RTOL, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= rtol, f"{what}: max |got - want| / max |want| = {err:.3g} > {rtol:g}"


def without_fisher_sqrt(monkeypatch):
    """Kernels without ``fisher_sqrt``: G from one-hot rows times ``fisher``/``fvp``."""

    original = kfac_module.family_kernels

    def patched(family, path=None):
        k = original(family, path)
        names = {n: v for n, v in vars(k).items() if n != "fisher_sqrt"}
        return types.SimpleNamespace(**names)

    monkeypatch.setattr(kfac_module, "family_kernels", patched)


@pytest.mark.parametrize("route", ["fvp", "fisher_sqrt"])
@pytest.mark.parametrize("head", list(HEADS))
def test_factors_equal_brute_force(head, route, monkeypatch):
    if route == "fvp":
        without_fisher_sqrt(monkeypatch)
    rng = np.random.default_rng(sorted(HEADS).index(head))
    apply_fn, fam, params, states, out_to_theta, layers = make(head, rng)
    K = natural.kfac(apply_fn, params, states, fam)
    k = sf.kernels(fam)
    want = brute_force(layers, states, k, out_to_theta)
    assert [lay.weight for lay in K.layers] == [f"['mlp'][{i}][0]" for i in range(3)]
    assert [lay.bias for lay in K.layers] == [f"['mlp'][{i}][1]" for i in range(3)]
    assert len(K.factors) == len(want)
    for i, ((A, G), (A0, G0)) in enumerate(zip(K.factors, want, strict=True)):
        assert_close(A, A0, what=f"A_{i}")
        assert_close(G, G0, what=f"G_{i}")
    if "log_std" in params:  # the exact block of the parameters outside dense layers
        assert K.other == ("['log_std']",)
        theta = apply_fn(params, states)

        def theta_of_ls(ls):
            return apply_fn({**params, "log_std": ls}, states)

        J = jax.jacfwd(theta_of_ls)(params["log_std"])  # (N, P, 3)
        F_o = jnp.einsum("npi,npq,nqj->ij", J, k.fisher(theta), J) / N
        assert_close(K.other_fisher, F_o, what="F_other")
    else:
        assert K.other == () and K.other_fisher.shape == (0, 0)


def test_pytorch_layout_and_jitted_helpers():
    rng = np.random.default_rng(7)
    apply_fn, fam, params, states, out_to_theta, layers = make(
        "gamma", rng, transposed=True
    )
    K = natural.kfac(jax.jit(apply_fn), params, states, fam)
    assert all(lay.transposed for lay in K.layers)
    for (A, G), (A0, G0) in zip(
        K.factors,
        brute_force(layers, states, sf.kernels(fam), out_to_theta),
        strict=True,
    ):
        assert_close(A, A0, what="A")
        assert_close(G, G0, what="G")
    # matvec on the PyTorch layout is the transpose of the (d_in, d_out) one
    v = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape)), params)
    Fv = K.matvec(v)
    (A, G) = K.factors[0]
    V = jnp.concatenate([v["mlp"][0][0].T, v["mlp"][0][1][None]], 0)
    X = A @ V @ G
    assert_close(Fv["mlp"][0][0], X[:-1].T, what="matvec W")
    assert_close(Fv["mlp"][0][1], X[-1], what="matvec b")


# --------------------------------------------------------------------------
# exact where the Fisher is a Kronecker product


def linear_gaussian(rng, dtype=jnp.float64):
    """One dense layer, diag_gaussian head, state-independent log sigma:
    F = blockdiag((1/N) sum s s^T (x) diag(1/sigma^2), 2 I) exactly."""
    params = {
        "W": jnp.asarray(rng.standard_normal((4, 3)), dtype),
        "b": jnp.asarray(rng.standard_normal(3), dtype),
        "log_std": jnp.asarray([-0.4, 0.1, 0.7], dtype),
    }

    def apply_fn(p, s):
        mu = s @ p["W"] + p["b"]
        return jnp.concatenate([mu, jnp.broadcast_to(p["log_std"], mu.shape)], -1)

    states = jnp.asarray(rng.standard_normal((N, 4)) + 0.5, dtype)
    return apply_fn, params, states


def dense_fisher(apply_fn, params, states, family):
    """The exact Fisher over the ravelled params: mean_n J_n^T F_out J_n."""
    flat, unravel = ravel_pytree(params)
    J = jax.jacfwd(lambda f: apply_fn(unravel(f), states))(flat)  # (N, P, n)
    theta = apply_fn(params, states)
    return jnp.einsum(
        "npi,npq,nqj->ij", J, sf.kernels(family).fisher(theta), J
    ) / N, unravel


@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_inverse_is_exact_on_a_kronecker_fisher(damping):
    rng = np.random.default_rng(11)
    apply_fn, params, states = linear_gaussian(rng)
    F, unravel = dense_fisher(apply_fn, params, states, "diag_gaussian")
    K = natural.kfac(apply_fn, params, states, "diag_gaussian", damping)
    _, G = K.factors[0]
    sigma2 = jnp.exp(2 * params["log_std"])
    assert_close(G, jnp.diag(1 / sigma2), what="G = diag(1/sigma^2)")
    g = jnp.asarray(rng.standard_normal(F.shape[0]))
    want = np.linalg.solve(F + damping * np.eye(F.shape[0]), g)
    assert_close(ravel_pytree(K.apply_inverse(unravel(g)))[0], want, 1e-9, "inverse")
    assert_close(ravel_pytree(K.matvec(unravel(g)))[0], F @ g, what="matvec")


def test_pcg_with_exact_kfac_converges_in_one_iteration():
    rng = np.random.default_rng(12)
    apply_fn, params, states = linear_gaussian(rng)
    F, unravel = dense_fisher(apply_fn, params, states, "diag_gaussian")
    g = unravel(jnp.asarray(rng.standard_normal(F.shape[0])))
    fvp = natural.policy_fvp(apply_fn, params, states, "diag_gaussian")
    K = natural.kfac(apply_fn, params, states, "diag_gaussian", 1e-3)
    plain = natural.conjugate_gradient(fvp, g, 1e-3, 50, tol=1e-10)
    pcg = natural.conjugate_gradient(
        fvp, g, 1e-3, 50, tol=1e-10, preconditioner=K.apply_inverse
    )
    want = np.linalg.solve(F + 1e-3 * np.eye(F.shape[0]), ravel_pytree(g)[0])
    assert int(pcg.iterations) == 1 < int(plain.iterations)
    assert_close(ravel_pytree(pcg.x)[0], want, 1e-9, "pcg")


def test_pcg_categorical_float32_undamped_stays_finite():
    """The softmax Fisher is singular (F 1 = 0 on the logits): no NaN, damping 0."""
    rng = np.random.default_rng(13)
    layers = [
        (jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32))
        for w, b in init([D_IN, 16, 16, 5], rng)
    ]

    def apply_fn(p, s):
        return mlp(p, s)

    states = jnp.asarray(rng.standard_normal((N, D_IN)), jnp.float32)
    theta = apply_fn(layers, states)
    actions = jnp.asarray(rng.integers(0, 5, N))
    adv = jnp.asarray(rng.standard_normal(N), jnp.float32)
    lp = sf.kernels("categorical_softmax").log_prob
    g = jax.grad(lambda p: jnp.mean(lp(apply_fn(p, states), actions) * adv))(layers)
    assert theta.dtype == jnp.float32
    fvp = natural.policy_fvp(apply_fn, layers, states, "categorical_softmax")
    K = natural.kfac(apply_fn, layers, states, "categorical_softmax", 0.0)
    x0 = K.apply_inverse(g)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(x0))
    res = jax.jit(
        lambda g: natural.conjugate_gradient(
            fvp, g, 0.0, 30, preconditioner=K.apply_inverse
        )
    )(g)
    x = ravel_pytree(res.x)[0]
    assert x.dtype == jnp.float32
    assert (
        np.isfinite(np.asarray(x)).all()
        and np.isfinite(np.asarray(res.residuals)).all()
    )
    assert float(res.residuals[-1]) < 0.1 * float(res.residuals[0]), res.residuals


# --------------------------------------------------------------------------
# errors


def test_errors_name_the_parameter():
    rng = np.random.default_rng(14)
    states = jnp.asarray(rng.standard_normal((N, 3)))
    params = {"W": jnp.ones((3, 2)), "M": jnp.ones((2, 2)), "log_std": jnp.zeros(2)}

    def left_operand(p, s):  # M used as M @ h: not a dense layer a @ W
        mu = (p["M"] @ jnp.tanh(s @ p["W"]).T).T
        return jnp.concatenate([mu, jnp.broadcast_to(p["log_std"], mu.shape)], -1)

    with pytest.raises(
        ValueError,
        match=r"6 parameters lie outside dense layers .* max_other=5 .* "
        r"params\['M'\] \(shape \(2, 2\)\): used as the left operand",
    ):
        natural.kfac(left_operand, params, states, "diag_gaussian", max_other=5)
    K = natural.kfac(left_operand, params, states, "diag_gaussian", max_other=6)
    assert K.other == ("['M']", "['log_std']") and K.other_fisher.shape == (6, 6)
    assert [lay.weight for lay in K.layers] == ["['W']"]

    def shared(p, s):  # W used twice
        mu = jnp.tanh(s @ p["W"]) @ p["M"] + s @ p["W"]
        return jnp.concatenate([mu, jnp.broadcast_to(p["log_std"], mu.shape)], -1)

    with pytest.raises(
        ValueError, match=r"params\['W'\] \(shape \(3, 2\)\): used 2 times"
    ):
        natural.kfac(shared, params, states, "diag_gaussian", max_other=5)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        natural.kfac(shared, params, states, "diag_gaussian", -1.0)
    with pytest.raises(ValueError, match="must return one floating array"):
        natural.kfac(lambda p, s: (shared(p, s),) * 2, params, states, "diag_gaussian")
    K = natural.kfac(shared, params, states, "diag_gaussian", 0.1)
    with pytest.raises(ValueError, match="g must have the same tree structure"):
        K.apply_inverse([params["W"]])
    with pytest.raises(TypeError, match=r"params\['n'\] must be a floating array"):
        natural.kfac(shared, {**params, "n": jnp.ones(2, int)}, states, "diag_gaussian")


def test_many_logits_use_the_fvp_route():
    """P > 64: F_n U_n through the kernels' fvp instead of the dense Fisher."""
    assert kfac_module._DENSE_P < 70
    rng = np.random.default_rng(15)
    layers = init([D_IN, 6, 70], rng)
    states = jnp.asarray(rng.standard_normal((N, D_IN)))
    K = natural.kfac(mlp, layers, states, "categorical_softmax")
    want = brute_force(layers, states, sf.kernels("categorical_softmax"), lambda o: o)
    for (A, G), (A0, G0) in zip(K.factors, want, strict=True):
        assert_close(A, A0, what="A")
        assert_close(G, G0, what="G")


@pytest.mark.parametrize("reach", [[0, 2], [1, 2], [0, 1, 2, 3], []])
def test_restrict_keeps_the_reached_rows_and_columns(reach):
    """The output Fisher cut to the reached columns: a slice or a take, both exact."""
    F = jnp.arange(2 * 4 * 4.0).reshape(2, 4, 4)
    got = kfac_module._restrict(F, np.asarray(reach, int), 4)
    want = np.asarray(F)[:, reach][:, :, reach]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("head", ["diag_gaussian", "diag_gaussian_shared_logstd"])
def test_dense_route_beyond_the_elementwise_size(head, monkeypatch):
    """More reached columns than ``_ELEMENTWISE_R``: F U as a batched product, same G."""
    monkeypatch.setattr(kfac_module, "_ELEMENTWISE_R", 0)
    test_factors_equal_brute_force(head, "fvp", monkeypatch)
