"""symfisher: derive, generate and verify the information geometry of policy families.

The public API is loaded lazily so that ``import symfisher`` stays cheap (it
imports neither SymPy nor JAX until a name that needs them is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "families": "symfisher.families.catalog",
    "family": "symfisher.families.catalog",
    "Family": "symfisher.families.family",
    "ExpFamily": "symfisher.families.family",
    "Cumulants": "symfisher.families.family",
    "Latent": "symfisher.families.family",
    "define_family": "symfisher.families.define",
    "reparameterize": "symfisher.families.define",
    "pushforward": "symfisher.families.pushforward",
    "policies": "symfisher.families.policies",
    "policy": "symfisher.families.policies",
    "Policy": "symfisher.families.policy",
    "GaussianStates": "symfisher.families.states",
    "FiniteStates": "symfisher.families.states",
    "derive_policy": "symfisher.derive.policy_derivation",
    "PolicyDerivation": "symfisher.derive.policy_derivation",
    "approximations": "symfisher.derive.approximations",
    "verify_policy": "symfisher.verify.policy_checks",
    "derive": "symfisher.derive.derivation",
    "Derivation": "symfisher.derive.derivation",
    "derive_many": "symfisher.pool",
    "NumericFisher": "symfisher.derive.derivation",
    "parse_expr": "symfisher.parse",
    "kernels": "symfisher.kernels",
    "verify": "symfisher.verify.run",
    "verify_many": "symfisher.verify.run",
    "verify_all": "symfisher.verify.run",
    "check_params": "symfisher.kernels",
    "generate": "symfisher.codegen.generate",
    "module_text": "symfisher.codegen.generate",
    "SymfisherError": "symfisher.errors",
    "ParseError": "symfisher.errors",
    "DomainError": "symfisher.errors",
    "FamilyError": "symfisher.errors",
    "DerivationError": "symfisher.errors",
    "SymbolicTimeout": "symfisher.errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'symfisher' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
