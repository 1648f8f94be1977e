"""Nonlinear least squares to certified accuracy: MINPACK's Levenberg-Marquardt (through
SciPy's ``least_squares``) driven by the exact Jacobian, a Newton polish with the exact
Hessian of the sum of squares, and retries when a run did not end at a stationary point.

Why this shape. Levenberg-Marquardt is the method the NIST problems were designed around and
MINPACK's implementation is the best-kept one; with an exact Jacobian it converges where
finite differences stall. Its own tests (relative reduction of the sum of squares and of the
step) say when progress stopped, not that the answer is right, so they are set as tight as
MINPACK allows and the answer is then checked and finished here:

* the residuals are recomputed in extended precision (NumPy's long double, from the data's
  own text), since in float64 a residual that is small beside the data (Lanczos1's are 1e-13
  beside values of 2.5) keeps only a few correct digits;
* Newton steps with the exact Hessian of the sum of squares (quadratic convergence whatever
  the size of the residuals) run until a step no longer lowers the sum of squares;
* the point is accepted when the Gauss-Newton step that remains moves no parameter by more
  than ``STEP_TOL`` of its standard error or ``VALUE_TOL`` of its value (so every digit that
  the data determine has stopped changing), and the Jacobian has full rank. Otherwise the
  next attempt runs: the trust-region method, Levenberg-Marquardt without Jacobian scaling,
  dogleg, then restarts spread around the start (a factor of 10 either way per parameter).

A large table first tries Levenberg-Marquardt on the normal equations (normal_lm.py), whose
sums TensorFlow computes over the rows, then the same Newton polish and the same tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import normal_lm

STEP_TOL = 1e-6  # remaining step / standard error
VALUE_TOL = 1e-12  # remaining step / |value|
# float32 residuals carry some 7 digits, so the step that remains is noise above these
STEP_TOL_32 = 1e-3
VALUE_TOL_32 = 1e-5
RANK_TOL = 1e-13  # singular values of the column-scaled J below this share of the largest: rank-deficient
MAX_EVALUATIONS = 3000  # per run of least_squares
POLISH_STEPS = 20
# (method, x_scale) in the order they are tried from each start
ATTEMPTS: tuple[tuple[str, str | float], ...] = (("lm", "jac"), ("trf", "jac"), ("lm", 1.0), ("dogbox", "jac"))
RESTARTS = 12  # spread-out starts after every attempt from the given ones failed


class Exact(Protocol):
    """Residuals in many-digit arithmetic from the data's own text (a small table)."""

    def needed(self, r: np.ndarray) -> bool:
        """Whether long double residuals ``r`` leave the sum of squares uncertain."""
        ...

    def residuals(self, p: Sequence[str]) -> list[Any]:
        """The residuals (mpmath numbers) at parameters given as decimal text."""
        ...


EXACT_STEPS = 6


class Residuals(Protocol):
    evaluations: int

    def residuals_and_jacobian(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def hessian(self, p: np.ndarray) -> np.ndarray: ...

    # a large table: sum(r**2), J^T J and J^T r summed inside TensorFlow (normal_lm)
    normal: bool

    def normal_equations(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...


@dataclass
class Run:
    """One local fit: where it ended and whether it passed the tests."""

    x: np.ndarray  # float64
    precise_x: np.ndarray  # long double where refined, else float64
    rss: float
    residuals: np.ndarray
    jacobian: np.ndarray
    stationary: bool
    full_rank: bool
    method: str
    start: int  # index of the start it came from
    message: str = ""
    hessian: np.ndarray | None = None  # of the sum of squares, where the polish computed it
    held: tuple[int, ...] = ()  # parameters on a bound that the sum of squares pushes against

    @property
    def accepted(self) -> bool:
        return self.stationary and self.full_rank and bool(np.isfinite(self.rss))


@dataclass
class Solution:
    best: Run | None
    runs: list[Run] = field(default_factory=list)
    status: str = "converged"  # converged | not converged | interrupted
    evaluations: int = 0


class Interrupted(Exception):
    """Ctrl-C between two evaluations; the solver returns the best point seen."""


def solve(
    model: Residuals,
    starts: Sequence[np.ndarray],
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    precise: Callable[[np.ndarray], np.ndarray] | None = None,
    check: Callable[[], None] | None = None,
    seed: int = 0,
    single: bool = False,
    exact: Exact | None = None,
) -> Solution:
    """Fit from each start in turn (every attempt of ATTEMPTS until one is accepted), then,
    if none was, from RESTARTS spread-out starts. ``precise(p)`` gives the residuals in long
    double; ``check()`` raises KeyboardInterrupt when Ctrl-C was pressed; ``single``: the
    residuals are float32, and the tests of acceptance are those of its precision."""
    tols = (STEP_TOL_32, VALUE_TOL_32) if single else (STEP_TOL, VALUE_TOL)
    solution = Solution(best=None)
    seen: dict[str, object] = {"x": None, "rss": np.inf}

    def evaluate(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if check is not None:
            try:
                check()
            except KeyboardInterrupt:
                raise Interrupted from None
        r, jac = model.residuals_and_jacobian(p)
        rss = float(r @ r)
        if np.isfinite(rss) and rss < seen["rss"]:  # type: ignore[operator]
            seen["x"], seen["rss"] = p.copy(), rss
        return r, jac

    def normal(p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if check is not None:
            try:
                check()
            except KeyboardInterrupt:
                raise Interrupted from None
        rss, a, g = model.normal_equations(p)
        if np.isfinite(rss) and rss < seen["rss"]:  # type: ignore[operator]
            seen["x"], seen["rss"] = p.copy(), rss
        return rss, a, g

    boxed = lower is not None and upper is not None and (np.isfinite(lower).any() or np.isfinite(upper).any())

    def attempt_all(x0: np.ndarray, index: int, attempts: Sequence[tuple[str, str | float]]) -> bool:
        if model.normal and not boxed and index < len(starts):  # the restarts run MINPACK alone
            run = _run_normal(normal, model, x0, index, tols)
            if run is not None:
                solution.runs.append(run)
                if run.accepted:
                    return True
        for method, x_scale in attempts:
            run = _run(evaluate, model, x0, method, x_scale, lower, upper, precise, index, tols, exact)
            if run is None:
                continue
            solution.runs.append(run)
            if run.accepted:
                return True
        return False

    try:
        accepted = False
        for index, x0 in enumerate(starts):
            accepted = attempt_all(np.asarray(x0, dtype=np.float64), index, ATTEMPTS) or accepted
        if not accepted:
            rng = np.random.default_rng(seed)
            for k in range(RESTARTS):
                x0 = _spread(np.asarray(starts[0], dtype=np.float64), rng, lower, upper)
                if attempt_all(x0, len(starts) + k, ATTEMPTS[:2]):
                    break
    except Interrupted:
        solution.status = "interrupted"
        if seen["x"] is not None:
            x = np.asarray(seen["x"])
            r, jac = model.residuals_and_jacobian(x)
            solution.runs.append(Run(x, x, float(r @ r), r, jac, False, True, "interrupted", -1))
    solution.evaluations = model.evaluations
    finite = [run for run in solution.runs if np.isfinite(run.rss)]
    good = [run for run in finite if run.accepted]
    pool = good or finite
    if pool:
        solution.best = min(pool, key=lambda run: run.rss)
    if solution.status != "interrupted":
        solution.status = "converged" if good else "not converged"
    return solution


def _spread(x0: np.ndarray, rng: np.random.Generator, lower: np.ndarray | None, upper: np.ndarray | None) -> np.ndarray:
    """A start a factor of up to 10 either way from ``x0`` (zeros: uniform in [-1, 1]), in the box."""
    factor = 10.0 ** rng.uniform(-1.0, 1.0, size=x0.shape)
    x = np.where(x0 != 0, x0 * factor, rng.uniform(-1.0, 1.0, size=x0.shape))
    if lower is not None and upper is not None:
        inside = np.clip(x, lower, upper)
        x = np.where(np.isfinite(inside), inside, x)
    return x


def _run(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    model: Residuals,
    x0: np.ndarray,
    method: str,
    x_scale: str | float,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
    precise: Callable[[np.ndarray], np.ndarray] | None,
    index: int,
    tols: tuple[float, float] = (STEP_TOL, VALUE_TOL),
    exact: Exact | None = None,
) -> Run | None:
    from scipy.optimize import least_squares

    boxed = lower is not None and upper is not None and (np.isfinite(lower).any() or np.isfinite(upper).any())
    if boxed and method == "lm":
        return None  # MINPACK has no bounds; trf and dogbox keep them
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = evaluate(x)
        return cache[key]

    r0, _ = both(x0)
    if not np.all(np.isfinite(r0)):
        return None
    bounds = (lower, upper) if boxed else (-np.inf, np.inf)
    tol = np.finfo(np.float64).eps  # as tight as MINPACK accepts: the tests below decide
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            found = least_squares(
                lambda x: _finite(both(x)[0]),
                x0,
                jac=lambda x: _finite(both(x)[1]),
                method=method,
                x_scale=x_scale,
                bounds=bounds,
                xtol=tol,
                ftol=tol,
                gtol=tol,
                max_nfev=MAX_EVALUATIONS,
            )
        except (ValueError, np.linalg.LinAlgError):
            return None
    x = found.x
    box = (lower, upper) if boxed else (None, None)
    return polish(model, x, method, index, *box, precise, found.message, tols, exact)


def _run_normal(
    normal: normal_lm.Normal, model: Residuals, x0: np.ndarray, index: int, tols: tuple[float, float]
) -> Run | None:
    """A large table: Levenberg-Marquardt on the normal equations, then Newton and
    Gauss-Newton steps while S falls, then the tests of acceptance."""
    with np.errstate(all="ignore"):
        point = normal_lm.levenberg_marquardt(normal, x0, MAX_EVALUATIONS)
        if point is None:
            return None
        x, rss, a, g = point.x, point.rss, point.a, point.g
        hessian = _hessian(model, x)
        for _ in range(POLISH_STEPS):
            moved = False
            for step in (_newton_step(hessian, g), _normal_step(a, g)):
                if step is None or not np.all(np.isfinite(step)):
                    continue
                trial = x + step
                rss_t, a_t, g_t = normal(trial)
                if normal_lm.finite(rss_t, a_t, g_t) and rss_t <= rss:
                    moved = bool(np.any(trial != x))
                    x, rss, a, g = trial, rss_t, a_t, g_t
                    break
            if not moved:
                break
        r, jac = model.residuals_and_jacobian(x)
        n, d = jac.shape
        size = np.sqrt(np.diag(a))
        well = bool(np.all(size > 0)) and _well_conditioned(a / np.outer(size, size))
        if well:  # J^T J resolves the step and the standard errors (else J's SVD decides, below)
            step = _normal_step(a, g)
            inverse = np.linalg.inv(a)
            stderr = np.sqrt(np.clip(np.diag(inverse), 0, None) * rss / max(n - d, 1))
            full_rank = True
        else:
            full_rank, stderr = _rank_and_scale(jac, r)
            step = _gauss_newton_step(jac, r)
        stationary = bool(
            full_rank
            and step is not None
            and np.all((np.abs(step) <= tols[0] * stderr) | (np.abs(step) <= tols[1] * np.abs(x)))
        )
    return Run(x, x, float(rss), r, jac, stationary, full_rank, "lm", index, point.message, hessian)


WELL_CONDITIONED = 1e-12  # smallest eigenvalue of the scaled J^T J over its largest, where its solve is trusted


def _well_conditioned(scaled: np.ndarray) -> bool:
    try:
        eigenvalues = np.linalg.eigvalsh(scaled)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(eigenvalues)) and eigenvalues[0] > WELL_CONDITIONED * eigenvalues[-1])


def _normal_step(a: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """The Gauss-Newton step -(J^T J)^-1 J^T r, the columns scaled to unit length."""
    size = np.sqrt(np.diag(a))
    if not np.all(size > 0):
        return None
    try:
        return np.linalg.solve(a / np.outer(size, size), -g / size) / size
    except np.linalg.LinAlgError:
        return None


def _finite(a: np.ndarray) -> np.ndarray:
    """Non-finite values as huge ones, so that the methods step back instead of failing
    (checked first: the copy costs more than the check on a large table)."""
    return a if np.isfinite(a).all() else np.nan_to_num(a, nan=1e150, posinf=1e150, neginf=-1e150)


def polish(
    model: Residuals,
    x: np.ndarray,
    method: str,
    index: int,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
    precise: Callable[[np.ndarray], np.ndarray] | None,
    message: str = "",
    tols: tuple[float, float] = (STEP_TOL, VALUE_TOL),
    exact: Exact | None = None,
) -> Run:
    """Newton steps with the exact Hessian (Gauss-Newton where it is not positive definite),
    the residuals in extended precision when ``precise`` is given, while the sum of squares
    falls; then the tests of acceptance."""
    p = x.astype(np.longdouble) if precise is not None else x.astype(np.float64)

    def residuals(at: np.ndarray) -> np.ndarray:
        if precise is not None:
            return precise(at)
        return model.residuals_and_jacobian(at.astype(np.float64))[0]

    with np.errstate(all="ignore"):
        r = residuals(p)
        rss = _sum_squares(r)
        hessian = _hessian(model, p)  # once: near the minimum it barely changes (chord Newton)
        for _ in range(POLISH_STEPS):
            if not np.isfinite(rss):
                break
            _, jac = model.residuals_and_jacobian(p.astype(np.float64))
            r64 = r.astype(np.float64)
            steps = [_newton_step(hessian, jac.T @ r64), _gauss_newton_step(jac, r64)]
            moved = False
            for step in steps:
                if step is None or not np.all(np.isfinite(step)):
                    continue
                trial = p + step.astype(p.dtype)
                if lower is not None and upper is not None and (np.any(trial < lower) or np.any(trial > upper)):
                    continue
                r_trial = residuals(trial)
                rss_trial = _sum_squares(r_trial)
                if np.isfinite(rss_trial) and rss_trial <= rss:
                    moved = bool(np.any(trial != p))
                    p, r, rss = trial, r_trial, rss_trial
                    break
            if not moved:
                break
        if exact is not None and precise is not None and np.isfinite(rss) and exact.needed(r):
            p, r, rss = _refine_exactly(model, exact, p, r, rss)
        r64_at, jac = model.residuals_and_jacobian(p.astype(np.float64))
        r64 = r.astype(np.float64) if precise is not None else r64_at
        full_rank, stderr = _rank_and_scale(jac, r64)
        x64 = p.astype(np.float64)
        free = ~_held(x64, jac, r64, lower, upper)  # a parameter the sum of squares pushes against its bound stays
        step = _gauss_newton_step(jac[:, free], r64)
        stationary = bool(
            full_rank
            and step is not None
            and np.all((np.abs(step) <= tols[0] * stderr[free]) | (np.abs(step) <= tols[1] * np.abs(x64[free])))
        )
    held = tuple(int(j) for j in np.flatnonzero(~free))
    return Run(
        p.astype(np.float64), p, float(rss), r64, jac, stationary, full_rank, method, index, message, hessian, held
    )


def _refine_exactly(
    model: Residuals, exact: Exact, p: np.ndarray, r: np.ndarray, rss: np.floating
) -> tuple[np.ndarray, np.ndarray, np.floating]:
    """Gauss-Newton steps on residuals computed exactly from the data's text, the parameters
    kept as decimal text of 30 digits, while the sum of squares falls."""
    import mpmath

    with mpmath.workdps(40):
        point = [mpmath.mpf(str(v)) for v in p]
        res = exact.residuals([mpmath.nstr(v, 30) for v in point])
        total = mpmath.fsum(v * v for v in res)
        for _ in range(EXACT_STEPS):
            _, jac = model.residuals_and_jacobian(np.array([float(v) for v in point]))
            step = _gauss_newton_step(jac, np.array([float(v) for v in res]))
            if step is None or not np.all(np.isfinite(step)):
                break
            trial = [v + mpmath.mpf(float(d)) for v, d in zip(point, step, strict=True)]
            res_trial = exact.residuals([mpmath.nstr(v, 30) for v in trial])
            total_trial = mpmath.fsum(v * v for v in res_trial)
            if not total_trial < total:
                break
            point, res, total = trial, res_trial, total_trial
        # the exact sum at p (or at a point where it is lower) is kept even where it exceeds
        # the long double one: that one is the sum rounded, not a better point
        if not mpmath.isfinite(total):
            return p, r, rss
        return (
            np.array([np.longdouble(mpmath.nstr(v, 25)) for v in point]),
            np.array([np.longdouble(mpmath.nstr(v, 25)) for v in res]),
            np.longdouble(mpmath.nstr(total, 25)),
        )


def _sum_squares(r: np.ndarray) -> np.floating:
    return np.sum(r * r)


def _hessian(model: Residuals, p: np.ndarray) -> np.ndarray | None:
    hess = model.hessian(p.astype(np.float64))
    return hess if np.all(np.isfinite(hess)) else None


def _newton_step(hess: np.ndarray | None, slope: np.ndarray) -> np.ndarray | None:
    """The Newton step on S = sum(r**2), whose gradient is 2 * slope (slope = J^T r)."""
    if hess is None:
        return None
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(chol, -2.0 * slope)
    return np.linalg.solve(chol.T, y)


def _held(
    p: np.ndarray, jac: np.ndarray, r: np.ndarray, lower: np.ndarray | None, upper: np.ndarray | None
) -> np.ndarray:
    """The parameters on a bound (within 1e-9 of its scale) that the sum of squares pushes
    against: lowering it there needs a step out of the box, so the stationarity test is over
    the others (as for a minimum on a bound in minimize)."""
    held = np.zeros(len(p), dtype=bool)
    if lower is None or upper is None:
        return held
    slope = jac.T @ r  # half the gradient of the sum of squares
    near_lo = np.isfinite(lower) & (p - lower <= 1e-9 * np.maximum(1.0, np.abs(lower)))
    near_hi = np.isfinite(upper) & (upper - p <= 1e-9 * np.maximum(1.0, np.abs(upper)))
    return (near_lo & (slope > 0)) | (near_hi & (slope < 0))


def _gauss_newton_step(jac: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    try:
        step, *_ = np.linalg.lstsq(jac, -r, rcond=None)
    except np.linalg.LinAlgError:
        return None
    return step


def _rank_and_scale(jac: np.ndarray, r: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether J has full column rank, and the standard errors s * sqrt(diag((J^T J)^-1))
    (the scale of the stationarity test; infinite where J is rank-deficient)."""
    n, d = jac.shape
    if d == 0:
        return True, np.zeros(0)
    norms = np.linalg.norm(jac, axis=0)  # columns scaled to unit length: the test ignores units
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return False, np.full(d, np.inf)
    try:
        _, sv, vt = np.linalg.svd(jac / norms, full_matrices=False)
    except np.linalg.LinAlgError:
        return False, np.full(d, np.inf)
    if not np.all(np.isfinite(sv)) or sv[0] == 0 or sv[-1] <= RANK_TOL * sv[0]:
        return False, np.full(d, np.inf)
    s2 = float(r @ r) / max(n - d, 1)
    variances = ((vt.T / sv) ** 2).sum(axis=1) / norms**2 * s2
    return True, np.sqrt(variances)
