"""A wrong point is never reported as the answer, and every status tells the truth (issue 20).

Oracles: SymPy's exact Hessians and stationary points, the Newton step computed here with
NumPy, SciPy's own optimizers on the same problems.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize

from conftest import invoke, json_of


def run_json(command: str, *args: str, code: int = 0) -> dict:
    return json_of(invoke(command, "--format", "json", *args), command, code)


def exact(text: str, names: str = "x y") -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    symbols = sympy.symbols(names, real=True, seq=True)
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
        assert data["verdict"] == "minimum"
    assert not any("not stationary" in w or "not a minimum" in w for w in data["warnings"])


def test_an_exactly_singular_hessian_is_still_degenerate():
    # SymPy: the Hessian of (x - y)**2 + z**4 at 0 has eigenvalues 0, 0, 4
    text = "(x - y)**2 + z**4"
    assert exact_eigenvalues(text, {"x": 0.0, "y": 0.0, "z": 0.0}) == [0.0, 0.0, 4.0]
    for dtype in ("float32", "float64"):
        data = run_json("grad", text, "--at", "x=0,y=0,z=0", "--order", "2", "--dtype", dtype)
        assert data["results"][0]["verdict"] == "degenerate"


# ---------------------------------------------------------------- item 8: status agrees with the exit code


@pytest.mark.parametrize(
    "command, text, opt, start, status",
    [
        ("minimize", "x**2 - y**2", "lbfgs", "x=0,y=0", "saddle"),
        ("minimize", "x**2 - y**2", "bfgs", "x=1,y=0", "saddle"),  # y' = 0 stays 0 along BFGS's path
        ("minimize", "x**2 - y**2 + z**2", "lbfgs", "x=1,y=0,z=2", "saddle"),
        ("maximize", "x**2", "bfgs", "x=0", "minimum"),
        ("maximize", "x**2 + y**2", "lbfgs", "x=0,y=0", "minimum"),
        ("minimize", "1 - x**2", "bfgs", "x=0", "maximum"),
    ],
)
def test_a_refuted_answer_is_never_called_converged(command, text, opt, start, status):
    """The method's gradient test holds at a stationary point that is not what was asked for:
    the exit status is 3, and the JSON status names the point (it said converged)."""
    names = " ".join(part.split("=")[0] for part in start.split(","))
    e, symbols = exact(text, names)
    data = run_json(command, text, "--opt", opt, "--from", start, code=3)
    point = {s: sympy.nsimplify(data["x"][s.name]) for s in symbols}
    assert all(abs(sympy.diff(e, s).subs(point)) <= 1e-5 for s in symbols)  # SymPy: stationary
    lam = [float(v) for v in sympy.hessian(e, symbols).subs(point).eigenvals(multiple=True)]
    kind = "saddle" if min(lam) < 0 < max(lam) else "minimum" if min(lam) > 0 else "maximum"
    assert (data["status"], data["verdict"]) == (status, kind)


@pytest.mark.parametrize(
    "args",
    [
        ("minimize", "(x-1)**2 + (y+2)**2", "--opt", "lbfgs"),
        ("minimize", "x**2 - y**2", "--opt", "lbfgs"),
        ("maximize", "x**2", "--opt", "bfgs"),
        ("minimize", "x", "--opt", "newton", "--steps", "20"),
        ("minimize", "x**2 - y**2", "--opt", "adam", "--from", "x=1,y=0", "--tol", "1e-3", "--lr", "0.1"),
        ("minimize", "(x-1)**2 + (y+2)**2", "--opt", "lbfgs", "--starts", "5", "--bounds", "x=-3:3,y=-3:3"),
    ],
)
def test_converged_means_exit_0_and_exit_3_is_never_converged(args):
    result = invoke(*args, "--format", "json")
    data = json_of(result, args[0], result.exit_code)
    assert (data["status"] == "converged") <= (result.exit_code == 0)
    assert (result.exit_code == 3) <= (data["status"] != "converged")


# ---------------------------------------------------------------- item 3: a smooth valley is no kink

ROSENBROCK = "(1-x)**2 + 100*(y-x**2)**2"


def rosen(v: np.ndarray) -> float:
    return float((1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2)


def rosen_grad(v: np.ndarray) -> np.ndarray:
    return np.array([-2 * (1 - v[0]) - 400 * v[0] * (v[1] - v[0] ** 2), 200 * (v[1] - v[0] ** 2)])


@pytest.mark.parametrize(
    "args",
    [
        ("--opt", "lbfgs", "--steps", "34", "--from", "x=-1.2,y=1"),
        ("--opt", "lbfgs", "--steps", "25", "--from", "x=-1.2,y=1"),
        ("--opt", "bfgs", "--steps", "20", "--from", "x=-1.2,y=1"),
        ("--opt", "lbfgs", "--starts", "20", "--steps", "3", "--bounds", "x=-2:2,y=-1:3"),
        ("--opt", "newton", "--steps", "12", "--from", "x=-1.2,y=1"),
    ],
)
def test_a_run_out_of_steps_in_a_smooth_valley_is_not_a_kink_minimum(args):
    """SciPy: from (-1.2, 1) L-BFGS-B is still going after 34 iterations (status 1, the
    iteration limit); Rosenbrock is smooth (SymPy), so no kink. It was called 'a minimum
    where f has a kink', exit 0."""
    ref = scipy_minimize(rosen, [-1.2, 1.0], jac=rosen_grad, method="L-BFGS-B", options={"maxiter": 34})
    assert ref.status == 1 and np.max(np.abs(ref.jac)) > 1e-5  # the oracle: the limit was reached
    data = run_json("minimize", ROSENBROCK, *args, code=3)
    grad = rosen_grad(np.array([data["x"]["x"], data["x"]["y"]]))
    assert np.max(np.abs(grad)) > 1e-4  # not stationary, by the exact gradient
    assert (data["status"], data["verdict"]) == ("max_steps", "not stationary")
    assert not any("kink" in w for w in data["warnings"])


def test_the_kink_test_needs_a_jump_in_slope_not_just_a_rise_all_around():
    """The float32 point where L-BFGS-B stopped after 34 iterations rises in every probe
    direction (curvature 1000 across the valley beats the slope 0.065 at steps of 3e-4),
    but the sum of the one-sided slopes along the gradient shrinks with the step: smooth.
    At |x| + |y| and sqrt(x**2 + y**2) the slopes jump by 2 whatever the step."""
    from autodiffcli.solve.verdict import rises_all_around

    def f32(fn):
        return lambda pts: np.array([fn(p) for p in pts.astype(np.float32)], dtype=np.float32)

    point = np.array([0.9990671, 0.9982776], dtype=np.float32)
    assert not rises_all_around(point, rosen_grad(point.astype(np.float64)), f32(rosen), "float32")
    for fn, grad in [
        (lambda p: abs(p[0]) + abs(p[1]), np.array([1.0, 1.0])),
        (lambda p: np.float32(np.hypot(p[0], p[1])), np.array([1.0, 0.0])),
    ]:
        for dtype in ("float32", "float64"):
            assert rises_all_around(np.zeros(2), grad, f32(fn), dtype)


# ---------------------------------------------------------------- item 1: a badly scaled function


def exact_newton_step(text: str, point: dict[str, float]) -> np.ndarray:
    """H^-1 grad at the point, from SymPy's exact gradient and Hessian (NumPy solves)."""
    e, symbols = exact(text, " ".join(point))
    at = {s: sympy.Float(point[s.name], 30) for s in symbols}
    g = np.array([float(sympy.diff(e, s).subs(at)) for s in symbols])
    h = np.array(sympy.hessian(e, symbols).subs(at).evalf(30).tolist(), dtype=float)
    return np.linalg.solve(h, g)


SCALED = [
    ("1e-7*(x-1)**2 + 1e-7*(y+3)**2", {"x": 1.0, "y": -3.0}),
    ("1e-9*((x-2)**2 + 3*(y+1)**2 + x*y)", None),
    ("2e-8*(x+4)**2 + 5e-8*(y-2)**2", {"x": -4.0, "y": 2.0}),
]


@pytest.mark.parametrize("text, minimum", SCALED)
def test_a_tiny_gradient_a_long_newton_step_from_the_minimum_is_not_stationary(text, minimum):
    """At (0, 0) the gradient (6e-7 for the first) is far below any gradient tolerance, but
    Newton's step, computed here from SymPy's derivatives, is several units long."""
    step = exact_newton_step(text, {"x": 0.0, "y": 0.0})
    assert np.max(np.abs(step)) > 1  # the oracle: the minimum is far away
    (point,) = run_json("grad", text, "--at", "x=0,y=0", "--order", "2", "--dtype", "float64")["results"]
    assert point["verdict"] == "not stationary"


@pytest.mark.parametrize("text, minimum", SCALED)
@pytest.mark.parametrize("opt", ["newton", "bfgs", "lbfgs"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_badly_scaled_function_is_minimized_where_its_minimum_is(text, minimum, opt, dtype):
    """minimize 1e-7*(x-1)**2 + 1e-7*(y+3)**2 printed 0 0, converged, minimum, exit 0: every
    gradient of a function of scale 1e-7 is below the default tolerance 1e-5."""
    e, (x, y) = exact(text)
    (solution,) = sympy.solve([sympy.diff(e, x), sympy.diff(e, y)], [x, y], dict=True)
    expected = np.array([float(solution[x]), float(solution[y])])
    if minimum:
        assert tuple(expected) == pytest.approx((minimum["x"], minimum["y"]), abs=1e-12)
    data = run_json("minimize", text, "--opt", opt, "--dtype", dtype)
    found = np.array([data["x"]["x"], data["x"]["y"]])
    scale = max(1.0, float(np.max(np.abs(expected))))
    # within the documented step tolerance, max(--tol, sqrt(eps)) * max(1, |x|), of the minimum
    assert found == pytest.approx(expected, abs=3 * max(1e-5, float(np.sqrt(np.finfo(dtype).eps))) * scale)
    step = exact_newton_step(text, data["x"])
    assert np.max(np.abs(step)) <= 1e-3 * scale  # Newton's step from the point found: short
    assert (data["status"], data["verdict"]) == ("converged", "minimum")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("start", ["x=0,y=0", "x=5,y=7"])
def test_a_flat_function_with_a_kink_minimum_is_reached_not_called_unbounded(dtype, start):
    """|x - 1| + |y + 2| (zero only at (1, -2), by inspection): Newton's flat-f step is
    |x|/eps**(3/4) long, and 40 halvings could not bring it down in float64 - the run stalled
    at (2, -2), exit 3, saying f may be unbounded below."""
    text = "abs(x-1)+abs(y+2)"
    result = invoke("minimize", text, "--dtype", dtype, "--from", start, "--format", "json")
    data = json_of(result, "minimize", result.exit_code)
    assert result.exit_code == 0, result.stderr
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((1.0, -2.0), abs=1e-6)
    assert "unbounded" not in result.stderr


def test_a_badly_scaled_function_from_many_starts():
    text = "1e-7*(x-1)**2 + 1e-7*(y+3)**2"
    for opt, box in (("lbfgs", "x=-5:5,y=-5:5"), ("newton", "x=-5:5,y=-5:5"), ("bfgs", None), ("lbfgs", None)):
        bounds = ["--bounds", box] if box else []  # without: starts drawn within 10 of --from
        data = run_json("minimize", text, "--opt", opt, "--starts", "8", *bounds)
        assert (data["x"]["x"], data["x"]["y"]) == pytest.approx((1.0, -3.0), abs=1e-3)
        assert [b["verdict"] for b in data["basins"]] == ["minimum"]
        assert data["basins"][0]["count"] == 8


# ---------------------------------------------------------------- item 4: a flat start is no stop


@pytest.mark.parametrize(
    "text, start, opt, dtype",
    [
        ("1-exp(-(x-3)**2)", "6.8", "newton", "float32"),
        ("1-exp(-(x-3)**2)", "6.8", "bfgs", "float32"),
        ("1-exp(-(x-3)**2)", "6.8", "lbfgs", "float32"),
        ("1-exp(-(x-3)**2)", "10", "newton", "float64"),
        ("1-exp(-(x-3)**2)", "-1.5", "newton", "float32"),
        ("2-exp(-(x+1)**2/2)", "6", "newton", "float32"),
        ("2-exp(-(x+1)**2/2)", "6", "lbfgs", "float32"),
        ("2-exp(-(x+1)**2/2)", "9", "newton", "float64"),
        ("1-exp(-(x-3)**2)", "10", "bfgs", "float64"),  # f = 1 exactly around 10: flat to rounding
        ("1-exp(-(x-3)**2)", "10", "lbfgs", "float64"),
    ],
)
def test_a_flat_start_with_negative_curvature_is_a_reason_to_step(text, start, opt, dtype):
    """SymPy: at the start the slope is below the tolerance 1e-5 (or nearly 0) and the
    curvature is negative, so it is no minimum; the only stationary point is the minimum.
    It took 0 steps and reported the start, 'degenerate', exit 0."""
    e, (x,) = exact(text, "x")
    x0 = sympy.Rational(start)
    assert abs(float(sympy.diff(e, x).subs(x, x0))) < 1e-5 and float(sympy.diff(e, x, 2).subs(x, x0)) < 0
    (minimum,) = sympy.solve(sympy.diff(e, x), x)
    assert float(sympy.diff(e, x, 2).subs(x, minimum)) > 0
    data = run_json("minimize", text, "--opt", opt, "--from", start, "--dtype", dtype)
    assert data["x"]["x"] == pytest.approx(float(minimum), abs=1e-3)
    assert data["steps"] > 0 and data["verdict"] == "minimum"


# ---------------------------------------------------------------- item 9: stationarity at a bound


@pytest.mark.parametrize(
    "text, box, starts",
    [
        ("(x+1)**2 + (y-x)**2", "x=0:2,y=-3:3", "50"),
        ("(x+1)**2 + (y-x)**2", "x=0:2,y=-3:3", "7"),
        ("(x-3)**2 + (y+4)**2 + x*y", "x=-1:1,y=-1:1", "30"),
        ("(x+2)**2 + (y-x-1)**2", "x=-1:2,y=-3:3", "40"),
    ],
)
def test_a_minimum_on_a_bound_from_many_starts_is_a_minimum(text, box, starts):
    """The batched L-BFGS ends a hair (6e-13) inside the bound x = 0 that the gradient (2)
    pushes against; the projected gradient there is 0 (SciPy's L-BFGS-B, with the bounds,
    ends on the bound). It was 'not stationary', exit 3."""
    e, (x, y) = exact(text)
    fn = sympy.lambdify([(x, y)], e)
    bounds = [tuple(map(float, part.split("=")[1].split(":"))) for part in box.split(",")]
    ref = scipy_minimize(fn, [0.5 * sum(b) for b in bounds], method="L-BFGS-B", bounds=bounds,
                         options={"gtol": 1e-12, "ftol": 1e-15})  # fmt: skip
    data = run_json("minimize", text, "--opt", "lbfgs", "--starts", starts, "--bounds", box)
    assert (data["x"]["x"], data["x"]["y"]) == pytest.approx(tuple(ref.x), abs=1e-3)
    assert data["verdict"] == "minimum"
    assert not any("not stationary" in w or "not a minimum" in w for w in data["warnings"])


# ---------------------------------------------------------------- item 16: many starts, one story

RASTRIGIN = "20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)"


@pytest.mark.parametrize("opt", ["lbfgs", "newton"])
def test_the_history_of_many_starts_shows_the_best_starts_progress_without_repeats(opt):
    """Rastrigin from 40 starts: the best start stops within a few iterations while others
    run on to --steps; the table repeated its row up to the last step (201 identical rows
    from 300 starts). SymPy: the global minimum is 0 at (0, 0)."""
    e, (x, y) = exact(RASTRIGIN)
    assert e.subs({x: 0, y: 0}) == 0 and sympy.diff(e, x).subs({x: 0, y: 0}) == 0
    data = run_json(
        "minimize", RASTRIGIN, "--opt", opt, "--starts", "40", "--steps", "200", "--every", "1",
        "--bounds", "x=-5.12:5.12,y=-5.12:5.12",
    )  # fmt: skip
    rows = data["history"]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps))
    for a, b in itertools.pairwise(rows):
        assert (a["x"], a["f"], a["grad_norm"]) != (b["x"], b["f"], b["grad_norm"])
    assert rows[-1]["x"] == data["x"] and rows[-1]["f"] == pytest.approx(data["f"])
    assert len(rows) <= data["steps"] + 2  # the best start's own iterations, not every start's


def test_a_line_counts_the_starts_that_did_not_converge():
    """Newton from 20 starts on Himmelblau's function stopped after one step: SymPy's gradient
    at every end point is far above --tol, so no start converged, and a line says so."""
    text = "(x**2+y-11)**2 + (x+y**2-7)**2"
    e, (x, y) = exact(text)
    result = invoke("minimize", text, "--opt", "newton", "--starts", "20", "--steps", "1",
                    "--bounds", "x=-5:5,y=-5:5", "--format", "json")  # fmt: skip
    data = json_of(result, "minimize", result.exit_code)
    ended = 0
    for basin in data["basins"]:
        at = {x: sympy.Float(basin["x"]["x"], 30), y: sympy.Float(basin["x"]["y"], 30)}
        assert max(abs(float(sympy.diff(e, v).subs(at))) for v in (x, y)) > 1e-5  # the oracle
        ended += basin["count"]
    assert f"{ended} of 20 starts did not converge: {ended} reached --steps 1" in data["warnings"]
    quiet = run_json("minimize", "(x-1)**2 + y**2", "--opt", "newton", "--starts", "20", "--bounds", "x=-5:5,y=-5:5")
    assert not any("did not converge" in w for w in quiet["warnings"])  # Newton solves a quadratic: all converge
