"""The generated ``entropy`` kernels against independent references.

References: scipy.stats ``.entropy()``, numpyro's ``.entropy()``, closed forms
written here by hand, and (tanh-squashed Gaussian) scipy quadrature of the
change-of-variables formula. Also: extreme points (zero probabilities, -inf
logits, tiny and huge scales), float32, batches, gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as sps

import symfisher as sf

LOG2PIE = np.log(2 * np.pi * np.e)


def _normal(mu, s):
    return sps.norm(mu, s).entropy()


#: family -> (points in parameter order, reference H(theta), rtol)
SCIPY = {
    "normal": ([(0.3, 0.5), (-1.0, 2.0)], lambda m, s: _normal(m, s), 1e-12),
    "normal_var": ([(0.3, 0.25), (1.0, 4.0)], lambda m, v: _normal(m, v**0.5), 1e-12),
    "normal_logstd": (
        [(0.3, -0.7), (1.0, 1.1)],
        lambda m, w: _normal(m, np.exp(w)),
        1e-12,
    ),
    "exponential": (
        [(0.5,), (3.0,)],
        lambda lam: sps.expon(scale=1 / lam).entropy(),
        1e-12,
    ),
    "gamma": (
        [(0.7, 2.0), (5.0, 0.5)],
        lambda a, b: sps.gamma(a, scale=1 / b).entropy(),
        1e-10,
    ),
    "beta": ([(0.7, 2.0), (5.0, 3.5)], lambda a, b: sps.beta(a, b).entropy(), 1e-10),
    "laplace": (
        [(0.3, 0.5), (-1.0, 3.0)],
        lambda m, b: sps.laplace(m, b).entropy(),
        1e-12,
    ),
    "student_t": (
        [(0.3, 0.5), (-1.0, 3.0)],
        lambda m, s: sps.t(4, m, s).entropy(),
        1e-9,
    ),
    "von_mises": (
        [(0.3, 0.5), (-1.0, 6.0)],
        lambda m, k: sps.vonmises(k, m).entropy(),
        1e-9,
    ),
    "uniform": ([(0.5,), (7.0,)], lambda t: sps.uniform(0, t).entropy(), 1e-12),
    "poisson": ([(0.5,), (7.0,)], lambda lam: sps.poisson(lam).entropy(), 1e-9),
    "poisson_log": (
        [(-0.5,), (2.0,)],
        lambda e: sps.poisson(np.exp(e)).entropy(),
        1e-9,
    ),
    "bernoulli": ([(0.5,), (0.01,)], lambda p: sps.bernoulli(p).entropy(), 1e-12),
    "bernoulli_logit": (
        [(0.0,), (-4.0,), (6.0,)],
        lambda e: sps.bernoulli(special.expit(e)).entropy(),
        1e-12,
    ),
}


@pytest.mark.parametrize("name", list(SCIPY))
def test_entropy_matches_scipy(name):
    pts, ref, rtol = SCIPY[name]
    k = sf.kernels(name)
    got = np.asarray(jax.jit(k.entropy)(jnp.asarray(pts, dtype=jnp.float64)))
    want = np.array([ref(*p) for p in pts])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12)


def test_numpyro_entropy_agrees():
    dist = pytest.importorskip("numpyro.distributions")
    cases = {
        "normal": ((0.3, 0.7), dist.Normal(0.3, 0.7)),
        "exponential": ((2.5,), dist.Exponential(2.5)),
        "gamma": ((1.5, 0.5), dist.Gamma(1.5, 0.5)),
        "beta": ((0.6, 1.7), dist.Beta(0.6, 1.7)),
        "laplace": ((0.0, 2.0), dist.Laplace(0.0, 2.0)),
    }
    for name, (theta, d) in cases.items():
        got = float(sf.kernels(name).entropy(jnp.asarray(theta)))
        assert got == pytest.approx(float(d.entropy()), rel=1e-10), name


def _tanh_reference(mu, s):
    """H of tanh(u), u ~ N(mu, s): H(u) + E[log(1 - tanh(u)^2)] by scipy quadrature."""

    def f(u):
        return sps.norm.pdf(u, mu, s) * (2 * (np.log(2) - u - np.logaddexp(0, -2 * u)))

    extra, _ = integrate.quad(f, mu - 40 * s, mu + 40 * s, limit=200, epsabs=1e-13)
    return _normal(mu, s) + extra


def test_tanh_gaussian_entropy_by_quadrature_matches_reference():
    k = sf.kernels("tanh_gaussian")
    # quadrature in the latent u: nodes never round to x = +-1
    assert k.PROVENANCE["entropy"].startswith("quadrature: ")
    assert "latent: x = tanh(u)" in k.PROVENANCE["entropy"]
    assert k.QUADRATURE_ACCURACY["entropy"] <= 1e-10
    # inside the stated ranges, at a saturating corner, and far beyond them
    # (the nodes follow mu and sigma: the accuracy does not depend on them)
    pts = [(0.0, 1.0), (0.8, 0.5), (-1.5, 2.0), (2.0, 4.0), (3.0, 6.0), (0.0, 0.1)]
    got = np.asarray(jax.jit(k.entropy)(jnp.asarray(pts)))
    want = np.array([_tanh_reference(*p) for p in pts])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    # float32: saturated draws (|u| > 9 rounds tanh to 1) do not spoil it
    h32 = np.asarray(k.entropy(jnp.asarray(pts, dtype=jnp.float32)))
    np.testing.assert_allclose(h32, want, rtol=1e-5, atol=1e-5)


def test_categorical_entropy_closed_simplex_and_extremes():
    k = sf.kernels("categorical")
    p = np.array([[0.2, 0.3], [0.0, 0.5], [1e-300, 0.5], [0.0, 0.0]])
    full = np.concatenate([p, 1 - p.sum(axis=1, keepdims=True)], axis=1)
    got = np.asarray(k.entropy(jnp.asarray(p)))
    np.testing.assert_allclose(got, special.entr(full).sum(axis=1), rtol=1e-12, atol=0)
    assert got[-1] == 0.0  # a point mass
    assert np.isnan(np.asarray(k.entropy(jnp.asarray([0.7, 0.5])))).all()


def test_softmax_entropy_logsumexp_stable():
    k = sf.kernels("categorical_softmax")
    z = np.array(
        [
            [0.1, -0.3, 2.0],
            [-np.inf, 0.0, 1.0],
            [-np.inf, -np.inf, 3.0],
            [800.0, 0.0, -800.0],
            [-1e4, 5.0, 5.0],
        ]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.softmax(np.where(np.isinf(z), -1e308, z), axis=1)
    got = np.asarray(k.entropy(jnp.asarray(z)))
    np.testing.assert_allclose(
        got, special.entr(p).sum(axis=1), rtol=1e-12, atol=1e-300
    )
    assert np.all(np.isfinite(got))
    g = jax.grad(lambda t: k.entropy(t))(jnp.asarray(z[1]))
    assert np.all(np.isfinite(np.asarray(g)))
    # dH/dz_k = -p_k (log p_k + H): zero for a class of probability 0
    p1 = special.softmax([0.0, 1.0])
    h1 = special.entr(p1).sum()
    np.testing.assert_allclose(
        np.asarray(g), np.r_[0.0, -p1 * (np.log(p1) + h1)], rtol=1e-10, atol=1e-15
    )


def test_gaussian_entropy_half_log_det():
    mu = np.array([0.3, -1.0, 2.0])
    omega = np.array([-0.5, 0.2, 1.5])
    got = float(sf.kernels("diag_gaussian").entropy(jnp.asarray(np.r_[mu, omega])))
    sigma2 = np.exp(2 * omega)
    assert got == pytest.approx(
        0.5 * np.log(np.prod(2 * np.pi * np.e * sigma2)), rel=1e-12
    )
    l11, l21, l22 = -0.4, 0.8, 0.6
    L = np.array([[np.exp(l11), 0.0], [l21, np.exp(l22)]])
    got = float(
        sf.kernels("full_gaussian").entropy(jnp.asarray([0.1, 0.2, l11, l21, l22]))
    )
    want = sps.multivariate_normal(np.zeros(2), L @ L.T).entropy()
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("sigma", [1e-30, 1e-8, 1e8, 1e30])
def test_extreme_scales(sigma):
    got = float(sf.kernels("normal").entropy(jnp.asarray([0.0, sigma])))
    assert got == pytest.approx(0.5 * LOG2PIE + np.log(sigma), rel=1e-13)
    got = float(sf.kernels("normal_logstd").entropy(jnp.asarray([0.0, np.log(sigma)])))
    assert got == pytest.approx(0.5 * LOG2PIE + np.log(sigma), rel=1e-13)


@pytest.mark.parametrize(
    "name, theta",
    [
        ("normal", [0.3, 0.7]),
        ("von_mises", [0.3, 2.0]),
        ("student_t", [0.1, 1.3]),
        ("poisson", [3.0]),
        ("tanh_gaussian", [0.4, 0.8]),
        ("categorical_softmax", [0.1, -0.3, 2.0]),
        ("categorical", [0.2, 0.3]),
    ],
)
def test_float32_batched_and_grad(name, theta):
    k = sf.kernels(name)
    h = jax.jit(k.entropy)
    t64 = jnp.asarray(theta, dtype=jnp.float64)
    h64 = float(h(t64))
    h32 = h(t64.astype(jnp.float32))
    assert h32.dtype == jnp.float32 and h32.shape == ()
    assert float(h32) == pytest.approx(h64, rel=1e-5, abs=1e-5)
    batch = jnp.stack([t64, t64 * 1.1, t64 * 0.9])  # (3, P)
    hb = h(batch[:, None, :])  # (3, 1): leading axes broadcast
    assert hb.shape == (3, 1)
    one = [float(h(b)) for b in batch]
    np.testing.assert_allclose(np.asarray(hb)[:, 0], one, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(jax.vmap(h)(batch)), one, rtol=1e-13)
    g = np.asarray(jax.jit(jax.grad(k.entropy))(t64))
    eps = 1e-6
    steps = eps * np.eye(len(theta))
    hp = np.asarray(h(t64 + steps[:, None, :] * np.array([1.0, -1.0])[:, None]))
    np.testing.assert_allclose(
        g, (hp[:, 0] - hp[:, 1]) / (2 * eps), rtol=1e-6, atol=1e-8
    )


def _policy_states(rng, B, d):
    return jnp.asarray(rng.normal(size=(B, d)))


def test_policy_entropies_per_state():
    rng = np.random.default_rng(0)
    W = jnp.asarray(rng.normal(size=(3, 4)))
    S = _policy_states(rng, 5, 4)
    got = np.asarray(sf.kernels("linear_softmax").entropy(W, S))
    p = special.softmax(np.asarray(S) @ np.asarray(W).T, axis=1)
    np.testing.assert_allclose(got, special.entr(p).sum(axis=1), rtol=1e-12)
    assert got.shape == (5,)

    T = np.asarray(rng.normal(size=(4, 3)))
    T[2, 0] = -1e4  # an action of probability 0 in state 2
    s = jnp.asarray([0, 2, 2, 3])
    got = np.asarray(sf.kernels("tabular_softmax").entropy(jnp.asarray(T), s))
    p = special.softmax(T[np.asarray(s)], axis=1)
    np.testing.assert_allclose(got, special.entr(p).sum(axis=1), rtol=1e-12)

    m, n = 2, 3
    theta = np.asarray(rng.normal(size=(m, n + 2)))
    got = np.asarray(
        sf.kernels("linear_gaussian").entropy(jnp.asarray(theta), S[:, :n])
    )
    cov = np.diag(np.exp(2 * theta[:, -1]))
    want = sps.multivariate_normal(np.zeros(m), cov).entropy()
    np.testing.assert_allclose(got, np.full(5, want), rtol=1e-12)
    g = jax.grad(lambda t: jnp.sum(sf.kernels("tabular_softmax").entropy(t, s)))(
        jnp.asarray(T)
    )
    assert np.all(np.isfinite(np.asarray(g)))
