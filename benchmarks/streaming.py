"""Goal 7: ``grad --at-file`` streams, so a batch ten times larger costs ten times as much,
and memory does not grow with it.

Cost per point: ``autodiff grad "x**2 + 3*x*y" --at-file FILE --format plain`` called in one
warm process (as goal 5 does: a cold start-up varies by a second, as much as the work on
1e6 points), the time of one call over its number of points, at 1e6 and 1e7 points. Peak
memory: cold runs of the same command, the child's own ``ru_maxrss`` (``os.wait4``). The
1e7-point file (about 200 MB) is ten copies of the 1e6-point one, written to a temporary
directory and deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from batch import EXPR, warm_costs, write_points
from measure import ROOT, BenchError, Measurement, Plan, autodiff_command, bench_env, sci

SMALL, LARGE = 1_000_000, 10_000_000
MB = 1_000_000


def run_measured(path: Path) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one cold run on ``path``."""
    argv = [*autodiff_command(), "grad", EXPR, "--at-file", str(path), "--format", "plain"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bench_env(), cwd=ROOT)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise BenchError(f"grad --at-file {path.name} exited {proc.returncode}: {last}")
    return elapsed, usage.ru_maxrss * 1024  # KiB on Linux


def write_large(small: Path, large: Path, copies: int) -> None:
    """``copies`` times the body of ``small`` under its header."""
    with small.open("rb") as src:
        header = src.readline()
        body = src.read()
    with large.open("wb") as out:
        out.write(header)
        for _ in range(copies):
            out.write(body)


def goal7_streaming(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="autodiff-stream-") as tmp:
        work = Path(tmp)
        progress(f"writing {sci(SMALL)} and {sci(LARGE)} point files")
        files = {SMALL: work / "small.csv", LARGE: work / "large.csv"}
        write_points(files[SMALL], SMALL)
        write_large(files[SMALL], files[LARGE], LARGE // SMALL)
        progress("cost per point, in one warm process")
        warm = warm_costs({SMALL: files[SMALL], LARGE: files[LARGE]}, max(2, plan.batch_reps))
        peaks: dict[int, list[int]] = {n: [] for n in (SMALL, LARGE)}
        for rep in range(max(1, plan.batch_reps - 1)):
            progress(f"peak memory, cold runs, repetition {rep + 1}")
            for n in (SMALL, LARGE):
                peaks[n].append(run_measured(files[n])[1])
        shutil.rmtree(work, ignore_errors=True)

    def per_point(n: int) -> float:
        return warm[n] / n

    peak = {n: float(max(v)) for n, v in peaks.items()}
    label = f"7 grad --at-file streaming, warm, cost per point at {sci(LARGE)} vs at {sci(SMALL)} points"
    return [
        Measurement(label, per_point(LARGE), per_point(SMALL), target=1.10),
        Measurement(
            f"7 peak RSS at {sci(LARGE)} points vs at {sci(SMALL)} + 100 MB",
            peak[LARGE],
            peak[SMALL] + 100 * MB,
            target=1.0,
            unit="bytes",
        ),
        Measurement(f"7 peak RSS at {sci(LARGE)} points vs 1 GB", peak[LARGE], 1000 * MB, target=1.0, unit="bytes"),
    ]
