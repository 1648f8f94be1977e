"""Keras optimizers on a batch of starts: the step of ``keras_loop`` on batched variables, projected into the bounds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..interrupts import deferred
from ..runtime import grappler_free
from .batch import BatchObjective, projected_gradient
from .keras_loop import make_optimizer
from .types import (
    CONVERGED,
    DIVERGED,
    RUNNING,
    BatchResult,
    Box,
    Reporter,
    Row,
    history_row,
    same_point,
)

# Keras scales these optimizers' steps by a norm (Lamb's trust ratio) or an RMS (Adafactor's
# clipping and relative step) over a whole variable: with one entry per start, each start's
# step would depend on the others. They run start by start, each as it would run alone.
ONE_BY_ONE = frozenset({"lamb", "adafactor"})


def keras_batch(
    batch: BatchObjective,
    optimizer_name: str,
    learning_rate: float,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float | None,
    every: int,
    mode: str,
    reporter: Reporter,
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
            if history and same_point(history[-1], row):  # the best start has stopped: no news
                return
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


def _shifted(reporter: Reporter, offset: int, total: int) -> Callable[[int, int], None]:
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
        batch: BatchObjective,
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
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        if not (self.bounded or freezing):
            return
        for j, (v, a, b) in enumerate(zip(variables, self.lo, self.hi, strict=True)):
            new = tf.clip_by_value(v, a, b) if self.bounded else v
            v.assign(tf.where(self.frozen, old[j], new) if freezing else new)

    def chunk(self, count: Any) -> tuple[Any, Any]:
        tf = self.batch.tf
        self.traces += 1

        def body(i: Any) -> list[Any]:
            # the loop variables as given (a one-item list): eagerly, while_loop runs the body
            # as a Python loop and does not pack a bare tensor
            self.step()
            return [i + 1]

        tf.while_loop(lambda i: i < count, body, [tf.constant(0)])
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
        for v, column in zip(self.variables, starts.T, strict=True):
            v.assign(column)
        for v, value in zip(self.optimizer.variables, self.fresh, strict=True):
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
            found = history_row(self.batch.names, last_x, np.where(status == DIVERGED, np.nan, last_f), gnorm, step_no)
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
