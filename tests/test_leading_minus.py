"""An EXPR that starts with a minus sign, typed as a shell passes it (real subprocesses).

Oracles: SymPy's derivatives and stationary points of the same expressions, and the
literature's Easom minimum, f(pi, pi) = -1.
"""

from __future__ import annotations

import math

import pytest
import sympy

from conftest import error_lines, invoke, json_of, run_cli

x = sympy.Symbol("x", real=True)


def test_maximize_an_expression_that_starts_with_minus():
    result = run_cli("maximize", "-(x-2)^2+3", "--format", "json")
    data = json_of(result, "maximize")
    expr = -((x - 2) ** 2) + 3
    (top,) = sympy.solve(sympy.diff(expr, x), x)
    assert data["x"]["x"] == pytest.approx(float(top), abs=1e-5)
    assert data["f"] == pytest.approx(float(expr.subs(x, top)), abs=1e-6)
    assert data["verdict"] == "maximum"


def test_easom_as_printed_from_100_starts():
    text = "-cos(x)*cos(y)*exp(-((x-pi)**2+(y-pi)**2))"
    data = json_of(run_cli("minimize", text, "--starts", "100", "--format", "json"), "minimize")
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((math.pi, math.pi), abs=1e-4)
    assert data["f"] == pytest.approx(-1.0, abs=1e-6)


def test_option_values_that_start_with_minus_stay_values():
    # --at -1, -p with a negative value, and --at=-1: options and their values, EXPR first or last
    result = run_cli("grad", "-a*x**3", "-p", "a=-2", "--at", "-1", "--format", "json")
    data = json_of(result, "grad")
    exact = sympy.diff(2 * x**3, x).subs(x, -1)
    assert data["results"][0]["gradient"]["x"] == pytest.approx(float(exact))
    # the same argv in-process (click's parser, the one the process runs): the attached forms
    result = invoke("grad", "--at=-1", "-pa=-2", "-a*x**3", "--format", "json")
    assert json_of(result, "grad")["results"][0]["gradient"]["x"] == pytest.approx(float(exact))


def test_minimize_from_a_negative_start():
    result = run_cli("minimize", "-x*exp(-x**2)", "--from", "x=-0.5", "--format", "json")  # downhill: right
    data = json_of(result, "minimize")
    expr = -x * sympy.exp(-(x**2))
    minima = [r for r in sympy.solve(sympy.diff(expr, x), x) if sympy.diff(expr, x, 2).subs(x, r) > 0]
    assert data["x"]["x"] == pytest.approx(float(minima[0]), abs=1e-5)


def test_double_dash_keeps_working_with_options_on_either_side():
    exact = float(sympy.diff(-(x**3), x).subs(x, 2))
    data = json_of(run_cli("grad", "--at", "2", "--", "-x**3", "--format", "json"), "grad")
    assert data["results"][0]["gradient"]["x"] == pytest.approx(exact)
    data = json_of(invoke("grad", "--", "-x**3", "--at", "2", "--format", "json"), "grad")  # in-process
    assert data["results"][0]["gradient"]["x"] == pytest.approx(exact)


def test_text_that_could_be_an_option_is_explained_in_one_line():
    result = run_cli("grad", "-p*x", "--at", "1")
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert result.stderr == line + "\n"
    assert "'-p*x' could be the option -p or an expression" in line and 'autodiff grad -- "-p*x"' in line


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["minimize", "x**2", "--stpes", "3"], 2, "No such option '--stpes'"),  # a misspelt option stays one
        (["minimize", "-h*x"], 2, "could be the option -h or an expression"),
        (["grad", "x", "-y"], 2, "No such option"),  # EXPR already given: -y is not read as a second one
    ],
)
def test_what_stays_an_option(args, code, words):
    result = invoke(*args)
    assert result.exit_code == code
    (line,) = error_lines(result.stderr)
    assert words in line
