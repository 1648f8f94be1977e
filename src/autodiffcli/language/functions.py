"""The functions of the expression language that SymPy lacks, or differentiates otherwise.

Each is a SymPy ``Function`` with its derivative (``fdiff``), a numeric value through a
rewrite into SymPy's own functions (so ``evalf`` and mpmath work), and a printed name the
parser reads back. The TensorFlow op of each is in ``tf_build``.

- ``sigmoid(x) = 1/(1 + exp(-x))`` and ``softplus(x) = log(1 + exp(x))``: kept whole, so
  the symbolic column reads ``sigmoid(x)*(1 - sigmoid(x))`` and TensorFlow uses its stable
  kernels for the values (``1/(1 + exp(-x))`` built from ``exp`` gives nan derivatives for
  x below -88 in float32); the tape's derivatives are ``tf_build``'s accurate ones.
- ``relu(x) = max(x, 0)``, with derivative ``Heaviside(x, 0)``: 0 at the kink, which is
  TensorFlow's (and every ML framework's) convention.
- ``cbrt(x)``: the real cube root, negative for negative x (SymPy's ``cbrt`` is the
  principal, complex one).
- ``floor`` and ``ceil``: SymPy's, with derivative 0 (SymPy leaves it unevaluated).
  That is TensorFlow's gradient too; at the jumps neither column has the true derivative,
  which does not exist there.
"""

from __future__ import annotations

import sympy


class _Rewritten(sympy.Function):
    """A function whose numeric value comes from its rewrite into SymPy's functions."""

    def rewritten(self) -> sympy.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return self.rewritten()._eval_evalf(prec)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real


class sigmoid(_Rewritten):  # noqa: N801 - the name users type
    """The logistic function 1/(1 + exp(-x))."""

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # SymPy's Function.eval hook, not Python's eval
        if x.is_zero:
            return sympy.S.Half
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def rewritten(self) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-self.args[0]))

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_extended_real


class softplus(_Rewritten):  # noqa: N801
    """log(1 + exp(x)), a smooth relu."""

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # SymPy's Function.eval hook, not Python's eval
        if x.is_zero:
            return sympy.log(2)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])

    def rewritten(self) -> sympy.Expr:
        return sympy.log(1 + sympy.exp(self.args[0]))

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_extended_real


class relu(_Rewritten):  # noqa: N801
    """max(x, 0); its derivative is 0 at 0, as in TensorFlow."""

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # SymPy's Function.eval hook, not Python's eval
        if x.is_extended_nonnegative:
            return x
        if x.is_extended_nonpositive:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Heaviside(self.args[0], 0)

    def rewritten(self) -> sympy.Expr:
        return sympy.Max(self.args[0], 0)

    def _eval_is_nonnegative(self) -> bool | None:
        return self.args[0].is_extended_real


class cbrt(_Rewritten):  # noqa: N801
    """The real cube root: cbrt(-8) = -2."""

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # SymPy's Function.eval hook, not Python's eval
        if x.is_Rational:
            return sympy.real_root(x, 3)
        if x.is_Pow and x.exp == 3 and x.base.is_extended_real:
            return x.base
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 1 / (3 * cbrt(self.args[0]) ** 2)

    def rewritten(self) -> sympy.Expr:
        return sympy.real_root(self.args[0], 3)


class floor(sympy.floor):  # noqa: N801
    """SymPy's floor with derivative 0 (TensorFlow's gradient; none exists at the jumps)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero


class ceil(sympy.ceiling):  # noqa: N801
    """SymPy's ceiling, printed ``ceil``, with derivative 0 like floor."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero
