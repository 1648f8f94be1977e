"""The public JSON schemas of ``--format json`` (JSON Schema, draft 2020-12)."""

from __future__ import annotations

from typing import Any

_NUM = {"type": ["number", "null"]}  # null: not finite (the reason is in "warnings")
_POINT = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
_NAMES = {"type": "array", "items": {"type": "string"}}
_WARNINGS = {"type": "array", "items": {"type": "string"}}
_VERDICT = {"enum": ["minimum", "maximum", "saddle", "degenerate", "not stationary"]}
_CHECKED = {  # one derivative under --check; errors are null when unknown (no finite exact value) or infinite
    "type": "object",
    "required": ["tape", "exact", "tape_error", "fd", "fd_error"],
    "additionalProperties": False,
    "properties": {"tape": _NUM, "exact": _NUM, "tape_error": _NUM, "fd": _NUM, "fd_error": _NUM},
}
_CHECK = {
    "type": "object",
    "required": ["gradient", "tolerance", "ok"],
    "additionalProperties": False,
    "properties": {
        "gradient": {"type": "object", "additionalProperties": _CHECKED},
        "hessian": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _CHECKED}},
        "tolerance": {"type": "number"},
        "ok": {"type": "boolean"},
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
        "status": {"enum": ["converged", "max_steps", "stalled", "diverged", "interrupted"]},
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
    },
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
SCHEMAS: dict[str, dict[str, Any]] = {s["title"]: s for s in (GRAD, MINIMIZE, TOUR, SERVER)}
