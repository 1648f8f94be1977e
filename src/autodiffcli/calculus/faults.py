"""Name numeric faults instead of hiding them: domain errors, overflow, infinite slopes."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
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
    """Why f is not finite at ``env``: a domain error, a float32 overflow (of f, or of an
    intermediate value, named), or a pole."""
    where = point_text(env)
    reason = domain_error(expr, env)
    if reason:
        return f"domain error: {reason}"
    if dtype == "float32":
        wide = _value(expr, env)
        if wide is not None:
            if abs(wide) > float(np.finfo(np.float32).max):
                return f"overflow in float32: f is {fmt(wide)} at {where}; use --dtype float64"
            cause = unheld_intermediate(expr, env, dtype)
            inner = f"{cause}, though f is {fmt(wide)}" if cause else f"f is {fmt(wide)} in float64"
            return f"overflow in float32 at {where}: {inner}; use --dtype float64"
    return f"f is not finite at {where}"


class Intermediates:
    """Every sub-expression of f, computed in float64 at a batch of points: where one of
    them is a number ``dtype`` cannot hold, ``dtype``'s results there are not to be trusted
    (an overflow or a flush to zero happened on the way)."""

    def __init__(self, expr: sympy.Expr, dtype: str) -> None:
        self.info = np.finfo(dtype)
        nodes = dict.fromkeys(n for n in sympy.postorder_traversal(expr) if _intermediate(n))
        self.functions = [TFFunction(n, "float64") for n in nodes]

    def unheld(self, env: Mapping[str, np.ndarray | float], n: int) -> np.ndarray:
        """Whether, at each of ``n`` points, some sub-expression is beyond the dtype's range
        or nonzero below its smallest normal number."""
        out = np.zeros(n, dtype=bool)
        if not self.functions:
            return out
        tf = self.functions[0].tf
        tensors = {k: tf.constant(v, tf.float64) for k, v in env.items()}
        for f in self.functions:
            size = np.abs(np.broadcast_to(np.asarray(f(tensors), dtype=np.float64), (n,)))
            with np.errstate(invalid="ignore"):
                out |= (size > float(self.info.max)) & np.isfinite(size)
                out |= (size > 0) & (size < float(self.info.tiny))
        return out


def _intermediate(node: sympy.Basic) -> bool:
    """A sub-expression whose value is computed (not an input, an integer or pi)."""
    return isinstance(node, sympy.Expr) and not (
        node.is_Symbol or node.is_Integer or isinstance(node, sympy.NumberSymbol)
    )


def unheld_intermediate(expr: sympy.Expr, env: Mapping[str, float], dtype: str) -> str | None:
    """The innermost sub-expression whose value at ``env`` (computed in float64) ``dtype``
    cannot hold: beyond its largest number, or nonzero below its smallest normal one
    (TensorFlow computes it as 0). For example ``x**2 is 1e+40, beyond float32's range``."""
    info = np.finfo(dtype)
    for node in sympy.postorder_traversal(expr):
        if not _intermediate(node):
            continue  # inputs were checked when read; integers and pi are held
        value = _value(node, env)
        if value is None:
            continue
        if abs(value) > float(info.max):
            return f"{canonical(node)} is {fmt(value)}, beyond {dtype}'s range"
        if 0 < abs(value) < float(info.tiny):
            return f"{canonical(node)} is {fmt(value)}, below {dtype}'s smallest normal number (so 0)"
    return None


def explain_derivative(label: str, value: float, env: Mapping[str, float], dtype: str) -> str:
    if math.isinf(value):
        hint = " (or it overflows: try --dtype float64)" if dtype == "float32" else ""
        return f"infinite derivative: {label} is {fmt(value)} at {point_text(env)}{hint}"
    return f"undefined derivative: {label} is nan at {point_text(env)}"
