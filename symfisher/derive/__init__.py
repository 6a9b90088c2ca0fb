"""Symbolic derivation: score, Hessian, Fisher by three routes, KL (pure SymPy)."""
