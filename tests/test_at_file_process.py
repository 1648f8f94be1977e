"""Hostile ``--at-file`` inputs in a real process: each is refused within its budget, with
one ``Error:`` line naming the budget, the file and the line, in bounded time and memory.

Peak memory is the child's ``ru_maxrss``, measured by a fresh parent process that runs
only this one command (``RUSAGE_CHILDREN`` of the test process would mix in earlier ones).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import json_of

# Refused before TensorFlow is imported: Python, SymPy and numpy, about 75 MiB.
SMALL_KB = 256 * 1024
SMALL_S = 20.0  # typically under a second; margins for a loaded two-core machine
# Refused after some chunks were computed: TensorFlow is loaded (about 700 MiB by itself).
LARGE_KB = 1024 * 1024
LARGE_S = 90.0

PROBE = r"""
import json, resource, subprocess, sys, time
args, feed = json.loads(sys.argv[1]), json.loads(sys.argv[2])
feeder = subprocess.Popen(feed, stdout=subprocess.PIPE) if feed else None
start = time.perf_counter()
proc = subprocess.run(
    [sys.executable, "-m", "autodiffcli", *args],
    stdin=feeder.stdout if feeder else subprocess.DEVNULL,
    capture_output=True,
)
elapsed = time.perf_counter() - start
if feeder:
    feeder.stdout.close()
    feeder.kill()
    feeder.wait()
lines = proc.stdout.decode().splitlines()
print(json.dumps({
    "rc": proc.returncode,
    "stderr": proc.stderr.decode(),
    "lines": len(lines),
    "distinct": sorted(set(lines))[:5],
    "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "seconds": elapsed,
}))
"""


def measured(*args: str, feed: list[str] | None = None, env: dict[str, str] | None = None) -> dict:
    """Run ``autodiff ARGS`` (stdin from the command ``feed``) under a fresh parent."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args)), json.dumps(feed)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": _python_path(), **(env or {})},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def no_tensorflow(tmp_path: Path) -> dict[str, str]:
    """An environment in which importing TensorFlow fails loudly."""
    fake = tmp_path / "fake-site" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('TensorFlow must not be imported for a refused file')\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in [str(fake.parent), _python_path()] if p)}


def _python_path() -> str:
    """PYTHONPATH with absolute entries, so that a child run elsewhere imports the same code."""
    return os.pathsep.join(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)


def refused_small(run: dict, message: str) -> None:
    assert (run["rc"], run["stderr"], run["lines"]) == (2, f"Error: {message}\n", 0)
    assert run["seconds"] < SMALL_S, f"took {run['seconds']:.1f} s"
    assert run["peak_kb"] < SMALL_KB, f"peak RSS {run['peak_kb'] / 1024:.0f} MiB"


def test_dev_zero_is_a_binary_file(no_tensorflow):
    run = measured("grad", "x", "--at-file", "/dev/zero", env=no_tensorflow)
    refused_small(run, "--at-file '/dev/zero' line 1: a NUL byte: this is a binary file, not text")


def test_dev_urandom_is_not_text(no_tensorflow):
    run = measured("grad", "x", "--at-file", "/dev/urandom", env=no_tensorflow)
    assert run["rc"] == 2 and run["stderr"].startswith("Error: --at-file '/dev/urandom' line ")
    assert "a NUL byte" in run["stderr"] or "not a UTF-8 text file" in run["stderr"]
    assert run["seconds"] < SMALL_S and run["peak_kb"] < SMALL_KB


def test_a_100_mb_line_without_a_newline(tmp_path, no_tensorflow):
    path = tmp_path / "long.txt"
    with path.open("wb") as f:
        for _ in range(100):
            f.write(b"1" * 1_000_000)
    run = measured("grad", "x", "--at-file", str(path), env=no_tensorflow)
    refused_small(run, f"--at-file {str(path)!r} line 1: the line is longer than the limit of 65,536 bytes")


def test_a_header_with_a_million_columns(tmp_path, no_tensorflow):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"x{i}" for i in range(10**6)) + "\n" + ",".join(["1"] * 10**6) + "\n")
    run = measured("grad", "x", "--at-file", str(path), env=no_tensorflow)
    refused_small(run, f"--at-file {str(path)!r} line 1: more than the limit of 1,000 columns")


@pytest.mark.skipif(shutil.which("yes") is None, reason="needs the yes command")
def test_an_endless_pipe_of_blank_lines(no_tensorflow):
    run = measured("grad", "x", "--at-file", "-", "--max-lines", "2000000", feed=["yes", ""], env=no_tensorflow)
    refused_small(run, "--at-file stdin line 2,000,001: more than the limit of 2,000,000 lines (--max-lines)")


@pytest.mark.skipif(shutil.which("yes") is None, reason="needs the yes command")
def test_an_endless_pipe_without_line_ends(no_tensorflow):
    run = measured("grad", "x", "--at-file", "-", feed=["sh", "-c", "yes | tr -d '\\n'"], env=no_tensorflow)
    refused_small(run, "--at-file stdin line 1: the line is longer than the limit of 65,536 bytes")


@pytest.mark.skipif(shutil.which("yes") is None, reason="needs the yes command")
def test_an_endless_pipe_of_points_streams_then_stops_at_the_line_budget():
    run = measured("grad", "x**2", "--at-file", "-", "--max-lines", "300000", feed=["yes", "0.5"])
    assert run["rc"] == 2
    assert run["stderr"] == "Error: --at-file stdin line 300,001: more than the limit of 300,000 lines (--max-lines)\n"
    assert 0 < run["lines"] <= 300_000 and run["distinct"] == ["1"]  # whole lines, each d/dx x**2 at 0.5
    assert run["seconds"] < LARGE_S, f"took {run['seconds']:.1f} s"
    assert run["peak_kb"] < LARGE_KB, f"peak RSS {run['peak_kb'] / 1024:.0f} MiB"


# ---------------------------------------------------------------- progress on a terminal


def _stderr_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe; returns (rc, stdout, terminal text).

    The parent keeps the terminal's other end open until it has read everything: on Linux,
    once no process holds it, what is left unread may be lost.
    """
    import pty
    import select
    import threading

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autodiffcli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=cwd,
        # the bar at once (AUTODIFF_PROGRESS_DELAY=0): the test need not count on a run over a second
        env={
            **os.environ,
            **{"PYTHONPATH": _python_path(), "COLUMNS": "100", "TERM": "xterm", "AUTODIFF_PROGRESS_DELAY": "0"},
        },
    )
    seen = bytearray()

    def drain() -> None:  # until the child is gone and nothing came for half a second
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen.extend(os.read(master, 4096))
            elif proc.poll() is not None:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(slave)
    os.close(master)
    return proc.returncode, stdout.decode(), seen.decode(errors="replace")


def test_progress_bar_only_when_stderr_is_a_terminal(tmp_path):
    (tmp_path / "points.csv").write_text("x\n" + "1\n" * 1000)
    rc, stdout, terminal = _stderr_on_a_terminal(
        ["grad", "x**2", "--at-file", "points.csv", "--format", "plain"], tmp_path
    )
    assert rc == 0
    assert stdout == "2\n" * 1000  # the bar never reaches stdout
    assert "1,000 points" in terminal and "Error" not in terminal
    piped = subprocess.run(
        [sys.executable, "-m", "autodiffcli", "grad", "x**2", "--at-file", "points.csv", "--format", "plain"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": _python_path()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "2\n" * 1000, "")


# ---------------------------------------------------------------- Ctrl-C part way


def test_ctrl_c_while_streaming_json_still_ends_the_document(tmp_path):
    import signal

    # long lines (0.5 written with 400 digits): a chunk of 4 MiB is about 10,000 points, so the
    # document cut short after the first chunks is small enough to validate in about a second,
    # and ten chunks keep the run going long after the signal
    line = "0." + "5" + "0" * 397 + "\n"
    chunk = (1 << 22) // len(line)
    (tmp_path / "points.csv").write_text("x\n" + line * (10 * chunk))
    proc = subprocess.Popen(
        [sys.executable, "-m", "autodiffcli", "grad", "x**2", "--at-file", "points.csv", "--format", "json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": _python_path()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    seen = b""
    while b'"results": [' not in seen:  # the first batch is being written
        data = os.read(proc.stdout.fileno(), 1 << 16)
        assert data, "the run ended before writing any result"
        seen += data
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert err.decode().strip() == "Error: interrupted"
    # whole batches only: the interrupt waits for the write; the document is whole and of its schema
    done = subprocess.CompletedProcess(proc.args, proc.returncode, (seen + rest).decode(), err.decode())
    doc = json_of(done, "grad", 130)
    assert doc["error"] == "interrupted"
    assert 0 < len(doc["results"]) < 10 * chunk
    assert {r["gradient"]["x"] for r in doc["results"]} == {1.0}
