"""Name numeric faults instead of hiding them: domain errors, overflow, infinite slopes."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import sympy
from sympy.codegen import cfunctions

from ..language.parse import canonical
from .tf_build import TFFunction


def fmt(value: float, dtype: str = "float64") -> str:
    """Shortest text that reads back to the same number in ``dtype`` (0.1, not 0.100000001)."""
    if value is None:
        return "null"
    value = value + 0.0  # -0.0 prints as 0.0
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as float32 holds it
        return str(np.float32(value) if dtype == "float32" else np.float64(value))


def rounded(value: float | None, dtype: str) -> float | None:
    """The number as JSON will carry it: shortest decimal in its dtype, None if not finite
    (in that dtype)."""
    if value is None or not math.isfinite(value):
        return None
    out = float(fmt(value, dtype)) + 0.0
    return out if math.isfinite(out) else None


PLAIN_BLOCK = 32_768  # rows formatted at a time


def plain_text(columns: list[np.ndarray | None], dtype: str) -> bytes:
    """One line per row, columns space-separated, each number as ``tf.print`` writes it
    (9 significant digits for float32, 17 for float64: enough to read the exact value
    back); a column of None prints ``null``. Formatted by TensorFlow's C++ string ops, so
    a million rows take well under a second. Returns UTF-8 bytes, every line ending in a
    newline.
    """
    from ..runtime import tensorflow

    tf = tensorflow()
    rows = max((len(c) for c in columns if c is not None), default=0)
    digits = 9 if dtype == "float32" else 17

    def block(lo: int, hi: int) -> bytes:
        cells = [
            tf.fill([hi - lo], "null")
            if c is None
            else tf.strings.as_string(_plus(c[lo:hi]), precision=digits, shortest=True)
            for c in columns
        ]
        parts = [piece for cell in cells for piece in (cell, " ")]
        parts[-1] = "\n"
        return tf.strings.reduce_join(tf.strings.join(parts)).numpy()

    # blocks of rows keep the intermediate strings small enough to stay in cache
    return b"".join(block(lo, min(rows, lo + PLAIN_BLOCK)) for lo in range(0, rows, PLAIN_BLOCK))


def _plus(values: np.ndarray) -> np.ndarray:
    """-0.0 as 0.0, and every NaN as NaN: x86's invalid operations give a NaN with its sign
    bit set, which TensorFlow writes as "-nan" (a NaN has no sign)."""
    values = np.asarray(values) + 0.0
    return np.where(np.isnan(values), np.abs(values), values)


def point_text(point: Mapping[str, float], dtype: str = "float64") -> str:
    return ",".join(f"{k}={fmt(v, dtype)}" for k, v in point.items())


# (SymPy class, lowest and highest argument, whether the ends are inside): the real domain
# of functions that are not defined everywhere; poles and log-type ends are named below
_INTERVALS = {
    sympy.asin: (-1, 1, True),
    sympy.acos: (-1, 1, True),
    sympy.atanh: (-1, 1, False),
    sympy.acosh: (1, math.inf, True),
    cfunctions.log1p: (-1, math.inf, False),
}
_POLES = (sympy.gamma, sympy.loggamma, sympy.polygamma)  # at 0, -1, -2, ...


def domain_error(expr: sympy.Expr, env: Mapping[str, float]) -> str | None:
    """The innermost sub-expression whose argument is outside its function's domain."""
    where = point_text(env)
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, sympy.log):
            arg = _value(node.args[0], env)
            if arg is not None and arg < 0:
                return f"log of a negative number: {canonical(node)} at {where} has argument {fmt(arg)}"
            if arg == 0:
                return f"log of zero: {canonical(node)} at {where}"
        elif type(node) in _INTERVALS:
            lo, hi, closed = _INTERVALS[type(node)]
            arg = _value(node.args[0], env)
            inside = (lo <= arg <= hi) if closed else (lo < arg < hi)
            if arg is not None and not inside:
                span = f"[{lo}, {hi}]" if closed else f"({lo}, {hi})"
                span = span.replace("inf]", "inf)")
                name = type(node).__name__
                return f"{name} of {fmt(arg)}, outside {span}: {canonical(node)} at {where}"
        elif isinstance(node, _POLES):
            arg = _value(node.args[-1], env)
            if arg is not None and arg <= 0 and arg == math.floor(arg):
                return f"pole of gamma: {canonical(node)} at {where} has argument {fmt(arg)}, 0 or a negative integer"
        elif node.is_Pow and node.exp.is_number and not node.exp.is_integer:
            arg = _value(node.base, env)
            if arg is not None and arg < 0:
                what = "sqrt" if node.exp == sympy.Rational(1, 2) else "fractional power"
                return f"{what} of a negative number: {canonical(node)} at {where} has base {fmt(arg)}"
        elif node.is_Pow and node.exp.is_number and node.exp < 0:
            arg = _value(node.base, env)
            if arg == 0:
                return f"division by zero: {canonical(node)} at {where}"
    return None


def _value(e: sympy.Expr, env: Mapping[str, float]) -> float | None:
    f = TFFunction(e, "float64")
    tf = f.tf
    value = float(f({k: tf.constant(v, tf.float64) for k, v in env.items()}))
    return value if math.isfinite(value) else None


def explain_value(expr: sympy.Expr, env: Mapping[str, float], dtype: str) -> str:
    """Why f is not finite at ``env``: a domain error, a float32 overflow, or a pole."""
    where = point_text(env)
    reason = domain_error(expr, env)
    if reason:
        return f"domain error: {reason}"
    if dtype == "float32":
        wide = _value(expr, env)
        if wide is not None:
            return f"overflow in float32: f is {fmt(wide)} at {where}; use --dtype float64"
    return f"f is not finite at {where}"


def explain_derivative(label: str, value: float, env: Mapping[str, float], dtype: str) -> str:
    if math.isinf(value):
        hint = " (or it overflows: try --dtype float64)" if dtype == "float32" else ""
        return f"infinite derivative: {label} is {fmt(value)} at {point_text(env)}{hint}"
    return f"undefined derivative: {label} is nan at {point_text(env)}"
