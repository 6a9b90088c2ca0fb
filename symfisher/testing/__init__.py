r"""A correctness oracle for your own Fisher, FVP, KL and natural-gradient code.

Each assertion calls your function at seeded valid parameter points of a family
(or at points you pass), compares it with symfisher's generated closed forms
evaluated in float64, and raises :class:`AssertionError` naming the worst entry,
the point, expected and got, and a hint when the error matches a known bug:

.. code-block:: python

    from symfisher.testing import assert_fvp_close
    assert_fvp_close(my_fvp, "categorical_softmax")   # my_fvp(theta, v) -> F v

Your function is called with one parameter vector :math:`\theta` (and one
direction :math:`v`) of shape ``(P,)`` in the family's parameter order
(``sf.family(name).param_names``), as ``jax.numpy`` arrays of ``dtype``
(default: JAX's default float, float64 under ``JAX_ENABLE_X64``).

Tolerances. An entry passes when :math:`|\text{got} - \text{expected}| \le
\text{atol} + \text{rtol}\cdot\text{scale}`, with a scale that bounds the
entry's size (and so the round-off of any correct computation of it):

* Fisher :math:`F_{ij}`: :math:`\sqrt{F_{ii} F_{jj}}` (Cauchy–Schwarz,
  :math:`|F_{ij}| \le \sqrt{F_{ii}F_{jj}}`);
* FVP :math:`(Fv)_i`: :math:`\sqrt{F_{ii}}\sum_j \sqrt{F_{jj}}\,|v_j|`;
* KL: :math:`|\mathrm{KL}|`; policy FVP: :math:`\|Fv\|_\infty`;
* natural gradient :math:`x = (F + \lambda I)^{-1} g`: :math:`\kappa\,\|x\|_\infty`
  with :math:`\kappa` the condition number of :math:`F + \lambda I` (on the range
  of :math:`F` when :math:`\lambda = 0`), the forward-error bound of a
  backward-stable solve.

The default ``rtol`` is :math:`\sqrt{\varepsilon}` of the dtype of your output
(1.5e-8 in float64, 3.5e-4 in float32): half the digits may be lost to
cancellation, while every bug pattern above is an O(1) relative error.
``atol`` defaults to 0.

Hypothesis strategies of valid parameters: :func:`params_strategy`,
:func:`direction_strategy`.

Modules: ``setup`` (families, points, tolerances), ``hints`` (known bug
patterns), ``failures`` (the report of a failing entry), ``assertions``,
``strategies``.
"""

from symfisher.testing.assertions import (
    assert_fisher_close,
    assert_fvp_close,
    assert_natural_gradient_close,
    assert_policy_fvp_close,
)
from symfisher.testing.estimates import assert_fisher_estimate_close
from symfisher.testing.kfac import assert_kfac_close
from symfisher.testing.kl import assert_kl_close
from symfisher.testing.logprob import assert_log_prob_close, assert_score_close
from symfisher.testing.setup import N_POINTS as N_POINTS
from symfisher.testing.steps import assert_trpo_step_close
from symfisher.testing.strategies import direction_strategy, params_strategy

__all__ = [
    "assert_fisher_close",
    "assert_fisher_estimate_close",
    "assert_fvp_close",
    "assert_kfac_close",
    "assert_kl_close",
    "assert_log_prob_close",
    "assert_natural_gradient_close",
    "assert_policy_fvp_close",
    "assert_score_close",
    "assert_trpo_step_close",
    "direction_strategy",
    "params_strategy",
]
