"""The results table, for a terminal (rich) and for the README (markdown)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from measure import Measurement
from rich.console import Console
from rich.table import Table

COLUMNS = ("goal", "ours", "baseline", "ratio", "target", "result")
METHOD = (
    "Ours and the baseline run back to back, in rotating order. Ratios are medians of the "
    "per-repetition ratios, so need not equal the quotient of the two medians shown; goal 5 "
    "compares medians, each less the median start-up (a one-point file)."
)


def machine() -> str:
    """CPU model, cores, and the versions that matter, on one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{name} {_version(name)}" for name in ("tensorflow", "keras", "numpy"))
    return f"{model}, {usable} cores, Python {platform.python_version()} ({sys.platform}), {versions}"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "count":
        return f"{value:g}"
    if unit == "bytes":
        return f"{value / 1e6:.0f} MB"
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value / 1e-9:.3g} ns"


def cells(m: Measurement) -> tuple[str, ...]:
    ratio = "-" if m.ratio is None else (f"{m.ratio:g}" if m.exact else f"{m.ratio:.2f}x")
    target = f"= {m.target:g}" if m.exact else f"<= {m.target:.2f}x"
    result = {True: "pass", False: "FAIL", None: "n/a"}[m.passed]
    if m.note:
        result = m.note if m.note.startswith("error") else f"{result}: {m.note}"
    return m.goal, figure(m.ours, m.unit), figure(m.baseline, m.unit), ratio, target, result


def print_table(rows: Sequence[Measurement], title: str, console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in ("goal", "result") else "right", overflow="fold")
    style = {True: "green", False: "bold red", None: "yellow"}
    for m in rows:
        table.add_row(*cells(m), style=style[m.passed])
    console.print(table)
    console.print(f"machine: {machine()}")
    console.print(METHOD, style="dim")


def markdown(rows: Sequence[Measurement], title: str) -> str:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    out = [f"### {title}", "", line(COLUMNS), line(["---", "---:", "---:", "---:", "---:", "---"])]
    out += [line(cells(m)) for m in rows]
    out += ["", f"Machine: {machine()}.", "", METHOD, ""]
    return "\n".join(out)
