"""Text -> SymPy expression, safely: the token pass (lexer.py), then an allow-list over Python's ``ast``.

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
import math

import sympy

from ..errors import BudgetError, ExpressionError, did_you_mean
from .budgets import LIMITS, Limits, time_limit
from .lexer import Piece, normalize, origin, tokenize
from .printing import canonical
from .vocabulary import ALIASES, CALLABLE, CONSTANTS, EXPANDS_EXACTLY, FUNCTIONS, Function


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
        raise ExpressionError("syntax error", text, *origin(where, col)) from None
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
        start = origin(self.where, col)[0]
        stop = origin(self.where, max(col, end - 1))[1]
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
        result = sympy.Pow(base, exponent)
        if result.is_number and result.is_extended_real is False:  # (-8)**(1/3): SymPy's principal root
            hint = f"; the real cube root is cbrt({canonical(base)})" if exponent == sympy.Rational(1, 3) else ""
            raise self.fail(
                f"{canonical(sympy.Pow(base, exponent, evaluate=False))} is complex, not a real number{hint}", node
            )
        return result

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
        if name in EXPANDS_EXACTLY:
            self._check_exact_expansion(name, args[0], node)
        try:
            result = spec.build(*args)
        except (ValueError, TypeError) as err:  # SymPy refusing its arguments, as max of a complex one
            raise self.fail(f"{name}(...) cannot take these arguments: {err}", node) from None
        if result.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            shown = canonical(sympy.Function(name)(*args))
            raise self.fail(f"{shown} is undefined: it simplifies to {canonical(result)}", node)
        if result.is_number and result.is_extended_real is False:  # acos(2), sqrt(-2): not on the real line
            shown = canonical(sympy.Function(name)(*args))
            value = canonical(result)
            raise self.fail(f"{shown} is complex, not a real number" + ("" if value == shown else f": {value}"), node)
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


def parse_equation(text: str, limits: Limits = LIMITS) -> tuple[sympy.Expr | None, sympy.Expr]:
    """``lhs = rhs`` -> (lhs, rhs); without ``=``, (None, rhs). Square brackets group, as
    parentheses do (``exp[-b2*x]``, as papers and NIST's files write models)."""
    if len(text) > limits.max_length:
        raise BudgetError(f"expression is {len(text):,} characters long; the limit is {limits.max_length:,}")
    opened: list[tuple[str, int]] = []
    for at, char in enumerate(text):
        if char in "([":
            opened.append((char, at))
        elif char in ")]":
            want = "(" if char == ")" else "["
            if not opened:
                raise ExpressionError(f"unmatched {char!r}", text, at)
            if opened[-1][0] != want:
                raise ExpressionError(f"{char!r} closes {opened[-1][0]!r}", text, opened[-1][1], at + 1)
            opened.pop()
    if opened:
        raise ExpressionError(f"{opened[-1][0]!r} is never closed", text, opened[-1][1])
    plain = text.replace("[", "(").replace("]", ")")
    equals = [at for at, char in enumerate(plain) if char == "="]
    if len(equals) > 1:
        raise ExpressionError("a model has one '=' (response = expression)", text, equals[1])
    if not equals:
        return None, _parse_part(plain, text, 0, limits)
    cut = equals[0]
    if not plain[:cut].strip():
        raise ExpressionError("nothing on the left of '='", text, cut)
    if not plain[cut + 1 :].strip():
        raise ExpressionError("nothing on the right of '='", text, cut)
    return _parse_part(plain[:cut], text, 0, limits), _parse_part(plain[cut + 1 :], text, cut + 1, limits)


def _parse_part(part: str, text: str, offset: int, limits: Limits) -> sympy.Expr:
    """Parse one side; an error's caret is moved to its place in the whole equation."""
    try:
        return parse(part, limits)
    except ExpressionError as err:
        if err.start is None or not err.text:
            raise
        raise type(err)(err.message, text, err.start + offset, (err.end or err.start + 1) + offset) from None
