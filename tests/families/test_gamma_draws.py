"""The vectorised Marsaglia–Tsang gamma draws against scipy, over shapes and dtypes."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special, stats  # noqa: E402

from symfisher.families.gamma_draws import log_gamma_draws  # noqa: E402
from symfisher.families.samplers import SAMPLERS  # noqa: E402

N = 40_000
KS_PMIN = 1e-4
# boosted (< 1), boundary (1), and Marsaglia-Tsang proper, up to a large shape
ALPHAS = [1e-3, 0.05, 0.3, 0.999, 1.0, 2.5, 50.0, 1e4]

_draw = jax.jit(log_gamma_draws, static_argnums=(2, 3))


def _log_gamma_cdf(y: np.ndarray, alpha: float) -> np.ndarray:
    r""":math:`P(\log G \le y) = P(a, e^y)`, with :math:`P(a, x) = x^a / \Gamma(a+1)`
    to relative error :math:`x` where :math:`e^y` would underflow."""
    tiny = y < -30
    x = np.exp(np.where(tiny, 0.0, y))
    return np.where(
        tiny,
        np.exp(alpha * np.minimum(y, 0) - special.gammaln(alpha + 1)),
        special.gammainc(alpha, x),
    )


def _ks_log_gamma(log_g: np.ndarray, alpha: float) -> float:
    return stats.kstest(log_g, lambda y: _log_gamma_cdf(y, alpha)).pvalue


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["f64", "f32"])
def test_log_gamma_matches_scipy(dtype: jnp.dtype) -> None:
    """KS of log G against Gamma(alpha, 1) for shapes from 1e-3 to 1e4."""
    for i, alpha in enumerate(ALPHAS):
        key = jax.random.fold_in(jax.random.key(7), i)
        log_g = _draw(key, jnp.asarray(alpha, dtype), (N,), dtype)
        assert log_g.dtype == dtype and log_g.shape == (N,)
        log_g = np.asarray(log_g, np.float64)
        assert np.all(np.isfinite(log_g)), alpha  # no underflow to log 0
        p = _ks_log_gamma(log_g, alpha)
        assert p > KS_PMIN, f"alpha={alpha} {dtype}: KS p-value {p:.2e}"


def test_mean_and_variance_of_g() -> None:
    """E G = Var G = alpha, z-tested with the sample's own standard errors."""
    for i, alpha in enumerate([0.3, 2.5, 50.0]):
        g = np.exp(
            np.asarray(_draw(jax.random.key(i), jnp.float64(alpha), (N,), jnp.float64))
        )
        c = g - g.mean()
        assert abs(g.mean() - alpha) < 5 * g.std() / np.sqrt(N), alpha
        se_var = np.sqrt(np.mean(c**4) - np.mean(c**2) ** 2) / np.sqrt(N)
        assert abs(np.mean(c**2) - alpha) < 5 * se_var, alpha


def test_alpha_broadcasts_per_draw() -> None:
    """An array of shapes gives each column its own law."""
    alphas = jnp.asarray([0.2, 1.0, 7.0])
    log_g = np.asarray(_draw(jax.random.key(3), alphas, (N, 3), jnp.float64))
    for j, alpha in enumerate(np.asarray(alphas)):
        assert _ks_log_gamma(log_g[:, j], alpha) > KS_PMIN, alpha


def test_draws_are_reproducible_and_key_dependent() -> None:
    a = _draw(jax.random.key(1), jnp.float64(2.0), (16,), jnp.float64)
    b = _draw(jax.random.key(1), jnp.float64(2.0), (16,), jnp.float64)
    c = _draw(jax.random.key(2), jnp.float64(2.0), (16,), jnp.float64)
    np.testing.assert_array_equal(a, b)
    assert not np.any(np.asarray(a) == np.asarray(c))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["f64", "f32"])
def test_beta_small_shapes_stay_in_support(dtype: jnp.dtype) -> None:
    """Small shapes put the mass at 0 and 1: no NaN, in [0, 1], KS as scipy.

    Beta(0.05, 0.05) has 8% of its mass within 1e-16 of 1, which rounds to 1
    in float64, so its law is compared at Beta(0.2, 0.3)."""
    sample = jax.jit(SAMPLERS["beta"](), static_argnums=2)
    for i, ab in enumerate([(0.05, 0.05), (0.2, 0.3)]):
        x = sample(jax.random.key(11 + i), jnp.asarray(ab, dtype), (N,))
        assert x.dtype == dtype
        x = np.asarray(x)
        assert np.all((x >= 0) & (x <= 1)), ab
        if dtype == jnp.float64 and ab == (0.2, 0.3):
            assert stats.kstest(x, stats.beta(*ab).cdf).pvalue > KS_PMIN


def test_student_t_heavy_tail() -> None:
    """nu = 0.5 (no mean): KS against scipy's t."""
    x = jax.jit(SAMPLERS["student_t"](nu=0.5), static_argnums=2)(
        jax.random.key(5), jnp.asarray([1.0, 2.0]), (N,)
    )
    x = np.asarray(x)
    assert np.all(np.isfinite(x))
    assert stats.kstest(x, stats.t(0.5, 1.0, 2.0).cdf).pvalue > KS_PMIN
