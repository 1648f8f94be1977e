"""SymPy tree -> TensorFlow function, through one table of node -> op.

No source code is generated: the tree is walked once into a tree of small closures, each
calling one TensorFlow op, and numbers become constants of the chosen dtype up front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial, reduce
from typing import Any

import sympy
from sympy.codegen import cfunctions

from ..errors import ExpressionError, NumericError
from ..language import functions
from ..runtime import tensorflow

Env = Mapping[str, Any]  # name -> tf.Tensor (a Variable or a constant)
Node = Callable[[Env], Any]


def _table(tf: Any) -> dict[type, Callable[..., Any]]:
    """SymPy function class -> TensorFlow op (or a short composition, below), one per node.

    Beyond what the parser builds, it covers what SymPy's own simplification and
    derivatives produce: polygamma(n, x), Heaviside, DiracDelta.
    """
    return {
        sympy.sin: tf.math.sin,
        sympy.cos: tf.math.cos,
        sympy.tan: tf.math.tan,
        sympy.sec: lambda x: tf.math.reciprocal(tf.math.cos(x)),
        sympy.csc: lambda x: tf.math.reciprocal(tf.math.sin(x)),
        sympy.cot: lambda x: tf.math.cos(x) / tf.math.sin(x),
        sympy.asin: partial(_asin, tf),
        sympy.acos: partial(_acos, tf),
        sympy.atan: tf.math.atan,
        sympy.atan2: tf.math.atan2,
        sympy.sinh: tf.math.sinh,
        sympy.cosh: tf.math.cosh,
        sympy.tanh: partial(_tanh, tf),
        sympy.asinh: tf.math.asinh,
        sympy.acosh: tf.math.acosh,
        sympy.atanh: partial(_atanh, tf),
        sympy.exp: tf.math.exp,
        cfunctions.expm1: tf.math.expm1,
        sympy.log: tf.math.log,
        cfunctions.log1p: tf.math.log1p,
        functions.cbrt: partial(_cbrt, tf),
        sympy.Abs: tf.math.abs,
        sympy.sign: tf.math.sign,
        functions.floor: tf.math.floor,
        functions.ceil: tf.math.ceil,
        sympy.Max: partial(_extremum, tf, tf.math.maximum),
        sympy.Min: partial(_extremum, tf, tf.math.minimum),
        functions.relu: tf.nn.relu,
        functions.sigmoid: partial(_sigmoid, tf),
        functions.softplus: partial(_softplus, tf),
        sympy.erf: tf.math.erf,
        sympy.erfc: tf.math.erfc,
        sympy.gamma: partial(_gamma, tf),
        sympy.loggamma: tf.math.lgamma,
        sympy.polygamma: tf.math.polygamma,
        sympy.sinc: partial(_sinc, tf),
        sympy.Heaviside: partial(_heaviside, tf),
        sympy.DiracDelta: partial(_dirac_delta, tf),
    }


def _powers(tf: Any) -> dict[sympy.Expr, Callable[[Any], Any]]:
    """Constant exponents with an op of their own (SymPy never builds ``x**1``)."""
    return {
        sympy.Integer(2): tf.math.square,
        sympy.Rational(1, 2): tf.math.sqrt,
        sympy.Integer(-1): tf.math.reciprocal,
        sympy.Rational(-1, 2): tf.math.rsqrt,
    }


def _extremum(tf: Any, pick: Callable[[Any, Any], Any], *args: Any) -> Any:
    """max or min of the arguments. Where several tie, the derivative is the mean of theirs.

    The value is ``tf.maximum``'s (or ``tf.minimum``'s), exactly; the derivative comes from
    the mean of the tied arguments, whose value is cancelled. That mean is what SymPy's
    derivative of Max(a, b) gives at a tie (Heaviside(0) = 1/2); TensorFlow alone would give
    all of it to whichever argument comes first.
    """
    value = reduce(pick, args)
    ties = [tf.equal(a, value) for a in args]
    zero = tf.zeros_like(value)
    count = reduce(tf.math.add, [tf.cast(t, value.dtype) for t in ties])
    mean = reduce(tf.math.add, [tf.where(t, a, zero) for t, a in zip(ties, args, strict=True)]) / count
    slope = tf.where(tf.math.is_finite(value), mean - tf.stop_gradient(mean), zero)
    return tf.stop_gradient(value) + slope


def _cbrt(tf: Any, x: Any) -> Any:
    """The real cube root: -(-x)**(1/3) for negative x, so the slope at 0 is +inf, not nan."""
    negative = x < 0
    size = tf.math.pow(tf.where(negative, -x, x), tf.constant(1 / 3, x.dtype))
    return tf.where(negative, -size, size)


def _gamma(tf: Any, x: Any) -> Any:
    """exp(lgamma(x)) with the sign of gamma: negative on (-1, 0), (-3, -2), ..."""
    odd = tf.math.floormod(tf.math.floor(x), 2) == 1
    sign = tf.stop_gradient(tf.where((x < 0) & odd, -tf.ones_like(x), tf.ones_like(x)))
    return sign * tf.math.exp(tf.math.lgamma(x))


# sin(x)/x = sum (-1)^k x^(2k) / (2k+1)!, k = 0..10: within 4e-23 for |x| < 1, derivatives too
_SINC_SERIES = [(-1) ** k / math.factorial(2 * k + 1) for k in range(11)]


def _sinc(tf: Any, x: Any) -> Any:
    """sin(x)/x, and its Taylor polynomial for |x| < 1, where the quotient's derivatives
    lose digits (and 0/0 at 0). Each branch sees a safe input, so neither gives nan."""
    near = tf.math.abs(x) < 1
    small = tf.where(near, x, tf.zeros_like(x))
    large = tf.where(near, tf.ones_like(x), x)
    u = small * small
    series = tf.constant(_SINC_SERIES[-1], x.dtype)
    for c in reversed(_SINC_SERIES[:-1]):
        series = series * u + c
    return tf.where(near, series, tf.math.sin(large) / large)


# Accurate derivatives. TensorFlow's gradients of tanh and sigmoid are 1 - y**2 and y*(1 - y)
# from the rounded output y: where y rounds to 1 (tanh from x = 7.9 in float32 and 17.7 in
# float64, sigmoid from 16.7 and 36.8) they are exactly 0, and before that they lose digits. Those of asin, acos and
# atanh subtract x**2 from 1, which loses digits near |x| = 1. Each function below has its
# own gradient, written with functions of this group again, so that the gradient's gradient
# (nested tapes, to any order) is accurate as well.


def _sech(tf: Any, x: Any) -> Any:
    """1/cosh(x) as 2 e/(1 + e**2) with e = exp(-|x|): no overflow, and no cancellation."""

    @tf.custom_gradient
    def sech(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * -(_sech(tf, x) * _tanh(tf, x))

        e = tf.math.exp(-tf.math.abs(x))
        return 2 * e / (1 + e * e), grad

    return sech(tf.convert_to_tensor(x))


def _tanh(tf: Any, x: Any) -> Any:
    """tanh(x), with derivative sech(x)**2 (not 1 - tanh(x)**2, which is 0 once tanh rounds to 1)."""

    @tf.custom_gradient
    def tanh(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            s = _sech(tf, x)
            return dy * (s * s)

        return tf.math.tanh(x), grad

    return tanh(tf.convert_to_tensor(x))


def _sigmoid(tf: Any, x: Any) -> Any:
    """1/(1 + exp(-x)) = (1 + tanh(x/2))/2: every derivative is tanh's at x/2, over 2**(k + 1).
    The first is sech(x/2)**2/4 = sigmoid(x)*sigmoid(-x), accurate on both sides."""

    @tf.custom_gradient
    def sigmoid(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            s = _sech(tf, x * 0.5)
            return dy * (s * s * 0.25)

        return tf.math.sigmoid(x), grad

    return sigmoid(tf.convert_to_tensor(x))


def _softplus(tf: Any, x: Any) -> Any:
    """log(1 + exp(x)), with derivative the accurate sigmoid above."""

    @tf.custom_gradient
    def softplus(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * _sigmoid(tf, x)

        return tf.math.softplus(x), grad

    return softplus(tf.convert_to_tensor(x))


def _one_minus_square(tf: Any, x: Any) -> Any:
    """1 - x**2 as (1 - x)*(1 + x), exact to rounding near |x| = 1; its derivative is -2x."""

    @tf.custom_gradient
    def one_minus_square(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * (x * -2)

        return (1 - x) * (1 + x), grad

    return one_minus_square(tf.convert_to_tensor(x))


def _asin(tf: Any, x: Any) -> Any:
    """asin(x), with derivative 1/sqrt((1 - x)*(1 + x))."""

    @tf.custom_gradient
    def asin(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * tf.math.rsqrt(_one_minus_square(tf, x))

        return tf.math.asin(x), grad

    return asin(tf.convert_to_tensor(x))


def _acos(tf: Any, x: Any) -> Any:
    """acos(x), with derivative -1/sqrt((1 - x)*(1 + x))."""

    @tf.custom_gradient
    def acos(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * -tf.math.rsqrt(_one_minus_square(tf, x))

        return tf.math.acos(x), grad

    return acos(tf.convert_to_tensor(x))


def _atanh(tf: Any, x: Any) -> Any:
    """atanh(x), with derivative 1/((1 - x)*(1 + x))."""

    @tf.custom_gradient
    def atanh(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * tf.math.reciprocal(_one_minus_square(tf, x))

        return tf.math.atanh(x), grad

    return atanh(tf.convert_to_tensor(x))


def _heaviside(tf: Any, x: Any, at_zero: Any) -> Any:
    one = tf.ones_like(x)
    return tf.where(x > 0, one, tf.where(x < 0, 0 * one, at_zero * one))


def _dirac_delta(tf: Any, x: Any, k: Any = None) -> Any:
    """0 away from 0; at 0 not a number (inf for the delta itself, nan for its derivatives)."""
    peak = float("inf") if k is None else float("nan")
    return tf.where(tf.equal(x, 0), tf.fill(tf.shape(x), tf.constant(peak, x.dtype)), tf.zeros_like(x))


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
            terms = _number_second([self._compile(a) for a in e.args], e.args)
            return lambda env: reduce(tf.math.add, (t(env) for t in terms))
        if e.is_Mul:
            return self._product(e)
        if e.is_Pow:
            return self._power(e.base, e.exp)
        op = self._ops.get(type(e))
        if op is not None:
            args = [self._compile(a) for a in e.args]
            return lambda env: op(*(a(env) for a in args))
        raise ExpressionError(f"cannot evaluate {type(e).__name__} in TensorFlow")

    def _product(self, e: sympy.Expr) -> Node:
        tf = self.tf
        num, den, factors = [], [], []
        for a in e.args:
            if a.is_Pow and a.exp.is_Number and a.exp < 0:
                den.append(self._compile(a.base) if a.exp == -1 else self._power(a.base, -a.exp))
            else:
                num.append(self._compile(a))
                factors.append(a)
        num = _number_second(num, factors)
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
        if not self.first_order and exp_e.is_Integer and exp_e > 2:
            n = int(exp_e)
            return lambda env: _integer_power(tf, n, base(env))
        exponent = self._compile(exp_e)
        if exp_e.is_number:
            return lambda env: tf.math.pow(base(env), exponent(env))
        return lambda env: _variable_power(tf, base(env), exponent(env))


def _integer_power(tf: Any, n: int, x: Any) -> Any:
    """x**n for an integer n >= 3: tf.pow's value, and the derivative n * x**(n - 1) built
    the same way, down to tf.square, so that every derivative is a polynomial in x.

    tf.pow's own gradient is n * pow(x, n - 1); differentiated again and again it reaches
    pow(x, 0), whose gradient 0 * pow(x, -1) is 0 * inf = nan at x = 0: x**3's fourth
    derivative at 0 came out nan ("undefined derivative") instead of 0.
    """

    @tf.custom_gradient
    def power(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            below = tf.math.square(x) if n == 3 else _integer_power(tf, n - 1, x)
            return dy * (below * tf.constant(n, x.dtype))

        return tf.math.pow(x, tf.constant(n, x.dtype)), grad

    return power(tf.convert_to_tensor(x))


def _variable_power(tf: Any, base: Any, exponent: Any) -> Any:
    """base**exponent with an exponent that varies: tf.pow, with the slope in the exponent
    nan where the base is negative.

    That slope is base**exponent * log(base), which for a negative base is not real
    ((-2)**y = 2**y * (cos(pi*y) + i*sin(pi*y))); TensorFlow's gradient puts 0 in place of
    log(base) for every base <= 0, so d/dy x**y at x = -2, y = 3 came out 0. At base 0 it
    is 0 for a positive exponent (the limit of 0**y * log(0)), and -inf otherwise. The
    gradient's own powers are this function again, so higher and mixed derivatives keep
    the rule. Both operands are broadcast first, so the gradients have their shapes.
    """
    shape = tf.broadcast_dynamic_shape(tf.shape(base), tf.shape(exponent))
    nan = tf.constant(float("nan"), base.dtype)
    inf = tf.constant(float("inf"), base.dtype)

    @tf.custom_gradient
    def power(b: Any, e: Any) -> Any:
        def grad(dy: Any) -> tuple[Any, Any]:
            positive = b > 0
            log_b = tf.math.log(tf.where(positive, b, tf.ones_like(b)))
            at_zero = tf.where(e > 0, tf.zeros_like(b), -inf)
            log_b = tf.where(positive, log_b, tf.where(b < 0, nan, at_zero))
            # recomputed here, not taken from the forward pass, so that outer tapes see them
            return dy * e * power(b, e - 1), dy * power(b, e) * log_b

        return tf.math.pow(b, e), grad

    return power(tf.broadcast_to(base, shape), tf.broadcast_to(exponent, shape))


def _number_second(nodes: list[Node], args: Sequence[sympy.Expr]) -> list[Node]:
    """SymPy puts a sum's or product's number first; make it the second operand instead.

    The same value bit for bit (the first operation only swaps its operands, which IEEE
    addition and multiplication allow), but TensorFlow's gradient of ``tensor + constant``
    and ``tensor * constant`` takes a shortcut that ``constant + tensor`` does not: no
    broadcast reduction for the constant's side. Each tape level builds fewer ops.
    """
    if len(nodes) > 1 and args[0].is_Number:
        return [nodes[1], nodes[0], *nodes[2:]]
    return nodes


def _to_float(e: sympy.Expr) -> float:
    try:
        return float(e)
    except (OverflowError, TypeError, ValueError) as err:
        raise NumericError(f"constant {sympy.sstr(e)[:40]} does not fit in a float") from err
