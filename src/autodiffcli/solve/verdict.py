"""What kind of point is it? The second-order test, from the gradient and the Hessian.

A point is *stationary* when its gradient is zero up to what the dtype can resolve; a
stationary point is then a ``minimum`` (every Hessian eigenvalue > 0), a ``maximum`` (all
< 0), a ``saddle`` (some of each: decided even when others are 0), or ``degenerate`` (an
eigenvalue too close to 0 for the test to decide, as for x**4 at 0). Anything else is
``not stationary``.

Tolerances, with eps the dtype's machine epsilon (1.2e-7 in float32, 2.2e-16 in float64):

* eigenvalue zero: ``|lambda| <= 4 * eps * max |lambda|``: the tape Hessian is exact up to
  rounding, and a symmetric eigensolver finds each eigenvalue within a few eps times the
  Hessian's norm, so anything larger is a decided sign (1e6*x**2 + y**2 is a minimum in
  float32, condition numbers up to 1e15 are decided in float64);
* gradient zero: Newton's step ``H^-1 grad`` (the distance to the stationary point nearby)
  is at most ``max(sqrt(eps), 10 * tol) * max(1, |x|_inf)`` along each eigenvector v_i of
  H: ``|v_i . grad| <= that * |lambda_i|``. A minimum can be located only to about sqrt(eps)
  relative in x (f is flat there); ``tol``, the method's own gradient tolerance, is also the
  relative distance in x it stops within (``types.step_tolerance``), and the verdict allows
  ten times that. The test is on the step, never on |grad| alone: on a function of scale
  1e-7 every gradient is tiny, and a point a step of 3 from the minimum is not one.
  Where f has no curvature along some v_i (f = x), no slope but 0 passes.

A point judged stationary with a gradient that is small but not negligible lies a Newton
step ``s = H^-1 grad`` away from the stationary point the test is really about. There the
curvature may be quite different: near the inflection of x**3 every point looks like a
minimum (f'' > 0, f' tiny), yet the stationary point is degenerate. So when ``s`` is not
0, and a ``hessian_at`` function is given, the Hessian is evaluated again at ``x - s``;
with its eigenvalues ``mu``, the cubic model along each eigenvector puts
the curvature at the stationary point at ``sqrt(lambda * (2 mu - lambda))``. A minimum or
maximum whose curvature there falls below half of ``|lambda|`` (``mu / lambda < 5/8``) is
``degenerate``: the second-order test cannot decide it. Where ``mu / lambda`` is below a
half the cubic model has no stationary point at all (``2 mu - lambda < 0``): near a pole
(tan(x) at 1.5707, 1/x at 1e-8: a ratio of 0.30; log(x) at 1e-5: 0.25) the gradient is
huge and the Newton step short only because the curvature is huger. Below
``NO_STATIONARY_POINT`` (3/8, leaving x**3's inflection, at exactly 1/2, its rounding) the
point is ``not stationary``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .types import Box, held_at_bounds, newton_step_within, step_tolerance

NO_STATIONARY_POINT = 3 / 8  # mu / lambda below this: the cubic model has no stationary point nearby
MINIMUM, MAXIMUM, SADDLE, DEGENERATE, NOT_STATIONARY = "minimum", "maximum", "saddle", "degenerate", "not stationary"
KINDS = (MINIMUM, MAXIMUM, SADDLE, DEGENERATE, NOT_STATIONARY)
LOOSE = 10.0  # the verdict allows a step LOOSE times the one the methods stop within
KINK = 8.0  # a kink keeps the jump in slope as the step shrinks: J(h1) above KINK * (h1/h3) * J(h3)
ZERO = 4.0  # an eigenvalue within ZERO * eps * max |lambda| of 0 is 0: what rounding leaves undecided


@dataclass(frozen=True)
class Verdict:
    kind: str
    eigenvalues: tuple[float, ...]  # of the Hessian, ascending

    def __str__(self) -> str:
        return self.kind


def eigenvalues(hessians: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a batch of symmetric matrices (points, d, d), with tf.linalg.eigvalsh."""
    from ..runtime import tensorflow

    tf = tensorflow()
    h = tf.constant(hessians)
    return tf.linalg.eigvalsh(0.5 * (h + tf.linalg.matrix_transpose(h))).numpy()


def classify(
    x: np.ndarray,
    gradient: np.ndarray,
    hessian: np.ndarray,
    dtype: str,
    tol: float = 0.0,
    box: tuple[np.ndarray, np.ndarray] | None = None,
    sense: float = 1.0,
    hessian_at: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Verdict]:
    """The verdict at each of a batch of points: x and gradient (points, d), hessian (points, d, d).

    With a ``box`` (lo, hi), a variable at a bound whose gradient pushes out of the box is
    held there (as is one within the distance a point can be placed from it, as the
    projected gradient's test would): the test runs over the other (free) variables, and a point where every
    variable is held is a minimum of ``sense * f`` (a corner where f falls outwards). The
    eigenvalues are then those over the free variables. ``sense`` is -1 when maximizing: the
    bound test is on -f, the verdict and eigenvalues are f's. ``hessian_at`` (points, d) ->
    (points, d, d) checks minima and maxima at the stationary point nearby (see above).
    """
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    root = np.sqrt(eps)
    finite = np.isfinite(hessian).all(axis=(1, 2)) & np.isfinite(gradient).all(axis=1)
    # how far from its stationary point a point may be, in x: the methods' step tolerance, loosened
    allowed = step_tolerance(x, LOOSE * tol, eps)
    # a variable on a bound, or as near it as the point can be placed, that the slope of
    # sense * f pushes against is held: its projected gradient is (about) 0
    held = held_at_bounds(x, sense * gradient, Box(*box), allowed) if box is not None else np.zeros(x.shape, bool)
    lam = np.full(gradient.shape, np.nan)
    plain = finite & ~held.any(axis=1)
    if plain.any():
        lam[plain] = eigenvalues(hessian[plain])
    out = []
    for i in range(len(x)):
        free = ~held[i]
        if not finite[i]:
            out.append(Verdict(NOT_STATIONARY, tuple(float(v) for v in lam[i])))
            continue
        values = lam[i] if plain[i] else eigenvalues(hessian[i][np.ix_(free, free)][None])[0]
        if not free.any():
            kind = MINIMUM if sense > 0 else MAXIMUM
        else:
            h = hessian[i][np.ix_(free, free)]
            kind = _kind(gradient[i][free], 0.5 * h + 0.5 * h.T, values, eps, float(allowed[i]))
        out.append(Verdict(kind, tuple(float(v) for v in values)))
    if hessian_at is not None:
        _at_the_stationary_point(out, x, gradient, hessian, lam, plain, root, hessian_at)
    return out


def rises_all_around(
    x: np.ndarray,
    gradient: np.ndarray,
    f_at: Callable[[np.ndarray], np.ndarray],
    dtype: str,
    box: tuple[np.ndarray, np.ndarray] | None = None,
    sense: float = 1.0,
) -> bool:
    """Is x, a point that is not stationary, a minimum of ``sense * f`` where f has a kink?

    Such a point (sqrt(x**2 + y**2) at 0, |x|) has a one-sided gradient, and the second-order
    test does not apply. Tried: steps h of eps**(1/2), eps**(1/3), eps**(1/4) times max(1, |x|)
    along each axis, both ways, and both ways along the gradient; points outside the box are
    brought back onto it (and dropped if that leaves them at x). Every one must be finite and
    strictly higher. And the slope must jump there: along the gradient, where
    ``J(h) = (f(x + h u) + f(x - h u) - 2 f(x)) / h`` is the sum of the two one-sided slopes,
    a kink keeps J as h shrinks while a smooth f's curvature makes it shrink with h (the
    bottom of Rosenbrock's valley, seen from 1e-3 away in float32, rises all around too).
    So J at the smallest step must exceed ``KINK`` times what curvature leaves of J at the
    largest, ``J(h_1) > KINK * (h_1 / h_3) * J(h_3)``, plus what rounding f explains.
    """
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    d = len(x)
    with np.errstate(over="ignore"):  # a gradient past sqrt(largest float) (a run off to overflow) is inf long
        size = float(np.linalg.norm(gradient))
    directions = list(np.vstack([np.eye(d), -np.eye(d)]))
    along = size > 0 and np.isfinite(size)
    if along:
        directions += [-gradient / size, gradient / size]
    scale = max(1.0, float(np.max(np.abs(x))))
    steps = np.array([eps ** (1 / 2), eps ** (1 / 3), eps ** (1 / 4)]) * scale
    probes = np.array([x + h * u for u in directions for h in steps])
    if box is not None:
        probes = np.clip(probes, box[0], box[1])
    moved = np.any(probes != x, axis=1)
    if not moved.any():
        return False
    values = sense * f_at(np.vstack([x[None], probes]))
    f0, tried = values[0], values[1:][moved]
    if not (np.all(np.isfinite(values)) and np.all(tried > f0)):
        return False
    if not along:
        return True
    down, up = values[1:][-2 * len(steps) :].reshape(2, len(steps))
    exact = np.all(probes[-2 * len(steps) :] == np.array([x + h * u for u in directions[-2:] for h in steps]))
    if not exact:  # the box cut the probes along the gradient: the rise all around decides
        return True
    jump = (down + up - 2 * f0) / steps
    rounding = 8 * eps * (abs(f0) + np.abs(down) + np.abs(up)) / steps
    return bool(jump[0] > KINK * (steps[0] / steps[-1]) * jump[-1] + rounding[0])


def _at_the_stationary_point(
    out: list[Verdict],
    x: np.ndarray,
    gradient: np.ndarray,
    hessian: np.ndarray,
    lam: np.ndarray,
    plain: np.ndarray,
    root: float,
    hessian_at: Callable[[np.ndarray], np.ndarray],
) -> None:
    """Minima and maxima a Newton step away from their stationary point: degenerate there?"""
    picked, targets = [], []
    for i, verdict in enumerate(out):
        if verdict.kind not in (MINIMUM, MAXIMUM) or not plain[i]:
            continue
        step = np.linalg.solve(0.5 * hessian[i] + 0.5 * hessian[i].T, gradient[i])
        if np.any(step != 0):  # however short: near x**3's inflection the curvature halves within it
            picked.append(i)
            targets.append(x[i] - step)
    if not picked:
        return
    there = hessian_at(np.array(targets))
    mu = np.full((len(picked), x.shape[1]), np.nan)
    finite = np.isfinite(there).all(axis=(1, 2))
    if finite.any():
        mu[finite] = eigenvalues(there[finite])
    for k, i in enumerate(picked):
        ratio = mu[k] / lam[i]  # both ascending; a minimum's or maximum's eigenvalues share one sign
        if np.any(ratio < NO_STATIONARY_POINT):
            out[i] = Verdict(NOT_STATIONARY, out[i].eigenvalues)
        elif not np.all(ratio >= 5 / 8):  # nan (not finite there) fails too
            out[i] = Verdict(DEGENERATE, out[i].eigenvalues)


def _kind(g: np.ndarray, h: np.ndarray, lam: np.ndarray, eps: float, allowed: float) -> str:
    largest = float(np.max(np.abs(lam))) if lam.size else 0.0
    zero = ZERO * eps * largest  # a few eps times the Hessian's norm: eigh's accuracy
    if not newton_step_within(g[None], h[None], np.array([allowed]), np.zeros((1, len(g)), bool))[0]:
        return NOT_STATIONARY
    if (lam < -zero).any() and (lam > zero).any():
        return SADDLE
    if (np.abs(lam) <= zero).any():
        return DEGENERATE
    return MINIMUM if (lam > 0).all() else MAXIMUM
