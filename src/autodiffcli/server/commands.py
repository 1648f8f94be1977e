"""``autodiff server start|stop|status|restart``: the click commands around daemon.py.

Importing this module imports click only; the server module (which imports TensorFlow
when it serves) is imported inside the commands.
"""

from __future__ import annotations

import sys

import click

from ..errors import AutodiffError, ExitCode, UsageError

SERVER_SCHEMA = "autodiff.server/1"  # output/schema.py's SERVER describes status --format json


@click.group(name="server")
def server_group() -> None:
    """A warm server, so that each autodiff command skips TensorFlow's start-up.

    While it runs, every autodiff command of yours is served by it (the same output and
    exit code); AUTODIFF_SERVER=off runs without it. It exits after --idle seconds
    without a request (default 900).

    \b
    Examples:
      autodiff server start
      autodiff server status
      autodiff server stop
    """


@server_group.command(name="start")
@click.option("--idle", type=float, default=None, help="Exit after this many seconds without a request [default: 900].")
def server_start(idle: float | None) -> int:
    """Start the server in the background (nothing happens if one runs)."""
    from . import daemon

    running = daemon.request("status")
    if running is not None:
        click.echo(f"autodiff server already running (pid {running['pid']}, version {running['version']})")
        return ExitCode.OK
    return _start_server(idle)


@server_group.command(name="restart")
@click.option("--idle", type=float, default=None, help="Exit after this many seconds without a request [default: 900].")
def server_restart(idle: float | None) -> int:
    """Stop the running server, if any, and start a new one."""
    _stop_server()
    return _start_server(idle)


@server_group.command(name="stop")
def server_stop() -> int:
    """Stop the running server (its requests in progress are stopped too)."""
    if not _stop_server():
        click.echo("no autodiff server is running")
    return ExitCode.OK


@server_group.command(name="status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="Text, or JSON.")
def server_status(fmt: str) -> int:
    """Say whether a server runs: pid, version, uptime, requests served (exit 1 if none)."""
    import json

    from . import daemon

    status = daemon.request("status")
    if fmt == "json":
        click.echo(json.dumps({"schema": SERVER_SCHEMA, **(status or {"running": False})}))
    elif status is None:
        click.echo("no autodiff server is running")
    else:
        click.echo(
            f"autodiff server running: pid {status['pid']}, version {status['version']}, "
            f"up {status['uptime_s']:.0f} s, {status['requests']} requests served, idle exit after "
            f"{status['idle_s']:g} s, socket {daemon.socket_path()}"
        )
    return ExitCode.OK if status is not None else ExitCode.NUMERIC


def _start_server(idle: float | None) -> int:
    import subprocess
    import time

    from . import daemon

    if idle is not None and not idle > 0:
        raise UsageError(f"--idle: must be > 0, got {idle:g}")
    try:
        daemon.prepare_dir(daemon.socket_dir())
    except PermissionError as err:  # a directory others can enter: refused, in one line
        raise AutodiffError(f"refusing to start the server: {err}") from None
    argv = [sys.executable, "-m", "autodiffcli.serve", *([] if idle is None else [str(idle)])]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = daemon.request("status")
        if status is not None:
            click.echo(f"autodiff server started (pid {status['pid']}, version {status['version']})")
            return ExitCode.OK
        if proc.poll() is not None:
            raise AutodiffError(f"the server exited at start-up with status {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise AutodiffError("the server did not answer within 120 s of starting")


STOP_TIMEOUT_S = 30.0  # how long stop waits for the server to exit before saying so


def _stop_server() -> bool:
    """Ask the server to stop and return once it has exited: its pid gone, its socket removed.

    An error (exit 1) names the pid when it has not exited within STOP_TIMEOUT_S.
    """
    from . import daemon

    status = daemon.request("stop")
    if status is None:
        return False
    pid = int(status["pid"])
    if not daemon.wait_exited(pid, STOP_TIMEOUT_S):
        error = AutodiffError(
            f"the autodiff server (pid {pid}) was asked to stop but has not exited within "
            f"{STOP_TIMEOUT_S:g} s; end it with: kill {pid}"
        )
        error.exit_code = ExitCode.NUMERIC
        raise error
    click.echo(f"autodiff server stopped (pid {pid}, {status['requests']} requests served)")
    return True
