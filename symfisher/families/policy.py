r"""A state-conditioned policy :math:`\pi_\theta(a \mid s)` as data.

.. math:: F(\theta) = \mathbb E_{s\sim d}\big[F(\theta; s)\big], \qquad
   F(\theta; s) = \mathbb E_{a\sim\pi_\theta(\cdot\mid s)}\big[\nabla_\theta\log\pi\,
   \nabla_\theta\log\pi^\top\big]

The conditional distribution :math:`\pi_\theta(\cdot \mid s)` is an ordinary
:class:`~symfisher.families.family.Family` whose parameters are
:math:`(\theta, s)`: the derivation differentiates in :math:`\theta` only and
takes expectations over actions with the family machinery, then over states
with the policy's state distribution.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symfisher.families.family import Family
from symfisher.families.states import FiniteStates, GaussianStates

StateDistribution = GaussianStates | FiniteStates


@dataclass(frozen=True)
class Policy:
    r"""A state-conditioned policy with a symbolic state distribution.

    Attributes:
      name: ``linear_softmax``, ``linear_gaussian`` or ``tabular_softmax`` (or a
        user name); the generated kernel module has this name.
      theta: parameters :math:`\theta`, ``theta_shape`` flattened row-major.
      theta_shape: the matrix shape of :math:`\theta` in the kernels.
      conditional: :math:`\pi_\theta(a\mid s)` as a family in :math:`(\theta, s)`.
      states: the state distribution :math:`d(s)`.
      state_format: how the kernels take states: ``"features"`` (rows of
        :math:`s`) or ``"index"`` (integer state ids, for one-hot states).
      size: size keywords the policy was built with.
      description: one line for tables.
    """

    name: str
    theta: tuple[sp.Symbol, ...]
    theta_shape: tuple[int, int]
    conditional: Family
    states: StateDistribution
    state_format: str
    size: tuple[tuple[str, int], ...] = ()
    description: str = ""

    @property
    def state_symbols(self) -> tuple[sp.Symbol, ...]:
        """The state variables :math:`s`."""
        return self.states.symbols

    @property
    def actions(self) -> tuple[sp.Symbol, ...]:
        """The action variable(s) :math:`a`."""
        return self.conditional.variables

    @property
    def n_params(self) -> int:
        r""":math:`P = |\theta|`."""
        return len(self.theta)

    @property
    def log_density(self) -> sp.Expr:
        r""":math:`\log \pi_\theta(a \mid s)`."""
        return self.conditional.log_density

    def definition_text(self) -> str:
        """Canonical text of everything that defines the policy's mathematics."""
        st = self.states
        extra = (
            sp.srepr((st.mean, st.cov))
            if isinstance(st, GaussianStates)
            else sp.srepr((st.support, st.probs))
        )
        return "\n".join(
            [
                self.conditional.definition_text(),
                f"policy={self.name}",
                f"theta={sp.srepr(self.theta)} shape={self.theta_shape}",
                f"states={type(st).__name__} {sp.srepr(st.symbols)} {extra}",
                f"state_params={sp.srepr(st.params)} {sp.srepr(st.domains)}",
                f"state_format={self.state_format} size={self.size!r}",
            ]
        )

    def definition_hash(self) -> str:
        """SHA-256 of :meth:`definition_text`."""
        return hashlib.sha256(self.definition_text().encode()).hexdigest()

    def parameter_family(self) -> Family:
        r"""A family over :math:`(\theta, \psi)` with no variable.

        :math:`\psi` are the state distribution's parameters; the domains give
        random points for comparing expressions of :math:`\mathbb E_s[\cdot]`.
        """
        doms = self.conditional.domains[: self.n_params]
        return Family(
            name=f"{self.name} (theta, state-distribution parameters)",
            params=(*self.theta, *self.states.params),
            domains=(*doms, *self.states.domains),
            variables=(),
            log_density=sp.Integer(0),
            supports=(),
        )

    # -- numbers -------------------------------------------------------------
    def sample_states(self, key: Any, n: int, at: dict | None = None) -> Any:
        """``n`` states from :math:`d` in the kernels' format."""
        import jax.numpy as jnp

        st = self.states
        if isinstance(st, GaussianStates):
            return st.sample(key, n, at)
        idx = st.sample_index(key, n, at)
        if self.state_format == "index":
            return idx
        return jnp.asarray(st.values(at)["support"])[idx]

    def support_states(self, at: dict | None = None) -> tuple[Any, Any]:
        """Finite state distributions: every state (kernels' format) and its weight."""
        import numpy as np

        st = self.states
        if not isinstance(st, FiniteStates):
            raise TypeError(f"{self.name}: the state distribution is not finite")
        v = st.values(at)
        states = (
            np.arange(len(v["probs"])) if self.state_format == "index" else v["support"]
        )
        return states, v["probs"]
