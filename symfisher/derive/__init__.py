"""Symbolic derivation: score, Hessian, Fisher by three routes, KL (SymPy, cached on disk).

Calling the package, ``symfisher.derive(family)``, runs
:func:`symfisher.derive.derivation.derive`.
"""

from symfisher._callable import make_callable

make_callable(__name__, "symfisher.derive.derivation:derive")
