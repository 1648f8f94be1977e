"""`autodiff grad --check`: the tape against exact derivatives (mpmath, written out here by
hand, not SymPy's) and a finite difference; a failing check exits 1 with one line."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from autodiffcli import settings
from autodiffcli.calculus.derivatives import derivatives
from autodiffcli.calculus.gradcheck import MAX_CHECKED, Checker, tolerance
from autodiffcli.calculus.tf_build import TFFunction

from conftest import error_lines, invoke, json_of

mpmath.mp.dps = 50


def check_json(*args: str, code: int = 0) -> dict:
    return json_of(invoke("grad", "--check", "--format", "json", *args), "grad", code)


def _f32(v: float) -> mpmath.mpf:
    return mpmath.mpf(float(np.float32(v)))  # the point the float32 tape saw


def test_exact_values_and_errors_agree_with_mpmath_and_the_tape_beats_finite_differences():
    data = check_json("exp(x)*log(1+y**2)", "--at", "x=2.5,y=3", "--at", "x=-1.3,y=0.2", "--order", "2")
    for (px, py), item in zip([(2.5, 3.0), (-1.3, 0.2)], data["results"], strict=True):  # one result per point
        x, y = _f32(px), _f32(py)
        assert (item["point"]["x"], item["point"]["y"]) == pytest.approx((float(x), float(y)), rel=1e-7)
        exact = {
            "x": mpmath.exp(x) * mpmath.log(1 + y**2),
            "y": mpmath.exp(x) * 2 * y / (1 + y**2),
        }
        hessian = {
            ("x", "x"): exact["x"],
            ("x", "y"): exact["y"],
            ("y", "x"): exact["y"],
            ("y", "y"): mpmath.exp(x) * 2 * (1 - y**2) / (1 + y**2) ** 2,
        }
        check = item["check"]
        for name, value in exact.items():
            got = check["gradient"][name]
            assert got["exact"] == pytest.approx(float(value), rel=1e-15)
            assert got["tape"] == item["gradient"][name]
            tape = mpmath.mpf(float(np.float32(got["tape"])))  # JSON shows float32's shortest digits
            # each derivative on its own scale
            assert got["tape_error"] == pytest.approx(float(abs(tape - value) / abs(value)), rel=1e-2, abs=1e-12)
            assert got["tape_error"] <= tolerance("float32")
        for (a, b), value in hessian.items():
            assert check["hessian"][a][b]["exact"] == pytest.approx(float(value), rel=1e-15)
        assert check["ok"] is True and check["tolerance"] == tolerance("float32")
        entries = [*check["gradient"].values(), *(e for row in check["hessian"].values() for e in row.values())]
        # why autodiff: the finite difference loses digits the tape keeps
        assert max(e["fd_error"] for e in entries) > 10 * max(e["tape_error"] for e in entries)
    assert data["warnings"] == []


def test_float64_tape_is_within_a_few_ulps():
    data = check_json("sin(x)*x**3 + atan(x)", "--at", "0.7", "--dtype", "float64")
    got = data["results"][0]["check"]["gradient"]["x"]
    x = mpmath.mpf(0.7)
    exact = mpmath.cos(x) * x**3 + 3 * x**2 * mpmath.sin(x) + 1 / (1 + x**2)
    assert got["exact"] == pytest.approx(float(exact), rel=1e-16)
    assert got["tape_error"] <= 4 * np.finfo(np.float64).eps
    assert 1e-13 < got["fd_error"] < 1e-7


def test_cancellation_in_float32_fails_the_check_with_one_line_and_exit_1():
    result = invoke("grad", "(exp(x)-1-x)/x**2", "--at", "0.001", "--check", "--format", "json")
    data = json_of(result, "grad", 1)
    check = data["results"][0]["check"]
    x = _f32(0.001)
    exact = (mpmath.exp(x) - 1) / x**2 - 2 * (mpmath.exp(x) - 1 - x) / x**3
    assert check["gradient"]["x"]["exact"] == pytest.approx(float(exact), rel=1e-15)
    assert check["ok"] is False and check["gradient"]["x"]["tape_error"] > 1
    (line,) = error_lines(result.stderr)
    assert line.startswith("Error: --check: at x=0.001 the tape's df/dx is off by ")
    assert line.endswith("more than float32 allows (3.1e-05); try --dtype float64")
    assert data["warnings"] == [line.removeprefix("Error: ")]


def test_a_wrong_tape_value_fails_the_check():
    """The check itself can fail: the tape's own results, one entry nudged by 1e-3."""
    problem = settings.load_problem("x**2*y + sin(x*y)", (), "float32")
    f = TFFunction(problem.expr, problem.dtype)
    points = np.array([[1.0, 2.0]])
    result = derivatives(f, points, problem.variables, problem.params, problem.variables, (), 2)
    checker = Checker(f, problem.variables, problem.params, problem.variables, 2)
    assert checker.check(points, result)[0].ok
    result.hessian["x"]["y"] = result.hessian["x"]["y"] * (1 + 1e-3)
    (check,) = checker.check(points, result)
    assert not check.ok and check.worst[0] == "d2f/dxdy"


def test_no_finite_exact_value_is_null_not_a_failure():
    data = check_json("sqrt(x) + y", "--at", "x=0,y=1", code=1)  # exit 1 for the infinite derivative itself
    got = data["results"][0]["check"]["gradient"]
    assert got["x"]["exact"] is None and got["x"]["tape_error"] is None
    assert got["y"]["exact"] == 1.0 and got["y"]["tape_error"] == 0.0
    assert data["results"][0]["check"]["ok"] is True
    assert not any("--check" in w for w in data["warnings"])


def test_table_shows_a_check_per_point():
    result = invoke("grad", "x**3", "--at", "1", "--at", "2", "--check", "--format", "table")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "check at x=1.0" in out and "check at x=2.0" in out
    assert out.count("ok: every tape error <= 3.1e-05 (float32)") == 2
    assert "finite diff" in out and "fd err" in out


def test_too_many_points_are_refused(tmp_path):
    (tmp_path / "p.csv").write_text("x\n" + "1\n" * (MAX_CHECKED + 1))
    result = invoke("grad", "x**2", "--at-file", str(tmp_path / "p.csv"), "--check", "--format", "plain")
    assert result.exit_code == 2
    assert error_lines(result.stderr) == [
        f"Error: --check: at most {MAX_CHECKED:,} points (each is evaluated to 40 digits); check a sample of the file"
    ]


def test_a_derivative_below_the_dtypes_smallest_normal_number_is_not_a_failure():
    """erf'(20) = 2 exp(-400)/sqrt(pi) = 2.2e-174 (mpmath): float32 holds it as 0, exactly
    its correctly rounded value, and float64 holds it to the last place. Relative to the
    exact value the float32 tape was 'off by 1.0', exit 1; but where float32 has no
    relative precision at all, the check compares with its smallest normal number. A slope
    float32 does hold (erf'(3), 1.4e-4) is still checked relative to itself."""
    slope = 2 * mpmath.exp(-400) / mpmath.sqrt(mpmath.pi)
    assert float(np.float32(float(slope))) == 0.0  # the oracle: no float32 but 0 is closer
    data = check_json("erf(x)", "--at", "20")
    (item,) = data["results"]
    entry = item["check"]["gradient"]["x"]
    assert entry["tape"] == 0.0 and entry["exact"] == pytest.approx(float(slope), rel=1e-15)
    assert entry["tape_error"] <= tolerance("float32") and item["check"]["ok"] is True
    wide = check_json("erf(x)", "--at", "20", "--dtype", "float64")["results"][0]["check"]["gradient"]["x"]
    assert wide["tape"] == pytest.approx(float(slope), rel=1e-14)
    # a slope float32 holds is still measured relative to itself: erf'(3) = 1.4e-4
    at3 = check_json("erf(x)", "--at", "3")["results"][0]["check"]["gradient"]["x"]
    want = 2 * mpmath.exp(-9) / mpmath.sqrt(mpmath.pi)
    assert at3["exact"] == pytest.approx(float(want), rel=1e-15)
    tape = mpmath.mpf(float(np.float32(at3["tape"])))
    assert at3["tape_error"] == pytest.approx(float(abs(tape - want) / want), rel=1e-2, abs=1e-12)


def test_a_derivative_without_an_exact_value_is_not_said_to_pass():
    """SymPy: d/dx sign(x) = 2*DiracDelta(x) and (abs(x))'' = 2*DiracDelta(x), no number at 0.
    The table's caption said 'ok: every tape error <= 3.1e-05' there, as if the tape's 0 had
    been checked."""
    import sympy

    x = sympy.Symbol("x", real=True)
    for e in (sympy.diff(sympy.sign(x), x), sympy.diff(sympy.Abs(x), x, 2)):
        assert not sympy.N(e.subs(x, 0)).is_Number  # the oracle: no number at 0 (DiracDelta(0))
    table = invoke("grad", "sign(x)", "--at", "0", "--check", "--format", "table")
    assert table.exit_code == 0, table.stderr
    caption = " ".join(table.stdout.split())
    assert "nothing checked: no derivative has a finite exact value here (float32)" in caption
    assert "ok: every tape error" not in caption
    table = invoke("grad", "abs(x)", "--at", "0", "--order", "2", "--check", "--format", "table")
    caption = " ".join(table.stdout.split())
    assert "ok: every tape error <= 3.1e-05 (float32); not checked (no finite exact value): d2f/dxdx" in caption
    # JSON: ok is null, not true (a script reads true as a pass), and a run that checked
    # nothing is not a failed check: exit 0, as documented
    check = check_json("sign(x)", "--at", "0")["results"][0]["check"]
    assert check["gradient"]["x"]["exact"] is None and check["ok"] is None and check["not_checked"] == ["df/dx"]
    check = check_json("abs(x)", "--at", "0", "--order", "2")["results"][0]["check"]
    assert check["ok"] is True and check["not_checked"] == ["d2f/dxdx"]
    check = check_json("sign(x)", "--at", "1")["results"][0]["check"]  # DiracDelta(1) = 0: checked
    assert check["gradient"]["x"]["exact"] == 0.0 and check["ok"] is True and check["not_checked"] == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_exact_value_is_of_the_function_the_tape_computes_with_its_numbers(dtype):
    """(x - 0.3)**2 + (y - 0.7)**2 at (0.3, 0.7): the tape holds 0.3 and 0.7 as the dtype
    does, the point too, and its slope there is 0, exactly that function's slope (mpmath,
    below). The check took 3/10 and 7/10 exactly (a slope of 1e-17 in float64, 1e-8 in
    float32) and evaluated 2*x - 3/5 by cancellation to a bare 8e-174: 'off by 1.0',
    exit 1, in both dtypes."""
    held = {n: mpmath.mpf(float(np.dtype(dtype).type(v))) for n, v in (("x", 0.3), ("y", 0.7))}
    assert 2 * (held["x"] - held["x"]) == 0 and 2 * (held["x"] - mpmath.mpf(3) / 10) != 0
    data = check_json("(x-0.3)**2 + (y-0.7)**2", "--at", "x=0.3,y=0.7", "--order", "2", "--dtype", dtype)
    check = data["results"][0]["check"]
    assert {n: (e["tape"], e["exact"], e["tape_error"]) for n, e in check["gradient"].items()} == {
        "x": (0.0, 0.0, 0.0),
        "y": (0.0, 0.0, 0.0),
    }
    assert check["ok"] is True and data["warnings"] == []
    # away from the minimum: 3*(x - c)**2 with c and x as the dtype holds them
    (item,) = check_json("(x-0.1)**3", "--at", "0.35", "--dtype", dtype)["results"]
    x, c = (mpmath.mpf(float(np.dtype(dtype).type(v))) for v in (0.35, 0.1))
    assert item["check"]["gradient"]["x"]["exact"] == pytest.approx(float(3 * (x - c) ** 2), rel=1e-15)
    assert item["check"]["ok"] is True


def test_check_with_a_points_file_and_plain_output(tmp_path):
    """--check reads --at-file's points like --at's: plain prints each point's gradient (mpmath's
    exact values, to float32), exit 0; a point where the tape fails float32 exits 1 in one line."""
    points = tmp_path / "points.csv"
    points.write_text("x,y\n2.5,3\n-1.3,0.2\n")
    result = invoke("grad", "exp(x)*log(1+y**2)", "--at-file", str(points), "--check", "--format", "plain")
    assert (result.exit_code, result.stderr) == (0, "")
    rows = [[float(v) for v in line.split()] for line in result.stdout.splitlines()]
    for (px, py), row in zip([(2.5, 3.0), (-1.3, 0.2)], rows, strict=True):
        x, y = _f32(px), _f32(py)
        exact = [mpmath.exp(x) * mpmath.log(1 + y**2), mpmath.exp(x) * 2 * y / (1 + y**2)]
        scale = float(max(abs(e) for e in exact))  # normwise, as --check measures: 256 float32 eps
        assert row == pytest.approx([float(e) for e in exact], rel=0, abs=3.1e-5 * scale)
    failing = tmp_path / "near-zero.csv"
    failing.write_text("x\n1\n0.001\n")  # (exp(x)-1-x)/x**2 cancels near 0 in float32
    bad = invoke("grad", "(exp(x)-1-x)/x**2", "--at-file", str(failing), "--check", "--format", "plain")
    assert bad.exit_code == 1
    (line,) = error_lines(bad.stderr)
    assert line.startswith("Error: --check: at x=0.001 the tape's df/dx is off by ")
    assert line.endswith("more than float32 allows (3.1e-05); try --dtype float64")
    assert len(bad.stdout.splitlines()) == 2  # both points' gradients are still printed
