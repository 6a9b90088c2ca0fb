"""Families as data: the catalog, user-defined families, reparameterisation."""
