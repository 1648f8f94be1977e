"""maximize: f itself reported, every method, the unbounded case.

Oracles: calculus (the exact maximum of x*exp(-x**2)) and the problems' closed forms.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from search_problems import run_json

from conftest import invoke

# ---------------------------------------------------------------- maximize


def test_maximize_reports_f_itself_at_the_exact_maximum():
    data = run_json("maximize", "x*exp(-x**2)", "--opt", "newton", "--from", "0.5", "--dtype", "float64")
    assert data["x"]["x"] == pytest.approx(1 / math.sqrt(2), abs=1e-9)
    assert data["f"] == pytest.approx(math.exp(-0.5) / math.sqrt(2), rel=1e-12)
    assert data["verdict"] == "maximum" and data["status"] == "converged"
    assert data["history"][0]["f"] == pytest.approx(0.5 * math.exp(-0.25))  # f, not -f, at the start


@pytest.mark.parametrize("opt", ["adam", "lbfgs"])
def test_maximize_with_other_methods(opt):
    data = run_json("maximize", "5 - (x-2)**2", "--opt", opt, *(["--lr", "0.1"] if opt == "adam" else []))
    assert data["x"]["x"] == pytest.approx(2.0, abs=1e-3)
    assert data["f"] == pytest.approx(5.0, abs=1e-5)
    assert data["verdict"] == "maximum"


def test_unbounded_maximize_says_so_and_prints_no_nan():
    # f = x**2 grows without bound: Newton follows it until f overflows (diverged, exit 1)
    data = run_json("maximize", "x**2", "--opt", "newton", "--from", "1", code=1)
    assert data["status"] == "diverged" and data["verdict"] == "not stationary"
    assert math.isfinite(data["f"]) and data["f"] > 1e30
    assert any("f may be unbounded above" in w for w in data["warnings"])
    assert all(v is None or math.isfinite(v) for v in data["x"].values())


def test_maximize_from_many_starts_lists_the_maxima_best_first_like_scipy():
    """sin(3x) - x**2/10 on [-3, 3]: its local maxima are where 3cos(3x) = x/5 with f'' < 0,
    found by SciPy's brentq between the grid points where f' changes sign; -3, where f falls
    into the box, is a maximum over the box held by its bound."""
    from scipy.optimize import brentq

    f = lambda x: math.sin(3 * x) - x * x / 10
    df = lambda x: 3 * math.cos(3 * x) - x / 5
    grid = np.linspace(-3, 3, 6001)
    roots = [brentq(df, a, b, xtol=1e-14) for a, b in itertools.pairwise(grid) if df(a) * df(b) < 0]
    maxima = [r for r in roots if -9 * math.sin(3 * r) - 0.2 < 0] + [-3.0]  # f'' < 0, and the bound
    maxima.sort(key=f, reverse=True)
    data = run_json(
        "maximize", "sin(3*x) - x**2/10", "--opt", "newton", "--starts", "30", "--bounds", "x=-3:3",
        "--dtype", "float64",
    )  # fmt: skip
    basins = data["basins"]
    assert [b["verdict"] for b in basins] == ["maximum"] * len(maxima)
    assert [b["x"]["x"] for b in basins] == pytest.approx(maxima, abs=1e-8)  # best (highest f) first
    assert [b["f"] for b in basins] == pytest.approx([f(m) for m in maxima], rel=1e-12)
    assert sum(b["count"] for b in basins) == 30
    assert (data["x"], data["f"], data["verdict"]) == (basins[0]["x"], basins[0]["f"], "maximum")


def test_maximize_with_bounds_plain_and_a_picture():
    # 5 - (x-2)**2 on [-1, 1]: the maximum over the box is at the bound x = 1, f = 4
    args = ("maximize", "5 - (x-2)**2", "--opt", "lbfgs", "--bounds", "x=-1:1", "--dtype", "float64")
    plain = invoke(*args, "--format", "plain")
    assert (plain.exit_code, plain.stderr) == (0, "")
    assert float(plain.stdout) == pytest.approx(1.0, abs=1e-12)
    data = run_json(*args)
    assert (data["x"]["x"], data["f"], data["verdict"]) == (
        pytest.approx(1.0, abs=1e-12),
        pytest.approx(4.0),
        "maximum",
    )
    pictured = invoke(*args, "--format", "plain", "--plot")
    assert (pictured.exit_code, pictured.stdout) == (0, plain.stdout)  # the picture goes to stderr
    assert "f = -(x - 2)**2 + 5" in pictured.stderr and "XX end" in pictured.stderr  # f itself, not -f
