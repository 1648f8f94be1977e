"""Newton's method from a batch of starts, with the Hessian from nested tapes, safeguarded.

Written here because no maintained TensorFlow library offers a batched, bounded Newton
method. See :func:`newton` for the safeguards."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..interrupts import deferred
from ..runtime import without_grappler
from .batch import BatchObjective, column, projected_gradient
from .types import (
    CONVERGED,
    DIVERGED,
    RUNNING,
    STALLED,
    BatchResult,
    Box,
    Reporter,
    Row,
    history_row,
    newton_step_within,
    projected,
    row_length,
    same_point,
    step_tolerance,
)

ARMIJO = 1e-4  # sufficient decrease: f(x + a p) <= f(x) + ARMIJO * grad . (step taken)
ZERO = 4.0  # negative curvature beyond ZERO * eps * max|lambda| is decided (verdict.ZERO)
HALVINGS = 40  # fewest halvings of the Newton step in one line search


def halvings(eps: float) -> int:
    """Most halvings in one line search: where f is flat (H = 0) the step is |x| / eps**(3/4)
    long, and the search must bring it down to |x| and below (to eps**(1/4) |x|): 40 in
    float32, 53 in float64."""
    return max(HALVINGS, math.ceil(math.log2(1 / eps)) + 1)


SHRINK_FROM = 10_000  # Newton from this many starts drops the stopped ones from its batch
ESCAPES = 10  # most times the higher-order test may send converged starts on


def symmetric_eigh(tf: Any, S: Any) -> tuple[Any, Any]:
    """``tf.linalg.eigh`` of a batch of symmetric matrices (eigenvalues ascending, eigenvectors
    in columns); for 2x2 ones in closed form, a Jacobi rotation by
    theta = atan2(2b, a - c) / 2, which is as accurate and costs a fraction of LAPACK's call
    per matrix (100,000 of them: 18 ms, a third of a Newton iteration)."""
    if S.shape[-1] != 2:
        return tf.linalg.eigh(S)
    a, b, c = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
    theta = 0.5 * tf.atan2(2 * b, a - c)
    cs, sn = tf.cos(theta), tf.sin(theta)
    high = a * cs * cs + 2 * b * sn * cs + c * sn * sn  # along (cs, sn): the larger one
    low = a * sn * sn - 2 * b * sn * cs + c * cs * cs  # along (-sn, cs)
    lam = tf.stack([tf.minimum(low, high), high], axis=1)
    Q = tf.stack([tf.stack([-sn, cs], axis=1), tf.stack([cs, sn], axis=1)], axis=2)
    return lam, Q


def newton(
    batch: BatchObjective,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    every: int,
    reporter: Reporter,
    graph: bool = True,
    escape: Callable[[np.ndarray], dict[int, np.ndarray]] | None = None,
) -> BatchResult:
    """Safeguarded Newton's method on every start at once.

    Each iteration takes the exact gradient g and Hessian H (nested tapes), and the step
    ``p = -Q diag(1/max(|lambda|, delta)) Q^T g`` from H's eigendecomposition: eigenvalues
    are replaced by their absolute values, floored at ``delta = eps**(3/4) * c``, with c the
    largest |lambda| or, where f is flatter than that, |grad|_inf / max(1, |x|_inf): relative
    to f's own scale, so that 1e-7*(x-1)**2 gets Newton's step (a condition number up to
    1.5e5 in float32, 5.5e11 in float64 keeps Newton's step).
    Where H is positive definite this is Newton's step (quadratic convergence near a
    minimum); elsewhere it is still a descent direction, which turns away from maxima and
    saddles instead of walking to them ("saddle-free Newton"). A backtracking line search
    halves the step until f falls by at least ``ARMIJO`` times the predicted decrease
    (Armijo), so every iteration lowers f. With bounds, each trial point is projected into
    the box and the search is on the projected path; the convergence test uses the
    projected gradient. A start stops when its (projected) gradient's largest component
    is at most ``tol`` and Newton's step along each eigenvector is within
    ``max(tol, sqrt(eps)) * max(1, |x|_inf)`` (converged: scale-aware, where every slope of
    a function of scale 1e-7 is below tol), when no halving lowers f (stalled: f cannot be lowered
    at the dtype's precision), or when f or its derivatives are not finite (diverged).

    Where the Hessian is singular at a stationary point, its eigenvalues cannot tell a
    minimum from an inflection (x**4 - 3*x**3 at 0). ``escape`` (the converged points ->
    {index: a lower point nearby}) is asked when every start has stopped: it applies the
    higher-order test (higher_order.py) and returns a point down the direction along which
    f falls, for the starts that are shown not to be at a minimum; those run on, at most
    ``ESCAPES`` times.
    """
    tf = batch.tf
    dtype = batch.f.dtype
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    tiny = float(np.finfo(dtype.as_numpy_dtype).tiny)
    step_tol = max(tol, math.sqrt(eps))  # times max(1, |x|): types.step_tolerance
    most = halvings(eps)
    lo = tf.constant(box.lo, dtype)
    hi = tf.constant(box.hi, dtype)
    bounded = box.bounded
    # "within e of a bound": e is the projected gradient's length, at most 1e-3 of the box
    near = tf.constant(np.where(np.isfinite(box.hi - box.lo), 1e-3 * (box.hi - box.lo), np.inf), dtype)
    d = starts.shape[1]
    traces = [0]
    n = len(starts)
    # From many starts, the starts that have stopped leave the batch: one trace serves every
    # batch size. From fewer, they stay (f and its derivatives are recomputed where they
    # stopped): a trace for batches of any size has more to do than carrying them costs.
    shrink = n >= SHRINK_FROM

    def iterate(X: Any, status: Any) -> tuple[Any, ...]:
        """One iteration on every start; returns (X, status, f, |projected grad|, alpha).

        Every start that moved is still running; its step was ``alpha`` times p.
        """
        traces[0] += 1
        y, g, H = batch.derivatives(X, 2)
        pg = projected_gradient(tf, X, g, lo, hi)
        gnorm, glen = tf.reduce_max(tf.abs(pg), axis=1), tf.norm(pg, axis=1)
        finite_g, finite_H = tf.math.is_finite(g), tf.math.is_finite(H)
        finite = tf.math.is_finite(y) & tf.reduce_all(finite_g, axis=1) & tf.reduce_all(finite_H, axis=[1, 2])
        status = tf.where(tf.equal(status, RUNNING) & ~finite, DIVERGED, status)
        # a start with a non-finite f or derivative has stopped; finite stand-ins keep eigh safe
        eye = tf.constant(np.eye(d), dtype)
        Hs = tf.where(finite_H, H, eye)
        gs = tf.where(finite_g, g, tf.zeros_like(g))
        if bounded:
            # Bertsekas' projected Newton: a variable at (or within e of) a bound that its
            # gradient pushes against is held there; the Newton step is taken in the others
            e = tf.minimum(column(glen), near)
            held = ((X <= lo + e) & (gs > 0)) | ((X >= hi - e) & (gs < 0))
            free = ~held
            Hs = tf.where(free[:, :, None] & free[:, None, :], Hs, eye)
        S = 0.5 * (Hs + tf.linalg.matrix_transpose(Hs))
        # from many starts the closed form for 2x2 saves time; from fewer its ops cost more to trace
        lam, Q = symmetric_eigh(tf, S) if shrink else tf.linalg.eigh(S)
        reach = tf.maximum(tf.reduce_max(tf.abs(X), axis=1), 1.0)
        largest = tf.reduce_max(tf.abs(lam), axis=1)
        # the eigenvalue floor, relative to f's own scale: its curvature, or where f has
        # none, its slope over the distance |x| (a step at most 1/eps**(3/4) times |x|)
        scale = tf.maximum(tf.maximum(largest, tf.reduce_max(tf.abs(gs), axis=1) / reach), tiny)
        floor = ZERO * eps * largest  # curvature below -floor is a saddle's or maximum's (the verdict's zero)
        coeff = tf.linalg.matvec(Q, tf.where(free, gs, 0) if bounded else gs, transpose_a=True)
        p = -tf.linalg.matvec(Q, coeff / tf.maximum(tf.abs(lam), column(eps**0.75 * scale)))
        if bounded:  # a held variable steps outwards, and the projection keeps it on its bound
            p = tf.where(held, -gs, p)
        # a stationary point with negative curvature is a saddle or a maximum: step off it
        # along the most negative curvature instead of stopping there
        lowest, q = tf.unstack(lam, num=d, axis=1)[0], tf.unstack(Q, num=d, axis=2)[0]
        # converged: the gradient within tol, and Newton's step (along each eigenvector,
        # |q . g| / |lambda|) within the step tolerance: on f of scale 1e-7 every slope is below tol
        short = tf.reduce_all(tf.abs(coeff) <= column(step_tol * reach) * tf.abs(lam), axis=1)
        stationary = tf.equal(status, RUNNING) & (gnorm <= tol) & short
        escape = stationary & (lowest < -floor)
        reach = tf.where(tf.reduce_sum(gs * q, axis=1) > 0, -reach, reach)
        p = tf.where(column(escape), column(reach) * q, p)
        status = tf.where(stationary & ~escape, CONVERGED, status)
        active = tf.equal(status, RUNNING)
        bend = 0.5 * tf.minimum(lowest, 0.0)  # predicted change includes negative curvature

        def trial(alpha: Any) -> Any:
            return tf.clip_by_value(X + column(alpha) * p, lo, hi)

        def search_cond(k: Any, alpha: Any, done: Any, fell: Any) -> Any:
            return (k < most) & tf.reduce_any(~done)

        def search_body(k: Any, alpha: Any, done: Any, fell: Any) -> tuple[Any, ...]:
            if shrink:  # only the starts still searching: the others would pay for the longest search
                at = tf.where(~done)

                def pick(t: Any) -> Any:
                    return tf.gather(t, at[:, 0])

            else:  # a few thousand starts: computing them all costs less than tracing the gathers

                def pick(t: Any) -> Any:
                    return t

            a, Xa, pa = pick(alpha), pick(X), pick(p)
            t = tf.clip_by_value(Xa + column(a) * pa, lo, hi)
            s = t - Xa
            yt = batch.value(t)
            decrease = tf.reduce_sum(pick(gs) * s, axis=1) + pick(bend) * tf.reduce_sum(s * s, axis=1)
            ok = tf.math.is_finite(yt) & (yt <= pick(y) + ARMIJO * decrease) & (decrease < 0)
            down = tf.equal(yt, -np.inf)  # f fell past the dtype's range: unbounded below, this way
            if shrink:
                return (
                    k + 1,
                    tf.tensor_scatter_nd_update(alpha, at, tf.where(ok, a, a / 2)),
                    tf.tensor_scatter_nd_update(done, at, ok | down),
                    tf.tensor_scatter_nd_update(fell, at, down),
                )
            return k + 1, tf.where(done | ok, alpha, alpha / 2), done | ok | down, fell | (~done & down)

        if shrink:
            # the full step first, on every start at once: most take it, so the halvings and
            # their gathers run on the few that do not
            full = tf.clip_by_value(X + p, lo, hi)  # trial(1), the point taken where it is accepted
            s = full - X
            yt = batch.value(full)
            decrease = tf.reduce_sum(gs * s, axis=1) + bend * tf.reduce_sum(s * s, axis=1)
            ok = active & tf.math.is_finite(yt) & (yt <= y + ARMIJO * decrease) & (decrease < 0)
            down = active & tf.equal(yt, -np.inf)
            one = tf.ones_like(y)
            first = (tf.constant(1), tf.where(active & ~ok, 0.5 * one, one), ~active | ok | down, down)
        else:  # a few thousand starts: the loop computes them all anyway, and its ops trace once
            first = (tf.constant(0), tf.ones_like(y), ~active, tf.zeros_like(active))
        _, alpha, found, fell = tf.while_loop(search_cond, search_body, first)
        moved = active & found & ~fell
        status = tf.where(active & fell, DIVERGED, tf.where(active & ~found, STALLED, status))
        return tf.where(column(moved), trial(alpha), X), status, y, gnorm, glen, alpha

    signature = [tf.TensorSpec([None, d], dtype), tf.TensorSpec([None], tf.int32)] if shrink else None
    compiled = tf.function(iterate, autograph=False, input_signature=signature) if graph else iterate
    plain = without_grappler() if graph else contextlib.nullcontext()
    X = np.array(starts, dtype=dtype.as_numpy_dtype)  # every start's point, f and |projected grad|
    y, gnorm = np.full(n, np.nan, X.dtype), np.full(n, np.inf, X.dtype)
    glen = np.full(n, np.inf, X.dtype)  # |projected grad|: the largest component decides, rows show the length
    status = np.full(n, RUNNING, np.int32)
    going = np.arange(n)  # the starts each iteration computes
    iterations = np.zeros(n, dtype=np.int64)
    evaluations = 0
    history: list[Row] = []
    path = [X[0].copy()] if n == 1 else []  # a single start's every iterate, for its picture
    interrupted = False

    def record(row: Row | None) -> None:
        if row is not None and (not history or (history[-1].step != row.step and not same_point(history[-1], row))):
            history.append(row)
            reporter.row(row)

    try:
        # one trace, instantiated and run without Grappler (see runtime.without_grappler); Ctrl-C
        # stops the loop between iterations (interrupts.deferred)
        with plain, deferred() as ctrl_c:
            it, escapes = 0, 0
            while it < steps:
                if not (status[going] == RUNNING).any():  # all stopped, where f and its gradient were just computed
                    done = np.flatnonzero(status == CONVERGED)
                    if escape is None or escapes >= ESCAPES or not len(done):
                        break
                    lower = escape(X[done].astype(np.float64))
                    if not lower:
                        break
                    escapes += 1
                    picked = done[sorted(lower)]
                    X[picked] = np.array([lower[k] for k in sorted(lower)], dtype=X.dtype)
                    status[picked] = RUNNING
                    going = np.union1d(going, picked) if shrink else going
                    continue
                out = compiled(tf.constant(X[going]), tf.constant(status[going]))
                Xk, after, yk, gk, lk, alpha = (t.numpy() for t in out)
                y[going], gnorm[going], glen[going] = yk, gk, lk
                if it % every == 0:
                    record(history_row(batch.names, X, y, glen, it))
                moved = after == RUNNING  # every start still running took a step
                stalled = (after == STALLED) & (status[going] == RUNNING)
                fell = (after == DIVERGED) & (status[going] == RUNNING) & np.isfinite(yk)
                # f evaluations: one for the derivatives, and one per step length tried
                tried = 1 - np.rint(np.log2(alpha))
                trials = np.where(moved | fell, tried, np.where(stalled, most, 0))
                evaluations += len(going) + int(trials.sum())
                X[going], status[going] = Xk, after
                if n == 1 and moved.any():
                    path.append(X[0].copy())
                iterations[going[moved]] += 1
                if shrink:
                    going = going[moved]
                reporter.progress(it + 1, steps)
                ctrl_c.check()
                it += 1
    except KeyboardInterrupt:
        interrupted = True
    going = going[status[going] == RUNNING]
    settled = np.zeros(n, dtype=bool)
    if len(going):  # stopped by --steps or Ctrl-C: f and its derivatives where the running starts are now
        yk, g, H = (t.numpy() for t in batch.derivatives(tf.constant(X[going]), 2))
        y[going] = yk
        pg = projected(X[going], g, box)
        gnorm[going], glen[going] = np.abs(pg).max(axis=1), row_length(pg)
        held = pg != g  # the projection cut these: a bound holds them
        settled[going] = newton_step_within(g, H, step_tolerance(X[going], tol, eps), held)
        evaluations += len(going)
    status = np.where((status == RUNNING) & (gnorm <= tol) & settled, CONVERGED, status)
    record(history_row(batch.names, X, y, glen, int(iterations.max(initial=0))))
    return BatchResult(
        X, y, iterations, status, evaluations, history, interrupted, traces[0], np.array(path) if n == 1 else None
    )
