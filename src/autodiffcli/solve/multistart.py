"""Global search: starts drawn in a box, and end points grouped into basins."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_HALF_WIDTH = 10.0  # --starts without --bounds: each such variable in [from - 10, from + 10]
MAX_BASINS = 100  # basins listed; the rest are counted in a warning


def box_for_starts(
    names: Sequence[str], bounds: Mapping[str, tuple[float, float]], origin: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The box starts are drawn in: --bounds where given, else origin +- DEFAULT_HALF_WIDTH.

    A one-sided bound (``x=0:``) keeps its finite side; the other side is
    DEFAULT_HALF_WIDTH beyond the origin brought inside it (x in [0, max(0, from) + 10])."""
    inf = (-math.inf, math.inf)
    lo_b = np.array([bounds.get(n, inf)[0] for n in names], dtype=np.float64)
    hi_b = np.array([bounds.get(n, inf)[1] for n in names], dtype=np.float64)
    at = np.clip(np.array([origin[n] for n in names], dtype=np.float64), lo_b, hi_b)
    lo = np.where(np.isfinite(lo_b), lo_b, at - DEFAULT_HALF_WIDTH)
    hi = np.where(np.isfinite(hi_b), hi_b, at + DEFAULT_HALF_WIDTH)
    return lo, hi


def draw_starts(lo: np.ndarray, hi: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` starts uniform in the box, the same for the same seed (numpy's PCG64)."""
    return np.random.default_rng(seed).uniform(lo, hi, size=(count, len(lo)))


@dataclass(frozen=True)
class Basin:
    x: np.ndarray  # the best end point of the group
    f: float
    count: int  # how many starts ended here
    index: int  # which start gave x


def group(
    x: np.ndarray, f: np.ndarray, usable: np.ndarray, radius: np.ndarray, most: int = MAX_BASINS
) -> tuple[list[Basin], np.ndarray]:
    """Group end points into at most ``most`` basins, best f first; say which basin each start is in.

    Greedy, in order of f: the best point not yet grouped starts a basin, which takes every
    point within ``radius`` of it in every coordinate (``radius`` has a row per point: the
    larger of the two points' rows counts). Points left when ``most`` basins are full get
    label -1, like unusable ones. Cost: O(starts x most).
    """
    label = np.full(len(x), -1)
    order = np.argsort(np.where(usable, f, np.inf), kind="stable")
    basins: list[Basin] = []
    free = usable.copy()
    for i in order:
        if len(basins) == most:
            break
        if not free[i]:
            continue
        near = free & (np.abs(x - x[i]) <= np.maximum(radius, radius[i])).all(axis=1)
        near[i] = True
        label[near] = len(basins)
        free &= ~near
        basins.append(Basin(x[i].copy(), float(f[i]), int(near.sum()), int(i)))
    return basins, label


NEARBY = 10.0  # basins within this many radii of each other are checked for being one
SAMPLES = (0.25, 0.5, 0.75)  # where along the segment between two basins f is looked at


def merge_flat(
    basins: list[Basin],
    label: np.ndarray,
    radius: np.ndarray,
    f_at: Callable[[np.ndarray], np.ndarray],
    eps: float,
) -> tuple[list[Basin], np.ndarray]:
    """Join nearby basins with no rise of f between them: one flat minimum.

    Near a degenerate minimum (x**4 at 0) a method stops where f is flat to its precision,
    on either side, further apart than ``radius``: two basins for one minimum. Two basins
    within NEARBY radii of each other, at the same f to rounding, are one where f along the
    segment between them (at SAMPLES) never rises above them by more than rounding (two
    points part way down one slope are at different f, and stay apart). Himmelblau's
    four minima, with f = 0 at each, are far apart and have hills between them.
    """
    if len(basins) < 2:
        return basins, label
    pairs = []
    for j in range(1, len(basins)):
        for i in range(j):
            xi, xj = basins[i].x, basins[j].x
            reach = NEARBY * np.maximum(radius[basins[i].index], radius[basins[j].index])
            if np.all(np.abs(xi - xj) <= reach):
                pairs.append((i, j))
    if not pairs:
        return basins, label
    points = np.array([basins[i].x + t * (basins[j].x - basins[i].x) for i, j in pairs for t in SAMPLES])
    values = f_at(points).reshape(len(pairs), len(SAMPLES))
    into = list(range(len(basins)))
    for (i, j), row in zip(pairs, values, strict=True):
        top = max(basins[i].f, basins[j].f)
        level = 8 * eps * max(1.0, abs(top))  # rounding: what f cannot tell apart
        flat = abs(basins[i].f - basins[j].f) <= level and np.all(row <= top + level)
        if into[j] == j and np.all(np.isfinite(row)) and flat:
            into[j] = into[i]
    if into == list(range(len(basins))):
        return basins, label
    kept = [k for k in range(len(basins)) if into[k] == k]
    renumber = {k: n for n, k in enumerate(kept)}
    counts = [0] * len(kept)
    for k, b in enumerate(basins):
        counts[renumber[into[k]]] += b.count
    merged = [Basin(basins[k].x, basins[k].f, counts[n], basins[k].index) for n, k in enumerate(kept)]
    new_label = np.where(
        label >= 0, np.array([renumber[into[k]] for k in range(len(basins))])[np.maximum(label, 0)], -1
    )
    return merged, new_label


def radius(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, dtype: str) -> np.ndarray:
    """How close two end points must be to count as one minimum, per end point and coordinate.

    1e-3 of the box's width where it is finite (the end points of first-order methods
    scatter about that much after their steps), never below what the dtype resolves at the
    point's own magnitude. Its own: a start that ran off to |x| = 5e7 once set the scale
    for every point, and x**5/5 - 10*x**3/3 + 9*x had its minima at -1 and 3 in one basin.
    """
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    width = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    size = np.where(np.isfinite(x), np.abs(x), 0.0)
    return np.maximum(1e-3 * width, math.sqrt(eps) * np.maximum(size, 1.0))
