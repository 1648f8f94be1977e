"""The warm server: TensorFlow, Keras, SymPy and SciPy imported once, warm workers that serve requests.

The server process imports everything but never runs a TensorFlow op, so it starts no
runtime threads and can fork safely. Requests are served by workers forked from it: each
starts TensorFlow's runtime once, then serves requests one at a time, each in its main
thread (so every budget, the SIGALRM wall clock included, holds as in a cold run) with the
client's own standard streams, working directory and environment, restored afterwards.
A worker keeps what it compiled (see ``keras_loop.run``'s cache), so a repeated command
skips tracing and XLA compilation.

The pool is elastic: the most recently used idle worker takes the next request (its
caches are warm); when none is idle a new one is forked at once, so no request waits for
another; one spare is kept ready. A worker is not reused after a request that did not end
cleanly (Ctrl-C, a crash, a budget), after ``RECYCLE`` requests, or once its resident memory
passes ``MAX_RSS``: it exits and a fresh fork replaces it. So one request's crash, hang or
memory cannot reach the server or another request, and memory stays bounded however many
requests are served.

Security: the socket lives in a directory only the user can enter (0700, checked on
start), is itself 0600, and every connection's peer uid (SO_PEERCRED) must be the user's.
Requests are JSON; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import click

from .. import __version__
from .protocol import PROTOCOL, Lines, connect, peer_uid, receive, send, socket_dir, socket_path
from .worker import quiet_stdio, run_worker

IDLE_S = 900.0  # a server with no request for this long exits (AUTODIFF_SERVER_IDLE, or --idle)
MAX_WORKERS = 32  # requests served at once; more are refused (the client then runs cold)
SPARE = 1  # idle workers kept ready
MAX_IDLE = 2  # idle workers kept at most; older ones exit


def prepare_dir(path: str) -> None:
    """Create the socket's directory 0700, or refuse one that others could enter."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must belong to you and be mode 0700 (it is {oct(info.st_mode & 0o777)})")


@dataclass
class Worker:
    pid: int
    control: socket.socket  # the server's end of a socket pair to the worker


@dataclass
class Job:
    conn: socket.socket  # the client's connection (the worker holds a duplicate and answers on it)
    worker: Worker


@dataclass
class Server:
    listener: socket.socket
    idle_s: float
    app: click.Command  # what a worker runs for each request: the command-line app, passed in
    started: float = field(default_factory=time.time)
    served: int = 0
    jobs: dict[int, Job] = field(default_factory=dict)  # by the client socket's fileno
    idle: list[Worker] = field(default_factory=list)  # the last one is the most recently used
    retired: set[int] = field(default_factory=set)  # pids of workers told to exit, not yet waited for
    last: float = field(default_factory=time.monotonic)
    stopping: bool = False
    warm: bool = True  # import and start TensorFlow ahead of requests (AUTODIFF_SERVER_WARM)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "requests": self.served,
            "running": len(self.jobs),
            "workers": len(self.jobs) + len(self.idle),
            "idle_s": self.idle_s,
        }

    def sockets(self) -> list[socket.socket]:
        """Every socket the server holds: a forked worker closes all of them."""
        return [self.listener, *(j.conn for j in self.jobs.values()), *self.controls()]

    def controls(self) -> list[socket.socket]:
        return [*(j.worker.control for j in self.jobs.values()), *(w.control for w in self.idle)]


def warm() -> None:
    """Import what every command needs, and warm SymPy, without running any TensorFlow op."""
    from .. import fit, grad, minimize, settings, stream  # noqa: F401
    from ..calculus import residuals  # noqa: F401
    from ..output import serialize, tables  # noqa: F401
    from ..runtime import tensorflow
    from ..solve import keras_loop, least_squares  # noqa: F401

    tensorflow()
    import keras  # noqa: F401
    import scipy.optimize
    import scipy.stats  # noqa: F401  (fit's intervals)

    # SymPy imports parts of itself and fills caches on first use: a quarter of a worker's time
    problem = settings.load_problem("x**3*y + sin(x)*exp(y)/(1 + x**2)", (), "float32")
    grad.symbolic_derivatives(grad.grad_request(problem, None, [], [], 2))


def serve(app: click.Command, idle_s: float = IDLE_S) -> None:
    """Serve ``app`` until stopped or idle for ``idle_s``; the socket is removed on the way out.

    The app is passed in (by ``autodiffcli.serve``, the composition root) so that nothing
    in this package imports the command line.
    """
    directory, path = socket_dir(), socket_path()
    prepare_dir(directory)
    ahead = os.environ.get("AUTODIFF_SERVER_WARM", "on").lower() not in ("off", "0", "no", "false")
    if ahead:
        warm()  # off: each worker imports what its first command needs (tests of the life cycle)
    if os.path.exists(path):
        os.unlink(path)  # stale: the caller checked that nothing answers on it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(64)
    server = Server(listener, idle_s, app, warm=ahead)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stopping", True))
    try:
        _top_up(server)
        _loop(server)
    finally:
        for worker in [*(j.worker for j in server.jobs.values()), *server.idle]:
            _kill(worker.pid)
        listener.close()
        if os.path.exists(path):
            os.unlink(path)


def _loop(server: Server) -> None:
    while not server.stopping:
        watched = [server.listener, *(j.conn for j in server.jobs.values()), *server.controls()]
        readable, _, _ = select.select(watched, [], [], 0.5)
        # workers first: a worker reports that it is done before it answers its client, so
        # a client that hangs up after its answer is never taken for one that went away
        for sock in readable:
            if sock.fileno() >= 0 and any(sock is c for c in server.controls()):
                _from_worker(server, sock)
        for sock in readable:
            if sock is server.listener:
                _accept(server)
            elif sock.fileno() in server.jobs and server.jobs[sock.fileno()].conn is sock:
                _from_client(server, server.jobs[sock.fileno()])
        _reap(server)
        _top_up(server)
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
        message, fds = receive(conn, 3)
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
        worker = _hand_over(server, message, [conn.fileno(), *fds])
        for fd in fds:
            os.close(fd)
        if worker is None:
            send(conn, {"exit": 1})
            conn.close()
            return
        server.served += 1
        server.jobs[conn.fileno()] = Job(conn, worker)
    else:
        _close(conn, fds)


def _hand_over(server: Server, message: dict[str, Any], fds: list[int]) -> Worker | None:
    """Give the request to the most recently used idle worker, or to a new one."""
    for _ in range(3):
        worker = server.idle.pop() if server.idle else _spawn(server)
        try:
            send(worker.control, message, fds)
            return worker
        except OSError:  # it died while idle
            _retire(server, worker)
    return None


def _from_client(server: Server, job: Job) -> None:
    """A signal to forward, or the client went away (then its worker is stopped)."""
    try:
        data = job.conn.recv(4096)
    except OSError:
        data = b""
    if not data:
        _finish(server, job)
        _retire(server, job.worker, kill=True)
        return
    for line in data.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("signal") == "INT":
            try:
                os.kill(job.worker.pid, signal.SIGINT)
            except ProcessLookupError:
                pass


def _from_worker(server: Server, control: socket.socket) -> None:
    """A worker is done with its request (and may serve another), or it exited."""
    job = next((j for j in server.jobs.values() if j.worker.control is control), None)
    worker = job.worker if job else next(w for w in server.idle if w.control is control)
    try:
        data = control.recv(4096)
        report = json.loads(data) if data else None
    except (OSError, ValueError):
        report = None
    if job is None:  # an idle worker only speaks when it exits
        server.idle.remove(worker)
        _retire(server, worker)
        return
    _finish(server, job)
    if isinstance(report, dict) and report.get("reuse") is True:
        server.idle.append(worker)
        while len(server.idle) > MAX_IDLE:
            _retire(server, server.idle.pop(0))
        return
    code = _retire(server, worker, wait=report is None)
    if report is None and code is not None:  # it died mid-request: answer for it
        try:
            send(job.conn, {"exit": code if code >= 0 else 128 - code})
        except OSError:
            pass


def _finish(server: Server, job: Job) -> None:
    server.jobs.pop(job.conn.fileno(), None)
    job.conn.close()
    server.last = time.monotonic()


def _retire(server: Server, worker: Worker, kill: bool = False, wait: bool = False) -> int | None:
    """Close a worker's control socket (it exits on its own); its exit code when waited for."""
    if kill:
        _kill(worker.pid)
    worker.control.close()
    if not wait:
        server.retired.add(worker.pid)
        return None
    try:
        return os.waitstatus_to_exitcode(os.waitpid(worker.pid, 0)[1])
    except ChildProcessError:
        return None


def _reap(server: Server) -> None:
    """Collect retired workers that have exited (a busy worker is waited for by _from_worker)."""
    for pid in list(server.retired):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            server.retired.discard(pid)


def _top_up(server: Server) -> None:
    while len(server.idle) < SPARE and len(server.jobs) < MAX_WORKERS and not server.stopping:
        server.idle.insert(0, _spawn(server))


def _spawn(server: Server) -> Worker:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            # keep only the standard descriptors and our end of the pair: a request's
            # descriptors in flight (a client's stdout pipe) must not stay open here
            for sock in [*server.sockets(), ours]:
                sock.detach()
            quiet_stdio()
            fd = theirs.detach()
            if fd != 3:
                os.dup2(fd, 3)
            os.closerange(4, os.sysconf("SC_OPEN_MAX"))
        finally:
            run_worker(socket.socket(fileno=3), server.app, server.warm)  # never returns
    theirs.close()
    return Worker(pid, ours)


def _close(conn: socket.socket, fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    conn.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited and the socket is gone; False after ``timeout`` s.

    A server started by this very process is its child: it is reaped here, or it would
    stay a zombie that ``kill -0`` still finds. A socket left behind by a server that
    exited without removing it (killed) answers no one, and is removed.
    """
    path = socket_path()
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: init reaps it
            pass
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:  # another user's process now has the pid: ours has gone
            alive = False
        if not alive and os.path.exists(path) and not _answers():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if not alive and not os.path.exists(path):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _answers() -> bool:
    conn = connect(1.0)
    if conn is None:
        return False
    conn.close()
    return True


def request(op: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the running server for ``status`` or to ``stop``; None when none answers."""

    conn = connect(timeout)
    if conn is None:
        return None
    with conn:
        try:
            send(conn, {"op": op})
            return Lines(conn).next()
        except OSError:
            return None
