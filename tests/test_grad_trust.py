"""``grad`` tells the truth (issue 20): --check judges each derivative on its own scale,
float32's range is named instead of printed as a wrong number, stdin holds one expression,
variables are listed in natural order.

Oracles are independent of the tape: SymPy's exact derivatives and limits, mpmath.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import error_lines, invoke


def one_error(result) -> str:
    (line,) = error_lines(result.stderr)
    return line


# ---------------------------------------------------------------- stdin (items 12, 13)


def test_two_lines_on_stdin_are_refused_not_multiplied():
    # through a real pipe, as a shell gives it: two expressions are not one product
    run = subprocess.run(
        [sys.executable, "-m", "autodiffcli", "grad", "-", "--at", "1"],
        input="x**2\nx**3\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "Error: EXPR -: stdin holds 2 lines ('x**2', 'x**3'); an expression on stdin is one line: "
        "run once per expression\n"
    )


def test_one_line_on_stdin_with_blank_lines_around_is_one_expression():
    result = invoke("grad", "-", "--at", "2", "--format", "plain", input="\n  x**3 \n\n")
    assert (result.exit_code, result.stdout) == (0, "12\n")  # 3x**2 at 2


def test_many_lines_on_stdin_for_minimize_too():
    result = invoke("minimize", "-", "--format", "plain", input="x**2\n(x-1)**2\nx**4\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert one_error(result).startswith("Error: EXPR -: stdin holds 3 lines ('x**2', '(x-1)**2', ...)")


def test_expression_and_points_cannot_both_come_from_stdin():
    result = invoke("grad", "-", "--at-file", "-", input="x**2\n1\n2\n")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "cannot both come from stdin" in one_error(result)
