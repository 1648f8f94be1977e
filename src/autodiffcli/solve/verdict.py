"""What kind of point is it? The second-order test, from the gradient and the Hessian.

A point is *stationary* when its gradient is zero up to what the dtype can resolve; a
stationary point is then a ``minimum`` (every Hessian eigenvalue > 0), a ``maximum`` (all
< 0), a ``saddle`` (some of each: decided even when others are 0), or ``degenerate`` (an
eigenvalue too close to 0 for the test to decide, as for x**4 at 0). Anything else is
``not stationary``.

Tolerances, with eps the dtype's machine epsilon (1.2e-7 in float32, 2.2e-16 in float64):

* eigenvalue zero: ``|lambda| <= eps**(3/4) * max(1, max |lambda|)`` (Newton's eigenvalue floor);
* gradient zero: Newton's step ``H^-1 grad`` (the distance to the stationary point nearby)
  is at most ``max(sqrt(eps) * max(1, |x|_inf), tol / min |lambda|)``, or
  ``|grad|_inf <= tol``, or along each eigenvector v_i, ``|v_i . grad| <= sqrt(eps) *
  max(1, |x|_inf) * |lambda_i|``.
  A minimum can be located only to about sqrt(eps) relative in x (f is flat there), and
  ``tol``, the method's own gradient tolerance, places a point within tol / (curvature).

A point judged stationary with a gradient that is small but not negligible lies a Newton
step ``s = H^-1 grad`` away from the stationary point the test is really about. There the
curvature may be quite different: near the inflection of x**3 every point looks like a
minimum (f'' > 0, f' tiny), yet the stationary point is degenerate. So when ``s`` is not
0, and a ``hessian_at`` function is given, the Hessian is evaluated again at ``x - s``;
with its eigenvalues ``mu``, the cubic model along each eigenvector puts
the curvature at the stationary point at ``sqrt(lambda * (2 mu - lambda))``. A minimum or
maximum whose curvature there falls below half of ``|lambda|`` (``mu / lambda < 5/8``) is
``degenerate``: the second-order test cannot decide it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MINIMUM, MAXIMUM, SADDLE, DEGENERATE, NOT_STATIONARY = "minimum", "maximum", "saddle", "degenerate", "not stationary"
KINDS = (MINIMUM, MAXIMUM, SADDLE, DEGENERATE, NOT_STATIONARY)


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
    held there: the test runs over the other (free) variables, and a point where every
    variable is held is a minimum of ``sense * f`` (a corner where f falls outwards). The
    eigenvalues are then those over the free variables. ``sense`` is -1 when maximizing: the
    bound test is on -f, the verdict and eigenvalues are f's. ``hessian_at`` (points, d) ->
    (points, d, d) checks minima and maxima at the stationary point nearby (see above).
    """
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    root = np.sqrt(eps)
    finite = np.isfinite(hessian).all(axis=(1, 2)) & np.isfinite(gradient).all(axis=1)
    held = np.zeros(gradient.shape, dtype=bool)
    if box is not None:
        slope = sense * gradient
        held = ((x <= box[0]) & (slope > 0)) | ((x >= box[1]) & (slope < 0))
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
            kind = _kind(x[i][free], gradient[i][free], 0.5 * h + 0.5 * h.T, values, root, tol)
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
    """Does ``sense * f`` rise in every direction tried around x, a point that is not stationary?

    Such a point is a minimum where f has a kink (sqrt(x**2 + y**2) at 0, |x|): the
    gradient there is a one-sided one, and the second-order test does not apply. Tried:
    steps of eps**(1/2), eps**(1/3), eps**(1/4) times max(1, |x|) along each axis, both
    ways, and down the gradient; points outside the box are brought back onto it (and
    dropped if that leaves them at x). Every one must be finite and strictly higher.
    """
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    d = len(x)
    with np.errstate(over="ignore"):  # a gradient past sqrt(largest float) (a run off to overflow) is inf long
        size = float(np.linalg.norm(gradient))
    directions = list(np.vstack([np.eye(d), -np.eye(d)]))
    if size > 0 and np.isfinite(size):
        directions.append(-gradient / size)
    scale = max(1.0, float(np.max(np.abs(x))))
    probes = np.array([x + eps**power * scale * u for u in directions for power in (1 / 2, 1 / 3, 1 / 4)])
    if box is not None:
        probes = np.clip(probes, box[0], box[1])
    probes = probes[np.any(probes != x, axis=1)]
    if not len(probes):
        return False
    values = sense * f_at(np.vstack([x[None], probes]))
    return bool(np.all(np.isfinite(values)) and np.all(values[1:] > values[0]))


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
        if not np.all(ratio >= 5 / 8):  # nan (not finite there) fails too
            out[i] = Verdict(DEGENERATE, out[i].eigenvalues)


def _kind(x: np.ndarray, g: np.ndarray, h: np.ndarray, lam: np.ndarray, root: float, tol: float) -> str:
    largest = float(np.max(np.abs(lam))) if lam.size else 0.0
    scale_x = max(1.0, float(np.max(np.abs(x)))) if x.size else 1.0
    zero = root**1.5 * max(1.0, largest)  # eps**(3/4): Newton's eigenvalue floor (local.newton)
    if not _stationary(g, h, lam, scale_x, largest, zero, root, tol):
        return NOT_STATIONARY
    if (lam < -zero).any() and (lam > zero).any():
        return SADDLE
    if (np.abs(lam) <= zero).any():
        return DEGENERATE
    return MINIMUM if (lam > 0).all() else MAXIMUM


def _stationary(
    g: np.ndarray, h: np.ndarray, lam: np.ndarray, scale_x: float, largest: float, zero: float, root: float, tol: float
) -> bool:
    """Is the gradient zero, up to the dtype and the method's tolerance?

    Where H is not singular, the distance to the stationary point nearby is Newton's step
    H^-1 g: it must be within sqrt(eps) of x's magnitude, or within tol / (smallest
    curvature), which is as close as a gradient tolerance of tol can place a point.
    Otherwise the gradient must be within tol, or along every eigenvector within
    sqrt(eps) * max(1, |x|) * |lambda| there: where f has no curvature (f = x), no slope but 0
    is zero.
    """
    if float(np.max(np.abs(g))) <= tol:
        return True
    # along each eigenvector, the slope within what locating x to sqrt(eps) allows there:
    # where f has no curvature (the x of x + y**2), no slope but 0
    w, v = np.linalg.eigh(h)
    if bool(np.all(np.abs(v.T @ g) <= root * scale_x * np.abs(w))):
        return True
    smallest = float(np.min(np.abs(lam)))
    if smallest <= zero:
        return False
    step = float(np.max(np.abs(np.linalg.solve(h, g))))
    return step <= max(root * scale_x, tol / smallest)
