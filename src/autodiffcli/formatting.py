"""Numbers as text: the shortest decimal that reads back to the same number in its dtype."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def fmt(value: float, dtype: str = "float64") -> str:
    """Shortest text that reads back to the same number in ``dtype`` (0.1, not 0.100000001)."""
    if value is None:
        return "null"
    value = value + 0.0  # -0.0 prints as 0.0
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as float32 holds it
        return str(np.float32(value) if dtype == "float32" else np.float64(value))


def rounded(value: float | None, dtype: str) -> float | None:
    """The number as JSON will carry it: shortest decimal in its dtype, None if not finite
    (in that dtype)."""
    if value is None or not math.isfinite(value):
        return None
    if dtype != "float32":  # a float64's shortest text reads back to the float itself
        return float(value) + 0.0
    if abs(value) <= _FLOAT32_MAX:  # fmt's text without its guard against overflow
        return float(str(np.float32(value))) + 0.0
    out = float(fmt(value, dtype)) + 0.0
    return out if math.isfinite(out) else None


def point_text(point: Mapping[str, float], dtype: str = "float64") -> str:
    return ",".join(f"{k}={fmt(v, dtype)}" for k, v in point.items())
