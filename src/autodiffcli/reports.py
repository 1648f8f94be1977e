"""The two use cases, end to end: a problem and its settings in, a report out.

Symbolic derivatives come from ``sympy.diff`` (under the parser's wall-clock budget);
numbers come from TensorFlow. Numeric faults become warnings on the report, which the
CLI prints and turns into exit status 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from .config import Problem
from .derivatives import Derivatives, derivatives
from .errors import ExitCode, UsageError
from .numerics import explain_derivative, explain_value, fmt, point_text
from .optimize import MinimizeSettings, Outcome, Reporter, run
from .parse import LIMITS, canonical, time_limit
from .tf_build import TFFunction


@dataclass(frozen=True)
class GradRequest:
    problem: Problem
    points: np.ndarray  # one row per point, one column per variable
    wrt: tuple[str, ...]
    watch: tuple[str, ...]
    order: int

    def point(self, i: int) -> dict[str, float]:
        return {v: float(self.points[i, j]) for j, v in enumerate(self.problem.variables)}

    @property
    def sources(self) -> tuple[str, ...]:
        """Names that get derivatives: variables, and parameters that are watched."""
        return tuple(n for n in self.wrt if n in self.problem.variables or n in self.watch)


def grad_request(
    problem: Problem, points: np.ndarray | None, wrt: Sequence[str], watch: Sequence[str], order: int
) -> GradRequest:
    if not problem.variables and not watch:
        raise UsageError(f"the expression has no variables to differentiate ({_why_no_variables(problem)})")
    for name in watch:
        if name not in problem.params:
            raise UsageError(
                f"--watch: {name!r} is a variable, and variables are always watched; --watch is for parameters"
            )
    wrt = tuple(wrt) or (*problem.variables, *watch)
    if points is None or len(points) == 0:
        points = np.zeros((1, len(problem.variables)))
    req = GradRequest(problem, points, wrt, tuple(watch), order)
    if order > 2 and len(req.sources) > 1:
        raise UsageError(
            f"--order {order}: above 2 needs one name to differentiate by, got {', '.join(req.sources)}; "
            "pick one with --wrt (order 2 gives the Hessian)"
        )
    if not req.sources:
        raise UsageError("--wrt: none of the names can be differentiated; parameters need --watch")
    return req


def _why_no_variables(problem: Problem) -> str:
    if problem.params:
        return "all its names are parameters"
    return f"it is the constant {problem.canonical}"


@dataclass
class GradReport:
    request: GradRequest
    result: Derivatives
    symbolic: dict[str, object]
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.NUMERIC if self.warnings else ExitCode.OK


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


def grad(req: GradRequest) -> GradReport:
    p = req.problem
    symbolic = symbolic_derivatives(req)
    f = TFFunction(p.expr, p.dtype)
    result = derivatives(f, req.points, p.variables, p.params, req.wrt, req.watch, req.order)
    report = GradReport(req, result, symbolic)
    report.warnings = _grad_warnings(report)
    return report


def _grad_warnings(report: GradReport) -> list[str]:
    req, r = report.request, report.result
    p = req.problem
    out: list[str] = []
    bad = ~np.isfinite(r.value)
    for arr in [
        *(g for g in r.gradient.values() if g is not None),
        *r.higher,
        *(h for row in r.hessian.values() for h in row.values()),
    ]:
        bad |= ~np.isfinite(arr)
    for i in np.flatnonzero(bad)[:5]:
        env = {**p.params, **req.point(i)}
        if not math.isfinite(r.value[i]):
            out.append(explain_value(p.expr, env, p.dtype))
            continue
        labels = [(f"df/d{n}", g) for n, g in r.gradient.items() if g is not None]
        labels += [(f"d2f/d{a}d{b}", h) for a, row in r.hessian.items() for b, h in row.items()]
        labels += [(f"f^({k + 1})", d) for k, d in enumerate(r.higher[1:], start=1)]
        for label, arr in labels:
            if not math.isfinite(arr[i]):
                out.append(explain_derivative(label, float(arr[i]), env, p.dtype))
                break
    if bad.sum() > 5:
        out.append(f"{int(bad.sum())} points in all have non-finite results")
    return out


@dataclass
class MinimizeReport:
    problem: Problem
    settings: MinimizeSettings
    start: dict[str, float]
    outcome: Outcome
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        status = self.outcome.status
        if status == "interrupted":
            return ExitCode.INTERRUPTED
        if status == "diverged" or not math.isfinite(self.outcome.f):
            return ExitCode.NUMERIC
        if self.settings.tol is not None and status != "converged":
            return ExitCode.NOT_CONVERGED
        return ExitCode.OK


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
    if not problem.variables:
        raise UsageError(f"the expression has no variables to minimize over ({_why_no_variables(problem)})")
    f = TFFunction(problem.expr, problem.dtype, first_order=True)
    reason = check_start(problem, f, start)
    if reason:  # nothing to optimize; scripts still get a report, with nulls and the reason
        return not_started(problem, start, settings, "diverged", [reason])
    outcome = run(f, start, problem.params, settings, reporter)
    report = MinimizeReport(problem, settings, dict(start), outcome)
    if outcome.status == "diverged":
        report.warnings.append(
            f"diverged after step {outcome.steps}: f or its gradient became non-finite; "
            f"the last finite point is reported (try a smaller --lr)"
        )
    elif settings.tol is not None and outcome.status == "max_steps":
        report.warnings.append(
            f"--tol {fmt(settings.tol)} not reached within {settings.steps} steps (|grad| = {fmt(outcome.grad_norm)})"
        )
    return report
