"""Monte Carlo verification of kernels: identities, KL, Cramér–Rao, with Holm control.

Names load on first use (PEP 562), so importing a submodule such as
:mod:`symfisher.verify.stats` does not import JAX and the whole verifier.
"""

import importlib
from typing import Any

from symfisher._callable import make_callable

_WHERE = {
    "Check": "symfisher.verify.result",
    "Report": "symfisher.verify.report",
    "Trace": "symfisher.verify.report",
    "verify": "symfisher.verify.run",
    "verify_many": "symfisher.verify.run",
    "verify_all": "symfisher.verify.run",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


make_callable(__name__, "symfisher.verify.run:verify")
