"""The built-in catalog: name -> builder of a :class:`Family`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache

from symfisher.errors import FamilyError
from symfisher.families import continuous, discrete, gaussian
from symfisher.families.family import Family

#: Catalog builders in display order; size-generic ones take keywords.
BUILDERS: dict[str, Callable[..., Family]] = {
    "bernoulli": discrete.bernoulli,
    "bernoulli_logit": discrete.bernoulli_logit,
    "categorical": discrete.categorical,
    "categorical_softmax": discrete.categorical_softmax,
    "normal": gaussian.normal,
    "normal_var": gaussian.normal_var,
    "normal_logstd": gaussian.normal_logstd,
    "diag_gaussian": gaussian.diag_gaussian,
    "full_gaussian": gaussian.full_gaussian,
    "poisson": discrete.poisson,
    "poisson_log": discrete.poisson_log,
    "exponential": continuous.exponential,
    "gamma": continuous.gamma,
    "beta": continuous.beta,
    "von_mises": continuous.von_mises,
    "laplace": continuous.laplace,
    "student_t": continuous.student_t,
    "uniform": continuous.uniform,
    "tanh_gaussian": gaussian.tanh_gaussian,
}


def families() -> list[str]:
    """Names in the built-in catalog, in display order."""
    return list(BUILDERS)


def size_keywords(name: str) -> dict[str, int]:
    """Size keywords of a catalog family and their defaults (``{"K": 3}``)."""
    sig = inspect.signature(_builder(name))
    return {k: p.default for k, p in sig.parameters.items()}


def family(name: str, **size: int) -> Family:
    """A catalog family by name, e.g. ``family("categorical_softmax", K=5)``.

    Raises:
      FamilyError: for an unknown name or a size keyword the family does not take.
    """
    _builder(name)
    allowed = size_keywords(name)
    extra = sorted(set(size) - set(allowed))
    if extra:
        takes = f"takes {sorted(allowed)}" if allowed else "takes no size keywords"
        raise FamilyError(f"family {name!r} {takes}; got {extra}")
    return _build(name, tuple(sorted(size.items())))


@cache
def _build(name: str, size: tuple[tuple[str, int], ...]) -> Family:
    return BUILDERS[name](**dict(size))


def _builder(name: str) -> Callable[..., Family]:
    try:
        return BUILDERS[name]
    except (KeyError, TypeError):
        raise FamilyError(
            f"unknown family {name!r}; the catalog has {', '.join(BUILDERS)}"
        ) from None


def catalog() -> list[Family]:
    """Every catalog family at its default size."""
    return [family(n) for n in BUILDERS]
