"""A warm worker of the server: starts TensorFlow's runtime once, then serves commands one at a time.

Each command runs as the client's own process would: the client's standard streams,
working directory and environment, the CLI in the main thread (every budget of a cold run
holds). Afterwards the worker lets go of the client's streams (so a pipe reader sees the
end), puts its own state back and tells the server whether it can serve again: not after
a command that did not end cleanly, not after ``RECYCLE`` commands, not once its resident
memory passes ``MAX_RSS``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

import click

from ..errors import ExitCode
from ..runtime import resident_bytes
from .protocol import receive, send

RECYCLE = int(os.environ.get("AUTODIFF_SERVER_RECYCLE", "200"))  # commands one worker serves at most
MAX_RSS = 2 << 30  # bytes: a worker that has grown past this exits after its command


def run_worker(control: socket.socket, app: click.Command, warm: bool = True) -> None:
    """In a forked worker: start TensorFlow's runtime (``warm``), then serve requests until told to stop."""
    code = 0
    try:
        _die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if warm:
            from ..runtime import tensorflow

            tensorflow().constant(1.0) + 1.0  # the runtime's threads start here, not in a request
        home = dict(os.environ)
        for served in range(1, RECYCLE + 1):
            try:
                message, fds = receive(control, 4)
            except (OSError, ValueError):
                return  # the server closed our socket: exit
            exit_code, clean = _serve(app, message, fds[1:], home)
            reuse = clean and served < RECYCLE and resident_bytes() < MAX_RSS
            send(control, {"done": True, "reuse": reuse})
            _answer(fds[0], exit_code)
            if not reuse:
                return
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _serve(app: click.Command, message: dict[str, Any], fds: list[int], home: dict[str, str]) -> tuple[int, bool]:
    """Run one command as the client's process, with the client's fds 0-2.

    Returns its exit code, and whether it ended cleanly (then this worker can serve again).
    """
    code, clean = 1, False
    try:
        # stdin and stdout become the client's; Python's stderr writes to the client's
        # stderr too, while descriptor 2 (where TensorFlow's C++ logs go) stays /dev/null,
        # exactly as runtime.tensorflow() arranges it in a cold run
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        err = os.dup(fds[2])
        for fd in fds:
            os.close(fd)
        sys.stdin = os.fdopen(0, "r", closefd=False)
        sys.stdout = os.fdopen(1, "w", closefd=False)
        sys.stderr = os.fdopen(err, "w", buffering=1, errors="backslashreplace")
        os.chdir(message.get("cwd") or "/")
        env = message.get("env")
        if isinstance(env, dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in env.items()})
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        argv = [str(a) for a in message.get("argv", [])]
        sys.argv = ["autodiff", *argv]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        code = int(app.main(argv, standalone_mode=False))
        clean = code != ExitCode.INTERRUPTED
    except BaseException:
        clean = False
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            clean = False
        quiet_stdio()
        os.chdir("/")
        os.environ.clear()
        os.environ.update(home)
    return code, clean


def _answer(conn_fd: int, code: int) -> None:
    """Tell the client its exit code, after its streams are let go (so a pipe reader sees the end)."""
    with socket.socket(fileno=conn_fd) as conn:
        try:
            send(conn, {"exit": code})
        except OSError:
            pass


def quiet_stdio() -> None:
    """Descriptors 0 and 1 on /dev/null, Python's streams on it too: nothing of a client's is held."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.fileno() > 2:
                stream.close()
        except (OSError, ValueError):
            pass
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - they live as long as the worker
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker if the server dies, so no request outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
