"""The warm server through real processes: same bytes as a cold run, Ctrl-C, isolation, clean stops.

Servers listen only on Unix sockets in the tests' own tmp directories. One server, started
once, serves the tests that leave it as it was (they only read its status or send it
commands); a test that stops, restarts, kills or retunes a server starts its own. Every
server a test starts is stopped (by its pid, whatever happens) in a fixture or ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import error_lines, invoke, json_of, run_cli

ON = {"AUTODIFF_SERVER": "on"}


def status_of(env: dict[str, str], code: int = 0) -> dict:
    """``autodiff server status --format json``, read against its schema (exit 1: none runs)."""
    return json_of(run_cli("server", "status", "--format", "json", env=env), "server", code)


def requests_served(env: dict[str, str]) -> int:
    return status_of(env)["requests"]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def gone(pid: int) -> bool:
    """The process has ended (a zombie no one has reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


COLD = {"AUTODIFF_SERVER_WARM": "off"}  # for a test that runs no command: start without TensorFlow


@contextlib.contextmanager
def started(directory: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[dict[str, str], dict]]:
    """A server of its own on ``directory``; stopped, then killed by pid, whatever happens."""
    env = {**ON, "AUTODIFF_SERVER_DIR": str(directory), **(env or {})}
    start = run_cli("server", "start", *args, env=env, timeout=180)
    assert start.returncode == 0, start.stderr
    pids = [status_of(env)["pid"]]
    try:
        yield env, status_of(env)
    finally:
        with contextlib.suppress(Exception):  # a test may have restarted it: that pid too
            pids.append(status_of(env)["pid"])
        run_cli("server", "stop", env=env, timeout=60)
        for pid in pids:
            _kill(pid)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], dict]]:
    """One server for the tests that leave it running as they found it."""
    with started(tmp_path_factory.mktemp("shared") / "sock") as server:
        yield server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict]]:
    """A server of the test's own, for a test that stops, kills or restarts it."""
    with started(tmp_path / "sock") as own:
        yield own


TIMINGS = re.compile(r'"optimize_s": [0-9.e-]+|optimize time │ [0-9.]+ s')

BATTERY = [
    (["grad", "x**2-2*x+1", "--at", "0", "--format", "json"], None),
    (["grad", "x**2*y + sin(x*y)", "--at", "x=1,y=2", "--order", "2", "--format", "table"], None),
    (["grad", "x**2 + 3*x*y", "--at-file", "points.csv", "--format", "plain"], None),  # relative to the cwd
    (["grad", "-", "--at", "2", "--format", "plain"], "x**3"),  # the expression on stdin
    (["grad", "sinn(x) + 1"], None),  # exit 2, a caret
    (["grad", "log(x)", "--at", "-1", "--format", "json"], None),  # exit 1
    (["minimize", "--opt", "adam", "--format", "json"], None),
    (["minimize", "(x-3)**2 + (y+1)**2", "--opt", "newton", "--format", "table"], None),
    (["maximize", "x*exp(-x**2)", "--opt", "lbfgs", "--from", "0.5", "--format", "plain"], None),
    (["minimize", "x**2", "--opt", "adamm"], None),
    (["--version"], None),
    (["tour", "--format", "plain"], None),
]


def test_warm_runs_print_the_same_bytes_and_exit_codes_as_cold_runs(shared, tmp_path, monkeypatch):
    env, _ = shared
    (tmp_path / "points.csv").write_text("x,y\n1,2\n3,4\n")
    before = requests_served(env)
    # the cold runs in this process (what a cold `autodiff` runs, without the start-up):
    # one TensorFlow for twelve commands instead of twelve
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "90")
    colds = [invoke(*args, input=stdin) for args, stdin in BATTERY]
    # twice: the second round runs on workers that served the first (and reuse what they compiled)
    for _ in range(2):
        for (args, stdin), cold in zip(BATTERY, colds, strict=True):
            warm = run_cli(*args, input=stdin, cwd=tmp_path, env={**env, "COLUMNS": "90"})
            assert warm.returncode == cold.exit_code, args
            assert TIMINGS.sub("T", warm.stdout) == TIMINGS.sub("T", cold.stdout), args
            assert warm.stderr == cold.stderr, args
            if "json" in args:  # and the JSON is whole and of its schema
                json_of(warm, args[0], warm.returncode)
    assert requests_served(env) == before + 2 * len(BATTERY)  # every warm run went through the server


def test_workers_recycled_after_their_quota_keep_answering_right(tmp_path):
    with started(tmp_path / "sock", env={"AUTODIFF_SERVER_RECYCLE": "2"}) as (env, _):
        for a in range(1, 8):  # seven requests: at least three workers, each exits after its second
            out = run_cli("grad", f"{a}*x**3", "--at", "2", "--format", "plain", env=env)
            assert (out.returncode, out.stdout, out.stderr) == (0, f"{12 * a}\n", "")
        status = status_of(env)
        assert status["requests"] == 7 and status["running"] == 0 and 1 <= status["workers"] <= 3


def test_status_says_pid_version_uptime_and_requests_and_off_bypasses_it(shared):
    env, status = shared
    line = run_cli("server", "status", env=env).stdout
    assert re.fullmatch(
        rf"autodiff server running: pid {status['pid']}, version \d+\.\d+\.\d+, up \d+ s, \d+ requests served, "
        r"idle exit after 900 s, socket .*server\.sock\n",
        line,
    )
    data = status_of(env)
    assert (data["pid"], data["idle_s"]) == (status["pid"], 900)
    before = requests_served(env)
    off = run_cli("grad", "x**2", "--at", "1", "--format", "plain", env={**env, "AUTODIFF_SERVER": "off"})
    assert (off.returncode, off.stdout) == (0, "2\n")
    assert requests_served(env) == before


def test_start_when_one_runs_says_so_and_keeps_it(shared):
    env, status = shared
    again = run_cli("server", "start", env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"autodiff server already running (pid {status['pid']}, version {status['version']})\n"
    assert status_of(env)["pid"] == status["pid"]


def test_the_socket_is_private(shared):
    env, _ = shared
    directory = Path(env["AUTODIFF_SERVER_DIR"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "server.sock").stat().st_mode) == 0o600


def test_a_socket_directory_others_can_enter_is_refused(tmp_path):
    directory = tmp_path / "open"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # the umask may have taken some bits away
    env = {**ON, "AUTODIFF_SERVER_DIR": str(directory)}
    result = run_cli("server", "start", env=env, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"Error: refusing to start the server: {directory} must belong to you and be mode 0700 (it is 0o755)\n"
    )
    assert list(directory.iterdir()) == []  # no socket, no server
    assert status_of(env, 1) == {"schema": "autodiff.server/1", "running": False}


def _ask(path: Path, payload: bytes) -> bytes:
    """Send raw bytes to the server's socket; what it answers before it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        with contextlib.suppress(OSError):  # it may close before all of an oversized request is sent
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                answer += chunk
        return answer


@pytest.mark.parametrize(
    "payload",
    [
        b"not json\n",
        b"[1, 2, 3]\n",  # JSON, not an object
        b'{"op": "restart"}\n',  # an unknown op
        b'{"argv": ["grad", "x"], "version": "0"}\n',  # a command without the three streams
        b'{"op": "status"',  # no end of line: the client went away mid-request
        b"x" * (3 << 20),  # over the 1 MiB a request may have
        b'{"op": "' + b"s" * (2 << 20) + b'"}\n',
    ],
    ids=["text", "array", "unknown-op", "no-streams", "unfinished", "oversized", "oversized-json"],
)
def test_a_malformed_or_oversized_request_is_closed_and_the_server_serves_on(shared, payload):
    env, status = shared
    assert _ask(Path(env["AUTODIFF_SERVER_DIR"]) / "server.sock", payload) == b""  # no answer, closed
    assert status_of(env)["pid"] == status["pid"]
    after = run_cli("grad", "x**3", "--at", "2", "--format", "plain", env=env)
    assert (after.returncode, after.stdout, after.stderr) == (0, "12\n", "")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_another_users_connection_is_refused():
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="autodiff-peer-", dir="/tmp"))  # pytest's own tmp is 0700
    try:
        with started(base / "sock", env=COLD) as (env, _):
            directory = base / "sock"
            sock = directory / "server.sock"
            base.chmod(0o755)  # open the two outer doors, to reach the third: SO_PEERCRED
            directory.chmod(0o755)
            sock.chmod(0o666)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child becomes user 65534 and asks for the status
                try:
                    os.setuid(65534)
                    conn = socket.socket(socket.AF_UNIX)
                    conn.connect(str(sock))
                    with contextlib.suppress(OSError):  # the server may refuse before the request is sent
                        conn.sendall(b'{"op": "status"}\n')
                    os.write(write, conn.recv(1000))
                finally:
                    os._exit(0)
            os.close(write)
            try:
                answer = os.read(read, 1000)
                os.waitpid(pid, 0)
            finally:
                os.close(read)
                directory.chmod(0o700)  # the fixture's stop must find it private again
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert answer == b'{"error": "refused: another user\'s connection"}\n'


def test_eight_concurrent_clients_get_their_own_answers(shared):
    env, _ = shared

    def one(k: int) -> tuple[int, subprocess.CompletedProcess[str]]:
        return k, run_cli("grad", f"x**{k}", "--at", "2", "--format", "plain", env=env)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(2, 10)))
    for k, out in results:
        assert (out.returncode, out.stdout, out.stderr) == (0, f"{k * 2 ** (k - 1)}\n", "")


# SGD, lr 0.001, on (x-1)**2 from 0: x_k = 1 - 0.998**k after k steps. The Ctrl-C may come
# after any number of steps (0 included); the point reported must be the one of that step.
LONG_RUN = ["minimize", "(x-1)**2", "--eager", "--steps", "100000000", "--lr", "0.001", "--format", "json"]


def _long_run(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autodiffcli", *LONG_RUN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_for_a_worker(env: dict[str, str], proc: subprocess.Popen[str]) -> None:
    """Until the server's status counts the request as running (its readiness signal)."""
    deadline = time.monotonic() + 120
    while status_of(env)["running"] == 0:
        assert proc.poll() is None, "the run ended before the server took it"
        assert time.monotonic() < deadline, "the server never took the request"
        time.sleep(0.05)


def test_ctrl_c_in_the_client_interrupts_its_run_on_the_server(shared):
    env, _ = shared
    proc = _long_run(env)
    try:
        _wait_for_a_worker(env, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    data = json_of(subprocess.CompletedProcess(LONG_RUN, proc.returncode, out, err), "minimize", 130)
    assert data["status"] == "interrupted"
    assert error_lines(err) == [f"Error: interrupted after {data['steps']} steps; the best point so far is reported"]
    assert data["x"]["x"] == pytest.approx(1 - 0.998 ** data["steps"], abs=1e-4)  # float32 steps
    after = run_cli("grad", "x**2", "--at", "3", "--format", "plain", env=env)  # a fresh worker serves the next
    assert (after.returncode, after.stdout) == (0, "6\n")


def test_a_server_killed_mid_request_leaves_one_error_line_and_no_stale_socket(server):
    env, status = server
    proc = _long_run(env)
    try:
        _wait_for_a_worker(env, proc)
        os.kill(status["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out) == (1, "")
    assert err == "Error: the autodiff server stopped during this command; run it again\n"
    assert run_cli("grad", "x**2", "--at", "3", "--format", "plain", env=env).stdout == "6\n"  # runs cold
    again = run_cli("server", "start", env=env, timeout=180)
    assert again.returncode == 0 and "autodiff server started" in again.stdout
    assert requests_served(env) == 0


def test_restart_replaces_the_server_and_stop_stops_it(server):
    env, status = server
    assert run_cli("grad", "x**2", "--at", "1", "--format", "plain", env=env).stdout == "2\n"
    restart = run_cli("server", "restart", "--idle", "300", env=env, timeout=180)
    assert restart.returncode == 0, restart.stderr
    new = status_of(env)
    assert new["pid"] != status["pid"] and (new["requests"], new["idle_s"]) == (0, 300)
    assert restart.stdout.splitlines() == [
        f"autodiff server stopped (pid {status['pid']}, 1 requests served)",
        f"autodiff server started (pid {new['pid']}, version {new['version']})",
    ]
    wait_gone(status["pid"])  # the old one is gone
    stop = run_cli("server", "stop", env=env, timeout=60)
    assert (stop.returncode, stop.stdout, stop.stderr) == (
        0,
        f"autodiff server stopped (pid {new['pid']}, 0 requests served)\n",
        "",
    )
    assert not (Path(env["AUTODIFF_SERVER_DIR"]) / "server.sock").exists()
    assert status_of(env, 1) == {"schema": "autodiff.server/1", "running": False}
    wait_gone(new["pid"])


def test_the_client_imports_nothing_heavy_when_a_server_answers(shared):
    env, _ = shared
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autodiffcli", "grad", "x**2", "--at", "1", "--format", "plain"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (0, "2\n")
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "import time:" in line
    }
    assert not imported & {"tensorflow", "sympy", "numpy", "scipy", "rich", "click", "keras"}


def test_a_client_of_another_version_runs_cold_and_says_so(shared):
    env, _ = shared
    code = (
        "import sys, autodiffcli.server.client as c, autodiffcli.main as m; c.__version__ = '0.0.0-other'; "
        "sys.argv = ['autodiff', 'grad', 'x**2', '--at', '1', '--format', 'plain']; m.main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )
    assert (proc.returncode, proc.stdout) == (0, "2\n")
    assert proc.stderr.startswith("autodiff: the running server is version ")
    assert "running without it" in proc.stderr


def test_an_idle_server_exits_by_itself_after_autodiff_server_idle(tmp_path):
    with started(tmp_path / "sock", env={"AUTODIFF_SERVER_IDLE": "1.5", **COLD}) as (env, status):
        assert status["idle_s"] == 1.5
        deadline = time.monotonic() + 60
        while run_cli("server", "status", env=env).returncode == 0:  # asking is not activity
            assert time.monotonic() < deadline, "still running"
            time.sleep(0.5)
        assert not (tmp_path / "sock" / "server.sock").exists()
        wait_gone(status["pid"])


def test_stop_without_a_server_and_a_bad_idle(tmp_path):
    env = {**ON, "AUTODIFF_SERVER_DIR": str(tmp_path / "sock")}
    assert run_cli("server", "stop", env=env).stdout == "no autodiff server is running\n"
    status = run_cli("server", "status", env=env)
    assert (status.returncode, status.stdout) == (1, "no autodiff server is running\n")
    assert status_of(env, 1) == {"schema": "autodiff.server/1", "running": False}
    bad = run_cli("server", "start", "--idle", "0", env=env)
    assert (bad.returncode, bad.stderr) == (2, "Error: --idle: must be > 0, got 0\n")
    assert not (tmp_path / "sock").joinpath("server.sock").exists()
