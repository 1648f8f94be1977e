"""``grad --at-file``: every format, mixing with --at, every error path (word for word,
with its line number and exit 2), and streaming in chunks (order, partial output).

Results are checked against the derivatives worked out by hand: for f = x**2*y,
df/dx = 2xy and df/dy = x**2.
"""

from __future__ import annotations

import numpy as np
import pytest

from autodiffcli import points

from conftest import invoke, json_of

F = "x**2*y"


def by_hand(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.column_stack([2 * x * y, x**2])


def plain_rows(stdout: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in stdout.splitlines()])


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # messages name the file as given: points.csv


def grad_file(tmp_path, text: str | bytes, *args: str, expr: str = F, name: str = "points.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return invoke("grad", expr, "--at-file", name, *args)


def refused(result, message: str) -> None:
    """Exit 2, nothing on stdout, and exactly one line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


# ---------------------------------------------------------------- the formats


def test_csv_with_header_in_any_column_order(tmp_path):
    result = grad_file(tmp_path, "y,x\n2,1\n0,-3\n-1.5,0.5\n", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    x, y = np.array([1, -3, 0.5]), np.array([2, 0, -1.5])
    assert plain_rows(result.stdout).tolist() == by_hand(x, y).tolist()


def test_csv_column_left_out_is_zero(tmp_path):
    data = json_of(grad_file(tmp_path, "x\n3\n", "--format", "json"), "grad")
    assert data["results"][0]["point"] == {"x": 3.0, "y": 0.0}
    assert data["results"][0]["gradient"] == {"x": 0.0, "y": 9.0}


def test_csv_tolerates_blank_lines_spaces_crlf_and_a_byte_order_mark(tmp_path):
    text = "\ufeff x , y \r\n\r\n 1 , 2 \r\n   \r\n3,4\r\n\n"
    result = grad_file(tmp_path, text.encode("utf-8"), "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert plain_rows(result.stdout).tolist() == by_hand(np.array([1, 3]), np.array([2, 4])).tolist()


def test_bare_numbers_for_one_variable(tmp_path):
    result = grad_file(tmp_path, "0\n1.5\n\n-2\n1e1\n", "--format", "plain", expr="x**3")
    assert result.exit_code == 0, result.stderr
    assert [float(v) for v in result.stdout.split()] == [0.0, 6.75, 12.0, 300.0]  # 3x**2


def test_name_value_lines_with_constant_expressions(tmp_path):
    result = grad_file(tmp_path, "x=1,y=2\ny=5\n\nx=pi/2, y=-1\n", "--format", "json", "--dtype", "float64")
    assert result.exit_code == 0, result.stderr
    got = [r["gradient"] for r in json_of(result, "grad")["results"]]
    x, y = np.array([1, 0, np.pi / 2]), np.array([2, 5, -1])
    assert [v for g in got for v in (g["x"], g["y"])] == pytest.approx(by_hand(x, y).ravel(), rel=1e-15)


def test_name_value_file_may_hold_bare_numbers_for_one_variable(tmp_path):
    result = grad_file(tmp_path, "x=2\n3\n", "--format", "plain", expr="x**2")
    assert result.stdout.split() == ["4", "6"]


def test_stdin_with_every_format():
    for text in ("x,y\n1,2\n3,4\n", "x=1,y=2\nx=3,y=4\n"):
        result = invoke("grad", F, "--at-file", "-", "--format", "plain", input=text)
        assert result.exit_code == 0, result.stderr
        assert plain_rows(result.stdout).tolist() == by_hand(np.array([1, 3]), np.array([2, 4])).tolist()
    bare = invoke("grad", "x**2", "--at-file", "-", "--format", "plain", input="1\n2\n")
    assert bare.stdout.split() == ["2", "4"]


def test_at_points_come_first_then_the_file_in_order(tmp_path):
    result = grad_file(tmp_path, "x,y\n1,2\n3,4\n", "--at", "x=5,y=1", "--at", "y=7", "--format", "json")
    assert result.exit_code == 0, result.stderr
    pts = [r["point"] for r in json_of(result, "grad")["results"]]
    assert pts == [{"x": 5.0, "y": 1.0}, {"x": 0.0, "y": 7.0}, {"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


def test_table_shows_the_first_points_and_counts_the_rest(tmp_path):
    text = "x\n" + "".join(f"{i}\n" for i in range(20))
    result = grad_file(tmp_path, text, "--format", "table", expr="x**2")
    assert result.exit_code == 0, result.stderr
    assert "x=7.0" in result.stdout and "x=8.0" not in result.stdout
    assert result.stdout.splitlines()[-1] == "... and 12 more points (use --format json or plain for all)"


# ---------------------------------------------------------------- streaming in chunks


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 lines read 5 bytes at a time: every boundary gets crossed."""
    monkeypatch.setattr(points, "CHUNK_LINES", 7)
    monkeypatch.setattr(points, "PIECE_BYTES", 5)


def _random_points(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(7)
    x, y = rng.integers(-50, 50, n), rng.integers(-50, 50, n)
    return x, y, "x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y, strict=True))


def test_chunks_keep_input_order_in_every_format(tmp_path, small_chunks):
    x, y, text = _random_points(100)
    plain = grad_file(tmp_path, text, "--at", "x=1,y=1", "--format", "plain", "--dtype", "float64")
    assert plain.exit_code == 0, plain.stderr
    expected = by_hand(np.r_[1, x], np.r_[1, y])
    assert plain_rows(plain.stdout).tolist() == expected.tolist()
    data = json_of(grad_file(tmp_path, text, "--format", "json", "--dtype", "float64"), "grad")
    assert [[r["gradient"]["x"], r["gradient"]["y"]] for r in data["results"]] == expected[1:].tolist()
    assert data["warnings"] == [] and "error" not in data


def test_name_value_lines_in_chunks(tmp_path, small_chunks):
    x, y, _ = _random_points(30)
    text = "".join(f"x={a},y={b}\n\n" for a, b in zip(x, y, strict=True))
    result = grad_file(tmp_path, text, "--format", "plain")
    assert plain_rows(result.stdout).tolist() == by_hand(x, y).tolist()


def test_a_bad_line_late_in_the_file_keeps_the_plain_lines_written(tmp_path, small_chunks):
    x, y, text = _random_points(40)
    lines = text.splitlines(keepends=True)
    lines[31] = "1,oops\n"  # line 32 of the file, in the fifth chunk
    result = grad_file(tmp_path, "".join(lines), "--format", "plain")
    assert result.exit_code == 2
    assert result.stderr == "Error: --at-file 'points.csv' line 32: 'oops' is not a number\n"
    # every line before the bad one: lines 2 to 31 of the file, the 30 first points
    assert plain_rows(result.stdout).tolist() == by_hand(x, y)[:30].tolist()


def test_a_bad_line_late_in_the_file_still_ends_the_json_document(tmp_path, small_chunks):
    x, y, text = _random_points(40)
    result = grad_file(tmp_path, text + "1,2,3\n", "--format", "json")
    message = "--at-file 'points.csv' line 42: expected 2 values (x,y), found 3"
    assert result.stderr == f"Error: {message}\n"
    data = json_of(result, "grad", exit_code=2)
    assert data["error"] == message
    got = [[r["gradient"]["x"], r["gradient"]["y"]] for r in data["results"]]
    assert got == by_hand(x, y).tolist()  # all 40 points before the bad line
    assert data["symbolic"]["gradient"] == {"x": "2*x*y", "y": "x**2"}


def test_a_bad_first_chunk_writes_nothing(tmp_path):
    result = grad_file(tmp_path, "x,y\n1,2\n3,zz\n", "--at", "x=1", "--format", "json")
    refused(result, "--at-file 'points.csv' line 3: 'zz' is not a number")


def test_numeric_faults_are_gathered_across_chunks(tmp_path, small_chunks):
    text = "x\n" + "1\n" * 10 + "-1\n" * 9  # log(x) at -1: nine faults, in two chunks
    result = grad_file(tmp_path, text, "--format", "json", expr="log(x)")
    data = json_of(result, "grad", exit_code=1)
    assert len(data["results"]) == 19
    assert len(data["warnings"]) == 6 and data["warnings"][-1] == "9 points in all have non-finite results"
    assert data["warnings"][0].startswith("domain error: log of a negative number")


# ---------------------------------------------------------------- every error path, word for word

ERRORS = [
    ("x,z\n1,2\n", "line 1: column 'z' is not a variable of the expression (it has x, y)"),
    ("x,x\n1,2\n", "line 1: column 'x' is named twice"),
    ("1,2\n", "line 1: the first line must name the columns (x,y)"),
    ("x,y\n1,2\n3,4,5\n", "line 3: expected 2 values (x,y), found 3"),
    ("x,y\n1,2\n3\n", "line 3: expected 2 values (x,y), found 1"),
    ("x,y\n1,2\n\n3,abc\n", "line 4: 'abc' is not a number"),
    ("x,y\n1,2\n3,\n", "line 3: no value for y"),
    ("x,y\n1,2\nnan,1\n", "line 3: 'nan' is not a finite number"),
    ("x,y\n1,-inf\n", "line 2: '-inf' is not a finite number"),
    ("x,y\n1,0x10\n", "line 2: '0x10' is not a number"),
    ("x=1\n\nz=2\n", "line 3: 'z' is not a variable of the expression (it has x, y)"),
    ("x=1\nx=\n", "line 2: expected NAME=VALUE, got 'x='"),
    ("x=1\n1,2\n", "line 2: '1,2' gives no names, but the expression has variables x, y; write x=...,y=..."),
    ("x=1,x=2\n", "line 1: 'x' is given twice"),
    ("x=abc\n", "line 1, x: 'abc' is not a number"),
    ("x=1\n2x=3\n", "line 2: '2x' is not a name"),
    (b"x,y\n1,2\n3,\x004\n", "line 3: a NUL byte: this is a binary file, not text"),
    (b"x,y\n1,2\n\xff\xfe\n", "line 3: not a UTF-8 text file (byte 0xff)"),
    (b"x,y\n1,2\n3,\xc3\n", "line 3: not a UTF-8 text file (byte 0xc3)"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_a_bad_line_is_named_with_its_number(tmp_path, text, message):
    refused(grad_file(tmp_path, text, "--format", "plain"), f"--at-file 'points.csv' {message}")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "x,y\n", "x,y\n\n\n"])
def test_a_file_without_points_is_refused(tmp_path, text):
    refused(grad_file(tmp_path, text), "--at-file: 'points.csv' has no points")


def test_stdin_errors_name_stdin():
    refused(invoke("grad", F, "--at-file", "-", input="x,y\n1,b\n"), "--at-file stdin line 2: 'b' is not a number")
    refused(invoke("grad", F, "--at-file", "-", input=""), "--at-file: stdin has no points")


def test_unreadable_paths(tmp_path):
    refused(
        invoke("grad", F, "--at-file", str(tmp_path / "missing.csv")),
        f"--at-file: cannot read {str(tmp_path / 'missing.csv')!r}: No such file or directory",
    )
    refused(invoke("grad", F, "--at-file", str(tmp_path)), f"--at-file: cannot read {str(tmp_path)!r}: Is a directory")


def test_at_file_stdin_when_stdin_holds_the_expression():
    refused(
        invoke("grad", "-", "--at-file", "-", input="x**2\n1\n2\n"),
        "EXPR - and --at-file -: the expression and the points cannot both come from stdin; "
        "give the expression as an argument or the points in a file",
    )


def test_expression_on_stdin_with_points_from_a_file(tmp_path):
    (tmp_path / "p.txt").write_text("1\n3\n")
    result = invoke("grad", "-", "--at-file", "p.txt", "--format", "plain", input="x**2\n")
    assert result.exit_code == 0, result.stderr
    assert [float(v) for v in result.stdout.split()] == [2.0, 6.0]  # d/dx x**2 = 2x


# ---------------------------------------------------------------- budgets at their limits


def test_longest_line_accepts_the_limit_and_refuses_one_byte_more(tmp_path):
    limit = points.POINT_LIMITS.max_line_bytes
    assert limit == 65_536  # as documented in the README
    ok = grad_file(tmp_path, "x\n" + " " * (limit - 1) + "2\n", "--format", "plain", expr="x**2")
    assert (ok.exit_code, ok.stdout) == (0, "4\n")
    over = grad_file(tmp_path, "x\n" + " " * limit + "2\n", expr="x**2")
    refused(over, "--at-file 'points.csv' line 2: the line is longer than the limit of 65,536 bytes")
    around = "1\n" * 100
    ok = grad_file(tmp_path, "x\n" + around + " " * (limit - 1) + "1\n" + around, "--format", "plain", expr="x**2")
    assert (ok.exit_code, ok.stdout) == (0, "2\n" * 201), ok.stderr
    inside = grad_file(tmp_path, "x\n" + around + " " * limit + "1\n" + around, expr="x**2")
    refused(inside, "--at-file 'points.csv' line 102: the line is longer than the limit of 65,536 bytes")
    endless = grad_file(tmp_path, "1" * (3 * limit), expr="x**2")  # no line end at all
    refused(endless, "--at-file 'points.csv' line 1: the line is longer than the limit of 65,536 bytes")


def test_most_columns_accepts_the_limit_and_refuses_one_more(tmp_path):
    limit = points.POINT_LIMITS.max_columns
    assert limit == 1_000
    names = [f"v{i:03d}" for i in range(limit)]
    expr = "+".join(names)
    text = ",".join(names) + "\n" + ",".join(["1"] * limit) + "\n"
    ok = grad_file(tmp_path, text, "--wrt", "v000,v999", "--format", "plain", expr=expr)
    assert (ok.exit_code, ok.stdout) == (0, "1 1\n"), ok.stderr
    over = grad_file(tmp_path, ",".join([*names, "w"]) + "\n", expr=expr)
    refused(over, "--at-file 'points.csv' line 1: more than the limit of 1,000 columns")
    data = grad_file(tmp_path, "x\n1\n" + ",".join(["1"] * (limit + 1)) + "\n", expr="x")
    refused(data, "--at-file 'points.csv' line 3: more than the limit of 1,000 columns")
    assignments = grad_file(tmp_path, "x=1" + ",x=1" * limit + "\n", expr="x")
    refused(assignments, "--at-file 'points.csv' line 1: more than the limit of 1,000 columns")


def test_most_lines_accepts_the_limit_and_refuses_one_more(tmp_path):
    assert points.POINT_LIMITS.max_lines == 100_000_000
    ok = grad_file(tmp_path, "x\n1\n\n2\n3\n", "--max-lines", "5", "--format", "plain", expr="x**2")
    assert (ok.exit_code, ok.stdout) == (0, "2\n4\n6\n")
    over = grad_file(tmp_path, "x\n1\n\n2\n3\n\n", "--max-lines", "5", expr="x**2")
    refused(over, "--at-file 'points.csv' line 6: more than the limit of 5 lines (--max-lines)")
    refused(invoke("grad", "x", "--at-file", "-", "--max-lines", "0"), "--max-lines: must be >= 1, got 0")
