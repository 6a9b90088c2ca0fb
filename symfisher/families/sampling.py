"""What the catalog's numeric JAX samplers share: their signature and input checks.

Every sampler has the signature ``sample(key, theta, shape=()) -> jax.Array``:

* ``key`` is a JAX PRNG key (typed ``jax.random.key`` or raw ``PRNGKey``);
* ``theta`` is a 1-D array holding a *single* parameter point, in the parameter
  order documented for each family (that order is the contract);
* ``shape`` is the sample (batch) shape; it must be static under ``jax.jit``.

The result has shape ``shape + event_shape`` where ``event_shape`` is ``()`` for
scalar families and ``(d,)`` for the ``d``-dimensional Gaussians. The result dtype
is always the floating dtype of ``theta`` (float32 in, float32 out); discrete
outcomes (Bernoulli, categorical, Poisson) are returned as integer-valued floats.

This module imports JAX; a family module imports it only inside its ``sampler``
factory, so that defining a family never loads JAX.
"""

from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp

__all__ = ["Sampler", "_named", "_prepare"]


class Sampler(Protocol):
    """Signature shared by all samplers."""

    def __call__(
        self, key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        """Draw samples of shape ``shape + event_shape`` at parameter ``theta``."""
        ...


def _prepare(theta: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, tuple]:
    """Return ``theta`` as a floating 1-D array and ``shape`` as a tuple of ints."""
    theta = jnp.asarray(theta)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.result_type(float))
    return theta, tuple(int(s) for s in shape)


def _named(sample: Sampler, name: str, doc: str) -> Sampler:
    """Give a sampler built inside a factory its name and docstring."""
    sample.__name__ = sample.__qualname__ = name  # type: ignore[attr-defined]
    sample.__doc__ = doc
    return sample
