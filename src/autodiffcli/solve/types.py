"""The types every method shares: settings, status codes, the batch result, history rows, the reporter.

Standard library and NumPy only: the use cases, the output and the methods all import
from here, and nothing here imports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .registry import DEFAULT_GTOL, OPTIMIZERS

# A start's status while and after it runs (integers, for NumPy and TensorFlow alike)
RUNNING, CONVERGED, DIVERGED, STALLED = 0, 1, 2, 3
STATUS = {RUNNING: "max_steps", CONVERGED: "converged", DIVERGED: "diverged", STALLED: "stalled"}


@dataclass(frozen=True)
class MinimizeSettings:
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    steps: int = 1000
    graph: bool = True
    jit: bool = True
    style: str = "tape"  # "tape" (cell 4) or "minimize" (cell 5)
    tol: float | None = None
    every: int | None = None  # history row every K steps; None: about 20 rows
    starts: int = 1  # with more than 1, drawn uniformly in the box
    seed: int = 0
    bounds: tuple[tuple[str, float, float], ...] = ()  # (name, lo, hi)
    maximize: bool = False

    @property
    def keras(self) -> bool:
        return self.optimizer in OPTIMIZERS

    @property
    def mode(self) -> str:
        jit = self.jit and self.keras  # Newton's and SciPy's functions are compiled without XLA
        return "eager" if not self.graph else "xla" if jit else "graph"

    @property
    def bounds_map(self) -> dict[str, tuple[float, float]]:
        return {n: (lo, hi) for n, lo, hi in self.bounds}

    @property
    def gtol(self) -> float:
        """The convergence tolerance of Newton and the quasi-Newton methods."""
        return self.tol if self.tol is not None else DEFAULT_GTOL

    @property
    def row_every(self) -> int:
        """About 20 rows for a Keras optimizer; Newton and SciPy's methods take few iterations, so more."""
        return self.every or max(1, self.steps // (20 if self.keras else 200))


@dataclass(frozen=True)
class Row:
    step: int
    x: dict[str, float]
    f: float
    grad_norm: float


@dataclass
class Outcome:
    x: dict[str, float]
    f: float
    gradient: dict[str, float]
    grad_norm: float
    steps: int
    status: str
    mode: str
    history: list[Row] = field(default_factory=list)
    path: list[dict[str, float]] = field(default_factory=list)  # every iterate of a single start, when kept
    optimize_s: float = 0.0
    traces: int = 0
    evaluations: int = 0  # computations of f and its gradient, summed over starts


class Reporter(Protocol):
    def row(self, row: Row) -> None: ...
    def progress(self, done: int, total: int) -> None: ...


class Silent:
    """A reporter that shows nothing."""

    def row(self, row: Row) -> None:
        pass

    def progress(self, done: int, total: int) -> None:
        pass


@dataclass
class BatchResult:
    """Per start: end point (starts, d), f, iterations, status code; evaluations summed over starts."""

    x: np.ndarray
    f: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    evaluations: int
    history: list[Row] = field(default_factory=list)  # the best start at each recorded step
    interrupted: bool = False
    traces: int = 0
    path: np.ndarray | None = None  # (iterates, d): every point a single start went through


@dataclass(frozen=True)
class Box:
    """Bounds per variable, as arrays in variable order (-inf/inf where unbounded)."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())

    @staticmethod
    def of(names: Sequence[str], bounds: Mapping[str, tuple[float, float]]) -> Box:
        lo = np.array([bounds.get(n, (-math.inf, math.inf))[0] for n in names], dtype=np.float64)
        hi = np.array([bounds.get(n, (-math.inf, math.inf))[1] for n in names], dtype=np.float64)
        return Box(lo, hi)


def projected(x: np.ndarray, g: np.ndarray, box: Box) -> np.ndarray:
    """:func:`projected_gradient` in numpy, for points (starts, d) and their gradients."""
    with np.errstate(invalid="ignore"):
        step = x - g
        return np.where(step < box.lo, x - box.lo, np.where(step > box.hi, x - box.hi, g))


def row_length(v: np.ndarray) -> np.ndarray:
    """Each row's Euclidean length; inf, not an overflow, past the largest float (a run off to 1e200)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.hypot.reduce(np.asarray(v, dtype=np.float64), axis=-1)


def same_point(a: Row, b: Row) -> bool:
    """Do two history rows show the same point (whatever their steps)? With many starts, the
    best start's row repeats once it has stopped and others run on: the table shows the best
    start's progress, so such a row is left out."""
    return a.x == b.x and a.f == b.f and a.grad_norm == b.grad_norm


def history_row(names: Sequence[str], X: np.ndarray, y: np.ndarray, gnorm: np.ndarray, step: int) -> Row | None:
    """The best finite start's row at ``step``, or None when no start is finite."""
    finite = np.isfinite(y)
    if not finite.any():
        return None
    i = int(np.argmin(np.where(finite, y, np.inf)))
    return Row(step, {n: float(X[i, j]) for j, n in enumerate(names)}, float(y[i]), float(gnorm[i]))


def held_at_bounds(x: np.ndarray, g: np.ndarray, box: Box | None, near: np.ndarray | float) -> np.ndarray:
    """Which variables of points x (starts, d) sit on a bound, or within ``near`` of it, that
    their gradient g pushes against: held there, they are left out of stationarity."""
    if box is None:
        return np.zeros(np.shape(g), dtype=bool)
    near = np.reshape(near, (-1, 1)) if np.ndim(near) else near
    with np.errstate(invalid="ignore"):
        return ((x - box.lo <= near) & (g > 0)) | ((box.hi - x <= near) & (g < 0))


def newton_step_length(g: np.ndarray, hessian: np.ndarray, held: np.ndarray) -> np.ndarray:
    """The length of Newton's step ``H^-1 g`` over the free variables, as its largest component
    along H's eigenvectors, ``max |v . g| / |w|``, per start, for gradients (starts, d) and
    Hessians (starts, d, d). Where f has no curvature along v, a slope is an infinite step
    and no slope a step of 0; a start whose gradient or Hessian is not finite gets inf."""
    d = g.shape[1]
    free = ~held
    h = np.where(free[:, :, None] & free[:, None, :], hessian, np.eye(d))
    gs = np.where(free, g, 0.0)
    ok = np.isfinite(h).all(axis=(1, 2)) & np.isfinite(gs).all(axis=1)
    out = np.full(len(g), np.inf)
    if ok.any():
        h = h[ok].astype(np.float64)
        w, v = np.linalg.eigh(0.5 * (h + np.swapaxes(h, 1, 2)))
        along = np.abs(np.einsum("nij,ni->nj", v, gs[ok].astype(np.float64)))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[ok] = np.max(np.where(along == 0, 0.0, along / np.abs(w)), axis=1, initial=0.0)
    return out


def newton_step_within(g: np.ndarray, hessian: np.ndarray, allowed: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Is Newton's step (:func:`newton_step_length`) at most ``allowed`` (per start) long?

    A slope of 6e-7 where the curvature is 2e-7 (a function of scale 1e-7) is a step of 3,
    not a zero gradient, however small it is against a gradient tolerance.
    """
    return newton_step_length(g, hessian, held) <= np.reshape(allowed, -1)


def step_tolerance(x: np.ndarray, tol: float, eps: float) -> np.ndarray:
    """How far from the stationary point nearby the methods may stop: ``max(tol, sqrt(eps)) *
    max(1, |x|_inf)`` per start. tol, the gradient tolerance, is also the relative distance in x;
    a minimum can be located only to about sqrt(eps) relative (f is flat there)."""
    return max(tol, math.sqrt(eps)) * np.maximum(1.0, np.max(np.abs(x), axis=1))
