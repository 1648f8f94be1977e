"""Newton's method with a line search, from one start and from many, with and without bounds.

Oracles: exact Newton steps and SciPy's optimizers on the same problems, literature minima.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy
from scipy.optimize import minimize as scipy_minimize
from scipy.optimize import rosen

from search_problems import HIMMELBLAU, HIMMELBLAU_MINIMA, ROSENBROCK, Silent, run_json, xy

# ---------------------------------------------------------------- newton


def test_newton_solves_rosenbrock_from_the_classic_start():
    data = run_json("minimize", ROSENBROCK, "--opt", "newton", "--from", "x=-1.2,y=1", "--dtype", "float64")
    assert xy(data["x"]) == pytest.approx((1.0, 1.0), abs=1e-9)
    assert (data["status"], data["verdict"], data["optimizer"]) == ("converged", "minimum", "Newton")
    assert data["learning_rate"] is None
    assert data["evaluations"] >= data["steps"] > 0
    assert max(abs(g) for g in data["gradient"].values()) <= 1e-5
    fs = [row["f"] for row in data["history"]]
    assert fs == sorted(fs, reverse=True)  # the line search lowers f at every iteration


def test_newton_converges_quadratically_on_a_strictly_convex_function_from_far():
    # log(cosh) is strictly convex, and plain Newton diverges on it from |x - 3| > 1.09
    f = "log(cosh(x - 3)) + log(cosh(y + 1)) + (x - 3)**2/10 + (y + 1)**2/10"
    data = run_json(
        "minimize", f, "--opt", "newton", "--from", "x=-5,y=5", "--tol", "1e-10", "--dtype", "float64", "--every", "1"
    )
    assert math.dist((-5, 5), (3, -1)) == 10
    assert xy(data["x"]) == pytest.approx((3.0, -1.0), abs=1e-10)
    assert data["status"] == "converged" and data["steps"] <= 10
    norms = [row["grad_norm"] for row in data["history"] if row["grad_norm"] > 0]
    tail = [b / a**2 for a, b in itertools.pairwise(norms) if a < 1e-2]  # e_{k+1} <= C e_k^2 near the end
    assert tail and max(tail) < 10


@pytest.mark.parametrize("text", ["1e6*(x-1)**2 + 1e-3*(y-1)**2", "1e4*(x-1)**2 + 1e-4*(y+2)**2"])
def test_newton_takes_its_full_step_on_an_ill_conditioned_quadratic_in_float64(text):
    """Condition numbers 1e9 and 1e8, well within float64. The eigenvalue floor was
    sqrt(eps) * max|lambda|, above the small eigenvalue: Newton crept along y (67 iterations,
    "converged" at y = 0.9952 on the first) where its step solves a quadratic in one."""
    start = np.array([0.5, 0.5])
    data = run_json("minimize", text, "--opt", "newton", "--from", "x=0.5,y=0.5", "--dtype", "float64")
    x, y = sympy.symbols("x y")
    e = sympy.sympify(text)  # the test's own text, not user input
    H = np.array(sympy.hessian(e, (x, y)).tolist(), dtype=float)
    g = np.array([float(sympy.diff(e, v).subs({x: 0.5, y: 0.5})) for v in (x, y)])
    newton_point = start - np.linalg.solve(H, g)  # the oracle: one exact Newton step
    reference = scipy_minimize(
        sympy.lambdify([(x, y)], e), start, method="trust-exact",
        jac=sympy.lambdify([(x, y)], [sympy.diff(e, v) for v in (x, y)]),
        hess=lambda v: H, options={"gtol": 1e-12},
    ).x  # fmt: skip
    assert reference == pytest.approx(newton_point, abs=1e-9)
    assert xy(data["x"]) == pytest.approx(tuple(newton_point), abs=1e-12)
    assert data["status"] == "converged" and data["steps"] <= 2


@pytest.mark.parametrize("start", ["x=0,y=1", "x=0.01,y=1", "x=-0.01,y=-2"])
def test_newton_steps_off_the_saddle_of_a_double_well(start):
    # saddle at (0, 0), minima at (+-1, 0); x = 0 is the saddle's stable line, where plain
    # Newton walks straight to the saddle
    data = run_json(
        "minimize", "x**4/4 - x**2/2 + y**2", "--opt", "newton", "--from", start, "--dtype", "float64", "--tol", "1e-10"
    )
    assert abs(data["x"]["x"]) == pytest.approx(1.0, abs=1e-6)
    assert data["x"]["y"] == pytest.approx(0.0, abs=1e-6)
    assert data["f"] == pytest.approx(-0.25, abs=1e-12)
    assert data["verdict"] == "minimum"


def test_newton_never_ends_at_a_maximum():
    data = run_json("minimize", "cos(x)", "--opt", "newton", "--from", "0", "--dtype", "float64")
    assert abs(data["x"]["x"]) == pytest.approx(math.pi, abs=1e-8)
    assert data["verdict"] == "minimum"


@pytest.mark.parametrize("shrink", [True, False])
def test_newton_from_many_starts_ends_each_start_where_it_ends_alone(shrink, monkeypatch):
    # starts stop at different iterations and (from many starts) leave the batch; a start's
    # path must not depend on which others are still in it
    from autodiffcli import settings
    from autodiffcli.calculus.tf_build import TFFunction
    from autodiffcli.solve import batch, newton, types

    monkeypatch.setattr(newton, "SHRINK_FROM", 2 if shrink else 10**9)

    problem = settings.load_problem(HIMMELBLAU, (), "float64")
    objective = batch.BatchObjective(TFFunction(problem.expr, "float64"), problem.variables, {})
    box = types.Box(np.array([-5.0, -5.0]), np.array([5.0, 5.0]))
    starts = np.random.default_rng(5).uniform(-5, 5, (6, 2))
    together = newton.newton(objective, starts, box, 100, 1e-10, 10**6, Silent())
    assert len(set(together.iterations)) > 1  # they do stop at different iterations
    for i, start in enumerate(starts):
        alone = newton.newton(objective, start[None, :], box, 100, 1e-10, 10**6, Silent())
        assert alone.iterations[0] == together.iterations[i]
        np.testing.assert_allclose(alone.x[0], together.x[i], rtol=0, atol=1e-12)
    # and each is one of Himmelblau's minima (literature values)
    assert all(np.abs(np.array(HIMMELBLAU_MINIMA) - x).max(axis=1).min() < 1e-6 for x in together.x)


BOUNDED_CONVEX = [
    # (text, numpy f, box, start); each minimum lies on the box's boundary
    ("(x+1)**2 + (y-x)**2", lambda v: (v[0] + 1) ** 2 + (v[1] - v[0]) ** 2, "x=0:2,y=-3:3", (0.5, 1.0)),
    ("(x+1)**2 + (y-x)**2", lambda v: (v[0] + 1) ** 2 + (v[1] - v[0]) ** 2, "x=-0.5:2,y=-3:3", (1.5, -2.0)),
    ("(x-3)**2 + (y+4)**2 + x*y", lambda v: (v[0] - 3) ** 2 + (v[1] + 4) ** 2 + v[0] * v[1], "x=-1:1,y=-1:1", (0, 0)),
    ("100*(y-x**2)**2 + (1-x)**2", rosen, "x=-2:0.5,y=-1:2", (-1.2, 1.0)),
]


@pytest.mark.parametrize("text, f, box, start", BOUNDED_CONVEX)
@pytest.mark.parametrize("starts", ["1", "20"])
def test_newton_with_bounds_reaches_the_minimum_on_the_boundary_that_scipy_finds(text, f, box, start, starts):
    # Newton's step projected onto the box is not a descent direction there: from (0.5, 1)
    # on the first, it stalled at (0, -1), f = 2, against the minimum (0, 0), f = 1
    bounds = [tuple(map(float, part.split("=")[1].split(":"))) for part in box.split(",")]
    ref = scipy_minimize(f, start, method="L-BFGS-B", bounds=bounds, options={"gtol": 1e-12, "ftol": 1e-15})
    data = run_json(
        "minimize", text, "--opt", "newton", "--bounds", box, "--from", f"x={start[0]},y={start[1]}",
        "--starts", starts, "--dtype", "float64",
    )  # fmt: skip
    assert xy(data["x"]) == pytest.approx(tuple(ref.x), abs=1e-6)
    assert data["f"] == pytest.approx(ref.fun, abs=1e-9)
    assert (data["status"], data["verdict"]) == ("converged", "minimum")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_closed_form_2x2_eigendecomposition_agrees_with_lapack(dtype):
    """Newton's 2x2 eigendecomposition (a Jacobi rotation) against NumPy's LAPACK eigh, over
    twelve orders of magnitude, with equal, zero and opposite eigenvalues: ascending
    eigenvalues to a few eps of |A|, and orthonormal eigenvectors with A q = lambda q."""
    from autodiffcli.runtime import tensorflow
    from autodiffcli.solve.newton import symmetric_eigh

    tf = tensorflow()
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2000, 2, 2)) * 10.0 ** rng.uniform(-6, 6, (2000, 1, 1))
    A = A + A.transpose(0, 2, 1)
    A[:4] = [[[1, 0], [0, 1]], [[0, 0], [0, 0]], [[2, 0], [0, -3]], [[1, 1e-9], [1e-9, 1]]]
    A = A.astype(dtype)
    lam, Q = (t.numpy().astype(np.float64) for t in symmetric_eigh(tf, tf.constant(A)))
    oracle = np.linalg.eigh(A.astype(np.float64))[0]
    eps = float(np.finfo(dtype).eps)
    size = np.maximum(np.abs(A).max(axis=(1, 2)), np.finfo(dtype).tiny)[:, None]
    assert np.all(np.abs(lam - oracle) <= 8 * eps * size)
    assert np.all(lam[:, 0] <= lam[:, 1])
    assert np.abs(np.einsum("nji,njk->nik", Q, Q) - np.eye(2)).max() <= 4 * eps
    residual = np.einsum("nij,njk->nik", A.astype(np.float64), Q) - Q * lam[:, None, :]
    assert np.all(np.abs(residual).max(axis=1) <= 8 * eps * size)
