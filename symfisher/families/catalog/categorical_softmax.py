r"""Categorical(K) in softmax logits :math:`z_0..z_{K-1}` (singular Fisher)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._indicator import _indicator_sum
from symfisher.families.domains import DOMAINS, real
from symfisher.families.family import Family, check_size
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 3


def build(K: int = 3) -> Family:
    r"""Categorical(K) in logits :math:`z_0..z_{K-1}`, :math:`p = \mathrm{softmax}(z)`.

    .. math:: \log p(x) = z_x - \log \sum_k e^{z_k}

    The Fisher :math:`\mathrm{diag}(p) - p p^\top` is singular along
    :math:`\mathbf 1`.
    """
    check_size("categorical_softmax", "K", K, 2)
    zs = [real(f"z_{k}") for k in range(K)]
    x = sp.Symbol("x", integer=True, nonnegative=True)
    lse = sp.log(sp.Add(*[sp.exp(z) for z in zs]))
    return Family(
        name="categorical_softmax",
        params=tuple(zs),
        domains=tuple(DOMAINS["real"] for _ in zs),
        variables=(x,),
        log_density=_indicator_sum(x, list(zs)) - lse,
        supports=(sp.Range(0, K),),
        sampler=lazy_sampler("categorical_softmax", K=K),
        size=(("K", K),),
        description=f"Categorical(K={K}) in softmax logits (singular Fisher)",
    )


def sampler(K: int = 3) -> Sampler:
    r"""Categorical on :math:`\{0, \dots, K-1\}` with softmax logits.

    ``theta = (z_0, ..., z_{K-1})``, :math:`P(x = k) = e^{z_k} / \sum_j e^{z_j}`
    (sampled with the Gumbel-max trick).

    Args:
        K: Number of categories, ``K >= 2``.

    Returns:
        A sampler returning floats in :math:`\{0, \dots, K-1\}`.
    """
    if int(K) < 2:
        raise ValueError(f"categorical_softmax needs K >= 2, got K={K}")
    K = int(K)

    import jax

    from symfisher.families.sampling import _named, _prepare

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        x = jax.random.categorical(key, theta, axis=-1, shape=shape)
        return x.astype(theta.dtype)

    return _named(
        sample,
        f"categorical_softmax_K{K}",
        f"Softmax categorical sampler with K={K}; theta = (z_0..z_{K - 1}).",
    )
