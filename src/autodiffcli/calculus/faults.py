"""Name numeric faults instead of hiding them: domain errors, overflow, infinite slopes."""

from __future__ import annotations

import math
from collections.abc import Mapping

import sympy
from sympy.codegen import cfunctions

from ..formatting import fmt, point_text
from ..language.printing import canonical
from .tf_build import TFFunction

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
            if arg is not None and not ((lo <= arg <= hi) if closed else (lo < arg < hi)):
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
