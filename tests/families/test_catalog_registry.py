"""The catalog registry: one module per family, found, checked and ordered."""

from __future__ import annotations

import pkgutil
import random
import subprocess
import sys
from types import ModuleType

import pytest

import symfisher.families.catalog as cat
from symfisher.errors import FamilyError
from symfisher.families.family import Family
from symfisher.families.lazy import LazySampler
from symfisher.families.points import random_point
from symfisher.families.samplers import SAMPLERS

#: the public display order (CATALOG.md, ``symfisher list``)
DISPLAY_ORDER = [
    "bernoulli",
    "bernoulli_logit",
    "categorical",
    "categorical_softmax",
    "normal",
    "normal_var",
    "normal_logstd",
    "diag_gaussian",
    "full_gaussian",
    "poisson",
    "poisson_log",
    "exponential",
    "gamma",
    "beta",
    "von_mises",
    "laplace",
    "student_t",
    "uniform",
    "tanh_gaussian",
]


def _module_names() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(cat.__path__)}


def _fake(name: str, **attrs: object) -> ModuleType:
    mod = ModuleType(f"symfisher.families.catalog.{name}")
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def _build(K: int = 3) -> Family:
    raise AssertionError("not called")


def _sampler(K: int = 3) -> object:
    raise AssertionError("not called")


def test_every_public_module_is_registered() -> None:
    public = {n for n in _module_names() if not n.startswith("_")}
    assert public == set(cat.MODULES) == set(cat.BUILDERS) == set(SAMPLERS)
    for name, mod in cat.MODULES.items():
        assert cat.BUILDERS[name] is mod.build
        assert SAMPLERS[name] is mod.sampler


def test_shared_modules_are_not_families() -> None:
    private = {n for n in _module_names() if n.startswith("_")}
    assert {"_gaussian", "_indicator"} <= private
    assert not private & set(cat.BUILDERS)


def test_orders_are_distinct_and_give_the_display_order() -> None:
    orders = [m.ORDER for m in cat.MODULES.values()]
    assert len(set(orders)) == len(orders)
    assert orders == sorted(orders)
    assert cat.families() == DISPLAY_ORDER


def test_each_module_builds_its_own_family_with_a_lazy_sampler() -> None:
    for name in cat.families():
        fam = cat.family(name)
        assert fam.name == name
        assert isinstance(fam.sampler, LazySampler)
        assert fam.sampler.name == name
        assert dict(fam.sampler.size) == cat.size_keywords(name)


def test_the_registry_accepts_a_well_formed_module() -> None:
    mod = _fake("fake", ORDER=0, build=_build, sampler=_sampler)
    assert cat._registry([mod]) == {"fake": mod}


@pytest.mark.parametrize("missing", ["build", "sampler", "ORDER"])
def test_a_module_missing_a_required_name_is_refused(missing: str) -> None:
    attrs = {"ORDER": 0, "build": _build, "sampler": _sampler}
    del attrs[missing]
    with pytest.raises(FamilyError, match=f"'fake' does not define {missing}"):
        cat._registry([_fake("fake", **attrs)])


def test_a_repeated_order_is_refused() -> None:
    a = _fake("a", ORDER=3, build=_build, sampler=_sampler)
    b = _fake("b", ORDER=3, build=_build, sampler=_sampler)
    with pytest.raises(FamilyError, match="'a' and 'b' share ORDER = 3"):
        cat._registry([a, b])


def test_a_non_integer_order_is_refused() -> None:
    mod = _fake("fake", ORDER="1", build=_build, sampler=_sampler)
    with pytest.raises(FamilyError, match="ORDER must be an int"):
        cat._registry([mod])


def test_sampler_and_build_must_take_the_same_size_keywords() -> None:
    def sampler(d: int = 2) -> object:
        raise AssertionError("not called")

    mod = _fake("fake", ORDER=0, build=_build, sampler=sampler)
    with pytest.raises(FamilyError, match="sampler takes"):
        cat._registry([mod])


def test_defining_the_catalog_does_not_import_jax() -> None:
    code = (
        "import sys\n"
        "from symfisher.families.catalog import catalog\n"
        "catalog()\n"
        "assert 'jax' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


SIZES = {"categorical": {"K": 4}, "diag_gaussian": {"d": 3}, "full_gaussian": {"d": 3}}


@pytest.mark.parametrize("name", DISPLAY_ORDER)
def test_every_sampler_factory_samples_the_right_shape(name: str) -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    size = SIZES.get(name, {})
    fam = cat.family(name, **size)
    sample = cat.MODULES[name].sampler(**size)
    point = random_point(fam, random.Random(0))
    theta = jnp.asarray([point[p] for p in fam.params], dtype=jnp.float32)
    x = sample(jax.random.key(0), theta, (5,))
    event = (len(fam.variables),) if len(fam.variables) > 1 else ()
    assert x.shape == (5, *event)
    assert x.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(x)))
