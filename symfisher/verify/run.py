r"""``verify``: Monte Carlo and deterministic checks of a family's kernels.

A family defined without a sampler gets the generic one of
:mod:`symfisher.families.generic_sampler` (exact categorical on finite supports,
inverse CDF with a stated u-error of 1e-10 otherwise); a report line at each
point names it and its measured error, and where none can be built the run
raises :class:`~symfisher.errors.FamilyError` saying to pass ``sampler=``.

At each of several seeded valid parameter points, with :math:`x_i \sim p_\theta`
drawn by the family's sampler and :math:`F` the kernels' ``fisher``:

=============================  =====================================================
check                          claim (per entry, z-test unless noted)
=============================  =====================================================
sampler                        :math:`\overline{x} = \mathbb E[x]`,
                               :math:`\overline{x^2} = \mathbb E[x^2]` (light tails)
E[s] = 0                       :math:`\overline{s_i} = 0`
E[s s^T] = F                   :math:`\overline{s_i s_j} = F_{ij}`
-E[H] = F                      :math:`-\overline{H_{ij}} = F_{ij}`
KL Hessian = F                 :math:`\nabla^2_{\theta'} \mathrm{KL}(\theta\|\theta')|_{\theta'=\theta} = F`
                               (deterministic, ``jax.hessian``)
MC KL = KL                     :math:`\overline{\log p_\theta - \log p_{\theta'}} = \mathrm{KL}`
KL ~ quadratic form            :math:`\mathrm{KL}(\theta, \theta+\epsilon\delta) /
                               (\tfrac12\epsilon^2 \delta^\top F \delta) \to 1` (deterministic)
Cramér–Rao                     see :mod:`symfisher.verify.cramer_rao`
=============================  =====================================================

Standard errors are sample standard deviations over :math:`\sqrt n`; the
products :math:`s_i s_j` and :math:`H_{ij}` have finite variance for every
catalog family (their scores have finite fourth moments), and second sample
moments are only tested for families with light tails (exponential families,
finite supports). A floor of :math:`64\,\varepsilon_{64}` times the entry's
scale stands for floating-point rounding when a quantity does not vary with
:math:`x`. Holm's procedure over every stochastic check of the run keeps the
family-wise false-alarm rate at ``alpha``; each check states the smallest
relative error it would detect with probability ``power``.
"""

from __future__ import annotations

import random
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symfisher.errors import DomainError, FamilyError
from symfisher.families.family import Family
from symfisher.verify import stats
from symfisher.verify.kernel_access import Kernels
from symfisher.verify.montecarlo import mc_means
from symfisher.verify.report import Report, Trace
from symfisher.verify.result import Check

KERNEL_FUNCTIONS = ("log_prob", "score", "hessian_log_prob", "fisher", "kl")
EPS_FLOOR = 64 * np.finfo(np.float64).eps
KL_EPSILONS = (1e-1, 1e-2, 1e-3, 1e-4)
PILOT = 2**16
MAX_SAMPLES = 2**23


def _resolve(family: Family | str, kernels: Any) -> tuple[Family, Any]:
    from symfisher.families.catalog import families as catalog_names
    from symfisher.families.catalog import family as catalog_family

    if isinstance(family, str):
        if family not in catalog_names():
            raise FamilyError(
                f"family: unknown name {family!r}; catalog: {', '.join(catalog_names())}"
            )
        family = catalog_family(family)
    if not isinstance(family, Family):
        raise FamilyError(
            f"family must be a catalog name or a Family, got {type(family).__name__}"
        )
    if family.sampler is None:
        # the generic sampler (inverse CDF / exact categorical), or a FamilyError
        # saying what to pass where none can be built
        from symfisher.families.generic_sampler import with_sampler

        family = with_sampler(family)
    if kernels is None:
        from symfisher.kernels import kernels as load

        same = family.name in catalog_names() and (
            catalog_family(family.name, **dict(family.size)).definition_text()
            == family.definition_text()
        )
        if same:
            kernels = load(family.name)
        else:
            from symfisher.codegen.generate import generate

            folder = tempfile.mkdtemp(prefix="symfisher-kernels-")
            generate(family, folder)
            kernels = load(family, path=folder)
    return family, kernels


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


def _probe(
    K: Kernels, family: Family, theta: np.ndarray, x: jax.Array
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Call each kernel once; return healthy outputs and (function, problem) pairs."""
    P = family.n_params
    n = x.shape[0]
    t = jnp.asarray(theta)
    want = {
        "log_prob": ((n,), lambda f: f(t, x)),
        "score": ((n, P), lambda f: f(t, x)),
        "hessian_log_prob": ((n, P, P), lambda f: f(t, x)),
        "fisher": ((P, P), lambda f: f(t)),
        "kl": ((), lambda f: f(t, t)),
    }
    ok: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for name, (shape, call) in want.items():
        f = K.get(name)
        if f is None:
            bad.append((name, "missing (expected a callable)"))
            continue
        try:
            out = np.asarray(call(_jit(f)))
        except NotImplementedError as e:
            bad.append((name, f"not available: {e}"))
            continue
        except Exception as e:  # a user's kernel may fail in any way
            bad.append((name, f"raised {type(e).__name__}: {e}"))
            continue
        if out.shape != shape:
            bad.append((name, f"returned shape {out.shape}; expected {shape}"))
        elif not np.all(np.isfinite(out)):
            bad.append((name, "returned NaN or inf at a valid point"))
        else:
            ok[name] = out
    return ok, bad


def _moments(
    family: Family, theta: np.ndarray
) -> tuple[list[tuple[str, float, float, bool, int]], str]:
    """Closed-form ``E[x_j]`` (and ``E[x_j^2]``): (label, value, scale, second, j) each."""
    import sympy as sp

    from symfisher.derive.expectation import expect
    from symfisher.derive.numeric import expectations_numeric

    ckey = (family.definition_text(), theta.tobytes())
    if ckey in _MOMENTS:
        return _MOMENTS[ckey]
    point = {k: sp.Float(v, 30) for k, v in family.point(list(theta)).items()}
    light = (
        family.is_finite or family.expfam is not None or family.cumulants is not None
    )
    exprs = [v**k for v in family.variables for k in (1, 2)]
    # closed forms come at once for light-tailed families (moments of the
    # sufficient statistic, finite sums); others take 1-D quadrature
    fkey = family.definition_text()
    if fkey not in _FORMS:
        _FORMS[fkey] = expect(family, exprs, seconds=1.0) if light else None
    res = _FORMS[fkey]
    if res is not None and res.values is not None:
        vals = [float(sp.sympify(v).xreplace(point).evalf(30)) for v in res.values]
        how = res.method
    elif len(family.variables) == 1:
        try:
            vals, how = _quad_moments(family, point), "adaptive quadrature (QUADPACK)"
        except Exception:
            vals = [
                float(v) for v in expectations_numeric(family, exprs, point, dps=15)[0]
            ]
            how = "quadrature at 15 digits"
    else:
        return [], "moments unresolved"
    out = []
    for j, v in enumerate(family.variables):
        m1, m2 = vals[2 * j], vals[2 * j + 1]
        sd = float(np.sqrt(max(m2 - m1**2, 0.0)))
        out.append((f"E[{v}]", m1, sd, False, j))
        if light:
            out.append((f"E[{v}^2]", m2, abs(m2), True, j))
    _MOMENTS[ckey] = (out, how)
    return out, how


def _quad_moments(family: Family, point: dict) -> list[float]:
    """``[E[x], E[x^2]]`` of a one-variable continuous family by ``scipy.integrate.quad``."""
    import sympy as sp
    from scipy import integrate

    (x,) = family.variables
    (sup,) = family.supports
    sup = sup.xreplace(point)
    if family.is_discrete or not isinstance(sup, sp.Interval):
        raise ValueError("not a continuous interval support")
    from symfisher.families.normalizer import at_point

    dens = sp.lambdify(
        x, sp.exp(at_point(family.log_density, point)), ["scipy", "numpy"]
    )
    lo, hi = float(sup.inf), float(sup.sup)
    out = []
    for k in (1, 2):
        val, err = integrate.quad(
            lambda t, k=k: dens(t) * t**k, lo, hi, limit=200, epsabs=0, epsrel=1e-11
        )
        if not np.isfinite(val) or err > 1e-8 * max(1.0, abs(val)):
            raise ValueError(f"quadrature did not converge ({val}, {err})")
        out.append(float(val))
    return out


_MOMENTS: dict[tuple, tuple] = {}
_FORMS: dict[str, Any] = {}
_JITTED: dict[tuple, tuple] = {}


def _jit(f: Callable, how: str = "") -> Callable:
    """``jax.jit(f)`` (or of its ``jax.hessian`` in the second argument), cached."""
    key = (id(f), how)
    if key not in _JITTED:
        g = jax.hessian(f, argnums=1) if how == "hessian" else f
        _JITTED[key] = (jax.jit(g), f)  # holding f keeps its id unique
    return _JITTED[key][0]


def verify(
    family: Family | str,
    kernels: Any = None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    points: int | Sequence[Any] = 3,
    alpha: float = stats.ALPHA,
    power: float = stats.POWER,
    target_error: float = 0.02,
    chunk: int = 2**15,
    cramer_rao: bool = True,
    cramer_rao_replicates: int = 400,
    devices: Sequence[Any] | None = None,
    progress: bool | None = None,
) -> Report:
    r"""Verify one family's kernels; see the module docstring for the checks.

    Args:
      family: catalog name or :class:`~symfisher.Family`.
      kernels: module or mapping with ``log_prob``, ``score``,
        ``hessian_log_prob``, ``fisher``, ``kl`` (generated signatures);
        default the generated kernels (generated on the fly for user families).
      n_samples: Monte Carlo draws per point: fewer than ``chunk`` exactly (one
        chunk of that size), more rounded up to whole chunks (with a warning);
        too few for ``target_error`` warn with the error they can detect. The
        default picks it per family from a pilot run of ``PILOT`` draws: enough
        for every check to detect ``target_error`` at ``power`` (at most ``MAX_SAMPLES``).
      seed: seeds the points and every draw.
      points: number of random valid points, or the points themselves
        (mappings by parameter name, or arrays in parameter order).
      alpha: family-wise false-alarm rate (Holm) over the run's stochastic checks.
      power: power at which ``detectable`` errors are stated.
      target_error: warn when a check cannot detect this relative error.
      chunk: samples per jitted chunk (bounds memory).
      cramer_rao: also run the Cramér–Rao simulations (first point).
      cramer_rao_replicates: simulated data sets per sample size.
      devices: devices to shard Monte Carlo chunks over (default: all).
      progress: show a progress bar on stderr (default: when stderr is a terminal).
    """
    return verify_many([family], [kernels], **_settings(locals()))


def _settings(loc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in loc.items() if k not in ("family", "kernels")}


def verify_many(
    families: Sequence[Family | str],
    kernels: Sequence[Any] | None = None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    points: int | Sequence[Any] = 3,
    alpha: float = stats.ALPHA,
    power: float = stats.POWER,
    target_error: float = 0.02,
    chunk: int = 2**15,
    cramer_rao: bool = True,
    cramer_rao_replicates: int = 400,
    devices: Sequence[Any] | None = None,
    progress: bool | None = None,
) -> Report:
    """Verify several families in one run: one Holm correction over all of them."""
    if n_samples is not None and (
        not isinstance(n_samples, int | np.integer) or n_samples < 2
    ):
        raise DomainError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if not 0 < alpha < 1:
        raise DomainError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise DomainError(f"power must lie in (0, 1), got {power}")
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise DomainError(f"chunk must be a positive integer, got {chunk!r}")
    if n_samples is not None and n_samples < chunk:
        chunk = int(n_samples)  # honoured exactly: one chunk of that size
    elif n_samples is not None and n_samples % chunk:
        warnings.warn(
            f"n_samples={n_samples} rounded up to {-(-n_samples // chunk) * chunk} "
            f"(whole chunks of {chunk} draws)",
            stacklevel=3,
        )
    kernels = list(kernels) if kernels is not None else [None] * len(families)
    # float64 statistics whatever the caller's setting
    with jax.enable_x64(True):
        start = time.perf_counter()
        checks: list[Check] = []
        traces: list[Trace] = []
        resolved = [_resolve(f, k) for f, k in zip(families, kernels, strict=True)]
        all_points = [
            _points(fam, points, seed, Kernels(k).ranges()) for fam, k in resolved
        ]
        # generic samplers build their tables here, outside jit, so that a point
        # they cannot serve raises a FamilyError naming it before any sampling
        notes = {
            id(fam): [_generic_sampler_note(fam, th) for th in pts]
            for (fam, _), pts in zip(resolved, all_points, strict=True)
        }
        m_est = sum(
            len(pts) * (2 * len(fam.variables) + fam.n_params * (fam.n_params + 2) + 3)
            for (fam, _), pts in zip(resolved, all_points, strict=True)
        )
        chosen: dict[str, int] = {}
        bar = _progress(progress)
        with bar:
            for (fam, kmod), pts in zip(resolved, all_points, strict=True):
                task = bar.add_task(f"verifying {fam.name}", total=len(pts))
                smooth = _smooth(fam)
                n_fam = n_samples
                if (
                    n_fam is None
                ):  # pilot runs at every point, with keys not reused later
                    pilot = []
                    for i, theta in enumerate(pts):
                        pkey = jax.random.fold_in(jax.random.key(seed + 2**20), i)
                        pilot += _verify_point(
                            fam,
                            Kernels(kmod),
                            theta,
                            pkey,
                            PILOT,
                            chunk,
                            devices,
                            smooth,
                        )[0]
                    n_fam = _enough(pilot, target_error, m_est, alpha, power, chunk)
                chosen[fam.name] = int(-(-n_fam // chunk) * chunk)
                for i, theta in enumerate(pts):
                    key = jax.random.fold_in(jax.random.key(seed), i)
                    c, t = _verify_point(
                        fam, Kernels(kmod), theta, key, n_fam, chunk, devices, smooth
                    )
                    for tr in t:
                        tr.point_index = i
                    note = notes[id(fam)][i]
                    checks += ([note] if note is not None else []) + c
                    traces += t
                    if cramer_rao and i == 0:
                        checks += _cramer_rao(
                            fam, kmod, theta, key, cramer_rao_replicates, alpha
                        )
                    bar.advance(task)
        _decide(checks, alpha, power, target_error)
        settings = {
            "n_samples": chosen,
            "seed": seed,
            "points": points if isinstance(points, int) else len(points),
            "alpha": alpha,
            "power": power,
            "target_error": target_error,
            "chunk": int(chunk),
            "devices": len(devices) if devices is not None else len(jax.devices()),
        }
        return Report(checks, traces, settings, time.perf_counter() - start)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def advance(self, *a: Any, **k: Any) -> None:
        return None


def _progress(show: bool | None) -> Any:
    import sys

    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return _NoBar()
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=True)


def _cramer_rao(
    fam: Family, kmod: Any, theta: np.ndarray, key: jax.Array, R: int, alpha: float
) -> list[Check]:
    from symfisher.verify.cramer_rao import cramer_rao_checks

    try:
        out = cramer_rao_checks(
            fam, kmod, theta, jax.random.fold_in(key, 1000), replicates=R, alpha=alpha
        )
    except Exception as e:  # a broken kernel must not crash the run
        out = [
            Check(
                family=fam.name,
                name="Cramér–Rao simulation",
                point=_named(fam, theta),
                kind="deterministic",
                verdict="error",
                message=f"{type(e).__name__}: {e}",
            )
        ]
    for c in out:
        # R simulated data sets resolve tens of percent, not 2%: their detectable
        # error is reported, but they are not held to the Monte Carlo target
        c.target_exempt = True
    return out


def _smooth(fam: Family) -> bool:
    """False when a second derivative of the log-density has a Dirac mass (|x - mu|)."""
    import sympy as sp

    lp = fam.log_density
    for i, p in enumerate(fam.params):
        for q in fam.params[i:]:
            if sp.diff(lp, p, q).has(sp.DiracDelta, sp.Heaviside):
                return False
    return True


def _enough(
    pilot: list[Check], target: float, m: int, alpha: float, power: float, chunk: int
) -> int:
    """Samples for every pilot check to detect ``target`` (10% margin on the pilot's spread)."""
    rel = [
        c.se * np.sqrt(c.n) / abs(c.scale)
        for c in pilot
        if c.kind == "stochastic" and c.se and c.n and c.scale
    ]
    if not rel:
        return PILOT
    n = stats.samples_for(1.1 * max(rel), target, m, alpha, power)
    return int(min(max(n, PILOT), MAX_SAMPLES))


def _decide(checks: list[Check], alpha: float, power: float, target: float) -> None:
    """Holm (:func:`stats.decide`); warn when a check cannot detect ``target``."""
    weak = [
        c
        for c in stats.decide(checks, alpha, power)
        if c.detectable is not None and c.detectable > target and not c.target_exempt
    ]
    if weak:
        worst = max(weak, key=lambda c: c.detectable)
        warnings.warn(
            f"{len(weak)} check(s) cannot detect a {target:.0%} relative error at "
            f"{power:.0%} power; worst: {worst.family} {worst.name} {worst.entry} "
            f"detects {worst.detectable:.1%} with n = {worst.n}. Increase n_samples.",
            stacklevel=3,
        )


def _z_check(
    fam: Family,
    theta: np.ndarray,
    name: str,
    entry: str,
    observed: float,
    se: float,
    expected: float,
    scale: float,
    n: int,
    bound: float = 0.0,
) -> Check:
    """A z-test of ``observed`` (standard error ``se``) against ``expected``.

    ``bound``: the error ``expected`` may have (a quadrature kernel's stated
    accuracy, absolute); the test is against the nearest value within it.
    """
    se_eff = float(np.hypot(se, EPS_FLOOR * (abs(expected) + abs(scale))))
    dev = observed - expected
    target = observed if abs(dev) <= bound else expected + np.sign(dev) * bound
    z, p = stats.z_test(observed, se_eff, float(target))
    return Check(
        family=fam.name,
        name=name,
        entry=entry,
        point=_named(fam, theta),
        kind="stochastic",
        expected=float(expected),
        observed=float(observed),
        se=se_eff,
        statistic=z,
        p_value=p,
        n=n,
        scale=scale,
    )


def _sample_fn(K: Kernels, P: int, parts: set[str]) -> Callable:
    """Per-sample quantities; theta_all = concat(theta, theta_q)."""
    log_prob, score, hess = K.get("log_prob"), K.get("score"), K.get("hessian_log_prob")

    def fn(theta_all: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
        theta, theta_q = theta_all[:P], theta_all[P:]
        out = {}
        xf = x.astype(jnp.float64).reshape(x.shape[0], -1)
        out["x"] = xf
        out["x2"] = xf**2
        if "score" in parts:
            s = score(theta, x)
            out["s"] = s
            out["ss"] = s[:, :, None] * s[:, None, :]
        if "hessian_log_prob" in parts:
            out["H"] = hess(theta, x)
        if "log_prob" in parts:
            out["llr"] = log_prob(theta, x) - log_prob(theta_q, x)
        return out

    return fn


_FN_CACHE: dict[tuple, tuple[Callable, tuple]] = {}


def _cached_fn(K: Kernels, P: int, parts: set[str]) -> Callable:
    # Keyed by the callables themselves, not by id(K.obj): a mapping may be
    # mutated between runs, and a freed mapping's id may be reused. The cached
    # value holds the callables, so their ids stay unique while cached.
    funcs = tuple(K.get(n) for n in ("log_prob", "score", "hessian_log_prob"))
    key = (tuple(id(f) for f in funcs), P, tuple(sorted(parts)))
    if key not in _FN_CACHE:
        _FN_CACHE[key] = (_sample_fn(K, P, parts), funcs)
    return _FN_CACHE[key][0]


def _generic_sampler_note(fam: Family, theta: np.ndarray) -> Check | None:
    """A report line naming the generic sampler and its error at ``theta``."""
    from symfisher.families.generic_sampler import GenericSampler

    if not isinstance(fam.sampler, GenericSampler):
        return None
    info = fam.sampler.info(theta)
    err = "exact" if info.stated_error == 0 else f"u-error ≤ {info.stated_error:.0e}"
    return Check(
        family=fam.name,
        name=f"sampler: generic {info.method}, {err}",
        entry="",
        point=_named(fam, theta),
        kind="report",
        verdict="report",
        message=info.describe()
        + " (the family has no sampler of its own: pass sampler= to define_family "
        "to use one)",
    )


_SAMPLER_CACHE: dict[tuple, Callable] = {}


def _sampler(fam: Family, P: int) -> Callable:
    key = (fam.name, id(fam.sampler), P)
    if key not in _SAMPLER_CACHE:
        _SAMPLER_CACHE[key] = _make_sampler(fam, P)
    return _SAMPLER_CACHE[key]


def _make_sampler(fam: Family, P: int) -> Callable:
    sample = fam.sampler

    def draw(key: jax.Array, theta_all: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return sample(key, theta_all[:P], shape)

    return draw


def _theta_q(
    fam: Family, theta: np.ndarray, F: np.ndarray | None, key: jax.Array
) -> np.ndarray:
    """A valid nearby point with KL about 1/2 (½ δᵀFδ = 1/2), shrunk into the domain."""
    P = len(theta)
    # depends on the point only, so that pilot and main runs test the same KL
    u = np.random.default_rng(zlib.crc32(theta.tobytes())).normal(size=P)
    if F is not None:
        quad = float(u @ F @ u)
        u = u / np.sqrt(quad) if quad > 0 else u
    for scale in (1.0, 0.5, 0.25, 0.1, 0.05, 0.01):
        q = theta + scale * u
        try:
            fam.point(list(q))
        except Exception:
            continue
        if fam.support_depends_on_params and np.any(q < theta):
            continue
        return q
    return theta * 1.01


def _verify_point(
    fam: Family,
    K: Kernels,
    theta: np.ndarray,
    key: jax.Array,
    n: int,
    chunk: int,
    devices: Sequence[Any] | None,
    smooth: bool = True,
) -> tuple[list[Check], list[Trace]]:
    P = fam.n_params
    named = _named(fam, theta)
    x_probe = fam.sampler(jax.random.fold_in(key, 12345), jnp.asarray(theta), (8,))
    ok, bad = _probe(K, fam, theta, x_probe)
    checks = []
    regular = not fam.support_depends_on_params
    for fname, problem in bad:
        if fname in ("fisher", "kl") and not regular:
            continue
        if fname == "kl" and problem.startswith("not available"):
            checks.append(
                Check(
                    family=fam.name,
                    name="KL checks",
                    entry="",
                    point=named,
                    kind="report",
                    verdict="not applicable",
                    message=problem,
                )
            )
            continue
        checks.append(
            Check(
                family=fam.name,
                name=f"kernel {fname}",
                entry="",
                point=named,
                kind="deterministic",
                verdict="error",
                message=f"{fname} at {named}: {problem}",
            )
        )
    F = ok.get("fisher")
    theta_q = _theta_q(fam, theta, F, key)
    parts = set(ok) & {"score", "hessian_log_prob", "log_prob"}
    fn = _cached_fn(K, P, parts)
    est = mc_means(
        fn,
        _sampler(fam, P),
        jnp.asarray(np.concatenate([theta, theta_q])),
        jax.random.fold_in(key, 1),
        n,
        chunk,
        list(devices) if devices is not None else None,
    )
    N = est["x"].n
    traces: list[Trace] = []
    # sampler sanity
    try:
        moments, how = _moments(fam, theta)
    except Exception as e:
        moments, how = [], f"moments unavailable ({type(e).__name__})"
    if not moments:
        checks.append(
            Check(
                family=fam.name,
                name="sampler moments",
                entry="",
                point=named,
                kind="report",
                verdict="not applicable",
                message=how,
            )
        )
    for label, value, scale, second, j in moments:
        e = est["x2" if second else "x"]
        checks.append(
            _z_check(
                fam,
                theta,
                "sampler moments",
                label,
                e.mean[j],
                e.se[j],
                value,
                scale,
                N,
            )
        )
    if not regular:
        checks.append(_non_regular(fam, theta, est, ok))
        return checks, traces
    if F is None:
        return checks, traces
    d = np.sqrt(np.abs(np.diag(F)))
    f_bound = K.accuracy("fisher") * float(np.max(np.abs(F)))  # quadrature F
    if "score" in ok:
        s = est["s"]
        for i in range(P):
            checks.append(
                _z_check(
                    fam, theta, "E[s] = 0", f"({i})", s.mean[i], s.se[i], 0.0, d[i], N
                )
            )
        ss = est["ss"]
        for i in range(P):
            for j in range(i, P):
                checks.append(
                    _z_check(
                        fam,
                        theta,
                        "E[s s^T] = F",
                        f"({i}, {j})",
                        ss.mean[i, j],
                        ss.se[i, j],
                        F[i, j],
                        d[i] * d[j],
                        N,
                        f_bound,
                    )
                )
        traces.append(_trace(fam, "E[s s^T] = F", ss, F, np.outer(d, d)))
    if "hessian_log_prob" in ok and not smooth:
        checks.append(
            Check(
                family=fam.name,
                name="-E[H] = F",
                entry="",
                point=named,
                kind="report",
                verdict="not applicable",
                message="the log-density is not twice differentiable in the parameters "
                "(e.g. |x - mu|): the pointwise Hessian misses the Dirac mass of the "
                "second derivative, so -E[H] = F does not hold for it; E[s sᵀ] = F does",
            )
        )
    elif "hessian_log_prob" in ok:
        H = est["H"]
        for i in range(P):
            for j in range(i, P):
                checks.append(
                    _z_check(
                        fam,
                        theta,
                        "-E[H] = F",
                        f"({i}, {j})",
                        -H.mean[i, j],
                        H.se[i, j],
                        F[i, j],
                        d[i] * d[j],
                        N,
                        f_bound,
                    )
                )
        traces.append(_trace(fam, "-E[H] = F", H, -F, np.outer(d, d)))
    if "kl" in ok:
        kl_checks = _kl_checks(fam, K, theta, theta_q, F, est.get("llr"), N, key)
        checks += kl_checks
        mc = [c for c in kl_checks if c.name == "MC KL = KL"]
        if mc:  # the closed-form KL that check compared against
            kl_val = mc[0].expected
            traces.append(
                _trace(
                    fam,
                    "MC KL = KL",
                    est["llr"],
                    np.asarray(kl_val),
                    np.asarray(abs(kl_val)),
                )
            )
    return checks, traces


def _kl_checks(
    fam: Family,
    K: Kernels,
    theta: np.ndarray,
    theta_q: np.ndarray,
    F: np.ndarray,
    llr: Any,
    N: int,
    key: jax.Array,
) -> list[Check]:
    kl = K.get("kl")
    named = _named(fam, theta)
    out = []
    t = jnp.asarray(theta)
    try:
        Hk = np.asarray(_jit(kl, "hessian")(t, t))
        rel = float(np.max(np.abs(Hk - F)) / np.max(np.abs(F)))
        # quadrature kernels: their stated accuracies on top of rounding
        tol = 1e-8 + K.accuracy("kl") + K.accuracy("fisher")
        ok = rel <= tol
        out.append(
            Check(
                family=fam.name,
                name="KL Hessian = F",
                entry="",
                point=named,
                kind="deterministic",
                expected=0.0,
                observed=rel,
                se=None,
                statistic=rel,
                p_value=None,
                verdict="pass" if ok else "fail",
                detectable=None,
                n=None,
                message=""
                if ok
                else f"max |hessian(kl) - F| / max|F| = {rel:.3g} > {tol:.3g} (autodiff of "
                "a closed form is exact to rounding; a quadrature kernel adds its stated "
                "accuracy)",
            )
        )
    except Exception as e:
        out.append(
            Check(
                family=fam.name,
                name="KL Hessian = F",
                entry="",
                point=named,
                kind="deterministic",
                verdict="error",
                message=f"jax.hessian(kl) at {named}: {type(e).__name__}: {e}",
            )
        )
    if llr is not None:
        kl_val = float(_jit(kl)(t, jnp.asarray(theta_q)))
        c = _z_check(
            fam,
            theta,
            "MC KL = KL",
            f"theta'={np.round(theta_q, 4).tolist()}",
            llr.mean,
            llr.se,
            kl_val,
            abs(kl_val),
            N,
            K.accuracy("kl") * abs(kl_val),
        )
        out.append(c)
    # KL(θ, θ + εδ) / (½ ε² δᵀFδ) → 1, with δ of unit length in the Fisher metric
    # (δᵀFδ = 1) so that ε is dimensionless: a raw normal δ stepped out of the
    # domain or far into the cubic term near a boundary (categorical with a
    # small p_k), and made KL comparable to rounding where F is small.
    u = np.asarray(jax.random.normal(jax.random.fold_in(key, 7), (len(theta),)))
    quad = float(u @ F @ u)
    if quad > 0:
        u, quad = u / np.sqrt(quad), 1.0
    ratios = []
    for eps in KL_EPSILONS:
        q = theta + eps * u
        try:
            fam.point(list(q))
        except Exception:
            ratios.append(float("nan"))
            continue
        ratios.append(
            float(_jit(kl)(t, jnp.asarray(q))) / (0.5 * eps**2 * quad)
            if quad > 0
            else float("nan")
        )
    last = abs(ratios[-1] - 1.0)
    # compare with the largest ε that stayed in the domain (NaN never compares)
    first = next((abs(r - 1.0) for r in ratios if np.isfinite(r)), float("nan"))
    ok = bool(np.isfinite(last) and last <= 1e-2 and last <= first + 1e-6)
    out.append(
        Check(
            family=fam.name,
            name="KL ~ ½ δᵀFδ",
            entry="eps=" + ",".join(f"{e:g}" for e in KL_EPSILONS),
            point=named,
            kind="deterministic",
            expected=1.0,
            observed=ratios[-1],
            se=None,
            statistic=last,
            p_value=None,
            verdict="pass" if ok else "fail",
            detectable=None,
            n=None,
            message="ratios "
            + ", ".join(f"{r:.6f}" for r in ratios)
            + (
                ""
                if ok
                else ": KL/(½ε²δᵀFδ) does not tend to 1 (|r-1| must shrink below 1e-2)"
            ),
        )
    )
    return out


def _non_regular(
    fam: Family, theta: np.ndarray, est: dict[str, Any], ok: dict[str, Any]
) -> Check:
    parts = []
    if "s" in est:
        parts.append(f"E[s] ≈ {np.round(est['s'].mean, 6).tolist()} (not 0)")
        parts.append(f"E[s²] ≈ {np.round(np.diag(est['ss'].mean), 6).tolist()}")
    if "H" in est:
        parts.append(f"-E[H] ≈ {np.round(-np.diag(est['H'].mean), 6).tolist()}")
    return Check(
        family=fam.name,
        name="Fisher identities",
        entry="",
        point=_named(fam, theta),
        kind="report",
        verdict="not applicable",
        message="the support depends on the parameters, so differentiation and integration "
        "do not commute and the identities E[s] = 0, E[s sᵀ] = -E[H] fail: "
        + "; ".join(parts),
    )


def _trace(
    fam: Family, name: str, e: Any, expected: np.ndarray, scale: np.ndarray
) -> Trace:
    err = np.abs(e.trace_mean - expected) / np.where(scale > 0, scale, 1.0)
    axes = tuple(range(1, err.ndim))
    worst = np.max(err, axis=axes) if axes else err
    sd = e.se * np.sqrt(e.n) / np.where(scale > 0, scale, 1.0)
    ref = float(np.max(sd)) / np.sqrt(e.trace_n)
    return Trace(fam.name, name, e.trace_n.tolist(), worst.tolist(), ref.tolist())
