"""Minimization with Keras optimizers: eager loop, or one compiled ``tf.function`` loop.

Importing this module does not import TensorFlow; running an optimization does.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..calculus.tf_build import TFFunction
from ..interrupts import deferred
from ..runtime import grappler_free, tensorflow
from .registry import OPTIMIZERS, optimizer_name
from .types import CONVERGED, DIVERGED, RUNNING, STATUS, MinimizeSettings, Outcome, Reporter, Row, Silent

CHUNK_S = 0.2  # wall time of one chunk: progress and Ctrl-C wait at most about this long
CACHE_SIZE = 16  # compiled loops kept per process (the warm server's workers reuse them)


def make_optimizer(name: str, learning_rate: float, dtype: str = "float32") -> Any:
    """A Keras optimizer whose float hyperparameters are rounded to ``dtype``.

    Keras 3 computes terms such as ``1 - beta_1`` in double precision before casting;
    TensorFlow 2's fused kernels (which printed the seed's numbers) computed them from
    float32 betas. Passing the defaults rounded to float32 reproduces those numbers exactly.
    """
    tensorflow()
    import inspect

    import numpy as np

    with deferred():  # an import cut short by Ctrl-C stays broken, as TensorFlow's would (runtime.py)
        import keras

    cls = getattr(keras.optimizers, OPTIMIZERS[optimizer_name(name)])
    width = np.float32 if dtype == "float32" else np.float64
    defaults = {
        k: float(width(p.default))
        for k, p in inspect.signature(cls.__init__).parameters.items()
        if type(p.default) is float and k != "learning_rate"
    }
    return cls(learning_rate=learning_rate, **defaults)


def minimize_step(optimizer: Any, loss: Callable[[], Any], var_list: Sequence[Any]) -> tuple[Any, list[Any]]:
    """One step of Keras 2's ``Optimizer.minimize(loss, var_list)``, which Keras 3 dropped.

    Computes ``loss()`` under a tape, applies the gradients, and returns the loss and the
    gradients (Keras 2 returned only the update op; we also need them for stopping rules).
    """
    tf = tensorflow()
    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, var_list, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    optimizer.apply_gradients(zip(grads, var_list, strict=True))
    return value, grads


class Objective:
    """f over ``tf.Variable``s (one per variable) and ``tf.constant`` parameters."""

    def __init__(self, f: TFFunction, start: Mapping[str, float], params: Mapping[str, float]) -> None:
        tf = tensorflow()
        self.tf = tf
        self.f = f
        self.names = list(start)
        self.variables = [tf.Variable(float(start[n]), dtype=f.dtype, name=n) for n in self.names]
        self.env = {
            **{p: f.constant(v) for p, v in params.items()},
            **dict(zip(self.names, self.variables, strict=True)),
        }

    def loss(self) -> Any:
        return self.f(self.env)

    def value_and_grad(self) -> tuple[Any, list[Any]]:
        tf = self.tf
        with tf.GradientTape() as tape:
            y = self.loss()
        return y, tape.gradient(y, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def point(self) -> dict[str, float]:
        return {n: float(v.numpy()) for n, v in zip(self.names, self.variables, strict=True)}

    def assign(self, point: Mapping[str, float]) -> None:
        for n, v in zip(self.names, self.variables, strict=True):
            v.assign(point[n])


def _status(tf: Any, y: Any, grads: list[Any], tol: float | None) -> tuple[Any, Any]:
    """(status, |grad|) for the point whose value is y and gradient is grads.

    |grad| is taken over the gradient divided by its largest component, then scaled back: it
    overflows only when the gradient itself does (in float32, g**2 overflows once |g| passes
    1.8e19, and a finite gradient would otherwise count as divergence).
    """
    largest = tf.reduce_max(tf.abs(tf.concat([tf.reshape(g, [-1]) for g in grads], 0)))
    scale = tf.where(largest > 0, largest, tf.ones_like(largest))  # nan or 0: 1, and nan stays in the sum
    norm = scale * tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g / scale)) for g in grads]))
    finite = tf.reduce_all(tf.math.is_finite(tf.stack([y, norm])))
    status = tf.where(finite, RUNNING, DIVERGED)
    if tol is not None:
        status = tf.where(finite & (norm <= tol), CONVERGED, status)
    return status, norm


def run(
    f: TFFunction,
    start: Mapping[str, float],
    params: Mapping[str, float],
    settings: MinimizeSettings,
    reporter: Reporter | None = None,
) -> Outcome:
    """Minimize f from ``start``. Stops on convergence, divergence, ``steps`` or Ctrl-C."""
    began = time.perf_counter()
    reporter = reporter or Silent()
    loop = _compiled(f, start, params, settings)
    problem, optimizer = loop.problem, loop.optimizer
    tf = problem.tf
    traced_before = loop.traces

    y, grads = problem.value_and_grad()
    status_t, norm_t = _status(tf, y, grads, settings.tol)
    history = [Row(0, problem.point(), float(y), float(norm_t))]
    reporter.row(history[0])
    best = history[0]
    status = int(status_t)
    done = 0
    interrupted = False
    chunk = 1  # the first call traces and compiles; later chunks are sized from measured speed
    try:
        with deferred() as ctrl_c:  # Ctrl-C stops the loop between chunks, never inside a step
            while status == RUNNING and done < settings.steps:
                target = min(settings.steps, (done // settings.row_every + 1) * settings.row_every)
                while status == RUNNING and done < target:
                    began_chunk = time.perf_counter()
                    taken, status, y, norm = loop.advance(min(chunk, target - done))
                    elapsed = time.perf_counter() - began_chunk
                    if done > 0 and taken > 0:
                        chunk = max(1, int(taken * CHUNK_S / max(elapsed, 1e-9)))
                    elif done == 0:
                        chunk = 16
                    done += taken
                    reporter.progress(done, settings.steps)
                    ctrl_c.check()
                row = Row(done, problem.point(), float(y), float(norm))
                if status != DIVERGED and row.step != history[-1].step:
                    history.append(row)
                    reporter.row(row)
                    if math.isfinite(row.f) and row.f <= best.f:
                        best = row
    except KeyboardInterrupt:
        interrupted = True
        done = int(optimizer.iterations.numpy())
        current = problem.point()
        if not all(math.isfinite(v) for v in current.values()) or not _finite_below(problem, best.f):
            problem.assign(best.x)

    y, grads = problem.value_and_grad()
    gradient = {n: float(g) for n, g in zip(problem.names, grads, strict=True)}
    outcome = Outcome(
        x=problem.point(),
        f=float(y),
        gradient=gradient,
        grad_norm=math.sqrt(sum(g * g for g in gradient.values())),
        steps=done,
        status="interrupted" if interrupted else STATUS[status],
        mode=settings.mode,
        history=history,
        traces=loop.traces - traced_before,
        evaluations=done + 2,  # each step one, plus the start and the end point
    )
    outcome.optimize_s = time.perf_counter() - began
    return outcome


_CACHE: OrderedDict[tuple[Any, ...], _Loop] = OrderedDict()


def forget_compiled() -> None:
    """Drop every cached loop: the next run traces and compiles afresh, as a cold command does."""
    _CACHE.clear()


def _compiled(
    f: TFFunction, start: Mapping[str, float], params: Mapping[str, float], settings: MinimizeSettings
) -> _Loop:
    """The loop for this problem, ready to run from ``start``: compiled once per process.

    Compiled loops (graph mode) are kept in a bounded cache keyed by everything that changes
    the graph: the expression, dtype, variables, parameter values (graph constants) and the
    settings other than the step count and history rows. A loop taken from the cache is
    reset to exactly the state a new one has (the start, the optimizer's initial state), so
    its run is the same, step for step, as a fresh one's; it only skips tracing and XLA.
    """
    if not settings.graph:
        return _Loop.build(f, start, params, settings)
    import sympy

    key = (
        sympy.srepr(f.expr),
        f.dtype.name,
        f.first_order,
        tuple(start),
        tuple(sorted(params.items())),
        replace(settings, steps=0, every=None),
    )
    loop = _CACHE.pop(key, None)
    if loop is None:
        loop = _Loop.build(f, start, params, settings)
    else:
        loop.reset(start)
    _CACHE[key] = loop
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return loop


def _finite_below(problem: Objective, bound: float) -> bool:
    value = float(problem.loss())
    return math.isfinite(value) and value <= bound


class _Loop:
    """Advances the optimization by n steps: a Python loop (eager) or one compiled call.

    The compiled loops run over a step count given as a tensor, so each is traced once
    whatever the number of steps or chunks; the seed's cell 7 unrolled a Python ``range``
    inside ``tf.function`` instead, and its trace time grew with the step count.

    Two loops, so that the common case costs no more per step than the seed's own:

    * fast: the seed's step exactly (tape, gradient, apply), with the value and gradient
      checked once, at the end of the chunk. If they are not finite, the chunk is undone
      (variables and optimizer state restored) and replayed by the checked loop. The state
      it starts from is copied inside the same call, into shadow variables: copying it out
      to numpy before each call would cost a sizeable share of a chunk.
    * checked: every step evaluates the new point and stops at once on a non-finite
      value or gradient (restoring the previous point) or, with ``--tol``, on convergence.
    """

    def __init__(self, problem: Objective, optimizer: Any, settings: MinimizeSettings) -> None:
        self.problem = problem
        self.optimizer = optimizer
        self.settings = settings
        self.traces = 0
        tf = problem.tf
        self._grads: list[Any] | None = None
        self._initial = [v.numpy() for v in self._state()]
        self._saved = [tf.Variable(value, trainable=False) for value in self._initial]
        if settings.graph:
            self._fast = tf.function(self._fast_chunk, jit_compile=settings.jit, autograph=False)
            self._checked = tf.function(self._checked_chunk, jit_compile=settings.jit, autograph=False)
            if not settings.jit:  # with Grappler, graph-mode loops can race (runtime.without_grappler)
                self._fast, self._checked = grappler_free(self._fast), grappler_free(self._checked)
        else:
            self._fast, self._checked = self._fast_chunk, self._checked_chunk

    @staticmethod
    def build(
        f: TFFunction, start: Mapping[str, float], params: Mapping[str, float], settings: MinimizeSettings
    ) -> _Loop:
        problem = Objective(f, start, params)
        optimizer = make_optimizer(settings.optimizer, settings.learning_rate, f.dtype.name)
        optimizer.build(problem.variables)
        return _Loop(problem, optimizer, settings)

    def reset(self, start: Mapping[str, float]) -> None:
        """Back to the state just after building, from ``start``: the optimizer's slots and step count too."""
        for v, value in zip(self._state(), self._initial, strict=True):
            v.assign(value)
        self.problem.assign(start)
        self._grads = None

    def _step(self) -> None:
        """One step of the seed's loop, in the chosen style."""
        p = self.problem
        if self.settings.style == "minimize":
            minimize_step(self.optimizer, p.loss, p.variables)
        else:
            grads = p.value_and_grad()[1]
            self.optimizer.apply_gradients(zip(grads, p.variables, strict=True))

    def _fast_chunk(self, n: Any) -> tuple[Any, ...]:
        self.traces += self.settings.graph  # counts traces: in graph mode this runs only while tracing
        tf = self.problem.tf
        for saved, v in zip(self._saved, self._state(), strict=True):
            saved.assign(v)
        if self.settings.graph:
            # cell 6's `for _ in tf.range(n)`, written as the tf.while_loop AutoGraph makes of
            # it; spelled out so that XLA sees a loop bound it need not specialise on
            def body(i: Any) -> Any:
                self._step()
                return i + 1

            tf.while_loop(lambda i: i < n, body, [tf.constant(0)])
        else:
            for _ in range(int(n)):
                self._step()
        y, g = self.problem.value_and_grad()
        return (y, g, *_status(tf, y, g, None))

    def _checked_chunk(self, n: Any, grads: list[Any]) -> tuple[Any, ...]:
        self.traces += self.settings.graph
        tf = self.problem.tf
        tol = self.settings.tol
        variables = self.problem.variables

        def update(g: list[Any]) -> tuple[Any, list[Any]]:
            if self.settings.style == "minimize":
                minimize_step(self.optimizer, self.problem.loss, variables)
            else:
                self.optimizer.apply_gradients(zip(g, variables, strict=True))
            return self.problem.value_and_grad()

        def cond(i: Any, status: Any, y: Any, norm: Any, g: list[Any], prev: list[Any]) -> Any:
            return (i < n) & tf.equal(status, RUNNING)

        def body(i: Any, status: Any, y: Any, norm: Any, g: list[Any], prev: list[Any]) -> tuple[Any, ...]:
            prev = [tf.identity(v.read_value()) for v in variables]
            with tf.control_dependencies(prev):
                y, g = update(g)
            status, norm = _status(tf, y, g, tol)
            return i + 1, status, y, norm, g, prev

        zero = tf.constant(0.0, variables[0].dtype)
        start = [tf.identity(v.read_value()) for v in variables]
        if not self.settings.graph:  # the same loop, run eagerly step by step
            i, status, y, norm, g, prev = tf.constant(0), tf.constant(RUNNING), zero, zero, grads, start
            while bool(cond(i, status, y, norm, g, prev)):
                i, status, y, norm, g, prev = body(i, status, y, norm, g, prev)
            return i, status, y, norm, g, prev
        return tf.while_loop(cond, body, (tf.constant(0), tf.constant(RUNNING), zero, zero, grads, start))

    def advance(self, n: int) -> tuple[int, int, Any, Any]:
        """Run up to n steps; returns (steps kept, status, f, |grad|) at the current point."""
        tf = self.problem.tf
        count = tf.constant(n)
        if self.settings.tol is None:
            y, g, status, norm = self._fast(count)
            if int(status) == RUNNING:
                self._grads = g
                return n, RUNNING, y, norm
            self._restore()  # undo the chunk and find the failing step
        if self._grads is None:
            self._grads = self.problem.value_and_grad()[1]
        i, status, y, norm, g, prev = self._checked(count, self._grads)
        taken, status = int(i), int(status)
        if status == DIVERGED:
            for v, p in zip(self.problem.variables, prev, strict=True):
                v.assign(p)
            taken -= 1
            y, g = self.problem.value_and_grad()
            norm = _status(tf, y, g, None)[1]
        self._grads = g
        return taken, status, y, norm

    def _restore(self) -> None:
        """Back to the state the last fast chunk started from."""
        for v, saved in zip(self._state(), self._saved, strict=True):
            v.assign(saved)
        self._grads = None

    def _state(self) -> list[Any]:
        return [*self.problem.variables, *self.optimizer.variables]
