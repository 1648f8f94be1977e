"""The thin client: hand this invocation to a warm server if one runs, else run it here.

Imports only the standard library, so asking costs a few milliseconds. The protocol is one
JSON line each way plus the caller's standard streams passed as file descriptors
(SCM_RIGHTS): the server's worker writes to the very terminal, pipe or file this process
was given, so output, terminal detection and live progress are exactly those of a cold run.

    client -> server: {"version", "argv", "cwd", "env"} + fds 0, 1, 2
    server -> client: {"version"}; later {"exit": code}
    client -> server: {"signal": "INT"} on Ctrl-C (forwarded to the worker)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from typing import Any, NoReturn

from . import __version__

OFF = "AUTODIFF_SERVER"  # =off: never use a server
PROTOCOL = 1
MAX_MESSAGE = 1 << 20  # bytes of one request line


def socket_dir() -> str:
    """Where this user's server listens: a directory only the user can enter."""
    if os.environ.get("AUTODIFF_SERVER_DIR"):
        return os.environ["AUTODIFF_SERVER_DIR"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and os.path.isdir(runtime) else "/tmp"
    return os.path.join(base, f"autodiff-{os.getuid()}")


def socket_path() -> str:
    return os.path.join(socket_dir(), "server.sock")


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]  # struct ucred: pid, uid, gid


def connect(timeout: float | None = None) -> socket.socket | None:
    """A connection to this user's server, or None when none answers."""
    path = socket_path()
    if not os.path.exists(path):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        if peer_uid(conn) != os.getuid():  # someone else's process on our path: never talk to it
            conn.close()
            return None
    except OSError:
        conn.close()
        return None
    return conn


def send(conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = (json.dumps(message) + "\n").encode()
    if fds:
        socket.send_fds(conn, [data], fds)
    else:
        conn.sendall(data)


def receive(conn: socket.socket, max_fds: int) -> tuple[dict[str, Any], list[int]]:
    """One JSON object and up to ``max_fds`` descriptors passed with it (SCM_RIGHTS)."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, max_fds)
    while not data.endswith(b"\n"):
        more = conn.recv(MAX_MESSAGE)
        if not more or len(data) > MAX_MESSAGE:
            for fd in fds:
                os.close(fd)
            raise ValueError("incomplete request")
        data += more
    message = json.loads(data)
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("not an object")
    return message, list(fds)


class Lines:
    """JSON messages, one per line, from a socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            try:
                chunk = self.conn.recv(65536)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


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


def main() -> NoReturn:
    """Console-script entry: the server if one runs, else the ordinary in-process CLI."""
    code = run_remote(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli import main as cold

    cold()
