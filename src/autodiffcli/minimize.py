"""The ``minimize`` and ``maximize`` use case: a problem and its settings in, a report out.

One start with a Keras optimizer and no bounds runs the tutorial's loop (``keras_loop``);
everything else runs a batch of starts (``solve``) whose end points are grouped into
basins (``multistart``). Every end point gets the verdict of the second-order test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .calculus.derivatives import derivatives, hessian_at
from .calculus.faults import explain_derivative, explain_value
from .calculus.tf_build import TFFunction
from .errors import ExitCode, UsageError
from .formatting import fmt, point_text
from .settings import Problem
from .solve import higher_order
from .solve.batch import BatchObjective
from .solve.keras_batch import keras_batch
from .solve.keras_loop import run
from .solve.kkt import KKTPoint
from .solve.multistart import MAX_BASINS, box_for_starts, draw_starts, group, merge_flat, radius
from .solve.newton import newton
from .solve.scipy_methods import SCIPY_METHODS, scipy_minimize
from .solve.types import (
    DIVERGED,
    RUNNING,
    STALLED,
    STATUS,
    Box,
    MinimizeSettings,
    Outcome,
    Reporter,
    Silent,
    projected,
    row_length,
)
from .solve.verdict import (
    DEGENERATE,
    MAXIMUM,
    MINIMUM,
    NOT_STATIONARY,
    SADDLE,
    ZERO,
    Verdict,
    classify,
    rises_all_around,
)

# The status of a run whose method met its convergence test at a point the verdict refutes:
# ``saddle``; ``maximum`` when minimizing, ``minimum`` when maximizing; ``stalled`` where the
# point is not stationary (the test was met on a gradient too small to judge by).
REFUTED_STATUS = {NOT_STATIONARY: "stalled"}
EPS64 = float(np.finfo(np.float64).eps)
HIGHER_ORDER_S = 2.0  # the most time the higher-order test takes at once (all points, or one escape)
ESCAPE_POINTS = 16  # the most converged points (the lowest) Newton's escape tests at once


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
    kkt: KKTPoint | None = None  # with --subject-to (or a constrained method): the constraints at the point

    @property
    def exit_code(self) -> ExitCode:
        status = self.outcome.status
        if status == "interrupted":
            return ExitCode.INTERRUPTED
        if status == "diverged" or not math.isfinite(self.outcome.f):
            return ExitCode.NUMERIC
        if status == "infeasible":  # no point satisfies the constraints: never a solution
            return ExitCode.NOT_CONVERGED
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

    One start with a Keras optimizer and no bounds runs the tutorial's loop (keras_loop.run);
    everything else (Newton, BFGS, L-BFGS-B, several starts, bounds) runs a batch of starts
    (py) whose end points are grouped into basins (multistart).
    """
    if not problem.variables:
        raise UsageError(problem.no_variables(f"to {'maximize' if settings.maximize else 'minimize'} over"))
    sense = -1.0 if settings.maximize else 1.0
    objective = -problem.expr if settings.maximize else problem.expr
    f = TFFunction(objective, problem.dtype, first_order=settings.keras)
    box = Box.of(problem.variables, settings.bounds_map)
    start = {v: float(np.clip(start[v], box.lo[j], box.hi[j])) for j, v in enumerate(problem.variables)}
    if settings.starts == 1:
        reason = check_start(problem, f, start)
        if reason:  # nothing to optimize; scripts still get a report, with nulls and the reason
            return not_started(problem, start, settings, "diverged", [reason])
    if settings.keras and settings.starts == 1 and not box.bounded:
        outcome = run(f, start, problem.params, settings, reporter)
        report = MinimizeReport(problem, settings, dict(start), outcome)
    else:
        report = _minimize_batch(problem, f, start, box, settings, reporter or Silent())
    if sense < 0:
        _flip(report.outcome)
    _judge(report)
    if not report.basins and report.verdict is not None and settings.starts == 1:  # one start, one basin
        o = report.outcome
        report.basins = [BasinReport(dict(o.x), o.f, 1, report.verdict)]
    o = report.outcome
    if o.status == "converged" and report.exit_code == ExitCode.NOT_CONVERGED:
        # the method's own test was met where the verdict refutes the answer: the status says
        # what it stopped at, so that a script reading it agrees with the exit status
        o.status = REFUTED_STATUS.get(report.verdict.kind, report.verdict.kind) if report.verdict else "stalled"
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
    box: Box,
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
    batch = BatchObjective(f, names, problem.params)
    steps, every = settings.steps, settings.row_every
    known: dict[bytes, Verdict | None] = {}  # higher-order verdicts of f that Newton's escape computed
    if settings.optimizer == "newton":
        escape = _escape(problem, settings, box, known)
        result = newton(batch, starts, box, steps, settings.gtol, every, reporter, settings.graph, escape)
    elif settings.optimizer in ("lbfgs", "bfgs") and settings.starts > 1:
        from .solve import tfp_batched

        result = tfp_batched.quasi_newton(settings.optimizer, batch, starts, box, steps, settings.gtol, every, reporter)
    elif settings.optimizer in SCIPY_METHODS:
        result = scipy_minimize(batch, settings.optimizer, starts, box, steps, settings.gtol, reporter)
    else:
        result = keras_batch(
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
    usable = np.isfinite(result.f) & np.isfinite(result.x).all(axis=1) & (result.status != DIVERGED)
    near = radius(result.x, lo, hi, dt)
    found, label = group(result.x, result.f, usable, near)
    found, label = merge_flat(
        found, label, near, lambda X: batch.value(batch.tf.constant(X, f.dtype)).numpy(), float(np.finfo(dt).eps)
    )
    sense = -1.0 if settings.maximize else 1.0
    verdicts = _verdicts(problem, np.array([b.x for b in found]).reshape(len(found), len(names)), settings, known)
    basins = [
        BasinReport(dict(zip(names, map(float, b.x), strict=True)), sense * b.f, b.count, v)
        for b, v in zip(found, verdicts, strict=True)
    ]
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
    gradient = {n: float(v) for n, v in zip(names, g.numpy()[0], strict=True)}
    status = "interrupted" if result.interrupted else STATUS[int(result.status[best])]
    shown = projected(result.x[best : best + 1], g.numpy(), box)
    if status == "converged" and not _within_tol(shown, settings):
        # the method judged its own last evaluation (compiled, batched: rounded otherwise in
        # float32); the gradient shown is this one, and converged must hold for it too
        status = "stalled"
    outcome = Outcome(
        x=dict(zip(names, map(float, result.x[best]), strict=True)),
        f=float(y.numpy()[0]),
        gradient=gradient,
        # with bounds, the length of the projected gradient: what pushes against a bound held is left out
        grad_norm=float(row_length(shown)[0]),
        steps=int(result.iterations[best]),
        status=status,
        mode=settings.mode,
        history=result.history,
        path=[] if result.path is None else [dict(zip(names, map(float, x), strict=True)) for x in result.path],
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
    if settings.starts > 1:
        ran_out = int((result.status == RUNNING).sum()) if not result.interrupted else 0
        stalled = int((result.status == STALLED).sum())
        if ran_out or stalled:
            parts = [f"{ran_out} reached --steps {settings.steps}"] if ran_out else []
            parts += [f"{stalled} stalled (the line search could no longer lower f)"] if stalled else []
            report.advice.append(f"{ran_out + stalled} of {len(starts)} starts did not converge: {', '.join(parts)}")
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
        return settings.tol is not None and float(row_length(projected)[0]) <= settings.tol
    return float(np.max(np.abs(projected), initial=0.0)) <= settings.gtol


def _flip(o: Outcome) -> None:
    """Maximization ran on -f: report f itself."""
    o.f = -o.f
    o.gradient = {k: -v for k, v in o.gradient.items()}
    o.history = [replace(row, f=-row.f) for row in o.history]


def _verdicts(
    problem: Problem,
    points: np.ndarray,
    settings: MinimizeSettings,
    known: Mapping[bytes, Verdict | None] | None = None,
) -> list[Verdict]:
    """The second-order verdict of f itself (not -f) at each point, from nested tapes."""
    if not len(points):
        return []
    names = problem.variables
    f = TFFunction(problem.expr, problem.dtype)
    d = derivatives(f, points, names, problem.params, names, (), 2)
    g = np.stack([d.gradient_by(n) for n in names], axis=1)
    h = np.stack([np.stack([d.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
    tol = 0.0 if settings.keras else settings.gtol
    box = Box.of(names, settings.bounds_map)
    sense = -1.0 if settings.maximize else 1.0
    hessians = hessian_at(f, problem.variables, problem.params)
    verdicts = classify(points, g, h, problem.dtype, tol, (box.lo, box.hi), sense, hessians)
    return _higher_order(problem, points, verdicts, box, known or {}, settings.maximize)


def _higher_order(
    problem: Problem,
    points: np.ndarray,
    verdicts: list[Verdict],
    box: Box,
    known: Mapping[bytes, Verdict | None],
    maximize: bool = False,
) -> list[Verdict]:
    """Degenerate verdicts decided by higher derivatives where they can be (higher_order.py).

    The test runs on the objective that was minimized (-f when maximizing), as Newton's
    escape does, and its verdict is turned back into f's: the one-sided test on a bound
    (higher_order.decide_on_bounds) asks whether that objective falls into the box, and
    f falling into the box refutes a minimum, not a maximum. ``known``: verdicts of f
    already computed at these very points (by Newton's escape).
    """
    out = list(verdicts)
    f64: TFFunction | None = None
    end = time.monotonic() + HIGHER_ORDER_S
    for i, v in enumerate(verdicts):
        x = points[i].astype(np.float64)
        if v.kind != DEGENERATE:
            continue
        if x.tobytes() in known:
            decided = known[x.tobytes()]
        elif time.monotonic() < end:
            f64 = f64 or TFFunction(-problem.expr if maximize else problem.expr, "float64")
            seconds = min(higher_order.BUDGET_S, end - time.monotonic())
            decided = _decide(f64, problem, x, v.eigenvalues, box, seconds)
            if decided is not None and not _shown(f64, problem, x, decided, box):
                decided = None
            if decided is not None and maximize:
                decided = _flipped(decided)
        else:
            break
        if decided is not None:
            out[i] = replace(decided, eigenvalues=v.eigenvalues)
    return out


def _flipped(v: higher_order.HigherVerdict) -> higher_order.HigherVerdict:
    """The verdict of f from that of -f."""
    kind = {MINIMUM: MAXIMUM, MAXIMUM: MINIMUM}.get(v.kind, v.kind)
    return replace(v, kind=kind, derivative=-v.derivative, descent=())


def _escape(
    problem: Problem, settings: MinimizeSettings, box: Box, known: dict[bytes, Verdict | None]
) -> Callable[[np.ndarray], dict[int, np.ndarray]]:
    """For Newton: from converged points that the higher-order test shows are not minima of
    the objective, a lower point down the direction along which it falls. The verdicts of f
    it computes go into ``known``."""
    names, params = problem.variables, problem.params
    f64 = TFFunction(-problem.expr if settings.maximize else problem.expr, "float64")

    step_tol = max(settings.gtol, math.sqrt(float(np.finfo(problem.dtype).eps)))

    def escape(points: np.ndarray) -> dict[int, np.ndarray]:
        d = derivatives(f64, points, names, params, names, (), 2)
        h = np.stack([np.stack([d.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
        g_all = np.stack([d.gradient_by(n) for n in names], axis=1)
        lowest = np.argsort(np.where(np.isfinite(d.value), d.value, np.inf))[:ESCAPE_POINTS]
        worth = _singular_to_precision(f64, problem, points, g_all, h, lowest, step_tol)
        out = {}
        end = time.monotonic() + HIGHER_ORDER_S
        for i in lowest:  # the lowest first
            x = points[i]
            if time.monotonic() >= end:
                break
            if i not in worth or x.tobytes() in known:  # known: decided in an earlier round
                continue
            lam = np.linalg.eigvalsh(0.5 * (h[i] + h[i].T))
            g = g_all[i]
            seconds = min(higher_order.BUDGET_S, end - time.monotonic())
            v = _decide(f64, problem, x, lam, box, seconds, (float(d.value[i]), g, h[i]))
            if v is None or v.kind == MINIMUM or not v.descent:
                known[x.tobytes()] = v if v is None or not settings.maximize else _flipped(v)
                continue
            lower = _down(f64, problem, x, np.array(v.descent), box)
            # no lower point down the direction the derivatives give: they did not describe f
            # near x (a kink, where they grow without bound), so the point stays undecided
            known[x.tobytes()] = None if lower is None else v if not settings.maximize else _flipped(v)
            if lower is not None:
                out[int(i)] = lower
        return out

    return escape


def _decide(
    f64: TFFunction,
    problem: Problem,
    x: np.ndarray,
    eigenvalues: Sequence[float] | np.ndarray,
    box: Box,
    seconds: float,
    at: tuple[float, np.ndarray, np.ndarray] | None = None,
) -> higher_order.HigherVerdict | None:
    """The higher-order verdict at x: two-sided inside the box, one-sided on its boundary."""
    names, params = problem.variables, problem.params
    if np.any((x <= box.lo) | (x >= box.hi)):
        return higher_order.decide_on_bounds(f64, names, params, x, box.lo, box.hi, eigenvalues, seconds)
    return higher_order.decide(f64, names, params, x, eigenvalues, seconds, at)


def _singular_to_precision(
    f64: TFFunction,
    problem: Problem,
    points: np.ndarray,
    g: np.ndarray,
    h: np.ndarray,
    which: np.ndarray,
    step_tol: float,
) -> set[int]:
    """The points (of ``which``) whose Hessian may be singular at the stationary point nearby.

    A small eigenvalue (higher_order.NULL) is that of a degenerate point when it is 0 to
    rounding, or when the third and fourth derivatives along its eigenvector explain it over
    the distance the point may be from the stationary point (Newton's step along it, at least
    the step tolerance): x**4 stopped at 1e-5 has a second derivative of 1.2e-9 and a third
    of 2.4e-4. A function of small scale (Easom's local minima: curvature 1.3e-3, all of it
    real) is left to the second-order test: the full higher-order test costs about 0.2 s a
    point.
    """
    rows: list[tuple[int, np.ndarray, float, float]] = []
    out: set[int] = set()
    for i in which:
        if not np.isfinite(h[i]).all() or not np.isfinite(g[i]).all():
            continue
        lam, Q = np.linalg.eigh(0.5 * (h[i] + h[i].T))
        top = float(np.max(np.abs(lam)))
        for k in np.flatnonzero(np.abs(lam) <= higher_order.NULL * max(1.0, top)):
            if abs(lam[k]) <= ZERO * EPS64 * max(1.0, top):
                out.add(int(i))
                break
            reach = max(1.0, float(np.max(np.abs(points[i]))))
            delta = max(step_tol * reach, abs(float(g[i] @ Q[:, k]) / lam[k]))
            rows.append((int(i), Q[:, k], float(lam[k]), delta))
    rows = [r for r in rows if r[0] not in out]
    if rows:
        D = higher_order.directional(
            f64, problem.variables, problem.params, points[[r[0] for r in rows]], np.array([r[1] for r in rows]), 4
        )
        for (i, _, curvature, delta), row in zip(rows, D, strict=True):
            if higher_order.curvature_explained(curvature, row, delta):
                out.add(i)
    return out


def _shown(f64: TFFunction, problem: Problem, x: np.ndarray, v: higher_order.HigherVerdict, box: Box) -> bool:
    """Whether a saddle verdict's descent direction leads to a lower f (no claim otherwise):
    at a kink the derivatives grow without bound near x (Ackley's |x| inside a sqrt at
    6e-30 from 0: a 4th derivative of -1.4e73), and their Taylor polynomial describes
    nothing; the global minimum there was called a saddle."""
    if v.kind != SADDLE or not v.descent:
        return True
    return _down(f64, problem, x, np.array(v.descent), box) is not None


def _down(f64: TFFunction, problem: Problem, x: np.ndarray, u: np.ndarray, box: Box) -> np.ndarray | None:
    """The longest of the steps max(1, |x|) * u / 2**k (k = 0..40) that lowers f, in the box."""
    reach = max(1.0, float(np.max(np.abs(x))))
    trials = np.clip(x + reach * np.power(0.5, np.arange(41))[:, None] * u, box.lo, box.hi)
    values = derivatives(f64, np.vstack([x[None], trials]), problem.variables, problem.params, (), (), 0).value
    lower = np.flatnonzero(np.isfinite(values[1:]) & (values[1:] < values[0]))
    return trials[lower[0]] if len(lower) else None


def _kink(report: MinimizeReport, x: np.ndarray) -> bool:
    """Is the point found, not stationary, a minimum (maximum) where f has a kink?"""
    p, s = report.problem, report.settings
    f = TFFunction(p.expr, p.dtype)
    g = np.array([report.outcome.gradient[v] for v in p.variables])
    box = Box.of(p.variables, s.bounds_map)

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
    # a run stopped by --steps is on its way: never a kink, however f looks around it
    if kind == NOT_STATIONARY and o.status != "max_steps" and _kink(report, point[0]):
        report.kink = True
        report.advice.append(
            f"the point found is not stationary (|grad| = {fmt(o.grad_norm, report.problem.dtype)}), but f "
            f"{'falls' if s.maximize else 'rises'} in every direction tried around it: a {wanted} where f has "
            f"a kink (is not differentiable), as {'-' if s.maximize else ''}sqrt(x**2 + y**2) at 0"
        )
    elif kind == NOT_STATIONARY:
        if o.status == "converged" and not s.keras:
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
    elif isinstance(report.verdict, higher_order.HigherVerdict):
        report.advice.append(
            f"the point found is {higher_order.describe(report.verdict, report.problem.variables)}, not a {wanted}"
        )
    else:
        report.advice.append(f"the point found is a {kind}, not a {wanted}")
