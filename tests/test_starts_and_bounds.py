"""Global search (--starts, basins, --seed) and --bounds, and their bad input.

Oracles: literature minima (Himmelblau), SciPy's differential evolution, Keras' own
optimizer loop, SymPy's stationary points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize

from search_problems import HIMMELBLAU, HIMMELBLAU_MINIMA, run_json, xy

from conftest import error_lines, invoke, json_of

# ---------------------------------------------------------------- global search


@pytest.mark.parametrize("opt, starts", [("newton", "1000"), ("adam", "1000"), ("lbfgs", "60")])
def test_himmelblau_multistart_lists_all_four_minima(opt, starts):
    extra = ["--lr", "0.1"] if opt == "adam" else []
    data = run_json(
        "minimize", HIMMELBLAU, "--opt", opt, "--starts", starts, "--bounds", "x=-5:5,y=-5:5", "--seed", "1", *extra
    )
    minima = [b for b in data["basins"] if b["verdict"] == "minimum"]
    assert len(minima) == 4
    for known in HIMMELBLAU_MINIMA:
        assert any(xy(b["x"]) == pytest.approx(known, abs=2e-3) for b in minima), known
    assert all(b["f"] == pytest.approx(0.0, abs=1e-6) for b in minima)
    assert sum(b["count"] for b in data["basins"]) == int(starts)
    fs = [b["f"] for b in data["basins"]]
    assert fs == sorted(fs)
    assert (data["x"], data["f"]) == (data["basins"][0]["x"], data["basins"][0]["f"])
    assert data["starts"] == int(starts)


@pytest.mark.parametrize("mode", [["--eager"], ["--graph", "--no-jit"], ["--graph", "--jit"]])
def test_keras_starts_run_in_every_mode(mode):
    # SGD with lr 0.25 halves x - 1 and y each step: from anywhere in the box, (1, 0) after 100 steps
    data = run_json(
        "minimize", "(x-1)**2 + y**2", "--opt", "sgd", "--lr", "0.25", "--steps", "100", "--starts", "8",
        "--bounds", "x=-3:3,y=-3:3", "--dtype", "float64", *mode,
    )  # fmt: skip
    assert xy(data["x"]) == pytest.approx((1.0, 0.0), abs=1e-12)
    assert [(b["verdict"], b["count"]) for b in data["basins"]] == [("minimum", 8)]


def test_starts_are_reproducible_and_follow_the_seed():
    args = ["minimize", "sin(3*x) + x**2/10", "--opt", "newton", "--starts", "50", "--bounds", "x=-10:10"]
    one, two = run_json(*args), run_json(*args)
    assert one["basins"] == two["basins"]
    other = run_json(*args, "--seed", "7")
    assert [b["count"] for b in other["basins"]] != [b["count"] for b in one["basins"]]


def test_the_global_minimum_agrees_with_scipy_differential_evolution():
    from scipy.optimize import differential_evolution

    text = "sin(3*x) + x**2/10"
    ref = differential_evolution(lambda v: math.sin(3 * v[0]) + v[0] ** 2 / 10, [(-10, 10)], seed=0, tol=1e-12)
    data = run_json(
        "minimize", text, "--opt", "newton", "--starts", "200", "--bounds", "x=-10:10", "--dtype", "float64"
    )
    assert data["x"]["x"] == pytest.approx(ref.x[0], abs=1e-6)
    assert data["f"] <= ref.fun + 1e-12


def keras_alone(opt: str, start: np.ndarray, steps: int, lr: float, lo: float, hi: float) -> np.ndarray:
    """The oracle: Keras' own optimizer on one start, a hand-written eager loop, projected into the box."""
    import keras
    import tensorflow as tf

    x, y = (tf.Variable(v, dtype=tf.float64) for v in start)
    optimizer = getattr(keras.optimizers, {"lamb": "Lamb", "adafactor": "Adafactor"}[opt])(learning_rate=lr)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
        optimizer.apply_gradients(zip(tape.gradient(loss, [x, y]), [x, y], strict=True))
        for v in (x, y):
            v.assign(tf.clip_by_value(v, lo, hi))
    return np.array([x.numpy(), y.numpy()])


@pytest.mark.parametrize("opt", ["lamb", "adafactor"])
def test_starts_with_lamb_and_adafactor_follow_each_start_as_if_alone(opt):
    # Keras scales their steps by a norm or RMS over a whole variable; one batch of starts
    # would mix them. Each start must end where Keras' own loop from that start ends.
    starts, steps = 4, 40
    data = run_json(
        "minimize", HIMMELBLAU, "--opt", opt, "--lr", "0.1", "--starts", str(starts), "--steps", str(steps),
        "--bounds", "x=-5:5,y=-5:5", "--dtype", "float64", "--seed", "3",
    )  # fmt: skip
    drawn = np.random.default_rng(3).uniform([-5, -5], [5, 5], size=(starts, 2))  # the README's rule for starts
    expected = [keras_alone(opt, start, steps, 0.1, -5.0, 5.0) for start in drawn]
    assert len(data["basins"]) == starts  # the end points are far apart: one basin each
    assert sum(b["count"] for b in data["basins"]) == starts
    for end in expected:
        assert any(xy(b["x"]) == pytest.approx(tuple(end), rel=1e-9, abs=1e-12) for b in data["basins"]), end
    assert data["steps"] == steps


@pytest.mark.parametrize("opt", ["adam", "sgd", "newton", "lbfgs"])
def test_bounds_keep_every_iterate_inside(opt):
    data = run_json("minimize", "(x-3)**2", "--opt", opt, "--from", "-1", "--bounds", "x=-2:1", "--every", "1")
    assert all(-2 <= row["x"]["x"] <= 1 for row in data["history"])
    assert data["x"]["x"] == pytest.approx(1.0)
    assert data["verdict"] == "minimum"  # held by its bound


def test_a_start_outside_the_domain_is_diverged_after_0_steps():
    data = run_json("minimize", "log(x)", "--opt", "newton", "--from", "-1", code=1)
    assert (data["status"], data["steps"], data["f"]) == ("diverged", 0, None)


def test_starts_partly_outside_the_domain_are_dropped_with_a_warning():
    data = run_json("minimize", "x - log(x)", "--opt", "newton", "--starts", "20", "--bounds", "x=-5:5")
    assert data["x"]["x"] == pytest.approx(1.0, abs=1e-5)
    assert data["verdict"] == "minimum"
    dropped = 20 - sum(b["count"] for b in data["basins"])
    assert dropped > 0
    assert f"{dropped} of 20 starts diverged or left the domain and are in no basin" in data["warnings"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["newton", "lbfgs"])
def test_starts_that_run_off_do_not_merge_the_minima_left_behind(opt, dtype):
    """f = x**5/5 - 10x**3/3 + 9x: f' = (x**2 - 1)(x**2 - 9), so SymPy finds local minima at
    -1 and 3, and f is unbounded below as x -> -inf. Starts below -3 run off (Newton to
    |x| = 5e7 in float32, 4e61 in float64); the basin radius was sqrt(eps) times the largest
    |x| of any end point, about 1.7e4, and the minimum at -1 was counted in the basin of 3."""
    x = sympy.Symbol("x", real=True)
    text = "x**5/5 - 10*x**3/3 + 9*x"
    e = sympy.parse_expr(text, local_dict={"x": x})
    minima = sorted(float(r) for r in sympy.solve(sympy.diff(e, x), x) if sympy.diff(e, x, 2).subs(x, r) > 0)
    assert minima == [-1.0, 3.0]
    data = run_json("minimize", text, "--opt", opt, "--starts", "40", "--dtype", dtype)
    found = sorted(b["x"]["x"] for b in data["basins"] if b["verdict"] == "minimum")
    assert found == pytest.approx(minima, abs=1e-3)
    # every start ran off or ended in one of them
    assert all(b["verdict"] == "minimum" or b["f"] < -1e30 for b in data["basins"])


# ---------------------------------------------------------------- bad input: one line, exit 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bounds", "x=5:1"], "Error: --bounds: x=5:1 is empty; LO must be below HI"),
        (["--bounds", "x=a:b"], "Error: --bounds x: 'a' is not a number"),
        (["--bounds", "z=0:1"], "Error: --bounds: 'z' is not a variable of the expression (it has x, y)"),
        (["--bounds", "x=0"], "Error: --bounds: expected NAME=LO:HI, got 'x=0'"),
        (["--bounds", "x=0:1,x=2:3"], "Error: --bounds: 'x' is given twice"),
        (["--starts", "0"], "Error: --starts: must be >= 1, got 0"),
        (["--starts", "two"], "Error: Invalid value for '--starts': 'two' is not a valid integer."),
        (["--seed", "-1"], "Error: --seed: must be >= 0, got -1"),
        (["--starts", "6000000"], "Error: --starts 6,000,000 x 2 values per start is over the limit of 10,000,000"),
        (
            ["--opt", "newton", "--lr", "0.1"],
            "Error: --lr: newton chooses its own step length by line search; --lr is for Keras optimizers",
        ),
        (["--opt", "newton", "--style", "minimize"], "Error: --style minimize: is for Keras optimizers, not newton"),
        (
            ["--opt", "bfgs", "--bounds", "x=0:1"],
            "Error: --bounds: bfgs takes no bounds (SciPy's BFGS is unconstrained); use --opt lbfgs (L-BFGS-B)",
        ),
        (
            ["--opt", "newtn"],
            "Error: --opt: unknown optimizer 'newtn' (did you mean 'newton'?); choose from "
            "adadelta, adafactor, adagrad, adam, adamax, adamw, bfgs, ftrl, lamb, lbfgs, lion, muon, nadam, newton, "
            "rmsprop, schedulefreeadamw, sgd, slsqp, trust-constr",
        ),
    ],
)
def test_bad_search_options_exit_2_with_one_line(args, message):
    for command in ("minimize", "maximize"):
        result = invoke(command, "x**2 + y**2", *args)
        assert result.exit_code == 2
        assert error_lines(result.stderr) == [message]
        assert len(result.stderr.splitlines()) == 1


def test_end_points_in_more_places_than_listed_are_counted_not_lost():
    data = run_json(
        "minimize", HIMMELBLAU, "--opt", "adam", "--steps", "1", "--starts", "5000", "--bounds", "x=-5:5,y=-5:5"
    )
    assert len(data["basins"]) == 100
    listed = sum(b["count"] for b in data["basins"])
    message = (
        f"the end points lie in more than 100 distinct places; the 100 best are listed, and {5000 - listed} "
        "starts ended elsewhere (more --steps may gather them)"
    )
    assert message in data["warnings"]


@pytest.mark.parametrize(
    "opt, extra",
    [("adam", []), ("newton", []), ("lbfgs", []), ("lbfgs", ["--starts", "5"]), ("newton", ["--starts", "5"])],
)
@pytest.mark.parametrize("bounded", [True, False])
def test_grad_norm_is_the_projected_gradients_length_in_the_report_and_every_history_row(opt, extra, bounded):
    # rows were a mix: the plain length at step 0 and the projected one later (Keras), the
    # largest component (newton, lbfgs from several starts), 0 (SciPy from one start); and
    # the report's the plain length, 2 at a minimum held by the bound x = 0
    box = ["--bounds", "x=0:2,y=-3:3"] if bounded else []
    data = run_json(
        "minimize", "(x+1)**2 + (y-x)**2", "--opt", opt, "--from", "x=0.5,y=1", "--steps", "300", "--every", "1",
        "--dtype", "float64", *box, *extra,
    )  # fmt: skip
    x, g = np.array(xy(data["x"])), np.array(xy(data["gradient"]))
    assert g == pytest.approx((2 * (x[0] + 1) - 2 * (x[1] - x[0]), 2 * (x[1] - x[0])), abs=1e-12)  # the plain gradient
    lo, hi = (np.array([0.0, -3.0]), np.array([2.0, 3.0])) if bounded else (-np.inf, np.inf)
    step = x - g
    pg = np.where(step < lo, x - lo, np.where(step > hi, x - hi, g))
    assert data["grad_norm"] == pytest.approx(float(np.linalg.norm(pg)), rel=1e-9, abs=1e-300)
    assert data["history"][-1]["grad_norm"] == pytest.approx(data["grad_norm"], rel=1e-9, abs=1e-300)
    for row in data["history"]:  # each row's |grad| recomputed from its point
        rx = np.array(xy(row["x"]))
        rg = np.array((2 * (rx[0] + 1) - 2 * (rx[1] - rx[0]), 2 * (rx[1] - rx[0])))
        rs = rx - rg
        rpg = np.where(rs < lo, rx - lo, np.where(rs > hi, rx - hi, rg))
        assert row["grad_norm"] == pytest.approx(float(np.linalg.norm(rpg)), rel=1e-6, abs=1e-12)
    if opt != "adam":
        assert data["status"] == "converged" and data["verdict"] == "minimum"


@pytest.mark.parametrize("opt", ["adam", "newton", "lbfgs"])
def test_a_start_outside_the_bounds_is_moved_onto_the_box(opt):
    # (x-3)**2 on [-1, 2] from 10: the run starts at the box's nearest point, 2, and ends there
    data = run_json("minimize", "(x-3)**2", "--opt", opt, "--from", "10", "--bounds", "x=-1:2", "--every", "1")
    assert data["start"] == {"x": 2.0}
    assert data["history"][0]["x"] == {"x": 2.0} and data["history"][0]["f"] == pytest.approx(1.0)
    assert all(-1 <= row["x"]["x"] <= 2 for row in data["history"])
    assert (data["x"]["x"], data["verdict"]) == (pytest.approx(2.0), "minimum")


def test_starts_that_run_off_say_f_may_be_unbounded_below():
    """x**3 - 3x: SymPy's stationary points are -1 (a maximum) and 1 (a minimum), and f falls
    without bound as x -> -inf, so exactly the starts drawn below -1 run off (Newton's steps
    go downhill); the starts are the README's draw, uniform in the --from value +-10."""
    x = sympy.Symbol("x", real=True)
    assert sorted(sympy.solve(sympy.diff(x**3 - 3 * x, x), x)) == [-1, 1]
    drawn = np.random.default_rng(0).uniform([-10], [10], (20, 1))
    below = int((drawn < -1).sum())
    result = invoke("minimize", "x**3 - 3*x", "--opt", "newton", "--starts", "20", "--format", "json")
    data = json_of(result, "minimize", 0)
    assert (data["x"]["x"], data["f"], data["verdict"]) == (pytest.approx(1.0), pytest.approx(-2.0), "minimum")
    assert [(b["verdict"], b["count"]) for b in data["basins"]] == [("minimum", 20 - below)]
    ran_off = [w for w in data["warnings"] if "ran off" in w]
    assert len(ran_off) == 1 and ran_off[0].startswith(f"{below} of 20 starts ran off to f = -")
    assert ran_off[0].endswith("f may be unbounded below; the best of the local minima found is reported")
    plain = invoke("minimize", "x**3 - 3*x", "--opt", "newton", "--starts", "20", "--format", "plain")
    assert (plain.exit_code, float(plain.stdout)) == (0, pytest.approx(1.0))
    assert f"Warning: {ran_off[0]}" in plain.stderr.splitlines()


def test_tol_with_keras_starts_stops_every_start_once_its_gradient_is_within_tol():
    # SGD with lr 0.25 halves x - 1 and y each step: |grad| <= 1e-6 after about 25 steps
    args = ["--opt", "sgd", "--lr", "0.25", "--starts", "8", "--bounds", "x=-3:3,y=-3:3", "--dtype", "float64"]
    data = run_json("minimize", "(x-1)**2 + y**2", *args, "--steps", "1000", "--tol", "1e-6")
    assert data["status"] == "converged" and data["steps"] < 100
    assert data["grad_norm"] <= 1e-6 and xy(data["x"]) == pytest.approx((1.0, 0.0), abs=1e-6)
    assert [(b["verdict"], b["count"]) for b in data["basins"]] == [("minimum", 8)]
    short = run_json("minimize", "(x-1)**2 + y**2", *args, "--steps", "3", "--tol", "1e-6", code=3)
    assert short["status"] == "max_steps" and short["steps"] == 3
    assert any(w.startswith("--tol 1e-06 not reached within 3 steps") for w in short["warnings"])


@pytest.mark.parametrize(
    "text, f, bounds, scipy_bounds",
    [
        ("(x^2-1)^2 + 0.5*x", lambda v: (v[0] ** 2 - 1) ** 2 + 0.5 * v[0], "x=0:", [(0, None)]),
        ("(x^2-1)^2 + 0.5*x", lambda v: (v[0] ** 2 - 1) ** 2 + 0.5 * v[0], "x=-0.5:", [(-0.5, None)]),
        ("(x+1)^2", lambda v: (v[0] + 1) ** 2, "x=0:", [(0, None)]),
        ("(x-7)^2", lambda v: (v[0] - 7) ** 2, "x=:5", [(None, 5)]),
        ("(x+1)^2+(y-3)^2", lambda v: (v[0] + 1) ** 2 + (v[1] - 3) ** 2, "x=0:,y=-5:5", [(0, None), (-5, 5)]),
    ],
)
def test_batched_lbfgs_keeps_one_sided_bounds(text, f, bounds, scipy_bounds):
    """A bound on one side only (x=0:) was taken as no bound by the batched L-BFGS: it reported
    x = -1.057 for x >= 0, exit 0. Oracle: SciPy's L-BFGS-B from 30 starts, the best."""
    data = json_of(invoke("minimize", text, "--opt", "lbfgs", "--starts", "20", "--bounds", bounds,
                          "--dtype", "float64", "--format", "json"), "minimize")  # fmt: skip
    rng = np.random.default_rng(0)
    ends = [scipy_minimize(f, rng.uniform(-3, 3, len(scipy_bounds)).clip(
        [b[0] if b[0] is not None else -np.inf for b in scipy_bounds],
        [b[1] if b[1] is not None else np.inf for b in scipy_bounds]), method="L-BFGS-B", bounds=scipy_bounds)
        for _ in range(30)]  # fmt: skip
    best = min(ends, key=lambda r: r.fun)
    assert list(data["x"].values()) == pytest.approx(list(best.x), abs=1e-5)
    assert data["f"] == pytest.approx(best.fun, abs=1e-9)


@pytest.mark.parametrize(
    "command, text, box",
    [
        ("minimize", "x^4", "x=-0.5:0.5"),
        ("maximize", "1-x^4", "x=-0.5:0.5"),
        ("minimize", "(x^2+y^2)^2", "x=-0.5:0.5,y=-0.5:0.5"),
    ],
)
def test_one_flat_minimum_is_one_basin(command, text, box):
    """Newton stops where x**4 is flat to float32's precision, about 7e-4 from 0 on either side,
    further apart than the grouping radius: two or three basins were listed for the one
    minimum (SymPy: the gradient vanishes at the origin only)."""
    names = sorted({c for c in text if c in "xy"})
    symbols = sympy.symbols(names, real=True)
    expr = sympy.sympify(text.replace("^", "**"), locals=dict(zip(names, symbols, strict=True)))
    real = [
        sol
        for sol in sympy.solve([sympy.diff(expr, s) for s in symbols], symbols, dict=True)
        if all(v.is_real for v in sol.values()) and len(sol) == len(symbols)
    ]
    assert real == [dict.fromkeys(symbols, 0)] or len(symbols) == 2  # (x^2+y^2)^2 = r^4: only 0, by hand
    data = json_of(invoke(command, text, "--starts", "20", "--bounds", box, "--format", "json"), command)
    (basin,) = data["basins"]
    assert basin["count"] == 20 and list(basin["x"].values()) == pytest.approx([0.0] * len(names), abs=2e-3)
