"""Command-line values -> typed, frozen settings. No TensorFlow here.

Every check that can fail on user input happens here, before any numeric work, and
every message names the option it is about.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import sympy

from .errors import AutodiffError, UsageError
from .parse import canonical, parse, variables

DEFAULT_EXPRESSION = "a*x**2 + b*x + c"
DEFAULT_PARAMS = {"a": 1.0, "b": -2.0, "c": 1.0}
DTYPES = ("float32", "float64")
MAX_ORDER = 8
MAX_BATCH_VALUES = 10_000_000  # --starts x values per start (the variables; for newton, the Hessian)


@dataclass(frozen=True)
class Problem:
    """A parsed expression with its parameters bound: what every command works on."""

    text: str
    expr: sympy.Expr
    params: dict[str, float]
    variables: tuple[str, ...]  # alphabetical; every free symbol that is not a parameter
    dtype: str

    @property
    def canonical(self) -> str:
        return canonical(self.expr)


def load_problem(text: str | None, param_options: Sequence[str], dtype: str) -> Problem:
    """Parse EXPR (None: the seed's default) and bind ``-p NAME=VALUE`` parameters."""
    if dtype not in DTYPES:
        raise UsageError(f"--dtype: unknown dtype {dtype!r}; choose float32 or float64")
    given = parse_assignments(param_options, "-p/--param", allow_expr_values=True)
    if text is None:
        text = DEFAULT_EXPRESSION
        params = {**DEFAULT_PARAMS, **given}
    else:
        params = given
    expr = parse(text)
    names = variables(expr)
    for name in params:
        if name not in names:
            raise UsageError(f"-p/--param: {name!r} is not in the expression (it has {_listing(names)})")
    free = tuple(n for n in names if n not in params)
    return Problem(text, expr, params, free, dtype)


def parse_assignments(items: Sequence[str], option: str, allow_expr_values: bool = True) -> dict[str, float]:
    """``["a=1", "b=-2"]`` or ``["a=1,b=-2"]`` -> {"a": 1.0, "b": -2.0}."""
    out: dict[str, float] = {}
    for item in items:
        for part in _split(item):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name or not value.strip():
                raise UsageError(f"{option}: expected NAME=VALUE, got {part!r}")
            if not name.isidentifier():
                raise UsageError(f"{option}: {name!r} is not a name")
            if name in out:
                raise UsageError(f"{option}: {name!r} is given twice")
            out[name] = number(value, f"{option} {name}")
    return out


def number(text: str, option: str) -> float:
    """A finite number: a literal or a constant expression such as ``pi/2`` or ``-1e-3``."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            expr = parse(text)
        except AutodiffError as err:
            raise UsageError(f"{option}: {text!r} is not a number ({err.message})") from None
        if expr.free_symbols:
            raise UsageError(f"{option}: {text!r} is not a number") from None
        try:
            value = float(expr)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{option}: {text!r} is not a finite real number") from None
    if not math.isfinite(value):
        raise UsageError(f"{option}: {text!r} is not a finite number")
    return value


def parse_point(text: str, names: Sequence[str], option: str) -> dict[str, float]:
    """``0`` (one variable) or ``x=0,y=1`` -> a value for every variable (0 if left out)."""
    text = text.strip()
    if "=" not in text:
        if len(names) != 1:
            raise UsageError(
                f"{option}: {text!r} gives no names, but the expression has variables "
                f"{_listing(names)}; write {option} {','.join(f'{n}=...' for n in names)}"
            )
        return {names[0]: number(text, option)}
    given = parse_assignments([text], option)
    for name in given:
        if name not in names:
            raise UsageError(f"{option}: {name!r} is not a variable of the expression (it has {_listing(names)})")
    return {n: given.get(n, 0.0) for n in names}


def points_array(points: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    return np.array([[p[n] for n in names] for p in points], dtype=np.float64).reshape(len(points), len(names))


def read_points(path: str, names: Sequence[str], option: str = "--at-file") -> np.ndarray:
    """Points from a file (``-``: stdin), one per line, as one array (rows: points).

    Either CSV with a header naming the variables (a column left out is 0), plain numbers
    for a one-variable expression, or lines like ``x=1,y=2``.
    """
    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as err:
        raise UsageError(f"{option}: cannot read {path!r}: {err.strerror or err}") from None
    try:
        with handle:
            return _read_points(handle, path, names, option)
    except UnicodeDecodeError:
        raise UsageError(f"{option}: {path!r} is not a UTF-8 text file") from None


def _read_points(handle: TextIO, path: str, names: Sequence[str], option: str) -> np.ndarray:
    head, skipped = "", 0
    while not head.strip():
        head = handle.readline()
        skipped += 1
        if not head:
            raise UsageError(f"{option}: {path!r} has no points")
    if "=" in head:
        lines = [head, *handle.read().splitlines()]
        rows = [parse_point(ln, names, f"{option} line {skipped + i}") for i, ln in enumerate(lines) if ln.strip()]
        return points_array(rows, names)
    header = [c.strip() for c in head.split(",")]
    if all(_is_number(c) for c in header):
        if len(names) != 1 or len(header) != 1:
            raise UsageError(f"{option}: the first line must name the columns ({','.join(names)})")
        columns, body, first_line = list(names), itertools.chain([head], handle), skipped
    else:
        columns, body, first_line = header, handle, skipped + 1
        for c in columns:
            if c not in names:
                raise UsageError(
                    f"{option}: column {c!r} is not a variable of the expression (it has {_listing(names)})"
                )
        if len(set(columns)) != len(columns):
            raise UsageError(f"{option}: a column is named twice in {head.strip()!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = np.loadtxt(body, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, UserWarning) as err:
        message = _one_line(err).split(";")[0].rstrip(".")
        base = first_line - 1 if "columns changed" in message else first_line  # numpy counts that one from 1
        message = re.sub(r"at row (\d+)", lambda m: f"on line {int(m.group(1)) + base}", message)
        raise UsageError(f"{option}: {message}") from None
    if data.size == 0:
        raise UsageError(f"{option}: {path!r} has no points")
    if data.shape[1] != len(columns):
        raise UsageError(f"{option}: expected {len(columns)} columns, found {data.shape[1]}")
    if not np.isfinite(data).all():
        row = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise UsageError(f"{option}: point {row + 1} is not finite")
    out = np.zeros((len(data), len(names)))
    for j, c in enumerate(columns):
        out[:, names.index(c)] = data[:, j]
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _one_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def parse_range(text: str, names: Sequence[str], option: str = "--range") -> tuple[float, float]:
    """``x=LO:HI`` (or ``LO:HI`` for a one-variable expression) -> (LO, HI), LO < HI."""
    name, sep, span = text.partition("=")
    if not sep:
        if len(names) != 1:
            raise UsageError(f"{option}: name the variable, as in {option} {names[0] if names else 'x'}=LO:HI")
        name, span = names[0], text
    name = name.strip()
    if name not in names:
        raise UsageError(f"{option}: {name!r} is not a variable of the expression (it has {_listing(names)})")
    lo_text, colon, hi_text = span.partition(":")
    if not colon:
        raise UsageError(f"{option}: expected {name}=LO:HI, got {text!r}")
    lo, hi = number(lo_text, option), number(hi_text, option)
    if not lo < hi:
        raise UsageError(f"{option}: LO must be less than HI, got {text!r}")
    return lo, hi


def parse_names(text: str | None, allowed: Sequence[str], option: str) -> list[str]:
    """``"x,a"`` -> ["x", "a"], each checked against ``allowed``."""
    if text is None:
        return []
    out: list[str] = []
    for name in (p.strip() for p in text.split(",")):
        if not name:
            raise UsageError(f"{option}: empty name in {text!r}")
        if name not in allowed:
            raise UsageError(f"{option}: {name!r} is not in the expression (it has {_listing(allowed)})")
        if name in out:
            raise UsageError(f"{option}: {name!r} is given twice")
        out.append(name)
    return out


def parse_bounds(text: str | None, names: Sequence[str], option: str = "--bounds") -> dict[str, tuple[float, float]]:
    """``"x=-5:5,y=0:pi"`` -> {"x": (-5.0, 5.0), "y": (0.0, 3.14...)}; LO < HI, both finite."""
    if text is None:
        return {}
    out: dict[str, tuple[float, float]] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, span = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{option}: expected NAME=LO:HI, got {part!r}")
        if name not in names:
            raise UsageError(f"{option}: {name!r} is not a variable of the expression (it has {_listing(names)})")
        if name in out:
            raise UsageError(f"{option}: {name!r} is given twice")
        low, colon, high = span.partition(":")
        if not colon or not low.strip() or not high.strip():
            raise UsageError(f"{option}: expected NAME=LO:HI, got {part!r}")
        lo, hi = number(low, f"{option} {name}"), number(high, f"{option} {name}")
        if not lo < hi:
            raise UsageError(f"{option}: {name}={low.strip()}:{high.strip()} is empty; LO must be below HI")
        out[name] = (lo, hi)
    return out


def positive(value: float, option: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option}: must be a finite number > 0, got {value:g}")
    return value


def at_least(value: int, low: int, option: str, high: int | None = None) -> int:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise UsageError(f"{option}: must be {bound}, got {value}")
    return value


def _split(item: str) -> list[str]:
    return [p for p in (s.strip() for s in item.split(",")) if p] or [item]


def _listing(names: Sequence[str] | Mapping[str, object]) -> str:
    names = list(names)
    return ", ".join(names) if names else "no variables"
