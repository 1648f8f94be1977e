"""`autodiff grad` through click, checked against oracles: SymPy's exact derivatives,
central differences of the tool's own forward values, and the seed's printed numbers."""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import error_lines, invoke, json_of


def grad_json(*args: str, input: str | None = None) -> dict:
    return json_of(invoke("grad", "--format", "json", *args, input=input), "grad")


# ---------------------------------------------------------------- the seed's cells 1-3


def test_seed_cell_1_constant_gets_no_gradient():
    data = grad_json("--wrt", "x,a")
    assert data["expression"] == "a*x**2 + b*x + c"
    assert data["params"] == {"a": 1.0, "b": -2.0, "c": 1.0}
    assert data["results"][0]["gradient"] == {"x": -2.0, "a": None}  # seed: -2.0, None
    assert any("--watch" in w for w in data["warnings"])


def test_seed_cell_1_table_says_not_watched():
    result = invoke("grad", "--wrt", "x,a", "--format", "table")
    assert result.exit_code == 0
    assert "None (not watched)" in result.stdout
    assert "-2.0" in result.stdout


def test_seed_cell_2_watched_constants_get_gradients():
    data = grad_json("--wrt", "x,a,b,c", "--watch", "a,b,c")
    g = data["results"][0]["gradient"]
    assert g["a"] == 0.0 and g["c"] == 1.0  # seed: 0.0 and 1.0
    assert g["b"] == 0.0 and g["x"] == -2.0
    assert data["symbolic"]["gradient"] == {"x": "2*a*x + b", "a": "x**2", "b": "x", "c": "1"}


def test_seed_cell_3_second_derivative_with_nested_tapes():
    data = grad_json("--order", "2")
    result = data["results"][0]
    assert result["hessian"] == {"x": {"x": 2.0}}  # seed: 2.0
    assert result["derivatives"] == [-2.0, 2.0]
    assert data["symbolic"]["derivatives"] == ["2*a*x + b", "2*a"]


def test_expression_starting_with_minus_is_read_as_the_expression_with_or_without_double_dash():
    # d/dx (-x**2) = -2x: -2 at 1
    assert grad_json("-x**2", "--at", "1")["results"][0]["gradient"]["x"] == -2.0
    assert grad_json("--at", "1", "--", "-x**2")["results"][0]["gradient"]["x"] == -2.0


def test_design_invocation_plain_prints_bare_derivative():
    result = invoke("grad", "x**2-2*x+1", "--at", "0", "--format", "plain")
    assert result.exit_code == 0
    assert result.stdout.strip() in ("-2", "-2.0")


def test_design_invocation_table_shows_symbolic_beside_tape():
    result = invoke("grad", "x**2-2*x+1", "--at", "0", "--format", "table")
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if "df/dx" in line)
    assert "2*x - 2" in row and "-2.0" in row


# ---------------------------------------------------------------- against sympy.diff

X, Y = sympy.symbols("x y", real=True)
UNARY = [sympy.sin, sympy.cos, sympy.exp, sympy.atan, sympy.tanh]


def trees(variables: list[sympy.Symbol]) -> st.SearchStrategy[sympy.Expr]:
    leaves = st.one_of(st.sampled_from(variables), st.integers(-3, 3).map(sympy.Integer))

    def extend(children: st.SearchStrategy[sympy.Expr]) -> st.SearchStrategy[sympy.Expr]:
        return st.one_of(
            st.tuples(children, children).map(lambda ab: ab[0] + ab[1]),
            st.tuples(children, children).map(lambda ab: ab[0] * ab[1]),
            st.tuples(children, st.integers(2, 3)).map(lambda be: be[0] ** be[1]),
            st.tuples(st.sampled_from(UNARY), children).map(lambda fa: fa[0](fa[1])),
        )

    return st.recursive(leaves, extend, max_leaves=6).filter(lambda e: set(variables) <= e.free_symbols)


def close(a: float | None, b: float, scale: float = 1.0) -> bool:
    """Float64 (every caller's dtype) against SymPy's exact value: 1e-10, a million ulps of room
    for the cancellation in random trees, and still far below what a wrong derivative gives."""
    return a is not None and math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-10 * max(1.0, scale))


coords = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 3))
oracle_settings = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


@oracle_settings
@given(expr=trees([X]), x=coords)
def test_one_variable_orders_1_to_3_match_sympy(expr, x):
    data = grad_json("--at", str(x), "--order", "3", "--dtype", "float64", "--", sympy.sstr(expr))
    result = data["results"][0]
    exact = [float(sympy.diff(expr, X, k).subs(X, x).evalf(30)) for k in range(4)]
    assume_finite(exact)
    assert close(result["value"], exact[0], abs(exact[0]))
    for k in (1, 2, 3):
        assert close(result["derivatives"][k - 1], exact[k], abs(exact[k])), (k, result, exact)


@oracle_settings
@given(expr=trees([X, Y]), x=coords, y=coords)
def test_two_variables_gradient_and_hessian_match_sympy(expr, x, y):
    data = grad_json("--at", f"x={x},y={y}", "--order", "2", "--dtype", "float64", "--", sympy.sstr(expr))
    result = data["results"][0]
    at = {X: x, Y: y}
    for a, sa in (("x", X), ("y", Y)):
        want = float(sympy.diff(expr, sa).subs(at).evalf(30))
        assume_finite([want])
        assert close(result["gradient"][a], want, abs(want))
        for b, sb in (("x", X), ("y", Y)):
            want2 = float(sympy.diff(expr, sa, sb).subs(at).evalf(30))
            assert close(result["hessian"][a][b], want2, abs(want2))


@oracle_settings
@given(expr=trees([X, Y]), x=coords, y=coords)
def test_two_variables_third_order_partial_matches_sympy(expr, x, y):
    data = grad_json("--at", f"x={x},y={y}", "--order", "3", "--wrt", "y", "--dtype", "float64", "--", sympy.sstr(expr))
    want = float(sympy.diff(expr, Y, 3).subs({X: x, Y: y}).evalf(30))
    assume_finite([want])
    assert close(data["results"][0]["derivatives"][2], want, abs(want))


def assume_finite(values: list[float]) -> None:
    from hypothesis import assume

    assume(all(math.isfinite(v) and abs(v) < 1e8 for v in values))


# ---------------------------------------------------------------- against central differences


MPMATH_FORMS = {  # each expression below, written for mpmath by the test
    "a*sin(k*x) + c": lambda x: 2 * mpmath.sin(3 * x) + 1,
    "exp(-x**2/2)*cos(3*x)": lambda x: mpmath.exp(-(x**2) / 2) * mpmath.cos(3 * x),
    "log(1 + x**2) + sqrt(2 + x)": lambda x: mpmath.log(1 + x**2) + mpmath.sqrt(2 + x),
    "x^3 - 2x(x+1) + tanh(x)": lambda x: x**3 - 2 * x * (x + 1) + mpmath.tanh(x),
}


@pytest.mark.parametrize(
    "expr, point",
    [
        ("a*sin(k*x) + c", "x=0.3"),
        ("exp(-x**2/2)*cos(3*x)", "x=0.7"),
        ("log(1 + x**2) + sqrt(2 + x)", "x=1.1"),
        ("x^3 - 2x(x+1) + tanh(x)", "x=-0.4"),
    ],
)
def test_gradient_matches_mpmath_differentiation(expr, point):
    # the oracle: mpmath's own numerical derivative (50 digits) of the test's closed form of f
    params = ["-p", "a=2", "-p", "k=3", "-p", "c=1"] if "a*" in expr else []
    x = float(point.split("=")[1])
    data = grad_json(expr, *params, "--dtype", "float64", "--at", point)
    with mpmath.workdps(50):
        want = float(mpmath.diff(MPMATH_FORMS[expr], mpmath.mpf(x)))
    assert data["results"][0]["gradient"]["x"] == pytest.approx(want, rel=1e-13, abs=1e-15)


def test_two_variable_gradient_matches_mpmath_differentiation():
    data = grad_json("x**2*y + sin(x*y)", "--at", "x=0.5,y=-1", "--dtype", "float64")
    f = lambda x, y: x**2 * y + mpmath.sin(x * y)
    with mpmath.workdps(50):
        dx = float(mpmath.diff(f, (mpmath.mpf("0.5"), mpmath.mpf(-1)), (1, 0)))
        dy = float(mpmath.diff(f, (mpmath.mpf("0.5"), mpmath.mpf(-1)), (0, 1)))
    assert data["results"][0]["gradient"] == pytest.approx({"x": dx, "y": dy}, rel=1e-13)


# ---------------------------------------------------------------- batches, points, formats


def test_batch_equals_points_one_by_one():
    batch = grad_json("x**2*y", "--at", "x=1,y=2", "--at", "x=-3", "--at", "y=5")
    singles = [grad_json("x**2*y", "--at", p)["results"][0] for p in ("x=1,y=2", "x=-3", "y=5")]
    assert batch["results"] == singles
    assert batch["results"][1]["point"] == {"x": -3.0, "y": 0.0}  # a variable left out is 0


def test_at_file_csv_with_header(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("y,x\n2,1\n0,-3\n")
    result = invoke("grad", "x**2*y", "--at-file", str(path), "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()] == [["4", "1"], ["0", "9"]]


def test_at_file_from_stdin_with_name_value_lines():
    result = invoke("grad", "x*y", "--at-file", "-", "--format", "plain", input="x=1,y=2\nx=3\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["2 1", "0 3"]


@pytest.mark.parametrize(
    ("given", "text"),
    [
        (["--at", "x=-1,y=-0.0"], None),
        (["--at", "x=-1,y=-0"], None),
        (["--at-file", "-"], "x,y\n-1,-0.0\n"),
        (["--at-file", "-"], "x=-1,y=-0.0\n"),
        (["--at-file", "-"], "y,x\n-0.0,-1\n"),
    ],
)
def test_a_point_written_minus_0_is_evaluated_at_plus_0_as_shown(given: list[str], text: str | None) -> None:
    """The point shown is y = 0.0 and atan2 is in (-pi, pi]: atan2(0, -1) = pi, as SymPy says.

    atan2 tells -0.0 from 0.0: the tape evaluated atan2(-0.0, -1) = -pi beside a point
    printed as y=0.0."""
    result = invoke("grad", "atan2(y, x)", "--dtype", "float64", "--format", "json", *given, input=text)
    data = json_of(result, "grad")
    (item,) = data["results"]
    point = item["point"]
    assert point == {"x": -1.0, "y": 0.0} and math.copysign(1.0, point["y"]) == 1.0
    x, y = sympy.symbols("x y", real=True)
    f = sympy.atan2(y, x)
    at = {x: sympy.Integer(-1), y: sympy.Integer(0)}
    with mpmath.workdps(30):
        assert item["value"] == float(f.evalf(30, subs=at)) == math.pi
        assert item["gradient"] == {n: float(sympy.diff(f, s).evalf(30, subs=at)) for n, s in (("x", x), ("y", y))}


def test_expression_from_stdin():
    result = invoke("grad", "-", "--at", "2", "--format", "plain", input="x^3\n")
    assert result.exit_code == 0
    assert float(result.stdout) == 12.0


def test_float32_and_float64_results_read_back_exactly():
    f32 = grad_json("x**2", "--at", "0.05")["results"][0]["gradient"]["x"]
    f64 = grad_json("x**2", "--at", "0.05", "--dtype", "float64")["results"][0]["gradient"]["x"]
    assert f32 == 0.1  # the float32 result, written as the shortest text that reads back to it
    assert f64 == 0.1


def test_plain_prints_null_for_unwatched_parameter():
    result = invoke("grad", "--wrt", "x,a", "--format", "plain")
    assert result.stdout.split() == ["-2", "null"]


def test_implicit_multiplication_and_caret_power_give_same_derivative():
    a = grad_json("2x^2 + 3(x+1)(x-1)", "--at", "1.5")["results"][0]["gradient"]["x"]
    b = grad_json("2*x**2 + 3*(x+1)*(x-1)", "--at", "1.5")["results"][0]["gradient"]["x"]
    assert a == b == 15.0


def test_variables_listed_alphabetically_and_params_are_not_variables():
    data = grad_json("z*y + a*x", "-p", "a=2", "--at", "x=1,y=2,z=3")
    assert data["variables"] == ["x", "y", "z"]
    assert data["results"][0]["gradient"] == {"x": 2.0, "y": 3.0, "z": 2.0}


def test_order_above_two_with_several_variables_is_a_usage_error():
    result = invoke("grad", "x*y", "--order", "3")
    assert result.exit_code == 2
    assert error_lines(result.stderr) and "--wrt" in result.stderr


def test_domain_error_is_named_and_json_still_printed():
    result = invoke("grad", "log(x - 3)", "--at", "1", "--format", "json")
    data = json_of(result, "grad", 1)
    assert data["results"][0]["value"] is None
    assert "log of a negative number" in data["warnings"][0]
    (line,) = error_lines(result.stderr)
    assert "log" in line and "x=1" in line


def test_plain_output_writes_nan_without_a_sign():
    """The derivative of sqrt(x) at -1 is not a real number. x86's invalid operations give a
    NaN with its sign bit set, and plain output printed "-nan", which Python's float() and
    awk read, but which no NaN means; scripts comparing with "nan" missed it."""
    result = invoke("grad", "sqrt(x)", "--at", "-1", "--format", "plain")
    assert result.exit_code == 1
    assert result.stdout == "nan\n"
    assert math.isnan(float(result.stdout))


def test_a_domain_function_of_a_non_finite_argument_is_a_numeric_error():
    """asin's argument exp(1000) overflows float64: no domain can be tested, and the run
    says f is not finite (exit 1) instead of failing inside the domain test."""
    result = invoke("grad", "asin(exp(x))", "--at", "1000", "--format", "plain")
    assert result.exit_code == 1
    assert 1000 > math.log(float.fromhex("0x1.fffffffffffffp+1023"))  # exp(1000) is beyond float64
    (line,) = error_lines(result.stderr)
    assert "not finite" in line and "internal error" not in line
