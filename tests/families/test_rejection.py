"""first_accepted: the first n accepted candidates, in order, however many rounds."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from symfisher.families.rejection import MAX_ROUNDS, first_accepted  # noqa: E402


def _uniform_below(p: float):
    """Candidates U(0, 1), accepted when below p: accepted ones are U(0, p)."""

    def propose(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        u = jax.random.uniform(key, (m,))
        return u, u < p

    return propose


def _counting(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """Candidates 0, 1, 2, ...; the multiples of 3 are accepted."""
    values = jnp.arange(m, dtype=jnp.float64)
    return values, values % 3 == 0


@pytest.mark.parametrize("rate", [0.3, 0.9, 0.05], ids=["exact", "optimistic", "low"])
def test_accepted_law_and_count(rate: float) -> None:
    """True acceptance 0.3; the rate only sizes the rounds, never the law."""
    n = 20_000
    x = jax.jit(
        lambda k: first_accepted(k, _uniform_below(0.3), n, rate, jnp.float64(-1))
    )(jax.random.key(0))
    x = np.asarray(x)
    assert x.shape == (n,)
    assert np.all((x >= 0) & (x < 0.3))  # every slot filled with an accepted value
    assert stats.kstest(x, stats.uniform(0, 0.3).cdf).pvalue > 1e-4


def test_keeps_order_of_the_stream() -> None:
    """Accepted candidates fill the slots in proposal order, round after round.

    n = 7, rate 1: m = ceil(7 + 4 sqrt 7) = 18 candidates 0..17 per round, six
    accepted; the second round's first accepted (0 again) fills the last slot."""
    x = first_accepted(jax.random.key(1), _counting, 7, 1.0, jnp.float64(-1))
    np.testing.assert_array_equal(np.asarray(x), [0, 3, 6, 9, 12, 15, 0])
    x = first_accepted(jax.random.key(1), _counting, 5, 1.0, jnp.float64(-1))
    np.testing.assert_array_equal(np.asarray(x), [0, 3, 6, 9, 12])


def test_later_rounds_fill_the_remaining_slots() -> None:
    """rate = 1 proposes n + 4 sqrt(n) = 480 per round, of which about 160 are
    accepted at a true rate of 1/3: filling all 400 slots takes further rounds."""
    propose = _uniform_below(1 / 3)
    x = np.asarray(
        first_accepted(jax.random.key(2), propose, 400, 1.0, jnp.float64(-1))
    )
    assert np.all((x >= 0) & (x < 1 / 3))


def test_never_accepting_gives_up_with_fill_value() -> None:
    """A proposal that never accepts stops after MAX_ROUNDS rounds (no hang)."""

    def never(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros((m,)), jnp.zeros((m,), bool)

    x = first_accepted(jax.random.key(3), never, 5, 0.5, jnp.float64(7.0))
    np.testing.assert_array_equal(np.asarray(x), np.full(5, 7.0))
    assert MAX_ROUNDS == 64


def test_vmap_over_keys_gives_independent_draws() -> None:
    keys = jax.random.split(jax.random.key(4), 3)
    xs = jax.vmap(
        lambda k: first_accepted(k, _uniform_below(0.5), 100, 0.5, jnp.float64(-1))
    )(keys)
    xs = np.asarray(xs)
    assert xs.shape == (3, 100) and np.all((xs >= 0) & (xs < 0.5))
    assert not np.array_equal(xs[0], xs[1])


def test_empty_and_bad_rate() -> None:
    assert first_accepted(jax.random.key(0), _counting, 0, 1.0, 0.0).shape == (0,)
    with pytest.raises(ValueError, match="rate"):
        first_accepted(jax.random.key(0), _counting, 3, 0.0, 0.0)
    with pytest.raises(ValueError, match="rate"):
        first_accepted(jax.random.key(0), _counting, 3, 1.5, 0.0)
