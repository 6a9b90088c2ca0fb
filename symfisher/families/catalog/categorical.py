r"""Categorical(K) in its probabilities :math:`p_0..p_{K-2}`, the last one implied."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._indicator import _indicator_sum
from symfisher.families.domains import DOMAINS
from symfisher.families.family import Family, check_size
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 2


def build(K: int = 3) -> Family:
    r"""Categorical(K) in probabilities :math:`p_0..p_{K-2}`, :math:`p_{K-1} = 1-\sum p`.

    .. math:: \log p(x) = \log p_x, \quad x \in \{0, \dots, K-1\}
    """
    check_size("categorical", "K", K, 2)
    ps = [sp.Symbol(f"p_{k}", positive=True) for k in range(K - 1)]
    last = 1 - sp.Add(*ps)
    x = sp.Symbol("x", integer=True, nonnegative=True)
    logs = [sp.log(p) for p in ps] + [sp.log(last)]
    return Family(
        name="categorical",
        params=tuple(ps),
        domains=tuple(DOMAINS["unit_interval"] for _ in ps),
        variables=(x,),
        log_density=_indicator_sum(x, logs),
        supports=(sp.Range(0, K),),
        sampler=lazy_sampler("categorical", K=K),
        constraints=((sp.Add(*ps) < 1, f"sum of p_0..p_{K - 2} must be < 1"),),
        size=(("K", K),),
        description=f"Categorical(K={K}) in probabilities, last one implied",
    )


def sampler(K: int = 3) -> Sampler:
    r"""Categorical on :math:`\{0, \dots, K-1\}` with ``K - 1`` free probabilities.

    ``theta = (p_0, ..., p_{K-2})`` with :math:`p_{K-1} = 1 - \sum_{k<K-1} p_k`
    (clipped at 0 against rounding). :math:`P(x = k) = p_k`.

    Args:
        K: Number of categories, ``K >= 2``.

    Returns:
        A sampler returning floats in :math:`\{0, \dots, K-1\}`.
    """
    if int(K) < 2:
        raise ValueError(f"categorical needs K >= 2, got K={K}")
    K = int(K)

    import jax
    import jax.numpy as jnp

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        p_last = jnp.maximum(1.0 - jnp.sum(theta), 0.0)
        probs = jnp.concatenate([theta, p_last[None]])
        x = jax.random.categorical(key, jnp.log(probs), axis=-1, shape=shape)
        return x.astype(theta.dtype)

    return _named(
        sample,
        f"categorical_K{K}",
        f"Categorical sampler with K={K}; theta = (p_0, ..., p_{K - 2}).",
    )
