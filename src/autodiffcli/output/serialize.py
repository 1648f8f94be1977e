"""Reports -> strict JSON and bare numbers, for scripts. (Tables for people: ``tables.py``.)

Nothing here imports rich or click, so a JSON run does not pay for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..calculus.derivatives import Derivatives
from ..calculus.gradcheck import Check, Entry
from ..fit import FitReport
from ..formatting import fmt, rounded
from ..grad import GradChunk, GradReport, GradRun, Symbolic
from ..minimize import MinimizeReport
from ..settings import Problem
from ..solve.higher_order import HigherVerdict
from ..solve.registry import display_name
from ..solve.verdict import MAXIMUM, MINIMUM, SADDLE, Verdict

GRAD_SCHEMA = "autodiff.grad/1"
MINIMIZE_SCHEMA = "autodiff.minimize/1"
FIT_SCHEMA = "autodiff.fit/1"


# ---------------------------------------------------------------- JSON


def grad_json(report: GradReport) -> dict[str, Any]:
    """The whole ``autodiff.grad/1`` document of a report, as a dict."""
    req, p = report.request, report.request.problem
    batch = GradChunk(req.points, report.result, 0, report.verdicts, report.checks)
    return {
        **_grad_head(p),
        "results": [_grad_item(batch, i, req.order, p) for i in range(len(req.points))],
        **_grad_tail(p, report.symbolic, report.warnings, report.result),
    }


class GradJson:
    """``autodiff.grad/1`` written as a stream: the keys before ``results``, then the results
    batch by batch, then the rest; the text is the same as ``dumps`` of the whole document.

    A run that stops part way (a bad line in a points file, Ctrl-C) still ends the document:
    the results written so far, then ``symbolic``, ``warnings`` and ``error``, so stdout
    always holds one valid JSON document once anything was written.
    """

    def __init__(self, run: GradRun, write: Callable[[str], None]) -> None:
        self.run = run
        self.write = write
        self.started = False
        self._first = True

    def batch(self, batch: GradChunk) -> None:
        p, order = self.run.request.problem, self.run.request.order
        head = ""
        if not self.started:
            head = "{\n" + "".join(_member(k, v) + ",\n" for k, v in _grad_head(p).items()) + '  "results": ['
            self.started = True
        items = [_grad_item(batch, i, order, p) for i in range(len(batch.points))]
        if items:
            sep = "\n" if self._first else ",\n"
            self._first = False
            # one encoder call a batch: "[\n  {...},\n  {...}\n]" less its brackets, two spaces deeper
            self.write(head + sep + _indent(dumps(items)[2:-2], 2))
        elif head:
            self.write(head)

    def finish(self, result: Derivatives, error: str | None = None) -> None:
        tail = _grad_tail(self.run.request.problem, self.run.symbolic, self.run.warnings, result)
        if error is not None:
            tail["error"] = error
        self.write("\n  ],\n" + ",\n".join(_member(k, v) for k, v in tail.items()) + "\n}\n")


def _grad_head(p: Problem) -> dict[str, Any]:
    return {
        "schema": GRAD_SCHEMA,
        "expression": p.canonical,
        "variables": list(p.variables),
        "params": {k: rounded(v, p.dtype) for k, v in p.params.items()},
        "dtype": p.dtype,
    }


def _grad_item(batch: GradChunk, i: int, order: int, p: Problem) -> dict[str, Any]:
    r, dt = batch.result, p.dtype

    def num(v: float | None) -> float | None:
        return rounded(v, dt)

    item: dict[str, Any] = {
        "point": {k: num(v) for k, v in batch.point(i, p.variables).items()},
        "value": num(r.value[i]),
        "gradient": {n: None if g is None else num(g[i]) for n, g in r.gradient.items()},
    }
    if order >= 2:
        item["hessian"] = {a: {b: num(h[i]) for b, h in row.items()} for a, row in r.hessian.items()}
    if r.higher:
        item["derivatives"] = [num(d[i]) for d in r.higher]
    if batch.verdicts:
        item["verdict"] = batch.verdicts[i].kind
        item["eigenvalues"] = [num(v) for v in batch.verdicts[i].eigenvalues]
    if batch.checks:
        item["check"] = _check(batch.checks[i], dt)
    return item


def _check(check: Check, dtype: str) -> dict[str, Any]:
    def entry(e: Entry) -> dict[str, float | None]:
        return {
            "tape": rounded(e.tape, dtype),
            "exact": e.exact,
            "tape_error": _finite(e.tape_error),
            "fd": rounded(e.fd, dtype),
            "fd_error": _finite(e.fd_error),
        }

    out: dict[str, Any] = {"gradient": {n: entry(e) for n, e in check.gradient.items()}}
    if check.hessian:
        out["hessian"] = {a: {b: entry(e) for b, e in row.items()} for a, row in check.hessian.items()}
    return {**out, "tolerance": check.tolerance, "ok": check.ok, "not_checked": check.not_checked}


def _finite(value: float | None) -> float | None:
    """An error to 3 significant digits; None when unknown or infinite."""
    return float(f"{value:.3g}") if value is not None and np.isfinite(value) else None


def _grad_tail(p: Problem, symbolic: Symbolic, warnings: list[str], result: Derivatives) -> dict[str, Any]:
    warnings = list(warnings)
    if p.vanished:
        warnings.append(p.dropped)
    unwatched = [n for n, g in result.gradient.items() if g is None]
    if unwatched:
        warnings.append(f"no gradient for {', '.join(unwatched)}: parameters are constants; add --watch to get one")
    return {"symbolic": symbolic, "warnings": warnings}


def _member(key: str, value: Any) -> str:
    """One key of a top-level object, as ``dumps`` writes it inside the whole document."""
    return f"  {json.dumps(key)}: {_indent(dumps(value), 2)[2:]}"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return pad + text.replace("\n", "\n" + pad)


def minimize_json(report: MinimizeReport) -> dict[str, Any]:
    o, s, p = report.outcome, report.settings, report.problem
    dt = p.dtype

    def point(x: Mapping[str, float]) -> dict[str, float | None]:
        return {k: rounded(v, dt) for k, v in x.items()}

    doc = {
        "schema": MINIMIZE_SCHEMA,
        "expression": p.canonical,
        "variables": list(p.variables),
        "params": point(p.params),
        "dtype": dt,
        "optimizer": display_name(s.optimizer, s.starts),
        "learning_rate": s.learning_rate if s.keras else None,
        "mode": o.mode,
        "style": s.style,
        "start": point(report.start),
        "x": point(o.x),
        "f": rounded(o.f, dt),
        "gradient": point(o.gradient),
        "grad_norm": rounded(o.grad_norm, dt),
        "steps": o.steps,
        "status": o.status,
        "history": [
            {"step": row.step, "x": point(row.x), "f": rounded(row.f, dt), "grad_norm": rounded(row.grad_norm, dt)}
            for row in o.history
        ],
        "evaluations": o.evaluations,
        "verdict": None if report.verdict is None else report.verdict.kind,
        "eigenvalues": None if report.verdict is None else [rounded(v, dt) for v in report.verdict.eigenvalues],
        **verdict_order(report.verdict),
        "starts": s.starts,
        "basins": [
            {"x": point(b.x), "f": rounded(b.f, dt), "count": b.count, "verdict": b.verdict.kind} for b in report.basins
        ],
        "timing": {"optimize_s": round(o.optimize_s, 6)},
        "warnings": [*report.warnings, *report.advice],
    }
    if report.kkt is not None:
        doc.update(_constraints_json(report))
    return doc


def _constraints_json(report: MinimizeReport) -> dict[str, Any]:
    """With constraints: each one's value (lhs - rhs) at the point, whether it is active, its
    multiplier (d f* / d rhs); the largest violation and the KKT residual."""
    k, dt = report.kkt, report.problem.dtype
    assert k is not None
    return {
        "constraints": [
            {"text": c.text, "value": rounded(v, dt), "active": bool(a), "multiplier": rounded(m, dt)}
            for c, v, a, m in zip(report.problem.constraints, k.values, k.active, k.multipliers, strict=True)
        ],
        "max_violation": rounded(k.max_violation, dt),
        "kkt_residual": rounded(k.kkt_residual, dt),
    }


def fit_json(report: FitReport) -> dict[str, Any]:
    """The ``autodiff.fit/1`` document: every number finite or null (the reason in ``warnings``)."""

    def num(v: float | None) -> float | None:
        return rounded(v, "float64")

    return {
        "schema": FIT_SCHEMA,
        "model": report.model,
        "response": report.response,
        "expression": report.expression,
        "predictors": list(report.predictors),
        "parameters": {
            p.name: {"value": num(p.value), "stderr": num(p.stderr), "t": num(p.t), "ci": [num(p.ci[0]), num(p.ci[1])]}
            for p in report.parameters
        },
        "fixed": {k: num(v) for k, v in report.fixed.items()},
        "level": report.level,
        "weighting": report.weighting,
        "rss": num(report.rss),
        "residual_sd": num(report.residual_sd),
        "dof": report.dof,
        "n": report.n,
        "r2": num(report.r2),
        "correlation": None
        if report.correlation is None
        else [[num(v) for v in row] for row in report.correlation],
        "evaluations": report.evaluations,
        "status": report.status,
        "verdict": report.verdict,
        "fits": [{"parameters": {k: num(v) for k, v in f.values.items()}, "rss": num(f.rss), "starts": f.starts}
                 for f in report.fits],
        "warnings": [w.removeprefix("Warning: ") for w in report.warnings],
    }  # fmt: skip


def verdict_order(verdict: Verdict | None) -> dict[str, Any]:
    """``verdict_order``: the order of the derivative that decided the verdict (2: the Hessian's
    eigenvalues; 3, 4, ...: a directional derivative along a null direction of the Hessian;
    null: undecided or no verdict), and ``verdict_derivative``, that derivative's value (null
    for order 2, whose eigenvalues are listed)."""
    if isinstance(verdict, HigherVerdict):
        return {"verdict_order": verdict.order, "verdict_derivative": rounded(verdict.derivative, "float64")}
    decided = verdict is not None and verdict.kind in (MINIMUM, MAXIMUM, SADDLE)
    return {"verdict_order": 2 if decided else None, "verdict_derivative": None}


def dumps(data: dict[str, Any] | list[Any]) -> str:
    """Strict JSON: a NaN or Infinity that slipped through is a bug, so refuse it."""
    return json.dumps(data, indent=2, allow_nan=False)


# ---------------------------------------------------------------- plain


def grad_plain(report: GradReport) -> bytes:
    """First derivatives, space-separated, one line per point (``null``: not watched)."""
    return plain_text(list(report.result.gradient.values()), report.request.problem.dtype)


def grad_plain_batch(batch: GradChunk, dtype: str) -> bytes:
    """The same for one batch of a stream: whole lines, so what is written stays valid."""
    return plain_text(list(batch.result.gradient.values()), dtype)


def minimize_plain(report: MinimizeReport) -> bytes:
    """The coordinates of the point found, space-separated."""
    x = report.outcome.x.values()
    return plain_text([np.array([v]) for v in x], report.problem.dtype)


PLAIN_BLOCK = 32_768  # rows formatted at a time


def plain_text(columns: list[np.ndarray | None], dtype: str) -> bytes:
    """One line per row, columns space-separated, each number as ``tf.print`` writes it
    (9 significant digits for float32, 17 for float64: enough to read the exact value
    back); a column of None prints ``null``. Formatted by TensorFlow's C++ string ops, so
    a million rows take well under a second. Returns UTF-8 bytes, every line ending in a
    newline.
    """
    from ..runtime import tensorflow

    tf = tensorflow()
    rows = max((len(c) for c in columns if c is not None), default=0)
    digits = 9 if dtype == "float32" else 17

    def block(lo: int, hi: int) -> bytes:
        cells = [
            tf.fill([hi - lo], "null")
            if c is None
            else tf.strings.as_string(_plus(c[lo:hi]), precision=digits, shortest=True)
            for c in columns
        ]
        parts = [piece for cell in cells for piece in (cell, " ")]
        parts[-1] = "\n"
        return tf.strings.reduce_join(tf.strings.join(parts)).numpy()

    # blocks of rows keep the intermediate strings small enough to stay in cache
    return b"".join(block(lo, min(rows, lo + PLAIN_BLOCK)) for lo in range(0, rows, PLAIN_BLOCK))


def _plus(values: np.ndarray) -> np.ndarray:
    """-0.0 as 0.0, and every NaN as NaN: x86's invalid operations give a NaN with its sign
    bit set, which TensorFlow writes as "-nan" (a NaN has no sign)."""
    values = np.asarray(values) + 0.0
    return np.where(np.isnan(values), np.abs(values), values)


def fit_plain(report: FitReport) -> str:
    """The fitted values on one line, in the order the parameters first appear in the model."""
    return " ".join(fmt(p.value) for p in report.parameters) + "\n"


def fit_params(report: FitReport) -> str:
    """``b1=...,b2=...``: to paste into ``-p`` of another command."""
    return ",".join(f"{p.name}={fmt(p.value)}" for p in report.parameters) + "\n"
