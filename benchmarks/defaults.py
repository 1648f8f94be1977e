"""Goal 16: the defaults (issue 23): the default method's evaluations against SciPy's BFGS on
the Moré-Garbow-Hillstrom problems, and what the higher-order test adds to a `minimize` that
ends at a degenerate point (measurements, not tests).

    .venv/bin/python benchmarks/defaults.py

The higher-order test's cost: the same in-process `minimize` (what a warm command runs),
with the test and with it switched off (``higher_order.decide`` answering "undecided"),
interleaved; the median of the per-repetition ratios. A cold command adds TensorFlow's
start-up (about 2 s here) to both sides, so its ratio is closer still to 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from measure import Measurement, Plan, paired_ratio  # noqa: E402

REPS = 15
DEGENERATE = [  # ends at a point where the Hessian is singular; the test decides it
    ("x^4 + y^2", "x=3,y=1", ()),
    ("x^4", "2", ()),
    ("x^2 + y^4", "x=1,y=1", ("--dtype", "float64")),
]


def _invoke(args: list[str]) -> dict:
    from click.testing import CliRunner

    from autodiffcli.cli import cli

    result = CliRunner().invoke(cli, args)
    if result.exit_code not in (0, 3):
        raise RuntimeError(f"{args}: exit {result.exit_code}: {result.output[-300:]}")
    return json.loads(result.output)


def higher_order_cost(progress: Callable[[str], None]) -> list[Measurement]:
    from autodiffcli.solve import higher_order

    decide = higher_order.decide
    rows = []
    try:
        for text, start, extra in DEGENERATE:
            args = ["minimize", text, "--from", start, *extra, "--format", "json"]
            verdict = _invoke(args)["verdict"]  # warm: the first run builds what later ones reuse
            on: list[float] = []
            off: list[float] = []
            for rep in range(REPS):
                for with_test in (rep % 2 == 0, rep % 2 == 1):
                    higher_order.decide = decide if with_test else (lambda *a, **k: None)
                    began = time.perf_counter()
                    _invoke(args)
                    (on if with_test else off).append(time.perf_counter() - began)
            higher_order.decide = decide
            ratio = paired_ratio(on, off)
            progress(f"{text} from {start}: verdict {verdict}, {np.median(on):.3f} s with the test, "
                     f"{np.median(off):.3f} s without ({ratio:.2f}x)")  # fmt: skip
            rows.append(
                Measurement(
                    f"16 minimize {text!r} --from {start} (ends degenerate, decided: {verdict}), in process: "
                    "with the higher-order test vs without",
                    float(np.median(on)),
                    float(np.median(off)),
                    target=1.2,
                    ratio=ratio,
                )
            )
    finally:
        higher_order.decide = decide
    return rows


def mgh_evaluations(progress: Callable[[str], None]) -> Measurement:
    from test_mgh import MGH, scipy_bfgs

    worst, name_of = 0.0, ""
    for name, text, start, _best in MGH:
        oracle = scipy_bfgs(text, start)
        point = ",".join(f"{k}={v}" for k, v in start.items())
        data = _invoke(["minimize", text, "--from", point, "--dtype", "float64", "--format", "json"])
        ratio = data["evaluations"] / oracle.nfev
        progress(f"{name}: default {data['optimizer']} {data['evaluations']} evaluations ({data['status']}), "
                 f"SciPy BFGS {oracle.nfev}")  # fmt: skip
        if data["status"] != "converged":
            ratio = float("inf")
        if ratio > worst:
            worst, name_of = ratio, name
    return Measurement(
        f"16 default method's evaluations on 6 Moré-Garbow-Hillstrom problems vs SciPy BFGS, the largest ratio "
        f"({name_of})",
        None,
        None,
        target=1.5,
        unit="count",
        ratio=worst,
    )


def goal16_defaults(plan: Plan | None, progress: Callable[[str], None]) -> list[Measurement]:
    from autodiffcli.runtime import tensorflow

    tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [mgh_evaluations(progress), *higher_order_cost(progress)]


if __name__ == "__main__":
    for row in goal16_defaults(None, print):
        print(f"{row.goal}: ratio {row.ratio:.3g} (<= {row.target}) {'ok' if row.passed else 'MISSED'}")
