"""Goals 8-12 (issue 8): Newton, quasi-Newton and multi-start search, against SciPy and hand loops.

Every goal runs in this process, through the library (``minimize.minimize``, the code the CLI
runs), beside a baseline measured in the same run: SciPy's own optimizers, or a
hand-written batched Keras loop compiled with XLA.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from measure import Measurement, Plan, interleave, median, paired_ratio

from autodiffcli import minimize, settings
from autodiffcli.runtime import tensorflow
from autodiffcli.solve import types

tf = tensorflow()

ROSENBROCK = "100*(y-x**2)**2 + (1-x)**2"
HIMMELBLAU = "(x**2+y-11)**2 + (x+y**2-7)**2"
CONVEX = "log(cosh(x - 3)) + log(cosh(y + 1)) + (x - 3)**2/10 + (y + 1)**2/10"


def run(text: str, dtype: str = "float64", start: dict[str, float] | None = None, **kw: Any) -> minimize.MinimizeReport:
    problem = settings.load_problem(text, (), dtype)
    origin = start or {v: 0.0 for v in problem.variables}
    return minimize.minimize(problem, origin, types.MinimizeSettings(**kw))


def rosen(v: np.ndarray) -> float:
    return 100 * (v[1] - v[0] ** 2) ** 2 + (1 - v[0]) ** 2


def rosen_grad(v: np.ndarray) -> np.ndarray:
    return np.array([-400 * v[0] * (v[1] - v[0] ** 2) - 2 * (1 - v[0]), 200 * (v[1] - v[0] ** 2)])


def himmelblau(v: np.ndarray) -> float:
    x, y = v
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def himmelblau_grad(v: np.ndarray) -> np.ndarray:
    x, y = v
    return np.array([4 * x * (x * x + y - 11) + 2 * (x + y * y - 7), 2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)])


# ---------------------------------------------------------------- goal 8: evaluations against SciPy


def goal8_quasi_newton(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    from scipy.optimize import minimize

    rows = []
    for opt, method in (("lbfgs", "L-BFGS-B"), ("bfgs", "BFGS")):
        ours = run(ROSENBROCK, start={"x": -1.2, "y": 1.0}, optimizer=opt, tol=1e-5).outcome
        ref = minimize(rosen, [-1.2, 1.0], jac=rosen_grad, method=method, options={"gtol": 1e-5})
        progress(f"{opt}: {ours.evaluations} evaluations, SciPy {ref.nfev}")
        rows.append(
            Measurement(
                f"8 {opt} on Rosenbrock from (-1.2, 1), tol 1e-5: evaluations vs SciPy {method}",
                ours.evaluations,
                ref.nfev,
                target=1.5,
                unit="count",
            )
        )
    return rows


# ---------------------------------------------------------------- goal 9: Newton's quadratic convergence


def goal9_newton(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    start = {"x": -5.0, "y": 5.0}  # at distance 10 from the minimum (3, -1)
    o = run(CONVEX, start=start, optimizer="newton", tol=1e-10, every=1).outcome
    assert math.dist((o.x["x"], o.x["y"]), (3, -1)) < 1e-8 and o.status == "converged"
    progress(f"{o.steps} iterations, |grad| {o.grad_norm:.1e}")
    return [
        Measurement(
            "9 newton iterations to |grad| 1e-10 (float64, start at distance 10) vs a budget of 10",
            o.steps,
            10,
            target=1.0,
            unit="count",
        )
    ]


# ---------------------------------------------------------------- goal 10: --starts with Adam


class HandBatchAdam:
    """Hand-written: Keras Adam on one variable per coordinate (one entry per start), one XLA loop."""

    def __init__(self, starts: np.ndarray) -> None:
        import keras

        self.x = tf.Variable(starts[:, 0], dtype=tf.float32)
        self.y = tf.Variable(starts[:, 1], dtype=tf.float32)
        self.opt = keras.optimizers.Adam(0.01)
        self.opt.build([self.x, self.y])
        self.train = tf.function(self._steps, jit_compile=True)

    def _steps(self, n: Any) -> Any:
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                x, y = self.x, self.y
                loss = tf.reduce_sum((x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2)
            grads = tape.gradient(loss, [self.x, self.y])
            self.opt.apply_gradients(zip(grads, [self.x, self.y], strict=True))
        return loss

    def __call__(self, steps: int) -> float:
        began = time.perf_counter()
        float(self.train(tf.constant(steps)))
        return time.perf_counter() - began


def goal10_adam_starts(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    starts, (n1, n2) = 100_000, (100, 1000)
    lo, hi = np.array([-5.0, -5.0]), np.array([5.0, 5.0])
    points = np.random.default_rng(0).uniform(lo, hi, (starts, 2))
    hand = HandBatchAdam(points)

    def ours(steps: int) -> float:
        o = run(HIMMELBLAU, "float32", optimizer="adam", steps=steps, starts=starts, every=steps).outcome
        traces.append(o.traces)
        return o.optimize_s

    traces: list[int] = []
    hand(10)  # trace and compile once: a warm baseline, as a user's loop would be
    tasks = {(w, n): functools.partial(ours if w == "ours" else hand, n) for w in ("ours", "hand") for n in (n1, n2)}
    samples = interleave(tasks, reps=3, warmup=0, progress=progress)
    per = {
        w: [(b - a) / ((n2 - n1) * starts) for a, b in zip(samples[(w, n1)], samples[(w, n2)], strict=True)]
        for w in ("ours", "hand")
    }
    return [
        Measurement(
            f"10 --starts {starts:,} adam, cost per start-step ({n1} to {n2} steps) vs hand-written batched XLA loop",
            median(per["ours"]),
            median(per["hand"]),
            target=1.1,
            ratio=paired_ratio(per["ours"], per["hand"]),
        ),
        Measurement("10 traces per --starts run", max(traces), 1, target=1, unit="count", exact=True),
    ]


# ---------------------------------------------------------------- goal 11: local searches per start


def goal11_local_per_start(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """Ours from 100,000 starts against SciPy's L-BFGS-B from 200 starts of the same box, one by one.

    Without --bounds our starts are drawn in the default box, (0, 0) +- 10, and SciPy's run
    unbounded from the same box; with --bounds both keep to x=-5:5,y=-5:5.
    """
    from scipy.optimize import minimize

    box = ("x", -5.0, 5.0), ("y", -5.0, 5.0)
    rng = np.random.default_rng(0)
    samples_of = {True: rng.uniform(-5, 5, (200, 2)), False: rng.uniform(-10, 10, (200, 2))}

    def scipy_loop(bounded: bool) -> float:
        sample = samples_of[bounded]
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for x0 in sample:
                minimize(
                    himmelblau,
                    x0,
                    jac=himmelblau_grad,
                    method="L-BFGS-B",
                    bounds=[(-5, 5)] * 2 if bounded else None,
                )
        return (time.perf_counter() - began) / len(sample)

    rows, starts = [], 100_000
    for opt, bounded in (("newton", True), ("lbfgs", False), ("lbfgs", True), ("bfgs", False)):

        def ours(opt: str = opt, bounded: bool = bounded) -> float:
            o = run(HIMMELBLAU, "float64", optimizer=opt, starts=starts, bounds=box if bounded else ()).outcome
            return o.optimize_s / starts

        samples = interleave({"ours": ours, "scipy": functools.partial(scipy_loop, bounded)}, reps=3, progress=progress)
        where = "--bounds x=-5:5,y=-5:5" if bounded else "no bounds"
        rows.append(
            Measurement(
                f"11 {opt} from --starts {starts:,} ({where}), cost per start vs SciPy L-BFGS-B in a Python loop",
                median(samples["ours"]),
                median(samples["scipy"]),
                target=0.02,
                ratio=paired_ratio(samples["ours"], samples["scipy"]),
            )
        )
    return rows


# ---------------------------------------------------------------- goal 12: global search vs differential evolution


def goal12_global(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    from scipy.optimize import differential_evolution

    box = ("x", -5.0, 5.0), ("y", -5.0, 5.0)
    found: dict[str, float] = {}

    def ours() -> float:
        o = run(HIMMELBLAU, "float64", optimizer="newton", starts=1000, bounds=box).outcome
        found["ours"] = o.f
        return o.optimize_s

    def de() -> float:
        began = time.perf_counter()
        res = differential_evolution(himmelblau, [(-5, 5), (-5, 5)], seed=0)
        found["de"] = float(res.fun)
        return time.perf_counter() - began

    samples = interleave({"ours": ours, "de": de}, reps=5, warmup=1, progress=progress)
    rows = [
        Measurement(
            "12 global search, newton --starts 1000 on Himmelblau: optimize_s vs SciPy differential_evolution",
            median(samples["ours"]),
            median(samples["de"]),
            target=3.0,
            ratio=paired_ratio(samples["ours"], samples["de"]),
        )
    ]
    better = 1.0 if found["ours"] <= found["de"] + 1e-12 else 2.0
    progress(f"best f: ours {found['ours']:.3g}, differential_evolution {found['de']:.3g}")
    rows.append(
        Measurement(
            "12 best f no worse than differential_evolution's (1 = yes)",
            better,
            1.0,
            target=1.0,
            unit="count",
            exact=True,
        )
    )
    return rows
