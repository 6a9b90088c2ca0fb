r"""Monte Carlo verification of a state-conditioned policy's kernels and derivation.

States are drawn from the policy's state distribution, then actions from the
generated kernel's sampler, so every stochastic check averages over both:

.. math:: \mathbb E_{s,a}[s_\theta] = 0, \quad
   \mathbb E_{s,a}[s_\theta s_\theta^\top] = F, \quad
   -\mathbb E_{s,a}[\nabla^2_\theta\log\pi] = F, \quad
   \mathbb E_s[F_{\rm kernel}(s)] = F, \quad
   \mathbb E_s[\mathrm{KL}_{\rm kernel}(s)] = \mathrm{KL}, \quad
   \mathbb E_{s,a}[-\log\pi(a|s) - H_{\rm kernel}(s)] = 0

with :math:`F` and :math:`\mathrm{KL}` the closed forms of the symbolic derivation
(:math:`\mathbb E_s` over the symbolic state distribution). Each entry is a z-test
against its standard error, Holm-controlled over the run. Deterministic checks:
the Hessian of the kernel KL at :math:`\theta'=\theta` equals the kernel Fisher on
the same states; ``fvp`` equals :math:`Fv`; for a finite state distribution the
kernel Fisher weighted over the support equals the closed form to 1e-10.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import sympy as sp

from symfisher.families.states import FiniteStates
from symfisher.verify import stats
from symfisher.verify.report import Report
from symfisher.verify.result import Check

N_DEFAULT = 2**16
DET_RTOL = 1e-8


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(n)


def _theta_point(policy: Any, rng: np.random.Generator) -> np.ndarray:
    theta = rng.normal(0.0, 0.5, size=policy.theta_shape)
    return theta


def verify_policy(
    name: str,
    *,
    points: int = 2,
    samples: int = N_DEFAULT,
    seed: int = 0,
    alpha: float = stats.ALPHA,
    kernels: Any = None,
) -> Report:
    """Verify a built-in policy's kernels against its derivation by Monte Carlo.

    Args:
      name: ``linear_softmax``, ``linear_gaussian`` or ``tabular_softmax``.
      points: random parameter points (seeded).
      samples: state-action pairs per point.
      seed: seed of the points and of the samples.
      alpha: family-wise false-alarm rate (Holm).
      kernels: a kernel module to verify instead of the generated one (tests
        plant bugs this way).

    Raises:
      ValueError: naming ``points`` or ``samples`` when they are not positive.
    """
    import jax

    from symfisher.derive.policy_derivation import derive_policy
    from symfisher.families.policies import policy as policy_by_name
    from symfisher.kernels import kernels as load_kernels

    if not isinstance(points, int) or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if not isinstance(samples, int) or samples < 16:
        raise ValueError(f"samples must be an integer >= 16, got {samples!r}")
    t0 = time.perf_counter()
    pol = policy_by_name(name)
    d = derive_policy(pol)
    k = kernels if kernels is not None else load_kernels(name)
    rng = np.random.default_rng(seed)
    checks: list[Check] = []
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(seed)
        for idx in range(points):
            theta = _theta_point(pol, rng)
            key, ks, ka = jax.random.split(key, 3)
            checks += _point_checks(pol, d, k, theta, ks, ka, samples, idx)
    stats.decide(checks, alpha)
    return Report(
        checks=checks,
        settings={
            "policy": name,
            "points": points,
            "samples": samples,
            "seed": seed,
            "alpha": alpha,
            "states": pol.states.description,
        },
        seconds=time.perf_counter() - t0,
    )


def _stochastic(
    family: str,
    name: str,
    entry: str,
    pt: dict,
    est: float,
    se: float,
    target: float,
    n: int,
    scale: float,
) -> Check:
    """A z-test; an entry constant over the samples is compared exactly instead.

    ``scale``: the size the detectable error is relative to (set once Holm's
    level is known).
    """
    if se <= 1e-13 * max(1.0, abs(target)):
        return _deterministic(
            family, name, pt, np.array(est), np.array(target), 1e-10, entry
        )
    z, p = stats.z_test(est, se, target)
    return Check(
        family=family,
        name=name,
        entry=entry,
        point=pt,
        kind="stochastic",
        expected=float(target),
        observed=float(est),
        se=float(se),
        statistic=z,
        p_value=p,
        n=n,
        scale=scale,
    )


def _deterministic(
    family: str,
    name: str,
    pt: dict,
    got: np.ndarray,
    want: np.ndarray,
    rtol: float,
    entry: str = "",
) -> Check:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    ok = bool(np.isfinite(err) and err <= rtol)
    msg = "" if ok else f"relative error {err:.3g} > {rtol:g}"
    return Check.deterministic(family, name, pt, err, ok, msg, entry=entry)


_JITTED: dict[tuple[str, Any], Any] = {}


def _jit(fn: Any, how: str = "call") -> Any:
    r"""``fn`` compiled once per run of the process (memoised on the function).

    Called eagerly, a kernel runs op by op, and each op of each new shape is
    compiled on its own: several seconds of XLA compilation per policy.
    ``how``: ``"call"`` (``fn`` itself), ``"kl_per_state"``
    (:math:`s \mapsto \mathrm{KL}(\theta, \theta'; s)`, vmapped over states) or
    ``"kl_hessian"`` (the Hessian of ``fn`` in its second argument) or
    ``"states"`` (``fn(key, n)`` with ``n`` static).
    """
    import jax

    if (how, fn) not in _JITTED:
        if how == "kl_per_state":
            eager = jax.vmap(lambda t, q, s: fn(t, q, s[None]), in_axes=(None, None, 0))
        elif how == "kl_hessian":
            eager = jax.hessian(fn, argnums=1)
        else:
            eager = fn
        jitted = jax.jit(eager, static_argnums=1 if how == "states" else ())
        _JITTED[how, fn] = _or_eager(jitted, eager)
    return _JITTED[how, fn]


def _or_eager(jitted: Any, eager: Any) -> Any:
    """``jitted``, or ``eager`` for kernels that cannot be traced (NumPy inside)."""
    import jax

    untraceable = (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerArrayConversionError,
        jax.errors.TracerBoolConversionError,
        jax.errors.TracerIntegerConversionError,
    )

    def call(*args: Any) -> Any:
        try:
            return jitted(*args)
        except untraceable:
            return eager(*args)

    return call


def _point_checks(
    pol: Any,
    d: Any,
    k: Any,
    theta: np.ndarray,
    ks: Any,
    ka: Any,
    n: int,
    idx: int,
) -> list[Check]:
    import jax.numpy as jnp

    name = pol.name
    P = pol.n_params
    flat = theta.reshape(-1)
    tp = {p.name: float(v) for p, v in zip(pol.theta, flat, strict=True)}
    pt = tp | {"point": idx}
    F = d.fisher_at(tp)
    th = jnp.asarray(theta)
    states = _jit(pol.sample_states, "states")(ks, n)
    actions = _jit(k.sample)(ka, th, states)
    S = np.asarray(_jit(k.score)(th, states, actions)).reshape(n, P)
    H = np.asarray(_jit(k.hessian_log_prob)(th, states, actions)).reshape(n, P, P)
    Fs = np.asarray(_jit(k.fisher_state)(th, states)).reshape(n, P, P)
    out: list[Check] = []
    m, se = _mean_se(S)
    for i in range(P):
        sc = float(np.sqrt(F[i, i]))
        out.append(
            _stochastic(name, "E[s] = 0", f"({i},)", pt, m[i], se[i], 0.0, n, sc)
        )
    iu = np.triu_indices(P)
    for label, X in (
        ("E[s s^T] = F", S[:, :, None] * S[:, None, :]),
        ("-E[H] = F", -H),
        ("E_s[F(s)] = F", Fs),
    ):
        m, se = _mean_se(X[:, iu[0], iu[1]])
        for j, (a, b) in enumerate(zip(*iu, strict=True)):
            sc = float(np.sqrt(F[a, a] * F[b, b]))
            out.append(
                _stochastic(name, label, f"({a}, {b})", pt, m[j], se[j], F[a, b], n, sc)
            )
    # Monte Carlo KL against the closed form, at a nearby theta'
    if d.kl is not None:
        theta_q = theta + np.random.default_rng(idx + 1).normal(0, 0.3, theta.shape)
        per_state = _jit(k.kl, "kl_per_state")(th, jnp.asarray(theta_q), states)
        sub = d.substitution(tp)
        sub |= {
            q: sp.Float(float(v), 50)
            for q, v in zip(d.kl_primed, theta_q.reshape(-1), strict=True)
        }
        target = float(d.kl.evalf(50, subs=sub))
        m, se = _mean_se(np.asarray(per_state)[:, None])
        out.append(
            _stochastic(name, "E_s[KL] = KL", "", pt, m[0], se[0], target, n, target)
        )
    # per-state entropy kernel: -log pi(a|s) - H(s) has mean 0 (paired differences)
    if callable(getattr(k, "entropy", None)):
        h = np.asarray(_jit(k.entropy)(th, states))
        lp = np.asarray(_jit(k.log_prob)(th, states, actions))
        m, se = _mean_se((-lp - h)[:, None])
        sc = max(1.0, float(np.mean(np.abs(h))))
        out.append(
            _stochastic(name, "E[-log pi] = E_s[H(s)]", "", pt, m[0], se[0], 0.0, n, sc)
        )
    # deterministic: Hessian of kl = fisher = F v on the same states
    sub_states = states[:64]
    Fk = np.asarray(_jit(k.fisher)(th, sub_states))
    Hk = np.asarray(_jit(k.kl, "kl_hessian")(th, th, sub_states)).reshape(P, P)
    out.append(_deterministic(name, "Hessian of kl = fisher", pt, Hk, Fk, DET_RTOL))
    v = np.random.default_rng(idx + 7).normal(size=theta.shape)
    fv = np.asarray(_jit(k.fvp)(th, sub_states, jnp.asarray(v))).reshape(-1)
    out.append(_deterministic(name, "fvp = F v", pt, fv, Fk @ v.reshape(-1), DET_RTOL))
    # natural_gradient solves (F + lambda I) x = v (the K-FAC F where it says so)
    lam = 0.1
    exact = getattr(k, "NATURAL_GRADIENT", "exact") == "exact"
    Fa = Fk if exact else np.asarray(_jit(k.kfac_fisher)(th, sub_states))
    x = _jit(k.natural_gradient)(th, sub_states, jnp.asarray(v), lam)
    x = np.asarray(x).reshape(-1)
    label = "(F + 0.1 I) natural_gradient(v) = v"
    if not exact:
        label = "(K-FAC F + 0.1 I) natural_gradient(v) = v"
    out.append(
        _deterministic(name, label, pt, Fa @ x + lam * x, v.reshape(-1), DET_RTOL)
    )
    L = np.asarray(_jit(k.fisher_sqrt)(th, sub_states))
    out.append(
        _deterministic(name, "fisher_sqrt^T fisher_sqrt = F", pt, L.T @ L, Fk, DET_RTOL)
    )
    if isinstance(pol.states, FiniteStates):
        sup, w = pol.support_states()
        Fw = np.asarray(_jit(k.fisher)(th, jnp.asarray(sup), jnp.asarray(w)))
        out.append(_deterministic(name, "fisher(support, d) = F", pt, Fw, F, 1e-10))
    return out
