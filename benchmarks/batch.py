"""Goal 5: gradients of a batch of points read from a CSV file, against numpy.

Ours is ``autodiff grad EXPR --at-file FILE --format plain > OUT`` minus the same command
on a one-point file (start-up: interpreter, TensorFlow, tracing). The baseline is the
same job written by hand in numpy, in this process: ``np.loadtxt``, the analytic
gradient, ``np.savetxt``. Until the CLI has ``--at-file`` the goal reports "not available".
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from measure import (
    BenchError,
    Measurement,
    Plan,
    autodiff_command,
    command_output,
    interleave,
    median,
    paired_ratio,
    timed_run,
)

EXPR = "x**2 + 3*x*y"
BIG = 1_000_000


def analytic_gradient(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx and d/dy of x**2 + 3*x*y, one row per point."""
    return np.column_stack((2 * x + 3 * y, 3 * x))


def at_file_available() -> bool:
    return "--at-file" in command_output([*autodiff_command(), "grad", "--help"])


def write_points(path: Path, n: int, seed: int = 0) -> None:
    points = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(n, 2))
    np.savetxt(path, points, fmt="%.6f", delimiter=",", header="x,y", comments="")


def numpy_job(src: Path, dst: Path) -> float:
    """Seconds for the hand-written job: read, differentiate, write."""
    start = time.perf_counter()
    data = np.loadtxt(src, delimiter=",", skiprows=1, ndmin=2)
    np.savetxt(dst, analytic_gradient(data[:, 0], data[:, 1]), fmt="%.9g", delimiter=" ")
    return time.perf_counter() - start


def autodiff_job(src: Path, dst: Path) -> float:
    """Seconds for a cold ``autodiff grad --at-file`` writing plain text to a file."""
    with dst.open("wb") as out:
        return timed_run([*autodiff_command(), "grad", EXPR, "--at-file", str(src), "--format", "plain"], stdout=out)


def check_output(src: Path, dst: Path, n: int) -> None:
    """One line per point, and the first few lines agree with the analytic gradient."""
    with dst.open() as f:
        lines = sum(1 for _ in f)
    if lines != n:
        raise BenchError(f"--at-file wrote {lines} lines for {n} points")
    head = np.loadtxt(src, delimiter=",", skiprows=1, ndmin=2, max_rows=5)
    got = np.loadtxt(dst, ndmin=2, max_rows=5)
    if not np.allclose(got, analytic_gradient(head[:, 0], head[:, 1]), rtol=1e-4, atol=1e-4):
        raise BenchError(f"--at-file gradients disagree with the analytic ones: {got[0]} vs {head[0]}")


def goal5_batch(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """Beyond start-up, 1e6 points cost no more than numpy; the cost per point falls with size."""
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-") as tmp:
        work = Path(tmp)
        sizes = sorted({1, *plan.batch_sizes, BIG})
        progress("writing point files")
        files = {n: work / f"points-{n}.csv" for n in sizes}
        for n, path in files.items():
            write_points(path, n)
        if not at_file_available():
            base = median([numpy_job(files[BIG], work / "numpy.txt") for _ in range(plan.batch_reps)])
            return [Measurement("5  grad --at-file, 1e6 points beyond start-up  vs  numpy", None, base,
                                target=1.0, note="not available: `autodiff grad --help` has no --at-file")]
        autodiff_job(files[1], work / "out-1.txt")  # warm the page cache
        tasks: dict = {("ours", n): (lambda n=n: autodiff_job(files[n], work / f"out-{n}.txt")) for n in sizes}
        tasks["numpy"] = lambda: numpy_job(files[BIG], work / "numpy.txt")
        samples = interleave(tasks, plan.batch_reps, progress=progress)
        check_output(files[BIG], work / f"out-{BIG}.txt", BIG)
    return _batch_rows(samples, plan.batch_sizes)


def _batch_rows(samples: dict, sizes: tuple[int, ...]) -> list[Measurement]:
    startup = samples[("ours", 1)]

    def beyond(n: int) -> list[float]:
        return [t - s for t, s in zip(samples[("ours", n)], startup, strict=True)]

    big = beyond(BIG)
    rows = [Measurement("5  grad --at-file, 1e6 points beyond start-up  vs  numpy", median(big),
                        median(samples["numpy"]), target=1.0, ratio=paired_ratio(big, samples["numpy"]))]
    for small, large in zip(sizes, sizes[1:]):
        per_small = [t / small for t in beyond(small)]
        per_large = [t / large for t in beyond(large)]
        resolved = median(per_small) > 0 and median(per_large) > 0
        rows.append(Measurement(f"5  cost per point at {large:.0e}  vs  at {small:.0e}", median(per_large),
                                median(per_small), target=1.0,
                                ratio=paired_ratio(per_large, per_small) if resolved else None,
                                note="" if resolved else "below the start-up noise"))
    return rows
