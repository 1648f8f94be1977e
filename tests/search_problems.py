"""Test problems with known answers, and helpers shared by the search tests."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize as scipy_minimize

from conftest import invoke, json_of

ROSENBROCK = "100*(y-x**2)**2 + (1-x)**2"
HIMMELBLAU = "(x**2+y-11)**2 + (x+y**2-7)**2"
# Himmelblau (1968); the other three are roots of a cubic, given to 6 decimals in the literature
HIMMELBLAU_MINIMA = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]


def run_json(command: str, *args: str, code: int = 0) -> dict:
    """The run's JSON, parsed strictly and validated against its schema (conftest.json_of)."""
    return json_of(invoke(command, "--format", "json", *args), command, code)


def xy(point: dict) -> tuple[float, float]:
    return point["x"], point["y"]


def himmelblau(v: np.ndarray) -> float:
    x, y = v
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def himmelblau_grad(v: np.ndarray) -> np.ndarray:
    x, y = v
    return np.array([4 * x * (x * x + y - 11) + 2 * (x + y * y - 7), 2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)])


def scipy_ends(starts: np.ndarray, bounds: list[tuple[float, float]] | None, method: str = "L-BFGS-B") -> np.ndarray:
    """SciPy's L-BFGS-B (or BFGS) from each start, on SciPy's own Himmelblau (numpy, not our tape)."""
    return np.array(
        [scipy_minimize(himmelblau, s, jac=himmelblau_grad, method=method, bounds=bounds).x for s in starts]
    )


class Silent:
    def row(self, row):
        pass

    def progress(self, done, total):
        pass
