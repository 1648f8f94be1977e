"""Goal 13 (issue 9): the warm server against cold runs of the same commands.

A server is started on a private socket directory for the goal and stopped after it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from collections.abc import Callable

from measure import Measurement, Plan, autodiff_command, bench_env, interleave, median, paired_ratio, timed_run

GRAD_ARGS = ("grad", "x**2-2*x+1", "--at", "0", "--format", "json")
MINIMIZE_ARGS = ("minimize", "--opt", "adam", "--graph", "--format", "json")
LOOP = 10  # calls in one shell loop


def goal13_warm(plan: Plan, progress: Callable[[str], None]) -> list[Measurement]:
    cli = autodiff_command()
    with tempfile.TemporaryDirectory() as tmp:
        warm = {"AUTODIFF_SERVER": "on", "AUTODIFF_SERVER_DIR": f"{tmp}/sock"}
        env = {**bench_env(), **warm}
        subprocess.run([*cli, "server", "start"], env=env, check=True, capture_output=True, timeout=180)
        try:
            minimize_first = timed_run([*cli, *MINIMIZE_ARGS], env=warm)
            calls = interleave(
                {
                    "warm": lambda: timed_run([*cli, *GRAD_ARGS], env=warm),
                    "cold": lambda: timed_run([*cli, *GRAD_ARGS]),
                },
                plan.import_reps,
                warmup=1,
                progress=progress,
            )
            line = " ".join(shlex.quote(a) for a in [*cli, *GRAD_ARGS])
            loop = f"for i in $(seq {LOOP}); do {line} >/dev/null || exit 1; done"
            loops = interleave(
                {
                    "warm": lambda: timed_run(["bash", "-c", loop], env=warm),
                    "cold": lambda: timed_run(["bash", "-c", loop]),
                },
                2,
                progress=progress,
            )
            again = [timed_run([*cli, *MINIMIZE_ARGS], env=warm) for _ in range(3)]
            served = json.loads(
                subprocess.run([*cli, "server", "status", "--format", "json"], env=env, capture_output=True).stdout
            )["requests"]
            progress(f"{served} requests served")
        finally:
            subprocess.run([*cli, "server", "stop"], env=env, capture_output=True, timeout=60)
    return [
        Measurement(
            "13 warm autodiff grad ... --format json vs the same command cold",
            median(calls["warm"]),
            median(calls["cold"]),
            target=0.05,
            ratio=paired_ratio(calls["warm"], calls["cold"]),
        ),
        Measurement(
            f"13 shell loop of {LOOP} grad calls, warm vs cold",
            median(loops["warm"]),
            median(loops["cold"]),
            target=0.05,
            ratio=paired_ratio(loops["warm"], loops["cold"]),
        ),
        Measurement(
            "13 repeated warm minimize --opt adam --graph vs its first warm run (compiled loop cached)",
            median(again),
            minimize_first,
            target=0.3,
        ),
    ]
