"""SciPy's BFGS and L-BFGS-B (``scipy.optimize.minimize``) driven by tape gradients.

One compiled value-and-gradient function is shared by every start; starts run one after
another. ``lbfgs`` and ``bfgs`` from several starts run TensorFlow Probability's batched
methods instead (``tfp_batched.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..interrupts import deferred
from .batch import BatchObjective
from .types import (
    CONVERGED,
    DIVERGED,
    RUNNING,
    STALLED,
    BatchResult,
    Box,
    Reporter,
    history_row,
    newton_step_length,
    projected,
    row_length,
)

SCIPY_METHODS = {"bfgs": "BFGS", "lbfgs": "L-BFGS-B"}
ROUNDS = 8  # most SciPy runs from one start, each on f divided by a smaller curvature
HALVINGS = 40  # most halvings of a step of |x| down a plateau (as Newton's line search)


def _options(method: str, steps: int, tol: float) -> dict[str, float]:
    """SciPy's options: ``gtol`` is ``tol``, ``maxiter`` is ``steps``.

    L-BFGS-B also stops when f falls by less than ``ftol`` relative to max(|f|, 1) in one
    iteration (SciPy's default 2.2e-9): near f = 0 (Rosenbrock's f = 2.8e-12) or on a long
    flat valley (Wood's, Jennrich-Sampson's) that fires well before the gradient is within
    ``tol``. With ``ftol = 0`` it fires only when an iteration cannot lower f at all, so
    the gradient test decides, as for BFGS; ``maxfun`` follows ``maxiter`` so that
    ``--steps`` stays the limit.
    """
    if method == "lbfgs":
        return {"maxiter": steps, "gtol": tol, "ftol": 0.0, "maxfun": max(15_000, 20 * steps)}
    return {"maxiter": steps, "gtol": tol}


RESTARTS = 10  # most fresh starts of L-BFGS-B from where it stopped short of the gradient test


def _run(
    minimize: Any,
    fun: Any,
    x0: np.ndarray,
    method: str,
    bounds: Any,
    steps: int,
    tol: float,
    box: Box,
    callback: Any = None,
) -> tuple[Any, int, int]:
    """SciPy's minimize from x0; returns its last result, and iterations and evaluations summed.

    L-BFGS-B can stop short of the gradient test even with ``ftol = 0``: its line search
    ends at a step that does not lower f (Jennrich-Sampson from (0.3, 0.4) stops at
    f = 214 after an overflowing trial step spoils its memory). It then starts again
    from where it stopped with an empty memory, for as long as that lowers f and
    ``--steps`` allows (at most ``RESTARTS`` times).
    """
    import warnings

    nit = nfev = 0
    res = None
    for _ in range(RESTARTS + 1 if method == "lbfgs" else 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SciPy warns on precision loss; the status says it
            out = minimize(
                fun,
                x0 if res is None else res.x,
                jac=True,
                method=SCIPY_METHODS[method],
                bounds=bounds,
                options=_options(method, steps - nit, tol),
                callback=callback,
            )
        nit, nfev = nit + int(out.nit), nfev + int(out.nfev)
        if res is not None and not float(out.fun) < float(res.fun):  # no lower (or not finite): keep the last
            break
        res = out
        if not math.isfinite(float(out.fun)) or nit >= steps:
            break
        if float(np.max(np.abs(projected(out.x, out.jac, box)), initial=0.0)) <= tol:
            break
    return res, nit, nfev


def scipy_minimize(
    batch: BatchObjective,
    method: str,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    reporter: Reporter,
) -> BatchResult:
    """SciPy's ``minimize`` from each start in turn, with f and its gradient from one tape.

    ``converged`` is the (projected) gradient's largest component at most ``tol`` and
    Newton's step there (exact Hessian, over the variables no bound holds)
    within ``types.step_tolerance``; SciPy's success on f alone (L-BFGS-B's ftol) is
    ``stalled``. ``gtol`` is ``tol`` and ``maxiter`` is ``steps``, for all rounds together.
    Where SciPy's gradient test is met but Newton's step is long (f of scale 1e-7 from a start
    a step of 3 from its minimum; a flat start whose curvature is negative), SciPy goes on
    from there with f divided by a scale of its own (the curvature along that step times
    max(1, |x|), or where f is flatter, |grad| / max(1, |x|)), so that its gradient test, in
    those units, is a test on the step; such runs go on while f falls (at most ``ROUNDS``).
    Where such a run cannot lower f at all (f flat to rounding: 1 - exp(-(x-3)**2) at x = 10
    in float64), steps of |x|, |x|/2, ... down the gradient find a lower f, as Newton's escape
    does, and SciPy goes on from there.
    L-BFGS-B takes the bounds itself; BFGS has none
    (the CLI refuses the combination). One compiled function serves every start and every
    evaluation, so nothing is traced twice.
    """
    from scipy.optimize import minimize

    tf = batch.tf
    dtype = batch.f.dtype
    traces = [0]

    def value_and_grad(X: Any) -> tuple[Any, Any]:
        traces[0] += 1
        y, g = batch.derivatives(X, 1)
        return y[0], g[0]

    compiled = tf.function(
        value_and_grad, autograph=False, input_signature=[tf.TensorSpec([1, starts.shape[1]], dtype)]
    )
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)  # the step tolerance: types.step_tolerance

    def second_order(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The gradient and Hessian at x (d,), for the step test: once per SciPy run."""
        _, g, h = batch.derivatives(tf.constant(x[None, :], dtype), 2)
        return g.numpy()[0].astype(np.float64), h.numpy()[0].astype(np.float64)

    n = len(starts)
    x_out = np.array(starts, dtype=np.float64)
    f_out = np.full(n, np.nan)
    gnorm_out = np.full(n, np.nan)  # the projected gradient's largest component at the end point
    glen_out = np.full(n, np.nan)  # and its length, for the history row
    iterations = np.zeros(n, dtype=np.int64)
    status = np.full(n, RUNNING)
    evaluations = 0
    interrupted = False
    bounds = list(zip(box.lo, box.hi, strict=True)) if method == "lbfgs" and box.bounded else None
    best: dict[str, Any] = {}
    path = [np.array(x_out[0])] if n == 1 else []  # a single start's every iterate, for its picture

    def iterate(xk: np.ndarray) -> None:
        if n == 1:
            path.append(np.array(xk, dtype=np.float64))

    scale = [1.0]  # f is minimized as f / scale (see the rounds below)

    def downhill(x: np.ndarray, g: np.ndarray, reach: float, f: float) -> tuple[Any, float, int]:
        """The first of x - (reach / 2**k) g/|g| (k = 0, 1, ...), in the box, where f is below
        ``f``: (point, f there, evaluations), or (None, f, evaluations) when none is."""
        size = float(np.linalg.norm(g))
        if not 0 < size < math.inf:
            return None, f, 0
        for k in range(HALVINGS):
            t = np.clip(x - reach * 0.5**k * g / size, box.lo, box.hi)
            y = float(compiled(tf.constant(t[None, :], dtype))[0])
            if y < f:
                return t, y, k + 1
        return None, f, HALVINGS

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        ctrl_c.check()  # Ctrl-C stops SciPy here, at an evaluation, never inside TensorFlow's call
        y, g = compiled(tf.constant(x[None, :], dtype))
        y, g = float(y), g.numpy().astype(np.float64)
        if math.isfinite(y) and np.isfinite(g).all() and y < best.get("f", math.inf):
            best.update(f=y, x=np.array(x))
        return y / scale[0], g / scale[0]

    try:
        with deferred() as ctrl_c:
            for i in range(n):
                best.clear()
                scale[0] = 1.0
                for _ in range(ROUNDS):
                    before = f_out[i]
                    res, nit, nfev = _run(
                        minimize, fun, x_out[i], method, bounds, max(steps - int(iterations[i]), 1), tol, box, iterate
                    )
                    evaluations += nfev
                    iterations[i] += nit
                    finite = math.isfinite(float(res.fun)) and np.isfinite(res.x).all()
                    if not finite:
                        break
                    x_out[i], f_out[i] = res.x, float(res.fun) * scale[0]
                    # SciPy's success includes L-BFGS-B's stop when f falls by less than ftol relative
                    # to max(|f|, 1), which near f = 0 comes well before the gradient is within tol:
                    # that is a stall. Converged: the projected gradient within tol, and Newton's
                    # step within the step tolerance
                    jac = res.jac * scale[0]
                    pg = projected(res.x, jac, box)
                    gnorm_out[i], glen_out[i] = np.max(np.abs(pg), initial=0.0), row_length(pg)
                    g, h = second_order(res.x)
                    held = (pg != jac)[None]  # the projection cut these: a bound holds them
                    length = float(newton_step_length(g[None], h[None], held)[0])
                    reach = float(np.max(np.abs(res.x), initial=1.0))
                    settled = gnorm_out[i] <= tol and length <= max(tol, math.sqrt(eps)) * reach
                    status[i] = CONVERGED if settled else RUNNING if iterations[i] >= steps else STALLED
                    if settled or iterations[i] >= steps:
                        break
                    # SciPy's gradient test was met on a gradient too small to judge by (f of scale
                    # 1e-7, or a flat start): go on with f divided by a scale of its own, the curvature
                    # along Newton's step or, if f is flatter, the slope over |x| (a first step of |x|),
                    # so that SciPy's tests are on the step; rescaled runs go on while f falls
                    met = res.success and gnorm_out[i] <= tol * scale[0]
                    if scale[0] != 1.0 and not f_out[i] < before:
                        # rescaled, and still no lower f: f is flat to rounding here (far out on a
                        # plateau), where no line search sees a slope. As Newton's escape: steps of
                        # |x|, |x|/2, ... downhill, and on with f itself from the first that is lower
                        found = downhill(res.x, jac, reach, f_out[i])
                        evaluations += found[2]
                        if found[0] is None:
                            break
                        x_out[i], f_out[i] = found[0], found[1]
                        scale[0] = 1.0
                        continue
                    if scale[0] == 1.0 and not met:
                        break
                    curvature = gnorm_out[i] / length * reach if length else math.inf
                    scale[0] = min(curvature, gnorm_out[i] / reach)
                    if not 0 < scale[0] < math.inf:
                        break
                if not finite:
                    status[i] = DIVERGED
                    if "x" in best:
                        x_out[i], f_out[i] = best["x"], best["f"]
                    continue
                reporter.progress(i + 1, n)
    except KeyboardInterrupt:
        interrupted = True
        if "x" in best:
            x_out[i], f_out[i] = best["x"], best["f"]
    history = [] if n > 1 else [r for r in [history_row(batch.names, x_out, f_out, glen_out, int(iterations[0]))] if r]
    trail = np.array(path) if n == 1 else None
    return BatchResult(x_out, f_out, iterations, status, evaluations, history, interrupted, traces[0], trail)
