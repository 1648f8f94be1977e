"""Calculus on expressions: SymPy tree -> TensorFlow function, nested-tape derivatives, checks."""
