"""Families as data: the catalog, user-defined families, reparameterisation.

Calling the package, ``symfisher.families()``, lists the catalog names.
"""

from symfisher._callable import make_callable

make_callable(__name__, "symfisher.families.catalog:families")
