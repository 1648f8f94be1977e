"""What a terminal shows, through a real pseudo-terminal: the default format, and the live
progress of a minimization."""

from __future__ import annotations

import re

from conftest import Terminal, invoke, run_cli

ROW = re.compile(r"^\s*│\s*(\d+)\s*│", re.MULTILINE)
BAR = re.compile(r"steps\s.*?(\d+)/(\d+)")


def test_default_format_is_a_table_on_a_terminal():
    term = Terminal("grad", "x**2 - 2*x + 1", "--at", "3", stdout_tty=True, stderr_tty=False)
    assert term.finish() == 0, term.piped
    screen = term.screen
    assert "quantity" in screen and "symbolic (sympy.diff)" in screen
    (row,) = [line for line in screen.splitlines() if "df/dx" in line]
    assert "2*x - 2" in row and row.rstrip(" │").endswith("4.0")
    assert term.piped == ""  # nothing on stderr


def test_default_format_is_plain_when_piped():
    grad = run_cli("grad", "x**2 - 2*x + 1", "--at", "3")
    assert (grad.returncode, grad.stdout, grad.stderr) == (0, "4\n", "")
    # the same choice for minimize, in-process (click's runner is not a terminal either)
    found = invoke("minimize", "(x-3)**2", "--opt", "adam", "--lr", "0.1", "--steps", "2000")
    assert (found.exit_code, found.stderr) == (0, "")
    assert abs(float(found.stdout) - 3) < 1e-3


def test_live_progress_on_a_terminal_shows_rows_and_a_bar(monkeypatch):
    # shown at once (AUTODIFF_PROGRESS_DELAY=0), not after a second: however fast the machine runs
    # the steps, the progress is on the terminal
    monkeypatch.setenv("AUTODIFF_PROGRESS_DELAY", "0")
    steps, every = 2_000_000, 100_000
    term = Terminal("minimize", "(x-3)**2", "--opt", "adam", "--lr", "0.1", "--steps", str(steps),
                    "--every", str(every), stdout_tty=False, stderr_tty=True)  # fmt: skip
    try:
        shown = term.wait_for(lambda screen: BAR.search(screen) is not None and len(ROW.findall(screen)) >= 2)
    finally:
        code = term.finish()
    assert code == 0, term.screen[-2000:]
    assert "|grad|" in shown
    done, total = (int(n) for n in BAR.search(shown).groups())
    assert total == steps and 0 <= done <= steps
    assert {int(s) % every for s in ROW.findall(shown)} == {0}  # the history rows, every 100,000 steps
    assert abs(float(term.piped) - 3) < 1e-3  # the result, on stdout
