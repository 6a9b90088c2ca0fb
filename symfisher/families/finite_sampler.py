"""The generic sampler on finite supports: exact, a categorical in JAX.

The log-probabilities of every support point are the family's closed forms,
turned into one JAX function by :func:`sympy.lambdify`; draws are Gumbel-max
(``jax.random.categorical``), so they are jit-, vmap- and shard-able.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from symfisher.errors import FamilyError
from symfisher.families.family import Family
from symfisher.families.sampler_info import _PASS, MAX_FINITE, SamplerInfo, _finite


class _FiniteJax:
    """Categorical over the product of finite supports, logits from lambdify (JAX)."""

    def __init__(self, family: Family) -> None:
        values = [_finite(s, family.name) for s in family.supports]
        n = math.prod(len(v) for v in values)  # type: ignore[arg-type]
        if n > MAX_FINITE:
            raise FamilyError(
                f"{family.name}: the support has {n} points, more than the generic "
                f"sampler enumerates ({MAX_FINITE}); {_PASS}"
            )
        points = list(itertools.product(*values))  # type: ignore[arg-type]
        exprs = []
        for pt in points:
            e = family.log_density.xreplace(
                dict(zip(family.variables, pt, strict=True))
            )
            exprs.append(e)
        self.n = n
        self.multi = len(family.variables) > 1
        self.points = np.array([[float(v) for v in pt] for pt in points])
        try:
            self._fn = sp.lambdify([list(family.params)], exprs, modules="jax")
            probe = self._fn(jnp.ones(len(family.params)))
            jnp.stack([jnp.asarray(v, dtype=float) for v in probe])
        except Exception as e:
            raise FamilyError(
                f"{family.name}: the log-probabilities cannot be evaluated in JAX "
                f"for the generic sampler ({type(e).__name__}: {e}); {_PASS}"
            ) from e

    def logits(self, theta: jax.Array) -> jax.Array:
        vals = self._fn(theta)
        return jnp.stack(
            [jnp.broadcast_to(jnp.asarray(v, dtype=theta.dtype), ()) for v in vals]
        )

    def sample(
        self, key: jax.Array, theta: jax.Array, shape: tuple[int, ...]
    ) -> jax.Array:
        idx = jax.random.categorical(key, self.logits(theta), shape=shape)
        pts = jnp.asarray(self.points, dtype=theta.dtype)
        out = pts[idx]
        return out if self.multi else out[..., 0]

    def info(self) -> SamplerInfo:
        return SamplerInfo(
            "exact categorical",
            0.0,
            None,
            f"{self.n} support points, Gumbel-max on the closed-form log-probabilities",
        )
