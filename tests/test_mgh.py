"""Moré-Garbow-Hillstrom problems: L-BFGS-B and the default method answer where BFGS does.

Oracles: SciPy's BFGS on the same problem (with SymPy's exact gradient), and the minima
published by Moré, Garbow and Hillstrom (1981), "Testing unconstrained optimization
software", ACM TOMS 7(1).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize

from conftest import invoke, json_of

JS = " + ".join(f"(2+{2 * i}-exp({i}*x)-exp({i}*y))**2" for i in range(1, 11))
BEALE = "(1.5-x+x*y)**2 + (2.25-x+x*y**2)**2 + (2.625-x+x*y**3)**2"
WOOD = "100*(w**2-x)**2 + (w-1)**2 + 90*(y**2-z)**2 + (1-y)**2 + 10.1*((x-1)**2 + (z-1)**2) + 19.8*(x-1)*(z-1)"
POWELL = "(w+10*x)**2 + 5*(y-z)**2 + (x-2*y)**4 + 10*(w-z)**4"

# name, expression, standard start, the published minimum f*
MGH = [
    ("rosenbrock", "100*(y-x**2)**2 + (1-x)**2", {"x": -1.2, "y": 1.0}, 0.0),
    ("freudenstein-roth", "(-13+x+((5-y)*y-2)*y)**2 + (-29+x+((y+1)*y-14)*y)**2", {"x": 0.5, "y": -2.0}, 48.9842),
    ("beale", BEALE, {"x": 1.0, "y": 1.0}, 0.0),
    ("jennrich-sampson", JS, {"x": 0.3, "y": 0.4}, 124.362),
    ("wood", WOOD, {"w": -3.0, "x": -1.0, "y": -3.0, "z": -1.0}, 0.0),
    ("powell-singular", POWELL, {"w": 3.0, "x": -1.0, "y": 0.0, "z": 1.0}, 0.0),
]


def scipy_bfgs(text: str, start: dict[str, float]):
    """SciPy's BFGS with SymPy's exact gradient: the oracle's point, f and evaluations."""
    names = list(start)
    symbols = sympy.symbols(names, real=True)
    expr = sympy.sympify(text, locals=dict(zip(names, symbols, strict=True)))  # the test's own text
    f = sympy.lambdify(symbols, expr, "numpy")
    g = sympy.lambdify(symbols, [sympy.diff(expr, s) for s in symbols], "numpy")
    with np.errstate(all="ignore"):
        return scipy_minimize(
            lambda v: f(*v), list(start.values()), jac=lambda v: np.array(g(*v), float), method="BFGS"
        )


def run(text: str, start: dict[str, float], *opt: str) -> dict:
    point = ",".join(f"{k}={v}" for k, v in start.items())
    result = invoke("minimize", text, "--from", point, "--dtype", "float64", "--format", "json", *opt)
    return json_of(result, "minimize", result.exit_code)


@pytest.mark.parametrize("name, text, start, best", MGH, ids=[m[0] for m in MGH])
def test_lbfgs_converges_where_bfgs_does(name, text, start, best):
    oracle = scipy_bfgs(text, start)
    bfgs = run(text, start, "--opt", "bfgs")
    assert bfgs["status"] == "converged"
    lbfgs = run(text, start, "--opt", "lbfgs")
    assert lbfgs["status"] == "converged", (lbfgs["f"], lbfgs["verdict"])
    assert lbfgs["f"] == pytest.approx(best, rel=1e-5, abs=1e-6)  # Powell singular: f ~ gtol**(4/3)
    assert lbfgs["f"] == pytest.approx(oracle.fun, rel=1e-6, abs=1e-6)
    tolerance = 1e-2 if name == "powell-singular" else 1e-4  # f is flat as t**4 there: x is located to f**(1/4)
    assert list(lbfgs["x"].values()) == pytest.approx(list(oracle.x), rel=tolerance, abs=tolerance)


@pytest.mark.parametrize("name, text, start, best", MGH, ids=[m[0] for m in MGH])
def test_the_default_method_converges_within_1_5x_the_evaluations_of_scipy_bfgs(name, text, start, best):
    """No --opt: Newton with the exact Hessian (each Hessian counts as one evaluation)."""
    oracle = scipy_bfgs(text, start)
    data = run(text, start)
    assert (data["optimizer"], data["status"]) == ("Newton", "converged")
    assert data["f"] == pytest.approx(best, rel=1e-5, abs=1e-6)
    assert data["f"] == pytest.approx(oracle.fun, rel=1e-6, abs=1e-6)
    assert data["evaluations"] <= 1.5 * oracle.nfev
