"""What every goal shares: the Measurement row, the repetition plan, and timing helpers.

The machine is small and shared, so no absolute time is trusted: each goal times our code
and a baseline side by side, interleaved (the order rotates each repetition), and reports
the median of the per-repetition ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
K = TypeVar("K", bound=Hashable)


class BenchError(RuntimeError):
    """A command under test failed, or produced output we cannot accept."""


@dataclass
class Measurement:
    """One row of the results table: our figure, the baseline's, and the ratio that must hold."""

    goal: str
    ours: float | None
    baseline: float | None
    target: float  # the most ours/baseline may be (or, when exact, must be)
    unit: str = "s"  # "s" (printed scaled, ns to s), "count" or "bytes"
    ratio: float | None = None  # median of paired ratios; None: ours / baseline
    exact: bool = False  # pass only when ratio == target (trace counts)
    note: str = ""  # why a figure is missing ("not available", an error)

    def __post_init__(self) -> None:
        if self.ratio is None and not self.note and self.ours is not None and self.baseline:
            self.ratio = self.ours / self.baseline

    @property
    def passed(self) -> bool | None:
        """True or False, or None when there is nothing to judge."""
        if self.ratio is None or self.note:
            return None
        return self.ratio == self.target if self.exact else self.ratio <= self.target


@dataclass(frozen=True)
class Plan:
    """How many repetitions and which sizes each goal uses."""

    startup_reps: int  # goal 1: --help, --version, import click+rich
    import_reps: int  # goal 2: cold grad vs import tensorflow
    xla_reps: int  # goal 3
    xla_steps: tuple[int, int]  # N1, N2 for the XLA marginal cost
    eager_reps: int  # goal 4
    eager_steps: tuple[int, int]  # N1, N2 for the eager marginal cost
    batch_reps: int  # goal 5
    batch_sizes: tuple[int, ...] = (100, 10_000, 1_000_000)
    chunk_steps: tuple[int, int] = (10_000, 10)  # goal 6: steps, a history row every K (>= 1,000 chunks)


FULL = Plan(
    startup_reps=9,
    import_reps=7,
    xla_reps=11,
    xla_steps=(1_000_000, 20_000_000),
    eager_reps=3,
    eager_steps=(500, 2000),
    batch_reps=3,
)
QUICK = Plan(
    startup_reps=5,
    import_reps=3,
    xla_reps=5,
    xla_steps=(1_000_000, 20_000_000),
    eager_reps=2,
    eager_steps=(200, 1000),
    batch_reps=1,
)


def sci(n: int) -> str:
    """1000000 -> "1e6", for labels."""
    mantissa, exponent = f"{n:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of ours[i] / baseline[i]: each pair ran back to back, so shared noise cancels."""
    return statistics.median(o / b for o, b in zip(ours, baseline, strict=True))


def marginals(samples: Mapping[Any, list[float]], who: str, n1: int, n2: int) -> list[float]:
    """Per repetition, (t(N2) - t(N1)) / (N2 - N1) from samples keyed (who, N)."""
    return [(t2 - t1) / (n2 - n1) for t1, t2 in zip(samples[(who, n1)], samples[(who, n2)], strict=True)]


def affordable(time_for: Callable[[int], float], n1: int, n2: int, floor: int, budget_s: float) -> tuple[int, int]:
    """(N1, N2), divided by 10 as often as needed (N1 >= floor) for one N2 run to fit ``budget_s``.

    Guards the total run time against a slow build: probes at ``floor`` and ``10 * floor``
    steps give a fixed cost and a cost per step. The probes double as warm-up runs.
    """
    fixed, longer = time_for(floor), time_for(10 * floor)
    per_step = max(longer - fixed, 0.0) / (9 * floor)
    while n1 // 10 >= floor and fixed + per_step * n2 > budget_s:
        n1, n2 = n1 // 10, n2 // 10
    return n1, n2


def interleave(
    tasks: Mapping[K, Callable[[], float]],
    reps: int,
    warmup: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[K, list[float]]:
    """Run every task once per repetition, rotating the order; each task returns seconds.

    ``warmup`` rounds run first and are thrown away (page cache, lazy initialisation).
    """
    names = list(tasks)
    for _ in range(warmup):
        for name in names:
            tasks[name]()
    samples: dict[K, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        if progress:
            progress(f"repetition {rep + 1}/{reps}")
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(tasks[name]())
    return samples


# ---------------------------------------------------------------- subprocesses


def bench_env() -> dict[str, str]:
    """The environment every timed subprocess gets: ours and the baselines alike."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("AUTODIFF_TF_LOGS", None)
    env["AUTODIFF_SERVER"] = "off"  # cold means cold, even if a server of yours runs (goal 13 turns it on)
    return env


def autodiff_command() -> list[str]:
    """The installed console script next to this interpreter (same venv), else ``-m``."""
    script = Path(sys.executable).parent / "autodiff"
    return [str(script)] if script.exists() else [sys.executable, "-m", "autodiffcli"]


def python_command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def timed_run(
    argv: Sequence[str], stdout: IO[bytes] | int = subprocess.DEVNULL, env: Mapping[str, str] | None = None
) -> float:
    """Wall seconds of one fresh process; a non-zero exit is an error, not a figure."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), stdout=stdout, stderr=subprocess.PIPE, env={**bench_env(), **(env or {})}, cwd=ROOT
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no message"
        raise BenchError(f"{' '.join(map(str, argv[:3]))} ... exited {proc.returncode}: {last}")
    return elapsed


def command_output(argv: Sequence[str]) -> str:
    """stdout of a command that is not timed (``--help`` probes)."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=bench_env(), cwd=ROOT)
    return proc.stdout + proc.stderr
