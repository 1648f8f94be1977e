"""The ``grad`` use case: a problem and points in, values, derivatives and verdicts out.

Symbolic derivatives come from ``sympy.diff`` (under the parser's wall-clock budget);
numbers come from TensorFlow. Numeric faults become warnings on the report, which the
CLI prints and turns into exit status 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import sympy

from .calculus.derivatives import Derivatives, derivatives, hessian_at
from .calculus.faults import Intermediates, explain_derivative, explain_value, unheld_intermediate
from .calculus.gradcheck import ULPS, Check, Checker
from .calculus.tf_build import TFFunction
from .errors import ExitCode, UsageError
from .formatting import fmt, point_text
from .language.budgets import LIMITS, time_limit
from .language.printing import canonical
from .settings import Problem
from .solve.verdict import Verdict, classify


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
    symbolic: Symbolic
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


class SymbolicGradient(TypedDict):
    gradient: dict[str, str]


class Symbolic(SymbolicGradient, total=False):
    """The exact derivatives as canonical text: the gradient always, the rest by order."""

    hessian: dict[str, dict[str, str]]  # with --order 2 or more
    derivatives: list[str]  # f', f'', ... when there is one name to differentiate by


def symbolic_derivatives(req: GradRequest) -> Symbolic:
    """``sympy.diff`` for everything the tape computes, as canonical text."""
    expr, sources = req.problem.expr, req.sources
    sym = {n: sympy.Symbol(n, real=True) for n in req.wrt}
    with time_limit(LIMITS.time_s, "symbolic differentiation"):
        out: Symbolic = {"gradient": {n: canonical(sympy.diff(expr, sym[n])) for n in req.wrt}}
        if req.order >= 2:
            out["hessian"] = {a: {b: canonical(sympy.diff(expr, sym[a], sym[b])) for b in sources} for a in sources}
        if len(sources) == 1:
            (only,) = sources
            out["derivatives"] = [canonical(sympy.diff(expr, sym[only], k)) for k in range(1, req.order + 1)]
    return out


@dataclass(frozen=True)
class GradChunk:
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
        self._wide: TFFunction | None = None  # f in float64, to find what float32 lost
        self._intermediates: Intermediates | None = None
        self._lost: dict[int, str] = {}  # the current batch's points with lost numbers: why

    def batch(self, points: np.ndarray) -> GradChunk:
        req, p = self.request, self.request.problem
        result = derivatives(self.f, points, p.variables, p.params, req.wrt, req.watch, req.order)
        self._lost = {}
        if p.dtype == "float32" and len(points):
            result, self._lost = self._unheld(points, result)
        verdicts = _grad_verdicts(req, self.f, points, result) if req.order >= 2 and len(points) else []
        checks = self.checker.check(points, result) if self.checker is not None else []
        batch = GradChunk(points, result, self.count, verdicts, checks)
        self.count += len(points)
        if len(points):  # column by column: numpy reduces (n, 2) along axis 0 much more slowly
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

    def _failed_checks(self, batch: GradChunk) -> None:
        p = self.request.problem
        for i, check in enumerate(batch.checks):
            worst = check.worst
            if check.ok is not False or worst is None:  # a check fails only where an exact value is known
                continue
            self._failed += 1
            if len(self._check_failures) < MAX_EXPLAINED:
                label, entry = worst
                self._check_failures.append(
                    f"--check: at {point_text(batch.point(i, p.variables))} the tape's {label} is off by "
                    f"{entry.tape_error:.1e} (relative to the exact value), more than {p.dtype} allows "
                    f"({check.tolerance:.1e})" + ("; try --dtype float64" if p.dtype == "float32" else "")
                )

    def _faults(self, batch: GradChunk) -> None:
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
            env = {**p.params, **batch.point(i, p.variables)}
            self._explained.append(self._lost.get(int(i)) or _explain(p, r, i, env))

    def _unheld(self, points: np.ndarray, r: Derivatives) -> tuple[Derivatives, dict[int, str]]:
        """Numbers float32 lost to under- or overflow, made NaN (never shown as a number).

        Where float32 gave 0 (or a subnormal, or a non-finite number), the point is computed
        again in float64. A number is lost when float64's is one float32 holds to within its
        rounding (above ``ULPS`` smallest normal numbers, the share that flushing may take,
        and below its largest number) yet float32's is not, and a sub-expression of f is
        out of float32's range there: hypot(x, y) at 1e20 squares x to 1e40, so its gradient
        came out 0 instead of 0.7071. (A 0 from rounding alone, sigmoid'(18) as
        s*(1 - s) with s = 1.0, is --check's to judge.) Returns, per point (index in the
        batch), what was lost and why, with the result.
        """
        req, p = self.request, self.request.problem
        info = np.finfo(np.float32)
        low = ULPS * float(info.tiny)
        arrays = _labelled(r)
        infinite, small = np.zeros(len(points), dtype=bool), np.zeros(len(points), dtype=bool)
        for _, arr in arrays:
            infinite |= ~np.isfinite(arr)
            small |= np.abs(arr) < float(info.tiny)
        rows = np.flatnonzero(infinite | small)
        if not len(rows):
            return r, {}
        if self._wide is None or self._intermediates is None:
            self._wide = TFFunction(p.expr, "float64")
            self._intermediates = Intermediates(p.expr, "float32")
        at = {**p.params, **{v: points[rows, j] for j, v in enumerate(p.variables)}}
        unheld = self._intermediates.unheld(at, len(rows))
        keep = infinite[rows] | unheld  # a 0 counts only where an intermediate was out of range
        rows, unheld = rows[keep], unheld[keep]
        if not len(rows):
            return r, {}
        wide = derivatives(self._wide, points[rows], p.variables, p.params, req.wrt, req.watch, req.order)
        lost: dict[int, list[tuple[str, float]]] = {}
        masks: dict[str, np.ndarray] = {}
        for (label, arr), (_, exact) in zip(arrays, _labelled(wide), strict=True):
            narrow = arr[rows]
            known = np.isfinite(exact) & (np.abs(exact) > low)
            overflowed = known & ~np.isfinite(narrow)  # float64 has a number where float32 has none
            flushed = known & unheld & (np.abs(exact) <= float(info.max)) & (np.abs(narrow) < float(info.tiny))
            bad = overflowed | flushed
            if bad.any():
                masks[label] = np.zeros(len(points), dtype=bool)
                masks[label][rows[bad]] = True
            for k in np.flatnonzero(bad):
                lost.setdefault(int(rows[k]), []).append((label, float(exact[k])))
        out: dict[int, str] = {}
        for i, items in lost.items():
            if len(out) + len(self._explained) >= MAX_EXPLAINED:
                break
            out[i] = _lost_text(p, {**p.params, **{v: float(points[i, j]) for j, v in enumerate(p.variables)}}, items)
        return _without(r, masks), {**out, **{i: "" for i in lost if i not in out}}


def _labelled(r: Derivatives) -> list[tuple[str, np.ndarray]]:
    """Every array of a result, with its name as a table shows it: f, df/dx, d2f/dxdy, d3f/dx3, ..."""
    out = [("f", r.value)]
    out += [(f"df/d{n}", g) for n, g in r.gradient.items() if g is not None]
    out += [(f"d2f/d{a}d{b}", h) for a, row in r.hessian.items() for b, h in row.items()]
    only = next((n for n, g in r.gradient.items() if g is not None), "")  # higher: one name
    out += [(f"d{k + 1}f/d{only}{k + 1}", d) for k, d in enumerate(r.higher) if k >= 2]
    return out


def _without(r: Derivatives, masks: dict[str, np.ndarray]) -> Derivatives:
    """``r`` with the entries ``masks`` marks (by label, as ``_labelled`` names them) made NaN."""
    if not masks:
        return r

    def cut(label: str, arr: np.ndarray) -> np.ndarray:
        return np.where(masks[label], np.nan, arr) if label in masks else arr

    only = next((n for n, g in r.gradient.items() if g is not None), "")  # higher: one name
    first_two = [f"df/d{only}", f"d2f/d{only}d{only}"]  # f' and f'' are the gradient's and Hessian's
    return Derivatives(
        value=cut("f", r.value),
        gradient={n: None if g is None else cut(f"df/d{n}", g) for n, g in r.gradient.items()},
        hessian={a: {b: cut(f"d2f/d{a}d{b}", h) for b, h in row.items()} for a, row in r.hessian.items()},
        higher=[cut(first_two[k] if k < 2 else f"d{k + 1}f/d{only}{k + 1}", d) for k, d in enumerate(r.higher)],
    )


def _lost_text(p: Problem, env: dict[str, float], lost: list[tuple[str, float]]) -> str:
    """Why numbers at one point are not shown: what float32 lost, what float64 gives, and
    the intermediate value float32 cannot hold, when one is found."""
    names = ", ".join(label for label, _ in lost[:4]) + (f" and {len(lost) - 4} more" if len(lost) > 4 else "")
    label, value = lost[0]
    cause = unheld_intermediate(p.expr, env, "float32")
    if cause is None and abs(value) > float(np.finfo(np.float32).max):
        cause = f"{label} is beyond float32's range"
    because = f": {cause}" if cause else ""
    return (
        f"float32 lost {names} at {point_text(env)} to under- or overflow{because} "
        f"(float64 gives {label} = {fmt(value)}); use --dtype float64"
    )


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
    g = np.stack([r.gradient_by(k) for k in names], axis=1)
    h = np.stack([np.stack([r.hessian[a][b] for b in names], axis=1) for a in names], axis=1)
    # the check at the stationary point nearby moves every variable: only when all are differentiated
    at = hessian_at(f, p.variables, p.params) if tuple(names) == tuple(p.variables) else None
    return classify(x, g, h, p.dtype, hessian_at=at)
