"""``grad --check``: the tape's derivatives against the exact ones and a finite difference.

At each point, every first derivative (and with ``--order 2`` every second one) the tape
computed is compared with

* the exact value: SymPy's symbolic derivative evaluated by mpmath (``evalf``) with
  ``EXACT_DIGITS`` significant digits, of the very function and at the very point the tape
  saw (each input, and each number of the expression, rounded to the dtype first, so only
  the derivative's own rounding is measured);
* a central finite difference: ``tf.test.compute_gradient`` of f (of the tape's gradient,
  for the Hessian), with the classic step cbrt(eps) * max(1, |x|), rounded to a power of
  two so that x + h is exact.

Errors are normwise relative: |value - exact| over the largest |exact| of the same
derivative (gradient or Hessian) at that point (absolute when that is 0; never below the
dtype's smallest normal number, under which it has no relative precision). The tape passes
when its error is at most ``ULPS`` units of the dtype's rounding (eps); a finite
difference typically loses half or more of the digits.
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
from ..language.parse import LIMITS, time_limit
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
    def ok(self) -> bool:
        worst = self.worst
        return worst is None or (worst[1].tape_error or 0.0) <= self.tolerance


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
            self.exact_gradient = [sympy.diff(held, a) for a in x]
            self.exact_hessian = [[sympy.diff(g, b) for b in x] for g in self.exact_gradient] if order >= 2 else []

    def check(self, points: np.ndarray, result: Derivatives) -> list[Check]:
        self.checked += len(points)
        if self.checked > MAX_CHECKED:
            raise UsageError(
                f"--check: at most {MAX_CHECKED:,} points (each is evaluated to {EXACT_DIGITS} digits); "
                "check a sample of the file"
            )
        return [self._point(points[i], result, i) for i in range(len(points))]

    def _point(self, row: np.ndarray, r: Derivatives, i: int) -> Check:
        env = {**self.params, **dict(zip(self.variables, (float(v) for v in row)))}
        env = {k: float(self.dtype(v)) for k, v in env.items()}  # the values the tape saw
        self._at = env
        x = np.array([env[n] for n in self.sources], dtype=self.dtype)
        with time_limit(LIMITS.time_s, "the exact derivatives of --check"):
            exact_g = [self._exact(e, env) for e in self.exact_gradient]
            exact_h = [[self._exact(e, env) for e in row_] for row_ in self.exact_hessian]
        tape_g = [float(r.gradient[n][i]) for n in self.sources]  # type: ignore[index]
        fd_g = self._finite_difference(self._value, x)[0]
        tiny = float(np.finfo(self.dtype).tiny)
        gradient = dict(zip(self.sources, _entries(tape_g, exact_g, list(fd_g), tiny)))
        hessian: dict[str, dict[str, Entry]] = {}
        if self.order >= 2:
            fd_h = self._finite_difference(self._gradient, x)
            tape_h = [[float(r.hessian[a][b][i]) for b in self.sources] for a in self.sources]
            flat = _entries(sum(tape_h, []), sum(exact_h, []), list(fd_h.reshape(-1)), tiny)
            d = len(self.sources)
            hessian = {a: dict(zip(self.sources, flat[k * d : (k + 1) * d])) for k, a in enumerate(self.sources)}
        return Check(gradient, hessian, self.tolerance)

    def _exact(self, expr: sympy.Expr, env: dict[str, float]) -> float | None:
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


def _entries(tape: list[float], exact: list[float | None], fd: list[float], tiny: float) -> list[Entry]:
    """Normwise relative errors against the largest exact magnitude of the group.

    That magnitude counts as at least ``tiny``, the dtype's smallest normal number: below
    it the dtype has no relative precision (erf's slope at 20 is 2e-174, which float32
    holds as 0, exactly right to its last place).
    """
    known = [abs(e) for e in exact if e is not None]
    scale = max(max(known), tiny) if known and max(known) > 0 else 1.0
    out = []
    for t, e, d in zip(tape, exact, fd):
        if e is None:
            out.append(Entry(t, None, float(d), None, None))
            continue
        t_err = abs(t - e) / scale if math.isfinite(t) else math.inf
        d_err = abs(float(d) - e) / scale if math.isfinite(d) else math.inf
        out.append(Entry(t, e, float(d), t_err, d_err))
    return out
