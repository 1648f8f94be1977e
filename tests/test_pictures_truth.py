"""Pictures tell the truth (issue 20, item 15): a maximize picture says maximize; a
derivative is not drawn where f is undefined; no line across a pole; every Newton (and
BFGS) iterate on the path; no "-0.0" on a terminal axis.

Oracles: SymPy's derivatives, the poles of tan worked out by hand, Newton's iteration
computed here with SymPy.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy

from autodiffcli import grad, minimize, settings
from autodiffcli.output import pictures
from autodiffcli.solve import types

from conftest import invoke

X = sympy.Symbol("x", real=True)


def grad_report(text: str, at: float, order: int):
    problem = settings.load_problem(text, [], "float32")
    return grad.grad(grad.grad_request(problem, np.array([[at]]), [], [], order))


def minimize_report(text: str, start: dict[str, float], **options):
    problem = settings.load_problem(text, [], "float64")
    return minimize.minimize(problem, start, types.MinimizeSettings(**options))


def test_a_maximize_picture_is_titled_maximize_and_its_curve_is_f():
    report = minimize_report("x*exp(-x**2)", {"x": 0.5}, optimizer="newton", maximize=True)
    picture = pictures.minimize_picture(report)
    assert picture.title == "autodiff maximize: f = x*exp(-x**2)"
    loss = picture.panels[0]
    assert not loss.title.startswith("loss")
    (curve,) = loss.series
    top = float(sympy.exp(-sympy.Rational(1, 2)) / sympy.sqrt(2))  # the maximum, at 1/sqrt(2)
    # below the maximum, by decades: best f - f, falling; best f is the maximum
    assert loss.log_y and curve.label == "best f - f" and f"best f = {top:.6g}" in loss.title
    assert (curve.y > 0).all() and (np.diff(curve.y) < 0).all()
    low = pictures.minimize_picture(minimize_report("x**2", {"x": 1.0}, optimizer="newton"))
    assert low.title == "autodiff minimize: f = x**2" and low.panels[0].title.startswith("loss")


@pytest.mark.parametrize(("text", "lo"), [("log(x)", 0.0), ("sqrt(x - 1)", 1.0), ("log(x + 2)*3", -2.0)])
def test_derivatives_are_drawn_only_where_f_is_defined(text, lo):
    report = grad_report(text, lo + 1.5, 2)
    _, d_panel = pictures.grad_picture(report, (lo - 2.0, lo + 3.0)).panels
    f = sympy.sympify(text, locals={"x": X})
    for k, curve in enumerate(d_panel.series, start=1):
        outside = curve.x <= lo
        assert np.isnan(curve.y[outside]).all(), f"d{k} drawn where {text} is undefined"
        exact = sympy.lambdify(X, sympy.diff(f, X, k))
        inside = (curve.x > lo + 0.1) & np.isfinite(curve.y)
        assert inside.sum() > 100
        assert curve.y[inside] == pytest.approx(exact(curve.x[inside]), rel=2e-4, abs=1e-4)


def _segments_across(curve, poles: list[float]) -> int:
    """Drawn segments (both ends finite) that have a pole strictly between their ends."""
    x, y = curve.x, curve.y
    joined = np.isfinite(y[:-1]) & np.isfinite(y[1:])
    return sum(int((joined & (x[:-1] < p) & (x[1:] > p)).sum()) for p in poles)


@pytest.mark.parametrize(
    ("text", "poles"),
    [
        ("tan(x)", [-math.pi / 2, math.pi / 2]),
        ("tan(2*x)", [k * math.pi / 4 for k in (-3, -1, 1, 3)]),
        ("1/(x - 0.5)", [0.5]),
        ("3*tan(x - 1)", [1 - math.pi / 2, 1 + math.pi / 2]),
    ],
)
def test_no_line_is_drawn_across_a_pole(text, poles):
    report = grad_report(text, 0.1, 2)
    f_panel, d_panel = pictures.grad_picture(report, (-2.5, 2.5)).panels
    curve = next(s for s in f_panel.series if s.role == "curve")
    assert _segments_across(curve, poles) == 0
    assert _segments_across(d_panel.series[1], poles) == 0  # f'' changes sign across the pole too
    assert np.isfinite(curve.y).mean() > 0.95  # and everything else is drawn


def test_a_steep_continuous_curve_stays_joined():
    report = grad_report("1e4*x", 0.0, 1)
    f_panel, _ = pictures.grad_picture(report, (-1.0, 1.0)).panels
    curve = next(s for s in f_panel.series if s.role == "curve")
    assert np.isfinite(curve.y).all()


def test_every_newton_iterate_is_on_the_path():
    f = (X - 1) ** 4 + (X - 1) ** 2
    step = sympy.lambdify(X, X - sympy.diff(f, X) / sympy.diff(f, X, 2))
    want = [3.0]
    while abs(want[-1] - 1) > 1e-9 and len(want) < 50:
        want.append(step(want[-1]))
    report = minimize_report("(x-1)**4 + (x-1)**2", {"x": 3.0}, optimizer="newton")
    _, panel = pictures.minimize_picture(report).panels
    (path,) = [s for s in panel.series if s.role == "path"]
    assert len(path.x) >= 5  # before: the rows at steps 0 and 5 only, one segment
    assert path.x == pytest.approx(want[: len(path.x)], rel=1e-9, abs=1e-9)


def test_every_bfgs_iterate_is_on_the_path():
    report = minimize_report("(x-1)**2 + 3*(y+2)**2 + x*y", {"x": 4.0, "y": 3.0}, optimizer="bfgs")
    _, land = pictures.minimize_picture(report).panels
    (path,) = [s for s in land.series if s.role == "path"]
    assert len(path.x) == report.outcome.steps + 1 >= 3
    assert (path.x[0], path.y[0]) == (4.0, 3.0)
    # the exact minimum of the quadratic: 2(x-1) + y = 0, 6(y+2) + x = 0
    assert (path.x[-1], path.y[-1]) == pytest.approx((24 / 11, -26 / 11), abs=1e-4)


MINUS_ZERO = re.compile(r"(?<![\w.])-0(?:\.0+)?(?![\w.])")


@pytest.mark.parametrize(
    "args",
    [
        ("grad", "sin(x)", "--at", "0", "--plot", "--range", "x=-0.5:0.5"),
        ("grad", "cos(x)", "--at", "1", "--plot", "--range", "x=-0.7:0.3"),
        ("minimize", "x**2", "--opt", "newton", "--from", "0.3", "--plot"),
        ("grad", "x**3", "--at", "0", "--plot", "--range", "x=-0.1:0.1"),
    ],
)
def test_no_minus_zero_on_a_terminal_axis(args, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke(*args, "--format", "plain")
    assert result.exit_code == 0, result.stderr
    drawn = result.stderr
    assert "\u2514" in drawn  # a frame was drawn
    assert MINUS_ZERO.findall(drawn) == []
