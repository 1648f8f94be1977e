"""`autodiff server stop` and `restart` return once the server has exited (real processes).

Every server started here listens on a Unix socket in the test's own tmp directory, and is
killed by its pid whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import error_lines, run_cli

ROUNDS = 20  # stop && start, back to back, as a script would


def _pid(env: dict[str, str]) -> int | None:
    result = run_cli("server", "status", "--format", "json", env=env)
    status = json.loads(result.stdout)
    return status.get("pid")


def _gone(pid: int) -> bool:
    """kill -0: does the pid still name a process?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def env(tmp_path: Path):
    # the life cycle only: no command runs, so the server need not import TensorFlow first
    env = {"AUTODIFF_SERVER": "on", "AUTODIFF_SERVER_DIR": str(tmp_path / "sock"), "AUTODIFF_SERVER_WARM": "off"}
    started: list[int] = []
    try:
        yield env, started
    finally:
        run_cli("server", "stop", env=env, timeout=60)
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_stop_returns_after_the_server_has_exited_and_start_follows_at_once(env):
    env, started = env
    socket = Path(env["AUTODIFF_SERVER_DIR"]) / "server.sock"
    for _ in range(ROUNDS):
        start = run_cli("server", "start", env=env, timeout=180)
        assert start.returncode == 0, start.stderr
        assert start.stdout.startswith("autodiff server started (pid ")  # not "already running"
        pid = _pid(env)
        assert pid is not None
        started.append(pid)
        stop = run_cli("server", "stop", env=env, timeout=60)
        assert stop.returncode == 0 and stop.stderr == ""
        assert stop.stdout == f"autodiff server stopped (pid {pid}, 0 requests served)\n"
        assert _gone(pid), "stop returned while the server's pid is still running"
        assert not socket.exists()
    assert run_cli("server", "stop", env=env).stdout == "no autodiff server is running\n"


def test_restart_replaces_the_server_once_the_old_one_has_exited(env):
    env, started = env
    assert run_cli("server", "start", env=env, timeout=180).returncode == 0
    old = _pid(env)
    started.append(old)
    restart = run_cli("server", "restart", env=env, timeout=180)
    assert restart.returncode == 0, restart.stderr
    new = _pid(env)
    started.append(new)
    assert new != old and _gone(old)
    assert restart.stdout.splitlines()[0] == f"autodiff server stopped (pid {old}, 0 requests served)"


def test_a_server_that_does_not_exit_is_named_in_one_line(env, monkeypatch):
    """A stand-in that answers `stop` but keeps running: stop says so, with the pid, and exit 1."""
    from click.testing import CliRunner

    from autodiffcli.cli import cli
    from autodiffcli.server import commands, daemon

    env, _ = env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(commands, "STOP_TIMEOUT_S", 0.2)
    monkeypatch.setattr(daemon, "request", lambda op, timeout=5.0: {"pid": os.getpid(), "requests": 0})
    result = CliRunner().invoke(cli, ["server", "stop"], catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert f"(pid {os.getpid()}) was asked to stop but has not exited within 0.2 s" in line
    assert f"kill {os.getpid()}" in line
