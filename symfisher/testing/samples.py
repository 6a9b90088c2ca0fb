r"""Outcomes x at which a log-probability or score is checked: drawn, plus the hard ones.

At each parameter point: ``n_samples`` draws from the family's own sampler
(float64, seeded), then rounded to the dtype the user receives, plus

* every outcome of a finite support (so the rare categories are met);
* for a bounded scalar support :math:`(l, h)`: :math:`l + 10^{-6}(h - l)`,
  :math:`h - 10^{-6}(h - l)` and the neighbours of :math:`l` and :math:`h` in
  the dtype (normal numbers) (the ends, where :math:`\log(1 - x)` loses its digits);
* for ``tanh_gaussian``: actions :math:`\tanh u` for :math:`u = \pm 4, \pm 8,
  \pm 9` (or, in the latent form, pre-squash values :math:`u = \pm 6, \pm 9,
  \pm 12`, where :math:`\tanh u` is exactly :math:`\pm 1` in float32).

An outcome whose rounded value has zero probability (outside the support, or
:math:`p_x = 0` at a boundary point) is dropped: the log-probability has no
finite value there.
"""

from __future__ import annotations

import numpy as np

from symfisher.testing.points import zero_probability
from symfisher.testing.setup import _Fam, _ref

#: Pre-squash values of the latent (tanh) form: tanh(±12) is ±1 in float32.
LATENT_U = (-12.0, -9.0, -6.0, 6.0, 9.0, 12.0)
_ACTION_U = (-9.0, -8.0, -4.0, 4.0, 8.0, 9.0)


def _draw(fam: _Fam, theta: np.ndarray, n: int, seed: int) -> np.ndarray:
    import jax

    sampler = fam.family.sampler
    if sampler is None or n == 0:
        return np.zeros((0,), np.float64)
    with jax.enable_x64(True):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 11)
        return np.asarray(sampler(key, np.asarray(theta, np.float64), (n,)), np.float64)


def _hard(fam: _Fam, dt: np.dtype) -> list[float]:
    from symfisher.families.family import finite_values

    f = fam.family
    if len(f.supports) != 1:
        return []
    s = f.supports[0]
    vals = finite_values(s)
    if vals is not None and len(vals) <= 64:
        return [float(v) for v in vals]
    if fam.name == "tanh_gaussian":
        return [float(np.tanh(u)) for u in _ACTION_U] + [
            float(np.nextafter(dt.type(1), dt.type(0))),
            float(np.nextafter(dt.type(-1), dt.type(0))),
        ]
    lo, hi = (getattr(s, "start", None), getattr(s, "end", None))
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return []
    if not (np.isfinite(lo) and np.isfinite(hi)) or f.support_depends_on_params:
        return []
    w, tiny = hi - lo, float(np.finfo(dt).tiny)

    def step(end: float, to: float) -> float:
        # the neighbour of an end in dt; a normal number (XLA flushes subnormals)
        x = float(np.nextafter(dt.type(end), dt.type(to)))
        return end + np.sign(to - end) * tiny if abs(x) < tiny else x

    return [lo + 1e-6 * w, hi - 1e-6 * w, step(lo, hi), step(hi, lo)]


def outcomes(
    fam: _Fam,
    theta: np.ndarray,
    theta_ref: np.ndarray,
    n_samples: int,
    seed: int,
    dt: np.dtype,
) -> list[np.ndarray]:
    """The outcomes at ``theta`` (float64 arrays, representable in ``dt``).

    ``theta_ref`` is where the reference is evaluated (``theta`` moved inward
    from a boundary); outcomes of zero probability there are dropped.
    """
    xs = list(_draw(fam, theta_ref, n_samples, seed))
    xs += [np.asarray(h) for h in _hard(fam, dt)]
    out, seen = [], set()
    k = fam.kernels
    for x in xs:
        x = np.asarray(np.asarray(x, np.float64).astype(dt), np.float64)
        key = x.tobytes()
        if key in seen:
            continue
        seen.add(key)
        if zero_probability(fam, theta, x):
            continue
        if np.isfinite(_ref(k.log_prob, theta_ref, x)):
            out.append(x)
    return out


def latent_outcomes(
    theta: np.ndarray, n_samples: int, seed: int, dt: np.dtype
) -> list[np.ndarray]:
    """Pre-squash values u of ``tanh_gaussian``: drawn, plus :data:`LATENT_U`."""
    rng = np.random.default_rng([seed, 13])
    us = list(theta[0] + theta[1] * rng.standard_normal(n_samples)) + list(LATENT_U)
    return [np.asarray(np.float64(u).astype(dt), np.float64) for u in us]


def latent_log_prob(theta: np.ndarray, u: np.ndarray) -> np.ndarray:
    r"""float64 :math:`\log p_x(\tanh u) = \log\mathcal N(u;\mu,\sigma) - \log(1 - \tanh^2 u)`.

    With :math:`\log(1 - \tanh^2 u) = 2(\log 2 - |u| - \operatorname{softplus}(-2|u|))`,
    exact for every u (no :math:`\tanh u` is rounded); the Gaussian term is
    the generated ``normal`` kernel.
    """
    from symfisher.kernels import kernels

    gauss = _ref(kernels("normal").log_prob, theta, u)
    a = np.abs(np.asarray(u, np.float64))
    log_jac = 2.0 * (np.log(2.0) - a - np.logaddexp(0.0, -2.0 * a))
    return gauss - log_jac
