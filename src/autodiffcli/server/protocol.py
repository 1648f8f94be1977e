"""The wire protocol the client and the server share. Standard library only, and nothing of autodiff's.

One JSON line each way plus the caller's standard streams passed as file descriptors
(SCM_RIGHTS):

    client -> server: {"version", "argv", "cwd", "env"} + fds 0, 1, 2
    server -> client: {"version"}; later {"exit": code}
    client -> server: {"signal": "INT"} on Ctrl-C (forwarded to the worker)
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

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
