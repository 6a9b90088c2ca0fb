"""Small pytree helpers: inner products and linear combinations of parameter trees."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    r""":math:`\sum_\ell \langle a_\ell, b_\ell \rangle` over the leaves of two trees."""
    leaves = [
        jnp.vdot(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    ]
    return sum(leaves[1:], leaves[0]) if leaves else jnp.zeros(())


def axpy(alpha: jax.Array, x: PyTree, y: PyTree) -> PyTree:
    r""":math:`\alpha x + y`, leaf by leaf (``alpha`` cast to each leaf's dtype)."""
    return jax.tree.map(lambda a, b: jnp.asarray(alpha, a.dtype) * a + b, x, y)


def scale(alpha: jax.Array, x: PyTree) -> PyTree:
    r""":math:`\alpha x`, leaf by leaf."""
    return jax.tree.map(lambda a: jnp.asarray(alpha, a.dtype) * a, x)


def check_like(name: str, tree: PyTree, like: PyTree, like_name: str) -> None:
    """Raise ``ValueError`` unless ``tree`` has the structure and shapes of ``like``."""
    s1, s2 = jax.tree.structure(tree), jax.tree.structure(like)
    if s1 != s2:
        raise ValueError(
            f"{name} must have the same tree structure as {like_name}; "
            f"got {s1}, expected {s2}"
        )
    for i, (a, b) in enumerate(
        zip(jax.tree.leaves(tree), jax.tree.leaves(like), strict=True)
    ):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"{name}: leaf {i} has shape {jnp.shape(a)}, but the same leaf of "
                f"{like_name} has shape {jnp.shape(b)}"
            )


def concrete_float(name: str, value: Any) -> float | None:
    """``float(value)`` when it is concrete (not traced), else ``None``."""
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return None
    except Exception:  # a tracer of another kind
        return None


def nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` when a concrete ``value`` is < 0 or NaN."""
    v = concrete_float(name, value)
    if v is not None and not v >= 0:
        raise ValueError(f"{name} must be >= 0 (a finite number); got {value!r}")


def positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` when a concrete ``value`` is <= 0 or NaN."""
    v = concrete_float(name, value)
    if v is not None and not v > 0:
        raise ValueError(f"{name} must be > 0 (a finite number); got {value!r}")
