"""autodiff benchmarks: every goal as a ratio to a baseline measured side by side.

    .venv/bin/python benchmarks/run.py            # full run, a few minutes
    .venv/bin/python benchmarks/run.py --quick    # fewer repetitions
    .venv/bin/python benchmarks/run.py --goals 3,6

Prints one table and writes it as markdown to benchmarks/results.md. The exit status is
0 whatever the results (these are measurements, not tests) unless --strict is given.
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

from measure import FULL, QUICK, Measurement, Plan  # noqa: E402
from report import markdown, print_table  # noqa: E402
from rich.console import Console  # noqa: E402

HERE = Path(__file__).resolve().parent
Goal = Callable[[Plan, Callable[[str], None]], list[Measurement]]


def goals() -> dict[str, tuple[str, Callable[[], Goal]]]:
    """Goal number -> (title, loader). Subprocess goals first: in-process ones import TensorFlow."""

    def load(module: str, name: str) -> Callable[[], Goal]:
        return lambda: getattr(importlib.import_module(module), name)

    return {
        "1": ("--help / --version start-up", load("startup", "goal1_help")),
        "2": ("cold grad vs import tensorflow", load("startup", "goal2_cold_grad")),
        "5": ("batch gradients from a CSV file", load("batch", "goal5_batch")),
        "3": ("XLA minimize loop", load("loops", "goal3_xla")),
        "4": ("eager minimize loop", load("loops", "goal4_eager")),
        "6": ("no retracing across chunks", load("loops", "goal6_no_retrace")),
    }


def run_goal(number: str, title: str, loader: Callable[[], Goal], plan: Plan, log: Console) -> list[Measurement]:
    """One goal's rows; a failure becomes an error row instead of ending the run."""
    started = time.perf_counter()
    log.print(f"[bold]goal {number}[/]: {title}")

    def progress(message: str) -> None:
        log.print(f"  goal {number}: {message}", style="dim")

    try:
        rows = loader()(plan, progress)
    except Exception as err:  # reported in the table; the other goals still run
        rows = [Measurement(f"{number} {title}", None, None, target=1.0,
                            note=f"error: {type(err).__name__}: {err}")]
    log.print(f"  goal {number}: {time.perf_counter() - started:.1f} s", style="dim")
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter eager runs")
    parser.add_argument("--goals", default="1,2,3,4,5,6", help="comma-separated goal numbers (default: all)")
    parser.add_argument("--output", type=Path, default=HERE / "results.md", help="markdown file to write")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    wanted = {g.strip() for g in args.goals.split(",") if g.strip()}
    log = Console(stderr=True)
    began = time.perf_counter()
    rows: list[Measurement] = []
    for number, (title, loader) in goals().items():
        if number in wanted:
            rows += run_goal(number, title, loader, plan, log)
    rows.sort(key=lambda m: m.goal.split()[0])  # stable: keeps each goal's rows in order
    elapsed = time.perf_counter() - began
    title = f"autodiff benchmarks ({'quick' if args.quick else 'full'} run, {elapsed:.0f} s)"
    print_table(rows, title, Console(width=max(Console().width, 150)))
    args.output.write_text(markdown(rows, title))
    log.print(f"wrote {args.output}")
    failed = any(m.passed is False for m in rows)
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
