"""Text -> SymPy expression, safely.

User text never reaches ``sympify``, ``parse_expr``, ``eval`` or ``lambdify``: those run
Python code. Instead a token pass (written here because Python's own tokenizer accepts far
more than we allow and changes between versions) checks every character, applies the
budgets, rewrites ``^`` to ``**``, translates the Unicode forms people paste (``×``, ``x²``,
``√``, ``π``) to ASCII, names any other non-ASCII character with its position, and makes
implicit multiplication explicit. Python's
``ast`` module then parses the result, and an allow-list turns the tree into SymPy objects.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import re
import signal
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import sympy
from sympy.codegen import cfunctions
from sympy.printing.str import StrPrinter

from ..errors import BudgetError, ExpressionError, did_you_mean
from . import functions


@dataclass(frozen=True)
class Limits:
    """Budgets on untrusted input, all checked before SymPy does any real work."""

    max_length: int = 10_000  # characters of expression text
    max_nodes: int = 4_000  # syntax nodes
    max_depth: int = 64  # nesting of parentheses, calls, powers and unary signs
    max_digits: int = 30  # significant digits in one number literal
    max_literal_length: int = 64  # characters in one number literal
    max_literal_exponent: int = 308  # |e| in a literal such as 1e308
    max_exponent: int = 1_000  # |n| in a constant exponent such as x**n
    max_constant_digits: int = 1_000  # digits of an exact constant such as 9**999 or a product of them
    time_s: float = 3.0  # wall clock for parsing and symbolic differentiation


LIMITS = Limits()


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
    "lgamma": Function(sympy.loggamma),  # log|gamma(x)|, as C's and TensorFlow's lgamma
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
_EXPANDS_EXACTLY = {"gamma", "lgamma", "digamma"}

# unicode as people paste it: each maps to the ASCII token it stands for
UNICODE_OPERATORS = {
    "\u00d7": "*",  # × MULTIPLICATION SIGN
    "\u00b7": "*",  # · MIDDLE DOT
    "\u22c5": "*",  # ⋅ DOT OPERATOR
    "\u2219": "*",  # ∙ BULLET OPERATOR
    "\u2217": "*",  # ∗ ASTERISK OPERATOR
    "\u00f7": "/",  # ÷ DIVISION SIGN
    "\u2215": "/",  # ∕ DIVISION SLASH
    "\u2212": "-",  # − MINUS SIGN
    "\u221a": "~",  # √ SQUARE ROOT: a prefix operator, read as Python's ~ (same precedence as unary minus)
    "\u03c0": "pi",  # π GREEK SMALL LETTER PI
}
SUPERSCRIPTS = {
    "\u2070": "0",
    "\u00b9": "1",
    "\u00b2": "2",
    "\u00b3": "3",
    "\u2074": "4",
    "\u2075": "5",
    "\u2076": "6",
    "\u2077": "7",
    "\u2078": "8",
    "\u2079": "9",
    "\u207a": "+",
    "\u207b": "-",
}
# letters of other scripts that look like Latin ones (refused, named, with their twin)
CONFUSABLES = dict(
    zip(
        "аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХУЅІЈοαινκρτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
        "aeopcyxijsdhlqwABEKMHOPCTXYSIJoaivkptuxABEZHIKMNOPTYX",
    )
)

_DIGITS = r"[0-9](?:_?[0-9])*"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<radix>0[xX][0-9A-Fa-f_]+|0[bB][01_]+|0[oO][0-7_]+)
  | (?P<number>(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^(),])
  | (?P<power>[\u207a\u207b]?[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+)
  | (?P<unicode>[{"".join(UNICODE_OPERATORS)}])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "power" (a superscript exponent)
    text: str  # as the grammar reads it: ASCII, "*" for "×", "pi" for "π", "-1" for "⁻¹"
    start: int  # offset in the user's text
    source: str  # the user's own characters

    @property
    def end(self) -> int:
        return self.start + len(self.source)


def tokenize(text: str, limits: Limits = LIMITS) -> list[Token]:
    """Split ``text`` into tokens, refusing any character outside the grammar."""
    if len(text) > limits.max_length:
        raise BudgetError(f"expression is {len(text):,} characters long; the limit is {limits.max_length:,}")
    tokens: list[Token] = []
    opened: list[int] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(_unexpected(text, pos), text, pos)
        kind = m.lastgroup or ""
        source = m.group()
        pos = m.end()
        if kind == "space":
            continue
        tok = Token(kind, source, m.start(), source)
        if kind == "radix":
            _refuse_radix(tok, text)
        elif kind == "number":
            _check_literal(tok, text, limits)
            tok = Token(kind, source.replace("_", ""), tok.start, source)
        elif kind == "name":
            _check_name(tok, text)
        elif kind == "unicode":
            text_of = UNICODE_OPERATORS[source]
            tok = Token("name" if text_of.isalpha() else "op", text_of, tok.start, source)
        elif kind == "power":
            tok = _superscript(tok, tokens[-1] if tokens else None, text, limits)
        elif tok.text == "(":
            opened.append(tok.start)
            if len(opened) > limits.max_depth:
                raise BudgetError(
                    f"parentheses nest deeper than the limit of {limits.max_depth} levels",
                    text,
                    tok.start,
                )
        elif tok.text == ")":
            if not opened:
                raise ExpressionError("unmatched ')'", text, tok.start)
            opened.pop()
            if tokens and tokens[-1].text == ",":
                raise ExpressionError("an argument is missing after ','", text, tok.start)
        tokens.append(tok)
        if len(tokens) > limits.max_nodes:
            raise BudgetError(f"expression has more than {limits.max_nodes:,} tokens (the limit)", text, tok.start)
    if opened:
        raise ExpressionError("'(' is never closed", text, opened[-1])
    if not tokens:
        raise ExpressionError("empty expression")
    last = tokens[-1]
    if last.kind == "op" and last.text != ")":
        raise ExpressionError(f"expression ends unexpectedly after {last.source!r}", text, len(text.rstrip()))
    return tokens


def _unexpected(text: str, pos: int) -> str:
    """Why the character at ``pos`` is refused; a non-ASCII one is named, with its position."""
    char = text[pos]
    if char.isascii():
        hints = {
            ".": "attribute access is not allowed",
            "[": "subscripts are not allowed",
            "=": "comparisons and assignments are not allowed",
            "<": "comparisons are not allowed",
            ">": "comparisons are not allowed",
            "'": "strings are not allowed",
            '"': "strings are not allowed",
            "%": "use / for division",
            "_": "'_' in a number goes between digits, as in 1_000",
        }
        shown = repr(char) if char.isprintable() else f"{ord(char):#04x}"
        hint = hints.get(char)
        return f"unexpected character {shown}" + (f" ({hint})" if hint else "")
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}" + (f" {name}" if name else "")
    where = f"at position {pos + 1}"
    category = unicodedata.category(char)
    if category in ("Cf", "Cc", "Co", "Cn", "Cs", "Mn", "Me", "Zl", "Zp") or not char.isprintable():
        return f"invisible character {code} {where}: it can make the text mean something other than it shows; delete it"
    plain = unicodedata.normalize("NFKC", char)
    if char in CONFUSABLES:
        hint = f"it looks like the Latin letter {CONFUSABLES[char]!r}; names are ASCII letters only"
    elif category == "Nd":
        hint = f"write the digit {unicodedata.digit(char)}"
    elif plain.isascii() and plain.isprintable() and plain.strip():
        hint = f"write {plain!r}"
    elif category == "Pd" or name.endswith(("DASH", "HYPHEN")):
        hint = "write - for minus"
    elif category.startswith("L") and name.startswith("GREEK"):
        hint = f"names are ASCII letters only: write {name.split()[-1].lower()}"
    elif category.startswith("L"):
        hint = "names are ASCII letters only"
    elif char == "\u221b":  # cube root
        hint = "write cbrt(x)"
    elif char == "\u221c":  # fourth root
        hint = "write x^(1/4)"
    else:
        hint = "see the README for the characters expressions may use"
    return f"unexpected character {char!r} ({code}) {where}: {hint}"


def _refuse_radix(tok: Token, text: str) -> None:
    kind = {"x": "a hexadecimal", "b": "a binary", "o": "an octal"}[tok.source[1].lower()]
    try:
        decimal = f"write {int(tok.source, 0)}"
    except ValueError:
        decimal = "write the number in decimal"
    raise ExpressionError(
        f"{tok.source} is {kind} number, which expressions do not read: {decimal} "
        f"(or 0*{tok.source[1:]} for a product)",
        text,
        tok.start,
        tok.end,
    )


def _superscript(tok: Token, prev: Token | None, text: str, limits: Limits) -> Token:
    """``x²`` is ``x**2``, ``x⁻¹`` is ``x**-1``: the token becomes the exponent's text."""
    exponent = "".join(SUPERSCRIPTS[c] for c in tok.source)
    if prev is not None and prev.kind == "power":
        raise ExpressionError(
            "a second superscript exponent right after the first is not read: write x^(...)",
            text,
            prev.start,
            tok.end,
        )
    if prev is not None and prev.kind == "name" and prev.text in CALLABLE:
        raise ExpressionError(
            f"a power of a function name is not read: write {prev.text}(...)^{exponent} for a power of the "
            f"value"
            + (
                f", or {ALIASES.get('arc' + prev.text, 'a' + prev.text)}(...) for the inverse"
                if exponent == "-1"
                else ""
            ),
            text,
            prev.start,
            tok.end,
        )
    _check_literal(Token("number", exponent.lstrip("+-"), tok.start, tok.source), text, limits)
    return Token("power", exponent, tok.start, tok.source)


def _check_literal(tok: Token, text: str, limits: Limits) -> None:
    after = text[tok.end : tok.end + 1]
    if after == "_":
        whole = re.compile(r"[0-9A-Za-z_.]*").match(text, tok.start)
        stop = whole.end() if whole else tok.end + 1
        raise ExpressionError(
            f"misplaced '_' in the number {text[tok.start : stop]}: '_' goes between digits, as in 1_000",
            text,
            tok.start,
            stop,
        )
    if after in ("j", "J") and not text[tok.end + 1 : tok.end + 2].isidentifier():
        raise ExpressionError(
            f"{tok.source}{after} is a complex number; expressions are real "
            f"(for a product with a variable {after} write {tok.source}*{after})",
            text,
            tok.start,
            tok.end + 1,
        )
    if len(tok.source) > limits.max_literal_length:
        raise BudgetError(
            f"number is {len(tok.source):,} characters long; the limit is {limits.max_literal_length}",
            text,
            tok.start,
            tok.end,
        )
    mantissa, _, exponent = tok.source.replace("_", "").lower().partition("e")
    digits = mantissa.replace(".", "").lstrip("0")
    if len(digits) > limits.max_digits:
        raise BudgetError(
            f"number has {len(digits)} digits; the limit is {limits.max_digits}", text, tok.start, tok.end
        )
    if exponent and abs(int(exponent)) > limits.max_literal_exponent:
        raise BudgetError(
            f"number exponent {exponent} is outside +-{limits.max_literal_exponent}", text, tok.start, tok.end
        )


def _check_name(tok: Token, text: str) -> None:
    if tok.text.startswith("_"):
        raise ExpressionError(f"name {tok.text!r} is not allowed: names start with a letter", text, tok.start, tok.end)
    if keyword.iskeyword(tok.text):
        raise ExpressionError(f"{tok.text!r} is a reserved word, not a name", text, tok.start, tok.end)


@dataclass(frozen=True)
class Piece:
    """One token of the normalized text: where it is there, and where it came from."""

    at: int  # offset in the normalized text
    start: int  # offset in the user's text
    size: int  # length in the user's text (0 for an inserted '*')
    number: str | None = None  # a number literal's text, underscores removed


def normalize(tokens: list[Token]) -> tuple[str, list[Piece]]:
    """ASCII Python-syntax text: ``^`` as ``**``, explicit ``*``, unicode forms translated.

    Returns the text and, for each normalized token, a Piece mapping it back to the user's
    text, so that error positions point at what the user typed. A number's value is read
    from its Piece (the user's digits), never by Python.
    """
    parts: list[str] = []
    where: list[Piece] = []
    length = 0

    def emit(piece: str, origin: int, size: int, number: str | None = None) -> None:
        nonlocal length
        where.append(Piece(length, origin, size, number))
        parts.append(piece)
        length += len(piece) + 1
        parts.append(" ")

    before: Token | None = None
    prev: Token | None = None
    for tok in tokens:
        if prev is not None and _implicit_product(before, prev, tok):
            emit("*", tok.start, 0)
        size = len(tok.source)
        if tok.kind == "number":
            emit(tok.text, tok.start, size, tok.text)
        elif tok.kind == "power":
            emit("**", tok.start, size)
            if tok.text[0] in "+-":
                emit(tok.text[0], tok.start, size)
            emit(tok.text.lstrip("+-"), tok.start, size, tok.text.lstrip("+-"))
        else:
            emit("**" if tok.text == "^" else tok.text, tok.start, size)
        before, prev = prev, tok
    source = "".join(parts)
    assert source.isascii()  # ast offsets are then character offsets
    return source, where


def _implicit_product(before: Token | None, prev: Token, tok: Token) -> bool:
    ends_operand = prev.kind in ("number", "name", "power") or prev.text == ")"
    starts_operand = tok.kind in ("number", "name") or tok.text in ("(", "~")
    if not (ends_operand and starts_operand):
        return False
    if prev.kind == "name" and tok.text == "(":
        # a call: sin(x), and f(x) for an unknown f is reported as such; but in 2x(x+1)
        # the name is already a factor of an implicit product
        return before is not None and before.kind == "number" and prev.text not in CALLABLE
    if prev.kind == "number" and tok.kind == "number":
        return False  # "2 3" stays a syntax error rather than a silent 6
    return True


def _origin(where: list[Piece], col: int) -> tuple[int, int]:
    """Map an offset in the normalized text to (start, end) of its token in the user's text."""
    best = (where[0].start, where[0].start + where[0].size) if where else (0, 1)
    for piece in where:
        if piece.at > col:
            break
        best = (piece.start, piece.start + piece.size)
    return best


def parse(text: str, limits: Limits = LIMITS) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression over real symbols, or raise ExpressionError."""
    if "\x00" in text:
        raise ExpressionError("unexpected NUL byte", text, text.index("\x00"))
    tokens = tokenize(text, limits)
    source, where = normalize(tokens)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        col = (err.offset or 1) - 1
        if col >= len(source.rstrip()):
            raise ExpressionError("expression ends unexpectedly", text, len(text.rstrip())) from None
        raise ExpressionError("syntax error", text, *_origin(where, col)) from None
    except (RecursionError, MemoryError):
        raise BudgetError(f"expression nests too deeply for the parser (limit {limits.max_depth})") from None
    nodes = sum(1 for n in ast.walk(tree) if isinstance(n, ast.expr))
    if nodes > limits.max_nodes:
        raise BudgetError(f"expression has {nodes:,} syntax nodes; the limit is {limits.max_nodes:,}")
    with time_limit(limits.time_s, "parsing"):
        try:
            expr = _Builder(text, where, limits).build(tree.body, 0)
        except (OverflowError, RecursionError, MemoryError) as err:
            # SymPy evaluating a huge constant exactly (floor(exp(10**300)), say)
            raise BudgetError(
                f"a constant in the expression is too large to evaluate exactly ({type(err).__name__})",
                text,
                0,
                len(text),
            ) from None
        canonical(expr)  # printing sorts terms by numeric value: it too must end within the budget
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError(f"expression is undefined: it simplifies to {canonical(expr)}", text, 0, len(text))
    if expr.has(sympy.I):
        raise ExpressionError(f"expression is complex: it simplifies to {canonical(expr)}", text, 0, len(text))
    return expr


class _Builder:
    """Allow-list conversion of a Python ``ast`` tree to SymPy."""

    def __init__(self, text: str, where: list[Piece], limits: Limits) -> None:
        self.text = text
        self.where = where
        self.numbers = {p.at: p.number for p in where if p.number is not None}
        self.limits = limits
        self.symbols: dict[str, sympy.Symbol] = {}

    def fail(self, message: str, node: ast.AST, cls: type[ExpressionError] = ExpressionError) -> ExpressionError:
        col = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", col + 1) or col + 1
        start = _origin(self.where, col)[0]
        stop = _origin(self.where, max(col, end - 1))[1]
        return cls(message, self.text, start, max(start + 1, stop))

    def build(self, node: ast.expr, depth: int) -> sympy.Expr:
        if depth > self.limits.max_depth:
            raise self.fail(
                f"expression nests deeper than the limit of {self.limits.max_depth} levels", node, BudgetError
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return sympy.Add(
                *(sign * self.build(term, depth + 1) for sign, term in self._chain(node, ast.Add, ast.Sub))
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            chain = self._chain(node, ast.Mult, ast.Div)
            # -a*b parses as (-a)*b; build it as -(a*b), the way SymPy prints it, so that
            # canonical text reads back to the same expression
            negate = False
            head = chain[0][1]
            while isinstance(head, ast.UnaryOp) and isinstance(head.op, (ast.USub, ast.UAdd)):
                negate ^= isinstance(head.op, ast.USub)
                head = head.operand
            chain[0] = (1, head)
            factors = [self.build(f, depth + 1) if sign > 0 else self._inverse(f, depth) for sign, f in chain]
            self._check_constant_size(factors, node)
            product = sympy.Mul(*factors)
            return -product if negate else product
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self._power(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            # only ever from √ (a typed ~ is refused by the token pass): √x, √(x+1), √x² = √(x²)
            return self._apply("sqrt", FUNCTIONS["sqrt"], [self.build(node.operand, depth + 1)], node)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return self._number(node)
        if isinstance(node, ast.Tuple) and node.elts:
            raise self.fail(
                "a comma separates the arguments of a function, as in max(x, y); it cannot stand alone", node
            )
        raise self.fail(f"{type(node).__name__} is not allowed in an expression", node)

    def _chain(self, node: ast.expr, plus: type, minus: type) -> list[tuple[int, ast.expr]]:
        """Flatten a left-nested chain a+b-c+... without recursion (long sums stay cheap)."""
        out: list[tuple[int, ast.expr]] = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, (plus, minus)):
            out.append((-1 if isinstance(node.op, minus) else 1, node.right))
            node = node.left
        out.append((1, node))
        out.reverse()
        return out

    def _check_constant_size(self, factors: list[sympy.Expr], node: ast.expr) -> None:
        digits = sum(max(_log10(f.p), _log10(f.q)) for f in factors if f.is_Rational)
        if digits > self.limits.max_constant_digits:
            raise self.fail(
                f"constant product has about {digits:,.0f} digits; the limit is {self.limits.max_constant_digits:,}",
                node,
                BudgetError,
            )

    def _inverse(self, node: ast.expr, depth: int) -> sympy.Expr:
        value = self.build(node, depth + 1)
        if value == 0:
            raise self.fail("division by zero", node)
        return sympy.Pow(value, -1)

    def _power(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        base = self.build(node.left, depth + 1)
        exponent = self.build(node.right, depth + 1)
        if exponent.is_number:
            size = abs(exponent)
            if size.is_finite is not True or (size > self.limits.max_exponent) is sympy.true:
                raise self.fail(
                    f"constant exponent {_short(exponent)} is above the limit of {self.limits.max_exponent}",
                    node.right,
                    BudgetError,
                )
            if base.is_Rational and exponent.is_Rational:
                digits = float(abs(exponent)) * max(_log10(base.p), _log10(base.q))
                if digits > self.limits.max_constant_digits:
                    raise self.fail(
                        f"constant power has about {digits:,.0f} digits; the limit is "
                        f"{self.limits.max_constant_digits:,}",
                        node,
                        BudgetError,
                    )
            if base == 0 and (exponent < 0) is sympy.true:
                raise self.fail("division by zero", node)
        return sympy.Pow(base, exponent)

    def _call(self, node: ast.Call, depth: int) -> sympy.Expr:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail("only the listed functions can be called", func)
        name = ALIASES.get(func.id, func.id)
        if name not in FUNCTIONS:
            # with some 60 names, a looser match suggests floor for foo
            hint = did_you_mean(func.id, sorted(CALLABLE), cutoff=0.8) or (
                f" (for a product write {func.id}*(...))" if len(func.id) == 1 else ""
            )
            raise self.fail(f"unknown function {func.id!r}{hint}", func)
        spec = FUNCTIONS[name]
        if node.keywords:
            raise self.fail(f"{func.id} takes no keyword arguments", node)
        given = len(node.args)
        if given < spec.fewest or (spec.most is not None and given > spec.most):
            raise self.fail(f"{func.id} takes {spec.arity()}, got {given}", node)
        return self._apply(name, spec, [self.build(a, depth + 1) for a in node.args], node)

    def _apply(self, name: str, spec: Function, args: list[sympy.Expr], node: ast.expr) -> sympy.Expr:
        if name in _EXPANDS_EXACTLY:
            self._check_exact_expansion(name, args[0], node)
        result = spec.build(*args)
        if result.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            shown = canonical(sympy.Function(name)(*args))
            raise self.fail(f"{shown} is undefined: it simplifies to {canonical(result)}", node)
        digits = max((max(_log10(r.p), _log10(r.q)) for r in result.atoms(sympy.Rational)), default=0.0)
        if digits > self.limits.max_constant_digits:
            raise self.fail(
                f"constant {name}(...) has about {digits:,.0f} digits; the limit is "
                f"{self.limits.max_constant_digits:,}",
                node,
                BudgetError,
            )
        return result

    def _check_exact_expansion(self, name: str, arg: sympy.Expr, node: ast.expr) -> None:
        """gamma(n) is (n-1)! exactly, digamma(n) a harmonic number: refuse the huge ones up front."""
        if not arg.is_Rational:
            return
        n = abs(float(arg))
        if name == "digamma":  # digamma(p/q) = a sum of about |p/q| exact terms
            digits = n * math.log10(math.e)
        elif (2 * arg).is_Integer:  # gamma(n), gamma(n + 1/2): factorials, for negative n too
            digits = math.lgamma(n + 1) / math.log(10)
        else:
            return
        if digits > self.limits.max_constant_digits:
            raise self.fail(
                f"{name}({_short(arg)}) would be an exact constant of about {digits:,.3g} digits; "
                f"the limit is {self.limits.max_constant_digits:,}",
                node,
                BudgetError,
            )

    def _name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in CALLABLE:
            raise self.fail(f"{name} is a function: write {name}(...)", node)
        if name not in self.symbols:
            self.symbols[name] = sympy.Symbol(name, real=True)
        return self.symbols[name]

    def _number(self, node: ast.Constant) -> sympy.Expr:
        # Exact rationals from the literal's own text: 0.1 is 1/10, and SymPy never runs
        # mpmath on a user's float (exp(exp(exp(100.0))) would not terminate).
        literal = self.numbers.get(node.col_offset)
        if literal is None:
            raise self.fail("number literal not understood", node)
        return sympy.Rational(literal)


def _log10(n: int) -> float:
    n = abs(int(n))
    return 0.0 if n <= 1 else math.log10(n)  # exact to rounding for ints of any size (not via float(n))


def _short(value: sympy.Expr) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Printer(StrPrinter):
    """SymPy's text, in this parser's vocabulary (``abs``, not ``Abs``)."""

    def _print_Abs(self, expr: sympy.Abs) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        """A fraction coefficient stays apart from a denominator: SymPy writes 1/(2*(x + 1)),
        which reads back as 1/(2*x + 2) (SymPy distributes 2 over the sum); (1/2)/(x + 1)
        reads back as the same tree."""
        coeff, rest = expr.as_coeff_Mul()
        numer, denom = rest.as_numer_denom()
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


RETRY_S = 0.05  # after the limit, how often the alarm fires again until it can raise


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise BudgetError if the block runs longer than ``seconds`` of wall clock.

    Uses SIGALRM, so it only guards the main thread of a POSIX process; elsewhere the other
    budgets (length, nodes, depth, number sizes) still bound the work. Python swallows (and
    prints) an exception raised inside a finalizer, so an alarm that lands in a ``__del__``
    (the garbage collector runs them at any allocation) does not raise there: the timer
    repeats every RETRY_S and raises at the first alarm outside one (or outside a gc callback).
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if not _in_finalizer(frame):
            raise BudgetError(f"{what} took longer than the limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, RETRY_S)
    try:
        yield
    except (OverflowError, RecursionError) as err:
        # SymPy or mpmath evaluating a huge constant exactly: floor(exp(10**300)), or an
        # assumption query on exp(exp(exp(100))) during differentiation
        why = "nests too deeply" if isinstance(err, RecursionError) else "has a constant too large to evaluate exactly"
        raise BudgetError(f"{what}: the expression {why} ({type(err).__name__})") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_finalizer(frame: FrameType | None) -> bool:
    """Is a ``__del__`` or a garbage-collector callback (``gc.callbacks``) running? Python
    swallows what either raises."""
    import gc

    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in callbacks:
            return True
        frame = frame.f_back
    return False
