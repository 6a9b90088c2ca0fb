"""Code generation: SymPy expressions to standalone JAX source (work in progress)."""
