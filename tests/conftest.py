"""Shared fixtures. One TensorFlow process serves every in-process test."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# children started elsewhere (another cwd) must import the same code: PYTHONPATH made absolute
if os.environ.get("PYTHONPATH"):
    paths = os.environ["PYTHONPATH"].split(os.pathsep)
    os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths if p)
os.environ["AUTODIFF_SERVER"] = "off"  # a server of the developer's must not serve the suite; test_server turns it on

import jsonschema
import pytest
from click.testing import CliRunner, Result

from autodiffcli.cli import cli
from autodiffcli.output import schema

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, input: str | None = None) -> Result:
    """Run ``autodiff ARGS`` through click, with stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_cli(
    *args: str,
    input: str | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``autodiff`` entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "autodiffcli", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def json_of(result: Result | subprocess.CompletedProcess[str], command: str, exit_code: int = 0) -> dict[str, Any]:
    """The JSON a run of ``command`` printed, parsed strictly and validated against its schema.

    Strict: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json accepts) fail the
    test. The schema is the one the document names (``"schema": "autodiff.grad/1"``), looked
    up in schema.SCHEMAS, and must belong to ``command``. The run must have ended with
    ``exit_code``; with 0, stderr must be empty.
    """
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == exit_code, result.stderr
    if exit_code == 0:
        assert result.stderr == ""
    data = json.loads(result.stdout, parse_constant=_refuse_constant)
    name = data.get("schema", "") if isinstance(data, dict) else ""
    family = "minimize" if command == "maximize" else command  # maximize reports in minimize's schema
    assert name.startswith(f"autodiff.{family}/"), f"{command} printed a document of schema {name!r}"
    jsonschema.validate(data, schema.SCHEMAS[name])
    return data


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"JSON output contains {name}")


_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])")


def plain_text(screen: str) -> str:
    """What a terminal shows, less colours and cursor moves: ANSI sequences and CRs dropped."""
    return _ANSI.sub("", screen).replace("\r", "")


class Terminal:
    """``autodiff ARGS`` in a fresh interpreter with stdout and/or stderr on a pseudo-terminal.

    What the terminal receives collects in ``screen``; a stream that is not on the terminal
    is a pipe, collecting in ``piped``. Both are drained all the time, so the process never
    blocks on a full terminal while the test waits.
    """

    def __init__(self, *args: str, stdout_tty: bool, stderr_tty: bool, columns: int = 160) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autodiffcli", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave if stdout_tty else subprocess.PIPE,
            stderr=slave if stderr_tty else subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        self.master: int | None = master
        pipe = self.proc.stderr if stdout_tty else self.proc.stdout
        self.pipe: int | None = pipe.fileno() if pipe is not None else None
        self._screen, self._piped = bytearray(), bytearray()

    @property
    def screen(self) -> str:
        return plain_text(self._screen.decode("utf-8", "replace"))

    @property
    def piped(self) -> str:
        return self._piped.decode("utf-8", "replace")

    def _pump(self, wait_s: float) -> None:
        fds = [fd for fd in (self.master, self.pipe) if fd is not None]
        if not fds:
            time.sleep(wait_s)
            return
        ready, _, _ = select.select(fds, [], [], wait_s)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                chunk = b""
            if fd == self.master:
                self._screen += chunk
                if not chunk:
                    os.close(fd)
                    self.master = None
            else:
                self._piped += chunk
                if not chunk:
                    self.pipe = None

    def wait_for(self, ready: Callable[[str], bool], timeout: float = 120) -> str:
        """Read until ``ready(screen)`` holds; fail with what the screen shows if it never does."""
        deadline = time.monotonic() + timeout
        while not ready(self.screen):
            if time.monotonic() > deadline or (self.proc.poll() is not None and self.master is None):
                self.proc.kill()
                raise AssertionError(f"never ready; the terminal shows:\n{self.screen[-3000:]}")
            self._pump(0.1)
        return self.screen

    def finish(self, timeout: float = 120) -> int:
        """Read everything until the process ends; its exit status."""
        deadline = time.monotonic() + timeout
        while self.master is not None or self.pipe is not None or self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"did not finish; the terminal shows:\n{self.screen[-3000:]}")
            self._pump(0.1)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.wait()


@pytest.fixture
def cli_invoke():
    return invoke


# CI runs every property test on the same examples (no flaky landings); locally they explore.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


# The files that take longest, measured (`--durations=0`, summed by file), in that order.
# `make test` hands whole files to two processes in collection order; a long file handed out
# last keeps one process busy while the other has finished, so the long ones go first
# (longest-processing-time-first scheduling). Every other file keeps its place after them.
LONGEST_FIRST = (
    "test_server.py",
    "test_process.py",
    "test_minimize.py",
    "test_leading_minus.py",
    "test_security.py",
    "test_starts_and_bounds.py",
    "test_plots.py",
    "test_at_file_process.py",
    "test_verdict.py",
    "test_op_table.py",
    "test_quasi_newton.py",
    "test_trust_solve.py",
    "test_server_stop.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
