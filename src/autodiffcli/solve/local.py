"""Local searches from a batch of starts, all filling one result: :class:`BatchResult`.

Every method advances all starts at once (one tensor per variable, one value per start)
or, for SciPy's methods, one start after another, and reports per start: the point, f,
the number of iterations, a status, and how many times f and its gradient were computed.

* ``newton``: Newton's method with the Hessian from nested tapes, safeguarded (see
  :func:`newton`); written here because no maintained TensorFlow library offers a batched,
  bounded Newton method.
* ``bfgs``, ``lbfgs``: SciPy's ``minimize(method="BFGS" | "L-BFGS-B")`` driven by tape
  gradients, one compiled value-and-gradient function shared by every start (``lbfgs``
  from several starts runs TensorFlow Probability's batched L-BFGS instead: quasi_newton.py).
* Keras optimizers: the step of :mod:`optimize` on batched variables, projected into the
  bounds after every step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .derivatives import tower
from .interrupts import deferred
from .optimize import Row, make_optimizer
from .runtime import grappler_free, tensorflow, without_grappler
from .tf_build import TFFunction

RUNNING, CONVERGED, DIVERGED, STALLED = 0, 1, 2, 3
STATUS = {RUNNING: "max_steps", CONVERGED: "converged", DIVERGED: "diverged", STALLED: "stalled"}
ARMIJO = 1e-4  # sufficient decrease: f(x + a p) <= f(x) + ARMIJO * grad . (step taken)
HALVINGS = 40  # most halvings of the Newton step in one line search
SHRINK_FROM = 10_000  # Newton from this many starts drops the stopped ones from its batch


@dataclass
class BatchResult:
    """Per start: end point (starts, d), f, iterations, status code; evaluations summed over starts."""

    x: np.ndarray
    f: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    evaluations: int
    history: list[Row] = field(default_factory=list)  # the best start at each recorded step
    interrupted: bool = False
    traces: int = 0


@dataclass(frozen=True)
class Box:
    """Bounds per variable, as arrays in variable order (-inf/inf where unbounded)."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())

    @staticmethod
    def of(names: Sequence[str], bounds: Mapping[str, tuple[float, float]]) -> Box:
        lo = np.array([bounds.get(n, (-math.inf, math.inf))[0] for n in names], dtype=np.float64)
        hi = np.array([bounds.get(n, (-math.inf, math.inf))[1] for n in names], dtype=np.float64)
        return Box(lo, hi)


class Batch:
    """f over a (starts, d) tensor X, with the parameters bound: f, gradient and Hessian per start."""

    def __init__(self, f: TFFunction, names: Sequence[str], params: Mapping[str, float]) -> None:
        self.tf = tensorflow()
        self.f = f
        self.names = list(names)
        self.params = dict(params)

    def env(self, X: Any) -> dict[str, Any]:
        return {**{p: self.f.constant(v) for p, v in self.params.items()}, **self.columns(X)}

    def columns(self, X: Any) -> dict[str, Any]:
        return dict(zip(self.names, self.tf.unstack(X, num=len(self.names), axis=1)))

    def per_start(self, t: Any, X: Any) -> Any:
        """t with one entry per row of X: broadcast only where it is not already (a constant)."""
        if t.shape.rank == 1 and t.shape[0] == X.shape[0]:  # None == None: both the batch size
            return t
        return self.tf.broadcast_to(t, self.tf.shape(X)[:1])

    def value(self, X: Any) -> Any:
        return self.per_start(self.f(self.env(X)), X)

    def total(self, columns: Sequence[Any]) -> Any:
        """The sum of f over the starts, from one tensor per variable."""
        env = {**{p: self.f.constant(v) for p, v in self.params.items()}, **dict(zip(self.names, columns))}
        return self.tf.reduce_sum(self.tf.broadcast_to(self.f(env), self.tf.shape(columns[0])))

    def derivatives(self, X: Any, order: int) -> tuple[Any, ...]:
        """f (starts,), and with order >= 1 the gradient (starts, d), with 2 the Hessian (starts, d, d)."""
        tf = self.tf
        env = self.env(X)
        sources = {n: env[n] for n in self.names}
        levels = tower(self.f, env, sources, order)
        out = [self.per_start(levels[0][()], X)]
        if order >= 1:
            out.append(tf.stack([self.per_start(levels[1][(a,)], X) for a in self.names], axis=1))
        if order >= 2:
            rows = [tf.stack([self.per_start(levels[2][(a, b)], X) for b in self.names], axis=1) for a in self.names]
            out.append(tf.stack(rows, axis=1))
        return tuple(out)


def projected_gradient(tf: Any, X: Any, g: Any, lo: Any, hi: Any) -> Any:
    """x - P(x - g): the gradient, less the components that push against an active bound.

    Written out so that a component whose step stays inside the box is g itself: computed
    as x - (x - g), it rounds to 0 once |x| dwarfs |g| (x = -1e8, g = 1 in float32), and
    Newton on f = x reported convergence there.
    """
    step = X - g
    return tf.where(step < lo, X - lo, tf.where(step > hi, X - hi, g))


def projected(x: np.ndarray, g: np.ndarray, box: Box) -> np.ndarray:
    """:func:`projected_gradient` in numpy, for points (starts, d) and their gradients."""
    with np.errstate(invalid="ignore"):
        step = x - g
        return np.where(step < box.lo, x - box.lo, np.where(step > box.hi, x - box.hi, g))


def row_length(v: np.ndarray) -> np.ndarray:
    """Each row's Euclidean length; inf, not an overflow, past the largest float (a run off to 1e200)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.hypot.reduce(np.asarray(v, dtype=np.float64), axis=-1)


def column(t: Any) -> Any:
    """(starts,) -> (starts, 1), to scale or select the rows of a (starts, d) tensor."""
    return tensorflow().expand_dims(t, 1)


def _history_row(names: Sequence[str], X: np.ndarray, y: np.ndarray, gnorm: np.ndarray, step: int) -> Row | None:
    finite = np.isfinite(y)
    if not finite.any():
        return None
    i = int(np.argmin(np.where(finite, y, np.inf)))
    return Row(step, {n: float(X[i, j]) for j, n in enumerate(names)}, float(y[i]), float(gnorm[i]))


# ---------------------------------------------------------------- Newton


def newton(
    batch: Batch,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    every: int,
    reporter: Any,
    graph: bool = True,
) -> BatchResult:
    """Safeguarded Newton's method on every start at once.

    Each iteration takes the exact gradient g and Hessian H (nested tapes), and the step
    ``p = -Q diag(1/max(|lambda|, delta)) Q^T g`` from H's eigendecomposition: eigenvalues
    are replaced by their absolute values, floored at ``delta = eps**(3/4) * max(1, max |lambda|)``
    (a condition number up to 1.5e5 in float32, 5.5e11 in float64 keeps Newton's step).
    Where H is positive definite this is Newton's step (quadratic convergence near a
    minimum); elsewhere it is still a descent direction, which turns away from maxima and
    saddles instead of walking to them ("saddle-free Newton"). A backtracking line search
    halves the step until f falls by at least ``ARMIJO`` times the predicted decrease
    (Armijo), so every iteration lowers f. With bounds, each trial point is projected into
    the box and the search is on the projected path; the convergence test uses the
    projected gradient. A start stops when its (projected) gradient's largest component
    is at most ``tol`` (converged), when no halving lowers f (stalled: f cannot be lowered
    at the dtype's precision), or when f or its derivatives are not finite (diverged).
    """
    tf = batch.tf
    dtype = batch.f.dtype
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
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
    # stopped): a trace for batches of any size has about 50 ms more to do, more than
    # carrying them costs.
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
        lam, Q = tf.linalg.eigh(0.5 * (Hs + tf.linalg.matrix_transpose(Hs)))
        scale = tf.maximum(tf.reduce_max(tf.abs(lam), axis=1), 1.0)
        floor = math.sqrt(eps) * scale  # curvature below it, negative, is a saddle's or maximum's
        coeff = tf.linalg.matvec(Q, tf.where(free, gs, 0) if bounded else gs, transpose_a=True)
        p = -tf.linalg.matvec(Q, coeff / tf.maximum(tf.abs(lam), column(eps**0.75 * scale)))
        if bounded:  # a held variable steps outwards, and the projection keeps it on its bound
            p = tf.where(held, -gs, p)
        # a stationary point with negative curvature is a saddle or a maximum: step off it
        # along the most negative curvature instead of stopping there
        lowest, q = tf.unstack(lam, num=d, axis=1)[0], tf.unstack(Q, num=d, axis=2)[0]
        stationary = tf.equal(status, RUNNING) & (gnorm <= tol)
        escape = stationary & (lowest < -floor)
        reach = tf.maximum(tf.reduce_max(tf.abs(X), axis=1), 1.0)
        reach = tf.where(tf.reduce_sum(gs * q, axis=1) > 0, -reach, reach)
        p = tf.where(column(escape), column(reach) * q, p)
        status = tf.where(stationary & ~escape, CONVERGED, status)
        active = tf.equal(status, RUNNING)
        bend = 0.5 * tf.minimum(lowest, 0.0)  # predicted change includes negative curvature

        def trial(alpha: Any) -> Any:
            return tf.clip_by_value(X + column(alpha) * p, lo, hi)

        def search_cond(k: Any, alpha: Any, done: Any, fell: Any) -> Any:
            return (k < HALVINGS) & tf.reduce_any(~done)

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

        none = tf.zeros_like(active)
        _, alpha, found, fell = tf.while_loop(
            search_cond, search_body, (tf.constant(0), tf.ones_like(y), ~active, none)
        )
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
    interrupted = False

    def record(row: Row | None) -> None:
        if row is not None and (not history or history[-1].step != row.step):
            history.append(row)
            reporter.row(row)

    try:
        # one trace, instantiated and run without Grappler (see runtime.without_grappler); Ctrl-C
        # stops the loop between iterations (interrupts.deferred)
        with plain, deferred() as ctrl_c:
            for it in range(steps):
                if not (status[going] == RUNNING).any():  # all stopped, where f and its gradient were just computed
                    break
                out = compiled(tf.constant(X[going]), tf.constant(status[going]))
                Xk, after, yk, gk, lk, alpha = (t.numpy() for t in out)
                y[going], gnorm[going], glen[going] = yk, gk, lk
                if it % every == 0:
                    record(_history_row(batch.names, X, y, glen, it))
                moved = after == RUNNING  # every start still running took a step
                stalled = (after == STALLED) & (status[going] == RUNNING)
                fell = (after == DIVERGED) & (status[going] == RUNNING) & np.isfinite(yk)
                # f evaluations: one for the derivatives, and one per step length tried
                tried = 1 - np.rint(np.log2(alpha))
                trials = np.where(moved | fell, tried, np.where(stalled, HALVINGS, 0))
                evaluations += len(going) + int(trials.sum())
                X[going], status[going] = Xk, after
                iterations[going[moved]] += 1
                if shrink:
                    going = going[moved]
                reporter.progress(it + 1, steps)
                ctrl_c.check()
    except KeyboardInterrupt:
        interrupted = True
    going = going[status[going] == RUNNING]
    if len(going):  # stopped by --steps or Ctrl-C: f and the gradient where the running starts are now
        yk, g = batch.derivatives(tf.constant(X[going]), 1)
        y[going] = yk.numpy()
        pg = projected(X[going], g.numpy(), box)
        gnorm[going], glen[going] = np.abs(pg).max(axis=1), row_length(pg)
        evaluations += len(going)
    status = np.where((status == RUNNING) & (gnorm <= tol), CONVERGED, status)
    record(_history_row(batch.names, X, y, glen, int(iterations.max(initial=0))))
    return BatchResult(X, y, iterations, status, evaluations, history, interrupted, traces[0])


# ---------------------------------------------------------------- SciPy's BFGS and L-BFGS-B

SCIPY_METHODS = {"bfgs": "BFGS", "lbfgs": "L-BFGS-B"}


def scipy_minimize(
    batch: Batch,
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
    history = [] if n > 1 else [r for r in [_history_row(batch.names, x_out, f_out, glen_out, int(iterations[0]))] if r]
    return BatchResult(x_out, f_out, iterations, status, evaluations, history, interrupted, traces[0])


# ---------------------------------------------------------------- Keras optimizers, batched


# Keras scales these optimizers' steps by a norm (Lamb's trust ratio) or an RMS (Adafactor's
# clipping and relative step) over a whole variable: with one entry per start, each start's
# step would depend on the others. They run start by start, each as it would run alone.
ONE_BY_ONE = frozenset({"lamb", "adafactor"})


def keras_batch(
    batch: Batch,
    optimizer_name: str,
    learning_rate: float,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float | None,
    every: int,
    mode: str,
    reporter: Any,
) -> BatchResult:
    """A Keras optimizer on every start: one variable per name, one entry per start.

    The loss is the sum of f over the starts; starts do not interact, so each entry's
    gradient is its own start's, and most optimizers update entry by entry: all starts
    advance at once, in one compiled loop. Those in ``ONE_BY_ONE`` would mix the starts;
    they run the same compiled loop (traced once, on one start) from each start in turn,
    with the optimizer reset to its state before any step, so each start follows exactly
    the path it follows alone. After each step the point is projected into the box. With
    ``tol``, a start whose gradient norm is at most ``tol`` at the end of a chunk is frozen
    (converged). A start whose f turns non-finite is frozen at its last finite point (diverged).
    """
    n = len(starts)
    alone = optimizer_name in ONE_BY_ONE and n > 1
    loop = _KerasLoop(batch, optimizer_name, learning_rate, starts[: 1 if alone else n], box, tol, mode)
    if not alone:

        def record(row: Row) -> None:
            history.append(row)
            reporter.row(row)

        history: list[Row] = []
        result = loop.run(starts, steps, every, record, reporter.progress)
        result.history = history
        return result
    results, rows = [], []
    for i in range(n):
        own: list[Row] = []
        results.append(loop.run(starts[i : i + 1], steps, every, own.append, _shifted(reporter, i * steps, n * steps)))
        rows.append(own)
        if results[-1].interrupted:
            break
    if len(results) < n:  # interrupted: the starts not run stay where they were drawn
        y = batch.derivatives(batch.tf.constant(starts[len(results) :], batch.f.dtype), 1)[0].numpy()
        results.append(
            BatchResult(starts[len(results) :], y, np.zeros(len(y), np.int64), np.full(len(y), RUNNING), len(y))
        )
    history = _best_over_time(rows)
    for row in history:
        reporter.row(row)
    return BatchResult(
        np.concatenate([r.x for r in results]),
        np.concatenate([r.f for r in results]),
        np.concatenate([r.iterations for r in results]),
        np.concatenate([r.status for r in results]),
        sum(r.evaluations for r in results),
        history,
        any(r.interrupted for r in results),
        loop.traces,
    )


def _shifted(reporter: Any, offset: int, total: int) -> Callable[[int, int], None]:
    """Progress of one start, as progress over all of them."""
    return lambda done, _steps: reporter.progress(offset + done, total)


def _best_over_time(per_start: Sequence[Sequence[Row]]) -> list[Row]:
    """The best start at each recorded step, as one batch records it; a start that stopped keeps its last row."""
    latest: list[Row | None] = [None] * len(per_start)
    seen = [0] * len(per_start)
    out = []
    for step in sorted({r.step for rows in per_start for r in rows}):
        for i, rows in enumerate(per_start):
            while seen[i] < len(rows) and rows[seen[i]].step <= step:
                latest[i] = rows[seen[i]]
                seen[i] += 1
        best = min((r for r in latest if r is not None), key=lambda r: r.f, default=None)
        if best is not None:
            out.append(replace(best, step=step))
    return out


class _KerasLoop:
    """One compiled loop of a Keras optimizer over a fixed number of starts, rerun from fresh state."""

    def __init__(
        self,
        batch: Batch,
        optimizer_name: str,
        learning_rate: float,
        first: np.ndarray,
        box: Box,
        tol: float | None,
        mode: str,
    ) -> None:
        tf = batch.tf
        dtype = batch.f.dtype
        self.batch, self.tol = batch, tol
        self.variables = [tf.Variable(first[:, j], dtype=dtype, name=name) for j, name in enumerate(batch.names)]
        self.frozen = tf.Variable(tf.zeros([len(first)], tf.bool), trainable=False)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, dtype.name)
        self.optimizer.build(self.variables)
        # its state before any step: iteration 0, zero moments, the learning rate as given
        self.fresh = [v.numpy() for v in self.optimizer.variables]
        self.lo = [tf.constant(v, dtype) for v in box.lo]
        self.hi = [tf.constant(v, dtype) for v in box.hi]
        self.bounded = box.bounded
        self.traces = 0
        self.compiled = (
            self.chunk if mode == "eager" else tf.function(self.chunk, jit_compile=mode == "xla", autograph=False)
        )
        if mode == "graph":  # with Grappler, graph-mode loops now and then raced (runtime.without_grappler)
            self.compiled = grappler_free(self.compiled)

    def X(self) -> Any:
        tf = self.batch.tf
        return tf.stack([tf.convert_to_tensor(v) for v in self.variables], axis=1)

    def step(self) -> None:
        """The tutorial's step on the batch; projection and freezing only when asked for."""
        tf = self.batch.tf
        variables, freezing = self.variables, self.tol is not None
        with tf.GradientTape() as tape:
            loss = self.batch.total(variables)
        grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        old = [tf.identity(v) for v in variables] if freezing else []
        with tf.control_dependencies(old):
            self.optimizer.apply_gradients(zip(grads, variables))
        if not (self.bounded or freezing):
            return
        for j, (v, a, b) in enumerate(zip(variables, self.lo, self.hi)):
            new = tf.clip_by_value(v, a, b) if self.bounded else v
            v.assign(tf.where(self.frozen, old[j], new) if freezing else new)

    def chunk(self, count: Any) -> tuple[Any, Any]:
        tf = self.batch.tf
        self.traces += 1
        # the body returns the loop variables as given (a one-item list): eagerly, while_loop runs it
        # as a Python loop and does not pack a bare tensor
        tf.while_loop(lambda i: i < count, lambda i: (self.step(), [i + 1])[1], [tf.constant(0)])
        y, g = self.batch.derivatives(self.X(), 1)
        return y, tf.norm(projected_gradient(tf, self.X(), g, tf.stack(self.lo), tf.stack(self.hi)), axis=1)

    def run(
        self,
        starts: np.ndarray,
        steps: int,
        every: int,
        record: Callable[[Row], None],
        progress: Callable[[int, int], None],
    ) -> BatchResult:
        """From ``starts`` (as many as the loop was built for) with a fresh optimizer, up to ``steps`` steps."""
        tf, tol = self.batch.tf, self.tol
        for v, column in zip(self.variables, starts.T):
            v.assign(column)
        for v, value in zip(self.optimizer.variables, self.fresh):
            v.assign(value)
        n = len(starts)
        y0, g0 = self.batch.derivatives(self.X(), 1)
        y = y0.numpy()
        gnorm = tf.norm(projected_gradient(tf, self.X(), g0, tf.stack(self.lo), tf.stack(self.hi)), axis=1).numpy()
        status = np.where(np.isfinite(y), RUNNING, DIVERGED)
        last_x, last_f = self.X().numpy(), y
        iterations = np.zeros(n, dtype=np.int64)
        interrupted = False
        done = 0

        def row(step_no: int) -> None:
            found = _history_row(self.batch.names, last_x, np.where(status == DIVERGED, np.nan, last_f), gnorm, step_no)
            if found is not None:
                record(found)

        row(0)
        try:
            with deferred() as ctrl_c:  # Ctrl-C stops the loop between chunks
                while done < steps and (status == RUNNING).any():
                    if tol is not None:
                        status = np.where((status == RUNNING) & (gnorm <= tol), CONVERGED, status)
                    self.frozen.assign(status != RUNNING)
                    count = min(every, steps - done)
                    y, gnorm = (t.numpy() for t in self.compiled(tf.constant(count)))
                    done += count
                    finite = np.isfinite(y) & np.isfinite(gnorm)
                    running = status == RUNNING
                    iterations[running] += count
                    status = np.where(running & ~finite, DIVERGED, status)
                    keep = finite & (status != DIVERGED)
                    last_x = np.where(keep[:, None], self.X().numpy(), last_x)
                    last_f = np.where(keep, y, last_f)
                    row(done)
                    progress(done, steps)
                    ctrl_c.check()
        except KeyboardInterrupt:
            interrupted = True
        if tol is not None:
            status = np.where((status == RUNNING) & (gnorm <= tol), CONVERGED, status)
        evaluations = int(iterations.sum()) + n
        return BatchResult(last_x, last_f, iterations, status, evaluations, [], interrupted, self.traces)
