"""SymPy -> TensorFlow: the two ways of building x**2 agree, and literals fold into the graph."""

from __future__ import annotations

import pytest
import sympy

from autodiffcli.calculus.tf_build import TFFunction
from autodiffcli.language.parse import parse
from autodiffcli.runtime import tensorflow

POLYNOMIALS = ["a*x**2 + b*x + c", "(x-3)**2", "x**2*(x+1)**2 - 2*x**2", "(2*x - 1/3)**2 / 7"]
POINTS = [-3.0, -1.0, -0.0, 0.0, 0.5, 2.0, 1e18]


def value_and_gradient(f: TFFunction, x: float) -> tuple[float, float]:
    tf = tensorflow()
    env = {"a": f.constant(1.0), "b": f.constant(-2.0), "c": f.constant(1.0), "x": tf.Variable(x, dtype=f.dtype)}
    with tf.GradientTape() as tape:
        y = f(env)
    return float(y), float(tape.gradient(y, env["x"]))


# a few units in the last place of each dtype (eps 1.2e-7 and 2.2e-16), times the polynomials' cancellation
TOLERANCE = {"float32": {"rel": 1e-5, "abs": 1e-5}, "float64": {"rel": 1e-12, "abs": 1e-12}}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("text", POLYNOMIALS)
def test_first_order_build_gives_the_same_bits_and_matches_sympy(text: str, dtype: str) -> None:
    expr = parse(text)
    symbols = {s.name: s for s in expr.free_symbols}
    x_symbol = symbols["x"]
    params = {symbols[n]: v for n, v in {"a": 1, "b": -2, "c": 1}.items() if n in symbols}
    exact = sympy.diff(expr.subs(params), x_symbol)
    seed_style, exact_orders = TFFunction(expr, dtype, first_order=True), TFFunction(expr, dtype)
    for x in POINTS:
        ours = value_and_gradient(seed_style, x)
        assert repr(ours) == repr(value_and_gradient(exact_orders, x))  # bit for bit, nan and -0.0 too
        if abs(x) < 1e6:
            assert ours[1] == pytest.approx(float(exact.subs(x_symbol, x)), **TOLERANCE[dtype])


def compiled(f: TFFunction) -> object:
    tf = tensorflow()
    x = tf.Variable(1.5, dtype=f.dtype)

    @tf.function(jit_compile=True, autograph=False)
    def value_and_grad() -> object:
        with tf.GradientTape() as tape:
            y = f({"x": x})
        return y, tape.gradient(y, x)

    return value_and_grad


def test_literals_are_graph_constants_not_captured_inputs() -> None:
    step = compiled(TFFunction(parse("3*x**2 - 2.5*x + 7 + pi")))
    assert len(step.get_concrete_function().captured_inputs) == 1  # the variable x, nothing else


def test_first_order_square_compiles_to_a_multiply() -> None:
    step = compiled(TFFunction(parse("(x-3)**2 + x**2"), first_order=True))
    hlo = step.experimental_get_compiler_ir()(stage="optimized_hlo")
    assert "power(" not in hlo
    assert [float(v) for v in step()] == [2.25 + 2.25, -3.0 + 3.0]
