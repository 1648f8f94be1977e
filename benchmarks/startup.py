"""Goals 1 and 2: what a cold ``autodiff`` process costs, against bare imports.

Every figure is the wall time of a fresh process started by the same interpreter, with
the same environment (TF_CPP_MIN_LOG_LEVEL=3). One discarded round warms the page cache.
"""

from __future__ import annotations

from collections.abc import Callable

from measure import Measurement, Plan, autodiff_command, interleave, median, paired_ratio, python_command, timed_run

GRAD_ARGS = ("grad", "x**2-2*x+1", "--at", "0", "--format", "json")


def goal1_help(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """``--help`` and ``--version`` at most 3x ``python -c "import click, rich.console"``."""
    cli = autodiff_command()
    samples = interleave(
        {
            "help": lambda: timed_run([*cli, "--help"]),
            "version": lambda: timed_run([*cli, "--version"]),
            "baseline": lambda: timed_run(python_command("import click, rich.console")),
        },
        plan.startup_reps,
        warmup=1,
        progress=progress,
    )
    base = samples["baseline"]
    return [
        Measurement(
            f"1 cold autodiff {flag} vs python -c 'import click, rich.console'",
            median(samples[key]),
            median(base),
            target=3.0,
            ratio=paired_ratio(samples[key], base),
        )
        for flag, key in (("--help", "help"), ("--version", "version"))
    ]


def goal2_cold_grad(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    """A cold ``grad ... --format json`` at most 0.95x ``python -c "import tensorflow"``."""
    samples = interleave(
        {
            "grad": lambda: timed_run([*autodiff_command(), *GRAD_ARGS]),
            "baseline": lambda: timed_run(python_command("import tensorflow")),
        },
        plan.import_reps,
        warmup=1,
        progress=progress,
    )
    ours, base = samples["grad"], samples["baseline"]
    label = "2 cold autodiff grad ... --format json vs python -c 'import tensorflow'"
    return [Measurement(label, median(ours), median(base), target=0.95, ratio=paired_ratio(ours, base))]
