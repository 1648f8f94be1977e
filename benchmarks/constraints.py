"""Goal 15 (issue 22): minimize --subject-to on Hock and Schittkowski's problems, against SciPy's SLSQP.

Both sides run in this process on the problems of tests/hs_problems.py, from the book's
starts, with derivatives from tapes:

* ours: the library's constrained use case (``constrained.minimize_constrained``, what the
  CLI runs): SLSQP on one compiled tape for f, the constraints and their gradients, then
  the KKT analysis with Hessians from nested tapes (and restarts when a run fails);
* SciPy: ``scipy.optimize.minimize(method="SLSQP")`` with its defaults, f and each
  constraint a compiled tape of its own (value and gradient).

Printed side by side: the total time (median of paired ratios, at most 3x), the count of
problems solved to the book's value, and per problem the evaluations (distinct points at
which f and the constraints were computed; at most 1.5x SciPy's, on the problems both
solve: where SciPy's run fails, ours restarts, and the counts measure different work).

    .venv/bin/python benchmarks/constraints.py
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from measure import Measurement, Plan, median  # noqa: E402

from autodiffcli import constrained, settings  # noqa: E402
from autodiffcli.calculus.tf_build import TFFunction  # noqa: E402
from autodiffcli.runtime import tensorflow  # noqa: E402
from autodiffcli.solve import types  # noqa: E402
from hs_problems import HS, PROBLEMS  # noqa: E402

REPS = 3


def _problem(hs: HS) -> tuple[Any, dict[str, float], types.MinimizeSettings]:
    problem = settings.load_problem(hs.objective, (), "float64", hs.constraints)
    problem = settings.with_constraints(problem, hs.constraints, hs.start, hs.bounds)
    start = settings.parse_point(hs.start, problem.variables, "--from")
    bounds = settings.parse_bounds(hs.bounds, problem.variables)
    config = types.MinimizeSettings(optimizer="slsqp", bounds=tuple((n, lo, hi) for n, (lo, hi) in bounds.items()))
    return problem, start, config


def ours(hs: HS) -> tuple[float, int]:
    """f and the evaluations of the library's default method."""
    problem, start, config = _problem(hs)
    report = constrained.minimize_constrained(problem, start, config)
    return report.outcome.f, report.outcome.evaluations


def scipy_slsqp(hs: HS) -> tuple[float, int]:
    """f and the evaluations of SciPy's SLSQP with its defaults, each function a compiled tape."""
    from scipy.optimize import Bounds, minimize

    tf = tensorflow()
    problem, start, config = _problem(hs)
    names = problem.variables
    seen: set[bytes] = set()

    def compiled(expr: Any) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        f = TFFunction(expr, "float64")

        @tf.function(input_signature=[tf.TensorSpec([len(names)], tf.float64)], autograph=False)
        def value_and_grad(x: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                env = {n: x[j] for j, n in enumerate(names)}
                y = f(env)
            return y, tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        def call(x: np.ndarray) -> tuple[float, np.ndarray]:
            seen.add(np.asarray(x, dtype=np.float64).tobytes())
            y, g = value_and_grad(tf.constant(x, tf.float64))
            return float(y), g.numpy()

        return call

    objective = compiled(problem.expr)
    cons = []
    for c in problem.constraints:
        g = compiled(c.residual)
        sign = -1.0 if c.sense == "<=" else 1.0
        cons.append(
            {
                "type": "eq" if c.equality else "ineq",
                "fun": lambda x, g=g, s=sign: s * g(x)[0],
                "jac": lambda x, g=g, s=sign: s * g(x)[1],
            }
        )
    box = types.Box.of(names, config.bounds_map)
    x0 = np.clip([start[n] for n in names], box.lo, box.hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            objective,
            x0,
            jac=True,
            method="SLSQP",
            constraints=cons,
            bounds=Bounds(box.lo, box.hi) if box.bounded else None,
        )
    return float(res.fun), len(seen)


def solved(hs: HS, f: float) -> bool:
    return math.isfinite(f) and abs(f - hs.f_star) <= 1e-6 * max(1.0, abs(hs.f_star))


def goal14_constraints(plan: Plan | None, progress: Callable[[str], None]) -> list[Measurement]:
    times: dict[str, list[float]] = {"ours": [], "scipy": []}
    results: dict[str, list[tuple[float, int]]] = {}
    for rep in range(REPS):
        order = [("ours", ours), ("scipy", scipy_slsqp)]
        if rep % 2:
            order.reverse()
        for name, solve in order:
            began = time.perf_counter()
            results[name] = [solve(hs) for hs in PROBLEMS]
            times[name].append(time.perf_counter() - began)
    ratios = [a / b for a, b in zip(times["ours"], times["scipy"], strict=True)]
    count_ours = sum(solved(hs, f) for hs, (f, _) in zip(PROBLEMS, results["ours"], strict=True))
    count_scipy = sum(solved(hs, f) for hs, (f, _) in zip(PROBLEMS, results["scipy"], strict=True))
    worst, worst_name = 0.0, ""
    for hs, (f, n), (g, m) in zip(PROBLEMS, results["ours"], results["scipy"], strict=True):
        progress(
            f"{hs.name}: ours f = {f:.10g} ({n} evaluations{', book' if solved(hs, f) else ''}), "
            f"SciPy f = {g:.10g} ({m}{', book' if solved(hs, g) else ''})"
        )
        if solved(hs, f) and solved(hs, g) and n / m > worst:  # the same work: both reached the book
            worst, worst_name = n / m, hs.name
    total = len(PROBLEMS)
    return [
        Measurement(
            f"15 {total} HS problems from the book's starts: total time, default (SLSQP + KKT report) vs SciPy's "
            "SLSQP with tape gradients",
            median(times["ours"]),
            median(times["scipy"]),
            target=3.0,
            ratio=median(ratios),
        ),
        Measurement(
            f"15 HS problems solved to the book's value: SciPy's count over ours (ours {count_ours}/{total}, "
            f"SciPy {count_scipy}/{total})",
            count_ours,
            count_scipy,
            target=1.0,
            unit="count",
            ratio=count_scipy / max(count_ours, 1),
        ),
        Measurement(
            f"15 HS evaluations per problem vs SciPy's SLSQP, the largest ratio where both solve it ({worst_name})",
            None,
            None,
            target=1.5,
            unit="count",
            ratio=worst,
        ),
    ]


if __name__ == "__main__":
    for row in goal14_constraints(None, print):
        verdict = "ok" if row.passed else "MISSED" if row.passed is False else "-"
        print(
            f"{row.goal}: ours {row.ours}, baseline {row.baseline}, ratio {row.ratio:.3g} (<= {row.target}) {verdict}"
        )
