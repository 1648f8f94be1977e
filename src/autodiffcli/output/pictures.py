"""Reports -> pictures as data: the curves, points, paths and grids to draw. Nothing is drawn here.

``plots.py`` turns a :class:`Picture` into a terminal plot or a file; this module decides
*what* is shown. f over a range or a grid is one batched call of the same TensorFlow
function and nested tapes that ``grad`` uses, so every number on a picture is one that
autodiff computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..calculus.derivatives import derivatives
from ..calculus.tf_build import TFFunction
from ..errors import UsageError
from ..fit import FitReport
from ..grad import GradReport
from ..minimize import MinimizeReport
from ..settings import Problem
from ..solve.multistart import box_for_starts

GRID_1D = 401  # points along x for f over a range
GRID_2D = 161  # points along each axis of a landscape
DECADES = 2.0  # the loss curve is drawn on a log scale when f - best f spans this many decades
LEVELS = 12  # contour levels of a landscape
MARKED = 10  # grad marks at most this many points, each with its tangent
SHOWN_BASINS = 9  # basins marked one by one (1-9 in the terminal); the rest together


@dataclass(frozen=True)
class Series:
    """Points to draw, joined or not. ``role`` says what they are, and so how they look."""

    label: str
    x: np.ndarray
    y: np.ndarray
    role: str  # curve, derivative, tangent, path, start, end, point, basin
    group: int = 0  # which basin (0: the best), for role basin

    @property
    def joined(self) -> bool:
        return self.role in ("curve", "derivative", "tangent", "path")

    def __repr__(self) -> str:
        return f"Series({self.label!r}, role={self.role}, {len(self.x)} points)"


@dataclass(frozen=True)
class Panel:
    """One set of axes with curves and marks on it."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float] | None = None  # None: fit the data
    log_y: bool = False
    height: float = 1.0  # relative to the other panels


@dataclass(frozen=True)
class Landscape:
    """f of two variables on a grid, with level values and marks (path, start, end) on top."""

    title: str
    xlabel: str
    ylabel: str
    x: np.ndarray  # (n,) grid along the first variable
    y: np.ndarray  # (m,) grid along the second
    z: np.ndarray  # (m, n) f; nan where it is not finite
    levels: np.ndarray  # increasing level values of f to draw
    series: tuple[Series, ...] = ()
    infeasible: np.ndarray | None = None  # (m, n) True where a constraint or a bound fails; None: unconstrained
    boundaries: tuple[tuple[str, np.ndarray], ...] = ()  # (constraint, lhs - rhs on the grid): drawn where it is 0

    @property
    def xlim(self) -> tuple[float, float]:
        return float(self.x[0]), float(self.x[-1])

    @property
    def ylim(self) -> tuple[float, float]:
        return float(self.y[0]), float(self.y[-1])


@dataclass(frozen=True)
class Picture:
    title: str
    panels: tuple[Panel | Landscape, ...] = field(default_factory=tuple)
    note: str = ""  # why there is nothing to draw, when there are no panels


# ---------------------------------------------------------------- grad


def grad_picture(report: GradReport, span: tuple[float, float] | None = None) -> Picture:
    """f with each point and the tangent line at it; below, f', f'', ... up to ``--order``.

    ``span`` is the x range (``--range``); by default it covers every point, with room
    around them. The first MARKED points are marked, each with its tangent.
    """
    req = report.request
    p = req.problem
    require_one_variable(p)
    (name,) = p.variables
    at = req.points[:MARKED, 0]  # the points marked, with a tangent each
    seen = req.points[:, 0] if report.extent is None else report.extent[:, 0]  # a stream keeps only its extent
    lo, hi = span if span is not None else around(seen)
    grid = np.linspace(lo, hi, GRID_1D)
    f = TFFunction(p.expr, p.dtype)
    d = derivatives(f, np.concatenate([grid, at])[:, None], p.variables, p.params, (name,), (), req.order)
    n = len(grid)
    value, higher = d.value, d.higher
    fa, slope = value[n:], higher[0][n:]
    usable = np.isfinite(fa) & np.isfinite(slope)
    marks: list[Series] = []  # drawn in order: tangents under f, the points on top
    if usable.any():  # one series, the lines apart (nan between them)
        gap = np.array([np.nan])
        xs = np.concatenate([np.concatenate([grid, gap]) for _ in at[usable]])
        ys = np.concatenate(
            [
                np.concatenate([v + s * (grid - a), gap])
                for a, v, s in zip(at[usable], fa[usable], slope[usable], strict=True)
            ]
        )
        marks.append(Series("tangent" if usable.sum() == 1 else "tangents", xs, ys, "tangent"))
    defined = np.isfinite(value[:n])  # a derivative is drawn only where f itself is defined
    f_limits = robust_limits([value])
    marks.append(Series("f", grid, broken(grid, _finite(value[:n]), f_limits), "curve"))
    shown = np.isfinite(fa)
    if shown.any():
        first = f"{name}={at[0] + 0.0:g}"  # + 0.0: -0.0 reads 0
        label = first if len(at) == 1 else "--at" if report.total <= MARKED else f"--at (first {MARKED})"
        marks.append(Series(label, at[shown], fa[shown], "point"))
    f_panel = Panel(f"f = {p.canonical}", name, "f", tuple(marks), (lo, hi), f_limits)
    labels = [_derivative_label(name, k) for k in range(1, req.order + 1)]
    drawn = [np.where(defined, _finite(h[:n]), np.nan) for h in higher]
    d_limits = robust_limits(drawn)
    curves = tuple(
        Series(label, grid, broken(grid, h, d_limits), "derivative") for label, h in zip(labels, drawn, strict=True)
    )
    d_panel = Panel("derivatives (tape)", name, "", curves, (lo, hi), d_limits)
    return Picture(f"autodiff grad: f = {p.canonical}", (f_panel, d_panel))


def broken(x: np.ndarray, y: np.ndarray, limits: tuple[float, float] | None) -> np.ndarray:
    """``y`` with a gap (nan) where the curve jumps across a pole, so that no line is drawn
    between the two sides (tan at pi/2 goes to +inf on one side, -inf on the other).

    A jump is a step that spans the whole picture (from above the top to below the bottom,
    or back) with the curve running away towards it on both sides: |y| grows into the
    step from the left and from the right. A steep but continuous crossing (1e4*x at 0)
    does not grow towards the crossing, so it is drawn.
    """
    if limits is None or len(y) < 4:
        return y
    low, high = limits
    out = np.array(y, dtype=np.float64)
    a, b = out[1:-2], out[2:-1]  # the step from a to b, with a's left and b's right neighbour
    left, right = out[:-3], out[3:]
    with np.errstate(invalid="ignore"):
        across = ((a > high) & (b < low)) | ((a < low) & (b > high))
        away = (np.abs(a) > np.abs(left)) & (np.abs(b) > np.abs(right))
    for i in np.flatnonzero(across & away) + 1:
        out[i] = out[i + 1] = np.nan
    return out


def require_one_variable(problem: Problem) -> None:
    """grad pictures are of one variable: refuse others before any work is done."""
    if len(problem.variables) != 1:
        has = f"has {', '.join(problem.variables)}" if problem.variables else "has no variable"
        raise UsageError(
            f"--plot: grad draws functions of one variable, and this expression {has} "
            "(minimize --plot draws the landscape of two)"
        )


def _derivative_label(name: str, k: int) -> str:
    return "df/d" + name if k == 1 else f"d{k}f/d{name}{k}"


def around(points: np.ndarray) -> tuple[float, float]:
    """A range around the points: centred on them, at least 4 wide, half again as wide as they spread."""
    lo, hi = float(np.min(points)), float(np.max(points))
    width = max(4.0, 1.5 * (hi - lo), 0.5 * max(abs(lo), abs(hi)))
    mid = (lo + hi) / 2
    return mid - width / 2, mid + width / 2


def robust_limits(arrays: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """y limits for the values, with a margin; a pole (1/x near 0) does not flatten the rest.

    None when no value is finite.
    """
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    q_low, q_high = (float(q) for q in np.quantile(values, [0.02, 0.98]))
    if high - low > 10 * (q_high - q_low) > 0:
        low, high = q_low - 0.25 * (q_high - q_low), q_high + 0.25 * (q_high - q_low)
    pad = 0.05 * (high - low) or max(1.0, abs(low))
    return low - pad, high + pad


# ---------------------------------------------------------------- minimize


def minimize_picture(report: MinimizeReport) -> Picture:
    """The loss curve; then f over a range with the path (one variable), or the landscape (two).

    With several starts, the history is the lowest f over the starts at each recorded step,
    which may be a different start from one row to the next: it gives the loss curve, but
    no path (a line between two starts' points would cross ridges no start crossed). The
    end points are marked by basin (best first) over a range that covers the starts' box.
    """
    o, p = report.outcome, report.problem
    title = f"autodiff {'maximize' if report.settings.maximize else 'minimize'}: f = {p.canonical}"
    if o.steps == 0 and not math.isfinite(o.f):
        return Picture(title, note="nothing to draw: f or its gradient is not finite at the start point")
    panels: list[Panel | Landscape] = [loss_panel(report)]
    if o.path:  # every iterate (a single start of Newton, BFGS or L-BFGS-B)
        path = np.array([[x[v] for v in p.variables] for x in o.path])
    else:  # the history's rows (a Keras optimizer's many small steps, a row every few)
        rows = [[row.x[v] for v in p.variables] for row in o.history]
        path = np.array(rows or [[report.start[v] for v in p.variables]])
    path = path[np.isfinite(path).all(axis=1)]
    end = np.array([[o.x[v] for v in p.variables]])
    if len(p.variables) == 1:
        panels.append(_path_1d(report, path, end))
    elif len(p.variables) == 2:
        panels.append(_landscape(report, path, end))
    return Picture(title, tuple(panels))


def basin_points(report: MinimizeReport) -> list[tuple[str, np.ndarray, float]]:
    """(label, point, f) for each basin of a multi-start run, best first; the ones past SHOWN_BASINS as one."""
    if report.settings.starts <= 1 or not report.basins:
        return []
    names = report.problem.variables
    out = []
    for k, b in enumerate(report.basins[:SHOWN_BASINS]):
        many = "s" if b.count != 1 else ""
        out.append((f"{k + 1}: {b.verdict.kind}, {b.count} start{many}", np.array([[b.x[v] for v in names]]), b.f))
    rest = report.basins[SHOWN_BASINS:]
    if rest:
        points = np.array([[b.x[v] for v in names] for b in rest])
        out.append((f"{len(rest)} more basins", points, math.nan))
    return out


def _extent(report: MinimizeReport, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per variable, the range to draw: the points with a margin, and the starts' box when there are several."""
    lo, hi = zip(*(_cover(points[:, j]) for j in range(points.shape[1])), strict=True)
    lo_a, hi_a = np.array(lo), np.array(hi)
    if report.settings.starts > 1:
        box_lo, box_hi = box_for_starts(report.problem.variables, report.settings.bounds_map, report.start)
        inside = (points >= box_lo) & (points <= box_hi)
        lo_a = np.where(inside.all(axis=0), box_lo, np.minimum(lo_a, box_lo))
        hi_a = np.where(inside.all(axis=0), box_hi, np.maximum(hi_a, box_hi))
    return lo_a, hi_a


def loss_panel(report: MinimizeReport) -> Panel:
    """f against step (the lowest over the starts, with several; the highest when maximizing);
    |f - best f| on a log scale when that spans decades."""
    up = report.settings.maximize
    name = "f" if up else "loss"
    title = name if report.settings.starts <= 1 else f"{name}, {'highest' if up else 'lowest'} over the starts"
    if report.kkt is not None and report.settings.starts > 1:  # constrained: one start's run, the best
        title = f"{name} of the best start"
    if report.outcome.path:  # every iterate: f at each
        names = report.problem.variables
        f = evaluate(report, np.array([[x[v] for v in names] for x in report.outcome.path]))
        steps = np.arange(len(f), dtype=np.float64)
        steps, f = steps[np.isfinite(f)], f[np.isfinite(f)]
    else:
        rows = [r for r in report.outcome.history if math.isfinite(r.f)]
        steps = np.array([r.step for r in rows], dtype=np.float64)
        f = np.array([r.f for r in rows], dtype=np.float64)
    xlim = (0.0, float(max(steps.max() if steps.size else 1.0, 1.0)))
    if f.size:
        sense = -1.0 if up else 1.0  # the distance to the best f is sense * (f - best)
        end = sense * report.outcome.f if math.isfinite(report.outcome.f) else math.inf
        best = sense * min(float((sense * f).min()), end)
        gap = sense * (f - best)
        positive = gap > 0
        if positive.sum() >= 2 and math.log10(gap[positive].max() / gap[positive].min()) >= DECADES:
            label = "best f - f" if up else "f - best f"
            curve = Series(label, steps[positive], gap[positive], "curve")
            title = f"{title} (best f = {best:.6g})"
            return Panel(title, "step", label, (curve,), xlim, log_y=True, height=0.6)
    return Panel(title, "step", "f", (Series("f", steps, f, "curve"),), xlim, height=0.6)


def _path_1d(report: MinimizeReport, path: np.ndarray, end: np.ndarray) -> Panel:
    p = report.problem
    (name,) = p.variables
    basins = basin_points(report)
    every = np.concatenate([path, end, *(b for _, b, _ in basins)])
    (lo,), (hi,) = _extent(report, every)
    grid = np.linspace(lo, hi, GRID_1D)
    points = np.concatenate([grid[:, None], path, end, *(b for _, b, _ in basins)])
    values = evaluate(report, points)
    n, k = len(grid), len(path)
    marks = [Series("f", grid, values[:n], "curve")]
    if not basins:
        marks.append(Series("path", path[:, 0], values[n : n + k], "path"))
        marks.append(Series("start", path[:1, 0], values[n : n + 1], "start"))
    if basins:
        at = n + k + 1
        for group, (label, b, _) in enumerate(basins):
            marks.append(Series(label, b[:, 0], values[at : at + len(b)], "basin", group))
            at += len(b)
    else:
        marks.append(Series("end", end[:, 0], values[n + k : n + k + 1], "end"))
    return Panel(f"f = {p.canonical}", name, "f", tuple(marks), (lo, hi), robust_limits([values]))


def _landscape(report: MinimizeReport, path: np.ndarray, end: np.ndarray) -> Landscape:
    p = report.problem
    basins = basin_points(report)
    lo, hi = _extent(report, np.concatenate([path, end, *(b for _, b, _ in basins)]))
    gx = np.linspace(lo[0], hi[0], GRID_2D)
    gy = np.linspace(lo[1], hi[1], GRID_2D)
    mx, my = np.meshgrid(gx, gy)
    z = evaluate(report, np.column_stack([mx.ravel(), my.ravel()])).reshape(mx.shape)
    marks = (
        []
        if basins
        else [Series("path", path[:, 0], path[:, 1], "path"), Series("start", path[:1, 0], path[:1, 1], "start")]
    )
    if basins:
        marks += [Series(label, b[:, 0], b[:, 1], "basin", group) for group, (label, b, _) in enumerate(basins)]
    else:
        marks.append(Series("end", end[:, 0], end[:, 1], "end"))
    a, b = p.variables
    infeasible, boundaries = _feasible_region(report, mx, my)
    return Landscape(f"f = {p.canonical}", a, b, gx, gy, z, levels(z), tuple(marks), infeasible, boundaries)


def _feasible_region(
    report: MinimizeReport, mx: np.ndarray, my: np.ndarray
) -> tuple[np.ndarray | None, tuple[tuple[str, np.ndarray], ...]]:
    """Where the constraints and bounds fail on the grid, and each constraint's lhs - rhs there."""
    p = report.problem
    if report.kkt is None:
        return None, ()
    points = np.column_stack([mx.ravel(), my.ravel()])
    bad = np.zeros(mx.shape, dtype=bool)
    curves = []
    for c in p.constraints:
        g = _values(p, c.residual, points).reshape(mx.shape)
        with np.errstate(invalid="ignore"):
            fails = np.abs(g) > 0 if c.equality else g > 0 if c.sense == "<=" else g < 0
        if not c.equality:  # an equation's surface has no inside: it is drawn, not shaded
            bad |= fails | ~np.isfinite(g)
        curves.append((c.text, g))
    for j, grid in enumerate((mx, my)):
        lo, hi = report.settings.bounds_map.get(p.variables[j], (-math.inf, math.inf))
        bad |= (grid < lo) | (grid > hi)
    return bad, tuple(curves)


def evaluate(report: MinimizeReport, points: np.ndarray) -> np.ndarray:
    """f at every row of ``points``, as one batch; nan where f is not finite."""
    return _values(report.problem, report.problem.expr, points)


def _values(p: Problem, expr: sympy.Expr, points: np.ndarray) -> np.ndarray:
    """``expr`` over the problem's variables at every row of ``points``; nan where not finite."""
    f = TFFunction(expr, p.dtype)
    env = {v: f.tf.constant(points[:, j], dtype=f.dtype) for j, v in enumerate(p.variables)}
    env.update({name: f.constant(value) for name, value in p.params.items()})
    return _finite(np.broadcast_to(np.asarray(f(env), dtype=np.float64), (len(points),)))


def levels(z: np.ndarray, count: int = LEVELS) -> np.ndarray:
    """Level values spread over f's range on the grid, closer together near the minimum.

    Spaced geometrically in f - min f, from a thousandth of the range up to the 95th
    percentile, so a steep landscape such as Rosenbrock's still shows its valley.
    """
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        return np.array([])
    low, high = float(finite.min()), float(np.quantile(finite, 0.95))
    if not high > low:
        return np.array([low])
    return low + (high - low) * np.geomspace(1e-3, 1, count)


def _cover(values: np.ndarray) -> tuple[float, float]:
    """A range that covers the values with a margin (at least 1 on each side of a lone point)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = max(0.25 * (hi - lo), 1.0 if hi == lo else 0.0, 1e-3 * max(abs(lo), abs(hi)))
    return lo - pad, hi + pad


def _finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


# ---------------------------------------------------------------- fit


def fit_picture(report: FitReport) -> Picture:
    """The data as points with the fitted curve, and the residuals below; with two or more
    predictors (or none), the residuals against the fitted values."""
    title = f"fit {report.response} = {report.expression}"
    if len(report.observed) == 0:
        return Picture(title, note="nothing to draw: the fit has no values")
    zero_label = "zero"
    if len(report.predictors) != 1:
        x = report.fitted
        span = around(x)
        panel = Panel(
            "residuals against fitted values", f"fitted {report.response}", "residual",
            (Series("residuals", x, report.residuals, "data"),
             Series(zero_label, np.array(span), np.zeros(2), "zero")),
            span,
        )  # fmt: skip
        return Picture(title, (panel,))
    name = report.predictors[0]
    x = report.columns[name]
    span = around(x)
    grid = np.linspace(span[0], span[1], GRID_1D)
    curve = _fitted_curve(report, name, grid)
    top = Panel(
        "data and fit", name, report.response,
        (Series("data", x, report.observed, "data"), Series("fit", grid, curve, "curve")),
        span, robust_limits([report.observed, curve]), height=2.0,
    )  # fmt: skip
    bottom = Panel(
        "residuals", name, "residual",
        (Series("residuals", x, report.residuals, "data"), Series(zero_label, np.array(span), np.zeros(2), "zero")),
        span,
    )  # fmt: skip
    return Picture(title, (top, bottom))


def _fitted_curve(report: FitReport, name: str, grid: np.ndarray) -> np.ndarray:
    """The right side at the fitted parameters along ``grid``: one batched TensorFlow call."""
    import sympy

    from ..language.parse import parse

    rhs = parse(report.expression)
    values = {sympy.Symbol(k, real=True): sympy.Float(v, 17) for k, v in {**report.fixed, **report.values}.items()}
    f = TFFunction(rhs.xreplace(values), "float64")
    tf = f.tf
    with np.errstate(all="ignore"):
        out = f({name: tf.constant(grid, dtype=tf.float64)}) * tf.ones(len(grid), tf.float64)
    return _finite(np.asarray(out.numpy(), dtype=np.float64))
