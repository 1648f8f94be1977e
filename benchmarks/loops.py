"""Goals 3, 4 and 6: the minimize loops, in this process, against hand-written Keras loops.

The problem is the seed's: f(x) = a*x**2 + b*x + c with a=1, b=-2, c=1, float32, from x=0.
Ours is ``keras_loop.run`` and its ``outcome.optimize_s``; the baselines are the loops a
user would write by hand. Marginal cost per step is (t(N2) - t(N1)) / (N2 - N1), so
set-up, tracing and compiling cancel out.

Importing this module imports TensorFlow, through the library's own quiet importer so the
baselines run under exactly the settings ours does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from measure import Measurement, Plan, affordable, interleave, marginals, median, paired_ratio, sci

from autodiffcli import settings
from autodiffcli.calculus.tf_build import TFFunction
from autodiffcli.runtime import tensorflow
from autodiffcli.solve import keras_loop, types

tf = tensorflow()

PROBLEM = settings.load_problem(None, (), "float32")  # the seed's a*x**2 + b*x + c
START = {"x": 0.0}


# ---------------------------------------------------------------- ours


class ChunkClock:
    """A Reporter that notes when each compiled chunk returns (``progress`` follows each one)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ticks: list[float] = []

    def row(self, row: types.Row) -> None:
        pass

    def progress(self, done: int, total: int) -> None:
        self.ticks.append(time.perf_counter())

    def first_chunk_overhead(self) -> float:
        """Time to the first chunk's return, less a typical chunk: set-up, trace and compile."""
        chunks = [b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)]
        return (self.ticks[0] - self.started) - median(chunks)


def ours(steps: int, *, graph: bool, optimizer: str, every: int | None = None, reporter: Any = None) -> types.Outcome:
    settings = types.MinimizeSettings(optimizer=optimizer, steps=steps, graph=graph, jit=graph, every=every)
    keras_loop.forget_compiled()  # every run sets up, traces and compiles, as a cold command does (goal 13: warm)
    return keras_loop.run(TFFunction(PROBLEM.expr, first_order=True), START, PROBLEM.params, settings, reporter)


# ---------------------------------------------------------------- baselines


def _seed_constants() -> tuple[Any, Any, Any, Any]:
    p = PROBLEM.params
    return tf.Variable(0.0), tf.constant(p["a"]), tf.constant(p["b"]), tf.constant(p["c"])


class XlaAdamLoop:
    """Hand-written: Keras 3 Adam, one ``tf.function(jit_compile=True)`` loop over ``tf.range(n)``."""

    def __init__(self) -> None:
        import keras

        self.x, self.a, self.b, self.c = _seed_constants()
        self.opt = keras.optimizers.Adam(0.01)
        self.opt.build([self.x])
        self.train = tf.function(self._steps, jit_compile=True)

    def _steps(self, n: Any) -> Any:
        x, a, b, c = self.x, self.a, self.b, self.c
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                y = a * x**2 + b * x + c
            g = tape.gradient(y, x)
            self.opt.apply_gradients([(g, x)])
        return x.read_value()

    def seconds(self, n: int) -> float:
        steps = tf.constant(n)
        start = time.perf_counter()
        self.train(steps).numpy()
        return time.perf_counter() - start

    def traces(self) -> int:
        return self.train.experimental_get_tracing_count()

    def warm_up(self, sizes: tuple[int, ...]) -> None:
        """Untimed calls, so that timed ones only run the loop.

        The first call traces. XLA then compiles once per distinct n (AutoGraph's ``tf.range``
        loop makes the trip count a compile-time constant), and the first run of each compiled
        size is still slow; so every size to be timed runs twice first.
        """
        for n in (10, *sizes, *sizes):
            self.seconds(n)


class EagerSgdLoop:
    """The seed's cell 4: a bare eager loop, Keras 3 SGD(0.01), one tape per step."""

    def __init__(self) -> None:
        import keras

        self.x, self.a, self.b, self.c = _seed_constants()
        self.opt = keras.optimizers.SGD(0.01)

    def seconds(self, n: int) -> float:
        x, a, b, c, opt = self.x, self.a, self.b, self.c, self.opt
        start = time.perf_counter()
        for _ in range(n):
            with tf.GradientTape() as tape:
                y = a * x**2 + b * x + c
            g = tape.gradient(y, x)
            opt.apply_gradients([(g, x)])
        return time.perf_counter() - start


# ---------------------------------------------------------------- goals


def goal3_xla(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """XLA marginal cost per step within 1.1x the hand-written loop; compile cost flat in steps."""

    def ours_xla(steps: int) -> float:
        return ours(steps, graph=True, optimizer="adam").optimize_s

    n1, n2 = affordable(ours_xla, *plan.xla_steps, floor=1000, budget_s=10.0)
    baseline = XlaAdamLoop()
    baseline.warm_up((n1, n2))
    overheads: dict[int, list[float]] = {100: [], n2: []}
    traces: list[int] = []

    def ours_timed(steps: int) -> float:
        clock = ChunkClock()
        outcome = ours(steps, graph=True, optimizer="adam", reporter=clock)
        traces.append(outcome.traces)
        if steps in overheads:
            overheads[steps].append(clock.first_chunk_overhead())
        return outcome.optimize_s

    def marginal(seconds: Callable[[int], float]) -> Callable[[], float]:
        """One repetition's cost per extra step: N1 and N2 back to back, so they share the noise."""
        return lambda: (seconds(n2) - seconds(n1)) / (n2 - n1)

    samples = interleave(
        {"ours": marginal(ours_timed), "base": marginal(baseline.seconds), "ours 100": lambda: ours_timed(100)},
        plan.xla_reps,
        progress=progress,
    )
    ours_m, base_m = samples["ours"], samples["base"]
    small, large = overheads[100], overheads[n2]
    return [
        Measurement(
            f"3 XLA Adam, cost per extra step ({sci(n1)} to {sci(n2)}) vs hand-written tf.range loop",
            median(ours_m),
            median(base_m),
            target=1.1,
            ratio=paired_ratio(ours_m, base_m),
        ),
        Measurement(
            f"3 XLA set-up + trace + compile, steps={sci(n2)} vs steps=100",
            median(large),
            median(small),
            target=1.25,
            ratio=paired_ratio(large, small),
        ),
        Measurement(
            f"3 outcome.traces, XLA runs of 100 to {sci(n2)} steps (most) vs hand-written loop's",
            max(traces),
            baseline.traces(),
            target=1,
            unit="count",
            exact=True,
        ),
    ]


def goal4_eager(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """Eager marginal cost per step within 1.2x the seed's bare loop."""

    def ours_eager(steps: int) -> float:
        return ours(steps, graph=False, optimizer="sgd").optimize_s

    n1, n2 = affordable(ours_eager, *plan.eager_steps, floor=20, budget_s=30.0)
    baseline = EagerSgdLoop()
    baseline.seconds(20)  # builds the optimizer; untimed
    tasks: dict = {("base", n): (lambda n=n: baseline.seconds(n)) for n in (n1, n2)}
    tasks.update({("ours", n): (lambda n=n: ours_eager(n)) for n in (n1, n2)})
    samples = interleave(tasks, plan.eager_reps, progress=progress)
    ours_m, base_m = marginals(samples, "ours", n1, n2), marginals(samples, "base", n1, n2)
    return [
        Measurement(
            f"4 eager SGD, cost per extra step ({n1} to {n2}) vs seed's bare loop (cell 4)",
            median(ours_m),
            median(base_m),
            target=1.2,
            ratio=paired_ratio(ours_m, base_m),
        )
    ]


def goal6_no_retrace(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """A graph run of many chunks traces its loop once."""
    steps, every = plan.chunk_steps
    outcome = ours(steps, graph=True, optimizer="adam", every=every)
    return [
        Measurement(
            f"6 outcome.traces, one XLA run of {steps:,} steps, a row every {every}",
            outcome.traces,
            1,
            target=1,
            unit="count",
            exact=True,
        )
    ]
