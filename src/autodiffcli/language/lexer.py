"""The token pass: every character checked, budgets applied, pasted Unicode translated.

Written here because Python's own tokenizer accepts far more than we allow and changes
between versions. It rewrites ``^`` to ``**``, translates the Unicode forms people paste
(``×``, ``x²``, ``√``, ``π``) to ASCII, names any other non-ASCII character with its
position, and makes implicit multiplication explicit; ``normalize`` keeps where each piece
came from, so an error can put its caret under the user's own text.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass

from ..errors import BudgetError, ExpressionError
from .budgets import LIMITS, Limits
from .vocabulary import ALIASES, CALLABLE

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
        strict=True,
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


def origin(where: list[Piece], col: int) -> tuple[int, int]:
    """Map an offset in the normalized text to (start, end) of its token in the user's text."""
    best = (where[0].start, where[0].start + where[0].size) if where else (0, 1)
    for piece in where:
        if piece.at > col:
            break
        best = (piece.start, piece.start + piece.size)
    return best
