"""Property tests for the expression parser: whatever the text, parse() either returns a
SymPy expression or raises ExpressionError; valid expressions survive a round trip through
their canonical text. In-process, no TensorFlow."""

from __future__ import annotations

import pytest
import sympy
from hypothesis import HealthCheck, event, example, given, reject, settings
from hypothesis import strategies as st

from autodiffcli.errors import BudgetError, ExpressionError
from autodiffcli.language.parse import parse
from autodiffcli.language.printing import canonical
from autodiffcli.language.vocabulary import ALIASES, FUNCTIONS

SETTINGS = settings(
    max_examples=300,
    deadline=5000,  # ms: parse has its own 3 s wall-clock budget; a slow machine must not flake
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)

TOKENS = [
    *"0123456789",
    "x",
    "y",
    "z",
    "e",
    "E",
    "pi",
    "+",
    "-",
    "*",
    "/",
    "**",
    "^",
    "(",
    ")",
    "(",
    ")",
    *(f"{name}(" for name in FUNCTIONS),
    "sin",
    "ln(",
    "Abs(",
    "factorial(",
    "__import__(",
    *(f"{name}(" for name in ALIASES),
    " ",
    " ",
    "\t",
    "\n",
    ".",
    ",",
    "[",
    "]",
    "'",
    '"',
    ";",
    ":",
    "=",
    "<",
    ">",
    "@",
    "%",
    "~",
    "\\",
    "{",
    "}",
    "_",
    "1e5",
    "1e-3",
    "2.5",
    ".5",
    "1.",
    "lambda",
    "import",
    "if",
    "\x00",
    "\u200b",
    "ｘ",
    "٣",
    ",",
    "0x1",
    "1_0",
    "1j",
    "×",
    "·",
    "÷",
    "−",
    "²",
    "⁻¹",
    "√",
    "π",
    "\u00a0",
    "\u3000",
    "\u202e",
    "а",
    "ο",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def parse_or_refuse(text: str) -> sympy.Expr | None:
    """parse(text), or None when it refuses with ExpressionError. Anything else propagates."""
    try:
        expr = parse(text)
    except ExpressionError as err:  # BudgetError is a subclass
        assert err.message.strip(), f"empty error message for {text!r}"
        assert "\n" not in err.message, f"multi-line error message for {text!r}: {err.message!r}"
        event("refused")
        return None
    event("parsed")
    assert isinstance(expr, sympy.Expr), f"{text!r} parsed to {type(expr).__name__}, not a SymPy expression"
    return expr


@SETTINGS
@given(token_soup)
@example("__import__('os').system('true')")
@example("().__class__.__bases__[0]")
@example("x" + "**x" * 100)
@example("(" * 70 + "x" + ")" * 70)
@example("2 3")
@example("sin(x)(y)")
def test_token_soup_parses_or_raises_expression_error(text: str) -> None:
    parse_or_refuse(text)


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_unicode_text_parses_or_raises_expression_error(text: str) -> None:
    parse_or_refuse(text)


# -- valid expression trees ---------------------------------------------------------------

ALL_FUNCTIONS = sorted(FUNCTIONS)
FUNCTIONS_WITHOUT_ABS = [f for f in ALL_FUNCTIONS if f != "abs"]

leaves = st.one_of(
    st.integers(min_value=0, max_value=12).map(str),
    st.sampled_from(["0.5", "2.25", "1e-3", "x", "y", "z", "x", "y", "pi", "E"]),
)


def _fewest(name: str) -> int:
    return FUNCTIONS[name].fewest


def trees(functions: list[str]) -> st.SearchStrategy[str]:
    """Text of random, fully parenthesized expressions (depth well under the parser's 64)."""

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
                lambda t: f"({t[0]}){t[1]}({t[2]})"
            ),
            st.tuples(children, st.sampled_from(["**", "^"]), st.integers(min_value=-3, max_value=3)).map(
                lambda t: f"({t[0]}){t[1]}({t[2]})"
            ),
            children.map(lambda c: f"-({c})"),
            st.sampled_from(functions).flatmap(
                lambda name: st.lists(children, min_size=_fewest(name), max_size=_fewest(name) + 1).map(
                    lambda args: f"{name}({', '.join(args[: FUNCTIONS[name].most or len(args)])})"
                )
            ),
        )

    return st.recursive(leaves, extend, max_leaves=10)


# A well-formed tree may still be refused for what it means; these are documented refusals.
SEMANTIC_REFUSALS = ("division by zero", "is undefined", "is complex")


def parse_valid(text: str) -> sympy.Expr:
    try:
        return parse(text)
    except BudgetError:
        reject()  # e.g. a tower of constant powers: over a documented budget, not a parser bug
    except ExpressionError as err:
        if any(s in err.message for s in SEMANTIC_REFUSALS):
            reject()
        raise AssertionError(f"well-formed {text!r} was refused: {err.message}") from None


@SETTINGS
@given(trees(FUNCTIONS_WITHOUT_ABS))
@example("-(sin(y)*(x+1))")
@example("-((0.5)/((1)+(x)))")  # was printed 1/(2*(x + 1)), which reads back as 1/(2*x + 2)
@example("-(((2)**(-1))/((0.5)+(x)))")  # was printed -(1/2)*2/(2*x + 1): equal, not the same tree
def test_canonical_text_parses_back_to_an_equal_expression(text: str) -> None:
    expr = parse_valid(text)
    again = canonical(expr)
    back = parse_back(again)
    assert back == expr, f"{text!r} -> {again!r} -> {back}"


def parse_back(text: str) -> sympy.Expr:
    """parse(text) of a canonical text. An exact constant longer than a literal may be
    (gamma(36) is the 41-digit 35!) is over the documented literal budget: not a bug."""
    try:
        return parse(text)
    except BudgetError as err:
        if "digits; the limit is" in err.message or "characters long" in err.message:
            reject()
        raise


def test_canonical_text_parses_back_to_the_same_tree() -> None:
    expr = parse("-(sin(y)*(x+1))")
    assert parse(canonical(expr)) == expr


@SETTINGS
@given(trees(ALL_FUNCTIONS))
@example("abs(x)")
@example("sqrt(x**2)")
@example("-(-(max(0, acos(2))))")  # was an internal error: SymPy's Max refused acos(2)
@example("-(max(0, lgamma(-(0.5))))")  # was refused: SymPy's loggamma(-1/2) is complex
def test_canonical_text_with_abs_parses_back(text: str) -> None:
    expr = parse_valid(text)
    assert parse_back(canonical(expr)) == expr


# -- fixed examples a user would type -----------------------------------------------------

x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)


@pytest.mark.parametrize(
    ("implicit", "explicit"),
    [
        pytest.param("2x", "2*x", id="2x"),
        pytest.param("3(x+1)", "3*(x+1)", id="3(x+1)"),
        pytest.param("(x+1)(x-1)", "(x+1)*(x-1)", id="(x+1)(x-1)"),
        pytest.param("2 sin(x)", "2*sin(x)", id="2_sin(x)"),
        pytest.param("x y", "x*y", id="x_y"),
        pytest.param("2pi x", "2*pi*x", id="2pi_x"),
        pytest.param("x^2", "x**2", id="caret"),
        pytest.param("x^y^2", "x**(y**2)", id="caret-right-assoc"),
        pytest.param("-x^2", "-(x**2)", id="caret-binds-tighter-than-minus"),
        pytest.param("2^-x", "2**(-x)", id="caret-negative-exponent"),
    ],
)
def test_shorthand_equals_explicit_form(implicit: str, explicit: str) -> None:
    assert parse(implicit) == parse(explicit)


def test_implicit_multiplication_builds_the_product() -> None:
    assert parse("2x") == 2 * x
    assert parse("x y") == x * y
    assert parse("(x+1)(x-1)") == (x + 1) * (x - 1)


def test_two_numbers_side_by_side_are_an_error_not_a_product() -> None:
    with pytest.raises(ExpressionError, match="syntax error"):
        parse("2 3")


@pytest.mark.parametrize(("name", "value"), [("E", sympy.E), ("pi", sympy.pi)])
def test_E_and_pi_are_constants_not_variables(name: str, value: sympy.Expr) -> None:
    expr = parse(name)
    assert expr == value
    assert expr.free_symbols == set()
    assert parse(f"2{name} x") == 2 * value * x


def test_variables_are_real_symbols() -> None:
    # real=True is what lets sqrt(x**2) simplify; a plain Symbol('x') would not compare equal
    assert parse("x") == x
    assert parse("x") != sympy.Symbol("x")


@pytest.mark.parametrize("text", ["x+", "x**", "sin(x)*"])
def test_trailing_operator_says_the_expression_ends_unexpectedly(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.message.startswith("expression ends unexpectedly")
    assert info.value.start == len(text)
