"""The expression language people type: every function against an independent SymPy
formula evaluated by mpmath, the conventions at kinks, unicode as pasted against its ASCII
twin, refused look-alike and invisible characters, arity, did-you-mean, number literals."""

from __future__ import annotations

import functools
import math
import unicodedata

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autodiffcli.calculus.derivatives import derivatives
from autodiffcli.calculus.tf_build import TFFunction
from autodiffcli.errors import ExpressionError
from autodiffcli.language.parse import parse
from autodiffcli.language.printing import canonical
from autodiffcli.language.vocabulary import ALIASES, FUNCTIONS

from conftest import invoke, json_of

X = sympy.Symbol("x", real=True)
R = sympy.Rational


def smooth(e: sympy.Expr):
    return lambda x0: e


def _branch_of_cbrt(x0):
    return -((-X) ** R(1, 3)) if x0 < 0 else X ** R(1, 3)


def _branch_of_lgamma(x0):
    return sympy.log(sympy.gamma(X)) if sympy.gamma(x0) > 0 else sympy.log(-sympy.gamma(X))


# name -> (text, oracle: the point -> a SymPy formula valid near it, written here without the
# parser, lowest and highest point). Piecewise functions get the formula of their piece.
CASES = {
    "sin": ("sin(x)", smooth(sympy.sin(X)), -6, 6),
    "cos": ("cos(x)", smooth(sympy.cos(X)), -6, 6),
    "tan": ("tan(x)", smooth(sympy.sin(X) / sympy.cos(X)), -1.4, 1.4),
    "sec": ("sec(x)", smooth(1 / sympy.cos(X)), -1.4, 1.4),
    "csc": ("csc(x)", smooth(1 / sympy.sin(X)), 0.2, 2.9),
    "cot": ("cot(x)", smooth(sympy.cos(X) / sympy.sin(X)), 0.2, 2.9),
    "asin": ("asin(x)", smooth(sympy.asin(X)), -0.95, 0.95),
    "acos": ("acos(x)", smooth(sympy.acos(X)), -0.95, 0.95),
    "atan": ("atan(x)", smooth(sympy.atan(X)), -10, 10),
    "atan2": ("atan2(0.7, x)", smooth(sympy.atan2(R(7, 10), X)), -5, 5),
    "sinh": ("sinh(x)", smooth(sympy.sinh(X)), -5, 5),
    "cosh": ("cosh(x)", smooth(sympy.cosh(X)), -5, 5),
    "tanh": ("tanh(x)", smooth(sympy.tanh(X)), -4, 4),
    "asinh": ("asinh(x)", smooth(sympy.asinh(X)), -5, 5),
    "acosh": ("acosh(x)", smooth(sympy.acosh(X)), 1.05, 10),
    "atanh": ("atanh(x)", smooth(sympy.atanh(X)), -0.95, 0.95),
    "exp": ("exp(x)", smooth(sympy.exp(X)), -10, 10),
    "expm1": ("expm1(x)", smooth(sympy.exp(X) - 1), -3, 3),
    "log": ("log(x, 3)", smooth(sympy.log(X) / sympy.log(3)), 0.05, 20),
    "log2": ("log2(x)", smooth(sympy.log(X) / sympy.log(2)), 0.05, 20),
    "log10": ("log10(x)", smooth(sympy.log(X) / sympy.log(10)), 0.05, 20),
    "log1p": ("log1p(x)", smooth(sympy.log(1 + X)), -0.9, 5),
    "sqrt": ("sqrt(x)", smooth(sympy.sqrt(X)), 0.01, 50),
    "cbrt": ("cbrt(x)", _branch_of_cbrt, -8, 8),
    "hypot": ("hypot(x, 1.5)", smooth(sympy.sqrt(X**2 + R(9, 4))), -5, 5),
    "abs": ("abs(x)", lambda x0: X if x0 > 0 else -X, -3, 3),
    "sign": ("sign(x)", lambda x0: sympy.sign(x0), -3, 3),
    "floor": ("floor(x)", lambda x0: sympy.floor(x0), -5, 5),
    "ceil": ("ceil(x)", lambda x0: sympy.ceiling(x0), -5, 5),
    "min": ("min(x, 0.3, x**2)", lambda x0: min([X, R(3, 10), X**2], key=lambda e: e.subs(X, x0)), -2, 2),
    "max": ("max(x, 0.3, x**2)", lambda x0: max([X, R(3, 10), X**2], key=lambda e: e.subs(X, x0)), -2, 2),
    "relu": ("relu(x)", lambda x0: X if x0 > 0 else sympy.S.Zero, -3, 3),
    "sigmoid": ("sigmoid(x)", smooth(1 / (1 + sympy.exp(-X))), -30, 30),
    "softplus": ("softplus(x)", smooth(sympy.log(1 + sympy.exp(X))), -20, 20),
    "erf": ("erf(x)", smooth(sympy.erf(X)), -3, 3),
    "erfc": ("erfc(x)", smooth(sympy.erfc(X)), -3, 3),
    "gamma": ("gamma(x)", smooth(sympy.gamma(X)), -3.9, 6),
    "lgamma": ("lgamma(x)", _branch_of_lgamma, -3.9, 30),
    "digamma": ("digamma(x)", smooth(sympy.polygamma(0, X)), -3.9, 8),
    "sinc": ("sinc(x)", smooth(sympy.sin(X) / X), -10, 10),
}
# each function's other argument positions, and other spellings
MORE_CASES = {
    "atan2(x, 0.7)": (smooth(sympy.atan2(X, R(7, 10))), -5, 5),
    "atan2(x, -0.7)": (smooth(sympy.atan2(X, -R(7, 10))), 0.1, 5),
    "hypot(2, x)": (smooth(sympy.sqrt(4 + X**2)), -5, 5),
    "log(3, x)": (smooth(sympy.log(3) / sympy.log(X)), 1.1, 20),
    "log(x)": (smooth(sympy.log(X)), 0.05, 20),
    "max(x, -x)": (lambda x0: X if x0 > 0 else -X, -3, 3),
    "min(x, 1 - x, 0.2)": (lambda x0: min([X, 1 - X, R(1, 5)], key=lambda e: e.subs(X, x0)), -2, 2),
}
# the kinks, poles and jumps of each piecewise function: the random points keep away from them
AVOID = {
    "abs": [0],
    "sign": [0],
    "relu": [0],
    "floor": list(range(-5, 6)),
    "ceil": list(range(-5, 6)),
    "min": [0, 0.3, 1],
    "max": [0, 0.3, 1],
    "cbrt": [0],
    "gamma": [0, -1, -2, -3],
    "lgamma": [0, -1, -2, -3],
    "digamma": [0, -1, -2, -3],
    "sinc": [0],
    "max(x, -x)": [0],
    "min(x, 1 - x, 0.2)": [0.2, 0.5, 0.8],
}
ORDER = 3
RELATIVE = 1e-9  # of the scale of the numbers involved; a wrong formula is off by far more


def test_every_function_and_alias_has_a_case_here() -> None:
    assert sorted(CASES) == sorted(FUNCTIONS)
    for alias, name in ALIASES.items():
        assert name in FUNCTIONS, alias


@functools.cache
def tower(formula: sympy.Expr) -> list[sympy.Expr]:
    out = [formula]
    for _ in range(ORDER + 1):
        out.append(sympy.diff(out[-1], X))
    return out


def exact(e: sympy.Expr, x0: float) -> float:
    # the point as an 80-digit Float holds the double exactly, and leaves 50 digits after
    # the cancellation in exp(x) - 1 at x = 1e-30 (evalf's own subs= loses them)
    return float(e.subs(X, sympy.Float(x0, 80)).evalf(30))


def tape(text: str, xs: list[float]) -> list[list[float]]:
    """[value, f', f'', f'''] at each point, from the tape in float64."""
    f = TFFunction(parse(text), "float64")
    d = derivatives(f, np.array([[x] for x in xs]), ["x"], {}, ["x"], [], ORDER)
    return [[float(d.value[i]), *(float(h[i]) for h in d.higher)] for i in range(len(xs))]


def check_against_oracle(text: str, oracle, xs: list[float]) -> None:
    for x0, got in zip(xs, tape(text, xs), strict=True):
        want = [exact(e, x0) for e in tower(oracle(R(x0)))]
        for k in range(ORDER + 1):
            scale = max(abs(w) for w in want[: k + 1]) + abs(x0) * abs(want[k + 1]) + 1e-300
            assert abs(got[k] - want[k]) <= RELATIVE * scale, (
                f"d^{k}/dx^{k} {text} at x={x0!r}: tape {got[k]!r}, SymPy {want[k]!r}"
            )


def points(lo: float, hi: float, avoid: list[float]) -> st.SearchStrategy[list[float]]:
    def far(x: float) -> bool:
        return all(abs(x - a) > 1e-3 for a in avoid) and (x == 0 or abs(x) > 1e-30)

    return st.lists(st.floats(lo, hi, allow_subnormal=False).filter(far), min_size=1, max_size=6)


PROPERTY = settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(CASES))
def test_tape_derivatives_to_order_3_agree_with_sympy_at_random_points(name: str) -> None:
    text, oracle, lo, hi = CASES[name]

    @PROPERTY
    @given(points(lo, hi, AVOID.get(name, [])))
    def check(xs: list[float]) -> None:
        check_against_oracle(text, oracle, xs)

    check()


@pytest.mark.parametrize("text", sorted(MORE_CASES))
def test_other_argument_positions_agree_with_sympy_at_random_points(text: str) -> None:
    oracle, lo, hi = MORE_CASES[text]

    @PROPERTY
    @given(points(lo, hi, AVOID.get(text, [])))
    def check(xs: list[float]) -> None:
        check_against_oracle(text, oracle, xs)

    check()


def test_sinc_at_and_near_zero_has_its_series_derivatives() -> None:
    """sinc(x) = 1 - x**2/6 + x**4/120 - ...: at 0, f = 1, f' = 0, f'' = -1/3, f''' = 0."""
    (at_zero,) = tape("sinc(x)", [0.0])
    assert at_zero == [1.0, 0.0, pytest.approx(-1 / 3, rel=1e-15), 0.0]
    check_against_oracle("sinc(x)", smooth(sympy.sin(X) / X), [1e-8, -1e-3, 0.5, 0.999, 1.0, 1.001])


def test_gamma_has_its_sign_on_the_negative_axis() -> None:
    got = [row[0] for row in tape("gamma(x)", [-0.5, -1.5, -2.5, 4.0])]
    assert got == pytest.approx([-2 * math.sqrt(math.pi), 4 * math.sqrt(math.pi) / 3, -8 * math.sqrt(math.pi) / 15, 6])


@pytest.mark.parametrize(
    ("c", "at"),
    [("-0.5", mpmath.mpf(-1) / 2), ("-2.5", mpmath.mpf(-5) / 2), ("-pi/7", -mpmath.pi / 7)],
)
def test_lgamma_of_a_negative_constant_is_the_real_log_of_abs_gamma(c: str, at: mpmath.mpf) -> None:
    """log|gamma(c)| (mpmath), as TensorFlow's lgamma of a variable there; SymPy's loggamma of
    a constant left of 0 is complex (off by i*pi), which max() refused."""
    exact = float(mpmath.log(abs(mpmath.gamma(at))))
    for text, slope in ((f"lgamma({c})*x", exact), (f"max(0, lgamma({c}))*x + x", max(0.0, exact) + 1)):
        data = json_of(invoke("grad", text, "--at", "1", "--dtype", "float64", "--format", "json"), "grad")
        assert math.isclose(data["results"][0]["gradient"]["x"], slope, rel_tol=1e-14), text
    variable = invoke("grad", "lgamma(x)", "--at", repr(float(at)), "--dtype", "float64", "--format", "json")
    assert math.isclose(json_of(variable, "grad")["results"][0]["value"], exact, rel_tol=1e-12)


def test_functions_meet_their_textbook_values() -> None:
    text = "log2(8) + log10(1000) + log(81, 3) + cbrt(-27) + hypot(3, 4) + atan2(1, -1)/pi + max(1, 5, 2) - min(4, -2)"
    assert parse(text) == 3 + 3 + 4 - 3 + 5 + R(3, 4) + 5 + 2
    assert parse("floor(-2.5) + ceil(-2.5) + sign(-7) + relu(-3) + relu(2) + gamma(5) + digamma(1)") == (
        -3 - 2 - 1 + 0 + 2 + 24 - sympy.EulerGamma
    )


# -- conventions at kinks: what the tape gives, and whether the symbolic column agrees -------


def grad_json(expr: str, *args: str, code: int = 0) -> dict:
    """The run's JSON, read strictly against its schema; the run must exit with ``code``."""
    return json_of(invoke("grad", "--format", "json", "--dtype", "float64", *args, "--", expr), "grad", code)


def symbolic_at(text: str, **point: float) -> sympy.Expr:
    """The symbolic column's text (our own output, not user input), evaluated by SymPy."""
    names = {n: sympy.Symbol(n, real=True) for n in point}
    e = sympy.parse_expr(text, local_dict={**names, "max": sympy.Max, "min": sympy.Min})
    return e.subs({names[n]: R(v) for n, v in point.items()})


@pytest.mark.parametrize(
    ("expr", "point", "name", "tape_value"),
    [
        pytest.param("relu(x)", "0", "x", 0.0, id="relu-at-0-is-0-as-in-TensorFlow"),
        pytest.param("abs(x)", "0", "x", 0.0, id="abs-at-0-is-sign(0)=0"),
        pytest.param("max(x, 0)", "0", "x", 0.5, id="max-at-a-tie-is-the-mean"),
        pytest.param("min(x, 1)", "1", "x", 0.5, id="min-at-a-tie-is-the-mean"),
        pytest.param("max(x, y)", "x=1,y=1", "y", 0.5, id="max-of-two-variables-at-a-tie"),
        pytest.param("floor(x)", "2", "x", 0.0, id="floor-at-a-jump-is-0"),
        pytest.param("ceil(x)", "-1", "x", 0.0, id="ceil-at-a-jump-is-0"),
    ],
)
def test_at_a_kink_the_symbolic_column_and_the_tape_agree(expr: str, point: str, name: str, tape_value: float) -> None:
    doc = grad_json(expr, "--at", point)
    assert doc["results"][0]["gradient"][name] == tape_value
    at = {k: float(v) for k, v in (p.split("=") for p in point.split(","))} if "=" in point else {"x": float(point)}
    assert symbolic_at(doc["symbolic"]["gradient"][name], **at) == R(tape_value)


def test_where_the_columns_cannot_agree_the_symbolic_column_is_a_dirac_delta() -> None:
    """sign'(0), and abs'' and relu'' at 0, are Dirac deltas: no number. The tape says 0."""
    for expr, order, label in [
        ("sign(x)", 1, "2*DiracDelta(x)"),
        ("abs(x)", 2, "2*DiracDelta(x)"),
        ("relu(x)", 2, "DiracDelta(x)"),
    ]:
        doc = grad_json(expr, "--at", "0", "--order", str(order))
        assert doc["symbolic"]["derivatives"][-1] == label
        assert doc["results"][0]["derivatives"][-1] == 0.0
        assert symbolic_at(label, x=0).has(sympy.DiracDelta)  # SymPy has no number for it


def test_at_a_tie_of_three_sympy_counts_each_half_and_the_tape_takes_the_mean() -> None:
    """max(x, 2x - 1, x**2) at x = 1: slopes 1, 2, 2. SymPy's Heaviside(0) = 1/2 for each gives
    5/2; the tape gives their mean, 5/3. The README says so."""
    doc = grad_json("max(x, 2*x - 1, x**2)", "--at", "1")
    assert doc["results"][0]["gradient"]["x"] == pytest.approx(5 / 3, rel=1e-15)
    assert symbolic_at(doc["symbolic"]["gradient"]["x"], x=1) == R(5, 2)


# -- unicode as people paste it, against its ASCII twin ---------------------------------------

TWINS = [
    ("2×x", "2*x"),
    ("2·x", "2*x"),
    ("2⋅x", "2*x"),
    ("2∙x", "2*x"),
    ("2∗x", "2*x"),
    ("x÷2", "x/2"),
    ("x∕2", "x/2"),
    ("x−1", "x-1"),
    ("−x", "-x"),
    ("x²", "x**2"),
    ("x³", "x**3"),
    ("x⁻¹", "x**-1"),
    ("x¹⁰", "x**10"),
    ("x⁻²³", "x**-23"),
    ("x⁺²", "x**2"),
    ("x⁰", "x**0 + 0*x"),
    ("2x²", "2*x**2"),
    ("−x²", "-x**2"),
    ("(x+1)²", "(x+1)**2"),
    ("x²y", "x**2*y"),
    ("2⁻¹x", "x/2"),
    ("√x", "sqrt(x)"),
    ("√(x+1)", "sqrt(x+1)"),
    ("2√x", "2*sqrt(x)"),
    ("√2x", "sqrt(2)*x"),
    ("√x²", "sqrt(x**2)"),
    ("√√x", "sqrt(sqrt(x))"),
    ("π", "pi"),
    ("2π", "2*pi"),
    ("πx", "pi*x"),
    ("xπ", "x*pi"),
    ("sin(π÷2)×x", "sin(pi/2)*x"),
    ("x\u00a0+\u00a0y", "x + y"),
    ("x\u3000+\u3000y", "x + y"),
    ("x\u2009+\u202fy", "x + y"),
    ("ln(x) + arctan(x) + arcsinh(x)", "log(x) + atan(x) + asinh(x)"),
    ("arcsin(x) + arccos(x) + arccosh(x) + arctanh(x)", "asin(x) + acos(x) + acosh(x) + atanh(x)"),
    ("Abs(x) + fabs(x) + sgn(x) + ceiling(x)", "2*abs(x) + sign(x) + ceil(x)"),
    (
        "Max(x, y) + Min(x, y) + expit(x) + loggamma(x) + arctan2(y, x)",
        "max(x, y) + min(x, y) + sigmoid(x) + lgamma(x) + atan2(y, x)",
    ),
    ("1_000x", "1000*x"),
    ("1_000.000_5x", "1000.0005*x"),
    ("1e1_0x", "1e10*x"),
]


@pytest.mark.parametrize(("pasted", "ascii_twin"), TWINS)
def test_unicode_form_is_its_ascii_twin(pasted: str, ascii_twin: str) -> None:
    expr = parse(pasted)
    assert expr == parse(ascii_twin)
    assert canonical(expr) == canonical(parse(ascii_twin))


def test_pasted_formula_gives_the_same_report_as_its_ascii_twin() -> None:
    pasted = grad_json("−x² + 2×x − √(x+1)", "--at", "2", "--order", "2")
    typed = grad_json("-x**2 + 2*x - sqrt(x+1)", "--at", "2", "--order", "2")
    assert pasted == typed
    assert pasted["expression"] == "-x**2 + 2*x - sqrt(x + 1)"


# -- refused characters: named, with their position, and a caret under them -----------------

REFUSED = [
    ("а + x", 0, "it looks like the Latin letter 'a'; names are ASCII letters only"),  # Cyrillic a
    ("sіn(x)", 1, "it looks like the Latin letter 'i'; names are ASCII letters only"),  # Cyrillic i
    ("x*еxp(x)", 2, "it looks like the Latin letter 'e'; names are ASCII letters only"),
    ("cοs(x)", 1, "it looks like the Latin letter 'o'; names are ASCII letters only"),  # Greek omicron
    ("Α*x", 0, "it looks like the Latin letter 'A'; names are ASCII letters only"),  # Greek capital alpha
    ("θ + x", 0, "names are ASCII letters only: write theta"),
    ("ｘ + 1", 0, "write 'x'"),
    ("2*𝑥", 2, "write 'x'"),
    ("٣x", 0, "write the digit 3"),
    ("x – 1", 2, "write - for minus"),
    ("∛x", 0, "write cbrt(x)"),
    ("∜x", 0, "write x^(1/4)"),
]
INVISIBLE = [
    "x\u200b+1",  # ZERO WIDTH SPACE
    "x\u200c+1",  # ZERO WIDTH NON-JOINER
    "x\u200d+1",  # ZERO WIDTH JOINER
    "x\u2060+1",  # WORD JOINER
    "x\ufeff+1",  # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    "x\u00ad+1",  # SOFT HYPHEN
    "x\u202e+1",  # RIGHT-TO-LEFT OVERRIDE
    "x\u202d+1",  # LEFT-TO-RIGHT OVERRIDE
    "x\u2066+1",  # LEFT-TO-RIGHT ISOLATE
    "x\u2067+1",  # RIGHT-TO-LEFT ISOLATE
    "x\u2069+1",  # POP DIRECTIONAL ISOLATE
    "x\u200f+1",  # RIGHT-TO-LEFT MARK
    "x\u061c+1",  # ARABIC LETTER MARK
    "x\u0301+1",  # COMBINING ACUTE ACCENT
    "x\U000e0041+1",  # TAG LATIN CAPITAL LETTER A
]


def refusal(text: str) -> list[str]:
    result = invoke("grad", "--", text)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Error: ")
    return lines


def caret_column(lines: list[str]) -> int:
    return lines[2].index("^") - 2


@pytest.mark.parametrize(("sign", "root"), [("∛", 3), ("∜", 4)])
def test_a_root_sign_is_refused_with_advice_that_takes_that_root(sign: str, root: int) -> None:
    """The advice for the cube root sign once read 'cbrt(x) or x^(1/4)', a fourth root."""
    advice = refusal(f"{sign}x")[0].rsplit("write ", 1)[1]
    data = json_of(invoke("grad", advice, "--at", "81", "--dtype", "float64", "--format", "json"), "grad")
    assert data["results"][0]["value"] == pytest.approx(81 ** (1 / root), rel=1e-15)


@pytest.mark.parametrize(("text", "pos", "hint"), REFUSED)
def test_look_alike_character_is_named_with_its_position_and_a_caret(text: str, pos: int, hint: str) -> None:
    char = text[pos]
    lines = refusal(text)
    code = f"U+{ord(char):04X} {unicodedata.name(char)}"
    assert lines[0] == f"Error: unexpected character {char!r} ({code}) at position {pos + 1}: {hint}"
    assert lines[1] == f"  {text}"
    wide = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text[:pos])
    assert caret_column(lines) == wide


@pytest.mark.parametrize("text", INVISIBLE, ids=lambda t: f"U+{ord(t[1]):04X}")
def test_invisible_character_is_named_and_never_echoed(text: str) -> None:
    char = text[1]
    lines = refusal(text)
    assert lines[0] == (
        f"Error: invisible character U+{ord(char):04X} {unicodedata.name(char)} at position 2: "
        "it can make the text mean something other than it shows; delete it"
    )
    assert lines[1] == "  x " + text[2:]  # shown as a space: the echo cannot reorder or hide text
    assert caret_column(lines) == 1


def test_caret_stays_under_the_users_characters_after_unicode_forms() -> None:
    lines = refusal("x² × √π + sinn(x)")
    assert lines[0] == "Error: unknown function 'sinn' (did you mean 'sin'?)"
    assert lines[2] == "  " + " " * len("x² × √π + ") + "^^^^"


def test_wide_and_unusual_spaces_are_echoed_as_plain_spaces_so_the_caret_lines_up() -> None:
    lines = refusal("x\u3000+\u00a0sinn(x)")
    assert lines[1:] == ["  x + sinn(x)", "      ^^^^"]


def test_a_wide_character_gets_two_carets() -> None:
    assert refusal("2+ｘ")[1:] == ["  2+ｘ", "    ^^"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sin²(x)", "a power of a function name is not read: write sin(...)^2 for a power of the value"),
        (
            "sin⁻¹(x)",
            "a power of a function name is not read: write sin(...)^-1 for a power of the value, "
            "or asin(...) for the inverse",
        ),
        ("x²⁻¹", "a second superscript exponent right after the first is not read: write x^(...)"),
        ("x⁻", "expression ends unexpectedly after '-'"),
        ("√", "expression ends unexpectedly after '√'"),
        ("x~1", "unexpected character '~'"),
    ],
)
def test_unicode_forms_that_are_not_read_say_so(text: str, message: str) -> None:
    if text == "x⁻":
        with pytest.raises(ExpressionError):
            parse(text)
        return
    assert refusal(text)[0] == f"Error: {message}"


# -- arity and did-you-mean ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("atan2(x)", "atan2 takes 2 arguments, got 1"),
        ("hypot(x, y, 1)", "hypot takes 2 arguments, got 3"),
        ("sin(x, y)", "sin takes 1 argument, got 2"),
        ("log(x, 2, 3)", "log takes 1 or 2 arguments, got 3"),
        ("max(x)", "max takes 2 or more arguments, got 1"),
        ("min()", "min takes 2 or more arguments, got 0"),
        ("arctan2(y)", "arctan2 takes 2 arguments, got 1"),
        ("sinn(x)", "unknown function 'sinn' (did you mean 'sin'?)"),
        ("gama(x)", "unknown function 'gama' (did you mean 'gamma'?)"),
        ("sigmoud(x)", "unknown function 'sigmoud' (did you mean 'sigmoid'?)"),
        ("arcsinn(x)", "unknown function 'arcsinn' (did you mean 'arcsin'?)"),
        ("Sin(x)", "unknown function 'Sin' (did you mean 'sin'?)"),
        ("maxx(x, y)", "unknown function 'maxx' (did you mean 'max'?)"),
        ("x,y", "a comma separates the arguments of a function, as in max(x, y); it cannot stand alone"),
        ("max(x,)", "an argument is missing after ','"),
        ("gamma*x", "gamma is a function: write gamma(...)"),
        ("ln + x", "ln is a function: write ln(...)"),
    ],
)
def test_call_errors_say_what_was_wrong_with_a_caret(text: str, message: str) -> None:
    lines = refusal(text)
    assert lines[0] == f"Error: {message}"
    assert lines[1] == f"  {text}"


def test_max_of_x_and_0_and_erf_work_as_a_new_user_types_them() -> None:
    """The two commands of issue 11's first line."""
    doc = grad_json("max(x,0)", "--at", "2")
    assert doc["results"][0]["gradient"]["x"] == 1.0
    doc = grad_json("exp(-x^2)*erf(x)", "--at", "0.5")
    x = 0.5
    want = -2 * x * math.exp(-(x**2)) * math.erf(x) + math.exp(-(x**2)) * 2 / math.sqrt(math.pi) * math.exp(-(x**2))
    assert doc["results"][0]["gradient"]["x"] == pytest.approx(want, rel=1e-14)


# -- number literals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x10*x", "0x10 is a hexadecimal number, which expressions do not read: write 16 (or 0*x10 for a product)"),
        ("0b101*x", "0b101 is a binary number, which expressions do not read: write 5 (or 0*b101 for a product)"),
        ("0o17*x", "0o17 is an octal number, which expressions do not read: write 15 (or 0*o17 for a product)"),
        ("0XFF", "0XFF is a hexadecimal number, which expressions do not read: write 255 (or 0*XFF for a product)"),
        ("1j*x", "1j is a complex number; expressions are real (for a product with a variable j write 1*j)"),
        ("2.5J + x", "2.5J is a complex number; expressions are real (for a product with a variable J write 2.5*J)"),
        ("1__000*x", "misplaced '_' in the number 1__000: '_' goes between digits, as in 1_000"),
        ("1_*x", "misplaced '_' in the number 1_: '_' goes between digits, as in 1_000"),
    ],
)
def test_number_literal_that_is_not_read_says_what_to_write(text: str, message: str) -> None:
    assert refusal(text)[0] == f"Error: {message}"


def test_a_variable_named_j_still_multiplies() -> None:
    assert parse("2 j + 3jx") == 2 * sympy.Symbol("j", real=True) + 3 * sympy.Symbol("jx", real=True)


def test_digit_separators_read_as_the_number() -> None:
    doc = grad_json("1_000*x", "--at", "1")
    assert doc["expression"] == "1000*x"
    assert doc["results"][0]["gradient"]["x"] == 1000.0


# -- domain errors of the new functions are named ---------------------------------------------


@pytest.mark.parametrize(
    ("expr", "at", "message"),
    [
        ("log1p(x)", "-2", "domain error: log1p of -2.0, outside (-1, inf): log1p(x) at x=-2.0"),
        ("acosh(x)", "0.5", "domain error: acosh of 0.5, outside [1, inf): acosh(x) at x=0.5"),
        ("atanh(x)", "1", "domain error: atanh of 1.0, outside (-1, 1): atanh(x) at x=1.0"),
        ("log(x, 2)", "-1", "domain error: log of a negative number: log(x) at x=-1.0 has argument -1.0"),
        (
            "gamma(x)",
            "-1",
            "domain error: pole of gamma: gamma(x) at x=-1.0 has argument -1.0, 0 or a negative integer",
        ),
        ("lgamma(x)", "0", "domain error: pole of gamma: lgamma(x) at x=0.0 has argument 0.0, 0 or a negative integer"),
        (
            "digamma(x)",
            "-2",
            "domain error: pole of gamma: digamma(x) at x=-2.0 has argument -2.0, 0 or a negative integer",
        ),
    ],
)
def test_domain_error_of_a_new_function_is_named(expr: str, at: str, message: str) -> None:
    result = invoke("grad", "--format", "json", "--at", at, "--", expr)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"


# -- the nodes only SymPy's derivatives make (Heaviside, DiracDelta, polygamma) evaluate too ---


@pytest.mark.parametrize(
    ("text", "xs"),
    [
        ("relu(x)", [-1.5, 0.0, 2.0]),
        ("max(x, 0.3)", [-1.0, 0.3, 1.0]),
        ("min(x, 1 - x)", [0.1, 0.5, 0.9]),
        ("abs(x)", [-2.0, 0.5]),
        ("sign(x)", [-2.0, 0.5]),
        ("digamma(x)", [0.3, 2.5]),
        ("lgamma(x)", [0.3, 7.0]),
        ("gamma(x)", [-0.5, 3.5]),
        ("sigmoid(x) + softplus(x) + cbrt(x)", [-2.0, 1.5]),
    ],
)
def test_symbolic_derivatives_built_in_tensorflow_match_the_tape(text: str, xs: list[float]) -> None:
    """SymPy's derivative trees hold Heaviside, DiracDelta and polygamma(n, x); the op table
    evaluates them, and at every point (kinks included) they give the tape's numbers."""
    from autodiffcli.runtime import tensorflow

    tf = tensorflow()
    expr = parse(text)
    rows = tape(text, xs)
    for k in range(1, ORDER + 1):
        f = TFFunction(sympy.diff(expr, X, k), "float64")
        got = np.broadcast_to(f({"x": tf.constant(xs, tf.float64)}).numpy(), (len(xs),))
        for i, x0 in enumerate(xs):
            want = rows[i][k]
            if k >= 2 and x0 in (0.0, 0.3, 0.5) and text != "digamma(x)":
                continue  # a Dirac delta at the kink: SymPy's tree gives inf or nan, the tape 0
            assert got[i] == pytest.approx(want, rel=1e-12, abs=1e-12), f"d^{k} {text} at {x0}"
            if x0 in (0.0, 0.3, 0.5) and text != "digamma(x)":
                continue  # at a kink the conventions are the tape's (tested above), not SymPy's
            # and both are the derivative SymPy itself evaluates, to 30 digits: an oracle that
            # goes through none of our code (not the op table, not the tape)
            exact = complex(sympy.diff(expr, X, k).subs(X, sympy.Float(x0, 30)).evalf(30))
            assert exact.imag == 0 and want == pytest.approx(exact.real, rel=1e-12, abs=1e-12), f"{text} at {x0}"
