"""The functions the language allows, by the names users type, with their aliases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
from sympy.codegen import cfunctions

from . import functions


@dataclass(frozen=True)
class Function:
    """A function of the language: how SymPy builds it and how many arguments it takes."""

    build: Callable[..., sympy.Expr]
    fewest: int = 1
    most: int | None = 1  # None: no upper bound

    def arity(self) -> str:
        if self.most == self.fewest:
            return f"{self.fewest} argument{'s' if self.fewest != 1 else ''}"
        if self.most is None:
            return f"{self.fewest} or more arguments"
        return f"{self.fewest} or {self.most} arguments"


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    return sympy.log(x) if base is None else sympy.log(x, base)


def _hypot(x: sympy.Expr, y: sympy.Expr) -> sympy.Expr:
    return sympy.sqrt(x**2 + y**2)


def _lgamma(x: sympy.Expr) -> sympy.Expr:
    """log|gamma(x)|: SymPy's loggamma is the complex log-gamma, off by i*pi*k left of 0.

    Its derivative is digamma wherever gamma is finite, so the symbolic form serves; a
    constant argument left of 0 is given its real value, log|gamma(c)|.
    """
    if x.is_number and x.is_extended_real and not x.is_positive:
        return sympy.log(sympy.Abs(sympy.gamma(x)))
    return sympy.loggamma(x)


FUNCTIONS: dict[str, Function] = {
    "sin": Function(sympy.sin),
    "cos": Function(sympy.cos),
    "tan": Function(sympy.tan),
    "sec": Function(sympy.sec),
    "csc": Function(sympy.csc),
    "cot": Function(sympy.cot),
    "asin": Function(sympy.asin),
    "acos": Function(sympy.acos),
    "atan": Function(sympy.atan),
    "atan2": Function(sympy.atan2, 2, 2),  # atan2(y, x), the angle of the point (x, y)
    "sinh": Function(sympy.sinh),
    "cosh": Function(sympy.cosh),
    "tanh": Function(sympy.tanh),
    "asinh": Function(sympy.asinh),
    "acosh": Function(sympy.acosh),
    "atanh": Function(sympy.atanh),
    "exp": Function(sympy.exp),
    "expm1": Function(cfunctions.expm1),
    "log": Function(_log, 1, 2),  # log(x) natural, log(x, b) = log(x)/log(b)
    "log2": Function(lambda x: sympy.log(x, 2)),
    "log10": Function(lambda x: sympy.log(x, 10)),
    "log1p": Function(cfunctions.log1p),
    "sqrt": Function(sympy.sqrt),
    "cbrt": Function(functions.cbrt),
    "hypot": Function(_hypot, 2, 2),
    "abs": Function(sympy.Abs),
    "sign": Function(sympy.sign),
    "floor": Function(functions.floor),
    "ceil": Function(functions.ceil),
    "min": Function(sympy.Min, 2, None),
    "max": Function(sympy.Max, 2, None),
    "relu": Function(functions.relu),
    "sigmoid": Function(functions.sigmoid),
    "softplus": Function(functions.softplus),
    "erf": Function(sympy.erf),
    "erfc": Function(sympy.erfc),
    "gamma": Function(sympy.gamma),
    "lgamma": Function(_lgamma),  # log|gamma(x)|, as C's and TensorFlow's lgamma
    "digamma": Function(sympy.digamma),
    "sinc": Function(sympy.sinc),  # sin(x)/x, sinc(0) = 1 (numpy's sinc is sin(pi x)/(pi x))
}
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
# other spellings of the same function, where they are unambiguous
ALIASES = {
    "ln": "log",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arctan2": "atan2",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "Abs": "abs",
    "fabs": "abs",
    "sgn": "sign",
    "ceiling": "ceil",
    "Max": "max",
    "Min": "min",
    "expit": "sigmoid",
    "loggamma": "lgamma",
}
CALLABLE = frozenset(FUNCTIONS) | frozenset(ALIASES)
# exact constants these functions expand (gamma(n) = (n-1)!, digamma(n) = harmonic(n-1) - EulerGamma)
EXPANDS_EXACTLY = {"gamma", "lgamma", "digamma"}

# unicode as people paste it: each maps to the ASCII token it stands for
