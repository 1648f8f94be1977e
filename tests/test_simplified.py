"""When SymPy's simplification removes names the user wrote (``x - x``, ``0*y``), every
message about them says what the expression became. Word for word, exit 2."""

from __future__ import annotations

import pytest

from conftest import invoke, json_of

REFUSED = [
    (["grad", "x - x"], "no variables to differentiate: the expression simplifies to the constant 0"),
    (
        ["grad", "2x - 2x", "--at", "x=1"],
        "--at: 'x' is not a variable of the expression: the expression simplifies to the constant 0 (read as 2*x-2*x)",
    ),
    (["grad", "x - x", "--at", "1"], "--at: no variables to set: the expression simplifies to the constant 0"),
    (
        ["grad", "0*y + x", "--at", "y=1"],
        "--at: 'y' is not a variable of the expression: the expression simplifies to x",
    ),
    (["grad", "0*y + x", "--at", "z=1"], "--at: 'z' is not a variable of the expression (it has x)"),
    (["grad", "0*y + x", "--wrt", "y"], "--wrt: 'y' is not in the expression: the expression simplifies to x"),
    (
        ["grad", "x*a - a*x + y", "-p", "a=1"],
        "-p/--param: 'a' is not in the expression: the expression simplifies to y",
    ),
    (
        ["minimize", "2x-2x"],
        "no variables to minimize over: the expression simplifies to the constant 0 (read as 2*x-2*x)",
    ),
    # without simplification, as before, and no longer garbled
    (["grad", "5", "--at", "1"], "--at: the expression has no variables to set (it is the constant 5)"),
    (
        ["grad", "a*b", "-p", "a=1", "-p", "b=2", "--watch", "a", "--at", "1"],
        "--at: the expression has no variables to set (all its names are parameters)",
    ),
    (
        ["grad", "x*y", "--at", "1"],
        "--at: '1' gives no names, but the expression has variables x, y; write --at x=...,y=...",
    ),
    (  # e^x pasted from a textbook: e is a variable, as in SymPy; the message says how to write Euler's number
        ["grad", "e^x", "--at", "1"],
        "--at: '1' gives no names, but the expression has variables e, x; write --at e=...,x=... "
        "(e is a variable here; Euler's number is E, as in E**x or exp(x))",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_message_says_what_the_expression_became(args, message):
    result = invoke(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


def test_a_column_that_dropped_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "points.csv").write_text("y\n1\n")
    result = invoke("grad", "x + y - y", "--at-file", "points.csv")
    message = (
        "--at-file 'points.csv' line 1: column 'y' is not a variable of the expression: the expression simplifies to x"
    )
    assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n")


def test_a_run_that_succeeds_says_which_names_dropped_out():
    data = json_of(invoke("grad", "x + y - y", "--at", "2", "--format", "json"), "grad")
    assert data["variables"] == ["x"]
    assert data["warnings"] == ["y drops out: the expression simplifies to x"]
    table = invoke("grad", "2x + 0*y*z", "--at", "2", "--format", "table")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[-1] == "note: y, z drop out: the expression simplifies to 2*x (read as 2*x+0*y*z)"
