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
    import warnings

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
    path = [np.array(x_out[0])] if n == 1 else []  # a single start's every iterate, for its picture

    def iterate(xk: np.ndarray) -> None:
        if n == 1:
            path.append(np.array(xk, dtype=np.float64))

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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SciPy warns on precision loss; the status says it
                    res = minimize(
                        fun,
                        x_out[i],
                        jac=True,
                        method=SCIPY_METHODS[method],
                        bounds=bounds,
                        options={"maxiter": steps, "gtol": tol},
                        callback=iterate,
                    )
                evaluations += int(res.nfev)
                iterations[i] = int(res.nit)
                finite = math.isfinite(float(res.fun)) and np.isfinite(res.x).all()
                if not finite:
                    status[i] = DIVERGED
                    if "x" in best:
                        x_out[i], f_out[i] = best["x"], best["f"]
                    continue
                x_out[i], f_out[i] = res.x, float(res.fun)
                # SciPy's success includes L-BFGS-B's stop when f falls by less than ftol relative
                # to max(|f|, 1), which near f = 0 comes well before the gradient is within tol:
                # that is a stall, and converged means the projected gradient within tol
                pg = projected(res.x, res.jac, box)
                gnorm_out[i], glen_out[i] = np.max(np.abs(pg), initial=0.0), row_length(pg)
                met = res.success and gnorm_out[i] <= tol
                status[i] = CONVERGED if met else RUNNING if res.nit >= steps else STALLED
                reporter.progress(i + 1, n)
    except KeyboardInterrupt:
        interrupted = True
        if "x" in best:
            x_out[i], f_out[i] = best["x"], best["f"]
    history = [] if n > 1 else [r for r in [history_row(batch.names, x_out, f_out, glen_out, int(iterations[0]))] if r]
    trail = np.array(path) if n == 1 else None
    return BatchResult(x_out, f_out, iterations, status, evaluations, history, interrupted, traces[0], trail)
