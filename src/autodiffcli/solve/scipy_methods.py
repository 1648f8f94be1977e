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
from .types import CONVERGED, DIVERGED, RUNNING, STALLED, BatchResult, Box, history_row, projected, row_length

SCIPY_METHODS = {"bfgs": "BFGS", "lbfgs": "L-BFGS-B"}


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
    minimize: Any, fun: Any, x0: np.ndarray, method: str, bounds: Any, steps: int, tol: float, box: Box
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
    reporter: Any,
) -> BatchResult:
    """SciPy's ``minimize`` from each start in turn, with f and its gradient from one tape.

    ``converged`` is SciPy's success with the (projected) gradient's largest component at
    most ``tol``; SciPy's success on f alone (L-BFGS-B's ftol) is ``stalled``. ``gtol`` is
    ``tol`` and ``maxiter`` is ``steps``. L-BFGS-B takes the bounds itself; BFGS has none
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
    n = len(starts)
    x_out = np.array(starts, dtype=np.float64)
    f_out = np.full(n, np.nan)
    gnorm_out = np.full(n, np.nan)  # the projected gradient's largest component at the end point
    glen_out = np.full(n, np.nan)  # and its length, for the history row
    iterations = np.zeros(n, dtype=np.int64)
    status = np.full(n, RUNNING)
    evaluations = 0
    interrupted = False
    bounds = list(zip(box.lo, box.hi)) if method == "lbfgs" and box.bounded else None
    best: dict[str, Any] = {}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        ctrl_c.check()  # Ctrl-C stops SciPy here, at an evaluation, never inside TensorFlow's call
        y, g = compiled(tf.constant(x[None, :], dtype))
        y, g = float(y), g.numpy().astype(np.float64)
        if math.isfinite(y) and np.isfinite(g).all() and y < best.get("f", math.inf):
            best.update(f=y, x=np.array(x))
        return y, g

    try:
        with deferred() as ctrl_c:
            for i in range(n):
                best.clear()
                res, nit, nfev = _run(minimize, fun, x_out[i], method, bounds, steps, tol, box)
                evaluations += nfev
                iterations[i] = nit
                finite = math.isfinite(float(res.fun)) and np.isfinite(res.x).all()
                if not finite:
                    status[i] = DIVERGED
                    if "x" in best:
                        x_out[i], f_out[i] = best["x"], best["f"]
                    continue
                x_out[i], f_out[i] = res.x, float(res.fun)
                # SciPy's success includes L-BFGS-B's stop when f does not fall in an iteration,
                # which can come before the gradient is within tol: that is a stall, and
                # converged means the projected gradient within tol
                pg = projected(res.x, res.jac, box)
                gnorm_out[i], glen_out[i] = np.max(np.abs(pg), initial=0.0), row_length(pg)
                met = res.success and gnorm_out[i] <= tol
                status[i] = CONVERGED if met else RUNNING if nit >= steps else STALLED
                reporter.progress(i + 1, n)
    except KeyboardInterrupt:
        interrupted = True
        if "x" in best:
            x_out[i], f_out[i] = best["x"], best["f"]
    history = [] if n > 1 else [r for r in [history_row(batch.names, x_out, f_out, glen_out, int(iterations[0]))] if r]
    return BatchResult(x_out, f_out, iterations, status, evaluations, history, interrupted, traces[0])
