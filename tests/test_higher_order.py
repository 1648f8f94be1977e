"""Higher-order verdicts where the Hessian is singular, against SymPy's derivatives.

The oracle: SymPy's exact Hessian at the point, its null space, and along each null
direction u the first derivative d^k/dt^k f(x + t u) at t = 0 (k >= 2) that is not zero;
for Peano's surface, f with y re-minimized (SymPy solves df/dy = 0 for y) expanded in x.
"""

from __future__ import annotations

import math
import time

import pytest
import sympy

from autodiffcli.solve import higher_order

from conftest import invoke, json_of

X, Y, T = sympy.symbols("x y t", real=True)


def first_nonzero(text: str, point: dict[str, float]) -> tuple[int, float]:
    """SymPy: along the first null direction of the Hessian at point, the first nonzero
    derivative of order >= 2, as (order, value)."""
    symbols = [s for s in (X, Y) if s.name in point]
    expr = sympy.sympify(text.replace("^", "**"), locals={s.name: s for s in symbols})  # the test's own text
    at = {s: point[s.name] for s in symbols}
    hessian = sympy.hessian(expr, symbols).subs(at)
    (u, *_) = hessian.nullspace()
    u = u / u.norm()
    line = expr.subs({s: at[s] + T * c for s, c in zip(symbols, u, strict=True)}, simultaneous=True)
    for k in range(2, 9):
        value = sympy.diff(line, T, k).subs(T, 0)
        if value != 0:
            return k, float(value)
    raise AssertionError("no nonzero derivative up to order 8")


def verdict_at_zero(command: str, text: str, names: str) -> dict:
    """The verdict at 0: a start there, and one SGD step (the gradient is 0, so it stays)."""
    start = ",".join(f"{n}=0" for n in names)
    result = invoke(command, text, "--opt", "sgd", "--steps", "1", "--from", start, "--format", "json")
    data = json_of(result, command, result.exit_code)
    assert all(v == 0 for v in data["x"].values())
    return data


@pytest.mark.parametrize(
    "command, text, names, kind",
    [
        ("minimize", "x^4", "x", "minimum"),
        ("minimize", "x^3", "x", "saddle"),  # an inflection
        ("maximize", "-x^6", "x", "maximum"),
        ("minimize", "x^4-3*x^3+2", "x", "saddle"),
        ("minimize", "x^2 + y^3", "xy", "saddle"),
        ("minimize", "x^3 - 3*x*y^2", "xy", "saddle"),  # the monkey saddle
        ("minimize", "x^2 - y^4", "xy", "saddle"),
        ("minimize", "x^2 + y^4", "xy", "minimum"),
    ],
)
def test_the_first_nonzero_derivative_along_the_null_direction_decides(command, text, names, kind):
    data = verdict_at_zero(command, text, names)
    order, value = first_nonzero(text, {n: 0.0 for n in names})
    assert data["verdict"] == kind
    assert data["verdict_order"] == order
    if not (text == "x^3 - 3*x*y^2"):  # every direction of the monkey saddle is null: any may decide
        assert data["verdict_derivative"] == pytest.approx(value, rel=1e-9)
    assert order % 2 == 1 or (value > 0) == (kind == "minimum")


def test_peano_surface_is_not_called_a_minimum():
    text = "(y - x^2)*(y - 2*x^2)"
    expr = (Y - X**2) * (Y - 2 * X**2)
    # SymPy: along every line through 0, f rises (its first nonzero derivative is even and positive)
    for u in [(1, 0), (0, 1), (1, 1), (1, -1), (3, 1)]:
        line = expr.subs({X: T * u[0], Y: T * u[1]}, simultaneous=True)
        k = next(k for k in range(1, 9) if sympy.diff(line, T, k).subs(T, 0) != 0)
        assert k % 2 == 0 and sympy.diff(line, T, k).subs(T, 0) > 0
    # ... but with y re-minimized along x, f falls as -x**4/4: 0 is no minimum
    (y_star,) = sympy.solve(sympy.diff(expr, Y), Y)
    reduced = sympy.expand(expr.subs(Y, y_star))
    assert reduced == -(X**4) / 4
    data = verdict_at_zero("minimize", text, "xy")
    assert data["verdict"] == "saddle"
    assert data["verdict_order"] == 4
    assert data["verdict_derivative"] == pytest.approx(float(sympy.diff(reduced, X, 4)), rel=1e-6)


def test_newton_steps_off_an_inflection_to_the_minimum():
    f = X**4 - 3 * X**3 + 2
    minima = [r for r in sympy.solve(sympy.diff(f, X), X) if sympy.diff(f, X, 2).subs(X, r) > 0]
    assert minima == [sympy.Rational(9, 4)]
    data = json_of(invoke("minimize", "x^4-3x^3+2", "--opt", "newton", "--from", "0", "--format", "json"), "minimize")
    assert data["x"]["x"] == pytest.approx(2.25, abs=1e-5)
    assert (data["status"], data["verdict"], data["verdict_order"]) == ("converged", "minimum", 2)


def test_a_degenerate_minimum_found_approximately_is_still_decided():
    """Newton on x**4 + y**2 from far stops where f' = 4x**3 <= 1e-5, x about 0.0136 (float32)."""
    data = json_of(invoke("minimize", "x^4 + y^2", "--from", "x=3,y=1", "--format", "json"), "minimize")
    assert abs(data["x"]["x"]) < 0.02
    assert (data["verdict"], data["verdict_order"]) == ("minimum", 4)
    assert data["verdict_derivative"] == pytest.approx(24.0, rel=1e-6)  # SymPy: d4/dx4 x**4


def test_the_table_says_it_in_words():
    result = invoke("minimize", "x^4-3*x^3+2", "--opt", "sgd", "--steps", "1", "--format", "table")
    assert "an inflection" in result.stdout and "3rd derivative" in result.stdout
    assert "Warning: the point found is an inflection" in result.stderr


def test_the_higher_order_test_is_cheap_beside_the_run(monkeypatch):
    """Reported, not a timing gate: the share of a run that reaches a degenerate point."""
    args = ("minimize", "x^4 + y^2", "--from", "x=3,y=1", "--format", "json")
    invoke(*args)  # warm
    began = time.perf_counter()
    invoke(*args)
    with_test = time.perf_counter() - began
    monkeypatch.setattr(higher_order, "decide", lambda *a, **k: None)
    began = time.perf_counter()
    invoke(*args)
    without = time.perf_counter() - began
    print(f"higher-order test: {with_test:.3f} s with, {without:.3f} s without")
    assert math.isfinite(with_test / without)


def _box_minimum(text: str, bounds: dict[str, tuple[float, float]]) -> tuple[dict[str, float], float]:
    """The minimum of a separable f over a box, by SymPy: each term's least value over its
    interval, among its stationary points inside and the two ends."""
    names = sorted(bounds)
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    expr = sympy.sympify(text.replace("^", "**"), locals=symbols)
    point, best = {}, 0
    for term in sympy.Add.make_args(expr):
        (name,) = [n for n in names if symbols[n] in term.free_symbols]
        lo, hi = bounds[name]
        s = symbols[name]
        candidates = [lo, hi, *(r for r in sympy.solve(sympy.diff(term, s), s) if r.is_real and lo <= r <= hi)]
        at = min(candidates, key=lambda v: term.subs(s, v))
        point[name], best = float(at), best + term.subs(s, at)
    return point, float(best)


@pytest.mark.parametrize(
    "text, bounds, start",
    [
        ("-x^3", {"x": (0.0, 1.0)}, "x=0"),
        ("-x^4", {"x": (0.0, 1.0)}, "x=0"),
        ("-x^3+y^2", {"x": (0.0, 1.0), "y": (-1.0, 1.0)}, "x=0,y=0.5"),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_newton_does_not_stop_where_f_falls_into_the_box(text, bounds, start, dtype):
    """At x = 0 on the bound of [0, 1], -x**3 has f' = f'' = 0 and falls into the box: it was
    reported converged, degenerate, exit 0, though the minimum over the box is at x = 1."""
    box = ",".join(f"{n}={lo:g}:{hi:g}" for n, (lo, hi) in bounds.items())
    args = ["--", text, "--bounds", box, "--from", start, "--dtype", dtype, "--format", "json"]
    data = json_of(invoke("minimize", *args), "minimize")
    point, least = _box_minimum(text, bounds)
    assert data["x"] == pytest.approx(point, abs=1e-6)
    assert data["f"] == pytest.approx(least, abs=1e-6)


def test_a_point_on_a_bound_where_f_falls_into_the_box_is_refuted_by_lbfgs():
    result = invoke(
        "minimize", "--", "-x^3", "--bounds", "x=0:1", "--from", "x=0", "--opt", "lbfgs", "--format", "json"
    )
    data = json_of(result, "minimize", exit_code=3)
    assert data["verdict"] != "degenerate" and data["status"] != "converged"
    assert (data["verdict_order"], data["verdict_derivative"]) == (3, pytest.approx(-6.0))  # SymPy: -x**3 -> -6


def test_a_minimum_on_a_bound_where_f_rises_into_the_box_is_not_refuted():
    """x**3 on [0, 1] at 0: f rises into the box, the least value over it (SymPy's check above)."""
    result = invoke("minimize", "x^3", "--bounds", "x=0:1", "--from", "x=0", "--format", "json")
    data = json_of(result, "minimize", exit_code=0)
    assert data["x"]["x"] == 0.0
    assert data["verdict"] in ("degenerate", "minimum")


def test_a_kink_minimum_is_not_refuted_by_derivatives_that_grow_without_bound():
    """Ackley's function (literature: global minimum f(0, 0) = 0) has |(x, y)| inside a sqrt:
    6e-30 from 0 its 4th derivative is -1.4e73, the Taylor polynomial describes nothing,
    and the minimum was called a saddle, exit 3. A saddle needs a lower point down its
    descent direction."""
    ackley = "-20*exp(-0.2*sqrt(0.5*(x^2+y^2)))-exp(0.5*(cos(2*pi*x)+cos(2*pi*y)))+E+20"
    args = ["--", ackley, "--starts", "200", "--bounds", "x=-5:5,y=-5:5", "--dtype", "float64", "--format", "json"]
    data = json_of(invoke("minimize", *args), "minimize")  # exit 0
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((0.0, 0.0), abs=1e-8)
    assert data["f"] == pytest.approx(0.0, abs=1e-12)
    assert data["verdict"] != "saddle"


def test_a_minimum_of_small_scale_is_left_to_the_second_order_test(monkeypatch):
    """1e-3*((x-1)^2 + (y-2)^2) has curvature 2e-3, all of it real: the full higher-order test
    (about 0.2 s a point) is not run on it; x^4 at its approximate minimum still is."""
    calls = []
    decide = higher_order.decide
    monkeypatch.setattr(higher_order, "decide", lambda *a, **k: calls.append(a) or decide(*a, **k))
    data = json_of(invoke("minimize", "1e-3*((x-1)^2 + (y-2)^2)", "--dtype", "float64", "--format", "json"), "minimize")
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((1.0, 2.0), abs=1e-6)  # by hand
    assert data["verdict"] == "minimum" and not calls
    data = json_of(invoke("minimize", "x^4", "--from", "2", "--format", "json"), "minimize")
    assert data["verdict"] == "minimum" and data["verdict_order"] == 4 and calls


@pytest.mark.parametrize("opt", ["lbfgs", "newton"])
def test_maximize_on_a_bound_agrees_with_minimize_of_minus_f(opt):
    """sin(x)*sin(y) on [0, 6]^2 from (4.9, 0.5) ends on the bound y = 0, where f = 0. The
    oracle, a grid inside the box around the point: the largest f there is 0 = f(point), a
    weak local maximum (f falls into the box along +y, and is 0 along x). The one-sided test
    ran on f, not on -f, and called it a saddle, exit 3, while minimize of -f said degenerate."""
    args = ["--bounds", "x=0:6,y=0:6", "--from", "x=4.9,y=0.5", "--opt", opt, "--dtype", "float64", "--format", "json"]
    top = json_of(invoke("maximize", "sin(x)*sin(y)", *args), "maximize")  # exit 0
    low = json_of(invoke("minimize", "-sin(x)*sin(y)", *args), "minimize")
    x, y = top["x"]["x"], top["x"]["y"]
    assert y == 0.0 and top["f"] == pytest.approx(0.0, abs=1e-12)
    grid = [(x + i * 1e-3, j * 1e-3) for i in range(-20, 21) for j in range(0, 21)]
    assert max(math.sin(a) * math.sin(b) for a, b in grid) <= 1e-15  # no higher point nearby
    assert top["verdict"] == low["verdict"] != "saddle"
    assert top["status"] == low["status"] == "converged"
