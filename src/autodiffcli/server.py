"""The warm server: TensorFlow, Keras, SymPy and SciPy imported once, a fresh worker per request.

The server process imports everything but never runs a TensorFlow op, so it starts no
runtime threads; each request is served by a child forked from it (``os.fork``), which
starts TensorFlow's runtime itself, runs the ordinary CLI in its main thread (so every
budget, the SIGALRM wall clock included, holds as in a cold run) with the client's own
standard streams, working directory and environment, and exits. One request's crash,
hang or memory cannot reach the server or another request, and the server's memory does
not grow with the requests it serves.

Security: the socket lives in a directory only the user can enter (0700, checked on
start), is itself 0600, and every connection's peer uid (SO_PEERCRED) must be the user's.
Requests are JSON; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .client import PROTOCOL, peer_uid, send, socket_dir, socket_path

IDLE_S = 900.0  # a server with no request for this long exits (AUTODIFF_SERVER_IDLE, or --idle)
MAX_WORKERS = 32  # requests served at once; more wait in the listen queue
MAX_REQUEST = 1 << 20  # bytes of one request line


def prepare_dir(path: str) -> None:
    """Create the socket's directory 0700, or refuse one that others could enter."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must belong to you and be mode 0700 (it is {oct(info.st_mode & 0o777)})")


@dataclass
class Job:
    conn: socket.socket
    pid: int


@dataclass
class Server:
    listener: socket.socket
    idle_s: float
    started: float = field(default_factory=time.time)
    served: int = 0
    jobs: dict[int, Job] = field(default_factory=dict)  # by the client socket's fileno
    last: float = field(default_factory=time.monotonic)
    stopping: bool = False

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "requests": self.served,
            "running": len(self.jobs),
            "idle_s": self.idle_s,
        }


def warm() -> None:
    """Import what every command needs, and warm SymPy, without running any TensorFlow op."""
    from . import cli, config, optimize, render, reports, stream, tables  # noqa: F401
    from .runtime import tensorflow

    tensorflow()
    import keras  # noqa: F401
    import scipy.optimize  # noqa: F401

    # SymPy imports parts of itself and fills caches on first use: a quarter of a worker's time
    problem = config.load_problem("x**3*y + sin(x)*exp(y)/(1 + x**2)", (), "float32")
    reports.symbolic_derivatives(reports.grad_request(problem, None, [], [], 2))


def serve(idle_s: float = IDLE_S) -> None:
    """Listen until stopped or idle for ``idle_s``; the socket is removed on the way out."""
    directory, path = socket_dir(), socket_path()
    prepare_dir(directory)
    warm()
    if os.path.exists(path):
        os.unlink(path)  # stale: the caller checked that nothing answers on it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(64)
    server = Server(listener, idle_s)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stopping", True))
    try:
        _loop(server)
    finally:
        for job in server.jobs.values():
            _kill(job.pid)
        listener.close()
        if os.path.exists(path):
            os.unlink(path)


def _loop(server: Server) -> None:
    while not server.stopping:
        readable, _, _ = select.select([server.listener, *(j.conn for j in server.jobs.values())], [], [], 0.05)
        for sock in readable:
            if sock is server.listener:
                _accept(server)
            else:
                _from_client(server, server.jobs[sock.fileno()])
        _reap(server)
        if not server.jobs and time.monotonic() - server.last > server.idle_s:
            return


def _accept(server: Server) -> None:
    conn, _ = server.listener.accept()
    try:
        if peer_uid(conn) != os.getuid():
            send(conn, {"error": "refused: another user's connection"})
            conn.close()
            return
        conn.settimeout(5.0)
        message, fds = _receive(conn)
        conn.settimeout(None)
    except (OSError, ValueError):
        conn.close()
        return
    op = message.get("op")
    if op in ("status", "stop"):
        send(conn, server.status())
        _close(conn, fds)
        server.stopping = op == "stop"
    elif "argv" in message and len(fds) == 3 and len(server.jobs) < MAX_WORKERS:
        send(conn, {"version": __version__, "protocol": PROTOCOL})
        if message.get("version") != __version__ or message.get("protocol") != PROTOCOL:
            _close(conn, fds)
            return
        server.last = time.monotonic()  # a command is activity; asking for the status is not
        pid = os.fork()
        if pid == 0:
            _work(server, message, fds)  # never returns
        for fd in fds:
            os.close(fd)
        server.served += 1
        server.jobs[conn.fileno()] = Job(conn, pid)
    else:
        _close(conn, fds)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(MAX_REQUEST)
        if not more or len(data) > MAX_REQUEST:
            for fd in fds:
                os.close(fd)
            raise ValueError("incomplete request")
        data += more
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("not an object")
    return message, list(fds)


def _from_client(server: Server, job: Job) -> None:
    """A signal to forward, or the client went away (then its worker is stopped)."""
    try:
        data = job.conn.recv(4096)
    except OSError:
        data = b""
    if not data:
        _kill(job.pid)
        return
    for line in data.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("signal") == "INT":
            try:
                os.kill(job.pid, signal.SIGINT)
            except ProcessLookupError:
                pass


def _reap(server: Server) -> None:
    for key, job in list(server.jobs.items()):
        pid, status = os.waitpid(job.pid, os.WNOHANG)
        if pid == 0:
            continue
        code = os.waitstatus_to_exitcode(status)
        try:
            send(job.conn, {"exit": code if code >= 0 else 128 - code})
        except OSError:
            pass
        job.conn.close()
        del server.jobs[key]
        server.last = time.monotonic()


def _work(server: Server, message: dict[str, Any], fds: list[int]) -> None:
    """In the forked worker: become the client's process, run the CLI, exit with its code."""
    code = 1
    try:
        _die_with_parent()
        server.listener.close()
        for job in server.jobs.values():
            job.conn.close()
        # stdin and stdout become the client's; Python's stderr writes to the client's
        # stderr too, while descriptor 2 (where TensorFlow's C++ logs go) stays /dev/null,
        # exactly as runtime.tensorflow() arranges it in a cold run
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        err = os.dup(fds[2])
        for fd in fds:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(message.get("cwd") or "/")
        env = message.get("env")
        if isinstance(env, dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in env.items()})
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        sys.stdin = os.fdopen(0, "r", closefd=False)
        sys.stdout = os.fdopen(1, "w", closefd=False)
        sys.stderr = os.fdopen(err, "w", buffering=1, errors="backslashreplace")
        argv = [str(a) for a in message.get("argv", [])]
        sys.argv = ["autodiff", *argv]
        from .cli import cli

        code = int(cli.main(argv, standalone_mode=False))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker if the server dies, so no request outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _close(conn: socket.socket, fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    conn.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def request(op: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the running server for ``status`` or to ``stop``; None when none answers."""
    from .client import Lines, connect

    conn = connect(timeout)
    if conn is None:
        return None
    with conn:
        try:
            send(conn, {"op": op})
            return Lines(conn).next()
        except OSError:
            return None


def main() -> None:
    """``python -m autodiffcli.server [IDLE_S]``: run in the foreground (``autodiff server start`` detaches it)."""
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else float(os.environ.get("AUTODIFF_SERVER_IDLE", IDLE_S))
    serve(idle)


if __name__ == "__main__":
    main()
