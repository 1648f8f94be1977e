"""maximize: f itself reported, every method, the unbounded case.

Oracles: calculus (the exact maximum of x*exp(-x**2)) and the problems' closed forms.
"""

from __future__ import annotations

import math

import pytest

from search_problems import run_json

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
