"""Reports -> rich tables for people, and the live progress display.

Nothing here imports TensorFlow or click; every function takes the ``Console`` to print on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..calculus.gradcheck import Check
from ..fit import FitReport
from ..formatting import fmt
from ..grad import GradReport
from ..minimize import MinimizeReport
from ..solve.higher_order import HigherVerdict, describe
from ..solve.registry import OPTIMIZERS, display_name
from ..solve.types import Row
from ..solve.verdict import Verdict

MAX_TABLE_POINTS = 8
MAX_TABLE_BASINS = 20


def grad_table(report: GradReport, console: Console) -> None:
    req, r = report.request, report.result
    p = req.problem
    dt = p.dtype
    shown = [req.point(i) for i in range(min(len(req.points), MAX_TABLE_POINTS))]
    table = Table(title=f"f = {p.canonical}", caption=_caption(p.params, dt), title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("symbolic (sympy.diff)")
    for point in shown:
        label = ", ".join(f"{k}={fmt(v, dt)}" for k, v in point.items()) or "value"
        table.add_column(f"tape at {label}", justify="right")

    def cells(arr: Any) -> list[str]:
        return [fmt(arr[i], dt) for i in range(len(shown))]

    table.add_row("f", p.canonical, *cells(r.value))
    sym = report.symbolic
    for name, g in r.gradient.items():
        text = sym["gradient"][name]
        values = ["None (not watched)"] * len(shown) if g is None else cells(g)
        table.add_row(f"df/d{name}", text, *values)
    for a, row in r.hessian.items():
        for b, h in row.items():
            table.add_row(f"d2f/d{a}d{b}", sym["hessian"][a][b], *cells(h))
    if len(r.higher) > 2 or (r.higher and not r.hessian):
        (name,) = [n for n in req.sources]
        for k, d in enumerate(r.higher[2:], start=3):
            table.add_row(f"d{k}f/d{name}{k}", sym["derivatives"][k - 1], *cells(d))
    if report.verdicts:
        verdicts = report.verdicts[: len(shown)]
        over = [n for n in req.wrt if n in p.variables]
        what = "second-order test" + ("" if set(over) >= set(p.variables) else f" over {', '.join(over)} only")
        table.add_row("verdict", what, *(v.kind for v in verdicts))
        table.add_row(
            "eigenvalues", "of the Hessian", *(", ".join(fmt(e, dt) for e in v.eigenvalues) for v in verdicts)
        )
    console.print(table)
    for point, check in zip(shown, report.checks, strict=False):
        console.print(_check_table(point, check, dt))
    if p.vanished:
        console.print(f"note: {p.dropped}")
    if report.total > len(shown):
        console.print(f"... and {report.total - len(shown):,} more points (use --format json or plain for all)")


def _check_table(point: dict[str, float], check: Check, dt: str) -> Table:
    """--check at one point: the tape beside the exact value and a finite difference."""
    where = ", ".join(f"{k}={fmt(v, dt)}" for k, v in point.items()) or "the point"
    tol = f"{check.tolerance:.1e}"
    unchecked = check.not_checked
    if check.ok is None:
        verdict = f"nothing checked: no derivative has a finite exact value here ({dt})"
    else:
        verdict = f"ok: every tape error <= {tol}" if check.ok else f"FAILED: a tape error > {tol}"
        verdict = f"{verdict} ({dt})"
        if unchecked:  # "every tape error" holds only for the derivatives with an exact value
            verdict += f"; not checked (no finite exact value): {', '.join(unchecked)}"
    table = Table(title=f"check at {where}", caption=verdict, title_justify="left")
    table.add_column("derivative", no_wrap=True)
    for name in ("tape", "exact", "tape err", "finite diff", "fd err"):
        table.add_column(name, justify="right", no_wrap=True)
    for label, e in check.entries():
        exact = "not finite" if e.exact is None else f"{e.exact:.12g}"  # JSON has every digit
        table.add_row(label, fmt(e.tape, dt), exact, _error(e.tape_error), fmt(e.fd, dt), _error(e.fd_error))
    return table


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def minimize_table(report: MinimizeReport, console: Console) -> None:
    o, s, p = report.outcome, report.settings, report.problem
    dt = p.dtype
    verb = "maximize" if s.maximize else "minimize"
    console.print(history_table(o.history, p.variables, dt, f"{verb} f = {p.canonical}"))
    summary = Table(show_header=False, title="result", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("x", ", ".join(f"{k} = {fmt(v, dt)}" for k, v in o.x.items()))
    summary.add_row("f", fmt(o.f, dt))
    summary.add_row("gradient", ", ".join(f"df/d{k} = {fmt(v, dt)}" for k, v in o.gradient.items()))
    summary.add_row("|grad|", fmt(o.grad_norm, dt))
    summary.add_row("steps", str(o.steps))
    summary.add_row("status", o.status)
    if report.verdict is not None:
        summary.add_row("verdict", _verdict_text(report.verdict, dt, p.variables))
    if report.kkt is not None:
        summary.add_row("max violation", fmt(report.kkt.max_violation, dt))
        summary.add_row("KKT residual", fmt(report.kkt.kkt_residual, dt))
    summary.add_row("evaluations", str(o.evaluations))
    if s.keras:
        summary.add_row("optimizer", f"{OPTIMIZERS[s.optimizer]}(learning_rate={s.learning_rate:g}), style {s.style}")
    else:
        summary.add_row("optimizer", display_name(s.optimizer, s.starts))
    if s.starts > 1:
        summary.add_row("starts", f"{s.starts} (seed {s.seed})")
    if s.bounds:
        summary.add_row("bounds", ", ".join(_bound_text(n, lo, hi, dt) for n, lo, hi in s.bounds))
    summary.add_row("mode", o.mode)
    summary.add_row("params", _caption(p.params, dt) or "none")
    summary.add_row("optimize time", f"{o.optimize_s:.3f} s")
    console.print(summary)
    if report.kkt is not None and p.constraints:
        console.print(constraint_table(report))
    if s.starts > 1 and report.basins:
        console.print(basin_table(report, dt))


def fit_table(report: FitReport, console: Console) -> None:
    """The parameters with their standard errors, t values and intervals; then the fit."""
    level = f"{100 * report.level:g}%"
    params = Table(title=f"fit {report.response} = {report.expression}", title_justify="left")
    for name in ("parameter", "value", "std. error", "t", f"{level} interval"):
        params.add_column(name, justify="left" if name == "parameter" else "right", overflow="fold")
    for p in report.parameters:
        params.add_row(p.name, fmt(p.value), _short(p.stderr), _short(p.t, 4), _interval(*p.ci))
    console.print(params)
    summary = Table(show_header=False, title="fit", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("residual sum of squares", fmt(report.rss))
    summary.add_row("residual std. deviation", _short(report.residual_sd))
    summary.add_row("observations / dof", f"{report.n} / {report.dof}")
    summary.add_row("R^2", "n/a" if report.r2 is None else _short(report.r2))
    summary.add_row(
        "weighting",
        {"none": "none", "sigma": "--sigma (absolute)", "weights": "--weights (relative)"}[report.weighting],
    )
    if report.fixed:
        summary.add_row("fixed", _caption(report.fixed, "float64"))
    summary.add_row("status", report.status)
    summary.add_row("verdict", report.verdict)
    summary.add_row("evaluations", str(report.evaluations))
    console.print(summary)
    names = [p.name for p in report.parameters]
    if report.correlation is not None and len(names) > 1:
        corr = Table(title="correlation of the parameters", title_justify="left")
        corr.add_column("")
        for name in names:
            corr.add_column(name, justify="right")
        for name, row in zip(names, report.correlation, strict=True):
            corr.add_row(name, *(f"{v:.4f}" for v in row))
        console.print(corr)
    if len(report.fits) > 1:
        fits = Table(title="distinct local fits", title_justify="left")
        fits.add_column("#")
        for name in names:
            fits.add_column(name, justify="right")
        fits.add_column("rss", justify="right")
        fits.add_column("starts", justify="right")
        for k, f in enumerate(report.fits, 1):
            fits.add_row(str(k), *(_short(f.values[n]) for n in names), _short(f.rss), str(f.starts))
        console.print(fits)


def _short(value: float | None, digits: int = 6) -> str:
    """Six significant digits for figures whose last digits carry no meaning (errors, t, R^2)."""
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}g}"


def _interval(lo: float, hi: float) -> str:
    """An interval's ends to six significant digits, or as many more as tell them apart with
    three digits of their difference (1000004.48 .. 1000004.51, not 1e+06 .. 1e+06)."""
    width, size = abs(hi - lo), max(abs(lo), abs(hi))
    digits = 6
    if width > 0 and math.isfinite(width) and size > 0:
        digits = min(17, max(6, math.ceil(math.log10(size / width)) + 3))
    return f"{_short(lo, digits)} .. {_short(hi, digits)}"


def constraint_table(report: MinimizeReport) -> Table:
    """Each constraint at the point found: lhs - rhs, active or not, its Lagrange multiplier."""
    k, dt = report.kkt, report.problem.dtype
    assert k is not None
    table = Table(title="constraints at the point", title_justify="left")
    table.caption = "multiplier: d f*/d rhs, how fast the best f moves as the right-hand side grows"
    for name in ("constraint", "lhs - rhs", "active", "multiplier"):
        table.add_column(name, justify="left" if name == "constraint" else "right")
    for c, v, a, m in zip(report.problem.constraints, k.values, k.active, k.multipliers, strict=True):
        table.add_row(c.text, fmt(v, dt), "yes" if a else "no", fmt(m, dt) if a else "0")
    return table


def basin_table(report: MinimizeReport, dtype: str) -> Table:
    names = report.problem.variables
    table = Table(title="basins, best first", title_justify="left")
    table.add_column("#", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("f", justify="right")
    table.add_column("starts", justify="right")
    table.add_column("verdict")
    for i, b in enumerate(report.basins[:MAX_TABLE_BASINS], start=1):
        table.add_row(str(i), *(fmt(b.x[n], dtype) for n in names), fmt(b.f, dtype), str(b.count), b.verdict.kind)
    if len(report.basins) > MAX_TABLE_BASINS:
        table.caption = f"and {len(report.basins) - MAX_TABLE_BASINS} more (--format json lists them all)"
    return table


def _bound_text(name: str, lo: float, hi: float, dtype: str) -> str:
    """``0 <= x <= 1``, or one side only where the other is infinite (``x >= 0``)."""
    if math.isinf(lo) and math.isinf(hi):
        return f"{name} free"
    if math.isinf(lo):
        return f"{name} <= {fmt(hi, dtype)}"
    if math.isinf(hi):
        return f"{name} >= {fmt(lo, dtype)}"
    return f"{fmt(lo, dtype)} <= {name} <= {fmt(hi, dtype)}"


def _verdict_text(v: Verdict, dtype: str, names: tuple[str, ...] = ()) -> str:
    if isinstance(v, HigherVerdict):
        return describe(v, names)
    eig = ", ".join(fmt(e, dtype) for e in v.eigenvalues)
    return f"{v.kind} (eigenvalues {eig})" if eig else v.kind


def history_table(rows: list[Row], names: tuple[str, ...], dtype: str, title: str = "") -> Table:
    table = Table(title=title or None, title_justify="left")
    table.add_column("step", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("f", justify="right")
    table.add_column("|grad|", justify="right")
    for row in rows:
        table.add_row(
            str(row.step), *(fmt(row.x[n], dtype) for n in names), fmt(row.f, dtype), fmt(row.grad_norm, dtype)
        )
    return table


def _caption(params: Mapping[str, float], dtype: str) -> str:
    return ", ".join(f"{k} = {fmt(v, dtype)}" for k, v in params.items())


# ---------------------------------------------------------------- live progress


class LiveProgress:
    """History rows and a progress bar on stderr, shown once a run has taken about a second.

    Only on a terminal: piped or captured stderr stays clean.
    """

    def __init__(self, console: Console, names: tuple[str, ...], dtype: str, delay_s: float = 1.0) -> None:
        self.console = console
        self.names = names
        self.dtype = dtype
        self.rows: list[Row] = []
        self.enabled = console.is_terminal
        self.began = time.perf_counter()
        self.delay_s = delay_s
        self.live: Live | None = None
        self.bar = Progress(TextColumn("steps"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        self.task = self.bar.add_task("minimize", total=None)

    def row(self, row: Row) -> None:
        self.rows.append(row)
        self._refresh()

    def progress(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)
        self._refresh()

    def _refresh(self) -> None:
        if not self.enabled:
            return
        if self.live is None and time.perf_counter() - self.began >= self.delay_s:
            self.live = Live(self._view(), console=self.console, transient=True, refresh_per_second=8)
            self.live.start()
        if self.live is not None:
            self.live.update(self._view())

    def _view(self) -> Group:
        return Group(history_table(self.rows[-20:], self.names, self.dtype), self.bar)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchProgress:
    """A progress bar on stderr for ``grad --at-file``, shown once a run has taken about a
    second: points done, and bytes of the file read (of its size, when it is a file).

    Only on a terminal: piped or captured stderr stays clean.
    """

    def __init__(self, console: Console, reader: Any, delay_s: float = 1.0) -> None:
        self.console = console
        self.reader = reader
        self.enabled = console.is_terminal
        self.began = time.perf_counter()
        self.delay_s = delay_s
        self.bar = Progress(
            TextColumn("{task.fields[points]:,} points"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("grad", total=reader.size, points=0)
        self.shown = False

    def advance(self, points: int) -> None:
        if not self.enabled:
            return
        self.bar.update(self.task, completed=self.reader.bytes_read, points=points)
        if not self.shown and time.perf_counter() - self.began >= self.delay_s:
            self.bar.start()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.bar.stop()
            self.shown = False

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
