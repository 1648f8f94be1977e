"""SymPy expression -> text in the language the parser reads back; the variables of an expression."""

from __future__ import annotations

import functools
import re

import sympy
from sympy.printing.str import StrPrinter


class _Printer(StrPrinter):
    """SymPy's text, in this parser's vocabulary (``abs``, not ``Abs``)."""

    def _print_Abs(self, expr: sympy.Abs) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        """A fraction coefficient stays apart from a denominator: SymPy writes 1/(2*(x + 1)),
        which reads back as 1/(2*x + 2) (SymPy distributes 2 over the sum); (1/2)/(x + 1)
        reads back as the same tree."""
        coeff, rest = expr.as_coeff_Mul()
        numer, denom = sympy.fraction(rest, exact=True)  # as_numer_denom would clear 1/2 in x + 1/2
        if not (coeff.is_Rational and coeff.q != 1 and any(f.is_Add for f in sympy.Mul.make_args(denom))):
            return super()._print_Mul(expr)
        sign, coeff = ("-", -coeff) if coeff < 0 else ("", coeff)
        top = f"({coeff.p}/{coeff.q})" if numer == 1 else f"({coeff.p}/{coeff.q})*{self.parenthesize(numer, 50)}"
        return f"{sign}{top}/{self.parenthesize(denom, 50)}"

    def _print_Max(self, expr: sympy.Max) -> str:
        return f"max({self.stringify(expr.args, ', ')})"

    def _print_Min(self, expr: sympy.Min) -> str:
        return f"min({self.stringify(expr.args, ', ')})"

    def _print_loggamma(self, expr: sympy.loggamma) -> str:
        return f"lgamma({self._print(expr.args[0])})"

    def _print_polygamma(self, expr: sympy.polygamma) -> str:
        n, x = expr.args
        return f"digamma({self._print(x)})" if n == 0 else f"polygamma({self._print(n)}, {self._print(x)})"

    def _print_EulerGamma(self, expr: sympy.Expr) -> str:
        return "(-digamma(1))"  # the constant SymPy writes for digamma at integers

    def _print_ceiling(self, expr: sympy.ceiling) -> str:
        return f"ceil({self._print(expr.args[0])})"


@functools.lru_cache(maxsize=64)
def canonical(expr: sympy.Expr) -> str:
    """The expression as text this parser reads back to the same expression."""
    return _Printer({"order": "lex"}).doprint(expr)


def variables(expr: sympy.Expr) -> list[str]:
    """Names of the free symbols in natural order (x2 before x10): the one order in which
    every report, plain column and message lists them."""
    return sorted((s.name for s in expr.free_symbols), key=natural_key)


_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[object, ...]:
    """Sorts ``x2`` before ``x10``: runs of digits compare as numbers, the rest as text
    (``x01`` and ``x1`` are told apart by the text itself)."""
    parts = _DIGIT_RUNS.split(name)  # text, number, text, ...: the kinds line up position by position
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)
