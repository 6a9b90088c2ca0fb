"""Statistical tests of the numeric JAX samplers against closed forms and scipy."""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, special, stats  # noqa: E402

from symfisher.families.samplers import SAMPLERS  # noqa: E402

N = 200_000
N32 = 50_000
Z = 5.0  # z-score tolerance for moment checks
KS_PMIN = 1e-4

Stat = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _identity(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.pi - np.mod(np.pi - a, 2 * np.pi)


@dataclass(frozen=True)
class Case:
    """One parameter point of one family, with its reference moments.

    ``mean`` / ``var`` are the exact mean / variance of ``stat(x, theta)`` (a matrix
    with one column per statistic); ``var=None`` when the 4th moment is infinite.
    ``ks = (transform, cdf)`` for continuous scalar families.
    """

    theta: tuple[float, ...]
    mean: np.ndarray
    var: np.ndarray | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    event_shape: tuple[int, ...] = ()
    stat: Stat = _identity
    ks: tuple[Callable[[np.ndarray], np.ndarray], Callable] | None = None
    support: Callable[[np.ndarray], np.ndarray] | None = None


def _ks(dist: Any) -> tuple[Callable, Callable]:
    return (lambda x: x), dist.cdf


def _is_int(lo: int, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: (x == np.round(x)) & (x >= lo) & (x <= hi)


def _bernoulli(p: float, theta: float) -> Case:
    return Case((theta,), np.array([p]), np.array([p * (1 - p)]), support=_is_int(0, 1))


def _categorical(p: np.ndarray, theta: np.ndarray, kwargs: dict) -> Case:
    k = len(p)

    def onehot(x: np.ndarray, _: np.ndarray) -> np.ndarray:
        return (x[:, None] == np.arange(k)).astype(float)

    return Case(
        tuple(theta), p, p * (1 - p), kwargs, stat=onehot, support=_is_int(0, k - 1)
    )


def _scalar(theta: tuple[float, ...], dist: Any, **kw: Any) -> Case:
    m, v = dist.stats(moments="mv")
    return Case(theta, np.array([m]), np.array([v]), ks=_ks(dist), **kw)


def _poisson(lam: float, theta: float) -> Case:
    return Case((theta,), np.array([lam]), np.array([lam]), support=_is_int(0, np.inf))


def _full_gaussian(mu: np.ndarray, chol: np.ndarray) -> Case:
    d = len(mu)
    rows, cols = np.tril_indices(d)
    tril = chol[rows, cols].copy()
    tril[rows == cols] = np.log(tril[rows == cols])
    cov = chol @ chol.T
    iu, ju = np.triu_indices(d, k=1)

    def stat(x: np.ndarray, _: np.ndarray) -> np.ndarray:
        c = x - mu
        return np.concatenate([x, c[:, iu] * c[:, ju]], axis=1)

    mean = np.concatenate([mu, cov[iu, ju]])
    var = np.concatenate([np.diag(cov), cov[iu, iu] * cov[ju, ju] + cov[iu, ju] ** 2])
    theta = (*mu, *tril)
    return Case(theta, mean, var, {"d": d}, (d,), stat=stat)


def _von_mises(mu: float, kappa: float) -> Case:
    a1 = special.ive(1, kappa) / special.ive(0, kappa)
    a2 = special.ive(2, kappa) / special.ive(0, kappa)

    def stat(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        y = x - theta[0]
        return np.stack([np.cos(y), np.sin(y)], axis=1)

    return Case(
        (mu, kappa),
        np.array([a1, 0.0]),
        np.array([(1 + a2) / 2 - a1**2, (1 - a2) / 2]),
        stat=stat,
        ks=(lambda x: _wrap(x - mu), stats.vonmises(kappa).cdf),
        support=lambda x: (x > -np.pi) & (x <= np.pi),
    )


def _tanh_gaussian(mu: float, sigma: float) -> Case:
    def moment(k: int) -> float:
        f = lambda z: np.tanh(mu + sigma * z) ** k * stats.norm.pdf(z)  # noqa: E731
        return integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)[0]

    m1, m2 = moment(1), moment(2)

    def cdf(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return stats.norm.cdf((np.arctanh(x) - mu) / sigma)

    return Case(
        (mu, sigma),
        np.array([m1]),
        np.array([m2 - m1**2]),
        ks=((lambda x: x), cdf),
        support=lambda x: np.abs(x) <= 1,
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _build_cases() -> dict[str, list[Case]]:
    positive = lambda x: x > 0  # noqa: E731
    z3 = np.array([0.5, -1.0, 2.0])
    z5 = np.array([-0.3, 0.8, 0.0, 1.1, -2.0])
    return {
        "bernoulli": [_bernoulli(0.3, 0.3), _bernoulli(0.9, 0.9)],
        "bernoulli_logit": [
            _bernoulli(special.expit(-1.2), -1.2),
            _bernoulli(special.expit(2.0), 2.0),
        ],
        "categorical": [
            _categorical(
                np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.1, 0.2, 0.3]), {"K": 4}
            ),
            _categorical(np.array([0.7, 0.3]), np.array([0.7]), {"K": 2}),
        ],
        "categorical_softmax": [
            _categorical(_softmax(z3), z3, {"K": 3}),
            _categorical(_softmax(z5), z5, {"K": 5}),
        ],
        "normal": [_scalar((1.5, 0.7), stats.norm(1.5, 0.7))],
        "normal_var": [_scalar((-0.5, 2.0), stats.norm(-0.5, math.sqrt(2.0)))],
        "normal_logstd": [_scalar((0.3, -0.4), stats.norm(0.3, math.exp(-0.4)))],
        "diag_gaussian": [
            Case(
                (0.1, -1.0, 2.0, 0.0, 0.5, -0.3),
                np.array([0.1, -1.0, 2.0]),
                np.exp(2 * np.array([0.0, 0.5, -0.3])),
                {"d": 3},
                (3,),
            )
        ],
        "full_gaussian": [
            _full_gaussian(np.array([0.5, -1.0]), np.array([[1.2, 0.0], [0.6, 0.8]])),
            _full_gaussian(
                np.array([0.0, 1.0, -2.0]),
                np.array([[0.9, 0.0, 0.0], [-0.4, 1.3, 0.0], [0.7, 0.2, 0.5]]),
            ),
        ],
        "poisson": [_poisson(3.5, 3.5), _poisson(25.0, 25.0)],
        "poisson_log": [_poisson(math.exp(0.7), 0.7), _poisson(math.exp(3.0), 3.0)],
        "exponential": [_scalar((2.0,), stats.expon(scale=0.5), support=positive)],
        "gamma": [
            _scalar((2.5, 1.5), stats.gamma(2.5, scale=1 / 1.5), support=positive),
            _scalar((0.3, 2.0), stats.gamma(0.3, scale=0.5), support=lambda x: x >= 0),
        ],
        "beta": [
            _scalar(
                (2.0, 5.0), stats.beta(2.0, 5.0), support=lambda x: (x >= 0) & (x <= 1)
            ),
            _scalar(
                (0.5, 0.5), stats.beta(0.5, 0.5), support=lambda x: (x >= 0) & (x <= 1)
            ),
        ],
        "von_mises": [
            _von_mises(0.3, 2.0),
            _von_mises(-2.9, 1e-3),
            _von_mises(3.0, 1e3),
        ],
        "laplace": [_scalar((0.5, 1.3), stats.laplace(0.5, 1.3))],
        "student_t": [
            # nu = 4 (default): variance finite but 4th moment infinite -> mean only.
            Case((1.0, 2.0), np.array([1.0]), None, ks=_ks(stats.t(4.0, 1.0, 2.0))),
            _scalar((-0.5, 0.5), stats.t(10.0, -0.5, 0.5), kwargs={"nu": 10.0}),
        ],
        "uniform": [
            _scalar(
                (2.5,), stats.uniform(0, 2.5), support=lambda x: (x >= 0) & (x < 2.5)
            )
        ],
        # Keep P(|u| > 9) tiny: float32 tanh rounds to exactly +-1 beyond that.
        "tanh_gaussian": [_tanh_gaussian(0.4, 0.8), _tanh_gaussian(-1.0, 1.5)],
    }


CASES = _build_cases()
NAMES = sorted(SAMPLERS)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


@functools.cache
def _jitted(name: str, kwargs: tuple[tuple[str, Any], ...]) -> Callable:
    # One jitted sampler per family variant: cases of a variant share the compile.
    return jax.jit(SAMPLERS[name](**dict(kwargs)), static_argnums=2)


def _draw(name: str, case: Case, idx: int, dtype: Any, n: int) -> np.ndarray:
    sampler = _jitted(name, tuple(sorted(case.kwargs.items())))
    key = jax.random.fold_in(jax.random.key(_seed(name)), idx)
    x = sampler(key, jnp.asarray(case.theta, dtype=dtype), (n,))
    assert x.shape == (n, *case.event_shape)
    assert x.dtype == dtype
    x = np.asarray(x)
    assert np.all(np.isfinite(x))
    if case.support is not None:  # compared in the native dtype
        assert np.all(case.support(x))
    return x.astype(np.float64)


def _check_mean(t: np.ndarray, mean: np.ndarray, label: str) -> np.ndarray:
    """Z-test of the sample mean of each column of ``t``; returns centred ``t``."""
    m = t.mean(axis=0)
    se = np.sqrt(t.var(axis=0) / len(t))
    np.testing.assert_array_less(np.abs(m - mean), Z * se + 1e-12, label)
    return t - m


def test_catalog_complete() -> None:
    assert set(SAMPLERS) == set(CASES)


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_moments_and_ks(name: str) -> None:
    """float64, N draws per case: mean, variance and KS against closed forms/scipy."""
    for idx, case in enumerate(CASES[name]):
        label = f"{name}[{idx}]"
        x = _draw(name, case, idx, jnp.float64, N)
        c = _check_mean(case.stat(x, np.asarray(case.theta)), case.mean, label)
        if case.var is not None:
            # SE of the sample variance from the 4th central moment.
            s2, m4 = (c**2).mean(axis=0), (c**4).mean(axis=0)
            se_var = np.sqrt(np.maximum(m4 - s2**2, 0.0) / N)
            np.testing.assert_array_less(
                np.abs(s2 - case.var), Z * se_var + 1e-12, label
            )
        if case.ks is not None:
            transform, cdf = case.ks
            p = stats.kstest(transform(x), cdf).pvalue
            assert p > KS_PMIN, f"{label}: KS p-value {p:.2e}"


# float32 numerics of these are jax.random's own Poisson kernels (slow to compile);
# their float32 shapes and dtypes are checked by test_shapes_and_dtypes.
F32_NAMES = [n for n in NAMES if n not in {"poisson", "poisson_log"}]


@pytest.mark.parametrize("name", F32_NAMES, ids=F32_NAMES)
def test_float32_run(name: str) -> None:
    """float32 in, float32 out under jit; support and mean still correct."""
    case = CASES[name][0]
    x = _draw(name, case, 1000, jnp.float32, N32)
    _check_mean(case.stat(x, np.asarray(case.theta)), case.mean, f"{name} f32")


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_shapes_and_dtypes(name: str) -> None:
    """Output is ``shape + event_shape`` in theta's dtype (traced as under jit)."""
    case = CASES[name][0]
    sampler = SAMPLERS[name](**case.kwargs)
    for key in (jax.random.key(0), jax.random.PRNGKey(0)):
        for dtype in (jnp.float32, jnp.float64):
            theta = jnp.asarray(case.theta, dtype=dtype)
            for shape in [(), (3,), (2, 5)]:
                out = jax.eval_shape(
                    functools.partial(sampler, shape=shape), key, theta
                )
                assert out.shape == (*shape, *case.event_shape)
                assert out.dtype == dtype
            assert jax.eval_shape(sampler, key, theta).shape == case.event_shape


def test_von_mises_float32_kappa_sweep() -> None:
    """Angles in (-pi, pi] that match scipy for kappa in [0, 1e3], in float32."""
    kappas = np.array([0.0, 1e-3, 1.0, 30.0, 1e3])
    mu = -3.1
    thetas = jnp.asarray(np.stack([np.full_like(kappas, mu), kappas], 1), jnp.float32)
    keys = jax.random.split(jax.random.key(_seed("von_mises_f32")), len(kappas))
    sampler = SAMPLERS["von_mises"]()
    xs = jax.jit(jax.vmap(lambda k, th: sampler(k, th, (N32,))))(keys, thetas)
    assert xs.dtype == jnp.float32
    xs = np.asarray(xs)
    assert np.all((xs > -np.pi) & (xs <= np.pi))  # compared in float32
    for kappa, x in zip(kappas, xs.astype(np.float64), strict=True):
        y = _wrap(x - mu)
        dist = stats.uniform(-np.pi, 2 * np.pi) if kappa == 0 else stats.vonmises(kappa)
        assert stats.kstest(y, dist.cdf).pvalue > KS_PMIN, kappa


def test_factories_reject_bad_sizes() -> None:
    with pytest.raises(ValueError):
        SAMPLERS["categorical"](K=1)
    with pytest.raises(ValueError):
        SAMPLERS["categorical_softmax"](K=1)
    with pytest.raises(ValueError):
        SAMPLERS["diag_gaussian"](d=0)
    with pytest.raises(ValueError):
        SAMPLERS["full_gaussian"](d=0)
    with pytest.raises(ValueError):
        SAMPLERS["student_t"](nu=0.0)
