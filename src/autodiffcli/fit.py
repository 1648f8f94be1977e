"""``autodiff fit``: a model's parameters fitted to a table of data, with the statistics
people report. Settings in, a FitReport out; nothing is printed here.

The model is an equation ``lhs = rhs`` (``y`` when there is no ``=``). Names that are
columns of the data are data; every other name is a parameter. The residuals
``scale * (lhs - rhs)`` and their Jacobian come from TensorFlow in one batched pass; the
method is solve/least_squares.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import sympy

from .errors import ExitCode, UsageError, did_you_mean, listing
from .interrupts import deferred
from .language.parse import parse_equation
from .language.printing import canonical
from .points import Table, TableReader
from .settings import FitSettings, number, parse_assignments, parse_bounds

if TYPE_CHECKING:
    from .solve import least_squares

DISTINCT = 1e-6  # two local fits are the same when every parameter agrees to this (relative)
FLAT = 1e-12  # Hessian eigenvalue / largest below this: a direction the data do not determine (as NEAR_SINGULAR)
NEAR_SINGULAR = 1e-12  # 1 / condition number of the column-scaled J^T J below this: nearly singular
RANK_TOL = 1e-13  # singular values of the column-scaled J below this share of the largest: rank-deficient


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    stderr: float  # nan where it is not defined (rank-deficient, no degrees of freedom)
    t: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class LocalFit:
    """A distinct local fit found from some start (--starts): its parameters and RSS."""

    values: dict[str, float]
    rss: float
    starts: int  # how many starts ended there


@dataclass
class FitReport:
    model: str  # the text given
    response: str  # the left side as read
    expression: str  # the right side as read
    predictors: tuple[str, ...]  # data columns on the right side
    parameters: list[Parameter]
    fixed: dict[str, float]
    rss: float
    residual_sd: float
    dof: int
    n: int
    r2: float | None
    correlation: list[list[float]] | None
    evaluations: int
    status: str  # converged | not converged | interrupted
    verdict: str  # minimum | not a minimum | flat | unknown
    warnings: list[str]
    level: float
    weighting: str  # none | sigma | weights
    fits: list[LocalFit] = field(default_factory=list)
    # for the pictures: the response, fitted values and residuals per row, and the predictors
    observed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fitted: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, float]:
        return {p.name: p.value for p in self.parameters}

    @property
    def trusted(self) -> bool:
        return self.status == "converged" and self.verdict == "minimum" and not self.warnings

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.trusted else ExitCode.NOT_CONVERGED


@dataclass(frozen=True)
class Model:
    """The equation, read: which names are data and which are parameters."""

    lhs: sympy.Expr
    rhs: sympy.Expr
    parameters: tuple[str, ...]  # to fit, in the order they first appear in the text
    fixed: dict[str, float]
    predictors: tuple[str, ...]
    vanished: tuple[str, ...]  # names written in the model that simplification removed


def read_model(settings: FitSettings, table: Table) -> Model:
    lhs, rhs = parse_equation(settings.model)
    columns = list(table.names)
    if lhs is None:
        if "y" not in columns:
            raise UsageError(
                f"the model has no '=' and the data has no column y (columns: {listing(columns)}); "
                f"write the response on the left, as in {columns[0]} = ..."
            )
        lhs = sympy.Symbol("y", real=True)
    for name in sorted(s.name for s in lhs.free_symbols):
        if name not in columns:
            raise UsageError(
                f"the left side names {name!r}, which is not a column of {table.where}"
                f"{did_you_mean(name, columns)} (columns: {listing(columns)})"
            )
    names = {s.name for s in rhs.free_symbols}
    predictors = tuple(c for c in columns if c in names)
    written = _names_in_order(settings.model)
    unknown = [n for n in written if n in names and n not in columns]
    for name in settings.fixed:
        if name in columns:
            raise UsageError(f"-p/--param: {name!r} is a column of the data, not a parameter")
        if name not in unknown:
            raise UsageError(
                f"-p/--param: {name!r} is not a parameter of the model (parameters: {listing(unknown)})"
                + did_you_mean(name, unknown)
            )
    parameters = tuple(n for n in unknown if n not in settings.fixed)
    if not predictors:
        hints = [f"{p!r} is one letter off column {c!r}" for p in unknown for c in columns if _one_off(p, c)]
        hint = f"; {hints[0]}" if hints else ""
        raise UsageError(f"the right side uses no column of the data (columns: {listing(columns)}){hint}")
    if not parameters:
        raise UsageError("the model has no parameters to fit: every name on the right side is a column or fixed by -p")
    vanished = tuple(n for n in written if n not in names and n not in columns and n not in ("pi", "E"))
    vanished = tuple(n for n in vanished if not _is_function(n))
    return Model(lhs, rhs, parameters, dict(settings.fixed), predictors, vanished)


def _names_in_order(text: str) -> list[str]:
    """The names the model writes, in order, as the lexer reads them (``e`` is a name; the
    ``e`` of ``1e5`` is part of a number)."""
    from .language.lexer import tokenize

    seen: list[str] = []
    for side in text.replace("[", "(").replace("]", ")").split("="):
        for token in tokenize(side):
            if token.kind == "name" and token.text not in seen:
                seen.append(token.text)
    return seen


def _is_function(name: str) -> bool:
    from .language.vocabulary import CALLABLE

    return name in CALLABLE


def _one_off(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one letter (changed, added or removed) and share one."""
    if a == b or abs(len(a) - len(b)) > 1 or not set(a) & set(b):
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:k] + long_[k + 1 :] == short for k in range(len(long_)))


def _lines(table: Table, rows: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(table.lines[r])) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    word = "line" if len(rows) == 1 else "lines"
    return f"{word} {shown}{more}"


def fit(settings: FitSettings) -> FitReport:
    """Read the data, check the model against it, fit, and compute the statistics."""
    table = TableReader(settings.data, settings.columns).read()
    model = read_model(settings, table)
    used = sorted({s.name for s in (model.lhs - model.rhs).free_symbols} & set(table.names))
    extra = [c for c in (settings.sigma, settings.weights) if c]
    for c in extra:
        if c not in table.names:
            option = "--sigma" if c == settings.sigma else "--weights"
            raise UsageError(
                f"{option}: {c!r} is not a column of {table.where}{did_you_mean(c, list(table.names))} "
                f"(columns: {listing(table.names)})"
            )
    for c in used + extra:
        bad = np.flatnonzero(~np.isfinite(table.column(c)))
        if len(bad):
            raise UsageError(
                f"--data {table.where}: column {c} is not a finite number on {_lines(table, bad)} "
                "(rows are never dropped: remove or fix them)"
            )
    n, d = len(table.values), len(model.parameters)
    if settings.weights:
        n = int(np.count_nonzero(table.column(settings.weights)))  # rows of weight 0 are not observations
    if n < d:
        raise UsageError(f"--data {table.where} has {n} observations, fewer than the {d} parameters to fit")
    scale, weighting = None, "none"
    if settings.sigma:
        sigma = table.column(settings.sigma)
        bad = np.flatnonzero(~(sigma > 0))
        if len(bad):
            raise UsageError(f"--sigma: column {settings.sigma} is not positive on {_lines(table, bad)}")
        scale, weighting = 1.0 / sigma, "sigma"
    if settings.weights:
        weights = table.column(settings.weights)
        bad = np.flatnonzero(~(weights >= 0))
        if len(bad):
            raise UsageError(f"--weights: column {settings.weights} is negative on {_lines(table, bad)}")
        scale, weighting = np.sqrt(weights), "weights"
    return _fit(settings, table, model, scale, weighting)


def _fit(settings: FitSettings, table: Table, model: Model, scale: np.ndarray | None, weighting: str) -> FitReport:
    from .calculus.residuals import ResidualModel, Unsupported, extended_precision, precise
    from .solve import least_squares

    params = list(model.parameters)
    fixed = {sympy.Symbol(k, real=True): sympy.Float(v, 17) for k, v in model.fixed.items()}
    expr = (model.lhs - model.rhs).xreplace(fixed)
    data = {c: table.column(c) for c in table.names if sympy.Symbol(c, real=True) in expr.free_symbols}
    residuals = ResidualModel(expr, params, data, scale, settings.dtype)

    origin = {p: 1.0 for p in params}
    if settings.start:
        origin.update(_start(settings.start, params, model))
    bounds = parse_bounds(settings.bounds, params)
    lower = np.array([bounds.get(p, (-np.inf, np.inf))[0] for p in params])
    upper = np.array([bounds.get(p, (-np.inf, np.inf))[1] for p in params])
    x0 = np.array([origin[p] for p in params])
    if bounds:
        x0 = np.clip(x0, lower, upper)
    r0, _ = residuals.residuals_and_jacobian(x0)
    bad = np.flatnonzero(~np.isfinite(r0))
    if len(bad):
        at = ",".join(f"{p}={v:g}" for p, v in zip(params, x0, strict=True))
        raise UsageError(
            f"the model is not finite at the start {at} on {_lines(table, bad)} of {table.where}; "
            "give a start where it is, with --from"
        )
    starts = [x0, *_random_starts(x0, lower, upper, settings.starts - 1, settings.seed)]

    precise_residuals: Callable[[np.ndarray], np.ndarray] | None = None
    if table.precise is not None and settings.dtype == "float64" and extended_precision():
        try:
            f = precise(expr)
            long_data = {c: table.precise[:, table.names.index(c)] for c in data}
            long_scale = None if scale is None else _long_scale(table, settings)
            ones = np.ones(len(table.values), dtype=np.longdouble)

            def long_residuals(p: np.ndarray) -> np.ndarray:
                r = f({**long_data, **dict(zip(params, p, strict=True))}) * ones
                return r if long_scale is None else r * long_scale

            precise_residuals = long_residuals
        except Unsupported:
            precise_residuals = None

    with deferred() as request:
        solution = least_squares.solve(
            residuals,
            starts,
            lower if bounds else None,
            upper if bounds else None,
            precise_residuals,
            request.check,
            settings.seed,
            single=settings.dtype == "float32",
            exact=_exact_residuals(expr, params, table, settings) if precise_residuals is not None else None,
        )
    lost = _recheck_in_float64(solution, expr, params, data, scale) if settings.dtype == "float32" else None
    report = _report(settings, table, model, residuals, solution, weighting, scale)
    if lost is not None:
        report.warnings.append(f"Warning: {lost}")
    return report


SINGLE_RSS_TOL = 1e-3  # float32's sum of squares may differ from float64's at the same point by this share


def _recheck_in_float64(
    solution: least_squares.Solution,
    expr: sympy.Expr,
    params: list[str],
    data: dict[str, np.ndarray],
    scale: np.ndarray | None,
) -> str | None:
    """A float32 fit's statistics from float64 residuals at the point it found; a warning where
    float32's sum of squares was far from them (data or model values float32 rounds away: y
    near 1e9 rounds to 1e9, every residual 0, and the start looked like a perfect fit)."""
    from .calculus.residuals import ResidualModel

    best = solution.best
    if best is None or solution.status == "interrupted":
        return None
    r, jac = ResidualModel(expr, params, data, scale, "float64").residuals_and_jacobian(best.x.astype(np.float64))
    if not (np.isfinite(r).all() and np.isfinite(jac).all()):
        return None
    single = float(best.rss)
    best.residuals, best.jacobian, best.rss = r, jac, float(np.sum(r * r))
    best.hessian = None  # the verdict's Hessian comes from the float32 model at this point
    if abs(single - best.rss) <= SINGLE_RSS_TOL * best.rss:
        return None
    return (
        f"float32 cannot fit this: at the parameters found the sum of squares is {best.rss:.6g} in float64, "
        f"{single:.6g} in float32 (data or model values lost to float32's rounding); use --dtype float64"
    )


class _ExactResiduals:
    """The residuals of a small table in 40-digit arithmetic, from each value's own text; the
    table is read into mpmath numbers on first use (most fits never need it)."""

    DIGITS = 40
    CERTIFY = 1e-9  # the long double sum of squares is trusted when its error bound is below this share

    def __init__(self, f: object, params: list[str], table: Table, used: list[str], settings: FitSettings,
                 magnitude: np.ndarray) -> None:  # fmt: skip
        self.f, self.params, self.table, self.used, self.settings = f, params, table, used, settings
        self.magnitude = magnitude
        self.rows: list[dict[str, object]] | None = None
        self.scale: list[object] | None = None

    def needed(self, r: np.ndarray) -> bool:
        """Whether the long double residuals' rounding (some units in the last place of each
        term) could move the sum of squares by more than CERTIFY of itself."""
        eps = float(np.finfo(np.longdouble).eps)
        r64 = np.abs(r.astype(np.float64))
        rss = float(np.sum(r64 * r64))
        return bool(rss == 0 or np.sum(2 * r64 * 8 * eps * self.magnitude) > self.CERTIFY * rss)

    def _read(self) -> list[dict[str, object]]:
        import mpmath

        table, settings = self.table, self.settings
        assert table.cells is not None
        where = [table.names.index(c) for c in self.used]
        with mpmath.workdps(self.DIGITS):
            rows = [{c: mpmath.mpf(cells[k]) for c, k in zip(self.used, where, strict=True)} for cells in table.cells]
            if settings.sigma:
                k = table.names.index(settings.sigma)
                self.scale = [1 / mpmath.mpf(cells[k]) for cells in table.cells]
            elif settings.weights:
                k = table.names.index(settings.weights)
                self.scale = [mpmath.sqrt(mpmath.mpf(cells[k])) for cells in table.cells]
        return rows

    def residuals(self, p: Sequence[str]) -> list[object]:
        import mpmath

        if self.rows is None:
            self.rows = self._read()
        with mpmath.workdps(self.DIGITS):
            values = {name: mpmath.mpf(v) for name, v in zip(self.params, p, strict=True)}
            out = [self.f({**row, **values}) for row in self.rows]  # type: ignore[operator]
            return out if self.scale is None else [r * s for r, s in zip(out, self.scale, strict=True)]


def _exact_residuals(
    expr: sympy.Expr, params: list[str], table: Table, settings: FitSettings
) -> _ExactResiduals | None:
    """For a table of a few thousand rows at most whose values kept their text."""
    if table.cells is None or table.precise is None:
        return None
    from .calculus.residuals import Unsupported, exact

    try:
        f = exact(expr)
    except Unsupported:
        return None
    used = [c for c in table.names if sympy.Symbol(c, real=True) in expr.free_symbols]
    where = [table.names.index(c) for c in used]
    magnitude = np.sum(np.abs(table.values[:, where]), axis=1) if where else np.ones(len(table.values))
    if settings.sigma:
        magnitude = magnitude / np.abs(table.column(settings.sigma))
    elif settings.weights:
        magnitude = magnitude * np.sqrt(np.abs(table.column(settings.weights)))
    return _ExactResiduals(f, params, table, used, settings, magnitude)


def _start(text: str, params: list[str], model: Model) -> dict[str, float]:
    """``--from b1=500,b2=1e-4`` (or one number for a model with one parameter)."""
    if "=" not in text and len(params) == 1:
        return {params[0]: number(text, "--from")}
    given = parse_assignments([text], "--from")
    for name in given:
        if name not in params:
            why = " (it is held by -p)" if name in model.fixed else ""
            why = why or (" (it is a column of the data)" if name in model.predictors else "")
            raise UsageError(
                f"--from: {name!r} is not a parameter of the model{why} (parameters: {listing(params)})"
                + did_you_mean(name, params)
            )
    return given


def _long_scale(table: Table, settings: FitSettings) -> np.ndarray:
    assert table.precise is not None
    if settings.sigma:
        return np.longdouble(1) / table.precise[:, table.names.index(settings.sigma)]
    return np.sqrt(table.precise[:, table.names.index(str(settings.weights))])


def _random_starts(x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """Uniform in the box where both bounds are given; elsewhere a factor of up to 10 from
    the start either way (uniform in [-1, 1] where the start is 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        factor = 10.0 ** rng.uniform(-1.0, 1.0, size=x0.shape)
        x = np.where(x0 != 0, x0 * factor, rng.uniform(-1.0, 1.0, size=x0.shape))
        boxed = np.isfinite(lower) & np.isfinite(upper)
        x = np.where(boxed, rng.uniform(np.where(boxed, lower, 0), np.where(boxed, upper, 1)), x)
        out.append(np.clip(x, lower, upper))
    return out


def _report(settings, table, model, residuals, solution, weighting, scale) -> FitReport:  # type: ignore[no-untyped-def]
    from scipy import stats

    params = list(model.parameters)
    # a row of weight 0 is not an observation (R's nls: n = sum(w > 0)); the degrees of
    # freedom, the residual variance and the t quantile count the others
    n = len(table.values) if scale is None else int(np.count_nonzero(scale))
    d = len(params)
    dof = n - d
    warnings: list[str] = []
    best = solution.best
    observed = _evaluate_lhs(model, table)
    if best is None:
        nan = float("nan")
        parameters = [Parameter(p, nan, nan, nan, (nan, nan)) for p in params]
        return FitReport(
            settings.model, canonical(model.lhs), canonical(model.rhs), model.predictors, parameters, model.fixed,
            nan, nan, dof, n, None, None, solution.evaluations, solution.status, "unknown",
            ["Warning: no start gave a finite sum of squares"], settings.level, weighting,
        )  # fmt: skip
    x, jac, r = best.x, best.jacobian, best.residuals
    rss = float(best.rss)
    s2 = rss / dof if dof > 0 else float("nan")
    cov, rank_ok, cond = _covariance(jac)
    if weighting != "sigma" and cov is not None:
        cov = cov * s2
    stderr = np.sqrt(np.clip(np.diag(cov), 0, None)) if cov is not None else np.full(d, np.nan)
    if weighting == "sigma":
        quantile = float(stats.norm.ppf(0.5 + settings.level / 2))
    else:
        quantile = float(stats.t.ppf(0.5 + settings.level / 2, dof)) if dof > 0 else float("nan")
    parameters = []
    for j, name in enumerate(params):
        se = float(stderr[j])
        t = float(x[j] / se) if se > 0 else float("nan")
        parameters.append(
            Parameter(name, float(x[j]), se, t, (float(x[j] - quantile * se), float(x[j] + quantile * se)))
        )
    correlation = None
    if cov is not None and np.all(stderr > 0) and np.all(np.isfinite(stderr)):
        correlation = (cov / np.outer(stderr, stderr)).tolist()

    if solution.status == "not converged":
        warnings.append(
            "the fit did not converge: no run ended at a point where the parameters stopped changing; "
            "try --from nearer the answer or --starts 20"
        )
    if not rank_ok or cond < NEAR_SINGULAR:
        involved = _undetermined(jac, params)
        what = "singular" if not rank_ok else "nearly singular"
        warnings.append(
            f"J^T J is {what}: the data cannot determine {listing(involved)} separately "
            "(standard errors and correlations are not meaningful)"
        )
    bad_se = [p.name for p in parameters if not math.isfinite(p.stderr)]
    if bad_se and rank_ok:
        why = " (no degrees of freedom left: as many observations as parameters)" if dof <= 0 else ""
        warnings.append(f"the standard error of {listing(bad_se)} is not finite{why}")
    if best.held:
        names = [params[j] for j in best.held]
        warnings.append(
            f"{listing(names)} {'is' if len(names) == 1 else 'are'} held on {'its' if len(names) == 1 else 'their'} "
            "bound (the sum of squares falls beyond it): the standard error and interval are those of a free "
            "parameter and do not hold there"
        )
    if model.vanished:
        warnings.append(
            f"parameter {listing(model.vanished)} does not appear in the model once it is read (it cancels out)"
        )

    verdict = "unknown"
    try:
        hess = best.hessian if best.hessian is not None else residuals.hessian(x)  # at the polish's start
        size = np.sqrt(np.abs(np.diag(hess)))
        size = np.where(size > 0, size, 1.0)
        lam = np.linalg.eigvalsh(hess / np.outer(size, size))  # in the parameters' own units
        top = max(abs(lam[-1]), 1e-300)
        if np.all(lam > FLAT * top):
            verdict = "minimum"
        elif np.any(lam < -FLAT * top):
            verdict = "not a minimum"
        else:
            verdict = "flat"
    except np.linalg.LinAlgError:
        verdict = "unknown"
    if verdict != "minimum" and solution.status != "interrupted" and rank_ok:
        warnings.append(
            f"the point found is {'a saddle, ' if verdict == 'not a minimum' else ''}"
            "not a strict minimum of the sum of squares"
        )

    weights_all = np.ones(n) if scale is None else scale**2
    r2 = None
    mean = np.sum(weights_all * observed) / np.sum(weights_all)
    tss = float(np.sum(weights_all * (observed - mean) ** 2))
    if tss > 0:
        r2 = 1.0 - rss / tss
        if r2 < 0:
            warnings.append(
                f"R^2 is {r2:.3g}: the model fits the data worse than their mean does; a poor local minimum "
                "is likely: try --starts 20 or --from nearer the answer"
            )
    if scale is None:
        unscaled = r
    elif np.all(scale != 0):
        unscaled = r / scale
    else:  # a row of weight 0 has a residual of 0 whatever the fit: its own comes from the model
        unscaled = residuals.unweighted(x)
    fits = _local_fits(solution, params)
    return FitReport(
        settings.model, canonical(model.lhs), canonical(model.rhs), model.predictors, parameters, model.fixed,
        rss, math.sqrt(s2) if dof > 0 else float("nan"), dof, n, r2, correlation, solution.evaluations,
        solution.status, verdict, [f"Warning: {w}" for w in warnings], settings.level, weighting, fits,
        observed, observed - unscaled, unscaled, {c: table.column(c) for c in model.predictors},
    )  # fmt: skip


def _evaluate_lhs(model: Model, table: Table) -> np.ndarray:
    """The response per row: the left side evaluated on the data (NumPy, float64)."""
    if model.lhs.is_Symbol:
        return table.column(model.lhs.name)
    from .calculus.residuals import precise

    f = precise(model.lhs)
    env = {c: table.column(c).astype(np.longdouble) for c in table.names}
    return np.asarray(f(env) * np.ones(len(table.values)), dtype=np.float64)


def _covariance(jac: np.ndarray) -> tuple[np.ndarray | None, bool, float]:
    """(J^T J)^-1 through the SVD of J (its R factor) with its columns scaled to unit length, whether J has
    full rank, and 1/cond of the scaled J^T J (independent of the parameters' units)."""
    norms = np.linalg.norm(jac, axis=0)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return None, False, 0.0
    try:
        # J = QR first: R has J's singular values and right vectors, and a tall J's QR costs
        # half its SVD (10^6 rows: 25 ms against 50 ms)
        _, sv, vt = np.linalg.svd(np.linalg.qr(jac / norms, mode="r"), full_matrices=False)
    except np.linalg.LinAlgError:
        return None, False, 0.0
    if not np.all(np.isfinite(sv)) or sv[0] == 0:
        return None, False, 0.0
    inverse_cond = float((sv[-1] / sv[0]) ** 2)
    if sv[-1] <= RANK_TOL * sv[0]:
        return None, False, inverse_cond
    scaled = (vt.T / sv**2) @ vt
    return scaled / np.outer(norms, norms), True, inverse_cond


def _undetermined(jac: np.ndarray, params: list[str]) -> list[str]:
    """The parameters in the direction J does not see (its last right singular vector)."""
    norms = np.linalg.norm(np.nan_to_num(jac), axis=0)
    if np.any(norms == 0):
        return [p for p, n in zip(params, norms, strict=True) if n == 0]
    try:
        _, _, vt = np.linalg.svd(np.nan_to_num(jac) / norms, full_matrices=False)
    except np.linalg.LinAlgError:
        return params
    v = np.abs(vt[-1])
    return [p for p, w in zip(params, v, strict=True) if w > 0.1 * v.max()]


def _local_fits(solution, params: list[str]) -> list[LocalFit]:  # type: ignore[no-untyped-def]
    groups: list[list] = []
    for run in sorted((r for r in solution.runs if r.accepted), key=lambda r: r.rss):
        for group in groups:
            ref = group[0].x
            if np.all(np.abs(run.x - ref) <= DISTINCT * np.maximum(np.abs(ref), 1e-12)):
                if run.start not in {g.start for g in group}:
                    group.append(run)
                break
        else:
            groups.append([run])
    return [
        LocalFit({p: float(v) for p, v in zip(params, g[0].x, strict=True)}, float(g[0].rss), len(g)) for g in groups
    ]
