r"""Natural-gradient toolkit: Fisher-vector products, damped CG, NPG steps, optax.

.. code-block:: python

    from symfisher import natural
    fvp = natural.policy_fvp(apply_fn, params, states, "diag_gaussian")
    s = natural.npg_step(g, fvp, max_kl=0.01, damping=0.1).step

Modules: :mod:`~symfisher.natural.fvp` (closed-form and double-backprop FVPs of
a family), :mod:`~symfisher.natural.network` (FVP of a network as
:math:`J^\top F_{\mathrm{out}} J v`), :mod:`~symfisher.natural.cg` (conjugate
gradient, optionally preconditioned), :mod:`~symfisher.natural.kfac` (K-FAC of a
dense policy network with any family as its head; the damped inverse is the
ACKTR natural gradient), :mod:`~symfisher.natural.npg` (step size for a KL
budget, line search), :mod:`~symfisher.natural.optax` (a preconditioning
``GradientTransformation``), :mod:`~symfisher.natural.fisher_approx` (diagonal, K-FAC
and empirical Fisher against the exact one).
"""

from symfisher.natural.cg import CGResult, conjugate_gradient
from symfisher.natural.family_kernels import family_kernels
from symfisher.natural.fisher_approx import (
    ApproxError,
    approximation_error,
    compare_approximations,
    empirical_fisher,
)
from symfisher.natural.fvp import (
    family_kl,
    fvp,
    fvp_double_backprop,
    fvp_forward_over_reverse,
)
from symfisher.natural.kfac import KFAC, DenseLayer, kfac
from symfisher.natural.network import policy_fvp, policy_kl
from symfisher.natural.npg import LineSearchResult, NPGStep, line_search, npg_step
from symfisher.natural.optax import ScaleByFisherState, scale_by_fisher

__all__ = [
    "KFAC",
    "ApproxError",
    "CGResult",
    "DenseLayer",
    "LineSearchResult",
    "NPGStep",
    "ScaleByFisherState",
    "approximation_error",
    "compare_approximations",
    "conjugate_gradient",
    "empirical_fisher",
    "family_kernels",
    "family_kl",
    "fvp",
    "fvp_double_backprop",
    "fvp_forward_over_reverse",
    "kfac",
    "line_search",
    "npg_step",
    "policy_fvp",
    "policy_kl",
    "scale_by_fisher",
]
