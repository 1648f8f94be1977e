"""The constrained use case: minimize or maximize f subject to ``--subject-to`` constraints.

SciPy's SLSQP (the default) or trust-constr runs on exact derivatives from tapes
(``solve/constrained.py``), in float64; the KKT analysis (``solve/kkt.py``) then gives, at
the point found, each constraint's value, whether it is active, its multiplier, the largest
violation, the KKT residual and the verdict of the second-order test on the tangent space
of the active constraints.

From one start, a run that ends infeasible or short of the KKT conditions is followed by
at most RESTARTS more, until one ends at a feasible KKT point: SLSQP from where the first
ended, to a tighter tolerance in a few iterations (SciPy's default ftol leaves x about
sqrt(ftol) from the solution; trust-constr's interior point stops with an active inequality
about its barrier parameter away from equality); the other method from the start; then the
first method from points drawn in the box of ``--starts``. From several starts, each that
ends short gets the first of these. The best is reported (a feasible KKT point first, then
a feasible one, then the least violated). A KKT point is a local solution: ``--starts N``
looks for others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .calculus.faults import fmt
from .errors import UsageError
from .minimize import BasinReport, MinimizeReport, not_started
from .settings import Problem
from .solve.constrained import KKT_TOL, ConstrainedObjective, Run, solve
from .solve.kkt import NOT_KKT, KKTPoint, analyze, newton_step
from .solve.multistart import box_for_starts, draw_starts, group, radius
from .solve.registry import CONSTRAINED
from .solve.types import Box, MinimizeSettings, Outcome, Reporter, Row, Silent
from .solve.verdict import DEGENERATE, MAXIMUM, MINIMUM, SADDLE, Verdict

RESTARTS = 3  # more runs from one start, when the first ends infeasible or short of KKT
POLISH = "SLSQP from where the first ended, to a tighter ftol"


def minimize_constrained(
    problem: Problem, start: Mapping[str, float], settings: MinimizeSettings, reporter: Reporter | None = None
) -> MinimizeReport:
    """Minimize (maximize) f subject to the problem's constraints and the --bounds box."""
    if not problem.variables:
        raise UsageError(problem.no_variables(f"to {'maximize' if settings.maximize else 'minimize'} over"))
    problem = replace(problem, dtype="float64")  # SciPy's methods work in float64
    names = problem.variables
    reporter = reporter or Silent()
    sense = -1.0 if settings.maximize else 1.0
    senses = [c.sense for c in problem.constraints]
    objective = ConstrainedObjective(
        sense * problem.expr, [c.residual for c in problem.constraints], names, problem.params
    )
    box = Box.of(names, settings.bounds_map)
    origin = {v: float(np.clip(start[v], box.lo[j], box.hi[j])) for j, v in enumerate(names)}
    x0 = np.array([origin[v] for v in names])
    began = time.perf_counter()
    values, grads = objective.at(x0)
    if not (np.isfinite(values).all() and np.isfinite(grads).all()):
        what = _not_finite(problem, values, grads)
        return not_started(problem, origin, settings, "diverged", [f"the start point is not usable: {what}"])
    tol = kkt_tol(settings)
    method = settings.optimizer
    notes: list[str] = []
    if settings.starts == 1:
        runs = [solve(objective, senses, x0, box, method, settings.steps, tol, settings.every or 1)]
        points = _analyze(objective, runs[0].x[None], senses, box, tol, sense)
        tries = _restarts(names, settings, box, origin, runs[0])
        while not _good(points[-1]) and tries and not runs[-1].interrupted:
            how, x, m = tries.pop(0)
            polish = how == POLISH
            runs.append(solve(objective, senses, x, box, m, settings.steps, tol, settings.every or 1, polish))
            points += _analyze(objective, runs[-1].x[None], senses, box, tol, sense)
            if _good(points[-1]) and not (polish and m == method):
                notes.append(
                    f"the first run ({CONSTRAINED[method]} from the start) ended "
                    f"{'infeasible' if not points[0].feasible else 'short of the KKT conditions'}; "
                    f"restart {len(runs) - 1} ({how}) found this point"
                )
        notes += _escape(objective, senses, box, settings, tol, sense, runs, points)
    else:
        lo, hi = box_for_starts(names, settings.bounds_map, origin)
        starts = np.clip(draw_starts(lo, hi, settings.starts, settings.seed), box.lo, box.hi)
        runs = []
        for i, x in enumerate(starts):
            runs.append(solve(objective, senses, x, box, method, settings.steps, tol, settings.every or 1))
            reporter.progress(i + 1, len(starts))
            if runs[-1].interrupted:
                break
        points = _analyze(objective, np.array([r.x for r in runs]), senses, box, tol, sense)
        _polish(objective, senses, box, settings, runs, points, sense)
    best = min(range(len(runs)), key=lambda i: _rank(runs[i], points[i]))
    run, point = _refine(objective, senses, box, tol, sense, runs[best], points[best])
    (point,) = _third_order(objective, run.x[None], [point], tol)
    report = _report(problem, settings, origin, objective, run, point, sense)
    report.outcome.optimize_s = time.perf_counter() - began
    report.outcome.evaluations = objective.evaluations
    if settings.starts > 1:
        report.basins = _basins(problem, settings, origin, runs, points, sense)  # the history is the best start's
    elif point.feasible:
        report.basins = [BasinReport(dict(report.outcome.x), report.outcome.f, 1, point.verdict)]
    report.advice.extend(notes)
    _advise(report, run)
    return report


def _analyze(
    objective: ConstrainedObjective, xs: np.ndarray, senses: list[str], box: Box, tol: float, sense: float
) -> list[KKTPoint]:
    """The KKT analysis of f itself (not -f) at each point (k, d), from nested tapes in one batch."""
    values, grads, hessians = objective.evaluate(xs, order=2)
    points = [
        analyze(x, sense * g[0], sense * h[0], v[1:], g[1:], h[1:], senses, box.lo, box.hi, tol, sense)
        for x, v, g, h in zip(xs, values, grads, hessians, strict=True)
    ]
    return _third_order(objective, xs, points, tol)


CURVATURE_EXPLAINED = 10.0  # as higher_order._first: a derivative within this of what the next explains is 0


def _third_order(objective: ConstrainedObjective, xs: np.ndarray, points: list[KKTPoint], tol: float) -> list[KKTPoint]:
    """Minima and maxima whose smallest tangent curvature the point's own imprecision explains.

    A method stops near a KKT point, not at it: x**3 on y = 0 ends at x = 6e-5, where the
    curvature along the line is 6x = 4e-4 > 0, a "minimum" of a function that falls to the
    left. Along each tangent direction u with a small curvature mu (higher_order.NULL), the
    third derivative D3 of f along u (nested tapes) over the distance delta the point may be
    from the KKT point (Newton's step along u, at least the step tolerance) explains mu when
    |mu| <= 10 |D3| delta: the curvature is then 0 to the point's precision, and D3 decides.
    Where the active constraints are linear the line stays feasible and an odd order is a
    ``saddle``; otherwise the point is ``degenerate``.
    """
    from .solve.higher_order import NULL, curvature_explained, directional

    rows = []
    for i, p in enumerate(points):
        mu = np.array(p.verdict.eigenvalues)
        if p.verdict.kind not in (MINIMUM, MAXIMUM) or p.directions is None or not mu.size:
            continue
        small = np.abs(mu) <= NULL * max(1.0, float(np.max(np.abs(mu))))
        rows += [(i, j) for j in np.flatnonzero(small)]
    if not rows:
        return points
    f = objective.functions[0]  # sense * f: an odd order's sign does not matter, and mu's sign is f's
    U = np.array([points[i].directions[:, j] for i, j in rows])  # type: ignore[index]
    D = directional(f, objective.names, objective.params, xs[[i for i, _ in rows]], U, 4)
    out = list(points)
    for (i, j), row in zip(rows, D, strict=True):
        p, x = out[i], xs[i]
        curvature = p.verdict.eigenvalues[j]
        step_tol = max(tol, math.sqrt(EPS)) * max(1.0, float(np.max(np.abs(x))))
        delta = max(abs(row[1] / curvature) if curvature else math.inf, step_tol)
        if not np.isfinite(row).all() or not curvature_explained(curvature, row, delta):
            continue
        odd = abs(row[3]) > CURVATURE_EXPLAINED * abs(row[4]) * delta
        kind = SADDLE if odd and p.linear else DEGENERATE
        out[i] = replace(p, verdict=Verdict(kind, p.verdict.eigenvalues))
    return out


ESCAPES = 3  # most runs from points a step down the direction that refutes a KKT point


def _escape(
    objective: ConstrainedObjective,
    senses: list[str],
    box: Box,
    settings: MinimizeSettings,
    tol: float,
    sense: float,
    runs: list[Run],
    points: list[KKTPoint],
) -> list[str]:
    """From the best point, when it is a KKT point that its curvature refutes (the objective
    falls to second order along a direction the active constraints allow: KKTPoint.descent),
    the longest step max(1, |x|) * u / 2**k (k = 0..40, in the box) that lowers the objective,
    and the method again from there; at most ESCAPES times. Appends to ``runs`` and
    ``points``; returns a note where a run from such a step found the best point.

    ``maximize "x*y" --subject-to "x + y <= 10" --bounds x=0:,y=0:`` from (0, 0): SLSQP stops
    there at once (the gradient is 0), a KKT point where f rises along (1, 1); from a step
    along it, SLSQP ends at (5, 5)."""
    escaped = False
    for _ in range(ESCAPES):
        best = min(range(len(runs)), key=lambda i: _rank(runs[i], points[i]))
        run, point = runs[best], points[best]
        if run.interrupted or not _good(point) or point.descent is None:
            break
        reach = max(1.0, float(np.max(np.abs(run.x))))
        trials = np.clip(run.x + reach * np.power(0.5, np.arange(41))[:, None] * point.descent, box.lo, box.hi)
        values = objective.evaluate(trials)[0][:, 0]
        lower = np.flatnonzero(np.isfinite(values) & (values < run.f))
        if not len(lower):
            break
        x = trials[lower[0]]
        runs.append(solve(objective, senses, x, box, settings.optimizer, settings.steps, tol, settings.every or 1))
        points += _analyze(objective, runs[-1].x[None], senses, box, tol, sense)
        escaped = True
    if not escaped or min(range(len(runs)), key=lambda i: _rank(runs[i], points[i])) != len(runs) - 1:
        return []
    wanted = "maximum" if sense < 0 else "minimum"
    return [
        f"the first point found is a KKT point but no {wanted} (f {'rises' if sense < 0 else 'falls'} along a "
        f"direction the active constraints allow); {CONSTRAINED[settings.optimizer]} from a step along it "
        "found this point"
    ]


REFINE = 3  # most Newton steps on the KKT conditions from the point a method reported
EPS = float(np.finfo(np.float64).eps)
CONVERGED_KKT = 1e-12  # a KKT residual (over max(1, |grad f|)) already at rounding: no step


def _refine(
    objective: ConstrainedObjective, senses: list[str], box: Box, tol: float, sense: float, run: Run, point: KKTPoint
) -> tuple[Run, KKTPoint]:
    """From a feasible KKT point, Newton's steps on the KKT conditions (kkt.newton_step) while
    each keeps the point feasible, of the same verdict, with a smaller KKT residual and
    violation: SLSQP stops when f changes by less than tol**2, which leaves x about tol from
    the solution (x + y on the unit circle: 4 digits at the default tol); a step or two of
    Newton's method gives the rest, at the cost of a Hessian each."""
    if not _good(point) or run.interrupted:
        return run, point

    def derivatives(at: np.ndarray) -> tuple[np.ndarray, ...]:
        values, grads, hessians = objective.evaluate(at[None], order=2)
        return values[0], grads[0], hessians[0]

    x, taken = run.x, 0
    v, g, h = derivatives(x)
    for _ in range(REFINE):
        size = max(1.0, float(np.max(np.abs(g[0]))))
        if point.kkt_residual <= CONVERGED_KKT * size and point.max_violation <= CONVERGED_KKT:
            break
        dx = newton_step(x, sense * g[0], sense * h[0], v[1:], g[1:], h[1:], senses, box.lo, box.hi)
        if dx is None or np.max(np.abs(dx), initial=0.0) <= 4 * EPS * max(1.0, float(np.max(np.abs(x)))):
            break  # singular, or nothing left to gain at float64's precision
        trial = np.clip(x + dx, box.lo, box.hi)
        tv, tg, th = derivatives(trial)  # the analysis and the next step share them
        after = analyze(trial, sense * tg[0], sense * th[0], tv[1:], tg[1:], th[1:], senses, box.lo, box.hi, tol, sense)
        better = after.kkt_residual < point.kkt_residual and after.max_violation <= max(point.max_violation, 1e-15)
        if not (_good(after) and better and after.verdict.kind == point.verdict.kind):
            break
        x, point, taken = trial, after, taken + 1
        v, g, h = tv, tg, th
    if not taken:
        return run, point
    values, grads = objective.at(x)
    f, step = float(values[0]), run.iterations + taken
    row = Row(step, dict(zip(objective.names, map(float, x), strict=True)), f, float(np.hypot.reduce(grads[0])))
    return replace(run, x=x, f=f, iterations=step, history=[*run.history, row]), point


def _polish(
    objective: ConstrainedObjective,
    senses: list[str],
    box: Box,
    settings: MinimizeSettings,
    runs: list[Run],
    points: list[KKTPoint],
    sense: float,
) -> None:
    """Of several starts, each that ended short of a feasible KKT point gets SLSQP's polish from
    where it ended (the first restart of a single start); kept where it ranks better."""
    bad = [i for i, (r, p) in enumerate(zip(runs, points, strict=True)) if not _good(p) and np.isfinite(r.x).all()]
    if not bad or runs[-1].interrupted:
        return
    more = [solve(objective, senses, runs[i].x, box, "slsqp", settings.steps, kkt_tol(settings), 1, True) for i in bad]
    checked = _analyze(objective, np.array([r.x for r in more]), senses, box, kkt_tol(settings), sense)
    for i, run, point in zip(bad, more, checked, strict=True):
        if _rank(run, point) < _rank(runs[i], points[i]):
            run.iterations += runs[i].iterations
            run.history = runs[i].history + [replace(row, step=row.step + runs[i].iterations) for row in run.history]
            runs[i], points[i] = run, point


def kkt_tol(settings: MinimizeSettings) -> float:
    """--tol, or KKT_TOL: the KKT residual's largest, relative to max(1, |grad f|)."""
    return settings.tol if settings.tol is not None else KKT_TOL


def _good(point: KKTPoint) -> bool:
    return point.feasible and point.kkt


def _rank(run: Run, point: KKTPoint) -> tuple[int, float]:
    """Feasible KKT points first, lowest f; then feasible ones (a KKT point whose curvature
    refutes it among them), lowest f; then the least violated."""
    if not math.isfinite(run.f) or not np.isfinite(run.x).all():
        return (3, math.inf)
    if point.feasible:
        return (0 if point.kkt and point.descent is None else 1, run.f)
    return (2, float(np.max(point.violations, initial=0.0)))


def _restarts(
    names: tuple[str, ...], settings: MinimizeSettings, box: Box, origin: Mapping[str, float], first: Run
) -> list[tuple[str, np.ndarray, str]]:
    """What to try after a first run that failed: (how, start, method), in order."""
    method = settings.optimizer
    other = next(m for m in CONSTRAINED if m != method)
    x0 = np.array([origin[v] for v in names])
    out: list[tuple[str, np.ndarray, str]] = []
    if np.isfinite(first.x).all() and not np.array_equal(first.x, x0):
        out.append((POLISH, first.x, "slsqp"))
    out.append((f"{CONSTRAINED[other]} from the start", x0, other))
    lo, hi = box_for_starts(names, settings.bounds_map, origin)
    for x in np.clip(draw_starts(lo, hi, RESTARTS, settings.seed), box.lo, box.hi):
        out.append((f"{CONSTRAINED[method]} from a point drawn in the box of --starts", x, method))
    return out[:RESTARTS]


def _report(
    problem: Problem,
    settings: MinimizeSettings,
    origin: Mapping[str, float],
    objective: ConstrainedObjective,
    run: Run,
    point: KKTPoint,
    sense: float,
) -> MinimizeReport:
    names = problem.variables
    values, grads = objective.at(run.x)
    gradient = sense * grads[0]
    if run.interrupted:
        status = "interrupted"
    elif not point.feasible:
        status = "infeasible"
    elif point.kkt:
        status = "converged"
    else:
        status = "max_steps" if run.iterations >= settings.steps else "stalled"
    history = [replace(row, f=sense * row.f) for row in run.history]
    outcome = Outcome(
        x=dict(zip(names, map(float, run.x), strict=True)),
        f=sense * float(values[0]),
        gradient=dict(zip(names, map(float, gradient), strict=True)),
        grad_norm=float(np.hypot.reduce(gradient)) if len(gradient) else 0.0,
        steps=run.iterations,
        status=status,
        mode=settings.mode,
        history=history,
    )
    report = MinimizeReport(problem, settings, dict(origin), outcome, kkt=point)
    report.verdict = point.verdict if np.isfinite(run.x).all() else None
    if status == "converged" and report.refuted:
        # a KKT point the second-order test refutes (a constrained saddle, or the other kind of
        # extremum): the status says what it is, as without constraints, and agrees with exit 3
        outcome.status = point.verdict.kind
    return report


def _basins(
    problem: Problem,
    settings: MinimizeSettings,
    origin: Mapping[str, float],
    runs: list[Run],
    points: list[KKTPoint],
    sense: float,
) -> list[BasinReport]:
    """The distinct local solutions (feasible KKT end points), best first, each with its verdict."""
    names = problem.variables
    x = np.array([r.x for r in runs]).reshape(len(runs), len(names))
    f = np.array([r.f for r in runs])
    usable = np.array([_good(p) for p in points]) & np.isfinite(f) & np.isfinite(x).all(axis=1)
    lo, hi = box_for_starts(names, settings.bounds_map, origin)
    found, _ = group(x, f, usable, radius(x, lo, hi, "float64"))
    return [
        BasinReport(dict(zip(names, map(float, b.x), strict=True)), sense * b.f, b.count, points[b.index].verdict)
        for b in found
    ]


def _advise(report: MinimizeReport, run: Run) -> None:
    """Warnings about the point found: violated constraints, not KKT, not what was asked."""
    point, o, p = report.kkt, report.outcome, report.problem
    assert point is not None
    if o.status == "interrupted":
        return
    if not point.feasible:
        shown = [
            f"{c.text} (by {fmt(v, 'float64')})"
            for c, v, bad in zip(p.constraints, point.violations, point.violated, strict=True)
            if bad
        ]
        bounds = [n for n, lo, hi in report.settings.bounds if not lo <= o.x[n] <= hi]
        what = "; violated: " + ", ".join(shown + [f"--bounds {n}" for n in bounds]) if shown or bounds else ""
        report.advice.append(f"no feasible point found: the least violated point is reported{what}")
        return
    wanted = MAXIMUM if report.settings.maximize else MINIMUM
    kind = point.verdict.kind
    if kind == NOT_KKT:
        report.advice.append(
            f"the point found is feasible but not a KKT point (KKT residual {fmt(point.kkt_residual, 'float64')}): "
            f"{CONSTRAINED[run.method]} stopped before the conditions held ({run.message.rstrip('.')}); "
            "try more --steps or --starts"
        )
    elif kind == DEGENERATE:
        report.advice.append(
            "the point found is degenerate: an eigenvalue of the Lagrangian's Hessian on the tangent space of "
            f"the active constraints is too close to 0 for the second-order test to say whether it is a {wanted}"
        )
    elif kind != wanted:
        report.advice.append(f"the point found is a constrained {kind}, not a {wanted}")


def _not_finite(problem: Problem, values: np.ndarray, grads: np.ndarray) -> str:
    if not math.isfinite(values[0]) or not np.isfinite(grads[0]).all():
        return "f or its gradient is not finite there"
    for c, v, g in zip(problem.constraints, values[1:], grads[1:], strict=True):
        if not math.isfinite(v) or not np.isfinite(g).all():
            return f"the constraint {c.text} or its gradient is not finite there"
    return "a value is not finite there"
