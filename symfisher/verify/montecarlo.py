r"""Chunked, jitted Monte Carlo means with standard errors, optionally sharded.

For per-sample values :math:`v(x_i)` with :math:`x_i \sim p_\theta` the estimate
is the sample mean and its standard error :math:`\hat\sigma / \sqrt n`, where
:math:`\hat\sigma^2` is the sample variance. Samples are drawn in chunks of a
fixed size, each from its own key ``fold_in(key, chunk_index)``, so the result
does not depend on how chunks are spread over devices; per-chunk means and
centred sums of squares are merged in a fixed order (Chan et al.'s pairwise
update), which keeps memory bounded by one chunk per device for any sample size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class Estimate:
    """Mean, standard error and running means of one per-sample quantity."""

    mean: np.ndarray
    se: np.ndarray
    n: int
    trace_n: np.ndarray  # cumulative sample sizes (powers of two times the chunk)
    trace_mean: np.ndarray  # running mean at those sizes, shape (len(trace_n), ...)


def _chunk_stats(fn: Callable, sampler: Callable, chunk: int) -> Callable:
    def stats(key: jax.Array, theta: jax.Array) -> Any:
        x = sampler(key, theta, (chunk,))
        vals = fn(theta, x)
        means = jax.tree.map(lambda v: jnp.mean(v, axis=0), vals)
        m2 = jax.tree.map(lambda v, m: jnp.sum((v - m) ** 2, axis=0), vals, means)
        return means, m2

    return stats


_RUNNERS: dict[tuple, Callable] = {}


def _runner(fn: Callable, sampler: Callable, chunk: int, devices: tuple) -> Callable:
    """The jitted per-round function, compiled once per (fn, sampler, chunk, devices)."""
    key = (fn, sampler, chunk, devices)
    if key not in _RUNNERS:
        stats = jax.vmap(_chunk_stats(fn, sampler, chunk), in_axes=(0, None))
        if len(devices) > 1:
            from jax.sharding import Mesh, NamedSharding, PartitionSpec

            mesh = Mesh(np.array(devices), ("d",))
            shard = NamedSharding(mesh, PartitionSpec("d"))
            _RUNNERS[key] = jax.jit(stats, in_shardings=(shard, None))
        else:
            _RUNNERS[key] = jax.jit(stats)
    return _RUNNERS[key]


def mc_means(
    fn: Callable[[jax.Array, jax.Array], dict[str, jax.Array]],
    sampler: Callable,
    theta: jax.Array,
    key: jax.Array,
    n: int,
    chunk: int = 2**15,
    devices: list[Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Estimate]:
    """Means of ``fn(theta, x)`` (a dict of per-sample arrays) over ``n`` draws.

    Args:
      fn: maps ``(theta, x)`` with ``x`` of leading size ``chunk`` to a dict of
        arrays whose leading axis is the sample axis.
      sampler: ``sampler(key, theta, shape)``.
      theta: parameter vector.
      key: PRNG key; chunk ``i`` uses ``fold_in(key, i)``.
      n: number of samples, rounded up to whole chunks.
      chunk: samples per chunk (bounds memory).
      devices: devices to shard the chunks over (default: all local devices).
      progress: called with the number of chunks done after each round.
    """
    devices = list(devices) if devices is not None else jax.devices()
    D = len(devices)
    n_chunks = max(1, -(-n // chunk))
    run = _runner(fn, sampler, chunk, tuple(devices))
    chunk_means: list[dict[str, np.ndarray]] = []
    chunk_m2: list[dict[str, np.ndarray]] = []
    done = 0
    while done < n_chunks:
        idx = np.arange(done, done + D)  # one chunk per device per round
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(idx))
        means, m2 = run(keys, theta)
        means = jax.tree.map(np.asarray, means)
        m2 = jax.tree.map(np.asarray, m2)
        for j in range(min(D, n_chunks - done)):
            chunk_means.append({k: v[j] for k, v in means.items()})
            chunk_m2.append({k: v[j] for k, v in m2.items()})
        done += D
        if progress is not None:
            progress(min(done, n_chunks))
    return {
        k: _merge([c[k] for c in chunk_means], [c[k] for c in chunk_m2], chunk)
        for k in chunk_means[0]
    }


def _merge(means: list[np.ndarray], m2s: list[np.ndarray], chunk: int) -> Estimate:
    """Merge per-chunk (mean, M2) in order; record the running mean at powers of two."""
    mean = np.asarray(means[0], dtype=np.float64)
    m2 = np.asarray(m2s[0], dtype=np.float64)
    count = chunk
    trace_n, trace_mean = [count], [mean.copy()]
    for mb, m2b in zip(means[1:], m2s[1:], strict=True):
        mb = np.asarray(mb, dtype=np.float64)
        delta = mb - mean
        total = count + chunk
        mean = mean + delta * (chunk / total)
        m2 = m2 + np.asarray(m2b, dtype=np.float64) + delta**2 * (count * chunk / total)
        count = total
        k = count // chunk
        if k & (k - 1) == 0:
            trace_n.append(count)
            trace_mean.append(mean.copy())
    if trace_n[-1] != count:
        trace_n.append(count)
        trace_mean.append(mean.copy())
    var = m2 / max(count - 1, 1)
    se = np.sqrt(var / count)
    return Estimate(mean, se, count, np.asarray(trace_n), np.asarray(trace_mean))
