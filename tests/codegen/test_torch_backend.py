"""PyTorch kernels as a PyTorch user meets them: loading, dtypes, autograd,
vmap, bad input, torch.distributions, freshness of generated/torch/."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import symfisher as sf
from symfisher import cli

D = torch.distributions
F64 = torch.float64


def k(name):
    return sf.kernels(name, backend="torch")


IMPORT_CHECK = textwrap.dedent(
    """
    import sys
    import symfisher as sf
    k = sf.kernels("gamma", backend="torch")
    import torch
    k.fisher(torch.tensor([2.0, 3.0]))
    print(k.__file__)
    print(sorted(m for m in ("sympy", "jax") if m in sys.modules))
    """
)


def test_torch_kernels_load_without_sympy_or_jax():
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, check=True
    )
    kfile, loaded = out.stdout.strip().splitlines()
    assert kfile.endswith("generated/torch/gamma.py")
    assert loaded == "[]"


def test_torch_modules_name_no_jax():
    """Every snippet the emitters write goes through the backend: a JAX name
    (a new kernel printed with a literal ``jnp.``) fails here, not in a user's hands."""
    from symfisher.kernels import catalog_dir

    for path in sorted((catalog_dir() / "torch").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for jax_name in ("jnp.", "jss.", "jax.", "import jax"):
            assert jax_name not in text, f"{path.name} names {jax_name}"


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend must be one of jax, torch"):
        sf.kernels("gamma", backend="numpy")
    with pytest.raises(ValueError, match="backend must be one of"):
        sf.module_text("gamma", backend="tf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_the_input(dtype):
    g = k("gamma")
    theta = torch.tensor([[2.0, 3.0], [0.5, 1.5]], dtype=dtype)
    for out in (
        g.log_prob(theta, torch.tensor(0.7)),
        g.fisher(theta),
        g.fvp(theta, torch.ones(2, dtype=dtype)),
        g.natural_gradient(theta, torch.ones(2, dtype=dtype), 0.1),
        g.kl(theta, theta.flip(0)),
        k("categorical_softmax").fvp(theta, theta),
    ):
        assert out.dtype == dtype


def test_fvp_is_double_backprop_of_kl_and_vmap_agrees():
    """F v from the kernel = Hessian-vector product of KL(theta || .) at theta."""
    for name, theta in [
        ("von_mises", torch.tensor([0.3, 2.5], dtype=F64)),
        ("diag_gaussian", torch.tensor([0.3, -1.0, 0.2, -0.4], dtype=F64)),
        ("categorical_softmax", torch.tensor([0.3, -1.0, 2.0], dtype=F64)),
    ]:
        m = k(name)
        v = torch.linspace(-1, 1, theta.shape[-1], dtype=F64)
        q = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m.kl(theta, q), q, create_graph=True)
        (hv,) = torch.autograd.grad(g @ v, q)
        torch.testing.assert_close(m.fvp(theta, v), hv, rtol=1e-10, atol=1e-12)
        batch = torch.stack([theta, theta * 0.5])
        torch.testing.assert_close(
            torch.func.vmap(m.fvp)(batch, torch.stack([v, v])), m.fvp(batch, v)
        )
        torch.testing.assert_close(
            torch.func.vmap(m.natural_gradient)(batch, torch.stack([v, v])),
            m.natural_gradient(batch, v),
        )
        grad = torch.func.grad(lambda t, m=m, th=theta: m.kl(th, t))(theta * 0.9)
        assert torch.isfinite(grad).all()


def test_quadrature_kernels_under_autograd_and_vmap():
    m = k("student_t")
    theta = torch.tensor([[0.2, 1.3], [-0.5, 0.7]], dtype=F64, requires_grad=True)
    F = m.fisher(theta)
    F.sum().backward()
    assert torch.isfinite(theta.grad).all()
    torch.testing.assert_close(torch.func.vmap(m.fisher)(theta.detach()), F.detach())


# -- bad input: the JAX kernels' errors, naming the parameter ----------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: k("gamma").fisher(torch.tensor([2, 3])),
            TypeError,
            "theta must be a floating",
        ),
        (lambda: k("gamma").fisher([2, 3]), TypeError, "theta must be a floating"),
        (
            lambda: k("gamma").fisher(torch.ones(3)),
            ValueError,
            r"theta.shape\[-1\] must be 2",
        ),
        (
            lambda: k("gamma").fisher(torch.tensor(1.0)),
            ValueError,
            r"theta.shape\[-1\] must be 2",
        ),
        (
            lambda: k("gamma").fvp(torch.ones(2), torch.ones(3)),
            ValueError,
            r"v.shape\[-1\] must be 2",
        ),
        (
            lambda: k("gamma").fvp(torch.ones(2), torch.ones(2, dtype=torch.int64)),
            TypeError,
            "v must be a floating",
        ),
        (
            lambda: k("gamma").kl(torch.ones(2), torch.tensor([1, 1])),
            TypeError,
            "theta_q must be a floating",
        ),
        (
            lambda: k("gamma").natural_gradient(torch.ones(2), torch.ones(2), -1.0),
            ValueError,
            "damping must be finite and >= 0",
        ),
        (
            lambda: k("gamma").log_prob(
                torch.ones(2), torch.ones(1, dtype=torch.complex64)
            ),
            TypeError,
            "x must be a real",
        ),
        (
            lambda: k("categorical_softmax").fvp(torch.ones(1), torch.ones(1)),
            ValueError,
            r"theta.shape\[-1\] must be at least 2",
        ),
        (
            lambda: k("diag_gaussian").fisher(torch.ones(3)),
            ValueError,
            "positive multiple of 2",
        ),
        # another device than theta's ('meta' stands for a GPU here)
        (
            lambda: k("gamma").fvp(torch.ones(2), torch.ones(2, device="meta")),
            ValueError,
            "v is on device meta",
        ),
        (
            lambda: k("gamma").kl(torch.ones(2), torch.ones(2, device="meta")),
            ValueError,
            "theta_q is on device meta",
        ),
        (
            lambda: k("gamma").log_prob(torch.ones(2), torch.ones(2, device="meta")),
            ValueError,
            "x is on device meta",
        ),
        (
            lambda: k("categorical_softmax").kl(
                torch.ones(3), torch.ones(3, device="meta")
            ),
            ValueError,
            "theta_q is on device meta",
        ),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_outside_the_domain_is_nan_as_in_jax():
    g = k("gamma")
    out = g.fisher(torch.tensor([[-1.0, 2.0], [2.0, 3.0]], dtype=F64))
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()
    assert [c.tolist() for c in g.param_checks(torch.tensor([-1.0, 2.0]))] == [
        False,
        True,
    ]


# -- peer: torch.distributions -----------------------------------------------------
LOG_PROB = [
    ("normal", [0.3, 1.7], lambda t: D.Normal(t[..., 0], t[..., 1]), [-2.0, 0.3, 4.0]),
    ("gamma", [2.5, 1.5], lambda t: D.Gamma(t[..., 0], t[..., 1]), [0.01, 1.0, 7.0]),
    ("beta", [0.7, 2.5], lambda t: D.Beta(t[..., 0], t[..., 1]), [0.01, 0.4, 0.99]),
    ("poisson", [3.5], lambda t: D.Poisson(t[..., 0]), [0.0, 2.0, 11.0]),
    (
        "exponential",
        [1.3],
        lambda t: D.Exponential(t[..., 0]),
        [1e-3, 0.5, 9.0],
    ),  # x > 0 here, x >= 0 in torch
    (
        "laplace",
        [0.3, 1.7],
        lambda t: D.Laplace(t[..., 0], t[..., 1]),
        [-2.0, 0.3, 4.0],
    ),
    ("bernoulli", [0.3], lambda t: D.Bernoulli(probs=t[..., 0]), [0.0, 1.0]),
    ("bernoulli_logit", [-1.3], lambda t: D.Bernoulli(logits=t[..., 0]), [0.0, 1.0]),
    (
        "categorical_softmax",
        [0.3, -1.0, 2.0],
        lambda t: D.Categorical(logits=t),
        [0.0, 1.0, 2.0],
    ),
    (
        "student_t",
        [0.3, 1.7],
        lambda t: D.StudentT(4.0, t[..., 0], t[..., 1]),
        [-20.0, 0.3, 4.0],
    ),
    ("uniform", [2.5], lambda t: D.Uniform(0.0, t[..., 0]), [0.1, 2.4]),
    (
        "normal_var",
        [0.3, 2.9],
        lambda t: D.Normal(t[..., 0], t[..., 1].sqrt()),
        [-2.0, 0.3, 4.0],
    ),
    (
        "normal_logstd",
        [0.3, -0.7],
        lambda t: D.Normal(t[..., 0], t[..., 1].exp()),
        [-2.0, 0.3, 4.0],
    ),
    ("poisson_log", [1.2], lambda t: D.Poisson(t[..., 0].exp()), [0.0, 2.0, 11.0]),
    (
        "tanh_gaussian",
        [0.3, 0.8],
        lambda t: D.TransformedDistribution(
            D.Normal(t[..., 0], t[..., 1]), D.TanhTransform()
        ),
        [-0.9, 0.1, 0.95],
    ),
]


@pytest.mark.parametrize(
    "name, theta, dist, xs", LOG_PROB, ids=[c[0] for c in LOG_PROB]
)
def test_log_prob_equals_torch_distributions(name, theta, dist, xs):
    theta = torch.tensor(theta, dtype=F64)
    x = torch.tensor(xs, dtype=F64)
    torch.testing.assert_close(
        k(name).log_prob(theta, x), dist(theta).log_prob(x), rtol=1e-12, atol=1e-13
    )


def test_von_mises_log_prob_is_more_accurate_than_torch_distributions():
    """torch's VonMises.log_prob normalises with a float32-grade polynomial for
    log I0 (relative error 1.6e-8 measured here); ours is exact to 1e-14."""
    import mpmath

    mu, kappa, xs = 0.4, 2.5, [-3.0, 0.4, 2.0]
    want = [
        float(
            kappa * mpmath.cos(x - mu)
            - mpmath.log(2 * mpmath.pi * mpmath.besseli(0, kappa))
        )
        for x in xs
    ]
    theta, x = torch.tensor([mu, kappa], dtype=F64), torch.tensor(xs, dtype=F64)
    ours = k("von_mises").log_prob(theta, x)
    theirs = D.VonMises(theta[0], theta[1]).log_prob(x)
    want = torch.tensor(want, dtype=F64)
    torch.testing.assert_close(ours, want, rtol=1e-14, atol=0)
    rel = ((theirs - want) / want).abs().max().item()
    assert 1e-9 < rel < 1e-7, rel


KL = [
    ("normal", [0.3, 1.7], [-0.4, 0.6], lambda t: D.Normal(t[..., 0], t[..., 1])),
    ("gamma", [2.5, 1.5], [0.7, 3.0], lambda t: D.Gamma(t[..., 0], t[..., 1])),
    ("beta", [0.7, 2.5], [3.0, 1.2], lambda t: D.Beta(t[..., 0], t[..., 1])),
    ("poisson", [3.5], [0.4], lambda t: D.Poisson(t[..., 0])),
    ("exponential", [1.3], [0.2], lambda t: D.Exponential(t[..., 0])),
    ("laplace", [0.3, 1.7], [-0.4, 0.6], lambda t: D.Laplace(t[..., 0], t[..., 1])),
    ("bernoulli", [0.3], [0.8], lambda t: D.Bernoulli(probs=t[..., 0])),
    (
        "categorical_softmax",
        [0.3, -1.0, 2.0],
        [1.0, 0.0, -2.0],
        lambda t: D.Categorical(logits=t),
    ),
    (
        "normal_logstd",
        [0.3, -0.7],
        [-0.4, 0.6],
        lambda t: D.Normal(t[..., 0], t[..., 1].exp()),
    ),
    ("poisson_log", [1.2], [-0.3], lambda t: D.Poisson(t[..., 0].exp())),
    (
        "diag_gaussian",
        [0.3, -1.0, 0.2, -0.4],
        [0.1, 0.5, -0.3, 0.7],
        lambda t: D.Independent(D.Normal(t[..., :2], t[..., 2:].exp()), 1),
    ),
    ("uniform", [2.0], [3.5], lambda t: D.Uniform(0.0, t[..., 0])),
    (
        "categorical",
        [0.2, 0.5],
        [0.6, 0.1],
        lambda t: D.Categorical(probs=torch.cat([t, 1 - t.sum(-1, keepdim=True)], -1)),
    ),
]


@pytest.mark.parametrize("name, p, q, dist", KL, ids=[c[0] for c in KL])
def test_kl_equals_torch_distributions(name, p, q, dist):
    p, q = torch.tensor(p, dtype=F64), torch.tensor(q, dtype=F64)
    want = D.kl_divergence(dist(p), dist(q))
    torch.testing.assert_close(k(name).kl(p, q), want, rtol=1e-12, atol=1e-14)


def test_uniform_kl_is_infinite_when_the_support_grows():
    """KL(U(0, a) ‖ U(0, b)) = +oo for a > b: the derived KL is piecewise."""
    p, q = torch.tensor([3.5], dtype=F64), torch.tensor([2.0], dtype=F64)
    want = D.kl_divergence(D.Uniform(0.0, p[0]), D.Uniform(0.0, q[0]))
    assert math.isinf(want)
    assert math.isinf(k("uniform").kl(p, q))
    assert math.isinf(sf.kernels("uniform").kl(p.numpy(), q.numpy()))


def test_entropy_equals_torch_distributions():
    """entropy against torch.distributions wherever torch implements it.

    torch raises NotImplementedError for Poisson (no E[log x!]) and has no
    entropy for the tanh-squashed Gaussian; those are compared with the JAX
    twins in test_torch_kernels and with scipy in test_entropy_kernels.
    """
    compared = []
    for name, theta, dist, _ in LOG_PROB:
        t = torch.tensor(theta, dtype=F64)
        try:
            want = dist(t).entropy()
        except NotImplementedError:
            continue
        torch.testing.assert_close(k(name).entropy(t), want, rtol=1e-12, atol=1e-13)
        compared.append(name)
    assert len(compared) >= 10, compared


def test_check_reports_a_stale_torch_module(tmp_path, capsys):
    out = tmp_path / "t"
    assert (
        cli.main(["generate", "--backend", "torch", "normal", "--out", str(out)]) == 0
    )
    text = (out / "normal.py").read_text()
    assert "import torch" in text and "jax" not in text
    (out / "normal.py").write_text(text.replace("math.nan", "0.0"))
    capsys.readouterr()
    assert (
        cli.main(
            ["generate", "--backend", "torch", "normal", "--check", "--out", str(out)]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "normal.py (differs)" in err and "symfisher generate --backend torch" in err


def test_user_family_generates_for_torch(tmp_path):
    fam = sf.family("normal")
    path = sf.generate(fam, tmp_path, backend="torch")
    m = sf.kernels("normal", path=tmp_path, backend="torch")
    assert path.read_text().count("import torch") == 1
    assert math.isclose(
        float(
            m.log_prob(
                torch.tensor([0.0, 1.0], dtype=F64), torch.tensor(0.0, dtype=F64)
            )
        ),
        -0.5 * math.log(2 * math.pi),
        rel_tol=1e-15,
    )
    assert np.isfinite(m.fisher(torch.tensor([0.0, 1.0])).numpy()).all()


# -- the module's own special functions -------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_helper_is_float64_accurate(n):
    """torch.special.polygamma(1, x) is off by up to 5e-10; the helper is not."""
    import mpmath

    xs = [1e-3, 0.3, 1.0, 1.4616321449683622, 2.5, 7.3, 99.0, 1e4]
    got = k("gamma")._polygamma(n, torch.tensor(xs, dtype=F64))
    want = torch.tensor([float(mpmath.polygamma(n, x)) for x in xs], dtype=F64)
    torch.testing.assert_close(got, want, rtol=1e-15, atol=0)
    if n == 1:  # what the helper replaces
        err = (
            (torch.special.polygamma(1, torch.tensor(xs, dtype=F64)) - want) / want
        ).abs()
        assert err.max().item() > 1e-10


def test_softplus_logsumexp_max_min_helpers():
    m = k("gamma")
    z = torch.tensor([-800.0, -30.0, 0.0, 20.0, 30.0, 800.0], dtype=F64)
    want = torch.tensor(
        [
            0.0,
            math.log1p(math.exp(-30.0)),
            math.log(2.0),
            20.0 + math.log1p(math.exp(-20.0)),
            30.0 + math.log1p(math.exp(-30.0)),
            800.0,
        ],
        dtype=F64,
    )
    torch.testing.assert_close(m._softplus(z), want, rtol=1e-15, atol=1e-300)
    # log-sum-exp, as jax.scipy.special.logsumexp, is accurate to 1e-16 of the
    # largest term (a tiny result, log(1 + e^-30), only to 1e-3 relative in both)
    torch.testing.assert_close(m._logsumexp(0.0, z), want, rtol=1e-15, atol=1e-15)
    assert m._maximum(0.0, z).tolist() == [0.0, 0.0, 0.0, 20.0, 30.0, 800.0]
    assert m._minimum(z, 1.0).tolist() == [-800.0, -30.0, 0.0, 1.0, 1.0, 1.0]
    # softplus' derivative is the logistic function, also at 0 and far out
    zg = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m._softplus(zg).sum(), zg)
    torch.testing.assert_close(g, torch.sigmoid(z), rtol=1e-15, atol=1e-300)
