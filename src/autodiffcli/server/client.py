"""The thin client: hand this invocation to a warm server if one runs, else say to run it here.

Imports only the standard library, so asking is cheap. The server's worker
writes to the very terminal, pipe or file this process was given (the protocol passes the
standard streams as descriptors), so output, terminal detection and live progress are
exactly those of a cold run.
"""

from __future__ import annotations

import os
import signal
import sys

from .. import __version__
from .protocol import OFF, PROTOCOL, Lines, connect, send


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run_remote(argv: list[str]) -> int | None:
    """Run ``argv`` on the server; its exit code, or None to run it here instead."""
    if os.environ.get(OFF, "").lower() in ("off", "0", "no", "false") or (argv and argv[0] == "server"):
        return None
    conn = connect()
    if conn is None:
        return None
    with conn:
        request = {
            "version": __version__,
            "protocol": PROTOCOL,
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
        fds = [fd if _is_open(fd) else os.open(os.devnull, os.O_RDWR) for fd in (0, 1, 2)]
        try:
            send(conn, request, fds)
        except OSError:
            return None
        lines = Lines(conn)
        hello = lines.next()
        if hello is None:
            return None
        if hello.get("version") != __version__ or hello.get("protocol") != PROTOCOL:
            print(
                f"autodiff: the running server is version {hello.get('version')}, this is {__version__}; "
                "running without it (autodiff server restart starts a matching one)",
                file=sys.stderr,
            )
            return None
        previous = signal.signal(signal.SIGINT, lambda *_: send(conn, {"signal": "INT"}))
        try:
            reply = lines.next()
        finally:
            signal.signal(signal.SIGINT, previous)
    if reply is None or not isinstance(reply.get("exit"), int):
        print("Error: the autodiff server stopped during this command; run it again", file=sys.stderr)
        return 1
    return int(reply["exit"])
