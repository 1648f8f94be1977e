"""``grad --check``: the tape's derivatives against the exact ones and a finite difference.

At each point, every first derivative (and with ``--order 2`` every second one) the tape
computed is compared with

* the exact value: SymPy's symbolic derivative evaluated by mpmath (``evalf``) with
  ``EXACT_DIGITS`` significant digits, of the very function and at the very point the tape
  saw (each input, and each number of the expression, rounded to the dtype first, so only
  the derivative's own rounding is measured); where the formula has a removable
  singularity (``sinc``'s derivatives at 0), its limit there;
* a central finite difference: ``tf.test.compute_gradient`` of f (of the tape's gradient,
  for the Hessian), with the classic step cbrt(eps) * max(1, |x|), rounded to a power of
  two so that x + h is exact.

Errors are componentwise relative: each derivative is judged on its own scale,
|value - exact| / |exact|, so a large derivative beside it cannot hide it. Where the exact
value is 0 the scale is the size of its formula's terms at the point (the sum of their
magnitudes: what rounding errors are proportional to). The scale is never below the
dtype's smallest normal number divided by eps (9.9e-32 in float32): under it a value has
no relative precision left once an intermediate is flushed to zero, so a subnormal exact
value (exp(-88) = 6e-39) held as 0 passes. The tape passes when its error is at most
``ULPS`` units of the dtype's rounding (eps); a finite difference typically loses half or
more of the digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.core.evalf import PrecisionExhausted

from ..errors import UsageError
from ..language.budgets import LIMITS, time_limit
from ..runtime import tensorflow
from .derivatives import Derivatives
from .tf_build import TFFunction

EXACT_DIGITS = 40
ULPS = 256  # the tape may be off by this many units of eps (float32: 3.1e-5, float64: 5.7e-14)
MAX_CHECKED = 1000  # points per run: each costs a high-precision evaluation of every derivative


def tolerance(dtype: str) -> float:
    return ULPS * float(np.finfo(dtype).eps)


@dataclass(frozen=True)
class Entry:
    """One derivative at one point: the tape's value, the exact one, a finite difference."""

    tape: float
    exact: float | None  # None: not a finite real number there
    fd: float
    tape_error: float | None
    fd_error: float | None


@dataclass(frozen=True)
class Check:
    gradient: dict[str, Entry]
    hessian: dict[str, dict[str, Entry]]
    tolerance: float

    def entries(self) -> list[tuple[str, Entry]]:
        """(label, entry) for every derivative checked: df/dx, d2f/dxdy, ..."""
        out = [(f"df/d{n}", e) for n, e in self.gradient.items()]
        out += [(f"d2f/d{a}d{b}", e) for a, row in self.hessian.items() for b, e in row.items()]
        return out

    @property
    def worst(self) -> tuple[str, Entry] | None:
        """The derivative whose tape error is largest, or None when no exact value was available."""
        known = [(label, e) for label, e in self.entries() if e.tape_error is not None]
        return max(known, key=lambda item: item[1].tape_error or 0.0) if known else None

    @property
    def ok(self) -> bool | None:
        """Whether every derivative with an exact value is within the tolerance; None when
        none has one (``sign(x)`` at 0): nothing was checked, which is not a pass."""
        worst = self.worst
        if worst is None:
            return None
        return (worst[1].tape_error or 0.0) <= self.tolerance

    @property
    def not_checked(self) -> list[str]:
        """The derivatives with no finite exact value here, which were not checked."""
        return [label for label, e in self.entries() if e.exact is None]


class Checker:
    """Exact derivatives (built once per run) and the finite differences, point by point."""

    def __init__(
        self, f: TFFunction, variables: Sequence[str], params: dict[str, float], sources: Sequence[str], order: int
    ) -> None:
        self.tf = tensorflow()
        self.f = f
        self.variables = list(variables)
        self.params = dict(params)
        self.sources = list(sources)
        self.order = order
        self.dtype = f.dtype.as_numpy_dtype
        self.tolerance = tolerance(f.dtype.name)
        self.checked = 0
        self._at: dict[str, float] = {}
        symbols = {s.name: s for s in f.expr.free_symbols if isinstance(s, sympy.Symbol)}
        self.symbols = symbols
        x = [symbols.get(n, sympy.Symbol(n, real=True)) for n in self.sources]
        with time_limit(LIMITS.time_s, "symbolic differentiation for --check"):
            held = _numbers_as_held(f.expr, self.dtype)
            self.held = held
            self.exact_gradient = [sympy.diff(held, a) for a in x]
            self.exact_hessian = [[sympy.diff(g, b) for b in x] for g in self.exact_gradient] if order >= 2 else []
        info = np.finfo(self.dtype)
        self.least_scale = float(info.tiny) / float(info.eps)  # under it, no relative precision survives

    def check(self, points: np.ndarray, result: Derivatives) -> list[Check]:
        self.checked += len(points)
        if self.checked > MAX_CHECKED:
            raise UsageError(
                f"--check: at most {MAX_CHECKED:,} points (each is evaluated to {EXACT_DIGITS} digits); "
                "check a sample of the file"
            )
        return [self._point(points[i], result, i) for i in range(len(points))]

    def _point(self, row: np.ndarray, r: Derivatives, i: int) -> Check:
        env = {**self.params, **dict(zip(self.variables, (float(v) for v in row), strict=True))}
        env = {k: float(self.dtype(v)) for k, v in env.items()}  # the values the tape saw
        self._at = env
        x = np.array([env[n] for n in self.sources], dtype=self.dtype)
        with time_limit(LIMITS.time_s, "the exact derivatives of --check"):
            # a limit stands for a derivative only where f itself is defined (sinc at 0, not sin(x)/x)
            limit = self._evaluate(self.held, env) is not None
            exact_g = [self._exact(e, env, limit) for e in self.exact_gradient]
            exact_h = [[self._exact(e, env, limit) for e in row_] for row_ in self.exact_hessian]
            scale_g = [self._scale(e, v, env) for e, v in zip(self.exact_gradient, exact_g, strict=True)]
            scale_h = [
                self._scale(e, v, env)
                for row_e, row_v in zip(self.exact_hessian, exact_h, strict=True)
                for e, v in zip(row_e, row_v, strict=True)
            ]
        tape_g = [float(r.gradient_by(n)[i]) for n in self.sources]
        fd_g = self._finite_difference(self._value, x)[0]
        gradient = dict(zip(self.sources, _entries(tape_g, exact_g, list(fd_g), scale_g), strict=True))
        hessian: dict[str, dict[str, Entry]] = {}
        if self.order >= 2:
            fd_h = self._finite_difference(self._gradient, x)
            tape_h = [[float(r.hessian[a][b][i]) for b in self.sources] for a in self.sources]
            flat = _entries(sum(tape_h, []), sum(exact_h, []), list(fd_h.reshape(-1)), scale_h)
            d = len(self.sources)
            hessian = {
                a: dict(zip(self.sources, flat[k * d : (k + 1) * d], strict=True)) for k, a in enumerate(self.sources)
            }
        return Check(gradient, hessian, self.tolerance)

    def _scale(self, expr: sympy.Expr, exact: float | None, env: dict[str, float]) -> float:
        """What an error of this derivative is measured against: |exact|, or where that is 0
        the size of the formula's terms; never below ``least_scale``."""
        if exact is None:
            return math.nan
        scale = abs(exact)
        if scale == 0:
            size = self._exact(_magnitude(expr), env, limit=False)
            scale = size if size is not None else 0.0
        return max(scale, self.least_scale)

    def _exact(self, expr: sympy.Expr, env: dict[str, float], limit: bool = True) -> float | None:
        """The value of ``expr`` at ``env`` to ``EXACT_DIGITS`` digits; where the formula is
        not finite there (0/0), its two-sided limit, if it has one (``limit``)."""
        value = self._evaluate(expr, env)
        if value is None and limit and not expr.has(sympy.DiracDelta):  # a jump's derivative has no limit to take
            value = self._limit(expr, env)
        return value

    def _limit(self, expr: sympy.Expr, env: dict[str, float]) -> float | None:
        """The limit of ``expr`` at the point: sinc'(x) = cos(x)/x - sin(x)/x**2 is 0/0 at 0,
        its limit is 0. Taken one variable after another (where the expression is defined
        at a variable's value, it just takes that value), in the variables' order and in the
        reverse order; each limit must be two-sided, and both orders must agree
        (x/sqrt(x**2 + y**2) has 0 one way and no limit the other: no value)."""
        at = [(s, sympy.Rational(env[name])) for name, s in self.symbols.items() if name in env]
        found: list[float] = []
        for order in (at, at[::-1]):
            value = expr
            try:
                for s, v in order:
                    if not value.has(s):
                        continue
                    held = value.xreplace({s: v})  # where it is defined, its value is its limit
                    undefined = held.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
                    value = sympy.limit(value, s, v, dir="+-") if undefined else held
                number = complex(value.evalf(EXACT_DIGITS))
            except (TypeError, ValueError, ArithmeticError, NotImplementedError):
                return None
            if number.imag != 0 or not math.isfinite(number.real):
                return None
            found.append(number.real)
        return found[0] if math.isclose(found[0], found[1], rel_tol=1e-30, abs_tol=0.0) else None

    def _evaluate(self, expr: sympy.Expr, env: dict[str, float]) -> float | None:
        at = {s: env[name] for name, s in self.symbols.items() if name in env}
        try:
            try:
                subs = {s: sympy.Float(v, EXACT_DIGITS) for s, v in at.items()}
                value = expr.evalf(EXACT_DIGITS, subs=subs, strict=True)
            except PrecisionExhausted:
                # a sum that cancels exactly (2*x - 1/5 at x = 0.1) has no digits evalf can
                # vouch for (it answered 8e-174); with the point as exact fractions SymPy's
                # own arithmetic finds 0
                value = expr.xreplace({s: sympy.Rational(v) for s, v in at.items()}).evalf(EXACT_DIGITS)
            value = complex(value)
        except (TypeError, ValueError, ArithmeticError):
            return None
        if value.imag != 0 or not math.isfinite(value.real):
            return None
        return value.real

    def _env(self, x: Any) -> dict[str, Any]:
        """The names at the point being checked, the sources taken from the vector ``x``."""
        env = {k: self.f.constant(v) for k, v in self._at.items() if k not in self.sources}
        return {**env, **{name: x[j] for j, name in enumerate(self.sources)}}

    def _value(self, x: Any) -> Any:
        return self.f(self._env(x))

    def _gradient(self, x: Any) -> Any:
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = self._value(x)
        return tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def _finite_difference(self, fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        """The central-difference Jacobian of ``fn`` at ``x`` (TensorFlow's gradient checker)."""
        tf = self.tf
        eps = float(np.finfo(self.dtype).eps)
        scale = max(1.0, float(np.max(np.abs(x)))) if len(x) else 1.0
        delta = 2.0 ** round(math.log2(eps ** (1 / 3) * scale))
        with np.errstate(all="ignore"):  # a step across a singularity gives inf or nan: reported as such
            _, numeric = tf.test.compute_gradient(fn, [tf.constant(x)], delta=delta)
        return np.asarray(numeric[0], dtype=np.float64)


def _numbers_as_held(expr: sympy.Expr, dtype: Any) -> sympy.Expr:
    """``expr`` with each number (and pi, E) as the dtype holds it, exactly: the function the
    tape computes. Held exactly, 0.1 would make (x - 0.1)**2 at x = 0.1 a slope of 1e-17,
    where the tape's slope of its own function is 0: 'off by 1.0' in every dtype."""
    held = {}
    for n in expr.atoms(sympy.Number, sympy.NumberSymbol):
        with np.errstate(over="ignore"):  # a number beyond the dtype is inf, as the tape holds it
            value = float(dtype(float(n)))
        if math.isfinite(value) and not n.is_Integer:  # integers the tape holds are exact
            held[n] = sympy.Rational(value)
    return expr.xreplace(held)


def _magnitude(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every sum's terms made positive (outside function arguments): the size
    of what is added up, which the rounding errors of an exact 0 are proportional to
    (sin(x)*cos(x) - cos(x)*sin(x) has size 2*|sin(x)*cos(x)|)."""
    if expr.is_Add:
        return sympy.Add(*(_magnitude(a) for a in expr.args))
    if expr.is_Mul:
        return sympy.Mul(*(_magnitude(a) for a in expr.args))
    if expr.is_Pow and expr.exp.is_number and expr.exp.is_positive:
        return sympy.Pow(_magnitude(expr.base), expr.exp)
    return sympy.Abs(expr)


def _entries(tape: list[float], exact: list[float | None], fd: list[float], scale: list[float]) -> list[Entry]:
    """Componentwise relative errors: each derivative against its own ``scale``."""
    out = []
    for t, e, d, s in zip(tape, exact, fd, scale, strict=True):
        if e is None:
            out.append(Entry(t, None, float(d), None, None))
            continue
        t_err = abs(t - e) / s if math.isfinite(t) else math.inf
        d_err = abs(float(d) - e) / s if math.isfinite(d) else math.inf
        out.append(Entry(t, e, float(d), t_err, d_err))
    return out
