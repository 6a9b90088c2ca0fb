r"""Gaussian pieces shared by several families and the linear-Gaussian policy.

Used by ``normal``, ``normal_var``, ``normal_logstd``, ``diag_gaussian``,
``full_gaussian`` and ``tanh_gaussian``, and by :mod:`symfisher.families.policies`.

Univariate and diagonal Gaussians carry their exponential-family form with
:math:`T = (x, x^2)`; moments of :math:`x` come from :math:`A` along
:math:`\eta_1` alone.
"""

from __future__ import annotations

import sympy as sp

from symfisher.families.domains import real
from symfisher.families.family import ExpFamily

LOG_2PI = sp.log(2 * sp.pi)


def _normal_expfam(
    x: sp.Symbol, mu: sp.Expr, var: sp.Expr, suffix: str = ""
) -> ExpFamily:
    r""":math:`\eta = (\mu/\sigma^2, -1/(2\sigma^2))`, :math:`A = -\eta_1^2/(4\eta_2) - \tfrac12\log(-2\eta_2)`."""
    n1 = real(f"n_1{suffix}")
    n2 = sp.Symbol(f"n_2{suffix}", negative=True)
    return ExpFamily(
        eta=(mu / var, -1 / (2 * var)),
        T=(x, x**2),
        A=-(n1**2) / (4 * n2) - sp.log(-2 * n2) / 2,
        nat=(n1, n2),
        log_h=-LOG_2PI / 2,
        atoms=(0,),
    )


def _normal_logpdf(x: sp.Expr, mu: sp.Expr, sigma: sp.Expr) -> sp.Expr:
    r""":math:`\log \mathcal N(x; \mu, \sigma^2) = -\frac{(x-\mu)^2}{2\sigma^2} - \log\sigma - \tfrac12\log 2\pi`."""
    return -((x - mu) ** 2) / (2 * sigma**2) - sp.log(sigma) - LOG_2PI / 2
