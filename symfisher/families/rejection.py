r"""Exact rejection sampling, vectorised: the first ``n`` accepted of a stream.

A rejection sampler proposes i.i.d. candidates and accepts each independently
of the others; the accepted ones are i.i.d. from the target law, and so are the
first :math:`n` of them (which ones are first depends only on the accept
decisions' order, not on the values). :func:`first_accepted` proposes
:math:`m` candidates per round,

.. math::
    m = \lceil n / r + 4 \sqrt{n / r} \rceil,

with :math:`r` a lower bound on the acceptance rate, so that one round fills
all :math:`n` slots except with probability about :math:`3 \cdot 10^{-5}`; the
accepted candidates go to the next free slots in order (a cumulative sum and a
scatter), and rounds repeat (``lax.while_loop``) until every slot is filled.
Against redrawing every slot until each is accepted, which takes about
:math:`\log n / \log(1/(1-r))` rounds of :math:`n` proposals (10 rounds for
:math:`n = 32768`, :math:`r = 0.65`), this proposes :math:`n / r` candidates in all.
After :data:`MAX_ROUNDS` rounds (never reached in practice) a slot still
empty keeps ``fill_value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["MAX_ROUNDS", "first_accepted"]

#: rounds of proposals before the (astronomically rare) unfilled slots give up
MAX_ROUNDS = 64

Propose = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]


def first_accepted(
    key: jax.Array,
    propose: Propose,
    n: int,
    rate: float,
    fill_value: jax.Array,
) -> jax.Array:
    """The first ``n`` accepted candidates of ``propose``, shape ``(n,)``.

    Args:
      key: PRNG key; round ``i`` proposes with ``fold_in(key, i)``.
      propose: ``propose(key, m) -> (values, accepted)``, both of shape ``(m,)``:
        ``m`` i.i.d. candidates and whether each is accepted.
      n: number of draws wanted.
      rate: a lower bound on the acceptance probability, in (0, 1].
      fill_value: scalar of the output dtype, kept by slots not filled after
        :data:`MAX_ROUNDS` rounds.
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    fill_value = jnp.asarray(fill_value)
    if n == 0:
        return jnp.zeros((0,), fill_value.dtype)
    m = math.ceil(n / rate + 4 * math.sqrt(n / rate))

    def cond(state: tuple) -> jax.Array:
        i, _, filled = state
        return (i < MAX_ROUNDS) & (filled < n)

    def body(state: tuple) -> tuple:
        i, out, filled = state
        values, accepted = propose(jax.random.fold_in(key, i), m)
        slot = filled + jnp.cumsum(accepted, dtype=jnp.int32) - 1
        slot = jnp.where(accepted & (slot < n), slot, n)  # n: out of range, dropped
        out = out.at[slot].set(values.astype(out.dtype), mode="drop")
        filled = jnp.minimum(filled + jnp.sum(accepted, dtype=jnp.int32), n)
        return i + 1, out, filled

    init = (
        jnp.asarray(0, jnp.int32),
        jnp.full((n,), fill_value),
        jnp.asarray(0, jnp.int32),
    )
    return jax.lax.while_loop(cond, body, init)[1]
