"""Pictures: what is drawn (against SymPy and SciPy), terminal text, files, atomic writes.

Terminal plots are compared with snapshots in tests/snapshots/ (refresh with
AUTODIFF_UPDATE_SNAPSHOTS=1 and read the diff), and each snapshot is also checked for
what a user would see: marks in the column where the mathematics puts them, read off
the plot's own axis labels.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.optimize
import sympy

from autodiffcli import grad, minimize, settings
from autodiffcli.output import draw, pictures
from autodiffcli.solve import types

from conftest import ROOT, error_lines, invoke, json_of

SNAPSHOTS = Path(__file__).parent / "snapshots"
WIDTH = 72
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.delenv("NO_COLOR", raising=False)


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("AUTODIFF_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"terminal plot differs from {path.name}"


def plot_text(stdout: str) -> str:
    """The terminal pictures: everything from the first plot title on (after the rich tables)."""
    lines = stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("┌") and "┬" not in line) - 1
    return "\n".join(lines[first:]) + "\n"


def panels(text: str) -> list[list[str]]:
    """Each plot's lines, from its frame's top to its axis labels."""
    lines = text.splitlines()
    out, start = [], None
    for i, line in enumerate(lines):
        if line.startswith("┌"):
            start = i
        elif line.startswith("└") and start is not None:
            out.append(lines[start : i + 2])
            start = None
    return out


def x_axis(panel: list[str]) -> tuple[float, float]:
    """(x at string index 0, x per column), from the first and last x labels under the frame."""
    labels = [(m.start() + (m.end() - m.start() - 1) / 2, float(m.group())) for m in NUMBER.finditer(panel[-1])]
    (i1, x1), (i2, x2) = labels[0], labels[-1]
    per = (x2 - x1) / (i2 - i1)
    return x1 - i1 * per, per


def y_axis(panel: list[str]) -> tuple[float, float]:
    """(y at row 0, y per row), from the labels right of the frame."""
    labels = []
    for row, line in enumerate(panel):
        tail = line[line.rfind("│") + 1 :] if line.startswith("│") else ""
        if NUMBER.fullmatch(tail.strip()):
            labels.append((row, float(tail)))
    (r1, y1), (r2, y2) = labels[0], labels[-1]
    per = (y2 - y1) / (r2 - r1)
    return y1 - r1 * per, per


def where(panel: list[str], char: str) -> list[tuple[int, int]]:
    """(row, string index) of every ``char`` inside the frame."""
    return [
        (r, c)
        for r, line in enumerate(panel[1:-2], start=1)
        for c, ch in enumerate(line[: line.rfind("│")])
        if ch == char and c > 0
    ]


# ---------------------------------------------------------------- terminal: grad


def test_grad_plot_snapshot_marks_the_point_tangent_and_minimum_where_they_are():
    result = invoke("grad", "(x-1)**2", "--at", "0", "--order", "2", "--range", "x=-1:3", "--plot", "--format", "table")
    assert result.exit_code == 0, result.stderr
    text = plot_text(result.stdout)
    snapshot("grad-quadratic", text)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "\x1b[" not in result.stdout  # not a terminal: no colour
    f_panel, d_panel = panels(text)
    x0, per = x_axis(f_panel)
    # the --at point: one 'o' in the column of x = 0, in the row of f(0) = 1
    ((row, col),) = where(f_panel, "o")
    assert abs((0 - x0) / per - col) <= 1.5
    # the bottom of the curve is at SymPy's minimum of (x-1)**2
    x = sympy.Symbol("x", real=True)
    (true_min,) = sympy.solve(sympy.diff((x - 1) ** 2, x), x)
    lowest = max(r for r, _ in where(f_panel, "."))
    cols = [c for r, c in where(f_panel, ".") if r == lowest]
    assert abs((float(true_min) - x0) / per - np.mean(cols)) <= 1.5
    # the tangent ':' reaches below the curve's minimum row (it goes below zero, slope -2)
    assert max(r for r, _ in where(f_panel, ":")) >= lowest
    # f'' = 2 is a flat line of 'x'; f' = 2x - 2 crosses zero at x = 1
    rows_x = {r for r, _ in where(d_panel, "x")}
    assert len(rows_x) == 1
    # the legend under the derivatives names each mark: '+' is f', 'x' is f''
    lines = text.splitlines()
    legend = lines[len(lines) - 1 - lines[::-1].index(d_panel[-1]) + 1]
    assert re.fullmatch(r"\s*\+\+ df/dx\s+xx d2f/dx2\s*", legend), legend
    # and the '+' line, f' = 2x - 2, crosses zero at x = 1 (SymPy's root of f')
    y0, yper = y_axis(d_panel)
    zero_row = round(-y0 / yper)
    crossing = [c for r, c in where(d_panel, "+") if r == zero_row]
    assert crossing and abs((float(true_min) - x0) / per - np.mean(crossing)) <= 2


def test_grad_plot_width_follows_columns(monkeypatch):
    for width in (50, 130):
        monkeypatch.setenv("COLUMNS", str(width))
        result = invoke("grad", "sin(x)", "--at", "1", "--plot", "--format", "table")
        assert (result.exit_code, result.stderr) == (0, "")
        text = plot_text(result.stdout)
        longest = max(len(line) for line in text.splitlines())
        assert width - 12 <= longest <= width


# ---------------------------------------------------------------- terminal: minimize


def test_minimize_plot_1d_snapshot_marks_the_minimum_in_its_column():
    expr = "x**4 - 3*x + 1"
    result = invoke("minimize", expr, "--opt", "sgd", "--plot", "--format", "table")  # the snapshot is SGD's path
    assert result.exit_code == 0, result.stderr
    text = plot_text(result.stdout)
    snapshot("minimize-1d", text)
    loss, landscape = panels(text)
    true = scipy.optimize.minimize_scalar(lambda v: v**4 - 3 * v + 1).x  # (3/4)**(1/3)
    x0, per = x_axis(landscape)
    ((_, end),) = where(landscape, "X")
    assert abs((true - x0) / per - end) <= 1.5
    ((_, start),) = where(landscape, "o")
    assert abs((0.0 - x0) / per - start) <= 1.5
    assert "log scale" in text  # f - best f falls over several decades


def test_minimize_plot_2d_snapshot_marks_the_minimum_on_the_landscape():
    result = invoke("minimize", "(x-3)**2 + (y+1)**2", "--opt", "adam", "--lr", "0.1", "--plot", "--format", "table")
    assert result.exit_code == 0, result.stderr
    text = plot_text(result.stdout)
    snapshot("minimize-2d", text)
    _, landscape = panels(text)
    x0, xper = x_axis(landscape)
    y0, yper = y_axis(landscape)
    ((row, col),) = where(landscape, "X")
    assert abs((3 - x0) / xper - col) <= 1.5
    assert abs((-1 - y0) / yper - row) <= 1.5
    ((row, col),) = where(landscape, "o")  # the start, (0, 0)
    assert abs((0 - x0) / xper - col) <= 1.5
    assert abs((0 - y0) / yper - row) <= 1.5
    assert len(where(landscape, "*")) > 10  # the path
    assert len(where(landscape, ".")) > 100  # the level lines


HIMMELBLAU = "(x**2+y-11)**2 + (x+y**2-7)**2"
HIMMELBLAU_MINIMA = [
    (3.0, 2.0),
    (-2.805118, 3.131312),
    (-3.779310, -3.283186),
    (3.584428, -1.848126),
]  # Himmelblau 1972


def test_multi_start_plot_marks_each_basin_by_its_number_at_its_minimum():
    args = ("minimize", HIMMELBLAU, "--opt", "newton", "--starts", "200", "--bounds", "x=-5:5,y=-5:5")
    basins = json_of(invoke(*args, "--format", "json"), "minimize")["basins"]
    result = invoke(*args, "--plot", "--format", "table")
    assert result.exit_code == 0, result.stderr
    text = plot_text(result.stdout)
    snapshot("minimize-himmelblau", text)
    _, landscape = panels(text)
    # the landscape spans the --bounds box: cell (row, column) of (x, y), from the box alone
    rows, cols = len(landscape) - 3, len(landscape[0]) - 2
    assert len(basins) == 4
    for k, basin in enumerate(basins, start=1):
        near = min(HIMMELBLAU_MINIMA, key=lambda m: math.dist(m, (basin["x"]["x"], basin["x"]["y"])))
        assert math.dist(near, (basin["x"]["x"], basin["x"]["y"])) < 1e-3
        ((row, col),) = where(landscape, str(k))
        assert abs(1 + (near[0] + 5) / 10 * cols - 0.5 - col) <= 1
        assert abs(1 + (5 - near[1]) / 10 * rows - 0.5 - row) <= 1
        assert f"{k}: minimum, {basin['count']} starts" in text
    assert not where(landscape, "X")  # the best end is basin 1
    # the history is the lowest f over the starts, row by row possibly another start's: no
    # path is drawn (a line from one start's point to another's would cross ridges)
    assert "path" not in text and "start (" not in text and not where(landscape, "*")


def test_multi_start_picture_covers_the_box_and_groups_basins_past_nine():
    problem = settings.load_problem("sin(3*x) + sin(3*y)", [], "float32")
    config = types.MinimizeSettings(optimizer="newton", starts=300, bounds=(("x", -6.0, 6.0), ("y", -6.0, 6.0)))
    report = minimize.minimize(problem, {"x": 0.0, "y": 0.0}, config)
    _, land = pictures.minimize_picture(report).panels
    assert land.xlim == (-6.0, 6.0) and land.ylim == (-6.0, 6.0)
    basins = [s for s in land.series if s.role == "basin"]
    assert len(report.basins) > 9 and len(basins) == 10
    assert [s.group for s in basins] == list(range(10))
    assert basins[-1].label == f"{len(report.basins) - 9} more basins" and len(basins[-1].x) == len(report.basins) - 9
    for s, b in zip(basins, report.basins[:10], strict=True):  # the tenth group starts at the tenth basin
        assert (s.x[0], s.y[0]) == (b.x["x"], b.x["y"])
    text = draw.terminal(pictures.minimize_picture(report), 80, color=False)
    assert where(panels(text)[1], "#") and "## " + basins[-1].label in text


def test_plot_keeps_json_and_plain_output_as_they_are():
    args = ("minimize", "(x-3)**2 + (y+1)**2", "--opt", "adam", "--lr", "0.1")
    for fmt in ("json", "plain"):
        without = invoke(*args, "--format", fmt)
        with_plot = invoke(*args, "--format", fmt, "--plot")
        assert with_plot.exit_code == without.exit_code == 0
        strip = lambda s: re.sub(r'"optimize_s": [0-9.e-]+', "", s)
        assert strip(with_plot.stdout) == strip(without.stdout)
        assert without.stderr == ""
        if fmt == "json":  # the document is whole and of its schema, the picture aside
            json_of(without, "minimize")
            json_of(subprocess.CompletedProcess(args, 0, with_plot.stdout, ""), "minimize")  # picture aside
        assert "levels of f" in with_plot.stderr  # the picture went to stderr
    grad_args = ("grad", "sin(x)", "--at", "1", "--order", "2")
    for fmt in ("json", "plain"):
        assert invoke(*grad_args, "--format", fmt, "--plot").stdout == invoke(*grad_args, "--format", fmt).stdout


def _pty_run(*args: str, env: dict[str, str]) -> tuple[str, bytes]:
    """Run autodiff with stderr on a pseudo-terminal and stdout on a pipe."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autodiffcli", *args],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, **env},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    return out.decode(), b"".join(chunks)


def test_colour_on_a_terminal_and_none_with_no_color():
    args = ("grad", "sin(x)", "--at", "1", "--plot", "--format", "plain")
    out, coloured = _pty_run(*args, env={"COLUMNS": "60"})
    assert out.strip() == "0.540302277"
    assert b"\x1b[3" in coloured and b"f = sin(x)" in coloured
    out, plain = _pty_run(*args, env={"COLUMNS": "60", "NO_COLOR": "1"})
    assert b"\x1b[" not in plain and b"f = sin(x)" in plain


# ---------------------------------------------------------------- what is drawn, against SymPy


def _grad_report(text: str, at: list[float], order: int):
    problem = settings.load_problem(text, [], "float64")
    points = np.array(at, dtype=np.float64)[:, None]
    return grad.grad(grad.grad_request(problem, points, [], [], order))


def test_grad_picture_curves_and_tangents_agree_with_sympy():
    text = "exp(-x**2/2) * sin(3*x)"
    report = _grad_report(text, [0.3, -1.2], 3)
    picture = pictures.grad_picture(report, (-2.0, 2.0))
    f_panel, d_panel = picture.panels
    x = sympy.Symbol("x", real=True)
    expr = sympy.exp(-(x**2) / 2) * sympy.sin(3 * x)
    exact = [sympy.lambdify(x, sympy.diff(expr, x, k), "mpmath") for k in range(4)]
    curve = next(s for s in f_panel.series if s.role == "curve")
    assert curve.x[0] == -2.0 and curve.x[-1] == 2.0
    for xv, yv in zip(curve.x[::20], curve.y[::20], strict=True):
        assert yv == pytest.approx(float(exact[0](mpmath.mpf(xv))), rel=1e-9, abs=1e-12)
    for k, s in enumerate(d_panel.series, start=1):
        for xv, yv in zip(s.x[::25], s.y[::25], strict=True):
            assert yv == pytest.approx(float(exact[k](mpmath.mpf(xv))), rel=1e-8, abs=1e-10)
    (tangents,) = [s for s in f_panel.series if s.role == "tangent"]
    lines = np.split(np.column_stack([tangents.x, tangents.y]), np.flatnonzero(np.isnan(tangents.x)) + 1)
    lines = [line[~np.isnan(line[:, 0])] for line in lines if (~np.isnan(line[:, 0])).any()]
    assert len(lines) == 2
    for a, line in zip([0.3, -1.2], lines, strict=True):
        fa, slope = float(exact[0](a)), float(exact[1](a))
        assert line[:, 1] == pytest.approx(fa + slope * (line[:, 0] - a), rel=1e-9, abs=1e-12)
    (points,) = [s for s in f_panel.series if s.role == "point"]
    assert list(points.x) == [0.3, -1.2]


def test_grad_picture_default_range_covers_every_point_and_marks_at_most_ten():
    report = _grad_report("x**3", [5.0, 9.0, *range(10, 30)], 1)
    f_panel, _ = pictures.grad_picture(report).panels
    lo, hi = f_panel.xlim
    assert lo < 5.0 and hi > 29.0
    (points,) = [s for s in f_panel.series if s.role == "point"]
    assert list(points.x) == [5.0, 9.0, *range(10, 18)] and points.label == "--at (first 10)"


def test_grad_picture_survives_a_pole_and_a_domain():
    report = _grad_report("1/x + log(x)", [1.0], 2)
    f_panel, d_panel = pictures.grad_picture(report, (-1.0, 2.0)).panels
    curve = next(s for s in f_panel.series if s.role == "curve")
    assert np.isnan(curve.y[curve.x < 0]).all()  # log of a negative: not drawn
    lo, hi = f_panel.ylim
    assert np.isfinite([lo, hi]).all() and hi - lo < 1e3  # the pole at 0 does not flatten the rest


def _minimize_report(text: str, start: dict[str, float], **options):
    problem = settings.load_problem(text, [], "float32")
    return minimize.minimize(problem, start, types.MinimizeSettings(**options))


def test_landscape_agrees_with_sympy_and_covers_the_path():
    report = _minimize_report("(1-x)**2 + 10*(y-x**2)**2", {"x": -1.0, "y": 1.0}, optimizer="adam", learning_rate=0.05)
    loss, land = pictures.minimize_picture(report).panels
    x, y = sympy.symbols("x y", real=True)
    exact = sympy.lambdify((x, y), (1 - x) ** 2 + 10 * (y - x**2) ** 2, "numpy")
    mx, my = np.meshgrid(land.x, land.y)
    assert land.z == pytest.approx(exact(mx, my), rel=1e-5, abs=1e-5)
    path = next(s for s in land.series if s.role == "path")
    assert land.xlim[0] < path.x.min() and path.x.max() < land.xlim[1]
    assert land.ylim[0] < path.y.min() and path.y.max() < land.ylim[1]
    assert np.all(np.diff(land.levels) > 0)
    (end,) = [s for s in land.series if s.role == "end"]
    assert (end.x[0], end.y[0]) == (report.outcome.x["x"], report.outcome.x["y"])


def test_loss_curve_is_logarithmic_only_when_it_spans_decades():
    fast = _minimize_report("(x-3)**2", {"x": 0.0}, learning_rate=0.1, steps=200)
    assert pictures.loss_panel(fast).log_y
    slow = _minimize_report("(x-3)**2", {"x": 0.0}, learning_rate=0.001, steps=50)
    panel = pictures.loss_panel(slow)
    assert not panel.log_y
    (curve,) = panel.series
    assert list(curve.x) == [row.step for row in slow.outcome.history]


def test_a_start_outside_the_domain_draws_a_note_not_empty_axes(tmp_path):
    out = tmp_path / "f.svg"
    result = invoke("minimize", "log(x)", "--from", "-1", "--plot", "--plot-file", str(out), "--format", "table")
    assert result.exit_code == 1
    assert "autodiff minimize: f = log(x): nothing to draw: f or its gradient is not finite at the start point" in (
        result.stdout
    )
    assert "┌" not in result.stdout.split("nothing to draw")[1]  # no empty frames after the note
    assert "nothing to draw" in out.read_text()


def test_three_variables_get_the_loss_curve_only():
    report = _minimize_report("x**2 + y**2 + z**2", {"x": 1.0, "y": 1.0, "z": 1.0}, steps=10)
    assert [p.title for p in pictures.minimize_picture(report).panels] == ["loss"]


# ---------------------------------------------------------------- options and errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grad", "x*y", "--plot"), "one variable"),
        (("grad", "x**2", "--range", "x=0:1"), "--range: only with --plot"),
        (("grad", "x**2", "--plot", "--range", "y=0:1"), "'y' is not a variable"),
        (("grad", "x**2", "--plot", "--range", "x=1:0"), "LO must be less than HI"),
        (("grad", "x**2", "--plot", "--range", "x=1"), "expected x=LO:HI"),
        (("grad", "x**2", "--plot-file", "out.jpg"), "unknown extension '.jpg'"),
        (("grad", "x**2", "--plot-file", "noext"), "unknown extension none"),
        (("grad", "x**2", "--plot-file", "no/such/dir/a.png"), "does not exist"),
        (("minimize", "x**2", "--plot-file", "no/such/dir/a.svg"), "does not exist"),
        (("grad", "x**2", "--plot-file", "."), "unknown extension"),
    ],
)
def test_plot_option_errors_exit_2_with_one_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert message in line
    assert result.stdout == ""


def test_range_accepts_constant_expressions():
    result = invoke("grad", "sin(x)", "--plot", "--range", "x=-pi:pi", "--format", "table")
    assert result.exit_code == 0
    assert "-2" in panels(plot_text(result.stdout))[0][-1]


def test_plot_file_directory_and_permission_errors(tmp_path, monkeypatch):
    (tmp_path / "d.png").mkdir()
    result = invoke("grad", "x**2", "--plot-file", str(tmp_path / "d.png"))
    assert result.exit_code == 2 and "is a directory" in error_lines(result.stderr)[0]
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as if the folder were read-only (tests run as root)
    result = invoke("grad", "x**2", "--plot-file", str(tmp_path / "a.png"))
    assert result.exit_code == 2 and "no permission" in error_lines(result.stderr)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png"]


# ---------------------------------------------------------------- files


def test_png_file_is_a_real_picture(tmp_path):
    out = tmp_path / "rosen.png"
    result = invoke("minimize", "(1-x)**2 + 100*(y-x**2)**2", "--opt", "adam", "--lr", "0.02", "--from", "x=-1,y=1",
                    "--format", "json", "--plot-file", str(out))  # fmt: skip
    json_of(result, "minimize")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 600
    assert len(data) > 50_000  # a contour map, not a blank canvas
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["rosen.png"]


def test_svg_file_parses_as_xml_with_the_curves(tmp_path):
    out = tmp_path / "sin.svg"
    result = invoke("grad", "sin(x)", "--at", "1", "--order", "2", "--plot-file", str(out), "--format", "plain")
    assert result.exit_code == 0
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    assert len(paths) > 20
    assert out.stat().st_size > 20_000


def test_pdf_file_has_a_pdf_header_and_trailer(tmp_path):
    out = tmp_path / "f.PDF"  # the extension is case-insensitive
    result = invoke("minimize", "x**4 - 3*x + 1", "--plot-file", str(out), "--format", "plain")
    assert result.exit_code == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-32:]
    assert len(data) > 10_000


def test_plot_file_replaces_an_existing_file(tmp_path):
    out = tmp_path / "f.svg"
    out.write_text("old")
    assert invoke("grad", "x**2", "--plot-file", str(out)).exit_code == 0
    assert out.read_text().lstrip().startswith("<?xml")


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize(("error", "code"), [(OSError(28, "No space left on device"), 2), (RuntimeError("boom"), 1)])
def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, error, code):
    from matplotlib.figure import Figure

    def failing_savefig(self, handle, **kw):
        handle.write(b"\x89PNG half a picture")
        raise error

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    fresh = tmp_path / "new.png"
    result = invoke("grad", "x**2", "--plot-file", str(fresh), "--format", "plain")
    assert result.exit_code == code
    (line,) = error_lines(result.stderr)
    if code == 2:
        assert line == f"Error: --plot-file: cannot write {str(fresh)!r}: No space left on device"
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.png"
    old.write_bytes(b"the old picture")
    invoke("grad", "x**2", "--plot-file", str(old), "--format", "plain")
    assert old.read_bytes() == b"the old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- imports


def _modules_after_each(*commands: list[str]) -> list[dict[str, bool]]:
    """Run the commands one after another in one fresh interpreter; after each, which of the
    heavy modules it has imported so far (each command only adds to what the earlier ones did,
    so one interpreter answers for all, in place of one cold start each)."""
    code = (
        "import sys, json\n"
        "from autodiffcli.cli import cli\n"
        f"for args in {[list(c) for c in commands]!r}:\n"
        "    code = cli.main(args, standalone_mode=False)\n"
        "    print(json.dumps({m: m in sys.modules for m in "
        "['tensorflow', 'uniplot', 'matplotlib', 'matplotlib.pyplot']} | {'code': int(code)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=os.environ
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"tensorflow"')]
    return [json.loads(line) for line in lines]


def test_plotting_libraries_are_imported_only_for_a_plot(tmp_path):
    helps, bad_file, plain, term, file = _modules_after_each(
        ["grad", "--help"],
        ["grad", "x**2", "--plot-file", str(tmp_path / "none" / "a.png")],
        ["grad", "x**2", "--format", "json"],
        ["grad", "x**2", "--format", "json", "--plot"],
        ["grad", "x**2", "--format", "json", "--plot-file", str(tmp_path / "a.png")],
    )
    assert helps == {"tensorflow": False, "uniplot": False, "matplotlib": False, "matplotlib.pyplot": False, "code": 0}
    assert bad_file == {"tensorflow": False, "uniplot": False, "matplotlib": False, "matplotlib.pyplot": False,
                        "code": 2}  # fmt: skip
    assert (plain["tensorflow"], plain["uniplot"], plain["matplotlib"], plain["code"]) == (True, False, False, 0)
    assert (term["uniplot"], term["matplotlib"], term["code"]) == (True, False, 0)
    assert (file["matplotlib"], file["matplotlib.pyplot"], file["code"]) == (True, False, 0)
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------- the pictures in docs/pictures.md

PICTURES_PAGE = ROOT / "docs" / "pictures.md"
PICTURE_COMMANDS = re.findall(r"^`autodiff (.*) --plot-file (docs/\S+\.png)`$", PICTURES_PAGE.read_text(), re.M)


def test_the_pictures_page_shows_the_pictures_in_docs():
    assert {path for _, path in PICTURE_COMMANDS} >= {"docs/grad-sin.png", "docs/rosenbrock.png"}
    for _, path in PICTURE_COMMANDS:  # the page is in docs/: its links are relative to it
        assert f"]({path.removeprefix('docs/')})" in PICTURES_PAGE.read_text()


@pytest.mark.parametrize(("command", "path"), PICTURE_COMMANDS, ids=[p for _, p in PICTURE_COMMANDS])
def test_picture_commands_make_the_pictures_in_docs(tmp_path, command, path):
    import shlex

    out = tmp_path / "picture.png"
    result = invoke(*shlex.split(command), "--plot-file", str(out), "--format", "plain")
    assert result.exit_code == 0, result.stderr
    made, kept = out.read_bytes(), (ROOT / path).read_bytes()
    assert made[:8] == kept[:8] == b"\x89PNG\r\n\x1a\n"
    assert made[16:24] == kept[16:24]  # the same width and height
    assert abs(len(made) - len(kept)) < 0.1 * len(kept)
