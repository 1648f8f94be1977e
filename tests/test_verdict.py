"""The second-order verdict: at grad --order 2, at the end of a minimize run, and the exit
code 3 where it refutes a method's answer.

Oracles: SymPy's exact Hessian and derivatives, SciPy's optimizers, literature minima.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize

from search_problems import HIMMELBLAU, HIMMELBLAU_MINIMA, himmelblau_grad, run_json, xy

from conftest import invoke, json_of

# ---------------------------------------------------------------- the verdict, at grad --order 2


def sympy_eigenvalues(text: str, point: dict[str, float]) -> list[float]:
    names = sorted(point)
    symbols = sympy.symbols(names, real=True)
    expr = sympy.sympify(text, locals=dict(zip(names, symbols, strict=True)))  # the test's own text, not user input
    h = sympy.hessian(expr, symbols).subs(dict(zip(symbols, point.values(), strict=True)))
    return sorted(float(v) for v in np.linalg.eigvalsh(np.array(h.evalf(30), dtype=float)))


@pytest.mark.parametrize(
    "text, point, kind",
    [
        ("x**2 - y**2", {"x": 0.0, "y": 0.0}, "saddle"),
        ("x**4", {"x": 0.0}, "degenerate"),
        ("x**4 + y**2", {"x": 0.0, "y": 0.0}, "degenerate"),
        ("1 - (x**2 + y**2)", {"x": 0.0, "y": 0.0}, "maximum"),
        ("x**2 + 3*y**2", {"x": 0.0, "y": 0.0}, "minimum"),
        ("x**2 + 3*y**2", {"x": 1.0, "y": 0.0}, "not stationary"),
        ("x**3 - 3*x*y**2 + x**4*0", {"x": 0.0, "y": 0.0}, "degenerate"),  # the monkey saddle: all zero
        ("x**2*y**2 - x**2 + y**4 - y**2", {"x": 0.0, "y": 0.0}, "maximum"),
        # condition numbers 1e9 and 1e8, exact in float64 (a zero eigenvalue once meant below
        # sqrt(eps) * the largest, and these were "degenerate")
        ("1e6*(x-1)**2 + 1e-3*(y-1)**2", {"x": 1.0, "y": 1.0}, "minimum"),
        ("1e-4*(x-1)**2 - 1e4*(y-1)**2", {"x": 1.0, "y": 1.0}, "saddle"),
    ],
)
def test_grad_order_2_gives_the_second_order_verdict_at_known_stationary_points(text, point, kind):
    at = ",".join(f"{k}={v}" for k, v in point.items())
    data = run_json("grad", text, "--at", at, "--order", "2", "--dtype", "float64")
    (result,) = data["results"]
    assert result["verdict"] == kind
    assert result["eigenvalues"] == pytest.approx(sympy_eigenvalues(text, point), abs=1e-12)


@pytest.mark.parametrize("literature", HIMMELBLAU_MINIMA)
def test_himmelblau_minima_are_minima_and_eigenvalues_match_sympy(literature):
    from scipy.optimize import fsolve

    point = fsolve(himmelblau_grad, literature, xtol=1e-14)  # the exact zero of the gradient nearby
    at = f"x={float(point[0])!r},y={float(point[1])!r}"
    data = run_json("grad", HIMMELBLAU, "--at", at, "--order", "2", "--dtype", "float64")
    (result,) = data["results"]
    assert result["verdict"] == "minimum"
    expected = sympy_eigenvalues(HIMMELBLAU, {"x": point[0], "y": point[1]})
    assert result["eigenvalues"] == pytest.approx(expected, rel=1e-9)


def test_grad_order_1_has_no_verdict_and_the_table_says_it_in_words():
    data = run_json("grad", "x**2", "--at", "1")
    assert "verdict" not in data["results"][0]
    table = invoke("grad", "x**2 - y**2", "--at", "x=0,y=0", "--order", "2", "--format", "table").stdout
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in table.splitlines() if "│" in line}
    assert (rows["verdict"], rows["eigenvalues"]) == ("saddle", "-2.0, 2.0")


# ---------------------------------------------------------------- the verdict of a minimize run


def test_adam_ending_at_a_saddle_is_called_a_saddle():
    data = run_json("minimize", "x^2-y^2", "--from", "x=1,y=0", "--opt", "adam")
    assert xy(data["x"]) == pytest.approx((0.0, 0.0), abs=1e-4)
    assert data["verdict"] == "saddle"
    assert "the point found is a saddle, not a minimum" in data["warnings"]
    table = invoke("minimize", "x^2-y^2", "--from", "x=1,y=0", "--opt", "adam", "--format", "plain")
    assert table.stderr == "Warning: the point found is a saddle, not a minimum\n"


@pytest.mark.parametrize("opt", ["newton", "bfgs", "lbfgs", "adam"])
def test_a_function_without_stationary_points_never_gets_a_stationary_verdict(opt):
    """f = x: f' = 1 everywhere. However far the search goes (|x| up to 1e36), the point is
    not stationary (the gradient floor once grew with |x| and called it degenerate)."""
    # exit 3 for the methods that always test convergence: the answer is refuted (exit 0 for a
    # Keras optimizer run for its --steps without --tol)
    data = run_json("minimize", "x", "--opt", opt, code=0 if opt == "adam" else 3)
    assert data["status"] != "converged"  # L-BFGS-B stops when f stops falling (relative): stalled
    assert data["verdict"] == "not stationary"
    assert data["gradient"] == {"x": 1.0} and data["x"]["x"] < -1
    assert any(w.startswith("the point found is not stationary") for w in data["warnings"])


@pytest.mark.parametrize("dtype, tol", [("float32", None), ("float64", "1e-12")])
def test_newton_converging_on_the_inflection_of_x_cubed_is_not_called_a_minimum(dtype, tol):
    """SymPy: x**3 has one stationary point, 0, where the second derivative is 0 and the
    third 6: an inflection, no minimum. Newton's iterates x/2, x/4, ... look like minima
    (curvature > 0, tiny slope); the higher-order test at the point they lead to finds the
    inflection, and Newton steps past it: f = x**3 is unbounded below."""
    x = sympy.Symbol("x")
    f = x**3
    assert sympy.solve(sympy.diff(f, x), x) == [0] and sympy.diff(f, x, 2).subs(x, 0) == 0
    assert sympy.diff(f, x, 3).subs(x, 0) == 6
    extra = ["--tol", tol] if tol else []
    data = run_json("minimize", "x**3", "--from", "1", "--opt", "newton", "--dtype", dtype, *extra, code=1)
    assert data["status"] == "diverged" and data["x"]["x"] < -1.0
    for at in ("1e-4", "1e-6"):  # grad's verdict alike, at points an optimizer might stop at
        (point,) = run_json("grad", "x**3", "--at", at, "--order", "2", "--dtype", dtype)["results"]
        assert point["verdict"] in ("degenerate", "not stationary")  # float64 resolves the slope at 1e-4


def test_a_true_minimum_keeps_its_verdict_however_the_search_stopped():
    """Rosenbrock's minimum (1, 1) (Hessian eigenvalues 0.4 and 1001.6, SymPy): reached
    loosely by Adam and tightly by Newton, both are minima."""
    for args in (["--opt", "adam", "--steps", "20000"], ["--opt", "newton"]):
        data = run_json("minimize", "(x-1)**2 + 100*(y-x**2)**2", "--from", "x=-1.2,y=1", *args)
        assert xy(data["x"]) == pytest.approx((1.0, 1.0), abs=1e-4)
        assert data["verdict"] == "minimum"


@pytest.mark.parametrize("opt", ["newton", "adam"])
def test_far_out_on_a_slope_is_neither_converged_nor_stationary(opt):
    """df/dx = 1 everywhere (SymPy). At x = -1e8, float32's spacing (8) dwarfs the gradient:
    the projected gradient x - P(x - g) once rounded to 0 there (Newton: 'converged'), and a
    gradient floor scaled by |x| once called x + y**2 stationary."""
    x, y = sympy.symbols("x y")
    assert sympy.diff(x + y**2, x) == 1
    data = run_json("minimize", "x", "--from", "-1e8", "--opt", opt, "--steps", "50", code=0 if opt == "adam" else 3)
    assert data["status"] != "converged" and data["verdict"] == "not stationary"
    (point,) = run_json("grad", "x + y**2", "--at", "x=-1e8,y=0", "--order", "2")["results"]
    assert point["verdict"] == "not stationary"


def test_seed_run_gets_a_minimum_verdict():
    data = run_json("minimize", "--opt", "adam")
    assert data["verdict"] == "minimum"
    assert data["eigenvalues"] == [2.0]  # a*x**2 + b*x + c with a = 1
    assert data["evaluations"] == 1002


@pytest.mark.parametrize(
    "command, text, opt, start, kind",
    [
        ("maximize", "x**2", "bfgs", "x=1", "not stationary"),  # x**2 has no maximum
        ("minimize", "x", "newton", "x=1", "not stationary"),
        ("minimize", "x", "lbfgs", "x=1", "not stationary"),  # f' = 1 everywhere
        ("minimize", "x", "bfgs", "x=1", "not stationary"),
        ("minimize", "x**2 - y**2", "bfgs", "x=1,y=0", "saddle"),  # y' = 0 stays 0: SciPy's BFGS ends there too
    ],
)
def test_a_method_with_its_own_tolerance_exits_3_where_the_verdict_refutes_the_answer(command, text, opt, start, kind):
    """Newton, BFGS and L-BFGS always test convergence (--tol or its default): an answer
    the second-order test refutes ended with exit 0 and a bare number, as if found."""
    # 200 steps: on f = x Newton runs off for as many steps as it is given (1,000 by default)
    result = invoke(command, text, "--opt", opt, "--from", start, "--steps", "200")
    assert result.exit_code == 3, result.stderr
    wanted = "maximum" if command == "maximize" else "minimum"
    assert f"not a {wanted}" in result.stderr or "not stationary" in result.stderr
    data = run_json(command, text, "--opt", opt, "--from", start, "--steps", "200", code=3)
    assert data["verdict"] == kind
    # the last point is still printed, one number per variable: the point the JSON reports
    assert [float(v) for v in result.stdout.split()] == pytest.approx(list(data["x"].values()), rel=1e-6)
    if kind == "saddle":
        x, y = sympy.symbols("x y")
        eig = np.linalg.eigvalsh(np.array(sympy.hessian(x**2 - y**2, (x, y)).tolist(), dtype=float))
        assert eig[0] < 0 < eig[1] and xy(data["x"]) == pytest.approx((0.0, 0.0), abs=1e-6)
        ref = scipy_minimize(lambda v: v[0] ** 2 - v[1] ** 2, [1.0, 0.0], method="BFGS")
        assert ref.x == pytest.approx([0.0, 0.0], abs=1e-6)


def test_a_float32_stall_at_a_true_minimum_still_exits_0():
    # (x-3)**2 + x*y + y**2 has its minimum at (4, -2); BFGS in float32 stalls on rounding there
    result = invoke("minimize", "(x-3)**2 + x*y + y**2", "--opt", "bfgs", "--from", "x=0.5,y=0.5", "--format", "json")
    data = json_of(result, "minimize", 0)
    assert xy(data["x"]) == pytest.approx((4.0, -2.0), abs=1e-3)
    assert (data["status"], data["verdict"]) == ("stalled", "minimum")


ACKLEY = "-20*exp(-0.2*sqrt(0.5*(x**2+y**2))) - exp(0.5*(cos(2*pi*x)+cos(2*pi*y))) + E + 20"


def test_a_minimum_at_a_kink_is_not_refuted():
    """Ackley's function has its global minimum 0 at the origin (literature), where
    sqrt(x**2 + y**2) has a kink: the tape's one-sided gradient there is 2*sqrt(2), so the
    point is not stationary, yet f rises in every direction. L-BFGS-B ends there; that is
    the answer, and it must not be refuted (exit 3) or called a sign that f is unbounded."""
    result = invoke("minimize", "--opt", "lbfgs", "--starts", "100", "--bounds", "x=-5:5,y=-5:5",
                    "--dtype", "float64", "--format", "json", "--", ACKLEY)  # fmt: skip
    data = json_of(result, "minimize", 0)
    assert data["f"] == pytest.approx(0.0, abs=1e-8)
    assert xy(data["x"]) == pytest.approx((0.0, 0.0), abs=1e-8)
    assert data["verdict"] == "not stationary"
    assert any("f has a kink" in w for w in data["warnings"])
    assert not any("unbounded" in w for w in data["warnings"])


def test_a_stall_short_of_a_kink_minimum_is_still_refuted():
    """|x| + |y - 1| has its minimum 0 at (0, 1). From (0.3, 0.2) L-BFGS-B stalls on the
    kink of |x| with y still short of 1: f falls along y there, so the answer is refuted."""
    result = invoke("minimize", "abs(x) + abs(y-1)", "--opt", "lbfgs", "--from", "x=0.3,y=0.2", "--format", "json")
    data = json_of(result, "minimize", 3)
    assert data["f"] > 1e-3  # above the true minimum 0: a wrong answer, flagged
    assert not any("kink" in w for w in data["warnings"])
