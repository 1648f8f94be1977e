"""autodiff fit: NIST StRD's certified values are the oracle; SciPy (curve_fit, Student's t)
the oracle for weighting and intervals; every bad input word for word."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import curve_fit, least_squares

from conftest import invoke, json_of

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data/nist")
HIGHER = Path(__file__).resolve().parent / "data" / "nist"
NIST_FILES = sorted([*SHARED.glob("*.dat"), *HIGHER.glob("*.dat")], key=lambda p: p.stem)


def read_nist(path: Path) -> dict:
    """A NIST StRD file: the model as written, both starts, certified values, the data."""
    lines = path.read_text().splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("Model:"))
    model: list[str] = []
    for line in lines[at + 1 :]:
        text = line.strip()
        if not text or "Parameters" in text or text.startswith("pi ="):
            if model and not text:
                break
            continue
        model.append(text)
        if re.search(r"\+\s*e$", text):
            break
    rows = [
        re.match(r"\s*(b\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line) for line in lines
    ]  # b1 = start1 start2 certified stderr
    rows = [m for m in rows if m]
    rss = next(float(line.split()[-1]) for line in lines if line.startswith("Residual Sum of Squares"))
    head = max(k for k, line in enumerate(lines) if line.startswith("Data:"))
    return {
        "model": re.sub(r"\+\s*e$", "", " ".join(model)).strip(),
        "names": [m[1] for m in rows],
        "starts": ([m[2] for m in rows], [m[3] for m in rows]),
        "certified": [float(m[4]) for m in rows],
        "stderr": [float(m[5]) for m in rows],
        "rss": rss,
        "columns": lines[head].split()[1:],
        "rows": [line.split() for line in lines[head + 1 :] if line.strip()],
    }


def lre(value: float | None, certified: float) -> float:
    """Log relative error: the number of significant digits that agree (at most 11)."""
    if value is None:
        return 0.0
    if value == certified:
        return 11.0
    return min(11.0, -math.log10(abs(value - certified) / abs(certified)))


def write_csv(path: Path, columns: list[str], rows: list[list[str]]) -> str:
    path.write_text(",".join(columns) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return str(path)


def test_nist_files_are_all_there():
    assert len(NIST_FILES) == 27


@pytest.mark.parametrize("start", [0, 1], ids=["start1", "start2"])
@pytest.mark.parametrize("path", NIST_FILES, ids=[p.stem for p in NIST_FILES])
def test_nist_certified_digits(path: Path, start: int, tmp_path: Path):
    nist = read_nist(path)
    # from start 1 the data as CSV; from start 2 NIST's own file, read as it is
    data = write_csv(tmp_path / f"{path.stem}.csv", nist["columns"], nist["rows"]) if start == 0 else str(path)
    begin = ",".join(f"{n}={v}" for n, v in zip(nist["names"], nist["starts"][start], strict=True))
    out = json_of(invoke("fit", nist["model"], "--data", data, "--from", begin, "--format", "json"), "fit")
    assert sorted(out["parameters"]) == sorted(nist["names"])  # listed in the order the model names them
    assert out["status"] == "converged" and out["verdict"] == "minimum"
    for name, value, se in zip(nist["names"], nist["certified"], nist["stderr"], strict=True):
        got = out["parameters"][name]
        assert lre(got["value"], value) >= 6, (name, got["value"], value)
        assert lre(got["stderr"], se) >= 4, (name, got["stderr"], se)
    assert lre(out["rss"], nist["rss"]) >= 6, (out["rss"], nist["rss"])
    assert out["n"] == len(nist["rows"]) and out["dof"] == len(nist["rows"]) - len(nist["names"])


# ---------------------------------------------------------------- statistics against SciPy

X = np.linspace(0.0, 4.0, 25)
SIGMA = 0.05 + 0.02 * X
NOISE = np.array([0.3, -1.1, 0.8, 0.1, -0.4, 1.5, -0.9, 0.2, 0.6, -1.3, 0.9, -0.2, 0.4,
                  -0.7, 1.2, -0.1, 0.5, -1.6, 0.7, 0.0, -0.5, 1.0, -0.8, 0.3, -0.2])  # fmt: skip
Y = 2.5 * np.exp(-1.3 * X) + 0.4 + SIGMA * NOISE


def decay(x, a, b, c):
    return a * np.exp(-b * x) + c


@pytest.fixture
def decay_csv(tmp_path: Path) -> str:
    rows = [[repr(float(x)), repr(float(y)), repr(float(s))] for x, y, s in zip(X, Y, SIGMA, strict=True)]
    return write_csv(tmp_path / "decay.csv", ["t", "y", "dy"], rows)


def decay_jacobian(x, a, b, c):
    return np.stack([np.exp(-b * x), -a * x * np.exp(-b * x), np.ones_like(x)], axis=1)


def _curve_fit(**kw):
    """curve_fit with the hand-written Jacobian (its finite differences stop some 9 digits in)."""
    popt, pcov = curve_fit(decay, X, Y, p0=[1, 1, 1], jac=decay_jacobian, xtol=1e-15, ftol=1e-15, gtol=1e-15, **kw)
    return popt, np.sqrt(np.diag(pcov))


def test_sigma_is_absolute_as_curve_fit_absolute_sigma(decay_csv: str):
    out = json_of(invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--sigma", "dy", "--format", "json"), "fit")
    popt, perr = _curve_fit(sigma=SIGMA, absolute_sigma=True)
    assert out["weighting"] == "sigma"
    for k, name in enumerate("abc"):
        assert out["parameters"][name]["value"] == pytest.approx(popt[k], rel=1e-9)
        assert out["parameters"][name]["stderr"] == pytest.approx(perr[k], rel=1e-6)
    chi2 = np.sum(((Y - decay(X, *popt)) / SIGMA) ** 2)
    assert out["rss"] == pytest.approx(chi2, rel=1e-9)
    z = stats.norm.ppf(0.975)  # the variance is given, not estimated: the normal quantile
    lo, hi = out["parameters"]["a"]["ci"]
    assert lo == pytest.approx(popt[0] - z * perr[0], rel=1e-6) and hi == pytest.approx(popt[0] + z * perr[0], rel=1e-6)


def test_rows_of_weight_zero_leave_the_fit_and_no_warning_reaches_stderr(tmp_path: Path):
    """A weight of 0 took its row out of the fit, and dividing its residual by sqrt(0) for
    the picture printed NumPy's RuntimeWarning with a source line. Oracle: NumPy's weighted
    polyfit (weights sqrt(w)); the picture's residuals of those rows are y - fit."""
    x = np.array([0.0, 1, 2, 3, 4, 5])
    y = np.array([1.0, 2.9, 5.2, 7.1, 8.8, 11.2])
    w = np.array([1.0, 1, 0, 1, 1, 0])
    path = tmp_path / "w.csv"
    path.write_text("x,y,w\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(x, y, w, strict=True)))
    result = invoke("fit", "y = a + b*x", "--data", str(path), "--weights", "w", "--format", "json")
    data = json_of(result, "fit")  # exit 0, stderr empty
    b, a = np.polyfit(x, y, 1, w=np.sqrt(w))
    assert [data["parameters"][n]["value"] for n in ("a", "b")] == pytest.approx([a, b], rel=1e-10)
    from autodiffcli import fit as fitting
    from autodiffcli.settings import fit_settings

    settings = fit_settings("y = a + b*x", str(path), None, (), None, 1, None, None, "w", 0.95, "float64", 0)
    report = fitting.fit(settings)
    assert np.isfinite(report.residuals).all()
    assert report.residuals == pytest.approx(y - (a + b * x), abs=1e-9)


def test_the_tables_interval_tells_its_ends_apart_for_a_large_value(tmp_path: Path, monkeypatch):
    """A centre near 1e6 with a standard error of 0.005: six significant digits printed the
    95% interval as 1e+06 .. 1e+06. Oracle: Student's t (SciPy) times the JSON's standard error."""
    rng = np.random.default_rng(5)
    x = 1e6 + np.linspace(0, 10, 20)
    y = 3 * np.exp(-0.5 * (x - 1e6 - 4.5) ** 2 / 4) + rng.normal(0, 0.02, 20)
    path = tmp_path / "peak.csv"
    path.write_text("x,y\n" + "".join(f"{a:.17g},{b:.17g}\n" for a, b in zip(x, y, strict=True)))
    args = ("fit", "y = a*exp(-0.5*(x-m)**2/s**2)", "--data", str(path), "--from", "a=2,m=1000004,s=1.5")
    m = json_of(invoke(*args, "--format", "json"), "fit")["parameters"]["m"]
    half = stats.t.ppf(0.975, 17) * m["stderr"]
    monkeypatch.setenv("COLUMNS", "200")
    table = invoke(*args, "--format", "table").stdout
    row = next(line for line in table.splitlines() if line.startswith("│ m "))  # the parameters' table
    lo, hi = (float(v) for v in row.split("│")[5].split(".."))
    assert lo == pytest.approx(m["value"] - half, abs=2e-4) and hi == pytest.approx(m["value"] + half, abs=2e-4)


def test_weights_are_relative_as_curve_fit_default(decay_csv: str, tmp_path: Path):
    # --weights w with w = 1/dy**2 is curve_fit(sigma=dy) with the covariance scaled
    rows = [[repr(float(x)), repr(float(y)), repr(float(1 / s**2))] for x, y, s in zip(X, Y, SIGMA, strict=True)]
    data = write_csv(tmp_path / "w.csv", ["t", "y", "w"], rows)
    out = json_of(invoke("fit", "y = a*exp(-b*t) + c", "--data", data, "--weights", "w", "--format", "json"), "fit")
    popt, perr = _curve_fit(sigma=SIGMA)
    for k, name in enumerate("abc"):
        assert out["parameters"][name]["value"] == pytest.approx(popt[k], rel=1e-9)
        assert out["parameters"][name]["stderr"] == pytest.approx(perr[k], rel=1e-6)


def test_confidence_intervals_are_students_t(decay_csv: str):
    out = json_of(
        invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--level", "0.9", "--format", "json"), "fit"
    )
    popt, perr = _curve_fit()
    q = stats.t.ppf(0.95, len(X) - 3)
    assert out["dof"] == len(X) - 3 and out["level"] == 0.9
    for k, name in enumerate("abc"):
        p = out["parameters"][name]
        assert p["value"] == pytest.approx(popt[k], rel=1e-9)
        assert p["t"] == pytest.approx(popt[k] / perr[k], rel=1e-6)
        assert p["ci"][0] == pytest.approx(popt[k] - q * perr[k], rel=1e-6)
        assert p["ci"][1] == pytest.approx(popt[k] + q * perr[k], rel=1e-6)
    resid = Y - decay(X, *popt)
    assert out["rss"] == pytest.approx(resid @ resid, rel=1e-9)
    assert out["residual_sd"] == pytest.approx(math.sqrt(resid @ resid / (len(X) - 3)), rel=1e-9)
    assert out["r2"] == pytest.approx(1 - resid @ resid / np.sum((Y - Y.mean()) ** 2), rel=1e-9)
    corr = np.array(out["correlation"])
    assert np.allclose(np.diag(corr), 1.0) and np.allclose(corr, corr.T, atol=1e-12)


def test_tutorial_function_and_plain_and_params_formats(tmp_path: Path):
    x = np.arange(-3.0, 4.0)
    y = 1.5 * x**2 - 2.0 * x + 0.5  # exact: the fit must give these back
    data = write_csv(
        tmp_path / "points.csv", ["x", "y"], [[repr(float(a)), repr(float(b))] for a, b in zip(x, y, strict=True)]
    )
    plain = invoke("fit", "y = a*x**2 + b*x + c", "--data", data, "--format", "plain")
    assert plain.exit_code == 0, plain.stderr
    values = [float(v) for v in plain.stdout.split()]
    assert values == pytest.approx([1.5, -2.0, 0.5], abs=1e-12)
    params = invoke("fit", "a*x**2 + b*x + c", "--data", data, "--format", "params")
    assert re.fullmatch(r"a=[-0-9.e]+,b=[-0-9.e]+,c=[-0-9.e]+\n", params.stdout)


def test_fixed_parameter_and_bounds(decay_csv: str):
    out = json_of(invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "-p", "c=0.4", "--format", "json"), "fit")
    assert list(out["parameters"]) == ["a", "b"] and out["fixed"] == {"c": 0.4}
    popt, _ = curve_fit(lambda x, a, b: decay(x, a, b, 0.4), X, Y, p0=[1, 1], xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert out["parameters"]["a"]["value"] == pytest.approx(popt[0], rel=1e-7)
    # b's best value lies above 1: the fit over b <= 1 holds it on the bound, and that is its
    # answer (as SciPy's bounded least_squares finds it), not a fit that did not converge; but
    # b's standard error and interval are a free parameter's (the interval runs past 1), so a
    # warning names it and the exit status says the statistics are not to be trusted
    boxed = json_of(
        invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--bounds", "b=0:1", "--format", "json"), "fit", 3
    )
    assert boxed["warnings"] == [
        "b is held on its bound (the sum of squares falls beyond it): the standard error and interval "
        "are those of a free parameter and do not hold there"
    ]
    box = ([-np.inf, 0, -np.inf], [np.inf, 1, np.inf])
    tight = {"xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15}
    oracle = least_squares(
        lambda p: decay(X, *p) - Y, [1.0, 0.5, 1.0], jac=lambda p: decay_jacobian(X, *p), bounds=box, **tight
    )
    assert oracle.x[1] == pytest.approx(1.0) and curve_fit(decay, X, Y, p0=[1, 1, 1])[0][1] > 1.0
    assert [boxed["parameters"][k]["value"] for k in "abc"] == pytest.approx(list(oracle.x), rel=1e-9)
    assert boxed["status"] == "converged" and boxed["rss"] == pytest.approx(2 * oracle.cost, rel=1e-12)


def test_non_identifiable_model_warns_and_names_the_parameters(decay_csv: str):
    result = invoke("fit", "y = b1*b2*t", "--data", decay_csv, "--format", "json")
    out = json_of(result, "fit", 3)
    assert any("singular" in w and "b1, b2" in w for w in out["warnings"])
    plain = invoke("fit", "y = b1*b2*t", "--data", decay_csv, "--format", "plain")
    assert plain.exit_code == 3
    assert "Warning: J^T J is singular: the data cannot determine b1, b2 separately" in plain.stderr


def test_starts_list_distinct_fits(decay_csv: str):
    out = json_of(invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--starts", "4", "--format", "json"), "fit")
    assert out["fits"] and sum(f["starts"] for f in out["fits"]) >= 1
    assert out["fits"][0]["rss"] == out["rss"]


def test_plot_file(decay_csv: str, tmp_path: Path):
    picture = tmp_path / "fit.png"
    result = invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--plot-file", str(picture), "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_from_stdin_whitespace_and_comments():
    text = "# decay\nt y\n" + "".join(f"{float(x)!r}   {float(y)!r}  # row\n" for x, y in zip(X, Y, strict=True))
    result = invoke("fit", "y = a*exp(-b*t) + c", "--data", "-", "--format", "plain", input=text)
    assert result.exit_code == 0, result.stderr
    popt, _ = _curve_fit()
    assert [float(v) for v in result.stdout.split()] == pytest.approx(popt, rel=1e-9)


def test_columns_option_names_a_headerless_file(tmp_path: Path):
    path = tmp_path / "bare.tsv"
    path.write_text("".join(f"{float(y)!r}\t{float(x)!r}\n" for x, y in zip(X, Y, strict=True)))
    result = invoke("fit", "y = a*exp(-b*t) + c", "--data", str(path), "--columns", "y,t", "--format", "plain")
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- bad input, word for word


@pytest.fixture
def small(tmp_path: Path) -> str:
    return write_csv(tmp_path / "s.csv", ["x", "y", "s"], [["1", "2", "1"], ["2", "3", "0"], ["3", "5", "1"]])


@pytest.mark.parametrize(
    "args, message",
    [
        (["yy = a*x"], "the left side names 'yy', which is not a column of '{data}' (did you mean 'y'?) (columns: x, y, s)"),  # noqa: E501
        (["y = a*xx + b"], "the right side uses no column of the data (columns: x, y, s); 'xx' is one letter off column 'x'"),  # noqa: E501
        (["y = 2*x"], "the model has no parameters to fit: every name on the right side is a column or fixed by -p"),
        (["y = a*x", "--sigma", "s"], "--sigma: column s is not positive on line 3"),
        (["y = a*x + b*x**2 + c + d"], "--data '{data}' has 3 observations, fewer than the 4 parameters to fit"),
        (["y = a*log(x - 2)"], "the model is not finite at the start a=1 on lines 2, 3 of '{data}'; give a start where it is, with --from"),  # noqa: E501
        (["y = a*x", "-p", "q=1"], "-p/--param: 'q' is not a parameter of the model (parameters: a)"),
        (["y = a*x", "--sigma", "s", "--weights", "s"], "--sigma and --weights cannot be given together: --sigma is absolute, --weights relative"),  # noqa: E501
        (["y = a*exp[x)"], "')' closes '['"),
        (["y = a*x", "--from", "b=2"], "--from: 'b' is not a parameter of the model (parameters: a)"),
    ],
)  # fmt: skip
def test_bad_input_one_error_line(small: str, args: list[str], message: str):
    result = invoke("fit", *args, "--data", small)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "Error: " + message.format(data=small)


@pytest.mark.parametrize(
    "content, message",
    [
        ("x,y\n1,2\n2,abc\n", "--data '{data}' line 3: 'abc' is not a number (column y)"),
        ("x,y\n1,2\n2,nan\n3,4\n4,inf\n", "--data '{data}': column y is not a finite number on lines 3, 5 (rows are never dropped: remove or fix them)"),  # noqa: E501
        ("1,2\n2,3\n", "--data '{data}' line 1: the first line must name the columns (a header row such as y,x), or give --columns"),  # noqa: E501
        ("x,y\n1,2,3\n", "--data '{data}' line 2: expected 2 values (x,y), found 3"),
        ("# nothing\nx,y\n", "--data: '{data}' has no rows of data"),
    ],
)  # fmt: skip
def test_bad_data_file(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = invoke("fit", "y = a*x", "--data", str(path))
    assert result.exit_code == 2
    assert result.stderr == "Error: " + message.format(data=path) + "\n"


def test_data_budgets(tmp_path: Path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{k}" for k in range(1001)) + "\n")
    result = invoke("fit", "c0 = a*c1", "--data", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"Error: --data '{path}' line 1: more than the limit of 1,000 columns\n"
    long_line = tmp_path / "long.csv"
    long_line.write_text("x,y\n" + "1" * 70_000 + ",2\n")
    result = invoke("fit", "y = a*x", "--data", str(long_line))
    assert result.stderr == f"Error: --data '{long_line}' line 2: the line is longer than the limit of 65,536 bytes\n"
    missing = invoke("fit", "y = a*x", "--data", str(tmp_path / "none.csv"))
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: --data: cannot read")


def test_ctrl_c_reports_the_best_parameters_so_far(decay_csv: str, monkeypatch: pytest.MonkeyPatch):
    from autodiffcli import interrupts

    calls = {"n": 0}

    def pressed_at_the_fifth_evaluation(self: interrupts.Request) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(interrupts.Request, "check", pressed_at_the_fifth_evaluation)
    result = invoke("fit", "y = a*exp(-b*t) + c", "--data", decay_csv, "--format", "json")
    out = json_of(result, "fit", 130)
    assert out["status"] == "interrupted"
    assert all(p["value"] is not None for p in out["parameters"].values())
    assert result.stderr == "Error: interrupted; the best parameters so far are reported\n"


def test_float32_is_allowed_and_less_accurate():
    nist = read_nist(SHARED / "Misra1a.dat")
    begin = ",".join(f"{n}={v}" for n, v in zip(nist["names"], nist["starts"][0], strict=True))
    args = ("fit", nist["model"], "--data", str(SHARED / "Misra1a.dat"), "--from", begin, "--format", "json")
    out = json_of(invoke(*args, "--dtype", "float32"), "fit")
    digits = [lre(out["parameters"][n]["value"], c) for n, c in zip(nist["names"], nist["certified"], strict=True)]
    assert 4 <= min(digits) < 10  # single precision: some digits, not all 11
    # the statistics come from float64 residuals at that point: the sum of squares was 4.2
    # digits (below the certified minimum, which no point can be), the standard errors 4.5
    assert lre(out["rss"], nist["rss"]) >= 6, (out["rss"], nist["rss"])
    for name, se in zip(nist["names"], nist["stderr"], strict=True):
        assert lre(out["parameters"][name]["stderr"], se) >= 6, (name, out["parameters"][name]["stderr"], se)


def test_float32_data_it_cannot_hold_is_said_not_fitted(tmp_path: Path):
    """y = 1e9 + 3 exp(-0.8 x) + noise: float32 rounds every y to 1e9, every residual at the
    start was 0, and the start came back as a perfect fit (rss 0, r2 1, exit 0). curve_fit in
    float64 (the oracle) finds the fit the data hold."""
    rng = np.random.default_rng(9)
    x = np.round(np.linspace(0, 5, 30), 4)  # as the file holds them
    y = 1e9 + np.round(3 * np.exp(-0.8 * x) + rng.normal(0, 0.01, 30), 4)
    path = tmp_path / "offset.csv"
    path.write_text("x,y\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(x, y, strict=True)))
    model = ("fit", "y = a*exp(-k*x)+c", "--data", str(path), "--from", "c=1e9", "--format", "json")
    single = invoke(*model, "--dtype", "float32")
    data = json_of(single, "fit", exit_code=3)
    assert data["rss"] > 1  # float64's sum of squares at the start, not 0
    assert any("use --dtype float64" in w for w in data["warnings"])
    # the oracle on y - 1e9 (exactly representable shifts): the same a and k
    (a, k, _), _ = curve_fit(
        lambda t, a, k, c: a * np.exp(-k * t) + c, x, y - 1e9, p0=[1, 1, 0], ftol=1e-15, xtol=1e-15, gtol=1e-15
    )
    double = json_of(invoke(*model, "--dtype", "float64"), "fit")
    assert [double["parameters"][n]["value"] for n in ("a", "k")] == pytest.approx([a, k], rel=1e-6)


def test_a_parameter_that_cancels_out_is_named(small: str):
    result = invoke("fit", "y = a*x + c - c", "--data", small, "--format", "plain")
    assert result.exit_code == 3
    assert "Warning: parameter c does not appear in the model once it is read (it cancels out)" in result.stderr


LARGE = 25_000  # above calculus.residuals.LARGE_ROWS: Levenberg-Marquardt on the normal equations


@pytest.fixture(scope="module")
def large_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 6.0, LARGE)
    y = 2.5 * np.exp(-1.3 * x) + 0.4 + 0.02 * rng.standard_normal(LARGE)
    path = tmp_path_factory.mktemp("large") / "large.csv"
    path.write_text("t,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True)))
    return str(path), x, y


@pytest.mark.parametrize("start", ["a=1,b=1,c=1", "a=40,b=0.05,c=-3"])
def test_a_large_table_fits_as_curve_fit_with_its_exact_jacobian(large_table, start: str):
    """The sums of the normal equations stay in TensorFlow; the point, the standard errors and
    the sum of squares are those of MINPACK given the hand-written Jacobian (tolerances 1e-15)."""
    data, x, y = large_table
    out = json_of(invoke("fit", "y = a*exp(-b*t) + c", "--data", data, "--from", start, "--format", "json"), "fit")
    popt, pcov = curve_fit(decay, x, y, p0=[1, 1, 1], jac=decay_jacobian, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert out["status"] == "converged" and out["verdict"] == "minimum" and out["warnings"] == []
    for k, name in enumerate("abc"):
        assert out["parameters"][name]["value"] == pytest.approx(popt[k], rel=1e-10)
        assert out["parameters"][name]["stderr"] == pytest.approx(math.sqrt(pcov[k, k]), rel=1e-7)
    r = y - decay(x, *popt)
    assert out["rss"] == pytest.approx(float(r @ r), rel=1e-12) and out["n"] == LARGE


def test_a_large_table_still_names_what_it_cannot_determine(large_table):
    data, _, _ = large_table
    out = json_of(invoke("fit", "y = b1*b2*t + c", "--data", data, "--format", "json"), "fit", 3)
    assert any("singular" in w and "b1, b2" in w for w in out["warnings"])


def test_a_parameter_named_e_is_a_parameter(tmp_path: Path):
    """``e`` is a name (docs/language.md), not Euler's number: the fit crashed with KeyError 'e'
    (exit 1). Oracle: NumPy's polyfit."""
    x = np.array([1.0, 2, 3, 4, 5])
    y = np.array([2.0, 3.1, 3.9, 5.2, 5.9])
    data = write_csv(
        tmp_path / "e.csv", ["x", "y"], [[repr(a), repr(b)] for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    )
    out = json_of(invoke("fit", "y = a + e*x + 1e-1*0", "--data", data, "--format", "json"), "fit")
    slope, intercept = np.polyfit(x, y, 1)
    assert list(out["parameters"]) == ["a", "e"]
    assert [out["parameters"][k]["value"] for k in "ae"] == pytest.approx([intercept, slope], rel=1e-12)


def test_rows_of_weight_zero_are_not_observations(tmp_path: Path):
    """As R's nls (n = sum(w > 0)): 3 rows of weight 0 among 20 leave n = 17 and 15 degrees of
    freedom, and the standard errors are curve_fit's on the 17 rows (they were 9% smaller)."""
    x = np.linspace(0.0, 4.0, 20)
    y = 2 * np.exp(-0.7 * x) + np.random.default_rng(5).normal(0, 0.02, 20)
    w = np.ones(20)
    w[:3] = 0
    rows = [[repr(a), repr(b), repr(c)] for a, b, c in zip(x.tolist(), y.tolist(), w.tolist(), strict=True)]
    data = write_csv(tmp_path / "w0.csv", ["x", "y", "w"], rows)
    out = json_of(invoke("fit", "y = a*exp(-b*x)", "--data", data, "--weights", "w", "--format", "json"), "fit")
    popt, pcov = curve_fit(lambda t, a, b: a * np.exp(-b * t), x[3:], y[3:], p0=[1, 1], xtol=1e-15, ftol=1e-15)
    assert out["n"] == 17 and out["dof"] == 15
    for k, name in enumerate("ab"):
        assert out["parameters"][name]["value"] == pytest.approx(popt[k], rel=1e-9)
        assert out["parameters"][name]["stderr"] == pytest.approx(math.sqrt(pcov[k, k]), rel=1e-6)
    q = stats.t.ppf(0.975, 15)
    assert out["parameters"]["a"]["ci"][1] == pytest.approx(popt[0] + q * math.sqrt(pcov[0, 0]), rel=1e-9)


def test_a_straight_line_far_from_the_origin_is_a_strict_minimum(tmp_path: Path):
    """x near 1e6: the intercept and slope correlate to -0.99999999999 but the sum of squares
    of a line through 12 distinct x has one strict minimum; it was called flat (exit 3).
    Oracle: the least-squares line in 50-digit arithmetic (float64's centred formula is off
    in the 9th digit here: the slope is that sensitive)."""
    import mpmath

    x = 1e6 + np.linspace(0.0, 10.0, 12)
    y = 1e9 + 3 * (x - 1e6) + np.random.default_rng(1).normal(0, 0.5, 12)
    data = write_csv(
        tmp_path / "big.csv", ["x", "y"], [[repr(a), repr(b)] for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    )
    out = json_of(invoke("fit", "y = a + b*x", "--data", data, "--format", "json"), "fit")
    with mpmath.workdps(50):
        # from the file's text, as the tool reads it: 1000000.9090909091 is not the float it came from
        xs, ys = [mpmath.mpf(repr(v)) for v in x.tolist()], [mpmath.mpf(repr(v)) for v in y.tolist()]
        mx, my = sum(xs) / 12, sum(ys) / 12
        slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum((a - mx) ** 2 for a in xs)
        intercept = my - slope * mx
    assert out["verdict"] == "minimum"
    assert out["parameters"]["b"]["value"] == pytest.approx(float(slope), rel=1e-11)
    assert out["parameters"]["a"]["value"] == pytest.approx(float(intercept), rel=1e-14)


def test_a_fit_worse_than_the_mean_is_not_trusted(tmp_path: Path):
    """sin(w*x) from w = 1 ends in a local minimum near w = 1.02 whose R^2 is negative (the
    global one is w = 3): it was reported as a trusted fit, exit 0."""
    x = np.linspace(0.0, 10.0, 40)
    y = np.sin(3 * x) + np.random.default_rng(2).normal(0, 0.05, 40)
    data = write_csv(
        tmp_path / "s.csv", ["x", "y"], [[repr(a), repr(b)] for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    )
    out = json_of(invoke("fit", "y = sin(w*x)", "--data", data, "--from", "w=1", "--format", "json"), "fit", 3)
    w = out["parameters"]["w"]["value"]
    r2 = 1 - np.sum((y - np.sin(w * x)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 < 0 and out["r2"] == pytest.approx(r2, rel=1e-9)
    assert any("R^2 is" in m and "--starts" in m for m in out["warnings"])
    best = json_of(invoke("fit", "y = sin(w*x)", "--data", data, "--from", "w=2.9", "--format", "json"), "fit")
    assert best["parameters"]["w"]["value"] == pytest.approx(3.0, abs=1e-2) and best["r2"] > 0.99
