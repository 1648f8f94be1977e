"""What a user reads in a minimize report, against values worked out by hand: the optimizer
class that ran, its first step, and where a divergent run stops."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from conftest import error_lines, invoke, json_of


def keras_optimizer_classes() -> dict[str, str]:
    """Every optimizer Keras ships, by the lower-case name a user types: an oracle
    independent of autodiff's own registry."""
    import keras

    return {
        name.lower(): name
        for name, cls in vars(keras.optimizers).items()
        if inspect.isclass(cls)
        and issubclass(cls, keras.optimizers.Optimizer)
        and name not in ("Optimizer", "LossScaleOptimizer", "MultiOptimizer")
    }


def minimize_json(*args: str, code: int = 0) -> dict:
    return json_of(invoke("minimize", "--format", "json", *args), "minimize", code)


def test_report_names_the_keras_class_of_each_optimizer():
    for typed, cls in sorted(keras_optimizer_classes().items()):
        data = minimize_json("(x-1)**2", "--opt", typed, "--steps", "1")
        assert data["optimizer"] == cls, typed
    table = invoke("minimize", "(x-1)**2", "--opt", "rmsprop", "--lr", "0.05", "--steps", "1", "--format", "table")
    assert table.exit_code == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if "optimizer" in line]
    assert "RMSprop(learning_rate=0.05), style tape" in row


# First step from x = 0 on (x-1)**2 (gradient g = -2), by the update rules the optimizers
# publish, with Keras' defaults (epsilon 1e-7, rho 0.9). The learning rate is a power of 2:
# Keras keeps it in a float32 variable, even in a float64 run.
LR, G = 2.0**-7, -2.0
FIRST_STEP = {
    "sgd": (-LR * G, 1e-15),
    # RMSprop: v = (1 - rho) g**2, step = lr g / sqrt(v + eps)
    "rmsprop": (-LR * G / math.sqrt(0.1 * G * G + 1e-7), 1e-12),
    # Adam's first step is lr in size, whatever g (Kingma & Ba, section 2.1), up to epsilon
    # and Keras' beta powers, which it takes in float32
    "adam": (LR, 1e-4),
}


@pytest.mark.parametrize("name", sorted(FIRST_STEP))
def test_first_step_is_the_named_optimizers_update(name):
    data = minimize_json("(x-1)**2", "--opt", name, "--lr", str(LR), "--steps", "1", "--dtype", "float64")
    want, rel = FIRST_STEP[name]
    assert data["steps"] == 1
    assert data["x"]["x"] == pytest.approx(want, rel=rel)


# SGD with lr 10 on x**2 from 1: x_k = (1 - 2 lr)**k = (-19)**k. f = x**2 stays finite in float32
# while |x| < sqrt(3.4028235e38) = 1.8447e19: 19**15 = 1.52e19 is, 19**16 = 2.88e20 is not. So
# step 16 is the first non-finite one, and the run stops at step 15, at x = (-19)**15.
F32_MAX = float(np.finfo(np.float32).max)
DIVERGE_LR = 10.0
LAST_FINITE = next(k for k in range(100) if (1 - 2 * DIVERGE_LR) ** (2 * (k + 1)) > F32_MAX)


@pytest.mark.parametrize("mode", ["--eager", "--graph"])
def test_divergence_is_reported_at_the_step_and_point_computed_by_hand(mode):
    assert LAST_FINITE == 15
    result = invoke("minimize", "x**2", "--opt", "sgd", "--lr", "10", "--from", "1", "--steps", "1000",
                    "--format", "json", mode)  # fmt: skip
    data = json_of(result, "minimize", 1)
    assert (data["status"], data["steps"]) == ("diverged", LAST_FINITE)
    want = (1 - 2 * DIVERGE_LR) ** LAST_FINITE
    assert data["x"]["x"] == pytest.approx(want, rel=1e-5)  # float32 rounds each of the 15 steps
    assert data["f"] == pytest.approx(want * want, rel=1e-5)
    assert data["gradient"]["x"] == pytest.approx(2 * want, rel=1e-5)
    (line,) = error_lines(result.stderr)
    assert f"diverged after step {LAST_FINITE}" in line
