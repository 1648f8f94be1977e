"""Levenberg-Marquardt on the normal equations, for a large table.

Each evaluation returns ``S = sum(r**2)``, ``A = J^T J`` and ``g = J^T r``, summed over the
rows where the rows are (inside TensorFlow), so an iteration moves k*k numbers instead of the
n*k Jacobian, and the step is a k*k solve instead of MINPACK's QR of J. Squaring J's condition
costs digits in the step, not in the point: the step only has to lower S, and the point is
finished and tested afterwards with J itself (least_squares.polish_normal).

The iteration is Moré's (MINPACK's): the parameters scaled by the largest column norms of J seen
so far, the damping lowered after a good step and raised after a poor one (Nielsen's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Normal = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]

REDUCTION_TOL = 1e-12  # stop when an accepted step lowers S by less than this share of it
STEP_TOL = 1e-12  # or moves no parameter by more than this share of its size
GOOD = 1e-4  # a step is taken when it lowers S by at least this share of the predicted reduction
MAX_DAMPING = 1e16


@dataclass
class Point:
    x: np.ndarray
    rss: float
    a: np.ndarray  # J^T J
    g: np.ndarray  # J^T r
    message: str


def finite(rss: float, a: np.ndarray, g: np.ndarray) -> bool:
    return bool(np.isfinite(rss) and np.all(np.isfinite(a)) and np.all(np.isfinite(g)))


def levenberg_marquardt(normal: Normal, x0: np.ndarray, max_evaluations: int) -> Point | None:
    """Minimize S from x0; None where S is not finite at x0."""
    x = np.asarray(x0, dtype=np.float64)
    rss, a, g = normal(x)
    if not finite(rss, a, g):
        return None
    k = len(x)
    scale = np.ones(k)
    damping, growth = 1e-3, 2.0
    for _ in range(max_evaluations - 1):
        if rss == 0.0:
            return Point(x, rss, a, g, "S is 0")
        scale = np.maximum(scale, np.sqrt(np.diag(a)))
        try:
            z = np.linalg.solve(a / np.outer(scale, scale) + damping * np.eye(k), -g / scale)
        except np.linalg.LinAlgError:
            z = None
        if z is None or not np.all(np.isfinite(z)):
            damping, growth = damping * growth, growth * 2
            if damping > MAX_DAMPING:
                return Point(x, rss, a, g, "the damped system is singular")
            continue
        step = z / scale
        predicted = -(2.0 * (g @ step) + step @ a @ step)  # S(x) - S(x + step) of the linear model
        trial = x + step
        rss_t, a_t, g_t = normal(trial)
        actual = rss - rss_t
        if finite(rss_t, a_t, g_t) and predicted > 0 and actual >= GOOD * predicted:
            ratio = actual / predicted
            damping *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
            growth = 2.0
            small = np.all(np.abs(step) <= STEP_TOL * np.maximum(np.abs(x), np.finfo(np.float64).tiny))
            x, rss, a, g = trial, rss_t, a_t, g_t
            if actual <= REDUCTION_TOL * (rss + actual) or small:
                return Point(x, rss, a, g, "S stopped falling")
        else:
            if np.all(trial == x) or (predicted <= 0 and rss_t >= rss and damping < 1e-12):
                return Point(x, rss, a, g, "no step lowers S")
            damping, growth = damping * growth, growth * 2
            if damping > MAX_DAMPING:
                return Point(x, rss, a, g, "no step lowers S")
    return Point(x, rss, a, g, "the evaluation budget ran out")
