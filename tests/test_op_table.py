"""Every entry of tf_build's op table against an independent oracle.

Each case runs ``autodiff grad EXPR --at P ... --order N --dtype D --format json`` and
compares the value and every derivative with SymPy's exact derivative evaluated by mpmath
at 30 digits, at the point as the dtype holds it. A swapped op (asin as asinh, x**-1 as
-x, tanh as sinh) is off by far more than rounding at some point of its domain.

To add a function to the expression language, add one line to DOMAINS:

    "name": (lo, hi),   # an interval inside the function's real domain

``name(x)`` (or its CALLS text, for a function of several arguments) is then tested at
five points spread over (lo, hi), in float32 and float64, up to order 3. The oracle reads the
same text with SymPy's own parser, so a name SymPy spells differently also needs an entry
in ORACLE_NAMES, written from the function's textbook definition. A test fails while a name
of parse.FUNCTIONS has no entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy

from autodiffcli.calculus import tf_build
from autodiffcli.language.parse import parse
from autodiffcli.language.vocabulary import FUNCTIONS
from autodiffcli.runtime import tensorflow

from conftest import error_lines, invoke, json_of

DOMAINS: dict[str, tuple[float, float]] = {
    "sin": (-6.0, 6.0),
    "cos": (-6.0, 6.0),
    "tan": (-1.5, 1.5),
    "asin": (-0.99, 0.99),
    "acos": (-0.99, 0.99),
    "atan": (-10.0, 10.0),
    "sinh": (-5.0, 5.0),
    "cosh": (-5.0, 5.0),
    "tanh": (-4.0, 4.0),
    "exp": (-10.0, 10.0),
    "log": (0.05, 20.0),
    "sqrt": (0.01, 50.0),
    "abs": (-3.0, 3.0),
    "sec": (-1.4, 1.4),
    "csc": (0.2, 2.9),
    "cot": (0.2, 2.9),
    "atan2": (-5.0, 5.0),
    "asinh": (-5.0, 5.0),
    "acosh": (1.05, 10.0),
    "atanh": (-0.95, 0.95),
    "expm1": (-3.0, 3.0),
    "log2": (0.05, 20.0),
    "log10": (0.05, 20.0),
    "log1p": (-0.9, 5.0),
    "cbrt": (-8.0, 8.0),
    "hypot": (-5.0, 5.0),
    "sign": (-3.0, 3.0),
    "floor": (-4.9, 4.9),
    "ceil": (-4.9, 4.9),
    "min": (-2.0, 2.0),
    "max": (-2.0, 2.0),
    "relu": (-3.0, 3.0),
    "sigmoid": (-30.0, 30.0),
    "softplus": (-20.0, 20.0),
    "erf": (-3.0, 3.0),
    "erfc": (-3.0, 3.0),
    "gamma": (0.1, 6.0),
    "lgamma": (0.1, 30.0),
    "digamma": (0.1, 8.0),
    "sinc": (-10.0, 10.0),
}
# the text tested for a function of several arguments (the others: name(x))
CALLS = {
    "atan2": "atan2(0.7, x)",
    "hypot": "hypot(x, 1.5)",
    "min": "min(x, 0.3, x**2)",
    "max": "max(x, 0.3, x**2)",
}

X, Y = sympy.symbols("x y", real=True)
ORACLE_NAMES: dict[str, Any] = {
    "x": X,
    "y": Y,
    "abs": sympy.Abs,
    "ceil": sympy.ceiling,
    "min": sympy.Min,
    "max": sympy.Max,
    "log2": lambda a: sympy.log(a) / sympy.log(2),
    "log10": lambda a: sympy.log(a) / sympy.log(10),
    "log1p": lambda a: sympy.log(1 + a),
    "expm1": lambda a: sympy.exp(a) - 1,
    "cbrt": lambda a: sympy.sign(a) * sympy.Abs(a) ** sympy.Rational(1, 3),
    "hypot": lambda a, b: sympy.sqrt(a**2 + b**2),
    "relu": lambda a: sympy.Max(a, 0),
    "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
    "softplus": lambda a: sympy.log(1 + sympy.exp(a)),
    "lgamma": sympy.loggamma,
    "sinc": lambda a: sympy.sin(a) / a,
}
# Between its jumps a step function's derivative is 0; SymPy leaves Derivative(floor(x), x).
STEPS = (sympy.floor, sympy.ceiling)

# Other argument positions and forms of the functions above.
MORE_CALLS: dict[str, tuple[float, float]] = {
    "atan2(x, -0.7)": (-5.0, 5.0),
    "hypot(2, x)": (-5.0, 5.0),
    "log(x, 3)": (0.05, 20.0),
    "log(3, x)": (1.1, 20.0),
    "max(x, -x)": (-3.0, 3.0),
}
# Nodes only SymPy's derivatives make, and TensorFlow evaluates: (text, order of the derivative)
DERIVED = [("relu(x)", 1), ("max(x, 0.3)", 1), ("abs(x)", 2), ("abs(x)", 3), ("digamma(x)", 1)]

# Powers and division: each special exponent of tf_build._powers, tf.pow, and tf.divide.
POWERS: dict[str, tuple[float, float]] = {
    "x**2": (-3.0, 3.0),  # tf.square
    "x**(1/2)": (0.01, 50.0),  # tf.sqrt
    "1/x": (-4.0, 4.0),  # tf.reciprocal
    "x**-1": (0.1, 9.0),  # tf.reciprocal
    "1/sqrt(x)": (0.05, 9.0),  # tf.rsqrt
    "x**(-1/2)": (0.05, 9.0),  # tf.rsqrt
    "x**3": (-3.0, 3.0),  # tf.pow
    "x**(5/2)": (0.1, 4.0),  # tf.pow
    "x**-2": (0.2, 3.0),  # tf.pow
    "2**x": (-4.0, 4.0),  # tf.pow, variable exponent
    "3/x**2": (-3.0, 3.0),  # tf.divide by tf.square
    "2/sqrt(x)": (0.05, 9.0),  # tf.divide by tf.sqrt
    "(x+1)/(x-3)": (-2.0, 2.0),  # tf.divide
}
# Two variables, gradient and Hessian: x**y is tf.pow of two tensors, x/y is tf.divide.
TWO_VARIABLES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "atan2(y, x)": ((-3.0, 3.0), (0.3, 4.0)),
    "hypot(x, y)": ((-3.0, 3.0), (0.3, 4.0)),
    "log(x, y)": ((0.2, 5.0), (1.5, 4.0)),
    "x**y": ((0.2, 3.0), (-2.5, 2.5)),
    "x/y": ((-3.0, 3.0), (0.3, 4.0)),
    "x*y": ((-3.0, 3.0), (-2.0, 2.0)),
}
HIGHER_ORDERS = {  # checked up to order 8
    "sin(x)": DOMAINS["sin"],
    "exp(x)": DOMAINS["exp"],
    "log(x)": DOMAINS["log"],
    "tanh(x)": DOMAINS["tanh"],
    "sqrt(x)": DOMAINS["sqrt"],
    "1/x": POWERS["1/x"],
}

SPREAD = (0.03, 0.25, 0.55, 0.8, 0.97)  # where in (lo, hi) the points lie
EPS = {"float32": 2.0**-23, "float64": 2.0**-52}
ULPS_PER_ORDER = 8  # tolerance: 8 (k + 1) eps times the scale of the k-th derivative


def spread(lo: float, hi: float) -> list[float]:
    return [float(f"{lo + (hi - lo) * t:.4g}") for t in SPREAD]


def held(value: float, dtype: str) -> float:
    """``value`` as the dtype holds it: the point the tool really computes at."""
    return float(np.float64(value).astype(dtype))


def oracle(text: str) -> sympy.Expr:
    # the test's own text, never user input
    return sympy.parse_expr(text, local_dict=ORACLE_NAMES)


def exact(e: sympy.Expr, at: dict[sympy.Symbol, float]) -> float:
    return float(e.evalf(30, subs={s: sympy.Rational(v) for s, v in at.items()}))


def assert_close(got: float | None, want: float, scale: float, dtype: str, order: int, what: str) -> None:
    """|got - want| within 8 (order + 1) eps of ``scale``.

    ``scale`` is the size of the numbers the tape computes with: the largest derivative up
    to this order (1 - tanh**2 loses digits to tanh**2 near 1), plus the next derivative
    times each coordinate (rounding inside an op acts like a relative change of its input).
    """
    tol = ULPS_PER_ORDER * (order + 1) * EPS[dtype] * scale
    assert got is not None and abs(got - want) <= tol, f"{what}: got {got!r}, want {want!r} (tolerance {tol:.3g})"


def grad_json(text: str, dtype: str, order: int, points: list[str], *extra: str) -> dict:
    args = ["grad", "--format", "json", "--dtype", dtype, "--order", str(order), *extra]
    for p in points:
        args += ["--at", p]
    return json_of(invoke(*args, "--", text), "grad")


def check_one_variable(text: str, lo: float, hi: float, dtype: str, order: int) -> None:
    e = oracle(text)
    tower = [e]
    for _ in range(order + 1):
        d = sympy.diff(tower[-1], X)
        tower.append(
            d.replace(lambda n: isinstance(n, sympy.Derivative) and isinstance(n.expr, STEPS), lambda n: sympy.S.Zero)
        )
    points = spread(lo, hi)
    data = grad_json(text, dtype, order, [repr(p) for p in points])
    for p, result in zip(points, data["results"], strict=True):
        x = held(p, dtype)
        want = [exact(d, {X: x}) for d in tower]
        got = [result["value"], *result["derivatives"]]
        assert len(got) == order + 1
        for k in range(order + 1):
            scale = max(abs(w) for w in want[: k + 1]) + abs(x) * abs(want[k + 1])
            assert_close(got[k], want[k], scale, dtype, k, f"d^{k}/dx^{k} {text} at x={x!r} ({dtype})")


# ---------------------------------------------------------------- coverage of the table


def test_every_function_of_the_language_has_a_domain_here():
    missing = sorted(set(FUNCTIONS) - set(DOMAINS))
    assert not missing, f"add these to DOMAINS in {__file__}: {missing}"
    assert not sorted(set(DOMAINS) - set(FUNCTIONS))


def _recording(build: Callable[[Any], dict], used: set) -> Callable[[Any], dict]:
    def table(tf: Any) -> dict:
        def spy(key: Any, op: Callable[..., Any]) -> Callable[..., Any]:
            def call(*t: Any) -> Any:
                used.add(key)
                return op(*t)

            return call

        return {key: spy(key, op) for key, op in build(tf).items()}

    return table


def test_every_entry_of_the_table_is_reached_by_a_case_here(monkeypatch):
    """An op that none of these cases reaches is either untested or dead: both fail here."""
    tf = tensorflow()
    table, powers = tf_build._table, tf_build._powers
    used: set = set()
    monkeypatch.setattr(tf_build, "_table", _recording(table, used))
    monkeypatch.setattr(tf_build, "_powers", _recording(powers, used))
    cases = [parse(call(name)) for name in DOMAINS] + [parse(t) for t in [*POWERS, *TWO_VARIABLES, *MORE_CALLS]]
    x = sympy.Symbol("x", real=True)
    cases += [sympy.diff(parse(text), x, k) for text, k in DERIVED]
    for expr in cases:
        f = tf_build.TFFunction(expr, "float64")
        f({"x": tf.constant(0.5, tf.float64), "y": tf.constant(0.25, tf.float64)})
    unreached = (set(table(tf)) | set(powers(tf))) - used
    assert not unreached, f"no case reaches {unreached}"


# ---------------------------------------------------------------- values and derivatives


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_function_value_and_derivatives_to_order_3_match_sympy(name: str, dtype: str) -> None:
    check_one_variable(call(name), *DOMAINS[name], dtype, 3)


def call(name: str) -> str:
    return CALLS.get(name, f"{name}(x)")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("text", list(MORE_CALLS))
def test_other_calls_value_and_derivatives_to_order_3_match_sympy(text: str, dtype: str) -> None:
    check_one_variable(text, *MORE_CALLS[text], dtype, 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("text", list(POWERS))
def test_power_and_division_value_and_derivatives_to_order_3_match_sympy(text: str, dtype: str) -> None:
    check_one_variable(text, *POWERS[text], dtype, 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("text", list(HIGHER_ORDERS))
def test_derivatives_to_order_8_match_sympy(text: str, dtype: str) -> None:
    check_one_variable(text, *HIGHER_ORDERS[text], dtype, 8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [3, 4, 6])
def test_integer_power_derivatives_past_the_nth_are_0_at_0_too(n: int, dtype: str) -> None:
    """x**n at 0 and beyond order n: tf.pow's gradient n*pow(x, n-1) reached 0*pow(0, -1) = nan."""
    text, order = f"x**{n}", min(n + 2, 8)
    points = [0.0, -1.5, 2.0]
    data = grad_json(text, dtype, order, [repr(p) for p in points])
    e = oracle(text)
    for p, result in zip(points, data["results"], strict=True):
        x = held(p, dtype)
        want = [exact(sympy.diff(e, X, k), {X: x}) for k in range(order + 2)]
        got = [result["value"], *result["derivatives"]]
        for k in range(order + 1):
            scale = max(abs(w) for w in want[: k + 1]) + abs(x * want[k + 1])
            assert_close(got[k], want[k], scale, dtype, k, f"d^{k}/dx^{k} {text} at {x!r} ({dtype})")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("text", list(TWO_VARIABLES))
def test_two_variable_gradient_and_hessian_match_sympy(text: str, dtype: str) -> None:
    e = oracle(text)
    (xs, ys) = (spread(*r) for r in TWO_VARIABLES[text])
    points = list(zip(xs, reversed(ys), strict=True))
    data = grad_json(text, dtype, 2, [f"x={x!r},y={y!r}" for x, y in points])
    names = {"x": X, "y": Y}
    for (px, py), result in zip(points, data["results"], strict=True):
        at = {X: held(px, dtype), Y: held(py, dtype)}
        size = sum(abs(v) for v in at.values())

        def want(*by: str, at: dict[sympy.Symbol, float] = at) -> float:
            return exact(sympy.diff(e, *(names[n] for n in by)) if by else e, at)

        third = max(abs(want(a, b, c)) for a in names for b in names for c in names)
        second = max(abs(want(a, b)) for a in names for b in names)
        first = max(abs(want(a)) for a in names)
        where = f"{text} at x={at[X]!r}, y={at[Y]!r} ({dtype})"
        value = want()
        assert_close(result["value"], value, abs(value) + size * first, dtype, 0, f"value of {where}")
        for a in names:
            scale = max(abs(value), first) + size * second
            assert_close(result["gradient"][a], want(a), scale, dtype, 1, f"d/d{a} {where}")
            for b in names:
                scale = max(abs(value), first, second) + size * third
                assert_close(result["hessian"][a][b], want(a, b), scale, dtype, 2, f"d2/d{a}d{b} {where}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_derivatives_of_x_to_the_y_in_the_exponent_to_order_3_match_sympy(dtype: str) -> None:
    e = oracle("x**y")
    points = [(0.3, 1.7), (2.5, -0.8), (7.0, 0.6)]
    data = grad_json("x**y", dtype, 3, [f"x={x},y={y}" for x, y in points], "--wrt", "y")
    for (px, py), result in zip(points, data["results"], strict=True):
        at = {X: held(px, dtype), Y: held(py, dtype)}
        want = [exact(sympy.diff(e, Y, k), at) for k in range(5)]
        got = [result["value"], *result["derivatives"]]
        for k in range(4):
            slope = abs(at[X] * exact(sympy.diff(e, Y, k, X), at)) + abs(at[Y] * want[k + 1])
            scale = max(abs(w) for w in want[: k + 1]) + slope
            assert_close(got[k], want[k], scale, dtype, k, f"d^{k}/dy^{k} x**y at {at} ({dtype})")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_slope_in_the_exponent_of_a_negative_base_is_not_a_number(dtype: str) -> None:
    """SymPy: d/dy x**y = x**y*log(x), at x = -2, y = 3 that is -8*(log(2) + i*pi), not real.
    TensorFlow's gradient puts 0 for log(x) at every x <= 0: grad printed df/dy = 0, exit 0.
    At x = 0 the slope is 0 (the limit of 0**y*log(0) for y > 0), and stays so."""
    e = oracle("x**y")
    at = {X: -2.0, Y: 3.0}
    assert complex(sympy.diff(e, Y).evalf(30, subs=at)).imag != 0  # the oracle: not a real number
    result = invoke("grad", "x**y", "--at", "x=-2,y=3", "--dtype", dtype, "--format", "json")
    (item,) = json_of(result, "grad", 1)["results"]
    assert item["gradient"] == {"x": exact(sympy.diff(e, X), at), "y": None}  # df/dx = 12 is real
    assert error_lines(result.stderr) == ["Error: undefined derivative: df/dy is nan at x=-2.0,y=3.0"]
    # the mixed and second derivatives in y are not real either; d2f/dx2 = y*(y-1)*x**(y-2) is
    second = invoke("grad", "x**y", "--at", "x=-2,y=3", "--order", "2", "--dtype", dtype, "--format", "json")
    h = json_of(second, "grad", 1)["results"][0]["hessian"]
    for a, b in (("x", "y"), ("y", "x"), ("y", "y")):
        assert complex(sympy.diff(e, {"x": X, "y": Y}[a], {"x": X, "y": Y}[b]).evalf(30, subs=at)).imag != 0
        assert h[a][b] is None, (a, b, h)
    assert h["x"]["x"] == exact(sympy.diff(e, X, X), at)
    for text in ("(-2)**x", "x**x"):  # a constant negative base; the base and exponent one variable
        assert invoke("grad", text, "--at", "-3" if text == "x**x" else "3", "--dtype", dtype).exit_code == 1
    square = e.subs(Y, 2)  # SymPy's x**y*y/x is 0/0 at x = 0: differentiate x**2 in x instead
    (item,) = grad_json("x**y", dtype, 2, ["x=0,y=2"])["results"]
    assert item["gradient"] == {"x": exact(sympy.diff(square, X), {X: 0}), "y": 0.0}
    assert item["hessian"]["x"]["x"] == exact(sympy.diff(square, X, X), {X: 0}) and item["hessian"]["y"]["y"] == 0.0


# ---------------------------------------------------------------- far out, and near the ends

# Points where a derivative is tiny beside the value: far out for sigmoid, softplus and
# tanh (whose values round to 0, 1 or x there), near +-1 for asin, acos and atanh.
FAR_OUT = [0.0, 1e-8, -1e-8, 0.5, -0.5, 2.0, -2.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0]
FAR_OUT += [40.0, -40.0, 100.0, -100.0, 1000.0, -1000.0]
NEAR_ONE = [0.0, 1e-8, -1e-8, 0.5, -0.5, 0.9, -0.9, 0.999, -0.999, 0.999999, -0.999999]
NEAR_ONE += [1 - 2.0**-20, -(1 - 2.0**-20)]
NEAR_ONE_FLOAT64 = [1 - 2.0**-30, -(1 - 2.0**-30), 1 - 2.0**-52, -(1 - 2.0**-52)]
ENDS = {"sigmoid": FAR_OUT, "softplus": FAR_OUT, "tanh": FAR_OUT, "asin": NEAR_ONE, "acos": NEAR_ONE, "atanh": NEAR_ONE}
RELATIVE = {"float32": 1e-5, "float64": 1e-13}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ENDS))
def test_derivatives_to_order_4_keep_their_digits_far_out_and_near_the_ends(name: str, dtype: str) -> None:
    """Each derivative to a relative error of 1e-13 (float64) or 1e-5 (float32), against
    SymPy's exact derivative evaluated by mpmath at 1000 digits at the point the tool echoes.

    TensorFlow's gradients, 1 - tanh**2 and sigmoid*(1 - sigmoid) from the rounded value,
    gave tanh'(10) = 0 in float32 (true 8.2e-9) and sigmoid'(40) = 0 in float64 (true
    4.2e-18); asin'(0.999999) came from 1 - x**2 and had 11 correct digits of 16. Below the
    dtype's smallest normal number the error is absolute (TensorFlow flushes subnormals).
    """
    points = ENDS[name] + (NEAR_ONE_FLOAT64 if dtype == "float64" and name in ("asin", "acos", "atanh") else [])
    points = [p for p in points if abs(held(p, dtype)) != 1.0]
    data = grad_json(f"{name}(x)", dtype, 4, [repr(p) for p in points])
    tower = [oracle(f"{name}(x)")]
    for _ in range(4):
        tower.append(sympy.diff(tower[-1], X))
    exact_at = [sympy.lambdify(X, d, modules="mpmath") for d in tower]
    tiny = float(np.finfo(dtype).tiny)
    with mpmath.workdps(1000):  # x = 1000: the formulas cancel e**1000 down to e**-1000
        for p, result in zip(points, data["results"], strict=True):
            x = held(result["point"]["x"], dtype)  # the point the tool shows, as the dtype holds it
            assert x == held(p, dtype)
            got = [result["value"], *result["derivatives"]]
            for k, (g, d) in enumerate(zip(got, exact_at, strict=True)):
                want = float(d(mpmath.mpf(x)))
                error = abs(g - want) / max(abs(want), tiny)
                assert error <= RELATIVE[dtype], f"d^{k}/dx^{k} {name}(x) at {x!r} ({dtype}): got {g!r}, want {want!r}"
