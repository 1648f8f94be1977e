"""The command surface: help, version, the error boundary, the tour."""

from __future__ import annotations

import re

import pytest

from autodiffcli.cli import cli

from conftest import ROOT, error_lines, invoke, json_of

COMMANDS = sorted(cli.commands)


def test_commands_are_the_documented_seven():
    assert COMMANDS == ["completion", "fit", "grad", "maximize", "minimize", "server", "tour"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"autodiff {command}" in result.stdout  # the docstring's example
    assert "Usage: autodiff " + command in result.stdout
    readme = (ROOT / "README.md").read_text()
    assert f"autodiff {command}" in readme
    assert f"### `autodiff {command}" in readme


def test_group_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0 and "grad" in result.stdout and "minimize" in result.stdout
    version = invoke("--version")
    assert version.exit_code == 0
    assert re.fullmatch(r"autodiff, version \d+\.\d+\.\d+\n", version.stdout)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["grad", "sinn(x)"], "did you mean 'sin'"),
        (["grad", "x+"], "ends unexpectedly"),
        (["grad", "--bogus"], "--bogus"),
        (["minimize", "--lr", "abc"], "--lr"),
        (["minimize", "--opt", "adamm"], "did you mean 'adam'"),
        (["grad", "--format", "xml"], "--format"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_errors_are_one_line_with_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert needle in line
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    # anything after the Error line is the caret excerpt, indented
    assert all(ln.startswith("  ") for ln in result.stderr.splitlines()[1:])


def test_expression_error_shows_caret_under_the_offending_place():
    result = invoke("grad", "x + foo(2)")
    assert result.stderr.splitlines() == [
        "Error: unknown function 'foo'",
        "  x + foo(2)",
        "      ^^^",
    ]


# the seed tutorial, in shared/ beside the clone (CI), or beside the worktrees' folder (a git worktree)
SEED_NAME = "000_09e83aae58738b68.txt"
SEED_PLACES = [ROOT.parent / "shared" / "seed" / SEED_NAME, ROOT.parent.parent / "shared" / "seed" / SEED_NAME]
# what each seed cell prints, in the order it prints it (its print and tf.print calls)
SEED_PRINTS = {
    1: ["dy/dx", "dy/da"],
    2: ["dy/da", "dy/dc"],
    3: ["d2y/dx2"],
    4: ["y", "x"],
    5: ["y", "x"],
    6: ["y", "x"],
    7: ["y"],
}
_PRINTED = re.compile(  # print(tensor), print(None), tf.print("y = ", y, "; x = ", x), tf.print(number)
    r"^(?:tf\.Tensor\((?P<tensor>[^,]+), shape=.*\)|(?P<none>None)"
    r"|y = +(?P<y>\S+) ; x = +(?P<x>\S+)|(?P<bare>-?[0-9][0-9.e+-]*))$"
)


def seed_outputs() -> dict[int, dict[str, float | None]]:
    """The numbers the seed tutorial printed, cell by cell, read from its text."""
    seed = next((p for p in SEED_PLACES if p.is_file()), None)
    assert seed is not None, f"the seed tutorial is in none of {[str(p) for p in SEED_PLACES]}"
    cells: dict[int, list[float | None]] = {}
    number = 0
    for line in seed.read_text(encoding="utf-8").splitlines():
        if m := re.fullmatch(r"In \[(\d+)\]:", line.strip()):
            number = int(m[1])
            cells[number] = []
        elif number and (m := _PRINTED.match(line.strip())):
            if m["none"]:
                cells[number].append(None)
            elif m["y"]:
                cells[number] += [float(m["y"]), float(m["x"])]
            else:
                cells[number].append(float(m["tensor"] or m["bare"]))
    return {n: dict(zip(SEED_PRINTS[n], values, strict=True)) for n, values in cells.items()}


@pytest.fixture(scope="module")
def tour_cells():
    """The tour's seven cells, computed once (1,000 eager steps twice, among others) for the
    tests of its formats."""
    from autodiffcli import tour

    return tour.run_all()


def test_tour_reproduces_all_seven_seed_results(tour_cells, monkeypatch):
    from autodiffcli import tour

    seed = seed_outputs()
    assert sorted(seed) == [1, 2, 3, 4, 5, 6, 7]
    assert seed[1] == {"dy/dx": -2.0, "dy/da": None} and seed[7] == {"y": 0.0503761768}  # the reader reads
    # the cells the tour computed (once for this module: test_readme runs `autodiff tour` end
    # to end, twice), through the command's JSON
    monkeypatch.setattr(tour, "run_all", lambda: tour_cells)
    cells = json_of(invoke("tour", "--format", "json"), "tour")["cells"]
    assert [c["cell"] for c in cells] == [1, 2, 3, 4, 5, 6, 7]
    for cell in cells:
        printed = seed[cell["cell"]]
        assert cell["seed"] == printed  # the tour shows what the seed printed
        assert cell["autodiff"].keys() == printed.keys()
        for name, value in printed.items():  # and our numbers are those numbers, not the tour's own verdict
            ours = cell["autodiff"][name]
            if value is None:
                assert ours is None, (cell["cell"], name)
            else:  # tf.print shows float32 to 9 significant digits
                assert ours == pytest.approx(value, rel=1e-7, abs=2e-6), (cell["cell"], name)
        assert cell["matches"] is True
    assert all(c["command"].startswith("autodiff ") for c in cells)


def test_tour_table_names_each_cell(tour_cells, monkeypatch):
    from autodiffcli import tour

    monkeypatch.setattr(tour, "run_all", lambda: tour_cells)
    result = invoke("tour", "--format", "table")
    assert result.exit_code == 0
    assert result.stdout.count("match") >= 7
    assert "differs" not in result.stdout


def test_tour_exits_1_and_says_which_cell_differs(monkeypatch):
    from autodiffcli import tour

    def off(**kw):  # the seed's own numbers for cells 4-6 (no steps run), and cell 7 off by 0.01
        if kw.get("steps") == 100:
            return {"y": 0.0503761768 + 0.01}
        return {"y": 0.0, "x": 1.00000083 if kw["optimizer"] == "adam" else 0.999998569}

    monkeypatch.setattr(tour, "_min", off)
    table = invoke("tour", "--format", "table")
    assert table.exit_code == 1
    assert table.stdout.count("differs") == 1 and table.stdout.count("match") == 6
    plain = invoke("tour", "--format", "plain")
    assert plain.exit_code == 1
    assert [line.split()[1] for line in plain.stdout.splitlines()] == ["ok"] * 6 + ["MISMATCH"]
    data = json_of(invoke("tour", "--format", "json"), "tour", 1)
    assert [c["matches"] for c in data["cells"]] == [True] * 6 + [False]


def test_internal_error_is_one_line_and_traceback_shows_it(monkeypatch):
    from autodiffcli import grad

    def broken(*args, **kwargs):
        raise RuntimeError("something we did not foresee")

    monkeypatch.setattr(grad.GradRun, "batch", broken)
    plain = invoke("grad", "x**2")
    assert plain.exit_code == 1
    assert plain.stderr.splitlines() == [
        "Error: internal error: RuntimeError: something we did not foresee (rerun with --traceback for details)"
    ]
    debug = invoke("grad", "x**2", "--traceback")
    assert debug.exit_code == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.splitlines()[-1].startswith("Error: internal error: RuntimeError")


def test_symbolic_differentiation_has_a_wall_clock_budget():
    import time

    start = time.perf_counter()
    result = invoke("grad", "(sin(x)+cos(x)+tan(x)+exp(x)+log(x)+sqrt(x)+atan(x)+tanh(x))^12", "--order", "8")
    assert time.perf_counter() - start < 3 + 12  # the 3 s budget, and room for a loaded two-core machine
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert "symbolic differentiation took longer than the limit of 3 s" in line


@pytest.mark.parametrize(
    "args, reason",
    [
        (["grad", "2+3"], "it is the constant 5"),
        (["minimize", "a*b", "-p", "a=1", "-p", "b=2"], "all its names are parameters"),
    ],
)
def test_expression_without_variables_says_why(args, reason):
    result = invoke(*args)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert "no variables" in line and reason in line


def test_values_may_call_functions_of_several_arguments():
    """A comma inside brackets belongs to the value: ``x=atan2(1,1)`` is pi/4, not two items."""
    import math

    data = json_of(
        invoke(
            "grad",
            "a*x*y",
            "--at",
            "x=atan2(1,1),y=max(2,3)",
            "-p",
            "a=hypot(3,4)",
            "--format",
            "json",
            "--dtype",
            "float64",
        ),
        "grad",
    )
    (point,) = data["results"]
    assert point["point"] == {"x": math.pi / 4, "y": 3.0}
    assert data["params"] == {"a": 5.0}
    assert point["gradient"]["x"] == pytest.approx(5 * 3, rel=1e-15)
    bounded = json_of(
        invoke("minimize", "(x-1)**2", "--opt", "lbfgs", "--bounds", "x=min(2,3):hypot(3,4)", "--format", "json"),
        "minimize",
    )
    assert bounded["x"]["x"] == pytest.approx(2.0)  # the bound LO = min(2,3) = 2 holds
    unclosed = invoke("grad", "x*y", "--at", "x=max(1,2")
    assert (unclosed.exit_code, error_lines(unclosed.stderr)) == (
        2,
        ["Error: --at x: 'max(1,2' is not a number ('(' is never closed)"],
    )
