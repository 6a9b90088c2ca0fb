"""Code generation: SymPy expressions to standalone, formatted JAX modules (``generated/``)."""
