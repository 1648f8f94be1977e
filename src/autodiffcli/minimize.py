"""The two use cases, end to end: a problem and its settings in, a report out.

Symbolic derivatives come from ``sympy.diff`` (under the parser's wall-clock budget);
numbers come from TensorFlow. Numeric faults become warnings on the report, which the
CLI prints and turns into exit status 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy

from . import local
from .config import Problem
from .derivatives import Derivatives, derivatives
from .errors import ExitCode, UsageError
from .gradcheck import Check, Checker
from .numerics import explain_derivative, explain_value, fmt, point_text
from .optimize import MinimizeSettings, Outcome, Reporter, _Silent, run
from .parse import LIMITS, canonical, time_limit
from .search import MAX_BASINS, box_for_starts, draw_starts, group, radius
from .tf_build import TFFunction
from .verdict import DEGENERATE, MAXIMUM, MINIMUM, NOT_STATIONARY, Verdict, classify, rises_all_around


@dataclass(frozen=True)
class GradRequest:
    problem: Problem
    points: np.ndarray  # one row per point, one column per variable
    wrt: tuple[str, ...]
    watch: tuple[str, ...]
    order: int
    check: bool = False  # compare the tape with the exact derivatives and a finite difference

    def point(self, i: int) -> dict[str, float]:
        return {v: float(self.points[i, j]) for j, v in enumerate(self.problem.variables)}

    @property
    def sources(self) -> tuple[str, ...]:
        """Names that get derivatives: variables, and parameters that are watched."""
        return tuple(n for n in self.wrt if n in self.problem.variables or n in self.watch)


def grad_request(
    problem: Problem,
    points: np.ndarray | None,
    wrt: Sequence[str],
    watch: Sequence[str],
    order: int,
    check: bool = False,
) -> GradRequest:
    if not problem.variables and not watch:
        raise UsageError(problem.no_variables("to differentiate"))
    for name in watch:
        if name not in problem.params:
            raise UsageError(
                f"--watch: {name!r} is a variable, and variables are always watched; --watch is for parameters"
            )
    wrt = tuple(wrt) or (*problem.variables, *watch)
    if points is None:  # no point given: every variable 0
        points = np.zeros((1, len(problem.variables)))
    req = GradRequest(problem, points, wrt, tuple(watch), order, check)
    if order > 2 and len(req.sources) > 1:
        raise UsageError(
            f"--order {order}: above 2 needs one name to differentiate by, got {', '.join(req.sources)}; "
            "pick one with --wrt (order 2 gives the Hessian)"
        )
    if not req.sources:
        raise UsageError("--wrt: none of the names can be differentiated; parameters need --watch")
    return req


@dataclass
class GradReport:
    """Derivatives at ``request.points`` (for a stream: its first points, as many as a table
    shows), with the symbolic ones and the warnings of the whole run."""

    request: GradRequest
    result: Derivatives
    symbolic: dict[str, object]
    warnings: list[str] = field(default_factory=list)
    count: int | None = None  # points in the whole run (None: those of the request)
    extent: np.ndarray | None = None  # rows: lowest and highest value of each variable over the run
    verdicts: list[Verdict] = field(default_factory=list)  # per point shown, with --order 2 or more
    checks: list[Check] = field(default_factory=list)  # per point shown, with --check

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.NUMERIC if self.warnings else ExitCode.OK

    @property
    def total(self) -> int:
        return len(self.request.points) if self.count is None else self.count


def symbolic_derivatives(req: GradRequest) -> dict[str, object]:
    """``sympy.diff`` for everything the tape computes, as canonical text."""
    expr, sources = req.problem.expr, req.sources
    sym = {n: sympy.Symbol(n, real=True) for n in req.wrt}
    with time_limit(LIMITS.time_s, "symbolic differentiation"):
        out: dict[str, object] = {"gradient": {n: canonical(sympy.diff(expr, sym[n])) for n in req.wrt}}
        if req.order >= 2:
            out["hessian"] = {a: {b: canonical(sympy.diff(expr, sym[a], sym[b])) for b in sources} for a in sources}
        if len(sources) == 1:
            (only,) = sources
            out["derivatives"] = [canonical(sympy.diff(expr, sym[only], k)) for k in range(1, req.order + 1)]
    return out


@dataclass(frozen=True)
class Batch:
    """One chunk of a run: its points (rows) and their derivatives; ``start`` is the index
    of its first point in the whole run."""

    points: np.ndarray
    result: Derivatives
    start: int
    verdicts: list[Verdict] = field(default_factory=list)  # per point, with --order 2 or more
    checks: list[Check] = field(default_factory=list)  # per point, with --check

    def point(self, i: int, variables: Sequence[str]) -> dict[str, float]:
        return {v: float(self.points[i, j]) for j, v in enumerate(variables)}


MAX_EXPLAINED = 5  # non-finite points explained one by one; the rest are counted


class GradRun:
    """One request's derivatives, batch after batch, for a stream of points of any length.

    ``sympy.diff`` and the TensorFlow function are built once, here; every batch is then
    computed eagerly, so nothing is traced or retraced per batch. Numeric faults of every
    batch are collected: the first few explained, the rest counted.
    """

    def __init__(self, req: GradRequest) -> None:
        p = req.problem
        self.request = req
        self.symbolic = symbolic_derivatives(req)
        self.f = TFFunction(p.expr, p.dtype)
        self.checker = Checker(self.f, p.variables, p.params, req.sources, req.order) if req.check else None
        self.count = 0
        self.extent: np.ndarray | None = None  # rows: lowest and highest of each variable so far
        self._explained: list[str] = []
        self._bad = 0
        self._check_failures: list[str] = []
        self._failed = 0

    def batch(self, points: np.ndarray) -> Batch:
        req, p = self.request, self.request.problem
        result = derivatives(self.f, points, p.variables, p.params, req.wrt, req.watch, req.order)
        verdicts = _grad_verdicts(req, self.f, points, result) if req.order >= 2 and len(points) else []
        checks = self.checker.check(points, result) if self.checker is not None else []
        batch = Batch(points, result, self.count, verdicts, checks)
        self.count += len(points)
        if len(points):  # column by column: numpy reduces (n, 2) along axis 0 ten times slower
            low = np.array([points[:, j].min() for j in range(points.shape[1])])
            high = np.array([points[:, j].max() for j in range(points.shape[1])])
            if self.extent is not None:
                low, high = np.minimum(low, self.extent[0]), np.maximum(high, self.extent[1])
            self.extent = np.stack([low, high])
        self._faults(batch)
        self._failed_checks(batch)
        return batch

    @property
    def warnings(self) -> list[str]:
        more = [f"{self._bad} points in all have non-finite results"] if self._bad > MAX_EXPLAINED else []
        failed = [f"--check failed at {self._failed} points in all"] if self._failed > MAX_EXPLAINED else []
        return self._explained + more + self._check_failures + failed

    def _failed_checks(self, batch: Batch) -> None:
        p = self.request.problem
        for i, check in enumerate(batch.checks):
            if check.ok:
                continue
            self._failed += 1
            if len(self._check_failures) < MAX_EXPLAINED:
                label, entry = check.worst  # type: ignore[misc]
                self._check_failures.append(
                    f"--check: at {point_text(batch.point(i, p.variables))} the tape's {label} is off by "
                    f"{entry.tape_error:.1e} (relative to the exact value), more than {p.dtype} allows "
                    f"({check.tolerance:.1e})" + ("; try --dtype float64" if p.dtype == "float32" else "")
                )

    def _faults(self, batch: Batch) -> None:
        p, r = self.request.problem, batch.result
        bad = ~np.isfinite(r.value)
        for arr in [
            *(g for g in r.gradient.values() if g is not None),
            *r.higher,
            *(h for row in r.hessian.values() for h in row.values()),
        ]:
            bad |= ~np.isfinite(arr)
        found = np.flatnonzero(bad)
        self._bad += len(found)
        for i in found[: max(0, MAX_EXPLAINED - len(self._explained))]:
            self._explained.append(_explain(p, r, i, {**p.params, **batch.point(i, p.variables)}))


def _explain(p: Problem, r: Derivatives, i: int, env: dict[str, float]) -> str:
    """Why point ``i`` has a non-finite result: f itself, or the first derivative that is not finite."""
    if not math.isfinite(r.value[i]):
        return explain_value(p.expr, env, p.dtype)
    labels = [(f"df/d{n}", g) for n, g in r.gradient.items() if g is not None]
    labels += [(f"d2f/d{a}d{b}", h) for a, row in r.hessian.items() for b, h in row.items()]
    labels += [(f"f^({k + 1})", d) for k, d in enumerate(r.higher[1:], start=1)]
    for label, arr in labels:
        if not math.isfinite(arr[i]):
            return explain_derivative(label, float(arr[i]), env, p.dtype)
    return f"a derivative is not finite at {point_text(env)}"


def grad(req: GradRequest) -> GradReport:
    """Derivatives at the request's points, as one batch."""
    run = GradRun(req)
    batch = run.batch(req.points)
    return GradReport(req, batch.result, run.symbolic, run.warnings, verdicts=batch.verdicts, checks=batch.checks)


def _grad_verdicts(req: GradRequest, f: TFFunction, points: np.ndarray, r: Derivatives) -> list[Verdict]:
    """The second-order test at each point, over the names differentiated by."""
    p, names = req.problem, req.sources
    columns = {v: points[:, j] for j, v in enumerate(p.variables)}
    n = len(points)
    x = np.stack([columns[k] if k in columns else np.full(n, p.params[k]) for k in names], axis=1)
    g = np.stack([r.gradient[k] for k in names], axis=1)
    h = np.stack([np.stack([r.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
    # the check at the stationary point nearby moves every variable: only when all are differentiated
    at = _hessian_at(f, p) if tuple(names) == tuple(p.variables) else None
    return classify(x, g, h, p.dtype, hessian_at=at)


def _hessian_at(f: TFFunction, p: Problem) -> Callable[[np.ndarray], np.ndarray]:
    """Hessians over every variable at a batch of points (points, d) -> (points, d, d), from nested tapes."""
    names = p.variables

    def hessians(points: np.ndarray) -> np.ndarray:
        d = derivatives(f, points, names, p.params, names, (), 2)
        return np.stack([np.stack([d.hessian[a][b] for b in names], axis=1) for a in names], axis=1)

    return hessians


@dataclass
class MinimizeReport:
    problem: Problem
    settings: MinimizeSettings
    start: dict[str, float]
    outcome: Outcome
    warnings: list[str] = field(default_factory=list)  # each also makes the exit status non-zero
    verdict: Verdict | None = None  # at the point found
    basins: list[BasinReport] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)  # warnings that leave the exit status alone
    kink: bool = False  # not stationary, but f rises all around: a minimum where f is not differentiable

    @property
    def exit_code(self) -> ExitCode:
        status = self.outcome.status
        if status == "interrupted":
            return ExitCode.INTERRUPTED
        if status == "diverged" or not math.isfinite(self.outcome.f):
            return ExitCode.NUMERIC
        if self.settings.tol is not None and status != "converged":
            return ExitCode.NOT_CONVERGED
        if not self.settings.keras and self.refuted:
            return ExitCode.NOT_CONVERGED
        return ExitCode.OK

    @property
    def refuted(self) -> bool:
        """The second-order test says the point found is not what was asked for: not
        stationary, a saddle, or the other kind of extremum (a degenerate point it cannot
        decide is not refuted). Newton, BFGS and L-BFGS always test convergence, against
        ``--tol`` or its default, so for them this ends the run with exit status 3."""
        wanted = MAXIMUM if self.settings.maximize else MINIMUM
        return self.verdict is not None and self.verdict.kind not in (wanted, DEGENERATE) and not self.kink


@dataclass(frozen=True)
class BasinReport:
    x: dict[str, float]
    f: float
    count: int
    verdict: Verdict


def check_start(problem: Problem, f: TFFunction, start: Mapping[str, float]) -> str | None:
    """Why f or its gradient is not finite at the start point, or None when all is well."""
    d = derivatives(
        f,
        np.array([[start[v] for v in problem.variables]]),
        problem.variables,
        problem.params,
        problem.variables,
        (),
        1,
    )
    env = {**problem.params, **start}
    if not math.isfinite(d.value[0]):
        return f"the start point {point_text(start)} is not usable: " + explain_value(problem.expr, env, problem.dtype)
    for name, g in d.gradient.items():
        if g is not None and not math.isfinite(g[0]):
            return f"the start point {point_text(start)} is not usable: " + explain_derivative(
                f"df/d{name}", float(g[0]), env, problem.dtype
            )
    return None


def not_started(
    problem: Problem, start: Mapping[str, float], settings: MinimizeSettings, status: str, warnings: list[str]
) -> MinimizeReport:
    """A report for a run that took no step: the start point, with null f and gradient."""
    nan = float("nan")
    outcome = Outcome(
        x=dict(start),
        f=nan,
        gradient={v: nan for v in problem.variables},
        grad_norm=nan,
        steps=0,
        status=status,
        mode=settings.mode,
    )
    return MinimizeReport(problem, settings, dict(start), outcome, warnings)


def minimize(
    problem: Problem, start: Mapping[str, float], settings: MinimizeSettings, reporter: Reporter | None = None
) -> MinimizeReport:
    """Minimize (or, with ``settings.maximize``, maximize) f; then the verdict at the point found.

    One start with a Keras optimizer and no bounds runs the tutorial's loop (optimize.run);
    everything else (Newton, BFGS, L-BFGS-B, several starts, bounds) runs a batch of starts
    (local.py) whose end points are grouped into basins (search.py).
    """
    if not problem.variables:
        raise UsageError(problem.no_variables(f"to {'maximize' if settings.maximize else 'minimize'} over"))
    sense = -1.0 if settings.maximize else 1.0
    objective = -problem.expr if settings.maximize else problem.expr
    f = TFFunction(objective, problem.dtype, first_order=settings.keras)
    box = local.Box.of(problem.variables, settings.bounds_map)
    start = {v: float(np.clip(start[v], box.lo[j], box.hi[j])) for j, v in enumerate(problem.variables)}
    if settings.starts == 1:
        reason = check_start(problem, f, start)
        if reason:  # nothing to optimize; scripts still get a report, with nulls and the reason
            return not_started(problem, start, settings, "diverged", [reason])
    if settings.keras and settings.starts == 1 and not box.bounded:
        outcome = run(f, start, problem.params, settings, reporter)
        report = MinimizeReport(problem, settings, dict(start), outcome)
    else:
        report = _minimize_batch(problem, f, start, box, settings, reporter or _Silent())
    if sense < 0:
        _flip(report.outcome)
    _judge(report)
    if not report.basins and report.verdict is not None and settings.starts == 1:  # one start, one basin
        o = report.outcome
        report.basins = [BasinReport(dict(o.x), o.f, 1, report.verdict)]
    o = report.outcome
    if o.status == "diverged":
        report.warnings.append(
            f"diverged after step {o.steps}: f or its gradient became non-finite; "
            f"the last finite point is reported" + (" (try a smaller --lr)" if settings.keras else "")
        )
    elif settings.tol is not None and o.status in ("max_steps", "stalled"):
        report.warnings.append(
            f"--tol {fmt(settings.tol)} not reached within {settings.steps} steps (|grad| = {fmt(o.grad_norm)})"
            if o.status == "max_steps"
            else f"--tol {fmt(settings.tol)} not reached: the line search can no longer lower f "
            f"(|grad| = {fmt(o.grad_norm)})"
        )
    return report


def _minimize_batch(
    problem: Problem,
    f: TFFunction,
    origin: Mapping[str, float],
    box: local.Box,
    settings: MinimizeSettings,
    reporter: Reporter,
) -> MinimizeReport:
    names, dt = problem.variables, problem.dtype
    began = time.perf_counter()
    lo, hi = box_for_starts(names, settings.bounds_map, origin)
    if settings.starts > 1:
        starts = draw_starts(lo, hi, settings.starts, settings.seed)
    else:
        starts = np.array([[origin[v] for v in names]])
    batch = local.Batch(f, names, problem.params)
    steps, every = settings.steps, settings.row_every
    if settings.optimizer == "newton":
        result = local.newton(batch, starts, box, steps, settings.gtol, every, reporter, settings.graph)
    elif settings.optimizer in ("lbfgs", "bfgs") and settings.starts > 1:
        from . import quasi_newton

        result = quasi_newton.minimize(settings.optimizer, batch, starts, box, steps, settings.gtol, every, reporter)
    elif settings.optimizer in local.SCIPY_METHODS:
        result = local.scipy_minimize(batch, settings.optimizer, starts, box, steps, settings.gtol, reporter)
    else:
        result = local.keras_batch(
            batch,
            settings.optimizer,
            settings.learning_rate,
            starts,
            box,
            steps,
            settings.tol,
            every,
            settings.mode,
            reporter,
        )
    usable = np.isfinite(result.f) & np.isfinite(result.x).all(axis=1) & (result.status != local.DIVERGED)
    found, label = group(result.x, result.f, usable, radius(result.x, lo, hi, dt))
    sense = -1.0 if settings.maximize else 1.0
    verdicts = _verdicts(problem, np.array([b.x for b in found]).reshape(len(found), len(names)), settings)
    basins = [BasinReport(dict(zip(names, map(float, b.x))), sense * b.f, b.count, v) for b, v in zip(found, verdicts)]
    report_warnings: list[str] = []
    dropped = int((~usable).sum())
    finite = np.isfinite(result.f) & np.isfinite(result.x).all(axis=1)
    if not found and not finite.any():
        report = not_started(problem, origin, settings, "diverged", [])
        report.outcome.steps = int(result.iterations.max(initial=0))
        report.warnings.append(
            f"every start diverged: f or its gradient became non-finite ({dropped} of {len(starts)})"
        )
        return report
    if not found and len(starts) > 1:  # every start diverged: the best last finite point, and no basin
        report_warnings.append(
            f"every start diverged: f or its gradient became non-finite ({dropped} of {len(starts)})"
        )
    best = found[0].index if found else int(np.argmin(np.where(finite, result.f, np.inf)))
    y, g = batch.derivatives(batch.tf.constant(result.x[best : best + 1], f.dtype), 1)
    gradient = {n: float(v) for n, v in zip(names, g.numpy()[0])}
    status = "interrupted" if result.interrupted else local.STATUS[int(result.status[best])]
    shown = local.projected(result.x[best : best + 1], g.numpy(), box)
    if status == "converged" and not _within_tol(shown, settings):
        # the method judged its own last evaluation (compiled, batched: rounded otherwise in
        # float32); the gradient shown is this one, and converged must hold for it too
        status = "stalled"
    outcome = Outcome(
        x=dict(zip(names, map(float, result.x[best]))),
        f=float(y.numpy()[0]),
        gradient=gradient,
        # with bounds, the length of the projected gradient: what pushes against a bound held is left out
        grad_norm=float(local.row_length(shown)[0]),
        steps=int(result.iterations[best]),
        status=status,
        mode=settings.mode,
        history=result.history,
        traces=result.traces,
        evaluations=result.evaluations,
    )
    outcome.optimize_s = time.perf_counter() - began
    report = MinimizeReport(problem, settings, dict(origin), outcome, report_warnings, basins=basins)
    if settings.starts > 1 and dropped and found:
        report.advice.append(f"{dropped} of {len(starts)} starts diverged or left the domain and are in no basin")
        ran = ~usable & finite & (result.f < found[0].f)  # and went lower than every basin
        if ran.any():
            extreme = sense * float(result.f[ran].min())
            kind, direction = ("maxima", "above") if settings.maximize else ("minima", "below")
            report.advice.append(
                f"{int(ran.sum())} of {len(starts)} starts ran off to f = {fmt(extreme, dt)} before diverging: "
                f"f may be unbounded {direction}; the best of the local {kind} found is reported"
            )
    unlisted = int((usable & (label < 0)).sum())
    if unlisted:
        report.advice.append(
            f"the end points lie in more than {MAX_BASINS} distinct places; the {MAX_BASINS} best are listed, "
            f"and {unlisted} starts ended elsewhere (more --steps may gather them)"
        )
    return report


def _within_tol(projected: np.ndarray, settings: MinimizeSettings) -> bool:
    """The convergence test of the method that ran, on one (1, d) projected gradient: its
    length within --tol for Keras optimizers, its largest component within it otherwise."""
    if settings.keras:
        return settings.tol is not None and float(local.row_length(projected)[0]) <= settings.tol
    return float(np.max(np.abs(projected), initial=0.0)) <= settings.gtol


def _flip(o: Outcome) -> None:
    """Maximization ran on -f: report f itself."""
    o.f = -o.f
    o.gradient = {k: -v for k, v in o.gradient.items()}
    o.history = [replace(row, f=-row.f) for row in o.history]


def _verdicts(problem: Problem, points: np.ndarray, settings: MinimizeSettings) -> list[Verdict]:
    """The second-order verdict of f itself (not -f) at each point, from nested tapes."""
    if not len(points):
        return []
    names = problem.variables
    f = TFFunction(problem.expr, problem.dtype)
    d = derivatives(f, points, names, problem.params, names, (), 2)
    g = np.stack([d.gradient[n] for n in names], axis=1)
    h = np.stack([np.stack([d.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
    tol = 0.0 if settings.keras else settings.gtol
    box = local.Box.of(names, settings.bounds_map)
    sense = -1.0 if settings.maximize else 1.0
    return classify(points, g, h, problem.dtype, tol, (box.lo, box.hi), sense, _hessian_at(f, problem))


def _kink(report: MinimizeReport, x: np.ndarray) -> bool:
    """Is the point found, not stationary, a minimum (maximum) where f has a kink?"""
    p, s = report.problem, report.settings
    f = TFFunction(p.expr, p.dtype)
    g = np.array([report.outcome.gradient[v] for v in p.variables])
    box = local.Box.of(p.variables, s.bounds_map)

    def values(points: np.ndarray) -> np.ndarray:
        return derivatives(f, points, p.variables, p.params, p.variables, (), 1).value

    return rises_all_around(x, g, values, p.dtype, (box.lo, box.hi), -1.0 if s.maximize else 1.0)


def _judge(report: MinimizeReport) -> None:
    """The verdict at the point found, and a plain warning when it is not what was asked for."""
    o, s = report.outcome, report.settings
    point = np.array([[o.x[v] for v in report.problem.variables]])
    if not np.isfinite(point).all() or not math.isfinite(o.f):
        return
    best = report.basins[0] if report.basins else None
    if best is not None and [best.x[v] for v in report.problem.variables] == list(point[0]):
        report.verdict = best.verdict  # computed with the basins, at this very point
    else:
        report.verdict = _verdicts(report.problem, point, s)[0]
    wanted = MAXIMUM if s.maximize else MINIMUM
    kind = report.verdict.kind
    if kind == wanted or o.status == "interrupted":
        return
    if kind == NOT_STATIONARY and _kink(report, point[0]):
        report.kink = True
        report.advice.append(
            f"the point found is not stationary (|grad| = {fmt(o.grad_norm, report.problem.dtype)}), but f "
            f"{'falls' if s.maximize else 'rises'} in every direction tried around it: a {wanted} where f has "
            f"a kink (is not differentiable), as {'-' if s.maximize else ''}sqrt(x**2 + y**2) at 0"
        )
    elif kind == NOT_STATIONARY:
        if o.status == "converged" and s.optimizer in ("bfgs", "lbfgs"):
            # SciPy also calls a stop "converged" when f no longer falls relative to |f|
            # (L-BFGS-B's factr test); far out on f = x, or where float32 rounds every
            # step away, that is not convergence: the line search could not lower f
            o.status = "stalled"
        direction = "above" if s.maximize else "below"
        if o.status == "diverged":  # on its way to overflow
            remedy = ""
        elif o.status == "stalled":  # the line search could not go on: a precision limit, or overflow ahead
            remedy = ", or its rounding hides the way " + ("up" if s.maximize else "down")
            if report.problem.dtype == "float32":
                remedy += " (try --dtype float64)"
        else:
            remedy = ", or the search needs more --steps"
        report.advice.append(
            f"the point found is not stationary (|grad| = {fmt(o.grad_norm, report.problem.dtype)}): "
            f"f may be unbounded {direction}{remedy}"
        )
    elif kind == DEGENERATE:
        report.advice.append(
            f"the point found is degenerate: a Hessian eigenvalue is too close to 0 for the second-order test "
            f"to say whether it is a {wanted}"
        )
    else:
        report.advice.append(f"the point found is a {kind}, not a {wanted}")
