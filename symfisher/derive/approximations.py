r"""Diagonal and K-FAC approximations of a linear policy's Fisher, with exact errors.

A linear layer :math:`z = W x(s)` has score :math:`\nabla_W \log\pi = g\,x^\top`
with :math:`g = \nabla_z \log\pi`, so

.. math:: F = \mathbb E_s\big[G(s) \otimes x x^\top\big], \qquad
   G(s) = \mathbb E_{a\mid s}[g g^\top],

and K-FAC replaces the expectation of the product by the product of expectations,
:math:`\tilde F = \mathbb E_s[G(s)] \otimes \mathbb E_s[x x^\top]`. It is exact when
:math:`G` does not depend on :math:`s` (the linear-Gaussian mean, where
:math:`G = \mathrm{diag}(e^{-2\omega})`) and not otherwise (softmax, where
:math:`G(s) = \mathrm{diag}(p) - p p^\top` moves with the state). The diagonal
approximation keeps :math:`\mathrm{diag}(F)`. Errors are Frobenius norms,
:math:`\|\tilde F - F\|_F^2 = \sum_{ij} (\tilde F - F)_{ij}^2`, in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.derive.policy_derivation import PolicyDerivation
from symfisher.derive.simplify import tidy, tidy_matrix
from symfisher.errors import DerivationError
from symfisher.families.policy import Policy

KFAC_POLICIES = ("linear_softmax", "linear_gaussian", "tabular_softmax")


@dataclass(frozen=True)
class Approximations:
    r"""Closed-form approximations of :math:`F = \mathbb E_s[F(s)]` and their errors.

    Attributes:
      fisher: the exact :math:`F`.
      diagonal: :math:`\mathrm{diag}(F)`.
      kfac: :math:`\tilde F` in :math:`\theta`'s layout.
      kfac_factors: ``(L, R)`` with the layer block :math:`L \otimes R`.
      diagonal_error2: :math:`\|\mathrm{diag}(F) - F\|_F^2`.
      kfac_error2: :math:`\|\tilde F - F\|_F^2`.
    """

    fisher: sp.Matrix
    diagonal: sp.Matrix
    kfac: sp.Matrix
    kfac_factors: tuple[sp.Matrix, sp.Matrix]
    diagonal_error2: sp.Expr
    kfac_error2: sp.Expr


def _softmax_G(logits: list[sp.Expr]) -> sp.Matrix:
    den = sp.Add(*[sp.exp(z) for z in logits])
    p = sp.Matrix([sp.exp(z) / den for z in logits])
    return sp.diag(*p) - p * p.T


def kfac_factors(policy: Policy) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    r"""``(L, R, K)``: K-FAC factors and :math:`\tilde F` in :math:`\theta`'s layout.

    Raises:
      DerivationError: for a policy that is not one of the built-in linear ones.
    """
    if policy.name not in KFAC_POLICIES:
        raise DerivationError(
            f"{policy.name}: K-FAC is defined here for the linear policies "
            f"{KFAC_POLICIES} (a linear layer z = W x(s))"
        )
    st = policy.states
    rows, cols = policy.theta_shape
    theta = sp.Matrix(rows, cols, list(policy.theta))
    x = sp.Matrix(st.symbols)
    if policy.name == "linear_gaussian":
        n = cols - 2
        xh = sp.Matrix([*x, 1])
        L = sp.diag(*[sp.exp(-2 * theta[i, n + 1]) for i in range(rows)])
        R = sp.Matrix(n + 1, n + 1, st.expect(list(xh * xh.T)))
        K = sp.zeros(rows * cols, rows * cols)
        for i in range(rows):
            for k in range(rows):
                for j in range(n + 1):
                    for m in range(n + 1):
                        K[i * cols + j, k * cols + m] = L[i, k] * R[j, m]
            K[i * cols + n + 1, i * cols + n + 1] = 2
        return L, R, K
    if policy.name == "linear_softmax":
        logits = list(theta * x)
        G = _softmax_G(logits)
        L = sp.Matrix(rows, rows, st.expect(list(G)))
        R = sp.Matrix(cols, cols, st.expect(list(x * x.T)))
    else:  # tabular: z = theta^T e_s, theta is (S, K)
        logits = list(theta.T * x)
        G = _softmax_G(logits)
        L = sp.Matrix(rows, rows, st.expect(list(x * x.T)))
        R = sp.Matrix(cols, cols, st.expect(list(G)))
    return L, R, sp.kronecker_product(L, R)


def approximations(d: PolicyDerivation) -> Approximations:
    """Diagonal and K-FAC approximations of ``d.fisher`` with exact Frobenius errors.

    Raises:
      DerivationError: when ``d`` has no closed-form Fisher, or the policy is not linear.
    """
    if d.fisher is None:
        raise DerivationError(f"{d.policy.name}: no closed-form Fisher to approximate")
    F = d.fisher
    L, R, K = kfac_factors(d.policy)
    D = sp.diag(*[F[i, i] for i in range(F.rows)])
    K = tidy_matrix(K)

    def err2(A: sp.Matrix) -> sp.Expr:
        return tidy(sp.Add(*[e**2 for e in (A - F)]))

    return Approximations(
        fisher=F,
        diagonal=D,
        kfac=K,
        kfac_factors=(tidy_matrix(L), tidy_matrix(R)),
        diagonal_error2=err2(D),
        kfac_error2=err2(K),
    )
