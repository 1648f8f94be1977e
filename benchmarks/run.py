"""autodiff benchmarks: every goal as a ratio to a baseline measured side by side.

    .venv/bin/python benchmarks/run.py            # full run, a few minutes
    .venv/bin/python benchmarks/run.py --quick    # fewer repetitions
    .venv/bin/python benchmarks/run.py --goals 3,6

Prints one table and, after a full run of every goal, writes it as markdown to
benchmarks/results.md (or wherever --output says). The exit status is 0 whatever the results (these are
measurements, not tests) unless --strict is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before anything can import TensorFlow

from measure import FULL, QUICK, Measurement, Plan
from report import markdown, print_table
from rich.console import Console

HERE = Path(__file__).resolve().parent
NOTES = "<!-- notes: benchmarks/run.py rewrites the table above and keeps everything from here on -->"
Goal = Callable[[Plan, Callable[[str], None]], list[Measurement]]

# number, title, module, function. Subprocess goals come first: the in-process ones
# (module loops) import TensorFlow into this process.
GOALS = (
    ("1", "--help / --version start-up", "startup", "goal1_help"),
    ("2", "cold grad vs import tensorflow", "startup", "goal2_cold_grad"),
    ("13", "the warm server vs cold runs", "warm", "goal13_warm"),
    ("5", "batch gradients from a CSV file", "batch", "goal5_batch"),
    ("7", "--at-file streams: cost per point and memory at 1e7 points", "streaming", "goal7_streaming"),
    ("3", "XLA minimize loop", "loops", "goal3_xla"),
    ("4", "eager minimize loop", "loops", "goal4_eager"),
    ("6", "no retracing across chunks", "loops", "goal6_no_retrace"),
    ("8", "bfgs and lbfgs evaluations vs SciPy", "search", "goal8_quasi_newton"),
    ("9", "newton's quadratic convergence", "search", "goal9_newton"),
    ("10", "--starts 100,000 with Adam vs a hand-written batched loop", "search", "goal10_adam_starts"),
    ("11", "local searches, cost per start vs SciPy", "search", "goal11_local_per_start"),
    ("12", "global search vs differential_evolution", "search", "goal12_global"),
    ("14", "autodiff fit vs curve_fit: NIST StRD and 10^6 rows", "fit", "goal14_fit"),
    ("15", "minimize --subject-to on Hock-Schittkowski problems vs SciPy's SLSQP", "constraints", "goal14_constraints"),
    ("16", "the defaults: evaluations vs SciPy's BFGS, the higher-order test's cost", "defaults", "goal16_defaults"),
)


def run_goal(number: str, title: str, module: str, function: str, plan: Plan, log: Console) -> list[Measurement]:
    """One goal's rows; a failure becomes an error row instead of ending the run."""
    started = time.perf_counter()
    log.print(f"[bold]goal {number}[/]: {title}")

    def progress(message: str) -> None:
        log.print(f"  goal {number}: {message}", style="dim")

    try:
        goal: Goal = getattr(importlib.import_module(module), function)
        rows = goal(plan, progress)
    except Exception as err:  # reported in the table; the other goals still run
        rows = [Measurement(f"{number} {title}", None, None, target=1.0, note=f"error: {type(err).__name__}: {err}")]
    log.print(f"  goal {number}: {time.perf_counter() - started:.1f} s", style="dim")
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter eager runs")
    parser.add_argument(
        "--goals", default=",".join(sorted(g[0] for g in GOALS)), help="comma-separated goal numbers (default: all)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown file to write (default: benchmarks/results.md, after a full run of every goal)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    wanted = {g.strip() for g in args.goals.split(",") if g.strip()}
    log = Console(stderr=True)
    began = time.perf_counter()
    rows: list[Measurement] = []
    for number, title, module, function in GOALS:
        if number in wanted:
            rows += run_goal(number, title, module, function, plan, log)
    rows.sort(key=lambda m: int(m.goal.split()[0]))  # by goal number; stable, so each goal keeps its order
    title = f"autodiff benchmarks ({'quick' if args.quick else 'full'} run, {time.perf_counter() - began:.0f} s)"
    print_table(rows, title, Console(width=max(Console().width, 150)))
    complete = not args.quick and wanted >= {g[0] for g in GOALS}
    output = args.output or (HERE / "results.md" if complete else None)
    if output:
        write_results(output, markdown(rows, title))
        log.print(f"wrote {output}")
    return 1 if args.strict and any(m.passed is False for m in rows) else 0


def write_results(path: Path, table: str) -> None:
    """The new table, then the notes the old file kept below NOTES (written by hand)."""
    old = path.read_text() if path.exists() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else ""
    path.write_text(table + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    sys.exit(main())
