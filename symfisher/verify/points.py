r"""Parameter points of a verification run, and the first call of each kernel there.

Random points are seeded by the run's seed and the family's name; a family with
quadrature kernels draws them uniformly in the kernels' ``QUADRATURE_RANGES``,
where their stated accuracy holds. :func:`_probe` calls each kernel once at a
point and sorts its outputs into healthy ones and named problems (missing,
raising, wrong shape, non-finite).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.errors import DomainError
from symfisher.families.family import Family
from symfisher.verify.kernel_access import Kernels, _jit


def _points(
    family: Family,
    points: int | Sequence[Any],
    seed: int,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> list[np.ndarray]:
    """Parameter points: given, or ``points`` random valid ones.

    Random points of a family with quadrature kernels are drawn uniformly in
    ``ranges`` (the kernels' ``QUADRATURE_RANGES``), where their accuracy is
    stated.
    """
    from symfisher.derive.numeric import random_point

    if isinstance(points, int):
        if points < 1:
            raise DomainError(f"points must be >= 1, got {points}")
        rng = random.Random(f"verify:{seed}:{family.name}")
        out = []
        for _ in range(points):
            pt = _in_ranges(family, ranges, rng) if ranges else None
            if pt is None:
                pt = random_point(family, rng)
            out.append(np.array([pt[p] for p in family.params], dtype=np.float64))
        return out
    out = []
    for p in points:
        if isinstance(p, Mapping):
            vals = family.point(p)
            out.append(np.array([float(vals[s]) for s in family.params]))
        else:
            arr = np.asarray(p, dtype=np.float64)
            if arr.shape != (family.n_params,):
                raise DomainError(
                    f"points: each point needs shape ({family.n_params},) "
                    f"({', '.join(family.param_names)}); got {arr.shape}"
                )
            family.point(list(arr))
            out.append(arr)
    return out


def _in_ranges(
    family: Family, ranges: Mapping[str, tuple[float, float]], rng: random.Random
) -> dict[Any, float] | None:
    """A valid point drawn uniformly in ``ranges`` (None after 1000 invalid draws)."""
    for _ in range(1000):
        vals = [rng.uniform(*ranges[p.name]) for p in family.params]
        try:
            return family.point(vals)
        except Exception:
            continue
    return None


def _named(family: Family, theta: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(family.param_names, theta, strict=True)}


#: the kernels :func:`_probe` calls, with their output shapes for P parameters
#: and n draws, and how each is called; ``kl`` is jitted on its own (the KL
#: checks call that program again), the others are traced into one program
_PROBED = {
    "log_prob": (lambda n, P: (n,), lambda f, t, x: f(t, x)),
    "score": (lambda n, P: (n, P), lambda f, t, x: f(t, x)),
    "hessian_log_prob": (lambda n, P: (n, P, P), lambda f, t, x: f(t, x)),
    "fisher": (lambda n, P: (P, P), lambda f, t, x: f(t)),
    "kl": (lambda n, P: (), lambda f, t, x: f(t, t)),
    "entropy": (lambda n, P: (), lambda f, t, x: f(t)),
}
_ALONE = ("kl",)
_FUSED: dict[tuple, tuple] = {}


def _fused(fns: tuple[tuple[str, Any], ...]) -> tuple[Any, dict[str, Exception]]:
    """One jitted program calling each ``(name, kernel)``, and the errors tracing raised.

    A kernel that raises while traced is left out of the program's outputs; its
    exception is kept in the returned dict (filled at each trace), so that one
    failing kernel neither hides the others nor costs a program of its own.
    """
    key = tuple((name, id(f)) for name, f in fns)
    if key not in _FUSED:
        errors: dict[str, Exception] = {}

        def run(t: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
            errors.clear()
            out = {}
            for name, f in fns:
                try:
                    out[name] = _PROBED[name][1](f, t, x)
                except Exception as e:  # a user's kernel may fail in any way
                    errors[name] = e
            return out

        _FUSED[key] = (jax.jit(run), errors, fns)  # holding fns keeps ids unique
    jitted, errors, _ = _FUSED[key]
    return jitted, errors


def _probe(
    K: Kernels, family: Family, theta: np.ndarray, x: jax.Array
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Call each kernel once; return healthy outputs and (function, problem) pairs."""
    P = family.n_params
    n = x.shape[0]
    t = jnp.asarray(theta)
    present = {name: K.get(name) for name in _PROBED}
    together = tuple(
        (name, f) for name, f in present.items() if f is not None and name not in _ALONE
    )
    alone = [(name, present[name]) for name in _ALONE if present[name] is not None]
    outs: dict[str, Any] = {}
    raised: dict[str, Exception] = {}
    if together:
        program, errors = _fused(together)
        try:
            outs = dict(program(t, x))
            raised = dict(errors)
        except Exception:  # failed as a whole (at run time): one call per kernel
            outs = {}
            alone = [*together, *alone]
    for name, f in alone:
        try:
            outs[name] = _PROBED[name][1](_jit(f), t, x)
        except Exception as e:  # a user's kernel may fail in any way
            raised[name] = e
    ok: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for name, (shape_of, _) in _PROBED.items():
        shape = shape_of(n, P)
        if present[name] is None:
            bad.append((name, "missing (expected a callable)"))
            continue
        e = raised.get(name)
        if isinstance(e, NotImplementedError):
            bad.append((name, f"not available: {e}"))
            continue
        if e is not None:
            bad.append((name, f"raised {type(e).__name__}: {e}"))
            continue
        out = np.asarray(outs[name])
        if out.shape != shape:
            bad.append((name, f"returned shape {out.shape}; expected {shape}"))
        elif not np.all(np.isfinite(out)):
            bad.append((name, "returned NaN or inf at a valid point"))
        else:
            ok[name] = out
    return ok, bad
