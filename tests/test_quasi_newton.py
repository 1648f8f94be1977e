"""BFGS and L-BFGS: SciPy's own from one start, TFP's batched methods from many.

Oracles: SciPy's optimizers on SciPy's own Rosenbrock and on a NumPy Himmelblau.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize
from scipy.optimize import rosen, rosen_der

from search_problems import HIMMELBLAU, ROSENBROCK, Silent, run_json, scipy_ends, xy

from conftest import error_lines, invoke, json_of

# ---------------------------------------------------------------- bfgs, lbfgs: SciPy's own, driven by tapes


@pytest.mark.parametrize("opt, method", [("bfgs", "BFGS"), ("lbfgs", "L-BFGS-B")])
def test_quasi_newton_matches_scipy_on_rosenbrock(opt, method):
    ours = run_json("minimize", ROSENBROCK, "--opt", opt, "--from", "x=-1.2,y=1", "--dtype", "float64")
    # L-BFGS-B's relative-reduction stop (ftol) would end SciPy's own run before its gradient
    # test; autodiff turns it off (ftol = 0) so that --tol decides: the oracle runs the same way
    options = {"gtol": 1e-5, **({"ftol": 0.0} if opt == "lbfgs" else {})}
    ref = scipy_minimize(rosen, [-1.2, 1.0], jac=rosen_der, method=method, options=options)
    assert ref.success and np.max(np.abs(ref.jac)) <= 1e-5
    assert xy(ours["x"]) == pytest.approx(tuple(ref.x), abs=1e-4)
    assert xy(ours["x"]) == pytest.approx((1.0, 1.0), abs=1e-4)
    assert ours["status"] == "converged" and ours["verdict"] == "minimum"
    assert ours["evaluations"] <= 1.5 * ref.nfev
    assert ours["optimizer"] == method


def test_lbfgs_keeps_to_the_bounds_like_scipy():
    ours = run_json(
        "minimize",
        ROSENBROCK,
        "--opt",
        "lbfgs",
        "--from",
        "x=-1.2,y=1",
        "--bounds",
        "x=-2:0.5,y=-1:2",
        "--dtype",
        "float64",
    )
    ref = scipy_minimize(rosen, [-1.2, 1.0], jac=rosen_der, method="L-BFGS-B", bounds=[(-2, 0.5), (-1, 2)])
    assert xy(ours["x"]) == pytest.approx(tuple(ref.x), abs=1e-5)
    assert xy(ours["x"]) == pytest.approx((0.5, 0.25), abs=1e-5)
    # held at x = 0.5 by its bound: a minimum over the box, tested over y alone
    assert ours["verdict"] == "minimum" and ours["eigenvalues"] == pytest.approx([200.0])


def test_lbfgs_one_start_is_converged_only_with_the_gradient_within_tol():
    """SciPy's L-BFGS-B on Rosenbrock from (-1.2, 1) with its default ftol reports success
    when f stops falling relative to max(|f|, 1), with a gradient still 5e-5. autodiff's
    lbfgs goes on to its gradient test: converged, with the gradient within --tol."""
    ref = scipy_minimize(rosen, [-1.2, 1.0], jac=rosen_der, method="L-BFGS-B", options={"gtol": 1e-5})
    assert ref.success and np.max(np.abs(ref.jac)) > 1e-5  # the oracle: success on f alone
    rosenbrock = ("100*(y-x**2)**2 + (1-x)**2", "--opt", "lbfgs", "--from", "x=-1.2,y=1", "--dtype", "float64")
    data = run_json("minimize", *rosenbrock, "--tol", "1e-5")
    assert xy(data["x"]) == pytest.approx((1.0, 1.0), abs=1e-5)
    largest = max(abs(g) for g in data["gradient"].values())
    assert data["status"] == "converged" and largest <= 1e-5
    length = math.hypot(*data["gradient"].values())  # rows and the report show the gradient's length
    assert data["history"][-1]["grad_norm"] == pytest.approx(length) == data["grad_norm"]
    # where the gradient test cannot be met (float32 rounding on Wood's flat valley): stalled, exit 3
    wood = "100*(w**2-x)**2 + (w-1)**2 + 90*(y**2-z)**2 + (1-y)**2 + 10.1*((x-1)**2 + (z-1)**2) + 19.8*(x-1)*(z-1)"
    data = run_json("minimize", wood, "--opt", "lbfgs", "--from", "w=-3,x=-1,y=-3,z=-1", "--tol", "1e-5", code=3)
    assert data["status"] == "stalled" and max(abs(g) for g in data["gradient"].values()) > 1e-5
    assert any(w.startswith("--tol 1e-05 not reached") for w in data["warnings"])


def test_scipy_from_one_start_reports_its_gradient_in_the_history():
    data = run_json("minimize", ROSENBROCK, "--opt", "bfgs", "--from", "x=-1.2,y=1", "--dtype", "float64")
    assert data["history"][-1]["grad_norm"] == pytest.approx(data["grad_norm"], rel=1e-12)
    assert 0 < data["grad_norm"] <= 1e-5 * math.sqrt(2)


@pytest.mark.parametrize("opt", ["lbfgs", "bfgs"])
def test_converged_holds_for_the_gradient_the_report_shows(opt):
    """Booth's function in float32 from 30 starts, --tol 1e-8: the batched search judged
    convergence on its own compiled evaluation, which rounds (x + 2y - 7) to 0 at the end
    point; the gradient shown there is 1e-6 (SymPy: 1e-6 exactly at that float32 point),
    100 times --tol, and the run said converged, exit 0."""
    text = "(x+2*y-7)**2 + (2*x+y-5)**2"
    result = invoke("minimize", text, "--opt", opt, "--starts", "30", "--tol", "1e-8", "--format", "json")
    data = json_of(result, "minimize", result.exit_code)
    x, y = sympy.symbols("x y", real=True)
    e = sympy.parse_expr(text, local_dict={"x": x, "y": y})
    at = {x: sympy.Rational(data["x"]["x"]), y: sympy.Rational(data["x"]["y"])}
    slope = max(abs(float(sympy.diff(e, v).subs(at))) for v in (x, y))
    assert slope > 1e-8  # the oracle: the end point's gradient is not within --tol
    assert max(abs(g) for g in data["gradient"].values()) > 1e-8
    assert data["status"] == "stalled" and result.exit_code == 3
    assert xy(data["x"]) == pytest.approx((1.0, 3.0), abs=1e-5) and data["verdict"] == "minimum"


# ---------------------------------------------------------------- lbfgs from many starts: TFP's batched L-BFGS


def lbfgs_batch(
    starts: np.ndarray,
    lo: float,
    hi: float,
    record: list | None = None,
    text: str = HIMMELBLAU,
    method: str = "lbfgs",
    dtype: str = "float64",
):
    """tfp_batched.quasi_newton on ``text``, with every evaluated batch of points kept in ``record``."""
    from autodiffcli import settings
    from autodiffcli.calculus.tf_build import TFFunction
    from autodiffcli.runtime import tensorflow
    from autodiffcli.solve import batch, tfp_batched, types

    tf = tensorflow()
    problem = settings.load_problem(text, (), dtype)

    class Recording(batch.BatchObjective):
        def derivatives(self, X, order):
            if record is not None:
                X = tf.numpy_function(lambda a: (record.append(a.copy()), a)[1], [X], X.dtype, stateful=True)
                X.set_shape([None, starts.shape[1]])
            return super().derivatives(X, order)

    objective = Recording(TFFunction(problem.expr, dtype), problem.variables, {})
    box = types.Box(np.full(starts.shape[1], lo), np.full(starts.shape[1], hi))
    return tfp_batched.quasi_newton(method, objective, starts, box, 1000, 1e-5, 10**6, Silent())


@pytest.mark.parametrize("method, bounded", [("lbfgs", False), ("lbfgs", True), ("bfgs", False)])
def test_batched_quasi_newton_ends_where_scipy_ends_from_the_same_starts(method, bounded):
    starts = np.random.default_rng(3).uniform(-5, 5, (300, 2))
    lo, hi = (-5.0, 5.0) if bounded else (-math.inf, math.inf)
    ours = lbfgs_batch(starts, lo, hi, method=method)
    ref = scipy_ends(starts, [(-5, 5)] * 2 if bounded else None, "BFGS" if method == "bfgs" else "L-BFGS-B")
    assert (ours.status == 1).all()  # converged, every one
    # every end point is one of the minima SciPy reaches from these starts, to 1e-6
    minima = np.array([r for i, r in enumerate(ref) if not (np.abs(ref[:i] - r).max(axis=1) < 1e-4).any()])
    assert len(minima) == 4
    assert all(np.abs(minima - x).max(axis=1).min() < 1e-6 for x in ours.x)
    assert ours.f.max() < 1e-10
    # the line searches differ (Hager-Zhang here, More-Thuente in SciPy): most starts, not all,
    # end in the basin SciPy's run from the same start ends in
    same = (np.abs(ours.x - ref).max(axis=1) < 1e-4).mean()
    assert same >= 0.65
    # evaluations: every row TFP asked for, at least one per start per iteration
    assert ours.evaluations >= len(starts) + ours.iterations.sum()


def test_batched_lbfgs_in_float32_with_bounds_converges_from_every_start():
    # u is kept in float64: in float32 its rounding, times half the box, stalled 28 of these
    # 1000 starts short of --tol
    ours = lbfgs_batch(np.random.default_rng(0).uniform(-5, 5, (1000, 2)), -5.0, 5.0, dtype="float32")
    assert (ours.status == 1).all()
    assert ours.f.max() < 1e-6


def test_batched_lbfgs_evaluates_f_only_inside_the_bounds():
    record: list[np.ndarray] = []
    starts = np.random.default_rng(5).uniform([-1, 0], [1, 0.5], (200, 2))
    # the minimum over the box is its corner (0.5, 0.5), where f's slope points outwards
    ours = lbfgs_batch(starts, 0.0, 0.5, record, text="(x-3)**2 + (y-2)**2 + x*y")
    points = np.concatenate(record)
    assert len(points) == ours.evaluations
    assert points.min() >= 0.0 and points.max() <= 0.5
    ref = scipy_minimize(
        lambda v: (v[0] - 3) ** 2 + (v[1] - 2) ** 2 + v[0] * v[1],
        [0.25, 0.25],
        method="L-BFGS-B",
        bounds=[(0, 0.5)] * 2,
    )
    assert ours.x == pytest.approx(np.broadcast_to(ref.x, ours.x.shape), abs=1e-6)
    assert (ours.status == 1).all()


def test_lbfgs_many_starts_through_the_cli_lists_the_four_minima_scipy_finds():
    n, seed = 400, 2
    data = run_json(
        "minimize", HIMMELBLAU, "--opt", "lbfgs", "--starts", str(n), "--seed", str(seed),
        "--bounds", "x=-5:5,y=-5:5", "--dtype", "float64",
    )  # fmt: skip
    starts = np.random.default_rng(seed).uniform([-5, -5], [5, 5], (n, 2))  # the README's draw
    ref = scipy_ends(starts, [(-5, 5)] * 2)
    assert [b["verdict"] for b in data["basins"]] == ["minimum"] * 4
    assert sum(b["count"] for b in data["basins"]) == n
    for b in data["basins"]:
        assert np.abs(ref - np.array(xy(b["x"]))).max(axis=1).min() < 1e-6
        assert b["f"] < 1e-10
    assert data["status"] == "converged" and data["optimizer"] == "L-BFGS (TFP)"
    bfgs = run_json("minimize", HIMMELBLAU, "--opt", "bfgs", "--starts", "100", "--dtype", "float64")
    assert bfgs["optimizer"] == "BFGS (TFP)" and [b["verdict"] for b in bfgs["basins"]] == ["minimum"] * 4


@pytest.mark.parametrize("opt", ["lbfgs", "bfgs"])
@pytest.mark.parametrize("command, text", [("minimize", "x"), ("maximize", "x**2")])
def test_batched_quasi_newton_on_an_unbounded_function_says_diverged_and_prints_no_nan(command, text, opt):
    result = invoke(command, text, "--opt", opt, "--starts", "5", "--format", "json")
    data = json_of(result, command, 1)
    assert data["status"] == "diverged" and data["basins"] == []
    assert all(math.isfinite(v) for v in data["x"].values()) and math.isfinite(data["f"])
    assert "every start diverged: f or its gradient became non-finite (5 of 5)" in data["warnings"]
    table = invoke(command, text, "--opt", opt, "--starts", "5")
    assert table.exit_code == 1 and table.stdout.strip()
    assert error_lines(table.stderr)[0] == "Error: every start diverged: f or its gradient became non-finite (5 of 5)"
    assert all(line.startswith(("Error: ", "Warning: ")) for line in table.stderr.splitlines())
    assert "nan" not in table.stdout.lower() and "nan" not in table.stderr.lower()


def test_batched_lbfgs_stops_at_steps_and_says_max_steps():
    args = ["--opt", "lbfgs", "--starts", "20", "--steps", "2", "--tol", "1e-5", "--dtype", "float64"]
    data = run_json("minimize", ROSENBROCK, *args, code=3)  # exit 3: --tol not reached
    assert data["status"] == "max_steps" and data["steps"] <= 2
    assert any(w.startswith("--tol 1e-05 not reached within 2 steps") for w in data["warnings"])


def test_the_numpy_line_search_helper_computes_what_tfps_own_does():
    """TFP's where_left_justified_mask (its Hager-Zhang line search's per-field select) is
    replaced by a NumPy one: the same values, dtypes and shapes as TFP's own building blocks
    (its left-justified expand and its backend's where) give, for masks and values of every
    rank the line search passes."""
    from autodiffcli.solve import tfp_batched

    tfp_batched._tfp("lbfgs")
    from tensorflow_probability.python.internal.backend.numpy import v2 as backend
    from tensorflow_probability.substrates.numpy.internal import broadcast_util, prefer_static

    assert broadcast_util.where_left_justified_mask is tfp_batched._where_left_justified_mask
    rng = np.random.default_rng(3)
    for shape in [(), (5,), (5, 2), (5, 2, 2)]:
        for dtype in (np.float32, np.float64):
            mask = rng.random(shape[:1]) < 0.5 if shape else np.bool_(True)
            a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
            rank = prefer_static.maximum(prefer_static.rank(a), prefer_static.rank(b))
            expected = backend.where(broadcast_util.left_justified_expand_dims_to(mask, rank), a, b)
            got = broadcast_util.where_left_justified_mask(mask, a, b)
            assert got.dtype == np.asarray(expected).dtype and got.shape == np.shape(expected)
            assert np.array_equal(got, expected)
