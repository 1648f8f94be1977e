"""Shared fixtures. One TensorFlow process serves every in-process test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jsonschema
import pytest
from click.testing import CliRunner, Result

from autodiffcli import schema
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


SCHEMAS = {"grad": schema.GRAD, "minimize": schema.MINIMIZE}


def json_of(result: Result | subprocess.CompletedProcess[str], command: str, exit_code: int = 0) -> dict[str, Any]:
    """The JSON a run printed, parsed strictly and validated against ``command``'s schema.

    Strict: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json accepts) fail the
    test. The run must have ended with ``exit_code``; with 0, stderr must be empty.
    """
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == exit_code, result.stderr
    if exit_code == 0:
        assert result.stderr == ""
    data = json.loads(result.stdout, parse_constant=_refuse_constant)
    jsonschema.validate(data, SCHEMAS[command])
    return data


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"JSON output contains {name}")


@pytest.fixture
def cli_invoke():
    return invoke


# CI runs every property test on the same examples (no flaky landings); locally they explore.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
