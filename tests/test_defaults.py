"""Without --opt, minimize and maximize answer: Newton up to 20 variables, L-BFGS-B beyond.

Oracles: the literature's minima (Rosenbrock's (1, 1), Himmelblau's four), SymPy's
stationary points, and the seed's own function's vertex -b / 2a.
"""

from __future__ import annotations

import warnings

import pytest
import sympy

from conftest import invoke, json_of, run_cli

HIMMELBLAU_MINIMA = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
x = sympy.Symbol("x", real=True)


def run_json(command: str, *args: str, code: int = 0) -> dict:
    return json_of(invoke(command, "--format", "json", *args), command, code)


def test_rosenbrock_with_the_defaults():
    data = run_json("minimize", "(1-x)^2+100(y-x^2)^2")
    assert (data["optimizer"], data["status"], data["verdict"]) == ("Newton", "converged", "minimum")
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((1.0, 1.0), abs=1e-3)


def test_himmelblau_with_the_defaults_from_one_start_and_from_many():
    data = run_json("minimize", "(x**2+y-11)**2 + (x+y**2-7)**2")
    assert (data["x"]["x"], data["x"]["y"]) in [pytest.approx(m, abs=1e-4) for m in HIMMELBLAU_MINIMA]
    many = run_json("minimize", "(x**2+y-11)**2 + (x+y**2-7)**2", "--starts", "200", "--bounds", "x=-5:5,y=-5:5")
    assert many["optimizer"] == "Newton"
    found = sorted((b["x"]["x"], b["x"]["y"]) for b in many["basins"])
    assert found == [pytest.approx(m, abs=1e-4) for m in sorted(HIMMELBLAU_MINIMA)]


def test_maximize_x_exp_minus_x_with_the_defaults():
    data = run_json("maximize", "x*exp(-x)")
    (top,) = sympy.solve(sympy.diff(x * sympy.exp(-x), x), x)
    assert data["x"]["x"] == pytest.approx(float(top), abs=1e-5)
    assert (data["status"], data["verdict"]) == ("converged", "maximum")


def test_make_run_minimizes_the_seeds_function():
    """`make run` is `autodiff minimize`: a*x**2 + b*x + c with a=1, b=-2, c=1."""
    data = run_json("minimize")
    assert data["x"]["x"] == pytest.approx(2 / (2 * 1), abs=1e-6)  # -b / 2a
    assert data["f"] == pytest.approx(0.0, abs=1e-6)
    assert (data["optimizer"], data["status"]) == ("Newton", "converged")


def test_more_than_20_variables_get_lbfgs():
    names = [f"v{i}" for i in range(21)]
    text = " + ".join(f"({n}-{i})**2" for i, n in enumerate(names))
    data = run_json("minimize", text, "--dtype", "float64")
    assert (data["optimizer"], data["status"]) == ("L-BFGS-B", "converged")
    assert [data["x"][n] for n in names] == pytest.approx(list(range(21)), abs=1e-5)
    twenty = " + ".join(f"({n}-{i})**2" for i, n in enumerate(names[:20]))
    assert run_json("minimize", twenty)["optimizer"] == "Newton"


@pytest.mark.parametrize(
    "args, optimizer",
    [
        (["--lr", "0.1"], "SGD"),  # a learning rate is for the tutorial's SGD
        (["--style", "minimize"], "SGD"),
        (["--opt", "sgd"], "SGD"),
        (["--opt", "bfgs"], "BFGS"),
    ],
)
def test_options_that_choose_the_method(args, optimizer):
    assert run_json("minimize", "(x-1)**2", *args)["optimizer"] == optimizer


def test_a_diverging_sgd_run_prints_no_library_warning():
    """The tutorial's SGD diverges on Rosenbrock: one Error line and our Warning, nothing else."""
    args = ("minimize", "(1-x)^2+100(y-x^2)^2", "--opt", "sgd", "--dtype", "float64", "--format", "plain")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(*args)
    assert result.exit_code == 1
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    process = run_cli(*args)
    assert process.returncode == 1
    lines = process.stderr.splitlines()
    assert lines and all(line.startswith(("Error: ", "Warning: ")) for line in lines), process.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["minimize", "-exp(x^2)"],  # Newton steps off the maximum at 0 and runs to f = -8e35 in float32
        ["maximize", "exp(x)*y"],
        ["minimize", "x^3"],
        ["maximize", "x^2", "--opt", "lbfgs", "--starts", "5"],
    ],
)
def test_runs_off_to_overflow_raise_no_library_warning(args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(*args, "--format", "plain")
    assert result.exit_code in (1, 3)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
