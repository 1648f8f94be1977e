"""SciPy's constrained methods, SLSQP and trust-constr, fed exact derivatives from tapes.

:class:`ConstrainedObjective` holds f and the constraint residuals ``lhs - rhs`` as one
TensorFlow computation: at a point, one tape gives f, every residual and all their
gradients (SLSQP asks for f, its gradient, the constraints and their Jacobian at the same
point: one evaluation serves the four); nested tapes give the Hessians of f and of every
residual, which trust-constr combines into the exact Hessian of the Lagrangian. Both methods
run in float64, as SciPy does.

Inequalities go to SciPy as ``g(x) >= 0``: ``lhs >= rhs`` as lhs - rhs, ``lhs <= rhs`` as
rhs - lhs. The multipliers are not taken from the method: the KKT analysis (``kkt.py``)
computes them at the end point for whichever method ran.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..calculus.derivatives import tower
from ..calculus.tf_build import TFFunction
from ..interrupts import deferred
from ..runtime import tensorflow
from .types import Box, Row

EQ, LE, GE = "=", "<=", ">="
POLISH = 20  # most SLSQP iterations of a polish from a point near the solution
KKT_TOL = 1e-3  # the KKT test's default tolerance (--tol), relative to max(1, |grad f|): x within about
# tol of the solution, as SLSQP with SciPy's own ftol = tol**2 = 1e-6 places it, at SciPy's cost
POLISH_FTOL = 1e-4  # a polish's ftol, over tol**2


class ConstrainedObjective:
    """f and the constraint residuals over a batch of points (k, d), in float64.

    ``first(X)`` -> values (k, 1 + m) and gradients (k, 1 + m, d); ``second(X)`` adds the
    Hessians (k, 1 + m, d, d). Column 0 is f, column 1 + i the residual of constraint i.
    ``at(x)`` is ``first`` at one point, compiled once and cached for the last point, and
    counts the evaluations (distinct points).
    """

    def __init__(
        self, objective: sympy.Expr, residuals: Sequence[sympy.Expr], names: Sequence[str], params: Mapping[str, float]
    ) -> None:
        self.tf = tensorflow()
        self.functions = [TFFunction(e, "float64") for e in [objective, *residuals]]
        self.names = list(names)
        self.params = dict(params)
        self.evaluations = 0
        self._last: tuple[bytes, tuple[np.ndarray, np.ndarray]] | None = None
        self._first: Any = None
        self._second: Any = None

    def _levels(self, X: Any, order: int) -> list[Any]:
        tf = self.tf
        k = tf.shape(X)[:1]
        columns = dict(zip(self.names, tf.unstack(X, num=len(self.names), axis=1), strict=True))
        out = []
        for f in self.functions:
            env = {**{p: f.constant(v) for p, v in self.params.items()}, **columns}
            levels = tower(f, env, columns, order)

            def full(t: Any) -> Any:
                return tf.broadcast_to(t, k)

            value = full(levels[0][()])
            grad = tf.stack([full(levels[1][(a,)]) for a in self.names], axis=1)
            parts = [value, grad]
            if order >= 2:
                rows = [tf.stack([full(levels[2][(a, b)]) for b in self.names], axis=1) for a in self.names]
                parts.append(tf.stack(rows, axis=1))
            out.append(parts)
        return out

    def first(self, X: Any) -> tuple[Any, Any]:
        parts = self._levels(X, 1)
        return self.tf.stack([p[0] for p in parts], axis=1), self.tf.stack([p[1] for p in parts], axis=1)

    def second(self, X: Any) -> tuple[Any, Any, Any]:
        parts = self._levels(X, 2)
        tf = self.tf
        return (
            tf.stack([p[0] for p in parts], axis=1),
            tf.stack([p[1] for p in parts], axis=1),
            tf.stack([p[2] for p in parts], axis=1),
        )

    def evaluate(self, points: np.ndarray, order: int = 1) -> tuple[np.ndarray, ...]:
        """Eager, for a batch: (values, gradients) or with order 2 (values, gradients, Hessians)."""
        X = self.tf.constant(np.asarray(points, dtype=np.float64).reshape(-1, len(self.names)))
        parts = self.first(X) if order == 1 else self.second(X)
        return tuple(np.asarray(p, dtype=np.float64) for p in parts)

    def at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (1 + m,) and gradients (1 + m, d) at one point: one compiled tape, cached."""
        key = np.asarray(x, dtype=np.float64).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        tf = self.tf
        if self._first is None:
            spec = [tf.TensorSpec([1, len(self.names)], tf.float64)]
            self._first = tf.function(self.first, autograph=False, input_signature=spec)
        v, g = self._first(tf.constant(np.asarray(x, dtype=np.float64)[None, :]))
        out = (v.numpy()[0], g.numpy()[0])
        self.evaluations += 1
        self._last = (key, out)
        return out

    def hessians_at(self, x: np.ndarray) -> np.ndarray:
        """(1 + m, d, d) at one point, compiled once (trust-constr asks at every iteration)."""
        tf = self.tf
        if self._second is None:
            spec = [tf.TensorSpec([1, len(self.names)], tf.float64)]
            self._second = tf.function(lambda X: self.second(X)[2], autograph=False, input_signature=spec)
        return self._second(tf.constant(np.asarray(x, dtype=np.float64)[None, :])).numpy()[0]


@dataclass
class Run:
    """One start of one method: where it ended, and what SciPy said."""

    x: np.ndarray
    f: float  # of the objective the method minimized (-f when maximizing)
    iterations: int
    success: bool
    message: str
    method: str
    history: list[Row] = field(default_factory=list)
    interrupted: bool = False


def orientation(senses: Sequence[str]) -> np.ndarray:
    """Per constraint, the sign that makes its residual ``>= 0`` where it holds (0 for equations)."""
    return np.array([0.0 if s == EQ else 1.0 if s == GE else -1.0 for s in senses])


def solve(
    objective: ConstrainedObjective,
    senses: Sequence[str],
    x0: np.ndarray,
    box: Box,
    method: str,
    steps: int,
    tol: float,
    every: int = 1,
    polish: bool = False,
) -> Run:
    """Minimize ``objective`` (column 0) subject to its constraints from ``x0`` with SciPy's
    ``method`` ("slsqp" or "trustconstr"), within ``box``; a history row every ``every``
    iterations. Ctrl-C stops at the next evaluation, with the last iterate."""
    names = objective.names
    history: list[Row] = []
    count = [0]
    x0 = np.asarray(x0, dtype=np.float64)
    last = [x0]

    def row(x: np.ndarray) -> Row:
        v, g = objective.at(x)
        return Row(count[0], dict(zip(names, map(float, x), strict=True)), float(v[0]), float(np.hypot.reduce(g[0])))

    def record(x: np.ndarray, *_: Any) -> None:
        count[0] += 1
        last[0] = np.array(x)
        if count[0] % every == 0:
            history.append(row(x))

    with deferred() as ctrl_c, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns of what its status says
        history.append(row(x0))
        run = _slsqp if method == "slsqp" else _trust_constr
        try:
            res = run(objective, senses, x0, box, steps, tol, polish, ctrl_c.check, record)
        except KeyboardInterrupt:
            x = last[0]
            return Run(x, float(objective.at(x)[0][0]), count[0], False, "interrupted", method, history, True)
        except ValueError as error:
            # SciPy's own failure, not the problem's: trust-constr's projected CG refuses a
            # direction of zero curvature when no constraint bounds it ("Negative curvature
            # not allowed for unrestricted problems": f = x subject to y = 0). The run ends
            # where it was, unsuccessful, and the restarts and the ranking go on from there.
            x = last[0]
            if history[-1].step != count[0]:
                history.append(row(x))
            return Run(x, float(objective.at(x)[0][0]), count[0], False, f"SciPy stopped: {error}", method, history)
    x = np.asarray(res.x, dtype=np.float64)
    if history[-1].step != count[0]:
        history.append(row(x))
    return Run(x, float(res.fun), int(res.nit), bool(res.success), str(res.message), method, history)


def _slsqp(
    objective: ConstrainedObjective,
    senses: Sequence[str],
    x0: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    polish: bool,
    check: Callable[[], None],
    callback: Callable[..., None],
) -> Any:
    """SciPy's SLSQP: equations as one vector function, inequalities as another (``>= 0``).

    It stops when f changes by less than ``ftol`` = tol**2, which puts x within about
    sqrt(ftol) = tol of the solution. ``polish``, from a point that is already close, asks for
    ftol = POLISH_FTOL * tol**2 in at most POLISH iterations."""
    from scipy.optimize import Bounds, minimize

    eq = [i for i, s in enumerate(senses) if s == EQ]
    ineq = [i for i, s in enumerate(senses) if s != EQ]
    sign = orientation(senses)[ineq]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        check()  # Ctrl-C stops SciPy here, at an evaluation, never inside TensorFlow's call
        v, g = objective.at(x)
        return float(v[0]), g[0]

    constraints: list[dict[str, Any]] = []
    if eq:
        constraints.append(
            {"type": "eq", "fun": lambda x: objective.at(x)[0][1:][eq], "jac": lambda x: objective.at(x)[1][1:][eq]}
        )
    if ineq:
        constraints.append(
            {
                "type": "ineq",
                "fun": lambda x: sign * objective.at(x)[0][1:][ineq],
                "jac": lambda x: sign[:, None] * objective.at(x)[1][1:][ineq],
            }
        )
    return minimize(
        fun,
        x0,
        jac=True,
        method="SLSQP",
        bounds=Bounds(box.lo, box.hi) if box.bounded else None,
        constraints=constraints,
        callback=callback,
        options={
            "maxiter": min(steps, POLISH) if polish else steps,
            "ftol": tol * tol * (POLISH_FTOL if polish else 1.0),
        },
    )


def _trust_constr(
    objective: ConstrainedObjective,
    senses: Sequence[str],
    x0: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    polish: bool,
    check: Callable[[], None],
    callback: Callable[..., None],
) -> Any:
    """SciPy's trust-constr with the exact Hessians: f's as ``hess``, the constraints' as one
    NonlinearConstraint whose ``hess(x, v)`` is sum v_i H_i. It stops when the Lagrangian's
    gradient is within ``gtol`` = tol**2 (and its barrier parameter within it)."""
    from scipy.optimize import Bounds, NonlinearConstraint, minimize

    sign = orientation(senses)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        check()
        v, g = objective.at(x)
        return float(v[0]), g[0]

    constraints = []
    if len(senses):
        lower = np.where(sign > 0, 0.0, np.where(sign < 0, -np.inf, 0.0))
        upper = np.where(sign < 0, 0.0, np.where(sign > 0, np.inf, 0.0))
        constraints.append(
            NonlinearConstraint(
                lambda x: objective.at(x)[0][1:],
                lower,
                upper,
                jac=lambda x: objective.at(x)[1][1:],
                hess=lambda x, v: np.tensordot(v, objective.hessians_at(x)[1:], axes=1),
            )
        )
    return minimize(
        fun,
        x0,
        jac=True,
        hess=lambda x: objective.hessians_at(x)[0],
        method="trust-constr",
        bounds=Bounds(box.lo, box.hi) if box.bounded else None,
        constraints=constraints,
        callback=lambda x, state=None: callback(x),
        options={"maxiter": steps, "gtol": tol * tol, "xtol": 1e-12, "barrier_tol": tol * tol},
    )
