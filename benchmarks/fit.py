"""autodiff fit against SciPy's curve_fit, side by side (measurements, not tests).

    .venv/bin/python benchmarks/fit.py            # NIST 54 fits, then 10^6 rows
    .venv/bin/python benchmarks/fit.py --nist     # only the NIST part
    .venv/bin/python benchmarks/fit.py --rows 100000

NIST StRD: all 27 problems from both starts, fitted in this process with the defaults
(TensorFlow, SciPy and autodiff's modules imported before the clock starts), against curve_fit as users call it
(defaults, method lm, finite differences); the certified digits of each (the least LRE
over parameters, standard errors and RSS) printed beside each other. The goal: the time of
all 54 fits at most 3x curve_fit's.

10^6 rows of y = a*exp(-b*x) + c: at most 1.0x curve_fit with a hand-written NumPy
Jacobian, at most 0.5x curve_fit with its finite differences.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "data" / "nist"  # shared/ lies beside the checkout
NIST = [*sorted(SHARED.glob("*.dat")), *sorted((ROOT / "tests" / "data" / "nist").glob("*.dat"))]


def read_nist(path: Path) -> dict:
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
    rows = [m for m in (re.match(r"\s*(b\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", ln) for ln in lines) if m]
    head = max(k for k, line in enumerate(lines) if line.startswith("Data:"))
    data = np.array([[float(v) for v in line.split()] for line in lines[head + 1 :] if line.strip()])
    return {
        "name": path.stem,
        "model": re.sub(r"\+\s*e$", "", " ".join(model)).strip(),
        "names": [m[1] for m in rows],
        "starts": ([float(m[2]) for m in rows], [float(m[3]) for m in rows]),
        "certified": [float(m[4]) for m in rows],
        "stderr": [float(m[5]) for m in rows],
        "rss": float(next(line.split()[-1] for line in lines if line.startswith("Residual Sum of Squares"))),
        "columns": lines[head].split()[1:],
        "data": data,
        "text": "\n".join(lines[head + 1 :]),
    }


def lre(value: float, certified: float) -> float:
    if not math.isfinite(value):
        return 0.0
    if value == certified:
        return 11.0
    return max(0.0, min(11.0, -math.log10(abs(value - certified) / abs(certified))))


def digits(p: dict, values, stderr, rss) -> tuple[float, float, float]:
    return (
        min(lre(v, c) for v, c in zip(values, p["certified"], strict=True)),
        min(lre(v, c) for v, c in zip(stderr, p["stderr"], strict=True)),
        lre(rss, p["rss"]),
    )


def numpy_model(p: dict):
    """The NIST model as a NumPy function for curve_fit (the benchmark's own translation)."""
    lhs, rhs = p["model"].replace("[", "(").replace("]", ")").split("=")
    rhs = rhs.replace("arctan", "np.arctan").replace("exp", "np.exp").replace("cos", "np.cos").replace("sin", "np.sin")
    rhs = rhs.replace("pi", "np.pi")
    code = compile(rhs.strip(), p["name"], "eval")
    names = p["names"]
    columns = p["columns"]

    def f(xdata, *b):
        env = {"np": np, **dict(zip(names, b, strict=True))}
        env.update({c: xdata[k] for k, c in enumerate(columns[1:])})
        return eval(code, env)

    response = p["data"][:, 0] if lhs.strip() == "y" else np.log(p["data"][:, 0])
    return f, p["data"][:, 1:].T, response


def ours(p: dict, start: int, folder: Path):
    from autodiffcli import fit
    from autodiffcli.settings import fit_settings

    path = folder / f"{p['name']}.txt"
    if not path.exists():
        path.write_text(" ".join(p["columns"]) + "\n" + p["text"] + "\n")
    begin = ",".join(f"{n}={v!r}" for n, v in zip(p["names"], p["starts"][start], strict=True))
    settings = fit_settings(p["model"], str(path), None, (), begin, 1, None, None, None, 0.95, "float64", 0)
    report = fit.fit(settings)
    by_name = {q.name: q for q in report.parameters}
    return [by_name[n].value for n in p["names"]], [by_name[n].stderr for n in p["names"]], report.rss


def scipy_fit(p: dict, start: int):
    from scipy.optimize import curve_fit

    f, x, y = numpy_model(p)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            popt, pcov = curve_fit(f, x, y, p0=p["starts"][start], maxfev=10_000)
        except (RuntimeError, ValueError):
            return [math.nan] * len(p["names"]), [math.nan] * len(p["names"]), math.nan
    r = y - f(x, *popt)
    return list(popt), list(np.sqrt(np.abs(np.diag(pcov)))), float(r @ r)


def nist_part() -> tuple[float, float, int, int]:
    # start-up, outside both clocks: each side's imports
    import scipy.optimize
    import scipy.stats  # noqa: F401

    from autodiffcli import fit  # noqa: F401
    from autodiffcli.runtime import tensorflow

    tensorflow()
    seen, problems = set(), []
    for path in NIST:
        if path.stem not in seen:
            seen.add(path.stem)
            problems.append(read_nist(path))
    t_ours = t_scipy = 0.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in problems:
            for start in (0, 1):
                t0 = time.perf_counter()
                a = digits(p, *ours(p, start, Path(tmp)))
                t1 = time.perf_counter()
                b = digits(p, *scipy_fit(p, start))
                t2 = time.perf_counter()
                t_ours += t1 - t0
                t_scipy += t2 - t1
                rows.append((p["name"], start + 1, a, b))
    print(f"{'problem':10s} start | autodiff fit: params stderr rss | curve_fit: params stderr rss")
    for name, start, a, b in rows:
        print(f"{name:10s} {start:5d} | {a[0]:18.1f} {a[1]:6.1f} {a[2]:4.1f} | {b[0]:17.1f} {b[1]:6.1f} {b[2]:4.1f}")
    ok = sum(1 for *_, a, _b in rows if a[0] >= 6 and a[1] >= 4 and a[2] >= 6)
    ok_scipy = sum(1 for *_, b in rows if b[0] >= 6 and b[1] >= 4 and b[2] >= 6)
    four = sum(1 for *_, b in rows if b[0] >= 4)
    print(f"certified (params>=6, stderr>=4, rss>=6): autodiff fit {ok}/54, curve_fit {ok_scipy}/54 "
          f"(curve_fit params>=4: {four}/54)")  # fmt: skip
    print(f"time of the 54 fits: autodiff fit {t_ours:.2f} s, curve_fit {t_scipy:.2f} s, "
          f"ratio {t_ours / t_scipy:.1f}x (goal <= 3x)")  # fmt: skip
    return t_ours, t_scipy, ok, ok_scipy


def rows_part(n: int) -> tuple[float, float, float]:
    from scipy.optimize import curve_fit

    from autodiffcli import fit
    from autodiffcli.runtime import tensorflow
    from autodiffcli.settings import fit_settings

    tensorflow()
    rng = np.random.default_rng(0)
    x = np.linspace(0, 5, n)
    y = 2.5 * np.exp(-1.3 * x) + 0.4 + 0.01 * rng.standard_normal(n)

    def f(x, a, b, c):
        return a * np.exp(-b * x) + c

    def jac(x, a, b, c):
        e = np.exp(-b * x)
        return np.stack([e, -a * x * e, np.ones_like(x)], axis=1)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        np.savetxt(path, np.stack([x, y], axis=1), delimiter=",", header="x,y", comments="")
        settings = fit_settings("y = a*exp(-b*x) + c", str(path), None, (), None, 1, None, None, None, 0.95,
                                "float64", 0)  # fmt: skip
        from autodiffcli.points import TableReader

        t0 = time.perf_counter()
        TableReader(str(path)).read()
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit.fit(settings)
        t_ours = time.perf_counter() - t0 - t_read  # the fitting, not reading the CSV (curve_fit gets arrays)
    t0 = time.perf_counter()
    curve_fit(f, x, y, p0=[1, 1, 1], jac=jac)
    t_jac = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve_fit(f, x, y, p0=[1, 1, 1])
    t_fd = time.perf_counter() - t0
    print(f"{n:,} rows (reading the CSV, {t_read:.2f} s, left out): autodiff fit {t_ours:.2f} s, "
          f"curve_fit+NumPy Jacobian {t_jac:.2f} s ({t_ours / t_jac:.2f}x, goal <= 1.0x), "
          f"curve_fit finite differences {t_fd:.2f} s ({t_ours / t_fd:.2f}x, goal <= 0.5x)")  # fmt: skip
    return t_ours, t_jac, t_fd


def goal14_fit(plan: object, progress) -> list:
    """For benchmarks/run.py: the rows of the results table."""
    from measure import Measurement

    t_ours, t_scipy, ok, ok_scipy = nist_part()
    progress(f"NIST: {ok}/54 certified, curve_fit {ok_scipy}/54")
    t_fit, t_jac, t_fd = rows_part(1_000_000)
    return [
        Measurement("14 fit: NIST StRD 54 fits, in-process time vs curve_fit (defaults)", t_ours, t_scipy, 3.0),
        Measurement(f"14 fit: NIST StRD fits certified, of 54 (curve_fit: {ok_scipy})", ok, 54, 1.0, unit="count",
                    exact=True),
        Measurement("14 fit: 10^6 rows, y = a*exp(-b*x) + c, vs curve_fit with a NumPy Jacobian", t_fit, t_jac, 1.0),
        Measurement("14 fit: 10^6 rows vs curve_fit with finite differences", t_fit, t_fd, 0.5),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nist", action="store_true", help="only the NIST part")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    nist_part()
    if not args.nist:
        rows_part(args.rows)


if __name__ == "__main__":
    main()
