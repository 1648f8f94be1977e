"""Shared fixtures. One TensorFlow process serves every in-process test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from click.testing import CliRunner, Result

from autodiffcli.cli import cli

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


@pytest.fixture
def cli_invoke():
    return invoke


# CI runs every property test on the same examples (no flaky landings); locally they explore.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
