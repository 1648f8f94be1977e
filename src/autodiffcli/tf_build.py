"""SymPy tree -> TensorFlow function, through one table of node -> op.

No source code is generated: the tree is walked once into a tree of small closures, each
calling one TensorFlow op, and numbers become constants of the chosen dtype up front.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import sympy

from .errors import ExpressionError, NumericError
from .runtime import tensorflow

Env = Mapping[str, Any]  # name -> tf.Tensor (a Variable or a constant)
Node = Callable[[Env], Any]


def _table(tf: Any) -> dict[type, Callable[[Any], Any]]:
    return {
        sympy.sin: tf.math.sin,
        sympy.cos: tf.math.cos,
        sympy.tan: tf.math.tan,
        sympy.asin: tf.math.asin,
        sympy.acos: tf.math.acos,
        sympy.atan: tf.math.atan,
        sympy.sinh: tf.math.sinh,
        sympy.cosh: tf.math.cosh,
        sympy.tanh: tf.math.tanh,
        sympy.exp: tf.math.exp,
        sympy.log: tf.math.log,
        sympy.Abs: tf.math.abs,
    }


def _powers(tf: Any) -> dict[sympy.Expr, Callable[[Any], Any]]:
    """Constant exponents with an op of their own (SymPy never builds ``x**1``)."""
    return {
        sympy.Integer(2): tf.math.square,
        sympy.Rational(1, 2): tf.math.sqrt,
        sympy.Integer(-1): tf.math.reciprocal,
        sympy.Rational(-1, 2): tf.math.rsqrt,
    }


class TFFunction:
    """``f(env) -> tensor`` for one SymPy expression in one dtype.

    ``x**2`` becomes ``tf.square``, whose gradient ``2*x`` differentiates exactly to every
    order (``tf.pow``'s nested gradients give 0 * inf = nan at x = 0 from the third order).
    With ``first_order=True`` (minimization: one gradient per step) it stays ``tf.pow``, as
    the seed writes it: pow's gradient multiplies the constant factors first, which XLA
    hoists out of a compiled loop, so each step is one multiply shorter. The values agree
    exactly, since doubling is exact in floating point.
    """

    def __init__(self, expr: sympy.Expr, dtype: str = "float32", *, first_order: bool = False) -> None:
        self.tf = tensorflow()
        self.expr = expr
        self.dtype = self.tf.as_dtype(dtype)
        self.first_order = first_order
        self._ops = _table(self.tf)
        self._root = self._compile(expr)

    def __call__(self, env: Env) -> Any:
        return self._root(env)

    def __repr__(self) -> str:
        return f"TFFunction({sympy.sstr(self.expr)!r}, dtype={self.dtype.name})"

    def constant(self, value: float) -> Any:
        return self.tf.constant(value, dtype=self.dtype)

    def _compile(self, e: sympy.Expr) -> Node:
        tf = self.tf
        if e.is_Symbol:
            name = e.name
            return lambda env: env[name]
        if e.is_number and not e.free_symbols and (e.is_Number or e.is_NumberSymbol):
            # made at call time: inside a traced function it is then a graph constant, which
            # XLA folds (x**3 becomes x*x*x); a tensor made here would be captured as an input
            value = _to_float(e)
            return lambda env: self.constant(value)
        if e.is_Add:
            terms = [self._compile(a) for a in e.args]
            return lambda env: reduce(tf.math.add, (t(env) for t in terms))
        if e.is_Mul:
            return self._product(e)
        if e.is_Pow:
            return self._power(e.base, e.exp)
        op = self._ops.get(type(e))
        if op is not None and len(e.args) == 1:
            arg = self._compile(e.args[0])
            return lambda env: op(arg(env))
        raise ExpressionError(f"cannot evaluate {type(e).__name__} in TensorFlow")

    def _product(self, e: sympy.Expr) -> Node:
        tf = self.tf
        num, den = [], []
        for a in e.args:
            if a.is_Pow and a.exp.is_Number and a.exp < 0:
                den.append(self._compile(a.base) if a.exp == -1 else self._power(a.base, -a.exp))
            else:
                num.append(self._compile(a))
        top = num or [lambda env: self.constant(1.0)]

        def numerator(env: Env) -> Any:
            return reduce(tf.math.multiply, (n(env) for n in top))

        if not den:
            return numerator
        return lambda env: tf.math.divide(numerator(env), reduce(tf.math.multiply, (d(env) for d in den)))

    def _power(self, base_e: sympy.Expr, exp_e: sympy.Expr) -> Node:
        tf = self.tf
        base = self._compile(base_e)
        special = _powers(tf)
        if self.first_order:
            del special[sympy.Integer(2)]  # tf.pow, as the seed writes it (see the class docstring)
        if exp_e in special:
            op = special[exp_e]
            return lambda env: op(base(env))
        exponent = self._compile(exp_e)
        return lambda env: tf.math.pow(base(env), exponent(env))


def _to_float(e: sympy.Expr) -> float:
    try:
        return float(e)
    except (OverflowError, TypeError, ValueError) as err:
        raise NumericError(f"constant {sympy.sstr(e)[:40]} does not fit in a float") from err
