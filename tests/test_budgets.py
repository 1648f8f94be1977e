"""Every documented budget (README, Security) at its edge: the limit is accepted, the limit
plus one is refused with exit 2 and one ``Error:`` line that names the limit."""

from __future__ import annotations

import pytest

from conftest import error_lines, invoke, json_of

# (budget, text at the limit, text one past it, what the refusal must say)
EXPRESSIONS = [
    pytest.param("x" + " " * 9_999, "x" + " " * 10_000, "the limit is 10,000", id="length-10000-characters"),
    # "-x" and 1999 times "+x": 4,000 tokens; "x" and 2000 times "+x": 4,001
    pytest.param("-x" + "+x" * 1999, "x" + "+x" * 2000, "4,000 tokens (the limit)", id="tokens-4000"),
    # "2x" is 2 tokens and 3 syntax nodes (2 * x): 1000 terms joined by "+" are 3,999 nodes,
    # a leading "-" makes 4,000; one more "+x" makes 4,001 (with 3,001 tokens, under that budget)
    pytest.param("-" + "+".join(["2x"] * 1000), "+".join(["2x"] * 1000) + "+x", "the limit is 4,000", id="nodes-4000"),
    pytest.param("(" * 64 + "x" + ")" * 64, "(" * 65 + "x" + ")" * 65, "limit of 64 levels", id="depth-parentheses-64"),
    pytest.param("sin(" * 64 + "x" + ")" * 64, "sin(" * 65 + "x" + ")" * 65, "limit of 64 levels", id="depth-calls-64"),
    pytest.param("-" * 64 + "x", "-" * 65 + "x", "limit of 64 levels", id="depth-signs-64"),
    pytest.param("x" + "**1" * 64, "x" + "**1" * 65, "limit of 64 levels", id="depth-powers-64"),
    pytest.param("x*" + "1" * 30, "x*" + "1" * 31, "the limit is 30", id="literal-digits-30"),
    # leading zeros are not significant digits, but they count towards the length
    pytest.param("x*0." + "0" * 61 + "1", "x*0." + "0" * 62 + "1", "the limit is 64", id="literal-length-64"),
    pytest.param("x*1e-308", "x*1e-309", "outside +-308", id="literal-exponent-minus-308"),
    pytest.param("x**1000", "x**1001", "limit of 1000", id="constant-exponent-1000"),
    pytest.param("x**-1000", "x**-1001", "limit of 1000", id="constant-exponent-minus-1000"),
    # 100**-500 has 1,000 digits; 11**-961 has 961 log10(11) = 1,000.8
    pytest.param("x*100**-500", "x*11**-961", "the limit is 1,000", id="constant-power-1000-digits"),
    pytest.param("x*10**-500*10**-500", "x*10**-500*10**-501", "the limit is 1,000", id="constant-product-1000-digits"),
]


def refused(result, fragment: str) -> None:
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    (line,) = error_lines(result.stderr)
    assert fragment in line, line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("at_limit", "past_limit", "fragment"), EXPRESSIONS)
def test_expression_budget_accepts_the_limit_and_refuses_one_more(at_limit: str, past_limit: str, fragment: str):
    accepted = invoke("grad", "--at", "1", "--format", "plain", "--", at_limit)
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.stderr == ""
    refused(invoke("grad", "--at", "1", "--format", "plain", "--", past_limit), fragment)


def test_literal_exponent_of_plus_308_is_accepted_and_309_refused():
    accepted = invoke("grad", "x*1e308", "--at", "1", "--dtype", "float64", "--format", "plain")
    assert (accepted.exit_code, accepted.stdout.strip()) == (0, "1e+308"), accepted.stderr
    refused(invoke("grad", "x*1e309", "--at", "1", "--dtype", "float64"), "outside +-308")


def test_expression_on_stdin_of_10000_characters_is_accepted_and_10001_refused():
    accepted = invoke("grad", "-", "--at", "1", "--format", "plain", input="x" + " " * 9_999)
    assert (accepted.exit_code, accepted.stdout.strip()) == (0, "1"), accepted.stderr
    refused(invoke("grad", "-", "--at", "1", input="x" + " " * 10_000), "the limit of 10,000 characters")


def test_order_8_is_accepted_and_9_refused():
    accepted = json_of(invoke("grad", "sin(x)", "--at", "0", "--order", "8", "--format", "json"), "grad")
    # d^k/dx^k sin(x) at 0 is sin(k*pi/2): 1, 0, -1, 0, ... for k = 1..8
    assert accepted["results"][0]["derivatives"] == pytest.approx([1, 0, -1, 0, 1, 0, -1, 0], abs=1e-6)
    refused(invoke("grad", "sin(x)", "--at", "0", "--order", "9"), "between 1 and 8")
