"""Text -> SymPy expression, safely.

User text never reaches ``sympify``, ``parse_expr``, ``eval`` or ``lambdify``: those run
Python code. Instead a token pass (written here because Python's own tokenizer accepts far
more than we allow and changes between versions) checks every character, applies the
budgets, rewrites ``^`` to ``**`` and makes implicit multiplication explicit. Python's
``ast`` module then parses the result, and an allow-list turns the tree into SymPy objects.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import sympy
from sympy.printing.str import StrPrinter

from .errors import BudgetError, ExpressionError


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

FUNCTIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
}
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
ALIASES = {"ln": "log", "arcsin": "asin", "arccos": "acos", "arctan": "atan", "Abs": "abs", "fabs": "abs"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^()])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op"
    text: str
    start: int  # offset in the user's text


def tokenize(text: str, limits: Limits = LIMITS) -> list[Token]:
    """Split ``text`` into tokens, refusing any character outside the grammar."""
    if len(text) > limits.max_length:
        raise BudgetError(f"expression is {len(text):,} characters long; the limit is {limits.max_length:,}")
    tokens: list[Token] = []
    depth = 0
    opened: list[int] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(_unexpected(text[pos]), text, pos)
        kind = m.lastgroup or ""
        tok = Token(kind, m.group(), pos)
        pos = m.end()
        if kind == "space":
            continue
        if kind == "number":
            _check_literal(tok, text, limits)
        elif kind == "name":
            _check_name(tok, text)
        elif tok.text == "(":
            opened.append(tok.start)
            depth = len(opened)
            if depth > limits.max_depth:
                raise BudgetError(
                    f"parentheses nest deeper than the limit of {limits.max_depth} levels",
                    text,
                    tok.start,
                )
        elif tok.text == ")":
            if not opened:
                raise ExpressionError("unmatched ')'", text, tok.start)
            opened.pop()
        tokens.append(tok)
        if len(tokens) > limits.max_nodes:
            raise BudgetError(f"expression has more than {limits.max_nodes:,} tokens (the limit)", text, tok.start)
    if opened:
        raise ExpressionError("'(' is never closed", text, opened[-1])
    if not tokens:
        raise ExpressionError("empty expression")
    if tokens[-1].kind == "op" and tokens[-1].text != ")":
        raise ExpressionError(f"expression ends unexpectedly after {tokens[-1].text!r}", text, len(text.rstrip()))
    return tokens


def _unexpected(char: str) -> str:
    hints = {
        ",": "functions take one argument",
        ".": "attribute access is not allowed",
        "[": "subscripts are not allowed",
        "=": "comparisons and assignments are not allowed",
        "<": "comparisons are not allowed",
        ">": "comparisons are not allowed",
        "'": "strings are not allowed",
        '"': "strings are not allowed",
        "%": "use / for division",
    }
    shown = repr(char) if char.isprintable() else f"{ord(char):#04x}"
    hint = hints.get(char)
    return f"unexpected character {shown}" + (f" ({hint})" if hint else "")


def _check_literal(tok: Token, text: str, limits: Limits) -> None:
    if len(tok.text) > limits.max_literal_length:
        raise BudgetError(
            f"number is {len(tok.text):,} characters long; the limit is {limits.max_literal_length}",
            text,
            tok.start,
            tok.start + len(tok.text),
        )
    mantissa, _, exponent = tok.text.lower().partition("e")
    digits = mantissa.replace(".", "").lstrip("0")
    if len(digits) > limits.max_digits:
        raise BudgetError(
            f"number has {len(digits)} digits; the limit is {limits.max_digits}",
            text,
            tok.start,
            tok.start + len(tok.text),
        )
    if exponent and abs(int(exponent)) > limits.max_literal_exponent:
        raise BudgetError(
            f"number exponent {exponent} is outside +-{limits.max_literal_exponent}",
            text,
            tok.start,
            tok.start + len(tok.text),
        )


def _check_name(tok: Token, text: str) -> None:
    end = tok.start + len(tok.text)
    if tok.text.startswith("_"):
        raise ExpressionError(f"name {tok.text!r} is not allowed: names start with a letter", text, tok.start, end)
    if keyword.iskeyword(tok.text):
        raise ExpressionError(f"{tok.text!r} is a reserved word, not a name", text, tok.start, end)


def normalize(tokens: list[Token]) -> tuple[str, list[tuple[int, int, int]]]:
    """Python-syntax text with ``^`` as ``**`` and explicit ``*``.

    Returns the text and, for each normalized token, (offset in normalized text, offset and
    length in the user's text), so that error positions can be mapped back for the caret.
    """
    parts: list[str] = []
    where: list[tuple[int, int, int]] = []
    length = 0
    prev: Token | None = None

    def emit(piece: str, origin: int, size: int) -> None:
        nonlocal length
        where.append((length, origin, size))
        parts.append(piece)
        length += len(piece) + 1
        parts.append(" ")

    before: Token | None = None
    for tok in tokens:
        if prev is not None and _implicit_product(before, prev, tok):
            emit("*", tok.start, 0)
        emit("**" if tok.text == "^" else tok.text, tok.start, len(tok.text))
        before, prev = prev, tok
    return "".join(parts), where


def _implicit_product(before: Token | None, prev: Token, tok: Token) -> bool:
    ends_operand = prev.kind in ("number", "name") or prev.text == ")"
    starts_operand = tok.kind in ("number", "name") or tok.text == "("
    if not (ends_operand and starts_operand):
        return False
    if prev.kind == "name" and tok.text == "(":
        # a call: sin(x), and f(x) for an unknown f is reported as such; but in 2x(x+1)
        # the name is already a factor of an implicit product
        return before is not None and before.kind == "number" and prev.text not in FUNCTIONS
    if prev.kind == "number" and tok.kind == "number":
        return False  # "2 3" stays a syntax error rather than a silent 6
    return True


def _origin(where: list[tuple[int, int, int]], col: int) -> tuple[int, int]:
    """Map an offset in the normalized text to (start, end) of its token in the user's text."""
    best = (where[0][1], where[0][1] + where[0][2]) if where else (0, 1)
    for norm, orig, size in where:
        if norm > col:
            break
        best = (orig, orig + size)
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
        expr = _Builder(text, where, limits).build(tree.body, 0)
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError(f"expression is undefined: it simplifies to {canonical(expr)}", text, 0, len(text))
    if expr.has(sympy.I):
        raise ExpressionError(f"expression is complex: it simplifies to {canonical(expr)}", text, 0, len(text))
    return expr


class _Builder:
    """Allow-list conversion of a Python ``ast`` tree to SymPy."""

    def __init__(self, text: str, where: list[tuple[int, int, int]], limits: Limits) -> None:
        self.text = text
        self.where = where
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
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return self._number(node)
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
        name = func.id
        if name not in FUNCTIONS:
            hint = did_you_mean(name, FUNCTIONS) or (f" (for a product write {name}*(...))" if len(name) == 1 else "")
            raise self.fail(f"unknown function {name!r}{hint}", func)
        if node.keywords or len(node.args) != 1:
            raise self.fail(f"{name}() takes exactly one argument", node)
        return FUNCTIONS[name](self.build(node.args[0], depth + 1))

    def _name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise self.fail(f"{name} is a function: write {name}(...)", node)
        if name not in self.symbols:
            self.symbols[name] = sympy.Symbol(name, real=True)
        return self.symbols[name]

    def _number(self, node: ast.Constant) -> sympy.Expr:
        # Exact rationals from the literal's own text: 0.1 is 1/10, and SymPy never runs
        # mpmath on a user's float (exp(exp(exp(100.0))) would not terminate).
        origin = {norm: orig for norm, orig, _ in self.where}.get(node.col_offset)
        m = _TOKEN.match(self.text, origin) if origin is not None else None
        if m is None or m.lastgroup != "number":
            raise self.fail("number literal not understood", node)
        return sympy.Rational(m.group())


def _log10(n: int) -> float:
    n = abs(int(n))
    return 0.0 if n <= 1 else math.log10(n)  # exact to rounding for ints of any size (not via float(n))


def _short(value: sympy.Expr) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def did_you_mean(name: str, known: dict[str, object] | list[str]) -> str:
    """`` (did you mean 'sin'?)`` or an empty string."""
    if name in ALIASES:
        return f" (did you mean {ALIASES[name]!r}?)"
    close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Printer(StrPrinter):
    """SymPy's text, in this parser's vocabulary (``abs``, not ``Abs``)."""

    def _print_Abs(self, expr: sympy.Abs) -> str:
        return f"abs({self._print(expr.args[0])})"


def canonical(expr: sympy.Expr) -> str:
    """The expression as text this parser reads back to the same expression."""
    return _Printer({"order": "lex"}).doprint(expr)


def variables(expr: sympy.Expr) -> list[str]:
    """Names of the free symbols, alphabetically."""
    return sorted(s.name for s in expr.free_symbols)


RETRY_S = 0.05  # after the limit, how often the alarm fires again until it can raise


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise BudgetError if the block runs longer than ``seconds`` of wall clock.

    Uses SIGALRM, so it only guards the main thread of a POSIX process; elsewhere the other
    budgets (length, nodes, depth, number sizes) still bound the work. Python swallows (and
    prints) an exception raised inside a finalizer, so an alarm that lands in a ``__del__``
    (the garbage collector runs them at any allocation) does not raise there: the timer
    repeats every RETRY_S and raises at the first alarm outside one.
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
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_finalizer(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False
