"""The expression language: text -> SymPy expression under an allow-list and budgets."""
