"""The real entry point in a subprocess: start-up, exit codes, stdin, stderr, signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import mpmath
import pytest

from conftest import Terminal, error_lines, json_of, run_cli


def test_console_script_is_installed_and_its_json_leaves_stderr_empty():
    exe = os.path.join(os.path.dirname(sys.executable), "autodiff")
    proc = subprocess.run(
        [exe, "grad", "x**2-2*x+1", "--at", "0", "--format", "json"], capture_output=True, text=True, timeout=120
    )
    # exit 0, stderr empty: TensorFlow's own log lines are silenced
    assert json_of(proc, "grad")["results"][0]["gradient"] == {"x": -2.0}


def test_expression_from_stdin_and_exit_codes():
    # exit codes 0 (with the expression on stdin), 2 and 3 through a real process; exit 1's
    # documented cases run in-process (test_security, test_grad)
    assert run_cli("grad", "-", "--at", "1", "--format", "plain", input="x^2\n").stdout.strip() == "2"
    bad = run_cli("grad", "x +* y")
    assert bad.returncode == 2 and len(error_lines(bad.stderr)) == 1
    numeric = run_cli("grad", "log(x)", "--at", "-1", "--format", "plain")
    assert numeric.returncode == 1 and "log" in error_lines(numeric.stderr)[0]
    tol = run_cli("minimize", "(x-3)**2", "--opt", "sgd", "--steps", "5", "--tol", "1e-9", "--format", "json")
    assert json_of(tol, "minimize", 3)["status"] == "max_steps"


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


# Ctrl-C: SGD with lr 0.25 on (x-1)**2 + c*y**2, c = 4 + 2**-30, from (0, 1). Each step halves
# x - 1 and multiplies y by 1 - c/2 = -(1 + 2**-31): f falls from 5 to about 4 within 30 steps,
# then grows by a factor (1 + 2**-31)**2 a step, forever and slowly (float64 never overflows
# here). With a history row every K steps (K even, >= 50), the best row is therefore always
# step K, at x = 1 (to rounding), y = (1 + 2**-31)**K, and any later point is worse.
SLOW_DIVERGENCE = "(x-1)**2 + (4 + 2^-30)*y**2"
ROW_EVERY = {"eager": 50, "graph": 20_000, "xla": 1_000_000}  # a few rows a second in each mode
MODE_FLAGS = {"eager": ["--eager"], "graph": ["--graph", "--no-jit"], "xla": ["--graph", "--jit"]}
ROW = re.compile(r"^\s*│\s*(\d+)\s*│", re.MULTILINE)


@pytest.mark.parametrize("mode", list(MODE_FLAGS))
def test_ctrl_c_reports_the_best_point_so_far_and_exits_130(mode: str) -> None:
    every = ROW_EVERY[mode]
    term = Terminal(
        "minimize", SLOW_DIVERGENCE, "--opt", "sgd", "--lr", "0.25", "--from", "x=0,y=1", "--dtype", "float64",
        "--steps", "1000000000000", "--every", str(every), *MODE_FLAGS[mode],
        stdout_tty=False, stderr_tty=True,
    )  # fmt: skip
    try:
        # ready: the live table (stderr is a terminal) shows a row two rows past the best one
        term.wait_for(lambda screen: any(int(s) >= 2 * every for s in ROW.findall(screen)))
        term.proc.send_signal(signal.SIGINT)
        code = term.finish()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert code == 130, term.screen[-2000:]
    (line,) = error_lines(term.screen)
    steps = int(re.fullmatch(r"Error: interrupted after (\d+) steps; the best point so far is reported", line)[1])
    assert steps >= 2 * every
    assert "Traceback" not in term.screen
    x, y = (float(v) for v in term.piped.split())  # plain: the point, 17 digits, exact in float64
    best_y = float(mpmath.power(1 + mpmath.mpf(2) ** -31, every))
    assert x == pytest.approx(1.0, abs=1e-14)  # 1 - 0.5**K, up to the rounding of each step
    assert y == pytest.approx(best_y, rel=1e-12)  # the next step's y is 4.7e-10 * K further out


def _interrupted_run(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``autodiff ARGS`` in a fresh interpreter after ``prelude``, which arranges a SIGINT."""
    run = f"import sys\nsys.argv = ['autodiff', *{list(args)!r}]\nfrom autodiffcli.cli import main\nmain()\n"
    code = prelude + run
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


# SIGINT while TensorFlow's own modules are being imported: the import must not be cut short
# (a half-imported TensorFlow fails when used again, or the interpreter exits by SIGINT)
CTRL_C_IN_IMPORT = """
import os, signal, sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow.python.ops.ragged.ragged_ops":  # late in ragged_tensor.py, after a registration
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, CtrlC())
"""


def test_ctrl_c_while_tensorflow_is_imported_still_reports_and_exits_130():
    proc = _interrupted_run(CTRL_C_IN_IMPORT, "minimize", "(x-1)**2", "--from", "x=0", "--format", "plain")
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert error_lines(proc.stderr) == ["Error: interrupted after 0 steps; the best point so far is reported"]
    assert "Traceback" not in proc.stderr
    assert float(proc.stdout) == 0.0  # no step taken: the start point


# SIGINT in the middle of an eager SGD step, after x's update and before y's (the 41st
# variable update is step 21's first): the run must stop where a step ended, never report
# a point no step produced
CTRL_C_IN_STEP = """
import os, signal
import keras
updates = [0]
update_step = keras.optimizers.SGD.update_step
def counting(self, gradient, variable, learning_rate):
    update_step(self, gradient, variable, learning_rate)
    updates[0] += 1
    if updates[0] == 41:
        os.kill(os.getpid(), signal.SIGINT)
keras.optimizers.SGD.update_step = counting
"""


def test_ctrl_c_inside_an_eager_step_reports_a_point_of_the_sgd_path():
    proc = _interrupted_run(
        CTRL_C_IN_STEP, "minimize", "(x-1)**2 + y**2", "--opt", "sgd", "--lr", "0.25", "--from", "x=0,y=1",
        "--dtype", "float64", "--steps", "100000", "--eager", "--format", "plain",
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr[-2000:]
    (line,) = error_lines(proc.stderr)
    steps = int(re.fullmatch(r"Error: interrupted after (\d+) steps; the best point so far is reported", line)[1])
    assert steps >= 21
    x, y = 0.0, 1.0  # SGD on this f, step by step in float64: x - 1 and y halve each step
    path = [(x, y)]
    for _ in range(steps):
        x, y = x - 0.25 * (2 * (x - 1)), y - 0.25 * (2 * y)
        path.append((x, y))
    assert tuple(float(v) for v in proc.stdout.split()) == path[steps]


def test_a_held_back_ctrl_c_arrives_at_the_check_or_the_end_and_a_second_one_at_once():
    from autodiffcli.interrupts import deferred

    # each block records how far it got: an interrupt raised too early stops it short
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred() as ctrl_c:
            signal.raise_signal(signal.SIGINT)
            reached.append("after the signal")
            assert ctrl_c.pressed  # held back: no KeyboardInterrupt yet
            ctrl_c.check()
            reached.append("after the check")
    assert reached == ["after the signal"]

    reached.clear()
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            signal.raise_signal(signal.SIGINT)
            reached.append("end of the block")
        reached.append("after the block")
    assert reached == ["end of the block"]  # a block that never checks gets it when it ends, not later

    reached.clear()
    with pytest.raises(KeyboardInterrupt):
        with deferred() as ctrl_c:
            signal.raise_signal(signal.SIGINT)
            reached.append("after the first")
            signal.raise_signal(signal.SIGINT)
            reached.append("after the second")
    assert reached == ["after the first"]  # a second Ctrl-C does not wait for a check
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
