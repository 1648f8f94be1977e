"""The public JSON schemas of ``--format json`` (JSON Schema, draft 2020-12)."""

from __future__ import annotations

from typing import Any

_NUM = {"type": ["number", "null"]}  # null: not finite (the reason is in "warnings")
_POINT = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
_NAMES = {"type": "array", "items": {"type": "string"}}
_WARNINGS = {"type": "array", "items": {"type": "string"}}
_VERDICT = {"enum": ["minimum", "maximum", "saddle", "degenerate", "not stationary", "not a KKT point"]}
_CHECKED = {  # one derivative under --check; errors are null when unknown (no finite exact value) or infinite
    "type": "object",
    "required": ["tape", "exact", "tape_error", "fd", "fd_error"],
    "additionalProperties": False,
    "properties": {"tape": _NUM, "exact": _NUM, "tape_error": _NUM, "fd": _NUM, "fd_error": _NUM},
}
_CHECK = {  # ok: null where no derivative has a finite exact value (nothing checked, not a pass)
    "type": "object",
    "required": ["gradient", "tolerance", "ok", "not_checked"],
    "additionalProperties": False,
    "properties": {
        "gradient": {"type": "object", "additionalProperties": _CHECKED},
        "hessian": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _CHECKED}},
        "tolerance": {"type": "number"},
        "ok": {"type": ["boolean", "null"]},
        "not_checked": _NAMES,
    },
}

GRAD: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autodiff.grad/1",
    "type": "object",
    "required": ["schema", "expression", "variables", "params", "dtype", "results", "symbolic", "warnings"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "autodiff.grad/1"},
        "expression": {"type": "string"},
        "variables": _NAMES,
        "params": _POINT,
        "dtype": {"enum": ["float32", "float64"]},
        "results": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["point", "value", "gradient"],
                "additionalProperties": False,
                "properties": {
                    "point": _POINT,
                    "value": _NUM,
                    "gradient": _POINT,
                    "hessian": {"type": "object", "additionalProperties": _POINT},
                    "derivatives": {"type": "array", "items": _NUM},
                    "verdict": _VERDICT,
                    "eigenvalues": {"type": "array", "items": _NUM},
                    "check": _CHECK,
                },
            },
        },
        "symbolic": {
            "type": "object",
            "required": ["gradient"],
            "additionalProperties": False,
            "properties": {
                "gradient": {"type": "object", "additionalProperties": {"type": "string"}},
                "hessian": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "derivatives": {"type": "array", "items": {"type": "string"}},
            },
        },
        "warnings": _WARNINGS,
        "error": {"type": "string"},  # only when a run stopped part way (a bad line in --at-file, Ctrl-C)
    },
}

MINIMIZE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autodiff.minimize/1",
    "type": "object",
    "required": [
        "schema",
        "expression",
        "variables",
        "params",
        "dtype",
        "optimizer",
        "learning_rate",
        "mode",
        "style",
        "start",
        "x",
        "f",
        "gradient",
        "grad_norm",
        "steps",
        "status",
        "history",
        "evaluations",
        "verdict",
        "eigenvalues",
        "verdict_order",
        "verdict_derivative",
        "starts",
        "basins",
        "timing",
        "warnings",
    ],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "autodiff.minimize/1"},
        "expression": {"type": "string"},
        "variables": _NAMES,
        "params": _POINT,
        "dtype": {"enum": ["float32", "float64"]},
        "optimizer": {"type": "string"},
        "learning_rate": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "mode": {"enum": ["eager", "graph", "xla"]},
        "style": {"enum": ["tape", "minimize"]},
        "start": _POINT,
        "x": _POINT,
        "f": _NUM,
        "gradient": _POINT,
        "grad_norm": _NUM,
        "steps": {"type": "integer", "minimum": 0},
        # saddle, minimum, maximum: the method's test was met at a point the verdict refutes (exit 3);
        # infeasible: no point met the constraints (exit 3)
        "status": {
            "enum": [
                "converged",
                "max_steps",
                "stalled",
                "diverged",
                "interrupted",
                "saddle",
                "minimum",
                "maximum",
                "infeasible",
            ]
        },
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["step", "x", "f", "grad_norm"],
                "additionalProperties": False,
                "properties": {"step": {"type": "integer", "minimum": 0}, "x": _POINT, "f": _NUM, "grad_norm": _NUM},
            },
        },
        "evaluations": {"type": "integer", "minimum": 0},
        "verdict": {"anyOf": [_VERDICT, {"type": "null"}]},
        "eigenvalues": {"type": ["array", "null"], "items": _NUM},
        # the order of the derivative that decided the verdict: 2, the Hessian's eigenvalues; 3, 4, ...:
        # the first nonzero directional derivative along a null direction of the Hessian; null: undecided
        "verdict_order": {"type": ["integer", "null"], "minimum": 2},
        # that derivative's value (null for order 2: the eigenvalues are listed)
        "verdict_derivative": _NUM,
        "starts": {"type": "integer", "minimum": 1},
        "basins": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["x", "f", "count", "verdict"],
                "additionalProperties": False,
                "properties": {"x": _POINT, "f": _NUM, "count": {"type": "integer", "minimum": 1}, "verdict": _VERDICT},
            },
        },
        "timing": {
            "type": "object",
            "required": ["optimize_s"],
            "properties": {"optimize_s": {"type": "number", "minimum": 0}},
        },
        "warnings": _WARNINGS,
        # with --subject-to (or --opt slsqp / trust-constr): the constraints at the point found
        "constraints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text", "value", "active", "multiplier"],
                "additionalProperties": False,
                "properties": {
                    "text": {"type": "string"},
                    "value": _NUM,
                    "active": {"type": "boolean"},
                    "multiplier": _NUM,
                },
            },
        },
        "max_violation": _NUM,
        "kkt_residual": _NUM,
    },
    "dependentRequired": {"constraints": ["max_violation", "kkt_residual"]},
}

TOUR: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autodiff.tour/1",
    "type": "object",
    "required": ["schema", "cells"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "autodiff.tour/1"},
        "cells": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["cell", "explanation", "command", "seed", "autodiff", "matches"],
                "additionalProperties": False,
                "properties": {
                    "cell": {"type": "integer", "minimum": 1},
                    "explanation": {"type": "string"},
                    "command": {"type": "string"},
                    "seed": _POINT,
                    "autodiff": _POINT,
                    "matches": {"type": "boolean"},
                },
            },
        },
    },
}

SERVER: dict[str, Any] = {  # autodiff server status --format json
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autodiff.server/1",
    "oneOf": [
        {  # a server answers
            "type": "object",
            "required": ["schema", "pid", "version", "uptime_s", "requests", "running", "workers", "idle_s"],
            "additionalProperties": False,
            "properties": {
                "schema": {"const": "autodiff.server/1"},
                "pid": {"type": "integer", "minimum": 1},
                "version": {"type": "string"},
                "uptime_s": {"type": "number", "minimum": 0},
                "requests": {"type": "integer", "minimum": 0},  # commands served since it started
                "running": {"type": "integer", "minimum": 0},  # commands being served now
                "workers": {"type": "integer", "minimum": 0},
                "idle_s": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        {  # none runs (exit 1)
            "type": "object",
            "required": ["schema", "running"],
            "additionalProperties": False,
            "properties": {"schema": {"const": "autodiff.server/1"}, "running": {"const": False}},
        },
    ],
}

# Every schema, by the name each document carries in its "schema" key.
_PARAMETER = {
    "type": "object",
    "required": ["value", "stderr", "t", "ci"],
    "additionalProperties": False,
    "properties": {
        "value": _NUM,
        "stderr": _NUM,
        "t": _NUM,
        "ci": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
    },
}
FIT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autodiff.fit/1",
    "type": "object",
    "required": [
        "schema", "model", "response", "expression", "predictors", "parameters", "fixed", "level", "weighting",
        "rss", "residual_sd", "dof", "n", "r2", "correlation", "evaluations", "status", "verdict", "fits", "warnings",
    ],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "autodiff.fit/1"},
        "model": {"type": "string"},
        "response": {"type": "string"},
        "expression": {"type": "string"},
        "predictors": _NAMES,
        "parameters": {"type": "object", "additionalProperties": _PARAMETER},
        "fixed": _POINT,
        "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "weighting": {"enum": ["none", "sigma", "weights"]},
        "rss": _NUM,
        "residual_sd": _NUM,
        "dof": {"type": "integer"},
        "n": {"type": "integer", "minimum": 1},
        "r2": _NUM,
        "correlation": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "array", "items": _NUM}}]},
        "evaluations": {"type": "integer", "minimum": 0},
        "status": {"enum": ["converged", "not converged", "interrupted"]},
        "verdict": {"enum": ["minimum", "not a minimum", "flat", "unknown"]},
        "fits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["parameters", "rss", "starts"],
                "additionalProperties": False,
                "properties": {"parameters": _POINT, "rss": _NUM, "starts": {"type": "integer", "minimum": 1}},
            },
        },
        "warnings": _WARNINGS,
    },
}  # fmt: skip

SCHEMAS: dict[str, dict[str, Any]] = {s["title"]: s for s in (GRAD, MINIMIZE, TOUR, FIT, SERVER)}
