"""Reports -> strict JSON and bare numbers, for scripts. (Tables for people: ``tables.py``.)

Nothing here imports rich or click, so a JSON run does not pay for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .numerics import plain_text, rounded
from .optimize import display_name
from .reports import GradReport, MinimizeReport

GRAD_SCHEMA = "autodiff.grad/1"
MINIMIZE_SCHEMA = "autodiff.minimize/1"


# ---------------------------------------------------------------- JSON


def grad_json(report: GradReport) -> dict[str, Any]:
    req, r = report.request, report.result
    p = req.problem
    dt = p.dtype

    def num(v: float | None) -> float | None:
        return rounded(v, dt)

    results = []
    for i in range(len(req.points)):
        item: dict[str, Any] = {
            "point": {k: num(v) for k, v in req.point(i).items()},
            "value": num(r.value[i]),
            "gradient": {n: None if g is None else num(g[i]) for n, g in r.gradient.items()},
        }
        if req.order >= 2:
            item["hessian"] = {a: {b: num(h[i]) for b, h in row.items()} for a, row in r.hessian.items()}
        if r.higher:
            item["derivatives"] = [num(d[i]) for d in r.higher]
        if report.verdicts:
            item["verdict"] = report.verdicts[i].kind
            item["eigenvalues"] = [num(v) for v in report.verdicts[i].eigenvalues]
        results.append(item)
    warnings = list(report.warnings)
    unwatched = [n for n, g in r.gradient.items() if g is None]
    if unwatched:
        warnings.append(f"no gradient for {', '.join(unwatched)}: parameters are constants; add --watch to get one")
    return {
        "schema": GRAD_SCHEMA,
        "expression": p.canonical,
        "variables": list(p.variables),
        "params": {k: num(v) for k, v in p.params.items()},
        "dtype": dt,
        "results": results,
        "symbolic": report.symbolic,
        "warnings": warnings,
    }


def minimize_json(report: MinimizeReport) -> dict[str, Any]:
    o, s, p = report.outcome, report.settings, report.problem
    dt = p.dtype

    def point(x: Mapping[str, float]) -> dict[str, float | None]:
        return {k: rounded(v, dt) for k, v in x.items()}

    return {
        "schema": MINIMIZE_SCHEMA,
        "expression": p.canonical,
        "variables": list(p.variables),
        "params": point(p.params),
        "dtype": dt,
        "optimizer": display_name(s.optimizer),
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
        "starts": s.starts,
        "basins": [
            {"x": point(b.x), "f": rounded(b.f, dt), "count": b.count, "verdict": b.verdict.kind} for b in report.basins
        ],
        "timing": {"optimize_s": round(o.optimize_s, 6)},
        "warnings": [*report.warnings, *report.advice],
    }


def dumps(data: dict[str, Any]) -> str:
    """Strict JSON: a NaN or Infinity that slipped through is a bug, so refuse it."""
    return json.dumps(data, indent=2, allow_nan=False)


# ---------------------------------------------------------------- plain


def grad_plain(report: GradReport) -> bytes:
    """First derivatives, space-separated, one line per point (``null``: not watched)."""
    return plain_text(list(report.result.gradient.values()), report.request.problem.dtype)


def minimize_plain(report: MinimizeReport) -> bytes:
    """The coordinates of the point found, space-separated."""
    x = report.outcome.x.values()
    return plain_text([np.array([v]) for v in x], report.problem.dtype)
