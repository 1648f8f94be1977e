"""The residuals of a model over a table of data, their exact Jacobian and the exact Hessian
of their sum of squares, from TensorFlow tapes; and the same residuals in extended precision.

The Jacobian is one batched reverse pass: each parameter is broadcast to one copy per row,
so the gradient of the residual vector's sum with respect to that copy is the column
d r_i / d p_j (row i depends on copy i only). No finite differences anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

import numpy as np
import sympy

from ..runtime import tensorflow
from .tf_build import TFFunction

LARGE_ROWS = 20_000  # from this many rows the sums of the normal equations stay in TensorFlow
TRACED_KEPT = 16  # traced functions kept for later fits of the same model (the server, --starts, tests)


class _Traced:
    """The traced residual-and-Jacobian function of one model, the data passed as arguments,
    so that fits of the same model to other data or from other starts reuse the trace.

    A large table's function also returns sum(r**2), J^T J and J^T r, summed where the rows are:
    Levenberg-Marquardt on the normal equations (solve/normal_lm.py) needs only those k*k
    numbers an iteration, and r and J are copied out once, for the point it ends at. It is
    traced without XLA: on a table of 10^6 rows compiling it took 0.21 s against 0.08 s for
    tracing alone, to save ~2 ms a call on some ten calls.
    """

    def __init__(self, expr: sympy.Expr, params: Sequence[str], names: Sequence[str], dtype: str, large: bool):
        tf = tensorflow()
        self.tf = tf
        self.params = list(params)
        self.names = list(names)
        self.function = TFFunction(expr, dtype)
        # no autograph: the code has no Python control flow on tensors
        body = self._normal_equations if large else self._residuals_and_jacobian
        self.both = tf.function(body, reduce_retracing=True, autograph=False)

    def _values(self, env: dict[str, Any], columns: Sequence[Any], scale: Any) -> Any:
        env.update(zip(self.names, columns, strict=True))
        r = self.function(env) * self.tf.ones_like(columns[0])  # a constant model still has one value a row
        return r if scale is None else r * scale

    def _residuals_and_jacobian(self, p: Any, columns: Sequence[Any], scale: Any) -> tuple[Any, Any]:
        tf = self.tf
        copies = [tf.fill(tf.shape(columns[0]), p[j]) for j in range(len(self.params))]
        with tf.GradientTape() as tape:
            tape.watch(copies)
            r = self._values(dict(zip(self.params, copies, strict=True)), columns, scale)
        jac = tape.gradient(r, copies, unconnected_gradients="zero")
        return r, tf.stack(jac, axis=1)

    def _normal_equations(self, p: Any, columns: Sequence[Any], scale: Any) -> tuple[Any, ...]:
        tf = self.tf
        r, jac = self._residuals_and_jacobian(p, columns, scale)
        sums = (
            tf.reduce_sum(r * r),
            tf.linalg.matmul(jac, jac, transpose_a=True),
            tf.linalg.matvec(jac, r, transpose_a=True),
        )
        return r, jac, *sums

    def hessian(self, p: Any, columns: Sequence[Any], scale: Any) -> Any:
        tf = self.tf
        scalars = [p[j] for j in range(len(self.params))]
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(scalars)
            with tf.GradientTape() as inner:
                inner.watch(scalars)
                r = self._values(dict(zip(self.params, scalars, strict=True)), columns, scale)
                total = tf.reduce_sum(r * r)
            g = inner.gradient(total, scalars, unconnected_gradients="zero")
        rows = [tf.stack(outer.gradient(gj, scalars, unconnected_gradients="zero")) for gj in g]
        del outer
        return tf.stack(rows)


_TRACED: dict[tuple[object, ...], _Traced] = {}


class ResidualModel:
    """``r_i(p) = scale_i * (lhs_i - rhs_i(p))`` over the rows of ``data``.

    ``expr`` is ``lhs - rhs`` with the fixed parameters already substituted; ``scale`` is
    1/sigma or sqrt(weight) per row (or None). Every method takes and returns NumPy float64
    arrays (float32 inside with ``dtype="float32"``).
    """

    def __init__(
        self,
        expr: sympy.Expr,
        params: Sequence[str],
        data: Mapping[str, np.ndarray],
        scale: np.ndarray | None,
        dtype: str = "float64",
    ) -> None:
        tf = tensorflow()
        self.tf = tf
        self.params = list(params)
        names = sorted(data)
        self.rows = len(data[names[0]])
        large = self.rows >= LARGE_ROWS
        key = (sympy.srepr(expr), tuple(params), tuple(names), dtype, scale is None, large)
        traced = _TRACED.pop(key, None) or _Traced(expr, params, names, dtype, large)
        _TRACED[key] = traced  # the most recent last
        while len(_TRACED) > TRACED_KEPT:
            del _TRACED[next(iter(_TRACED))]
        self.traced = traced
        self.dtype = traced.function.dtype
        self.columns = tuple(tf.constant(data[name], dtype=self.dtype) for name in names)
        self.scale = None if scale is None else tf.constant(scale, dtype=self.dtype)
        # the trace for this table's shapes, looked up once: a call of the tf.function
        # itself matches its arguments against its traces each time (~40% of a small call)
        start = tf.zeros([len(self.params)], dtype=self.dtype)
        self._both = traced.both.get_concrete_function(start, self.columns, self.scale)
        self.evaluations = 0  # residual vectors computed (each with its Jacobian)
        self.normal = large  # normal_equations is there (solve/least_squares.py uses it)
        self._last: tuple[bytes, tuple[Any, ...]] | None = None  # a large table's last outputs

    def _outputs(self, p: np.ndarray) -> tuple[Any, ...]:
        key = np.asarray(p, dtype=np.float64).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        self.evaluations += 1
        out = self._both(self.tf.constant(p, dtype=self.dtype), self.columns, self.scale)
        if self.normal:
            self._last = (key, tuple(out))
        return tuple(out)

    def normal_equations(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """sum(r**2), J^T J and J^T r at p, summed over the rows inside TensorFlow (a large
        table: ``self.normal``), float64."""
        _, _, rss, a, g = self._outputs(p)
        return float(rss), a.numpy().astype(np.float64), g.numpy().astype(np.float64)

    def residuals_and_jacobian(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, jac = self._outputs(p)[:2]
        return r.numpy().astype(np.float64, copy=False), jac.numpy().astype(np.float64, copy=False)

    def unweighted(self, p: np.ndarray) -> np.ndarray:
        """lhs - rhs at p for every row, without the rows' scale (where a weight is 0)."""
        r = self.traced.both(self.tf.constant(p, dtype=self.dtype), self.columns, None)[0]
        return np.asarray(r, dtype=np.float64)

    def hessian(self, p: np.ndarray) -> np.ndarray:
        """The exact Hessian of sum(r**2) (nested tapes), float64. Run eagerly: it is needed
        once a fit, and tracing it costs more than running it (Rat43: a first fit in 0.44 s
        instead of 0.86 s; 10^6 rows: 0.08 s instead of 0.16 s)."""
        h = self.traced.hessian(self.tf.constant(p, dtype=self.dtype), self.columns, self.scale)
        return np.asarray(h, dtype=np.float64)


# ---------------------------------------------------------------- extended precision

_LONG = np.longdouble
_PI = _LONG("3.14159265358979323846264338327950288")
_E = _LONG("2.71828182845904523536028747135266250")

_UFUNCS: dict[type, Callable[..., Any]] = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.tan: np.tan,
    sympy.asin: np.arcsin,
    sympy.acos: np.arccos,
    sympy.atan: np.arctan,
    sympy.atan2: np.arctan2,
    sympy.sinh: np.sinh,
    sympy.cosh: np.cosh,
    sympy.tanh: np.tanh,
    sympy.asinh: np.arcsinh,
    sympy.acosh: np.arccosh,
    sympy.atanh: np.arctanh,
    sympy.Abs: np.abs,
}


class Unsupported(Exception):
    """The expression has a node without an extended-precision NumPy ufunc (erf, gamma, ...)."""


def precise(expr: sympy.Expr) -> Callable[[Mapping[str, Any]], Any]:
    """``f(env)`` evaluating ``expr`` in NumPy's long double (64-bit mantissa on x86), or raise
    Unsupported. Numbers are made from their exact SymPy values, not from float64."""

    def compile_(e: sympy.Expr) -> Callable[[Mapping[str, Any]], Any]:
        if e.is_Symbol:
            name = e.name
            return lambda env: env[name]
        if e is sympy.pi:
            return lambda env: _PI
        if e is sympy.E:
            return lambda env: _E
        if e.is_Rational:
            value = _LONG(int(e.p)) / _LONG(int(e.q))
            return lambda env: value
        if e.is_Float:
            value = _LONG(str(e))
            return lambda env: value
        if e.is_Add:
            terms = [compile_(a) for a in e.args]
            return lambda env: reduce(np.add, (t(env) for t in terms))
        if e.is_Mul:
            factors = [compile_(a) for a in e.args]
            return lambda env: reduce(np.multiply, (f(env) for f in factors))
        if e.is_Pow:
            base = compile_(e.base)
            if e.exp == -1:
                return lambda env: _LONG(1) / base(env)
            if e.exp == sympy.Rational(1, 2):
                return lambda env: np.sqrt(base(env))
            if e.exp.is_Integer and abs(int(e.exp)) <= 64:
                n = int(e.exp)
                return lambda env: base(env) ** n if n > 0 else _LONG(1) / base(env) ** (-n)
            exponent = compile_(e.exp)
            return lambda env: np.power(base(env), exponent(env))
        op = _UFUNCS.get(type(e))
        if op is None:
            raise Unsupported(type(e).__name__)
        args = [compile_(a) for a in e.args]
        return lambda env: op(*(a(env) for a in args))

    return compile_(expr)


def extended_precision() -> bool:
    """Whether NumPy's long double carries more digits than float64 on this platform."""
    return bool(np.finfo(_LONG).eps < np.finfo(np.float64).eps / 100)


def exact(expr: sympy.Expr) -> Callable[[Mapping[str, Any]], Any]:
    """``f(env)`` evaluating ``expr`` for one row in mpmath (env: name -> mpf), at the
    precision of the caller's ``mpmath.workdps``; or raise Unsupported. For a small table whose
    residuals cancel the data almost completely, where even long double keeps few digits."""
    import mpmath as mp

    table: dict[type, Callable[..., Any]] = {
        sympy.exp: mp.exp, sympy.log: mp.log, sympy.sin: mp.sin, sympy.cos: mp.cos, sympy.tan: mp.tan,
        sympy.asin: mp.asin, sympy.acos: mp.acos, sympy.atan: mp.atan, sympy.atan2: mp.atan2,
        sympy.sinh: mp.sinh, sympy.cosh: mp.cosh, sympy.tanh: mp.tanh, sympy.asinh: mp.asinh,
        sympy.acosh: mp.acosh, sympy.atanh: mp.atanh, sympy.Abs: abs,
    }  # fmt: skip

    def compile_(e: sympy.Expr) -> Callable[[Mapping[str, Any]], Any]:
        if e.is_Symbol:
            name = e.name
            return lambda env: env[name]
        if e is sympy.pi:
            return lambda env: mp.pi
        if e is sympy.E:
            return lambda env: mp.e
        if e.is_Rational:
            value = mp.mpf(int(e.p)) / int(e.q)
            return lambda env: value
        if e.is_Float:
            value = mp.mpf(str(e))
            return lambda env: value
        if e.is_Add:
            terms = [compile_(a) for a in e.args]
            return lambda env: mp.fsum(t(env) for t in terms)
        if e.is_Mul:
            factors = [compile_(a) for a in e.args]
            return lambda env: mp.fprod(f(env) for f in factors)
        if e.is_Pow:
            base, exponent = compile_(e.base), compile_(e.exp)
            return lambda env: mp.power(base(env), exponent(env))
        op = table.get(type(e))
        if op is None:
            raise Unsupported(type(e).__name__)
        args = [compile_(a) for a in e.args]
        return lambda env: op(*(a(env) for a in args))

    return compile_(expr)
