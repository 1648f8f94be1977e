"""The warm server through real processes: same bytes as a cold run, Ctrl-C, isolation, clean stops.

Every test that starts a server stops it (by its pid, whatever happens) in the fixture.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import error_lines, run_cli

ON = {"AUTODIFF_SERVER": "on"}


@pytest.fixture
def server(tmp_path: Path):
    """A server on a private socket directory; yields its environment and its status."""
    env = {**ON, "AUTODIFF_SERVER_DIR": str(tmp_path / "sock")}
    started = run_cli("server", "start", env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    status = json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)
    try:
        yield env, status
    finally:
        run_cli("server", "stop", env=env, timeout=60)
        try:
            os.kill(status["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def requests_served(env: dict[str, str]) -> int:
    return json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)["requests"]


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


def test_warm_runs_print_the_same_bytes_and_exit_codes_as_cold_runs(server, tmp_path):
    env, _ = server
    (tmp_path / "points.csv").write_text("x,y\n1,2\n3,4\n")
    before = requests_served(env)
    colds = [
        run_cli(*args, input=stdin, cwd=tmp_path, env={**env, "COLUMNS": "90", "AUTODIFF_SERVER": "off"})
        for args, stdin in BATTERY
    ]
    # twice: the second round runs on workers that served the first (and reuse what they compiled)
    for _ in range(2):
        for (args, stdin), cold in zip(BATTERY, colds, strict=True):
            warm = run_cli(*args, input=stdin, cwd=tmp_path, env={**env, "COLUMNS": "90"})
            assert warm.returncode == cold.returncode, args
            assert TIMINGS.sub("T", warm.stdout) == TIMINGS.sub("T", cold.stdout), args
            assert warm.stderr == cold.stderr, args
    assert requests_served(env) == before + 2 * len(BATTERY)  # every warm run went through the server


def test_workers_recycled_after_their_quota_keep_answering_right(tmp_path):
    env = {**ON, "AUTODIFF_SERVER_DIR": str(tmp_path / "sock"), "AUTODIFF_SERVER_RECYCLE": "2"}
    assert run_cli("server", "start", env=env, timeout=180).returncode == 0
    pid = json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)["pid"]
    try:
        for a in range(1, 8):  # seven requests: at least three workers, each exits after its second
            out = run_cli("grad", f"{a}*x**3", "--at", "2", "--format", "plain", env=env)
            assert (out.returncode, out.stdout, out.stderr) == (0, f"{12 * a}\n", "")
        status = json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)
        assert status["requests"] == 7 and status["running"] == 0 and 1 <= status["workers"] <= 3
    finally:
        run_cli("server", "stop", env=env, timeout=60)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_status_says_pid_version_uptime_and_requests_and_off_bypasses_it(server):
    env, status = server
    line = run_cli("server", "status", env=env).stdout
    assert re.fullmatch(
        rf"autodiff server running: pid {status['pid']}, version \d+\.\d+\.\d+, up \d+ s, \d+ requests served, "
        r"idle exit after 900 s, socket .*server\.sock\n",
        line,
    )
    before = requests_served(env)
    assert (
        run_cli("grad", "x**2", "--at", "1", "--format", "plain", env={**env, "AUTODIFF_SERVER": "off"}).stdout == "2\n"
    )
    assert requests_served(env) == before


def test_the_socket_is_private(server):
    env, _ = server
    directory = Path(env["AUTODIFF_SERVER_DIR"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "server.sock").stat().st_mode) == 0o600


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_another_users_connection_is_refused():
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="autodiff-peer-", dir="/tmp"))  # pytest's own tmp is 0700
    env = {**ON, "AUTODIFF_SERVER_DIR": str(base / "sock")}
    assert run_cli("server", "start", env=env, timeout=180).returncode == 0
    server_pid = json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)["pid"]
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
            try:  # the server may refuse before the request is even sent: then sending fails
                conn.sendall(b'{"op": "status"}\n')
            except OSError:
                pass
            os.write(write, conn.recv(1000))
        finally:
            os._exit(0)
    os.close(write)
    try:
        answer = os.read(read, 1000)
        os.waitpid(pid, 0)
    finally:
        os.close(read)
        run_cli("server", "stop", env=env, timeout=60)
        try:
            os.kill(server_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(base, ignore_errors=True)
    assert json.loads(answer) == {"error": "refused: another user's connection"}


def test_eight_concurrent_clients_get_their_own_answers(server):
    env, _ = server

    def one(k: int) -> tuple[int, str]:
        return k, run_cli("grad", f"x**{k}", "--at", "2", "--format", "plain", env=env).stdout

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(2, 10)))
    for k, out in results:
        assert out == f"{k * 2 ** (k - 1)}\n"


def _long_run(env: dict[str, str]) -> subprocess.Popen[str]:
    args = ["minimize", "(x-1)**2", "--eager", "--steps", "100000000", "--lr", "0.001", "--format", "json"]
    return subprocess.Popen(
        [sys.executable, "-m", "autodiffcli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_for_a_worker(env: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)["running"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(3)  # TensorFlow's runtime starts in the worker, then steps run


def test_ctrl_c_in_the_client_interrupts_its_run_on_the_server(server):
    env, _ = server
    proc = _long_run(env)
    _wait_for_a_worker(env)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    data = json.loads(out)
    assert data["status"] == "interrupted" and 0 < data["x"]["x"] < 1
    assert error_lines(err) == [f"Error: interrupted after {data['steps']} steps; the best point so far is reported"]
    after = run_cli("grad", "x**2", "--at", "3", "--format", "plain", env=env)  # a fresh worker serves the next
    assert (after.returncode, after.stdout) == (0, "6\n")


def test_a_server_killed_mid_request_leaves_one_error_line_and_no_stale_socket(server):
    env, status = server
    proc = _long_run(env)
    _wait_for_a_worker(env)
    os.kill(status["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err == "Error: the autodiff server stopped during this command; run it again\n"
    assert run_cli("grad", "x**2", "--at", "3", "--format", "plain", env=env).stdout == "6\n"  # runs cold
    again = run_cli("server", "start", env=env, timeout=180)
    assert again.returncode == 0 and "autodiff server started" in again.stdout
    assert requests_served(env) == 0


def test_the_client_imports_nothing_heavy_when_a_server_answers(server):
    env, _ = server
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autodiffcli", "grad", "x**2", "--at", "1", "--format", "plain"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert proc.stdout == "2\n"
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "import time:" in line
    }
    assert not imported & {"tensorflow", "sympy", "numpy", "scipy", "rich", "click", "keras"}


def test_a_client_of_another_version_runs_cold_and_says_so(server):
    env, _ = server
    code = (
        "import sys, autodiffcli.server.client as c, autodiffcli.main as m; c.__version__ = '0.0.0-other'; "
        "sys.argv = ['autodiff', 'grad', 'x**2', '--at', '1', '--format', 'plain']; m.main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    assert proc.stdout == "2\n"
    assert proc.stderr.startswith("autodiff: the running server is version ")
    assert "running without it" in proc.stderr


def test_an_idle_server_exits_by_itself(tmp_path):
    env = {**ON, "AUTODIFF_SERVER_DIR": str(tmp_path / "sock")}
    assert run_cli("server", "start", "--idle", "1", env=env, timeout=180).returncode == 0
    pid = json.loads(run_cli("server", "status", "--format", "json", env=env).stdout)["pid"]
    try:
        deadline = time.monotonic() + 30
        while run_cli("server", "status", env=env).returncode == 0:
            assert time.monotonic() < deadline, "still running"
            time.sleep(0.5)
        assert not (tmp_path / "sock" / "server.sock").exists()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_stop_without_a_server_and_a_bad_idle(tmp_path):
    env = {**ON, "AUTODIFF_SERVER_DIR": str(tmp_path / "sock")}
    assert run_cli("server", "stop", env=env).stdout == "no autodiff server is running\n"
    status = run_cli("server", "status", env=env)
    assert (status.returncode, status.stdout) == (1, "no autodiff server is running\n")
    bad = run_cli("server", "start", "--idle", "0", env=env)
    assert (bad.returncode, bad.stderr) == (2, "Error: --idle: must be > 0, got 0\n")
    assert not (tmp_path / "sock").joinpath("server.sock").exists()
