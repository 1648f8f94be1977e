"""``grad`` tells the truth (issue 20): --check judges each derivative on its own scale,
float32's range is named instead of printed as a wrong number, stdin holds one expression,
variables are listed in natural order.

Oracles are independent of the tape: SymPy's exact derivatives and limits, mpmath.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import error_lines, invoke, json_of


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


# ---------------------------------------------------------------- natural order (item 14)

TEN = [f"x{k}" for k in range(1, 11)]


def test_ten_variables_listed_in_natural_order_everywhere():
    import sympy

    weights = {name: k * k for k, name in enumerate(TEN, start=1)}  # df/dx_k = k**2: the column says which
    expr = " + ".join(f"{w}*{n}" for n, w in weights.items())
    exact = [sympy.diff(sympy.sympify(expr), sympy.Symbol(n)) for n in TEN]
    plain = invoke("grad", expr, "--at", "x1=1", "--format", "plain")
    assert plain.exit_code == 0, plain.stderr
    assert [float(v) for v in plain.stdout.split()] == [float(e) for e in exact]
    data = json_of(invoke("grad", expr, "--at", "x1=1", "--format", "json"), "grad")
    assert data["variables"] == TEN and list(data["results"][0]["gradient"]) == TEN
    refused = invoke("grad", expr, "--at", "x11=1")
    assert one_error(refused).endswith("(it has x1, x2, x3, x4, x5, x6, x7, x8, x9, x10)")


def test_points_file_hint_names_the_columns_in_natural_order(tmp_path):
    (tmp_path / "p.txt").write_text("2,10\n")
    result = invoke("grad", "x2**2 + x10**3", "--at-file", str(tmp_path / "p.txt"))
    assert one_error(result).endswith("the first line must name the columns (x2,x10)")


def test_minimize_plain_point_in_natural_order():
    result = invoke("minimize", "(x10 - 1)**2 + (x2 - 2)**2", "--opt", "newton", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert [float(v) for v in result.stdout.split()[:2]] == [2.0, 1.0]  # x2 = 2, then x10 = 1
