"""Where the Hessian is singular at a stationary point: decide with higher derivatives.

The second-order test cannot tell x**4 (a minimum) from x**3 (an inflection) at 0. Along
each null direction u of the Hessian, the derivatives of g(t) = f(x + t u) at 0, of order
3, 4, ... up to ``ORDER``, come from nested tapes over the one scalar t
(calculus.derivatives.tower). The first that is not zero decides along u:

* an odd order: f falls on one side of x and rises on the other, so x is neither a
  minimum nor a maximum (a ``saddle``; in one variable, an inflection);
* an even order: f rises along u (a positive derivative) or falls (negative).

A point where f falls along one direction and rises along another (the Hessian's nonzero
eigenvalues count as directions too) is a ``saddle``. Where every direction rises, x is
called a ``minimum`` only if f, restricted to the null directions with the other
variables re-minimized (Newton steps in the range of the Hessian), still rises: Peano's
surface (y - x**2)*(y - 2*x**2) rises along every line through 0, but with y re-minimized
along x it falls as -x**4/4, so 0 is no minimum. The re-minimized function is sampled at
``t = +-tau, +-tau/2`` where the line's own rise is ``RISE * max(1, |f|)``. A maximum
likewise, with -f. Anything else (every derivative up to ``ORDER`` zero along a direction,
or a re-minimized function too flat to tell) stays ``degenerate``.

With several null directions, the directions tried are the null eigenvectors and their
pairwise sums and differences: a minimum is a minimum along the directions tried.

The point found by a method is only near the stationary point, by the method's gradient
tolerance, and a degenerate one can be far: Newton on x**4 stops at x = 0.0136 with
f' = 1e-5. So first the point is moved along each null direction to the nearest
stationary point of the Taylor polynomial there (of degree FIRST_ORDER), and along the
others by a Newton step, until it moves by less than sqrt(eps) (at most CLOSER times);
then a derivative D_k counts as zero where the higher ones explain it from a point
sqrt(eps) away: ``|D_k| <= 10 * max_j>k |D_j| * delta**(j-k)``, delta = sqrt(eps) * max(1, |x|).
Everything runs in float64, whatever the problem's dtype.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calculus.derivatives import derivatives, tower
from ..calculus.tf_build import TFFunction
from .verdict import MAXIMUM, MINIMUM, SADDLE, Verdict

ORDER = 8  # the highest directional derivative tried
FIRST_ORDER = 4  # tried first; ORDER only along directions where these are all zero
CLOSER = 8  # most moves towards the stationary point (each gains about a third of the digits left)
NULL = 1e-2  # an eigenvalue within NULL * max(1, max |lambda|) is a candidate null direction
RISE = 1e-6  # the line's rise, relative to max(1, |f|), at which the re-minimized f is sampled
BUDGET_S = 1.0  # the test gives up (degenerate) rather than run longer than this
GROWTH = 3.0  # how much longer one more nested tape takes, until two orders have been timed
EPS = float(np.finfo(np.float64).eps)


Derivatives2 = tuple[float, np.ndarray, np.ndarray]  # f, its gradient (d,) and Hessian (d, d) at a point


class OutOfTime(Exception):
    """The higher-order test would run past its budget."""


class Budget:
    """A deadline for the test, and a forecast of each directional call from the last one's time.

    Each order nests one more tape, and the work can grow by a factor per order (60 nested
    sigmoids: 0.03 s at order 2, 0.85 s at order 4, minutes at order 8): a call whose
    forecast overruns the deadline is not started.
    """

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.spent: dict[int, float] = {}  # order -> the longest directional call at that order

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise OutOfTime

    def forecast(self, order: int) -> float:
        """Seconds a directional call of this order may take: the time at the highest order
        measured, times the growth per order seen between two orders (GROWTH before that)."""
        if not self.spent:
            return 0.0
        below = [k for k in self.spent if k <= order] or [min(self.spent)]
        top = max(below)
        rate = GROWTH
        low = min(self.spent)
        if top > low and self.spent[low] > 0:
            rate = min(max((self.spent[top] / self.spent[low]) ** (1 / (top - low)), 1.5), 10.0)
        return self.spent[top] * rate ** max(0, order - top)

    def directional(
        self, f: TFFunction, names: Sequence[str], params: Mapping[str, float], x: Any, u: Any, order: int
    ) -> np.ndarray:
        self.check()
        if len(self.spent) == 1 and order > max(self.spent) + 1:  # time one order up on one direction first
            step = max(self.spent) + 1
            began = time.monotonic()
            directional(f, names, params, x[:1], u[:1], step)
            self.spent[step] = time.monotonic() - began
        if time.monotonic() + self.forecast(order) > self.end:
            raise OutOfTime
        began = time.monotonic()
        out = directional(f, names, params, x, u, order)
        self.spent[order] = max(self.spent.get(order, 0.0), time.monotonic() - began)
        return out


@dataclass(frozen=True)
class HigherVerdict(Verdict):
    """A verdict the higher-order test decided: the order and the derivative that decided it.

    ``direction`` is the unit direction along which it was decided; ``descent`` a unit
    direction along which f falls from the point (empty where none is known, as at a
    minimum).
    """

    order: int = 2
    derivative: float = 0.0
    direction: tuple[float, ...] = ()
    descent: tuple[float, ...] = ()


def directional(
    f: TFFunction, names: Sequence[str], params: Mapping[str, float], x: np.ndarray, u: np.ndarray, order: int
) -> np.ndarray:
    """D_k = d^k/dt^k f(x + t u) at t = 0, k = 0..order, for a batch: x, u (n, d) -> (n, order + 1)."""
    from ..runtime import tensorflow

    tf = tensorflow()
    n = len(x)
    t = tf.zeros([n], f.dtype)  # watched by each tape (a Variable costs more to make than the tower)
    consts = {name: f.constant(value) for name, value in params.items()}
    # a variable the directions leave still is a constant of t: the tapes need not follow it
    fixed = {name: tf.constant(x[:, j], f.dtype) for j, name in enumerate(names) if not u[:, j].any()}
    moving = [(name, tf.constant(x[:, j], f.dtype), tf.constant(u[:, j], f.dtype))
              for j, name in enumerate(names) if u[:, j].any()]  # fmt: skip

    def along(env: Mapping[str, Any]) -> Any:
        return f({**consts, **fixed, **{name: xj + env["t"] * uj for name, xj, uj in moving}})

    levels = tower(along, {"t": t}, {"t": t}, order)  # type: ignore[arg-type]
    return np.stack([np.broadcast_to(np.asarray(levels[k][("t",) * k]), (n,)) for k in range(order + 1)], axis=1)


def decide(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    eigenvalues: Sequence[float] | np.ndarray,
    seconds: float = BUDGET_S,
    at: Derivatives2 | None = None,
) -> HigherVerdict | None:
    """The higher-order verdict of f (a float64 TFFunction) at x (d,), or None where it cannot decide.

    ``eigenvalues`` are those the second-order test reported (kept in the verdict). Past
    ``seconds`` (BUDGET_S) it gives up: None. ``at``: f, its gradient and Hessian at x,
    where the caller has them (float64).
    """
    try:
        return _decide(f, names, params, np.asarray(x, dtype=np.float64), eigenvalues, Budget(seconds), at)
    except OutOfTime:
        return None


def decide_on_bounds(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    eigenvalues: Sequence[float] | np.ndarray,
    seconds: float = BUDGET_S,
) -> HigherVerdict | None:
    """At a stationary point on the box's boundary that the second-order test left degenerate:
    whether f falls into the box from it, or None where that is not shown.

    From a bound only one side of a line is in the box: along each direction into the box
    (e_j, inwards, for a variable on its bound) the first derivative that is not zero
    decides, whatever its order: negative, f falls into the box (-x**3 on [0, 1] at 0);
    positive, it rises. The other variables' lines through the point are two-sided and are
    decided as in ``decide`` along the eigenvectors of their Hessian. A point where f falls
    along some line into the box is no minimum: a ``saddle`` where it rises along another, a
    ``maximum`` where every line is decided and falls; it is never called a minimum here.
    """
    try:
        return _decide_on_bounds(f, names, params, np.asarray(x, np.float64), lo, hi, eigenvalues, Budget(seconds))
    except OutOfTime:
        return None


def _decide_on_bounds(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    eigenvalues: Sequence[float] | np.ndarray,
    budget: Budget,
) -> HigherVerdict | None:
    d = len(x)
    on = (x <= lo) | (x >= hi)
    if not on.any():
        return None
    one_sided = [np.where(np.arange(d) == j, 1.0 if x[j] <= lo[j] else -1.0, 0.0) for j in np.flatnonzero(on)]
    free = np.flatnonzero(~on)
    two_sided: list[np.ndarray] = []
    if len(free):
        _, _, H = _gradient_hessian(f, names, params, x[None])
        _, Q = np.linalg.eigh(0.5 * (H[0] + H[0].T)[np.ix_(free, free)])
        for v in Q.T:
            u = np.zeros(d)
            u[free] = v
            two_sided.append(u)
    U = np.array([*one_sided, *two_sided])
    delta = _delta(x)
    D = budget.directional(f, names, params, np.repeat(x[None], len(U), axis=0), U, FIRST_ORDER)
    found = [_first_any(row, delta) for row in D]
    again = [i for i, m in enumerate(found) if m is None and np.isfinite(D[i]).all()]
    if again:  # all zero to FIRST_ORDER: up to ORDER on those lines
        more = budget.directional(f, names, params, np.repeat(x[None], len(again), axis=0), U[again], ORDER)
        for i, row in zip(again, more, strict=True):
            found[i] = _first_any(row, delta)
    falls, rises = [], []
    for i, m_v in enumerate(found):
        if m_v is None:
            continue
        m, value = m_v
        if i >= len(one_sided) and m % 2 == 1:  # a two-sided line with an odd order: it falls one way
            falls.append((m, value, -np.sign(value) * U[i]))
            rises.append((m, value, U[i]))
        elif value < 0:
            falls.append((m, value, U[i]))
        else:
            rises.append((m, value, U[i]))
    if not falls:
        return None
    keep = tuple(float(v) for v in eigenvalues)
    m, value, u = falls[0]
    kind = SADDLE if rises or None in found else MAXIMUM
    return HigherVerdict(kind, keep, m, value, _unit(u), _unit(u))


def _delta(x: np.ndarray) -> float:
    return math.sqrt(EPS) * max(1.0, float(np.max(np.abs(x))))


def _first_any(row: np.ndarray, delta: float) -> tuple[int, float] | None:
    """The first derivative of order >= 1 along a line that is not zero, as (order, value)."""
    if not np.isfinite(row).all():
        return None
    return next(((k, float(row[k])) for k in range(1, len(row)) if not _zero(row, k, delta)), None)


def curvature_explained(curvature: float, row: np.ndarray, delta: float) -> bool:
    """Whether a curvature is 0 to a point's precision: the third and fourth derivatives along
    its direction (``row``: D_0 .. D_4) explain it over ``delta``, the distance the point may
    be from the stationary point (Newton's step along it, at least the step tolerance). x**3
    stopped at 6e-5 has curvature 3.7e-4, explained by its third derivative 6 over 3e-5."""
    if not np.isfinite(row).all():
        return True
    return bool(abs(curvature) <= 10 * (abs(row[3]) * delta + abs(row[4]) * delta**2))


def _zero(row: np.ndarray, k: int, delta: float) -> bool:
    """Whether D_k counts as 0: the higher ones explain it from a point delta away, or it is
    below rounding beside f."""
    explained = max((abs(row[j]) * delta ** (j - k) for j in range(k + 1, len(row))), default=0.0)
    return bool(abs(row[k]) <= 10 * explained or abs(row[k]) <= EPS * max(1.0, abs(row[0])))


def _decide(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    eigenvalues: Sequence[float] | np.ndarray,
    budget: Budget,
    at: Derivatives2 | None = None,
) -> HigherVerdict | None:
    for _ in range(CLOSER):  # to the stationary point nearby: along the null directions, then the others
        near = _nearby(f, names, params, x, budget, at)
        at = None
        if near is None:
            return None
        moved, f0, lam, Q, null, D = near
        if moved is None:
            break
        x = moved
    else:
        return None
    if not null.any():
        return None
    N, R, rest = Q[:, null], Q[:, ~null], lam[~null]
    delta = math.sqrt(EPS) * max(1.0, float(np.max(np.abs(x))))
    pairs = [
        (N[:, i] + sign * N[:, j]) / math.sqrt(2)
        for i in range(N.shape[1])
        for j in range(i + 1, N.shape[1])
        for sign in (1, -1)
    ]
    U = np.array([*N.T, *pairs])
    found = _orders(f, names, params, x, U, delta, D, budget)
    keep = tuple(float(v) for v in eigenvalues)
    decisive = [(m_v[0], m_v[1], u) for m_v, u in zip(found, U, strict=True) if m_v is not None]
    # an odd order along a direction: f falls on one side and rises on the other
    for m, value, u in decisive:
        if m % 2 == 1:
            return HigherVerdict(SADDLE, keep, m, value, _unit(u), _unit(-np.sign(value) * u))
    ups = [(m, v, u) for m, v, u in decisive if v > 0]
    downs = [(m, v, u) for m, v, u in decisive if v < 0]
    up = bool(ups) or bool((rest > 0).any())
    down = bool(downs) or bool((rest < 0).any())
    if up and down:  # f rises along one direction and falls along another
        m, value, u = (downs or ups)[0]
        descent = _unit(u) if downs else _unit(R[:, int(np.argmin(rest))])
        return HigherVerdict(SADDLE, keep, m, value, _unit(u), descent)
    if len(decisive) < len(found) or not decisive:
        return None  # every derivative up to ORDER is zero along a direction, or it is not stationary there
    sense = 1.0 if up else -1.0
    decided = ups if up else downs
    m, value, u = max(decided, key=lambda item: item[0])
    if R.shape[1] == 0:  # no other variables to re-minimize: the lines decide
        return HigherVerdict(MINIMUM if up else MAXIMUM, keep, m, value, _unit(u))
    falls = _reminimized(f, names, params, x, f0, R, decided, sense, budget)
    if falls is None:
        return None
    if falls is False or falls is True:
        return HigherVerdict(MINIMUM if up else MAXIMUM, keep, m, value, _unit(u))
    order, reduced, along, away = falls
    # f re-minimized falls (for a maximum: rises) along a null direction, and the others rise
    return HigherVerdict(SADDLE, keep, order, reduced, _unit(along), _unit(sense * away) if up else ())


def _orders(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    U: np.ndarray,
    delta: float,
    known: np.ndarray,
    budget: Budget,
) -> list[tuple[int, float] | None]:
    """_first along each direction: orders up to FIRST_ORDER (``known``: those of the first
    rows of U), then up to ORDER where those are all zero (each order nests one more tape,
    and most points are decided by the 3rd or 4th)."""
    D = known
    if len(U) > len(known):
        rest = budget.directional(
            f, names, params, np.repeat(x[None], len(U) - len(known), axis=0), U[len(known) :], FIRST_ORDER
        )
        D = np.vstack([known, rest])
    found = [_first(row, delta) for row in D]
    again = [i for i, m in enumerate(found) if m is None and np.isfinite(D[i]).all()]
    if again:
        more = budget.directional(f, names, params, np.repeat(x[None], len(again), axis=0), U[again], ORDER)
        for i, row in zip(again, more, strict=True):
            found[i] = _first(row, delta)
    return found


def _first(row: np.ndarray, delta: float) -> tuple[int, float] | None:
    """The first derivative of order >= 2 that is not zero, as (order, value); None if none is,
    or if the first derivative itself is not zero (not stationary along this line)."""
    found = _first_any(row, delta)
    return found if found is not None and found[0] >= 2 else None


def _nearby(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    budget: Budget,
    at: Derivatives2 | None = None,
) -> tuple[np.ndarray | None, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """At x: (the stationary point nearby, or None when x is within sqrt(eps) of it; f; the
    Hessian's eigenvalues and eigenvectors; which are null; D up to FIRST_ORDER along each
    null eigenvector). The point nearby: along each null direction, the stationary point of
    the Taylor polynomial nearest x; along the others, a Newton step. None where f or its
    derivatives are not finite."""
    budget.check()
    if at is None:
        began = time.monotonic()
        value, g, H = _gradient_hessian(f, names, params, x[None])
        budget.spent[2] = max(budget.spent.get(2, 0.0), time.monotonic() - began)  # order 2: the first forecast
    else:
        value, g, H = (np.asarray(a, dtype=np.float64)[None] for a in at)
    if not (np.isfinite(g).all() and np.isfinite(H).all() and np.isfinite(value).all()):
        return None
    lam, Q = np.linalg.eigh(0.5 * (H[0] + H[0].T))
    null = np.abs(lam) <= NULL * max(1.0, float(np.max(np.abs(lam))))
    D = np.zeros((0, FIRST_ORDER + 1))
    step = np.zeros_like(x)
    if null.any():
        D = budget.directional(f, names, params, np.repeat(x[None], int(null.sum()), axis=0), Q[:, null].T, FIRST_ORDER)
        if not np.isfinite(D).all():
            return None
        reach = 0.1 * max(1.0, float(np.max(np.abs(x))))
        for row, q in zip(D, Q[:, null].T, strict=True):
            # p'(t) = sum_k D_k t**(k-1) / (k-1)!, highest power first for np.roots
            coeffs = np.trim_zeros(np.array([row[k] / math.factorial(k - 1) for k in range(FIRST_ORDER, 0, -1)]), "f")
            if len(coeffs) < 2:
                continue
            real = _real_roots(coeffs, reach)
            if len(real):
                step = step + _sharpened(coeffs, real[np.argmin(np.abs(real))], reach) * q
    if (~null).any():
        R = Q[:, ~null]
        step = step - R @ ((R.T @ g[0]) / lam[~null])
    small = np.max(np.abs(step)) <= math.sqrt(EPS) * max(1.0, float(np.max(np.abs(x))))
    return None if small else x + step, float(value[0]), lam, Q, null, D


def _real_roots(coeffs: np.ndarray, reach: float) -> np.ndarray:
    roots = np.roots(coeffs)
    real = roots[np.abs(roots.imag) <= 1e-4 * np.maximum(np.abs(roots.real), 1e-12)].real
    return real[np.abs(real) <= reach]


def _sharpened(coeffs: np.ndarray, root: float, reach: float) -> float:
    """A multiple root of the polynomial p (``coeffs``) to full precision. np.roots finds a
    root of multiplicity m only to about eps**(1/m) (x**4 from x = 0.0136: 8e-8 off, which
    costs one more round of tapes); the derivatives of p vanish there too, and the root of
    the last one that does is simple. Of the roots of p and its derivatives close to
    ``root``, the one where |p| is least."""
    best, size = root, abs(np.polyval(coeffs, root))
    near = 1e-3 * max(abs(root), 1e-3 * reach)
    poly = coeffs
    while len(poly) > 2:
        poly = np.polyder(poly)
        for t in _real_roots(poly, reach):
            value = abs(np.polyval(coeffs, t))
            if abs(t - root) <= near and value < size:
                best, size = float(t), value
    return best


def _gradient_hessian(
    f: TFFunction, names: Sequence[str], params: Mapping[str, float], points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dv = derivatives(f, points, names, params, names, (), 2)
    g = np.stack([np.asarray(dv.gradient[n]) for n in names], axis=1)
    H = np.stack([np.stack([dv.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
    return dv.value, g, H


def _reminimized(
    f: TFFunction,
    names: Sequence[str],
    params: Mapping[str, float],
    x: np.ndarray,
    f0: float,
    R: np.ndarray,
    decided: list[tuple[int, float, np.ndarray]],
    sense: float,
    budget: Budget,
) -> tuple[int, float, np.ndarray, np.ndarray] | bool | None:
    """Does sense * f, re-minimized over the range R at x + t u, fall along some direction u?

    Returns False where it rises at every sample, None where it cannot tell, else (order,
    the estimated derivative of the re-minimized f, u, the unit step from x to where it
    fell).
    """
    target = RISE * max(1.0, abs(f0))
    points, meta = [], []
    for m, value, u in decided:
        tau = (target * math.factorial(m) / abs(value)) ** (1 / m)
        for t in (tau, -tau, tau / 2, -tau / 2):
            points.append(x + t * u)
            meta.append((m, t, tau, u))
    P = np.array(points)
    W = np.zeros((len(P), R.shape[1]))
    for _ in range(8):  # Newton's method in the range of the Hessian, every sample at once
        budget.check()
        here, g, H = _gradient_hessian(f, names, params, P + W @ R.T)
        if not (np.isfinite(g).all() and np.isfinite(H).all()):
            return None
        reduced = np.einsum("di,ndk,kj->nij", R, H, R)
        if not (np.linalg.eigvalsh(sense * reduced) > 0).all():
            return None  # not a minimum over the other variables there: no re-minimized f to speak of
        step = np.linalg.solve(reduced, (g @ R)[:, :, None])[:, :, 0]
        if np.max(np.abs(step)) <= EPS * max(1.0, float(np.max(np.abs(W)))):
            break  # the values just computed are at the re-minimized points
        W = W - step
    else:
        here = derivatives(f, P + W @ R.T, names, params, names, (), 1).value
    at = P + W @ R.T
    values = sense * (here - f0)
    fell = None
    for k, (m, t, tau, u) in enumerate(meta):
        expected = target * (abs(t) / tau) ** m
        if values[k] < -0.01 * expected:
            fell = fell or (m, float(sense * values[k] * math.factorial(m) / abs(t) ** m), u, at[k] - x)
        elif values[k] <= 0.01 * expected:
            return None  # too flat to tell at this sample
    return fell if fell is not None else False


def _unit(v: np.ndarray) -> tuple[float, ...]:
    size = float(np.linalg.norm(v))
    return tuple(float(c) for c in (v / size if size > 0 else v))


def describe(verdict: HigherVerdict, names: Sequence[str]) -> str:
    """The verdict in words: ``a minimum (f'' = 0; its 4th derivative, the first that is not 0, is 24)``."""
    kind = "an inflection" if verdict.kind == SADDLE and len(names) == 1 else f"a {verdict.kind}"
    nth = _ordinal(verdict.order)
    if len(names) == 1:
        return f"{kind} (f'' = 0; its {nth} derivative, the first that is not 0, is {verdict.derivative:.6g})"
    along = ", ".join(f"{c:.3g}" for c in verdict.direction)
    return (
        f"{kind} (the Hessian is singular; along ({along}), with the other variables re-minimized where "
        f"needed, the first derivative that is not 0 is the {nth}: {verdict.derivative:.6g})"
    )


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
