"""``grad`` tells the truth (issue 20): --check judges each derivative on its own scale,
float32's range is named instead of printed as a wrong number, stdin holds one expression,
variables are listed in natural order.

Oracles are independent of the tape: SymPy's exact derivatives and limits, mpmath.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import error_lines, invoke, json_of


def one_error(result) -> str:
    (line,) = error_lines(result.stderr)
    return line


# ---------------------------------------------------------------- stdin (items 12, 13)


def test_two_lines_on_stdin_are_refused_not_multiplied():
    # through a real pipe, as a shell gives it: two expressions are not one product
    run = subprocess.run(
        [sys.executable, "-m", "autodiffcli", "grad", "-", "--at", "1"],
        input="x**2\nx**3\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "Error: EXPR -: stdin holds 2 lines ('x**2', 'x**3'); an expression on stdin is one line: "
        "run once per expression\n"
    )


def test_one_line_on_stdin_with_blank_lines_around_is_one_expression():
    result = invoke("grad", "-", "--at", "2", "--format", "plain", input="\n  x**3 \n\n")
    assert (result.exit_code, result.stdout) == (0, "12\n")  # 3x**2 at 2


def test_many_lines_on_stdin_for_minimize_too():
    result = invoke("minimize", "-", "--format", "plain", input="x**2\n(x-1)**2\nx**4\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert one_error(result).startswith("Error: EXPR -: stdin holds 3 lines ('x**2', '(x-1)**2', ...)")


def test_expression_and_points_cannot_both_come_from_stdin():
    result = invoke("grad", "-", "--at-file", "-", input="x**2\n1\n2\n")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "cannot both come from stdin" in one_error(result)


# ---------------------------------------------------------------- natural order (item 14)

TEN = [f"x{k}" for k in range(1, 11)]


def test_ten_variables_listed_in_natural_order_everywhere():
    import sympy

    weights = {name: k * k for k, name in enumerate(TEN, start=1)}  # df/dx_k = k**2: the column says which
    expr = " + ".join(f"{w}*{n}" for n, w in weights.items())
    exact = [sympy.diff(sympy.sympify(expr), sympy.Symbol(n)) for n in TEN]
    plain = invoke("grad", expr, "--at", "x1=1", "--format", "plain")
    assert plain.exit_code == 0, plain.stderr
    assert [float(v) for v in plain.stdout.split()] == [float(e) for e in exact]
    data = json_of(invoke("grad", expr, "--at", "x1=1", "--format", "json"), "grad")
    assert data["variables"] == TEN and list(data["results"][0]["gradient"]) == TEN
    refused = invoke("grad", expr, "--at", "x11=1")
    assert one_error(refused).endswith("(it has x1, x2, x3, x4, x5, x6, x7, x8, x9, x10)")


def test_points_file_hint_names_the_columns_in_natural_order(tmp_path):
    (tmp_path / "p.txt").write_text("2,10\n")
    result = invoke("grad", "x2**2 + x10**3", "--at-file", str(tmp_path / "p.txt"))
    assert one_error(result).endswith("the first line must name the columns (x2,x10)")


def test_minimize_plain_point_in_natural_order():
    result = invoke("minimize", "(x10 - 1)**2 + (x2 - 2)**2", "--opt", "newton", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert [float(v) for v in result.stdout.split()[:2]] == [2.0, 1.0]  # x2 = 2, then x10 = 1


# ---------------------------------------------------------------- values beyond the dtype (items 7, 11)

F32 = np.finfo(np.float32)
F64 = np.finfo(np.float64)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("grad", "x", "--at", "1e39", "--format", "json"), "--at"),
        (("grad", "x*y", "--at", "x=1,y=-4e38", "--format", "json"), "--at y"),
        (("grad", "a*x", "-p", "a=1e50", "--at", "1", "--format", "json"), "-p/--param a"),
        (("minimize", "x**2", "--from", "1e39", "--format", "json"), "--from"),
        (("minimize", "x**2", "--bounds", "x=-1e39:1e39", "--starts", "5"), "--bounds x"),
        (("grad", "sin(x)", "--at", "1", "--plot", "--range", "x=-1e39:1", "--format", "plain"), "--range"),
    ],
)
def test_a_value_beyond_float32_is_a_usage_error_naming_it(args, option):
    result = invoke(*args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1  # one line: no RuntimeWarning, no 'internal error'
    assert result.stderr.startswith(f"Error: {option}: ")
    assert f"beyond float32's range (its largest number is {float(F32.max):.7g}); use --dtype float64" in result.stderr


def test_a_value_beyond_float32_in_a_points_file_names_its_line(tmp_path):
    (tmp_path / "p.csv").write_text("x\n1\n1e39\n")
    result = invoke("grad", "x**2", "--at-file", str(tmp_path / "p.csv"), "--format", "json")
    assert (result.exit_code, result.stdout, result.stderr.count("\n")) == (2, "", 1)
    assert "line 3: x = 1e39 is beyond float32's range" in result.stderr


def test_values_just_inside_float32_are_accepted_and_float64_holds_them_all():
    big = float(F32.max) * 0.99
    data = json_of(invoke("grad", "x", "--at", repr(big), "--format", "json"), "grad")
    assert data["results"][0]["gradient"]["x"] == 1.0  # d/dx x = 1
    assert np.float32(data["results"][0]["value"]) == np.float32(big)
    wide = json_of(invoke("grad", "2*x", "--at", "1e39", "--dtype", "float64", "--format", "json"), "grad")
    assert wide["results"][0]["value"] == 2e39


@pytest.mark.parametrize(("value", "dtype"), [("1e-40", "float32"), ("-3e-39", "float32"), ("1e-310", "float64")])
def test_an_input_below_the_smallest_normal_number_is_refused_not_flushed_to_zero(value, dtype):
    # sqrt(x) at 1e-40 showed f = 0 (exact 1e-20): TensorFlow computed at x = 0
    result = invoke("grad", "sqrt(x)", "--at", value, "--dtype", dtype)
    assert (result.exit_code, result.stdout) == (2, "")
    tiny = float(np.finfo(dtype).tiny)
    assert one_error(result).startswith(f"Error: --at: {value} is below {dtype}'s smallest normal number ({tiny:.3g})")
    assert one_error(result).endswith("use --dtype float64") == (dtype == "float32")


def test_a_subnormal_float32_input_is_computed_in_float64():
    import mpmath

    data = json_of(invoke("grad", "sqrt(x)", "--at", "1e-40", "--dtype", "float64", "--format", "json"), "grad")
    exact = mpmath.sqrt(mpmath.mpf("1e-40"))
    assert data["results"][0]["value"] == pytest.approx(float(exact), rel=1e-15)


# ---------------------------------------------------------------- a bad --at-file line (item 10)


def test_every_point_before_a_bad_line_at_300001_is_written(tmp_path):
    # the real chunk sizes: the bad line is in the second chunk, 37,857 lines into it
    xs = (np.arange(300_000) % 997) / 8  # exact in float32: 2x is exact too
    (tmp_path / "p.txt").write_text("".join(f"{x}\n" for x in xs) + "oops\n")
    result = invoke("grad", "x**2", "--at-file", str(tmp_path / "p.txt"), "--format", "plain")
    assert result.stderr == f"Error: --at-file {str(tmp_path / 'p.txt')!r} line 300,001: 'oops' is not a number\n"
    assert result.exit_code == 2
    written = np.array(result.stdout.split(), dtype=float)
    assert len(written) == 300_000 and (written == 2 * xs).all()  # d/dx x**2 = 2x


@pytest.fixture
def small_chunks(monkeypatch):
    from autodiffcli import points

    monkeypatch.setattr(points, "CHUNK_LINES", 8)
    monkeypatch.setattr(points, "CHUNK_BYTES", 64)
    monkeypatch.setattr(points, "PIECE_BYTES", 16)


BAD_LINES = [
    (b"oops\n", "'oops' is not a number"),
    (b"1e39\n", "x = 1e39 is beyond float32's range"),
    (b"1,2\n", "expected 1 values (x), found 2"),
    (b"3\x004\n", "a NUL byte: this is a binary file, not text"),
    (b"\xff\n", "not a UTF-8 text file (byte 0xff)"),
    (b"1" * 70_000 + b"\n", "the line is longer than the limit of 65,536 bytes"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_LINES, ids=[m.split(":")[0][:20] for _, m in BAD_LINES])
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_every_point_before_a_bad_line_is_written_whatever_the_fault(tmp_path, small_chunks, bad, message, fmt):
    xs = np.arange(1, 30) / 4  # line 30 is bad: past the first chunk, inside a later one
    (tmp_path / "p.txt").write_bytes(b"".join(f"{x}\n".encode() for x in xs) + bad + b"5\n")
    result = invoke("grad", "x**3", "--at-file", str(tmp_path / "p.txt"), "--format", fmt)
    assert one_error(result).startswith(f"Error: --at-file {str(tmp_path / 'p.txt')!r} line 30: {message}")
    if fmt == "plain":
        assert result.exit_code == 2
        written = np.array(result.stdout.split(), dtype=float)
    else:
        data = json_of(result, "grad", exit_code=2)
        written = np.array([r["gradient"]["x"] for r in data["results"]])
    assert written.tolist() == (3 * xs**2).tolist()  # d/dx x**3 = 3x**2, exact in float32 here


def test_every_point_before_a_bad_name_value_line_is_written(tmp_path, small_chunks):
    xs = np.arange(1, 20) / 2
    (tmp_path / "p.txt").write_text("".join(f"x={x}\n" for x in xs) + "z=1\n")
    result = invoke("grad", "x**2", "--at-file", str(tmp_path / "p.txt"), "--format", "plain")
    assert result.exit_code == 2 and "line 20: 'z' is not a variable" in one_error(result)
    assert np.array(result.stdout.split(), dtype=float).tolist() == (2 * xs).tolist()


def test_too_many_lines_keeps_every_line_within_the_limit(tmp_path, small_chunks):
    xs = np.arange(1, 41) / 4
    (tmp_path / "p.txt").write_text("".join(f"{x}\n" for x in xs))
    result = invoke("grad", "x**2", "--at-file", str(tmp_path / "p.txt"), "--max-lines", "27", "--format", "plain")
    assert one_error(result).endswith("line 28: more than the limit of 27 lines (--max-lines)")
    assert np.array(result.stdout.split(), dtype=float).tolist() == (2 * xs[:27]).tolist()


# ---------------------------------------------------------------- --check on each derivative's scale (items 5, 6)


def check_json(*args: str, code: int = 0) -> dict:
    return json_of(invoke("grad", "--check", "--format", "json", *args), "grad", code)


def held(value: float, dtype: str = "float32"):
    import mpmath

    return mpmath.mpf(float(np.dtype(dtype).type(value)))  # the point the tape saw


@pytest.mark.parametrize("big", ["1e8", "1e12", "3e5"])
def test_a_wrong_small_derivative_beside_a_large_one_fails(big):
    """df/dy of (exp(y)-1-y)/y**2 at 0.001 is 0.16675 (mpmath); float32's tape gives tens
    by cancellation. Normwise, df/dx = 1e8 hid it: 'ok', exit 0."""
    import mpmath

    mpmath.mp.dps = 40
    result = invoke("grad", f"{big}*x + (exp(y)-1-y)/y**2", "--at", "x=1,y=0.001", "--check", "--format", "json")
    data = json_of(result, "grad", 1)
    y = held(0.001)
    exact = (mpmath.exp(y) - 1) / y**2 - 2 * (mpmath.exp(y) - 1 - y) / y**3
    entry = data["results"][0]["check"]["gradient"]["y"]
    assert entry["exact"] == pytest.approx(float(exact), rel=1e-15)
    tape = held(entry["tape"])
    assert entry["tape_error"] == pytest.approx(float(abs(tape - exact) / abs(exact)), rel=1e-2)
    assert entry["tape_error"] > 10 and data["results"][0]["check"]["ok"] is False
    assert one_error(result).startswith("Error: --check: at x=1.0,y=0.001 the tape's df/dy is off by ")


def test_a_right_small_derivative_beside_a_large_one_passes_on_its_own_scale():
    import mpmath

    data = check_json("1e8*x**2 + sin(y)", "--at", "x=3,y=1.3", "--order", "2")
    check = data["results"][0]["check"]
    exact = {"x": 2e8 * held(3), "y": mpmath.cos(held(1.3))}
    for name, value in exact.items():
        tape = held(check["gradient"][name]["tape"])
        assert check["gradient"][name]["tape_error"] == pytest.approx(float(abs(tape - value) / abs(value)), rel=1e-2)
    assert check["hessian"]["x"]["y"]["exact"] == 0.0 and check["hessian"]["x"]["y"]["tape_error"] == 0.0
    assert check["ok"] is True


@pytest.mark.parametrize(
    ("expr", "at", "order"),
    [("exp(-x)", "88", 1), ("exp(-x)", "100", 1), ("erfc(x)", "9.5", 2), ("erfc(x)", "10", 2)],
)
def test_a_subnormal_exact_value_passes_as_the_readme_says(expr, at, order):
    """exp(-88) = 6.05e-39 (mpmath) is below float32's smallest normal number 1.18e-38:
    TensorFlow flushes it (and intermediates like it) to 0, which is as near as float32's
    relative precision goes there. The check failed these correct tapes, exit 1."""
    import mpmath
    import sympy

    mpmath.mp.dps = 40
    x = sympy.Symbol("x")
    f = sympy.sympify(expr)
    data = check_json(expr, "--at", at, "--order", str(order))
    check = data["results"][0]["check"]
    exact = [sympy.diff(f, x, k).evalf(40, subs={x: sympy.Float(at, 40)}) for k in (1, 2)]
    assert abs(exact[order - 1]) < np.finfo(np.float32).tiny * 2  # the oracle: in float32's underflow zone
    assert check["gradient"]["x"]["exact"] == pytest.approx(float(exact[0]), rel=1e-15)
    if order == 2:
        assert check["hessian"]["x"]["x"]["exact"] == pytest.approx(float(exact[1]), rel=1e-15)
    assert check["ok"] is True and data["warnings"] == []
    # a normal number is still measured on its own: float64 holds these to its last places
    wide = check_json(expr, "--at", at, "--order", str(order), "--dtype", "float64")["results"][0]["check"]
    assert wide["gradient"]["x"]["tape"] == pytest.approx(float(exact[0]), rel=1e-13)


SINC = {"sinc(x)": "sin(x)/x", "sinc(2*x)": "sin(2*x)/(2*x)", "3*sinc(x/4)": "3*sin(x/4)/(x/4)"}


@pytest.mark.parametrize("expr", list(SINC))
def test_the_check_takes_the_limit_at_a_removable_singularity(expr):
    """sinc'(x) = cos(x)/x - sin(x)/x**2 is 0/0 at 0; the check said 'no derivative has a
    finite exact value'. Oracle: sympy.limit of the derivative of sin(u)/u."""
    import sympy

    x = sympy.Symbol("x")
    plain = sympy.sympify(SINC[expr], locals={"x": x})
    want = [sympy.limit(sympy.diff(plain, x, k), x, 0) for k in (1, 2)]
    data = check_json(expr, "--at", "0", "--order", "4")
    check = data["results"][0]["check"]
    assert check["gradient"]["x"]["exact"] == float(want[0]) == 0.0
    assert check["hessian"]["x"]["x"]["exact"] == pytest.approx(float(want[1]), rel=1e-15)
    assert check["hessian"]["x"]["x"]["tape_error"] <= check["tolerance"] and check["ok"] is True


def test_no_limit_where_f_itself_is_undefined_or_jumps():
    # sin(x)/x is 0/0 at 0 itself: no derivative there to check; sign's derivative is a delta
    data = check_json("sin(x)/x", "--at", "0", "--order", "2", code=1)
    assert data["results"][0]["check"]["gradient"]["x"]["exact"] is None
    data = check_json("sign(x) + y", "--at", "x=0,y=1")
    assert data["results"][0]["check"]["gradient"]["x"]["exact"] is None


# ---------------------------------------------------------------- numbers float32 lost (item 7)


@pytest.mark.parametrize("scale", ["1e20", "3e25", "1e-25"])
def test_a_derivative_lost_to_under_or_overflow_is_null_and_named(scale):
    """hypot(x, y) at x = y = 1e20: x**2 = 1e40 is beyond float32, so the tape's gradient
    came out 0, 0 (exact: 1/sqrt(2) each, mpmath) and the Hessian 0: a confident wrong
    answer, 'degenerate'. At 1e-25, x**2 = 1e-50 is flushed to 0 instead."""
    import mpmath

    mpmath.mp.dps = 30
    result = invoke("grad", "hypot(x,y)", "--at", f"x={scale},y={scale}", "--order", "2", "--format", "json")
    data = json_of(result, "grad", 1)
    item = data["results"][0]
    assert item["value"] is None
    assert item["gradient"] == {"x": None, "y": None}
    assert all(v is None for row in item["hessian"].values() for v in row.values())
    assert item["verdict"] != "degenerate"
    (warning,) = data["warnings"]
    x = mpmath.mpf(float(scale))  # the point as float64 holds it
    said = re.search(r"x\*\*2 is (\S+), (beyond|below)", warning)
    assert said and float(said.group(1)) == pytest.approx(float(x * x), rel=1e-15)
    said = re.search(r"float64 gives f = (\S+)\)", warning)
    assert said and float(said.group(1)) == pytest.approx(float(mpmath.sqrt(2) * x), rel=1e-15)
    assert warning.endswith("use --dtype float64")
    # float64 holds every intermediate: the oracle's values
    wide = json_of(
        invoke("grad", "hypot(x,y)", "--at", f"x={scale},y={scale}", "--dtype", "float64", "--format", "json"), "grad"
    )
    assert wide["results"][0]["gradient"]["x"] == pytest.approx(float(1 / mpmath.sqrt(2)), rel=1e-15)


def test_a_second_derivative_lost_to_an_underflowed_intermediate_is_not_printed():
    """3*exp(-x**2)'' at 9.4 = 3*(4x**2 - 2)*exp(-x**2) = 4.45e-36 (SymPy), a normal float32
    number; exp(-88.36) = 4.2e-39 is not, and TensorFlow flushes it: the tape said 0."""
    import sympy

    x = sympy.Symbol("x")
    exact = sympy.diff(3 * sympy.exp(-(x**2)), x, 2).evalf(30, subs={x: sympy.Float("9.4", 30)})
    assert abs(exact) > 256 * np.finfo(np.float32).tiny  # the oracle: float32 holds it
    result = invoke("grad", "3*exp(-x**2)", "--at", "9.4", "--order", "2", "--format", "json")
    data = json_of(result, "grad", 1)
    assert data["results"][0]["hessian"]["x"]["x"] is None and data["results"][0]["derivatives"][1] is None
    (warning,) = data["warnings"]
    assert warning.startswith("float32 lost d2f/dxdx at x=9.4 to under- or overflow: exp(-x**2) is 4.22")
    assert "below float32's smallest normal number" in warning


def test_exact_zeros_and_flushed_subnormals_stay_numbers():
    data = json_of(invoke("grad", "x**2*y", "--at", "x=0,y=3", "--order", "2", "--format", "json"), "grad")
    assert data["results"][0]["gradient"] == {"x": 0.0, "y": 0.0}  # 2xy and x**2 at x = 0: exactly 0
    # exp(-88) = 6e-39 is below float32's normal range: 0 is as close as float32 gets
    data = json_of(invoke("grad", "exp(-x)", "--at", "88", "--format", "json"), "grad")
    assert data["results"][0]["gradient"]["x"] == 0.0 and data["warnings"] == []


def test_an_intermediate_overflow_names_the_intermediate_not_f():
    import mpmath

    result = invoke("grad", "sqrt(x**2 + 1)", "--at", "2e19", "--format", "plain")
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "x**2 is 4e+38, beyond float32's range" in line
    said = re.search(r"float64 gives f = (\S+)\)", line)
    assert said and float(said.group(1)) == pytest.approx(float(mpmath.sqrt(mpmath.mpf("4e38") + 1)), rel=1e-15)


def test_a_derivative_beyond_float32_says_so_with_float64s_value():
    # d/dx 1/x at 1e-37 is -1e74 (SymPy): float32 ends at 3.4e38
    import sympy

    x = sympy.Symbol("x")
    exact = float(sympy.diff(1 / x, x).subs(x, sympy.Float(float(np.float64(1e-37)), 30)))
    data = json_of(invoke("grad", "1/x", "--at", "1e-37", "--format", "json"), "grad", 1)
    assert data["results"][0]["gradient"]["x"] is None
    (warning,) = data["warnings"]
    assert "df/dx is beyond float32's range" in warning
    said = re.search(r"float64 gives df/dx = (\S+)\)", warning)
    assert said and float(said.group(1)) == pytest.approx(exact, rel=1e-15)


def test_the_limit_over_several_variables_and_none_where_the_two_orders_disagree():
    """d/dx sinc(x)*sinc(y) at (0, 0): 0; d2/dx2: -1/3 (sympy.limit of sin(u)/u's, times
    sinc(0) = 1). hypot's df/dx = x/sqrt(x**2 + y**2) at (0, 0) is 0 with x held at 0
    first and has no limit the other way: no exact value, nothing checked."""
    import sympy

    u = sympy.Symbol("u")
    second = sympy.limit(sympy.diff(sympy.sin(u) / u, u, 2), u, 0)
    data = check_json("sinc(x)*sinc(y)", "--at", "x=0,y=0", "--order", "2")
    check = data["results"][0]["check"]
    assert check["gradient"]["x"]["exact"] == 0.0 and check["gradient"]["y"]["exact"] == 0.0
    assert check["hessian"]["x"]["x"]["exact"] == pytest.approx(float(second), rel=1e-15)
    assert check["hessian"]["x"]["y"]["exact"] == 0.0 and check["ok"] is True
    cone = check_json("hypot(x,y)", "--at", "x=0,y=0", code=1)["results"][0]["check"]
    assert cone["gradient"]["x"]["exact"] is None and cone["gradient"]["y"]["exact"] is None


@pytest.mark.parametrize(
    "text, at, dtype",
    [
        ("tan(x)", "1.5707", "float32"),
        ("1/x", "1e-8", "float64"),
        ("log(x)", "1e-5", "float32"),
        ("sqrt(x)", "1e-9", "float64"),
    ],
)
def test_a_point_near_a_pole_is_not_stationary(text, at, dtype):
    """Near a pole the gradient is huge and Newton's step short only because the curvature is
    huger: the verdict read degenerate (exit 0). SymPy: none of these has a stationary point
    (f' = sec^2, -1/x^2, 1/x, 1/(2 sqrt(x)) never vanish)."""
    import sympy

    x = sympy.Symbol("x", positive=True)
    assert not sympy.solve(sympy.diff(sympy.sympify(text, locals={"x": x}), x), x)
    data = json_of(invoke("grad", text, "--at", at, "--order", "2", "--dtype", dtype, "--format", "json"), "grad")
    assert data["results"][0]["verdict"] == "not stationary"


def test_a_verdict_over_the_wrt_names_says_so_in_the_table(monkeypatch):
    """x**2 - y**2 at 0 is a saddle (Hessian diag(2, -2), by hand); over x alone the test says
    minimum, and the table showed that as the point's verdict."""
    monkeypatch.setenv("COLUMNS", "120")
    full = invoke("grad", "x**2 - y**2", "--at", "x=0,y=0", "--order", "2", "--format", "table").stdout
    part = invoke("grad", "x**2 - y**2", "--at", "x=0,y=0", "--order", "2", "--wrt", "x", "--format", "table").stdout
    (row,) = [line for line in full.splitlines() if "verdict" in line]
    assert "saddle" in row and "only" not in row
    (row,) = [line for line in part.splitlines() if "verdict" in line]
    assert "second-order test over x only" in row and "minimum" in row
