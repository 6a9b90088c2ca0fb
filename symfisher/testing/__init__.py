r"""A correctness oracle for your own RL maths: log-probabilities, scores, entropies, Fisher, FVP, KL, natural gradients, Monte Carlo Fisher estimators, K-FAC factors, TRPO steps — in JAX or PyTorch.

Each assertion calls your function at seeded valid parameter points of a family
(or at points you pass), compares it with symfisher's generated closed forms
evaluated in float64, and raises :class:`AssertionError` naming the worst entry,
the point, expected and got, and a hint when the error matches a known bug:

.. code-block:: python

    from symfisher.testing import assert_fvp_close, assert_log_prob_close
    assert_fvp_close(my_fvp, "categorical_softmax")   # my_fvp(theta, v) -> F v
    assert_log_prob_close(my_log_prob, "tanh_gaussian", dtype=jnp.float32)

Your function is called with one parameter vector :math:`\theta` (and one
direction :math:`v`, gradient :math:`g` or outcome :math:`x`) of shape ``(P,)``
in the family's parameter order (``sf.family(name).param_names``), as
``jax.numpy`` arrays of ``dtype`` (default: JAX's default float, float64 under
``JAX_ENABLE_X64``); discrete outcomes as integers.

**PyTorch.** Every assertion takes ``backend=None | "jax" | "torch"``: a function
of torch tensors is detected (it returns a ``torch.Tensor``, or fails on JAX
arrays and answers torch tensors), or named with ``backend="torch"``. It then
gets ``torch`` tensors of ``dtype`` (``torch.float32`` or a NumPy dtype),
``requires_grad=True`` where the function may differentiate (scores, Fisher,
FVP, natural gradient, TRPO step, estimators), integer outcomes as int64 and
estimator keys as int64 seeds for a ``torch.Generator``
(:mod:`~symfisher.testing.backend`). :func:`assert_policy_fvp_close` accepts a
``torch.nn.Module`` and its parameters (:mod:`~symfisher.testing.torch_policy`).

Assertions:

* of a function of :math:`\theta`: :func:`assert_entropy_close`,
  :func:`assert_fisher_close`, :func:`assert_kl_close` (pairs, or ``q=`` fixed);
* with a second argument: :func:`assert_fvp_close`,
  :func:`assert_natural_gradient_close`, :func:`assert_trpo_step_close`;
* at outcomes drawn from the family itself (plus the hard ones: every
  category, the ends of a bounded support, tanh actions a float32 step from
  ±1, or pre-squash values up to ±12 with ``latent=True``):
  :func:`assert_log_prob_close`, :func:`assert_score_close`;
* of an estimator: :func:`assert_fisher_estimate_close` (a t-test per entry on
  ``replicates`` independent calls, Holm over entries: no hand-picked rtol);
* of a policy: :func:`assert_policy_fvp_close` (a network),
  :func:`assert_kfac_close` (K-FAC factors of the linear policies, compared as
  :math:`G \otimes A`).

Common behaviour (:mod:`~symfisher.testing.compare`, the engine a new
assertion of a function of :math:`\theta` is built on):

* **Batches** (``batched=True``, the default, except for estimators, K-FAC and
  policy FVPs, whose batch is the samples or the states): your function is also
  called on at least 3 points stacked along a leading axis and must return the
  stacked single results; a sum or mean over the batch axis, an event axis not
  reduced, or arguments unpacked along the batch axis are named.
  ``batched=False`` tests single points only.
* **dtype**: references are computed in float64 at exactly the rounded values
  your function receives.
* **Boundaries** (``allow_boundary=True``): points on the closure of the domain
  where the quantity has a finite limit (:math:`p_i = 0`, logits
  :math:`-\infty`); the reference is the limit (``xlogy`` semantics).
* **Bad output**: an exception, a non-array, a wrong shape or NaN is reported
  with the call, the arguments' shapes and what was expected; your exception is
  chained, never swallowed.

Tolerances. An entry passes when :math:`|\text{got} - \text{expected}| \le
\text{atol} + \text{rtol}\cdot\text{scale}`, with a scale that bounds the
entry's size (and so the round-off of any correct computation of it):

* Fisher :math:`F_{ij}`: :math:`\sqrt{F_{ii} F_{jj}}` (Cauchy–Schwarz,
  :math:`|F_{ij}| \le \sqrt{F_{ii}F_{jj}}`); K-FAC: the same for :math:`G\otimes A`;
* FVP :math:`(Fv)_i`: :math:`\sqrt{F_{ii}}\sum_j \sqrt{F_{jj}}\,|v_j|`;
* KL: :math:`|\mathrm{KL}|`; entropy: :math:`1 + |H|`; policy FVP:
  :math:`\|Fv\|_\infty`;
* log-probability: :math:`1 + |\log p| + \sum_i |\theta_i s_i|`; score
  :math:`s_i`: :math:`|s_i| + \sqrt{F_{ii}}`;
* natural gradient :math:`x = (F + \lambda I)^{-1} g` and TRPO step:
  :math:`\kappa\,\|x\|_\infty` with :math:`\kappa` the condition number of
  :math:`F + \lambda I` (on the range of :math:`F` when :math:`\lambda = 0`), the
  forward-error bound of a backward-stable solve.

The default ``rtol`` is :math:`\sqrt{\varepsilon}` of the dtype of your output
(1.5e-8 in float64, 3.5e-4 in float32): half the digits may be lost to
cancellation, while every bug pattern above is an O(1) relative error (a
uniformly tiny relative error, as from ``+ 1e-8`` in a denominator, gets a hint
saying so). ``atol`` defaults to 0.

Hypothesis strategies of valid parameters: :func:`params_strategy`,
:func:`direction_strategy`.

Modules: ``setup`` (families, tolerances), ``points`` (rounded and boundary
points), ``samples`` (outcomes), ``calls`` (calling your function, batches),
``compare`` (the comparison engine), ``hints`` (known bug patterns),
``failures`` (the report of a failing entry), ``assertions`` (Fisher, FVP,
natural gradient, policy FVP), ``kl``, ``logprob``, ``entropy``, ``estimates``,
``kfac``, ``steps``, ``strategies``, ``backend`` (JAX or torch arguments),
``torch_policy`` (the FVP reference of a torch policy).
"""

from symfisher.testing.assertions import (
    assert_fisher_close,
    assert_fvp_close,
    assert_natural_gradient_close,
    assert_policy_fvp_close,
)
from symfisher.testing.entropy import assert_entropy_close
from symfisher.testing.estimates import assert_fisher_estimate_close
from symfisher.testing.kfac import assert_kfac_close
from symfisher.testing.kl import assert_kl_close
from symfisher.testing.logprob import assert_log_prob_close, assert_score_close
from symfisher.testing.setup import N_POINTS as N_POINTS
from symfisher.testing.steps import assert_trpo_step_close
from symfisher.testing.strategies import direction_strategy, params_strategy

__all__ = [
    "assert_entropy_close",
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
