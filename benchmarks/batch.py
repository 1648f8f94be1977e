"""Goal 5: gradients of a batch of points read from a CSV file, against numpy.

Ours is ``autodiff grad EXPR --at-file FILE --format plain > OUT`` minus the same command
on a one-point file (start-up: interpreter, TensorFlow, tracing). The baseline is the
same job written by hand in numpy, in this process: ``np.loadtxt``, the analytic
gradient, ``np.savetxt``. Until the CLI has ``--at-file`` the goal reports "not available".
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from measure import (
    BenchError,
    Measurement,
    Plan,
    autodiff_command,
    command_output,
    interleave,
    median,
    python_command,
    sci,
    timed_run,
)

EXPR = "x**2 + 3*x*y"
BIG = 1_000_000
BIG_LABEL = f"5 grad --at-file, {sci(BIG)} points beyond start-up vs numpy loadtxt/savetxt"
NOT_AVAILABLE = "not available: `autodiff grad --help` has no --at-file"


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


WARM_SCRIPT = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from autodiffcli.cli import cli
files = json.loads(sys.argv[1]); reps = int(sys.argv[2]); expr = sys.argv[3]
real_stdout, times = sys.stdout, {}
with open(os.devnull, "w") as sink:
    sys.stdout = sink
    for n, path in files:  # warm-up: TensorFlow's import and first ops are start-up, not batch cost
        cli.main(["grad", expr, "--at-file", path, "--format", "plain"], standalone_mode=False)
    for _ in range(reps):
        for n, path in files:
            start = time.perf_counter()
            cli.main(["grad", expr, "--at-file", path, "--format", "plain"], standalone_mode=False)
            times.setdefault(n, []).append(time.perf_counter() - start)
sys.stdout = real_stdout
print(json.dumps(times))
"""


def warm_costs(files: dict[int, Path], reps: int) -> dict[int, float]:
    """Median seconds of an in-process ``grad --at-file`` at each size, TensorFlow already warm."""
    import json

    listing = json.dumps([[n, str(p)] for n, p in sorted(files.items())])
    out = command_output(python_command(WARM_SCRIPT) + [listing, str(reps), EXPR])
    return {int(n): median(ts) for n, ts in json.loads(out.strip().splitlines()[-1]).items()}


def goal5_batch(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """Beyond start-up, 1e6 points cost no more than numpy; the cost per point falls with size."""
    available = at_file_available()
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-") as tmp:
        work = Path(tmp)
        progress("writing point files")
        sizes = sorted({1, *plan.batch_sizes, BIG}) if available else [BIG]
        files = {n: work / f"points-{n}.csv" for n in sizes}
        for n, path in files.items():
            write_points(path, n)
        if not available:
            base = median([numpy_job(files[BIG], work / "numpy.txt") for _ in range(plan.batch_reps)])
            return [Measurement(BIG_LABEL, None, base, target=1.0, note=NOT_AVAILABLE)]
        samples = _time_batches(files, work, plan.batch_reps, progress)
        progress("per-point cost, in one warm process")
        warm = warm_costs(files, max(3, plan.batch_reps))
    return _batch_rows(samples, plan.batch_sizes, warm)


def _time_batches(
    files: dict[int, Path], work: Path, reps: int, progress: Callable[[str], None]
) -> dict[Any, list[float]]:
    """Ours at every size and numpy at 1e6, interleaved; then check our output.

    The one-point file (start-up alone) runs twice a repetition: its spread gives the
    noise that every "beyond start-up" figure carries.
    """
    autodiff_job(files[1], work / "out-1.txt")  # warms the page cache; untimed
    tasks: dict[Any, Callable[[], float]] = {
        ("ours", n): functools.partial(autodiff_job, files[n], work / f"out-{n}.txt") for n in files
    }
    tasks["start-up again"] = lambda: autodiff_job(files[1], work / "out-1.txt")
    tasks["numpy"] = lambda: numpy_job(files[BIG], work / "numpy.txt")
    samples = interleave(tasks, reps, progress=progress)
    check_output(files[BIG], work / f"out-{BIG}.txt", BIG)
    return samples


def _batch_rows(samples: dict[Any, list[float]], sizes: tuple[int, ...], warm: dict[int, float]) -> list[Measurement]:
    """Start-up is the median one-point run. The cost per point comes from one warm process
    (time of one call with n points, over n), since cold start-up noise swamps small
    batches. Sizes step by a factor of 100: past about 1e5 points the work is linear
    (reading and writing text), so the cost per point levels off at its floor."""
    starts = samples[("ours", 1)] + samples["start-up again"]
    startup = median(starts)

    def beyond(n: int) -> float:
        return median(samples[("ours", n)]) - startup

    rows = [Measurement(BIG_LABEL, beyond(BIG), median(samples["numpy"]), target=1.0)]

    def per_point(n: int) -> float:
        # what a caller pays per point for one call with n points, once TensorFlow is loaded:
        # the per-call work (parsing, sympy.diff, building the function) is shared by the batch
        return warm[n] / n

    for small, large in zip(sizes, sizes[1:], strict=False):
        label = f"5 grad --at-file, warm, cost per point at {sci(large)} vs at {sci(small)} points"
        rows.append(Measurement(label, per_point(large), per_point(small), target=1.0))
    return rows
