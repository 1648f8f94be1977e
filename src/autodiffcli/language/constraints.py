"""``--subject-to`` text -> constraints: a comparison split at its operator, each side parsed.

An equation ``lhs = rhs`` (also ``==``) or an inequality ``lhs <= rhs``, ``lhs >= rhs``
(also ``≤``, ``≥`` as pasted); ``lo <= expr <= hi`` is two inequalities. Each side goes
through :func:`parse.parse`, so constraints have the allow-list and the budgets of
expressions; an error inside a side keeps its caret, moved to where the side sits in the
whole constraint.

A strict ``<`` or ``>`` is refused rather than read as ``<=``: a minimum over an open set
need not exist (x over x > 0 has none), and a method that works to a tolerance cannot tell
``x < 1`` from ``x <= 1``, so reading one as the other would report a point the user
excluded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from ..errors import BudgetError, ExpressionError
from .parse import LIMITS, canonical, parse

EQ, LE, GE = "=", "<=", ">="
OPTION = "--subject-to"

# every run of comparison characters; the ones that are not a comparison are refused by name
_OPERATOR = re.compile(r"[<>=!\u2264\u2265\u2a7d\u2a7e]+")
_READ = {
    "=": EQ,
    "==": EQ,
    "<=": LE,
    ">=": GE,
    "\u2264": LE,  # ≤ LESS-THAN OR EQUAL TO
    "\u2265": GE,  # ≥ GREATER-THAN OR EQUAL TO
    "\u2a7d": LE,  # ⩽ LESS-THAN OR SLANTED EQUAL TO
    "\u2a7e": GE,  # ⩾ GREATER-THAN OR SLANTED EQUAL TO
}
_HINTS = {
    "<": "a strict '<' is not read: a minimum over an open set need not exist, and a method that works to "
    "a tolerance cannot keep x < 1 apart from x <= 1; write '<='",
    ">": "a strict '>' is not read: a minimum over an open set need not exist, and a method that works to "
    "a tolerance cannot keep x > 1 apart from x >= 1; write '>='",
    "=<": "write '<=' for 'less than or equal to'",
    "=>": "write '>=' for 'greater than or equal to'",
    "!=": "'!=' is not read: a method that works to a tolerance cannot keep a point off a single surface; "
    "use =, <= or >=",
}


@dataclass(frozen=True)
class Constraint:
    """``lhs SENSE rhs``. ``residual`` is lhs - rhs: 0 on an equation's surface, >= 0 or <= 0 where
    an inequality holds."""

    text: str  # as the user wrote this comparison
    lhs: sympy.Expr
    rhs: sympy.Expr
    sense: str  # EQ, LE or GE

    @property
    def residual(self) -> sympy.Expr:
        return self.lhs - self.rhs

    @property
    def equality(self) -> bool:
        return self.sense == EQ

    @property
    def canonical(self) -> str:
        return f"{canonical(self.lhs)} {self.sense} {canonical(self.rhs)}"

    def __str__(self) -> str:
        return self.text


def parse_constraint(text: str) -> list[Constraint]:
    """One ``--subject-to`` value -> its constraints (two for ``lo <= expr <= hi``)."""
    if len(text) > LIMITS.max_length:
        raise BudgetError(f"{OPTION}: constraint is {len(text):,} characters long; the limit is {LIMITS.max_length:,}")
    ops = list(_OPERATOR.finditer(text))
    if not ops:
        raise ExpressionError(
            f"{OPTION}: {text.strip()!r} is not a comparison; write an equation (lhs = rhs) or an "
            "inequality (lhs <= rhs, lhs >= rhs)",
            text,
            *_span(text),
        )
    for m in ops:
        if m.group() not in _READ:
            hint = _HINTS.get(m.group(), f"{m.group()!r} is not a comparison; use =, <= or >=")
            raise ExpressionError(f"{OPTION}: {hint}", text, m.start(), m.end())
    senses = [_READ[m.group()] for m in ops]
    if len(ops) > 2 or (len(ops) == 2 and (senses[0] != senses[1] or senses[0] == EQ)):
        raise ExpressionError(
            f"{OPTION}: one comparison per constraint, or a range lo <= expr <= hi; "
            "give each other one its own --subject-to",
            text,
            ops[1].start(),
            ops[1].end(),
        )
    cuts = [0, *(p for m in ops for p in (m.start(), m.end())), len(text)]
    sides = [(cuts[2 * i], cuts[2 * i + 1]) for i in range(len(ops) + 1)]
    parsed = [_side(text, a, b, ops, i) for i, (a, b) in enumerate(sides)]
    out = []
    for i, sense in enumerate(senses):
        (a, _), (_, b) = sides[i], sides[i + 1]
        shown = text[a:b].strip() if len(ops) > 1 else text.strip()
        out.append(Constraint(shown, parsed[i], parsed[i + 1], sense))
    if not any(c.residual.free_symbols for c in out):
        raise ExpressionError(f"{OPTION}: {text.strip()!r} has no variables: it constrains nothing", text, *_span(text))
    return out


def _side(text: str, start: int, end: int, ops: list[re.Match[str]], index: int) -> sympy.Expr:
    """Parse ``text[start:end]``; an error's caret is moved to the whole constraint."""
    part = text[start:end]
    if not part.strip():
        where = "left of" if index == 0 else "right of"
        op = ops[0] if index == 0 else ops[index - 1]
        raise ExpressionError(f"{OPTION}: nothing on the {where} {op.group()!r}", text, op.start(), op.end())
    try:
        return parse(part)
    except ExpressionError as err:
        cls = type(err)
        if err.start is None:
            raise cls(f"{OPTION}: {err.message}", text, *_span(text)) from None
        raise cls(f"{OPTION}: {err.message}", text, start + err.start, start + (err.end or err.start + 1)) from None


def _span(text: str) -> tuple[int, int]:
    """The text without its surrounding blanks, as (start, end)."""
    stripped = text.strip()
    start = text.index(stripped[0]) if stripped else 0
    return start, start + max(1, len(stripped))


def names_of(constraint: Constraint) -> list[str]:
    return sorted(s.name for s in constraint.residual.free_symbols)


def position_of(text: str, name: str) -> tuple[int, int]:
    """Where ``name`` first appears in ``text`` as a whole word (for a caret), else the whole text."""
    m = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)
    return (m.start(), m.end()) if m else _span(text)
