"""A wrong point is never reported as the answer, and every status tells the truth (issue 20).

Oracles: SymPy's exact Hessians and stationary points, the Newton step computed here with
NumPy, SciPy's own optimizers on the same problems.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from conftest import invoke, json_of


def run_json(command: str, *args: str, code: int = 0) -> dict:
    return json_of(invoke(command, "--format", "json", *args), command, code)


def exact(text: str, names: str = "x y") -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    symbols = sympy.symbols(names, real=True)
    return sympy.parse_expr(text, local_dict={s.name: s for s in symbols}), symbols


def exact_eigenvalues(text: str, point: dict[str, float]) -> list[float]:
    e, symbols = exact(text, " ".join(point))
    h = sympy.hessian(e, symbols).subs({s: sympy.nsimplify(point[s.name]) for s in symbols})
    return sorted(float(v) for v in h.eigenvals(multiple=True))


# ---------------------------------------------------------------- item 2: the eigenvalue zero


@pytest.mark.parametrize(
    "text, dtype, kind",
    [
        ("1e6*x**2 + y**2", "float32", "minimum"),  # condition 1e6: eps**(3/4) called it degenerate
        ("y**2 + 3e5*(x-1)**2", "float32", "minimum"),
        ("1e6*x**2 - y**2", "float32", "saddle"),
        ("1 - (1e6*x**2 + y**2)", "float32", "maximum"),
        ("1e12*x**2 + y**2", "float64", "minimum"),
        ("1e13*(x-1)**2 + 2*y**2 - x*y*0", "float64", "minimum"),
    ],
)
def test_a_definite_hessian_known_exactly_is_not_called_degenerate(text, dtype, kind):
    """The tape Hessian of a quadratic is exact; eigenvalues that SymPy says are nonzero
    and far above rounding (a few eps times the norm) decide the point."""
    e, (x, y) = exact(text)
    (point,) = sympy.solve([sympy.diff(e, x), sympy.diff(e, y)], [x, y], dict=True)
    at = {"x": float(point[x]), "y": float(point[y])}
    lam = exact_eigenvalues(text, at)
    assert all(abs(v) > 8 * np.finfo(dtype).eps * max(map(abs, lam)) for v in lam)  # the oracle: decided
    data = run_json("grad", text, "--at", f"x={at['x']},y={at['y']}", "--order", "2", "--dtype", dtype)
    (result,) = data["results"]
    assert result["verdict"] == kind
    assert result["eigenvalues"] == pytest.approx(lam, rel=1e-6)
    if kind == "minimum":  # and minimize does not warn on the exact minimum
        start = f"x={at['x'] + 0.5},y={at['y'] - 0.5}"
        data = run_json("minimize", text, "--opt", "newton", "--from", start, "--dtype", dtype)
        assert data["verdict"] == "minimum" and data["warnings"] == []


def test_an_exactly_singular_hessian_is_still_degenerate():
    # SymPy: the Hessian of (x - y)**2 + z**4 at 0 has eigenvalues 0, 0, 4
    text = "(x - y)**2 + z**4"
    assert exact_eigenvalues(text, {"x": 0.0, "y": 0.0, "z": 0.0}) == [0.0, 0.0, 4.0]
    for dtype in ("float32", "float64"):
        data = run_json("grad", text, "--at", "x=0,y=0,z=0", "--order", "2", "--dtype", dtype)
        assert data["results"][0]["verdict"] == "degenerate"
