"""Generated ``log_prob`` kernels against ``scipy.stats``, an independent implementation.

Every catalog family is compared with SciPy's log-density (or log-mass) at
seeded random valid points, in float64 (rtol 1e-12), batched (leading axes
broadcast) and in float32. The structured families are also run at sizes other
than the SymPy default (K = 5 classes, d = 4 dimensions) to show that the size
comes from the shape of ``theta``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import symfisher as sf

jax.config.update("jax_enable_x64", True)

N_POINTS = 6  # random parameter points per case
N_X = 3  # x values per parameter point

# float64: the log-densities here are sums of a handful of O(1-10) terms, each
# correct to a few ulp in both implementations, so rtol 1e-12 with an absolute
# floor of 1e-13 (about 500 ulp of the terms' size) for results that cross zero.
RTOL64, ATOL64 = 1e-12, 1e-13
# float32: eps32 = 1.19e-7. The sampled densities add terms up to ~100 in size
# (gammaln(x + 1) for Poisson counts near 30, (a - 1) log x for Gamma shapes
# near 20), each rounded to ~eps32 * 100 = 1.2e-5; allow ~8 such roundings.
RTOL32, ATOL32 = 1e-5, 1e-4


def _key(*parts: object) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng([0, *_key(*parts)])


def _logu(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


@dataclass(frozen=True)
class Case:
    """One family at one size.

    ``sample(rng, n)`` gives ``theta`` of shape ``(n, P)`` and ``x`` of shape
    ``(n, N_X, *event)`` (each x drawn for its own theta); ``ref(theta, x)`` is
    SciPy's log-density for one parameter row and one x.
    """

    name: str
    label: str
    sample: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
    ref: Callable[[np.ndarray, np.ndarray], float]
    event_ndim: int = 0  # 1 where x is a vector (multivariate Gaussians)
    integer_x: bool = False  # class indices (kept as integers in every call)

    @property
    def id(self) -> str:
        return self.name + (f"-{self.label}" if self.label else "")


def _draw(rng, n, params, draw_x):
    theta = np.stack(params, axis=-1)
    x = np.stack([draw_x(rng, row) for row in theta])
    return theta, x


# -- samplers and SciPy references, one per family ---------------------------------


def _bernoulli(rng, n):
    p = rng.uniform(0.02, 0.98, n)
    return _draw(rng, n, [p], lambda r, t: r.binomial(1, t[0], N_X).astype(float))


def _bernoulli_logit(rng, n):
    eta = rng.uniform(-4.0, 4.0, n)
    return _draw(
        rng, n, [eta], lambda r, t: r.binomial(1, special.expit(t[0]), N_X) * 1.0
    )


def _categorical(K):
    def sample(rng, n):
        p = rng.dirichlet(np.full(K, 2.0), n)
        theta = p[:, :-1]
        x = np.stack([rng.choice(K, N_X, p=_full_p(t)) for t in theta])
        return theta, x

    return sample


def _full_p(theta):
    """All K probabilities, the last one implied as in the kernel's definition."""
    return np.append(theta, 1.0 - theta.sum())


def _multinomial_ref(p, x):
    return stats.multinomial(1, p).logpmf(np.eye(len(p))[int(x)])


def _softmax(K):
    def sample(rng, n):
        z = rng.normal(0.0, 2.0, (n, K))
        x = np.stack([rng.choice(K, N_X, p=special.softmax(t)) for t in z])
        return z, x

    return sample


def _normal_like(transform):
    """mu, and a scale parameter drawn as sigma then mapped by ``transform``."""

    def sample(rng, n):
        mu = rng.uniform(-3.0, 3.0, n)
        sigma = _logu(rng, 0.1, 10.0, n)
        theta = np.stack([mu, transform(sigma)], axis=-1)
        x = mu[:, None] + sigma[:, None] * rng.standard_normal((n, N_X))
        return theta, x

    return sample


def _diag_gaussian(d):
    def sample(rng, n):
        mu = rng.uniform(-3.0, 3.0, (n, d))
        omega = rng.uniform(-2.0, 2.0, (n, d))
        x = mu[:, None, :] + np.exp(omega)[:, None, :] * rng.standard_normal(
            (n, N_X, d)
        )
        return np.concatenate([mu, omega], axis=-1), x

    return sample


def _diag_gaussian_ref(theta, x):
    d = len(theta) // 2
    cov = np.diag(np.exp(2.0 * theta[d:]))
    return stats.multivariate_normal(theta[:d], cov).logpdf(x)


def _full_L(theta):
    """Cholesky factor ``L = [[e^l11, 0], [l21, e^l22]]`` (log-diagonal)."""
    _, _, l11, l21, l22 = theta
    return np.array([[np.exp(l11), 0.0], [l21, np.exp(l22)]])


def _full_gaussian(rng, n):
    mu = rng.uniform(-3.0, 3.0, (n, 2))
    ls = rng.uniform(-1.0, 1.0, (n, 3))
    theta = np.concatenate([mu, ls], axis=-1)
    x = np.stack([t[:2] + rng.standard_normal((N_X, 2)) @ _full_L(t).T for t in theta])
    return theta, x


def _full_gaussian_ref(theta, x):
    L = _full_L(theta)
    return stats.multivariate_normal(theta[:2], L @ L.T).logpdf(x)


def _poisson(to_theta):
    def sample(rng, n):
        lam = _logu(rng, 0.1, 30.0, n)
        x = rng.poisson(lam[:, None], (n, N_X)).astype(float)
        return to_theta(lam)[:, None], x

    return sample


def _exponential(rng, n):
    lam = _logu(rng, 0.1, 10.0, n)
    return lam[:, None], rng.exponential(1.0 / lam[:, None], (n, N_X))


def _gamma(rng, n):
    a, b = _logu(rng, 0.3, 20.0, n), _logu(rng, 0.1, 10.0, n)
    x = rng.gamma(a[:, None], 1.0 / b[:, None], (n, N_X))
    return np.stack([a, b], axis=-1), x


def _beta(rng, n):
    a, b = _logu(rng, 0.3, 20.0, n), _logu(rng, 0.3, 20.0, n)
    x = rng.beta(a[:, None], b[:, None], (n, N_X))
    return np.stack([a, b], axis=-1), np.clip(x, 1e-9, 1.0 - 1e-9)


def _von_mises(rng, n):
    mu, kappa = rng.uniform(-np.pi, np.pi, n), _logu(rng, 0.05, 50.0, n)
    x = rng.vonmises(mu[:, None], kappa[:, None], (n, N_X))
    return np.stack([mu, kappa], axis=-1), x


def _laplace(rng, n):
    mu, b = rng.uniform(-3.0, 3.0, n), _logu(rng, 0.1, 10.0, n)
    x = rng.laplace(mu[:, None], b[:, None], (n, N_X))
    return np.stack([mu, b], axis=-1), x


def _student_t(rng, n):
    mu, sigma = rng.uniform(-3.0, 3.0, n), _logu(rng, 0.1, 10.0, n)
    x = mu[:, None] + sigma[:, None] * rng.standard_t(4.0, (n, N_X))
    return np.stack([mu, sigma], axis=-1), x


def _uniform(rng, n):
    # x below the smallest theta drawn (0.1), so every x is inside every support
    # (0, theta) and the batched tests can pair any x with any theta.
    theta = _logu(rng, 0.1, 10.0, n)
    return theta[:, None], rng.uniform(1e-4, 0.0999, (n, N_X))


def _tanh_gaussian(rng, n):
    mu, sigma = rng.uniform(-1.0, 1.0, n), rng.uniform(0.2, 1.5, n)
    u = mu[:, None] + sigma[:, None] * rng.standard_normal((n, N_X))
    return np.stack([mu, sigma], axis=-1), np.tanh(u)


def _tanh_gaussian_ref(theta, x):
    # Change of variables y = atanh(x): log N(atanh x; mu, sigma) - log(1 - x^2).
    return stats.norm.logpdf(np.arctanh(x), theta[0], theta[1]) - np.log1p(-(x**2))


CASES: list[Case] = [
    Case("bernoulli", "", _bernoulli, lambda t, x: stats.bernoulli.logpmf(x, t[0])),
    Case(
        "bernoulli_logit",
        "",
        _bernoulli_logit,
        lambda t, x: stats.bernoulli.logpmf(x, special.expit(t[0])),
    ),
    *(
        Case(
            "categorical",
            f"K{K}",
            _categorical(K),
            lambda t, x: _multinomial_ref(_full_p(t), x),
            integer_x=True,
        )
        for K in (3, 5)
    ),
    *(
        Case(
            "categorical_softmax",
            f"K{K}",
            _softmax(K),
            lambda t, x: _multinomial_ref(special.softmax(t), x),
            integer_x=True,
        )
        for K in (3, 5)
    ),
    Case(
        "normal",
        "",
        _normal_like(lambda s: s),
        lambda t, x: stats.norm.logpdf(x, t[0], t[1]),
    ),
    Case(
        "normal_var",
        "",
        _normal_like(lambda s: s**2),
        lambda t, x: stats.norm.logpdf(x, t[0], np.sqrt(t[1])),
    ),
    Case(
        "normal_logstd",
        "",
        _normal_like(np.log),
        lambda t, x: stats.norm.logpdf(x, t[0], np.exp(t[1])),
    ),
    *(
        Case(
            "diag_gaussian",
            f"d{d}",
            _diag_gaussian(d),
            _diag_gaussian_ref,
            event_ndim=1,
        )
        for d in (2, 4)
    ),
    Case("full_gaussian", "", _full_gaussian, _full_gaussian_ref, event_ndim=1),
    Case(
        "poisson",
        "",
        _poisson(lambda lam: lam),
        lambda t, x: stats.poisson.logpmf(x, t[0]),
    ),
    Case(
        "poisson_log",
        "",
        _poisson(np.log),
        lambda t, x: stats.poisson.logpmf(x, np.exp(t[0])),
    ),
    Case(
        "exponential",
        "",
        _exponential,
        lambda t, x: stats.expon.logpdf(x, scale=1.0 / t[0]),
    ),
    Case(
        "gamma", "", _gamma, lambda t, x: stats.gamma.logpdf(x, t[0], scale=1.0 / t[1])
    ),
    Case("beta", "", _beta, lambda t, x: stats.beta.logpdf(x, t[0], t[1])),
    Case(
        "von_mises",
        "",
        _von_mises,
        lambda t, x: stats.vonmises.logpdf(x, t[1], loc=t[0]),
    ),
    Case("laplace", "", _laplace, lambda t, x: stats.laplace.logpdf(x, t[0], t[1])),
    Case(
        "student_t",
        "",
        _student_t,
        lambda t, x: stats.t.logpdf(x, df=4.0, loc=t[0], scale=t[1]),
    ),
    Case(
        "uniform",
        "",
        _uniform,
        lambda t, x: stats.uniform.logpdf(x, loc=0.0, scale=t[0]),
    ),
    Case("tanh_gaussian", "", _tanh_gaussian, _tanh_gaussian_ref),
]

#: Catalog families with no scipy.stats counterpart, with the reason (none today).
NOT_COVERED: dict[str, str] = {}


def _reference(case: Case, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """SciPy log-densities, ``theta`` (..., P) and ``x`` (..., *event) broadcast."""
    theta = np.asarray(theta, dtype=np.float64)
    x = np.asarray(x) if case.integer_x else np.asarray(x, dtype=np.float64)
    ev = case.event_ndim
    batch = np.broadcast_shapes(theta.shape[:-1], x.shape[: x.ndim - ev])
    t = np.broadcast_to(theta, (*batch, theta.shape[-1]))
    xb = np.broadcast_to(x, (*batch, *x.shape[x.ndim - ev :]))
    out = np.empty(batch)
    for idx in np.ndindex(*batch):
        out[idx] = case.ref(t[idx], xb[idx])
    return out


def _sample(case: Case, tag: str) -> tuple[np.ndarray, np.ndarray]:
    theta, x = case.sample(_rng(case.id, tag), N_POINTS)
    if case.integer_x:
        x = x.astype(np.int64)
    return theta, x


def _assert_close(got, want, rtol, atol, what):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.all(np.isfinite(want)), f"{what}: reference not finite: {want}"
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
    if bad.any():
        i = np.argwhere(bad)[0]
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{bad.size} values differ; first at index "
            f"{tuple(int(j) for j in i)}: kernel {got[tuple(i)]!r}, "
            f"scipy {want[tuple(i)]!r}, |diff| {abs(got[tuple(i)] - want[tuple(i)]):.3g}"
        )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_log_prob_matches_scipy(case):
    k = sf.kernels(case.name)
    theta, x = _sample(case, "float64")
    want = _reference(case, theta[:, None], x)  # (N_POINTS, N_X)
    for i in range(N_POINTS):
        for j in range(N_X):
            got = k.log_prob(jnp.asarray(theta[i]), jnp.asarray(x[i, j]))
            assert jnp.shape(got) == ()
            assert got.dtype == jnp.float64
            _assert_close(
                got,
                want[i, j],
                RTOL64,
                ATOL64,
                f"{case.id} theta={theta[i]} x={x[i, j]}",
            )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_log_prob_batched_matches_scipy(case):
    """Leading batch axes broadcast, against SciPy element by element."""
    k = sf.kernels(case.name)
    theta, x = _sample(case, "batched")  # x[i] is valid for theta[i]
    # theta (A, 1, P) against x (A, B, *event): theta's size-1 axis broadcasts.
    got = k.log_prob(jnp.asarray(theta[:, None, :]), jnp.asarray(x))
    assert got.shape == (N_POINTS, N_X)
    want = _reference(case, theta[:, None, :], x)
    _assert_close(got, want, RTOL64, ATOL64, f"{case.id} (A,1,P) x (A,B)")
    # One parameter vector (P,) against a batch of x (B, *event).
    got = k.log_prob(jnp.asarray(theta[0]), jnp.asarray(x[0]))
    assert got.shape == (N_X,)
    _assert_close(got, want[0], RTOL64, ATOL64, f"{case.id} (P,) x (B,)")
    # A batch of parameters (A, P) against one x (*event,).
    got = k.log_prob(jnp.asarray(theta), jnp.asarray(x[0, 0]))
    assert got.shape == (N_POINTS,)
    want = _reference(case, theta, x[0, 0])
    _assert_close(got, want, RTOL64, ATOL64, f"{case.id} (A,P) x ()")
    # theta (A, P) against x (A, *event), the same batch shape on both sides.
    got = k.log_prob(jnp.asarray(theta), jnp.asarray(x[:, 0]))
    _assert_close(got, _reference(case, theta, x[:, 0]), RTOL64, ATOL64, case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_log_prob_float32(case):
    """float32 in, float32 out; compared with SciPy at the float32-rounded inputs."""
    k = sf.kernels(case.name)
    theta, x = _sample(case, "float32")
    theta32 = theta.astype(np.float32)
    x32 = x if case.integer_x else x.astype(np.float32)
    got = k.log_prob(jnp.asarray(theta32[:, None, :]), jnp.asarray(x32))
    assert got.dtype == jnp.float32, f"{case.id}: float32 inputs gave {got.dtype}"
    assert got.shape == (N_POINTS, N_X)
    want = _reference(case, theta32[:, None, :], x32)
    _assert_close(got, want, RTOL32, ATOL32, f"{case.id} (float32)")


def test_every_catalog_family_is_covered():
    covered = {c.name for c in CASES}
    assert not covered & set(NOT_COVERED), "a family is both covered and excused"
    assert all(NOT_COVERED.values()), "every excused family needs a reason"
    missing = set(sf.families()) - covered - set(NOT_COVERED)
    assert not missing, f"catalog families with no scipy comparison: {sorted(missing)}"
    unknown = (covered | set(NOT_COVERED)) - set(sf.families())
    assert not unknown, f"cases for names not in the catalog: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("name", "K"),
    [("categorical", 5), ("categorical_softmax", 5), ("diag_gaussian", 4)],
)
def test_size_comes_from_theta_shape(name, K):
    """The larger sizes really are larger: K classes (or d dimensions) are used."""
    case = next(c for c in CASES if c.name == name and c.label.endswith(str(K)))
    theta, _ = _sample(case, "size")
    k = sf.kernels(name)
    if name == "diag_gaussian":
        # A 4-d density is not a 2-d one: dropping dimensions changes the value.
        x = theta[0, :K] + 0.5
        full = k.log_prob(jnp.asarray(theta[0]), jnp.asarray(x))
        half = k.log_prob(
            jnp.asarray(np.concatenate([theta[0, :2], theta[0, K : K + 2]])),
            jnp.asarray(x[:2]),
        )
        _assert_close(full, _reference(case, theta[0], x), RTOL64, ATOL64, name)
        assert abs(float(full) - float(half)) > 1e-6
    else:
        # The highest class index K-1 has a finite log-probability, K does not.
        lp = k.log_prob(jnp.asarray(theta[0]), jnp.arange(K + 1))
        assert np.all(np.isfinite(np.asarray(lp[:K])))
        assert np.asarray(lp[K]) == -np.inf
        assert np.isclose(np.exp(np.asarray(lp[:K], dtype=np.float64)).sum(), 1.0)


# Large but valid arguments, where a log-density is a small difference of big
# terms. Each case gives theta, x values and the sum S of the absolute values of
# the density's terms at that point; neither implementation can do better than a
# few ulp of S, so the absolute tolerance is 64 eps S (float64 or float32 eps).
LARGE = {
    "poisson-lam1e3": (
        "poisson",
        [1000.0],
        [950.0, 1000.0, 1080.0],
        lambda t, x: t[0] + abs(x * np.log(t[0])) + special.gammaln(x + 1),
    ),
    "poisson-lam40": (
        "poisson",
        [40.0],
        [35.0, 40.0, 52.0],
        lambda t, x: t[0] + abs(x * np.log(t[0])) + special.gammaln(x + 1),
    ),
    "poisson_log-lam1e3": (
        "poisson_log",
        [np.log(1000.0)],
        [950.0, 1000.0, 1080.0],
        lambda t, x: np.exp(t[0]) + abs(x * t[0]) + special.gammaln(x + 1),
    ),
    "gamma-a500": (
        "gamma",
        [500.0, 2.0],
        [230.0, 250.0, 275.0],
        lambda t, x: (
            abs(t[0] * np.log(t[1]))
            + t[1] * x
            + abs((t[0] - 1) * np.log(x))
            + special.gammaln(t[0])
        ),
    ),
    "beta-a500-b800": (
        "beta",
        [500.0, 800.0],
        [0.37, 0.385, 0.41],
        lambda t, x: (
            abs((t[0] - 1) * np.log(x))
            + abs((t[1] - 1) * np.log1p(-x))
            + special.gammaln(t[0])
            + special.gammaln(t[1])
            + special.gammaln(t[0] + t[1])
        ),
    ),
    "von_mises-kappa500": (
        "von_mises",
        [0.3, 500.0],
        [0.25, 0.3, 0.4],
        # kappa cos(mu - x) and log(2 pi I0(kappa)) are both ~kappa.
        lambda t, x: 2 * t[1] + 5.0,
    ),
    "student_t-far-tail": (
        "student_t",
        [0.5, 2.0],
        [-1e6, 3e3, 1e8],
        lambda t, x: 5.0 + 2.5 * np.log1p(((x - t[0]) / t[1]) ** 2 / 4),
    ),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("label", list(LARGE))
def test_log_prob_large_arguments(label, dtype):
    name, theta, xs, scale = LARGE[label]
    case = next(c for c in CASES if c.name == name)
    k = sf.kernels(name)
    theta = np.asarray(theta, dtype=dtype)
    xs = np.asarray(xs, dtype=dtype)
    got = k.log_prob(jnp.asarray(theta), jnp.asarray(xs))
    assert got.dtype == dtype
    t64, x64 = theta.astype(np.float64), xs.astype(np.float64)
    want = _reference(case, t64, x64)
    eps = np.finfo(dtype).eps
    atol = 64 * eps * np.array([scale(t64, x) for x in x64])
    rtol = RTOL64 if dtype == np.float64 else RTOL32
    assert np.all(np.isfinite(np.asarray(got))), (
        f"{label} {np.dtype(dtype).name}: kernel {np.asarray(got)} not finite "
        f"(scipy {want})"
    )
    _assert_close(got, want, rtol, atol, f"{label} {np.dtype(dtype).name}")
