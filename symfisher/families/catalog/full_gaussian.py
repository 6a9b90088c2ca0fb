r"""Full-covariance Gaussian on :math:`\mathbb R^d`, Cholesky with log-diagonal.

The covariance is :math:`\Sigma = L L^\top` with :math:`L` lower-triangular and
:math:`L_{ii} = e^{l_{ii}}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symfisher.families.catalog._gaussian import LOG_2PI
from symfisher.families.domains import DOMAINS, SUPPORTS, real
from symfisher.families.family import Cumulants, ExpFamily, Family, check_size
from symfisher.families.lazy import lazy_sampler

if TYPE_CHECKING:
    from symfisher.families.sampling import Sampler

ORDER = 8


def build(d: int = 2) -> Family:
    r"""Full-covariance Gaussian, :math:`\Sigma = L L^\top`, :math:`L_{ii} = e^{l_{ii}}`.

    .. math:: \log p = -\tfrac12 \|L^{-1}(x-\mu)\|^2 - \sum_i l_{ii} - \tfrac d2 \log 2\pi

    Its exponential-family form uses :math:`T = (x, x_i x_j)_{i \le j}`.
    """
    check_size("full_gaussian", "d", d, 1)
    mus = [real(f"mu_{i}") for i in range(1, d + 1)]
    chol, L = cholesky_params(d)
    xs = [real(f"x_{i}") for i in range(1, d + 1)]
    z = _forward_substitute(L, sp.Matrix(xs) - sp.Matrix(mus))
    logp = (
        -sp.Add(*[zi**2 for zi in z]) / 2
        - sp.Add(*[chol[i * (i + 1) // 2 + i] for i in range(d)])
        - d * LOG_2PI / 2
    )
    return Family(
        name="full_gaussian",
        params=(*mus, *chol),
        domains=tuple(DOMAINS["real"] for _ in range(d + len(chol))),
        variables=tuple(xs),
        log_density=logp,
        supports=tuple(SUPPORTS["reals"] for _ in xs),
        sampler=lazy_sampler("full_gaussian", d=d),
        expfam=_full_gaussian_expfam(xs, sp.Matrix(mus), L),
        cumulants=_gaussian_cumulants(xs, sp.Matrix(mus), L),
        size=(("d", d),),
        description=f"Full-covariance Gaussian(d={d}), Cholesky with log-diagonal",
    )


def cholesky_params(d: int) -> tuple[list[sp.Symbol], sp.Matrix]:
    r"""Parameters of a lower-triangular :math:`L` with :math:`L_{ii} = e^{l_{ii}}`.

    Row by row: :math:`l_{11}, l_{21}, l_{22}, l_{31}, \dots`.
    """
    params: list[sp.Symbol] = []
    L = sp.zeros(d, d)
    for i in range(d):
        for j in range(i + 1):
            s = real(f"l_{i + 1}{j + 1}")
            params.append(s)
            L[i, j] = sp.exp(s) if i == j else s
    return params, L


def _gaussian_cumulants(xs: list[sp.Symbol], mu: sp.Matrix, L: sp.Matrix) -> Cumulants:
    r""":math:`K(t) = t^\top\mu + \tfrac12 t^\top L L^\top t` for the atoms :math:`x_i`."""
    t = sp.Matrix([real(f"t_{i + 1}") for i in range(len(xs))])
    K = (t.T * mu)[0, 0] + sp.expand((t.T * L * L.T * t)[0, 0]) / 2
    return Cumulants(atoms=tuple(xs), t=tuple(t), K=K)


def _forward_substitute(L: sp.Matrix, b: sp.Matrix) -> list[sp.Expr]:
    r"""Solve :math:`L z = b` for lower-triangular :math:`L`."""
    z: list[sp.Expr] = []
    for i in range(L.rows):
        acc = b[i] - sp.Add(*[L[i, j] * z[j] for j in range(i)])
        z.append(sp.expand(acc / L[i, i]))
    return z


def _full_gaussian_expfam(
    xs: list[sp.Symbol], mu: sp.Matrix, L: sp.Matrix
) -> ExpFamily:
    r""":math:`\eta_1 = \Sigma^{-1}\mu`, :math:`\eta_{ij}` the coefficient of :math:`x_i x_j`.

    .. math:: A(\eta) = -\tfrac14 \eta_1^\top N^{-1} \eta_1 - \tfrac12 \log\det(-2N),
       \quad N_{ii} = \eta_{ii},\ N_{ij} = \eta_{ij}/2
    """
    d = len(xs)
    Linv = L.inv()  # triangular: cheap and exact
    prec = (Linv.T * Linv).applyfunc(sp.expand)
    eta1 = (prec * mu).applyfunc(sp.expand)
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    eta2 = [(-prec[i, j] / 2 if i == j else -prec[i, j]) for i, j in pairs]
    n1 = [real(f"n_{i + 1}") for i in range(d)]
    n2 = [real(f"n_{i + 1}{j + 1}") for i, j in pairs]
    N = sp.zeros(d, d)
    for (i, j), s in zip(pairs, n2, strict=True):
        N[i, j] = s if i == j else s / 2
        N[j, i] = N[i, j]
    n1v = sp.Matrix(n1)
    A = -(n1v.T * N.adjugate() * n1v)[0, 0] / (4 * N.det()) - sp.log((-2 * N).det()) / 2
    return ExpFamily(
        eta=(*eta1, *eta2),
        T=(*xs, *[xs[i] * xs[j] for i, j in pairs]),
        A=A,
        nat=(*n1, *n2),
        log_h=-d * LOG_2PI / 2,
        atoms=tuple(range(d)),
    )


def sampler(d: int = 2) -> Sampler:
    r"""Full-covariance Gaussian on :math:`\mathbb{R}^d`, Cholesky parametrisation.

    ``theta = (mu_1, ..., mu_d, l_11, l_21, l_22, l_31, l_32, l_33, ...)``: the mean,
    then the lower-triangular Cholesky factor :math:`L` row by row (for
    :math:`i = 1..d`, :math:`j = 1..i`). Diagonal entries are given on the log scale,
    :math:`L_{ii} = e^{l_{ii}}`; off-diagonals as is, :math:`L_{ij} = l_{ij}`.
    :math:`x = \mu + L z`, :math:`z \sim \mathcal{N}(0, I_d)`, so
    :math:`\operatorname{Cov}(x) = L L^\top`. For ``d = 2`` the order is
    ``(mu_1, mu_2, l_11, l_21, l_22)``.

    Args:
        d: Dimension, ``d >= 1``.

    Returns:
        A sampler with ``event_shape == (d,)``; ``theta`` has ``d + d(d+1)/2``
        entries.
    """
    if int(d) < 1:
        raise ValueError(f"full_gaussian needs d >= 1, got d={d}")
    d = int(d)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from symfisher.families.sampling import _named, _prepare

    rows, cols = np.tril_indices(d)  # row-major: (0,0), (1,0), (1,1), (2,0), ...
    is_diag = rows == cols
    n_tril = d * (d + 1) // 2

    def sample(
        key: jax.Array, theta: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        theta, shape = _prepare(theta, shape)
        mu, ell = theta[:d], theta[d : d + n_tril]
        ell = jnp.where(is_diag, jnp.exp(ell), ell)
        chol = jnp.zeros((d, d), dtype=theta.dtype).at[rows, cols].set(ell)
        z = jax.random.normal(key, (*shape, d), dtype=theta.dtype)
        return mu + z @ chol.T

    return _named(
        sample,
        f"full_gaussian_d{d}",
        f"Full Gaussian sampler, d={d}; theta = (mu, tril(L) row-major).",
    )
