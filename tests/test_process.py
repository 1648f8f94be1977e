"""The real entry point in a subprocess: start-up, exit codes, stdin, stderr, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import error_lines, run_cli


def test_grad_json_leaves_stderr_empty_and_exits_0():
    proc = run_cli("grad", "x**2-2*x+1", "--at", "0", "--format", "json")
    assert proc.returncode == 0
    assert proc.stderr == ""  # TensorFlow's own log lines are silenced
    assert json.loads(proc.stdout)["results"][0]["gradient"] == {"x": -2.0}


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "autodiff")
    proc = subprocess.run(
        [exe, "grad", "x**2-2*x+1", "--at", "0", "--format", "plain"], capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode, proc.stdout.strip()) in ((0, "-2"), (0, "-2.0"))


def test_expression_from_stdin_and_exit_codes():
    assert run_cli("grad", "-", "--at", "1", "--format", "plain", input="x^2\n").stdout.strip() == "2"
    bad = run_cli("grad", "x +* y")
    assert bad.returncode == 2 and len(error_lines(bad.stderr)) == 1
    numeric = run_cli("grad", "log(x)", "--at", "-1", "--format", "plain")
    assert numeric.returncode == 1 and "log" in error_lines(numeric.stderr)[0]
    tol = run_cli("minimize", "(x-3)**2", "--steps", "5", "--tol", "1e-9", "--format", "json")
    assert tol.returncode == 3 and json.loads(tol.stdout)["status"] == "max_steps"


def _no_tensorflow(*args: str) -> str:
    code = (
        "import sys\n"
        "from autodiffcli.cli import cli\n"
        f"code = cli.main({list(args)!r}, standalone_mode=False)\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF', int(code))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip().splitlines()[-1]


def test_help_version_and_input_errors_never_import_tensorflow():
    assert _no_tensorflow("--help") == "no TF 0"
    assert _no_tensorflow("--version") == "no TF 0"
    assert _no_tensorflow("grad", "--help") == "no TF 0"
    assert _no_tensorflow("grad", "sinn(x)") == "no TF 2"
    assert _no_tensorflow("minimize", "--opt", "adamm") == "no TF 2"
    assert _no_tensorflow("grad", "x*y", "--at", "1") == "no TF 2"


def test_ctrl_c_reports_best_point_so_far_and_exits_130():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autodiffcli",
            "minimize",
            "(x-1)**2",
            "--eager",
            "--steps",
            "100000000",
            "--lr",
            "0.001",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    maps = f"/proc/{proc.pid}/maps"
    while time.monotonic() < deadline:  # wait until TensorFlow is loaded, then let it run a little
        with open(maps) as f:
            if "libtensorflow" in f.read():
                break
        time.sleep(0.2)
    time.sleep(8)  # Keras import, optimizer set-up and a few hundred eager steps
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["status"] == "interrupted"
    assert 0 < data["steps"] < 100000000
    assert 0 < data["x"]["x"] < 1  # moving from 0 towards 1
    assert "Traceback" not in err
    (line,) = error_lines(err)
    assert "interrupted" in line
