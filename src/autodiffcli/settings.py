"""Command-line values -> typed, frozen settings. No TensorFlow here.

Every check that can fail on user input happens here, before any numeric work, and
every message names the option it is about.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import sympy

from .errors import AutodiffError, BudgetError, ExpressionError, UsageError, listing
from .language.constraints import OPTION as SUBJECT_TO
from .language.constraints import Constraint, names_of, parse_constraint, position_of
from .language.lexer import normalize, tokenize
from .language.parse import parse
from .language.printing import canonical, variables
from .solve.registry import CONSTRAINED, DEFAULT_CONSTRAINED, OPTIMIZERS, default_method, optimizer_name
from .solve.types import MinimizeSettings

DEFAULT_EXPRESSION = "a*x**2 + b*x + c"
DEFAULT_PARAMS = {"a": 1.0, "b": -2.0, "c": 1.0}
DTYPES = ("float32", "float64")
MAX_ORDER = 8
MAX_BATCH_VALUES = 10_000_000  # --starts x values per start (the variables; for newton, the Hessian)


@dataclass(frozen=True)
class Problem:
    """A parsed expression with its parameters bound: what every command works on."""

    text: str
    expr: sympy.Expr
    params: dict[str, float]
    variables: tuple[str, ...]  # natural order (x2 before x10); every free symbol that is not a parameter
    dtype: str
    vanished: tuple[str, ...] = ()  # names the user wrote that SymPy's simplification removed
    read_as: str = ""  # the text as read (implicit products explicit), when it differs from the user's
    constraints: tuple[Constraint, ...] = ()  # --subject-to, on the same variables and parameters

    @property
    def canonical(self) -> str:
        return canonical(self.expr)

    @property
    def simplified(self) -> str:
        """What the expression became, when simplification removed names the user wrote;
        else "". For example ``the expression simplifies to the constant 0 (read as 0*x10*x)``."""
        if not self.vanished:
            return ""
        what = self.canonical if self.expr.free_symbols else f"the constant {self.canonical}"
        read = f" (read as {self.read_as})" if self.read_as else ""
        return f"the expression simplifies to {what}{read}"

    @property
    def dropped(self) -> str:
        """A note for a run that succeeds although names the user wrote dropped out."""
        verb = "drops" if len(self.vanished) == 1 else "drop"
        return f"{', '.join(self.vanished)} {verb} out: {self.simplified}"

    def absent(self, name: str, names: Sequence[str]) -> str:
        """Why ``name`` is not among ``names`` (the variables, or every name): to follow a message."""
        if self.simplified and (name in self.vanished or not names):
            return f": {self.simplified}"
        return f" (it has {listing(names)})"

    def no_variables(self, purpose: str) -> str:
        """The message for an expression without variables, saying why: the constant, the
        parameters, or what simplification made of the names the user wrote."""
        if self.simplified:
            return f"no variables {purpose}: {self.simplified}"
        reason = "all its names are parameters" if self.params else f"it is the constant {self.canonical}"
        return f"the expression has no variables {purpose} ({reason})"


def load_problem(
    text: str | None, param_options: Sequence[str], dtype: str, constraints: Sequence[str] = ()
) -> Problem:
    """Parse EXPR (None: the seed's default) and bind ``-p NAME=VALUE`` parameters (which may
    also be names only the ``--subject-to`` ``constraints`` have)."""
    if dtype not in DTYPES:
        raise UsageError(f"--dtype: unknown dtype {dtype!r}; choose float32 or float64")
    given = parse_assignments(param_options, "-p/--param", allow_expr_values=True, dtype=dtype)
    if text is None:
        text = DEFAULT_EXPRESSION
        params = {**DEFAULT_PARAMS, **given}
    else:
        params = given
    expr = parse(text)
    names = variables(expr)
    vanished, read_as = _vanished(text, names)
    free = tuple(n for n in names if n not in params)
    problem = Problem(text, expr, params, free, dtype, vanished, read_as)
    elsewhere = {n for c in constraints for part in parse_constraint(c) for n in names_of(part)}
    for name in params:
        if name not in names and name not in elsewhere:
            raise UsageError(f"-p/--param: {name!r} is not in the expression{problem.absent(name, names)}")
    return problem


def _vanished(text: str, names: Sequence[str]) -> tuple[tuple[str, ...], str]:
    """Names the user wrote that are not in the parsed expression (``x - x``, ``0*y``), and
    the text as read when it differs from what was typed (``0x10*x`` is read as ``0*x10*x``).
    A name counts only if the parser alone reads it as that variable (not a function or a
    constant)."""
    tokens = tokenize(text)
    written = dict.fromkeys(t.text for t in tokens if t.kind == "name" and t.text not in names)
    gone = []
    for name in written:
        try:
            alone = parse(name)
        except AutodiffError:
            continue
        if isinstance(alone, sympy.Symbol) and alone.name == name:
            gone.append(name)
    if not gone:
        return (), ""
    read = normalize(tokens)[0].replace(" ", "").replace("~", "√")  # √ is read as a prefix ~
    return tuple(gone), ("" if read == "".join(text.split()) else read)


def parse_assignments(
    items: Sequence[str], option: str, allow_expr_values: bool = True, joint: str = " ", dtype: str | None = None
) -> dict[str, float]:
    """``["a=1", "b=-2"]`` or ``["a=1,b=-2"]`` -> {"a": 1.0, "b": -2.0}. A bad value's
    message starts with the option, ``joint`` and the name (``-p/--param a: ...``); with
    ``dtype``, each value must be one it holds (``unheld``)."""
    out: dict[str, float] = {}
    for item in items:
        for part in _split(item):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name or not value.strip():
                raise UsageError(f"{option}: expected NAME=VALUE, got {part!r}")
            if not name.isidentifier():
                raise UsageError(f"{option}: {name!r} is not a name")
            if name in out:
                raise UsageError(f"{option}: {name!r} is given twice")
            out[name] = number(value, f"{option}{joint}{name}", dtype)
    return out


def number(text: str, option: str, dtype: str | None = None) -> float:
    """A finite number: a literal or a constant expression such as ``pi/2`` or ``-1e-3``;
    with ``dtype``, one that dtype holds (see ``unheld``). -0.0 is read as 0.0 (see
    ``plus_zero``)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            expr = parse(text)
        except AutodiffError as err:
            raise UsageError(f"{option}: {text!r} is not a number ({err.message})") from None
        if expr.free_symbols:
            raise UsageError(f"{option}: {text!r} is not a number") from None
        try:
            value = float(expr)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{option}: {text!r} is not a finite real number") from None
    if not math.isfinite(value):
        raise UsageError(f"{option}: {text!r} is not a finite number")
    why = unheld(value, dtype) if dtype else None
    if why:
        raise UsageError(f"{option}: {text} {why}")
    return plus_zero(value)


Numbers = TypeVar("Numbers", float, np.ndarray)


def plus_zero(value: Numbers) -> Numbers:
    """``value`` (a float or an array) with -0.0 made 0.0, everything else unchanged.

    A point is printed as 0.0 either way, but functions tell the zeros apart:
    atan2(-0.0, -1) is -pi, outside atan2's range (-pi, pi], where the point shown,
    y = 0.0, gives pi. -0.0 + 0.0 is 0.0 in IEEE arithmetic.
    """
    return value + 0.0


def unheld(value: float, dtype: str) -> str | None:
    """Why ``dtype`` cannot hold ``value`` (None when it can), ending in the advice.

    Beyond the largest number it is infinite; below the smallest normal one (but not 0)
    it is 0, since TensorFlow flushes subnormal numbers to zero on the CPU: the answer
    would be computed at another point.
    """
    info = np.finfo(dtype)
    advice = "; use --dtype float64" if dtype == "float32" else ""
    with np.errstate(all="ignore"):
        as_held = abs(float(np.dtype(dtype).type(value)))
    if math.isinf(as_held):
        return f"is beyond {dtype}'s range (its largest number is {float(info.max):.7g}){advice}"
    if value != 0 and as_held < info.tiny:
        tiny = f"{float(info.tiny):.3g}"
        return f"is below {dtype}'s smallest normal number ({tiny}): TensorFlow would compute with 0{advice}"
    return None


def unheld_in(data: np.ndarray, dtype: str) -> np.ndarray:
    """Whether each value of ``data`` is one ``dtype`` cannot hold (see ``unheld``)."""
    info = np.finfo(dtype)
    size = np.abs(data)
    return (size > float(info.max)) | ((size < float(info.tiny)) & (data != 0))


def parse_point(
    text: str, names: Sequence[str], option: str, *, problem: Problem | None = None, file: bool = False
) -> dict[str, float]:
    """``0`` (one variable) or ``x=0,y=1`` -> a value for every variable (0 if left out).

    ``problem`` lets a message say what the expression became, and its dtype must hold
    every value; ``file``: ``option`` names a line of a file, not a command-line option
    (it changes the hint).
    """
    text = text.strip()
    dtype = problem.dtype if problem else None
    if "=" not in text:
        if not names:
            raise UsageError(f"{option}: " + (problem.no_variables("to set") if problem else "no variables to set"))
        if len(names) != 1:
            write = ",".join(f"{n}=..." for n in names)
            euler = " (e is a variable here; Euler's number is E, as in E**x or exp(x))" if "e" in names else ""
            raise UsageError(
                f"{option}: {text!r} gives no names, but the expression has variables "
                f"{listing(names)}; write {write if file else f'{option} {write}'}{euler}"
            )
        return {names[0]: number(text, option, dtype)}
    given = parse_assignments([text], option, joint=", " if file else " ", dtype=dtype)
    for name in given:
        if name not in names:
            why = problem.absent(name, names) if problem else f" (it has {listing(names)})"
            raise UsageError(f"{option}: {name!r} is not a variable of the expression{why}")
    return {n: given.get(n, 0.0) for n in names}


def points_array(points: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    return np.array([[p[n] for n in names] for p in points], dtype=np.float64).reshape(len(points), len(names))


def parse_range(
    text: str, names: Sequence[str], option: str = "--range", dtype: str | None = None
) -> tuple[float, float]:
    """``x=LO:HI`` (or ``LO:HI`` for a one-variable expression) -> (LO, HI), LO < HI."""
    name, sep, span = text.partition("=")
    if not sep:
        if len(names) != 1:
            raise UsageError(f"{option}: name the variable, as in {option} {names[0] if names else 'x'}=LO:HI")
        name, span = names[0], text
    name = name.strip()
    if name not in names:
        raise UsageError(f"{option}: {name!r} is not a variable of the expression (it has {listing(names)})")
    lo_text, colon, hi_text = span.partition(":")
    if not colon:
        raise UsageError(f"{option}: expected {name}=LO:HI, got {text!r}")
    lo, hi = number(lo_text, option, dtype), number(hi_text, option, dtype)
    if not lo < hi:
        raise UsageError(f"{option}: LO must be less than HI, got {text!r}")
    return lo, hi


def parse_names(text: str | None, allowed: Sequence[str], option: str, *, problem: Problem | None = None) -> list[str]:
    """``"x,a"`` -> ["x", "a"], each checked against ``allowed`` (``problem``: to say what
    the expression became when a name is missing)."""
    if text is None:
        return []
    out: list[str] = []
    for name in (p.strip() for p in text.split(",")):
        if not name:
            raise UsageError(f"{option}: empty name in {text!r}")
        if name not in allowed:
            why = problem.absent(name, allowed) if problem else f" (it has {listing(allowed)})"
            raise UsageError(f"{option}: {name!r} is not in the expression{why}")
        if name in out:
            raise UsageError(f"{option}: {name!r} is given twice")
        out.append(name)
    return out


def parse_bounds(
    text: str | None, names: Sequence[str], option: str = "--bounds", dtype: str | None = None
) -> dict[str, tuple[float, float]]:
    """``"x=-5:5,y=0:pi"`` -> {"x": (-5.0, 5.0), "y": (0.0, 3.14...)}; LO < HI, each finite
    side held by ``dtype`` (when given).

    A side left empty is unbounded (``x=0:`` is x >= 0, ``x=:5`` is x <= 5), and so is
    ``inf`` or ``-inf`` written there."""
    if text is None:
        return {}
    out: dict[str, tuple[float, float]] = {}
    for part in (p.strip() for p in _commas(text)):
        name, sep, span = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{option}: expected NAME=LO:HI, got {part!r}")
        if name not in names:
            raise UsageError(f"{option}: {name!r} is not a variable of the expression (it has {listing(names)})")
        if name in out:
            raise UsageError(f"{option}: {name!r} is given twice")
        low, colon, high = span.partition(":")
        if not colon or not (low.strip() or high.strip()):
            raise UsageError(f"{option}: expected NAME=LO:HI, got {part!r}")
        lo = _bound(low, -math.inf, f"{option} {name}", dtype)
        hi = _bound(high, math.inf, f"{option} {name}", dtype)
        if not lo < hi:
            raise UsageError(f"{option}: {name}={low.strip()}:{high.strip()} is empty; LO must be below HI")
        out[name] = (lo, hi)
    return out


def _bound(text: str, missing: float, option: str, dtype: str | None = None) -> float:
    """One side of a bound: a number, ``inf``/``-inf``, or nothing (``missing``: unbounded)."""
    word = text.strip().lower().replace(" ", "")
    if not word:
        return missing
    if word in ("inf", "+inf", "infinity", "+infinity", "oo"):
        return math.inf
    if word in ("-inf", "-infinity", "-oo"):
        return -math.inf
    return number(text, option, dtype)


def with_constraints(problem: Problem, texts: Sequence[str], start: str | None, bounds: str | None) -> Problem:
    """The problem with its ``--subject-to`` constraints, each checked against its names.

    A constraint may use the variables and the ``-p`` parameters of the objective. A name
    only the constraints have is refused as a likely typo, unless ``--from`` or ``--bounds``
    names it: then it is a variable too (Hock and Schittkowski's problem 6 minimizes
    (1 - x1)^2 subject to 10*(x2 - x1^2) = 0)."""
    declared = {part.partition("=")[0].strip() for text in (start, bounds) if text for part in _commas(text)}
    known = set(problem.variables) | set(problem.params)
    out: list[Constraint] = []
    extra: set[str] = set()
    for text in texts:
        for constraint in parse_constraint(text):
            for name in names_of(constraint):
                if name in declared:
                    extra.add(name)
                elif name not in known:
                    raise ExpressionError(
                        f"{SUBJECT_TO}: {name!r} is not a variable of the objective"
                        f"{problem.absent(name, problem.variables)}; a variable only constraints have must be "
                        "named in --from or --bounds",
                        text,
                        *position_of(text, name),
                    )
            if all(name in problem.params for name in names_of(constraint)):
                raise ExpressionError(
                    f"{SUBJECT_TO}: {constraint.text!r} has no variables (all its names are parameters): "
                    "it constrains nothing",
                    text,
                    *position_of(text, constraint.text),
                )
            out.append(constraint)
    names = tuple(sorted(set(problem.variables) | extra))
    return replace(problem, constraints=tuple(out), variables=names)


def constrained_method(opt: str | None, constrained: bool) -> str | None:
    """The method for ``--opt`` when constraints are given (None when they are not and
    ``--opt`` names no constrained method): SLSQP by default; a method that takes no
    constraints is refused, naming the ones that do."""
    if opt is None:
        return DEFAULT_CONSTRAINED if constrained else None
    method = optimizer_name(opt)
    if method in CONSTRAINED:
        return method
    if constrained:
        raise UsageError(
            f"--opt {opt}: takes no constraints; with {SUBJECT_TO} choose --opt slsqp (the default) "
            "or --opt trust-constr"
        )
    return None


def positive(value: float, option: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option}: must be a finite number > 0, got {value:g}")
    return value


def at_least(value: int, low: int, option: str, high: int | None = None) -> int:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise UsageError(f"{option}: must be {bound}, got {value}")
    return value


def _split(item: str) -> list[str]:
    return [p for p in (s.strip() for s in _commas(item)) if p] or [item]


def _commas(text: str) -> list[str]:
    """``text`` split at its commas outside brackets: ``x=max(1,2),y=3`` -> ["x=max(1,2)", "y=3"]."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def minimize_settings(
    problem: Problem,
    maximize: bool,
    opt: str | None,
    lr: float | None,
    steps: int,
    starts: int,
    bounds: str | None,
    seed: int,
    graph: bool,
    jit: bool,
    style: str,
    tol: float | None,
    every: int | None,
) -> MinimizeSettings:
    """The options of ``minimize`` and ``maximize``, checked, as one frozen settings object.

    Without ``opt``, the method is registry.default_method's: Newton for a modest number of
    variables, L-BFGS-B beyond, SGD when --lr or --style minimize asks for a Keras optimizer.
    """
    keras_options = lr is not None or style.lower() != "tape"
    method = optimizer_name(opt) if opt is not None else default_method(len(problem.variables), keras_options)
    keras = method in OPTIMIZERS
    if not keras and lr is not None:
        raise UsageError(f"--lr: {method} chooses its own step length by line search; --lr is for Keras optimizers")
    if not keras and style.lower() != "tape":
        raise UsageError(f"--style {style}: is for Keras optimizers, not {method}")
    at_least(starts, 1, "--starts")
    at_least(seed, 0, "--seed")
    box = parse_bounds(bounds, problem.variables, dtype=problem.dtype)
    if method == "bfgs" and box:
        raise UsageError("--bounds: bfgs takes no bounds (SciPy's BFGS is unconstrained); use --opt lbfgs (L-BFGS-B)")
    width = len(problem.variables) * (len(problem.variables) if method in ("newton", "bfgs") else 1)
    if opt is None and method == "newton" and starts * width > MAX_BATCH_VALUES:
        method, width = "lbfgs", len(problem.variables)  # the Hessians of so many starts would not fit
    if starts * max(width, 1) > MAX_BATCH_VALUES:
        raise BudgetError(f"--starts {starts:,} x {width} values per start is over the limit of {MAX_BATCH_VALUES:,}")
    return MinimizeSettings(
        optimizer=method,
        learning_rate=positive(0.01 if lr is None else lr, "--lr"),
        steps=at_least(steps, 1, "--steps"),
        graph=graph,
        jit=jit,
        style=style.lower(),
        tol=None if tol is None else positive(tol, "--tol"),
        every=None if every is None else at_least(every, 1, "--every"),
        starts=starts,
        seed=seed,
        bounds=tuple((n, lo, hi) for n, (lo, hi) in box.items()),
        maximize=maximize,
    )


@dataclass(frozen=True)
class FitSettings:
    """``autodiff fit``'s options, checked: what the fit use case reads."""

    model: str
    data: str
    columns: tuple[str, ...] | None  # names for a file without a header row
    fixed: dict[str, float]  # -p NAME=VALUE: parameters held at a value
    start: str | None  # --from, checked against the parameters once the model is read
    starts: int  # 1: the --from start only; more: random starts beside it
    bounds: str | None
    sigma: str | None  # a column of standard deviations of the response (absolute)
    weights: str | None  # a column of relative weights
    level: float  # of the confidence intervals
    dtype: str
    seed: int


def fit_settings(
    model: str | None,
    data: str | None,
    columns: str | None,
    params: Sequence[str],
    start: str | None,
    starts: int,
    bounds: str | None,
    sigma: str | None,
    weights: str | None,
    level: float,
    dtype: str,
    seed: int,
) -> FitSettings:
    if not model or not model.strip():
        raise UsageError('fit: give the model, as in: autodiff fit "y = a*exp(-b*x)" --data FILE')
    if not data:
        raise UsageError("fit: --data FILE is required (a table with a header row; - reads stdin)")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    if sigma and weights:
        raise UsageError("--sigma and --weights cannot be given together: --sigma is absolute, --weights relative")
    if not 0 < level < 1:
        raise UsageError(f"--level: {level:g} is not between 0 and 1 (0.95 gives 95% intervals)")
    at_least(starts, 1, "--starts", 10_000)
    names = None
    if columns is not None:
        names = tuple(c.strip() for c in columns.split(","))
        for c in names:
            if not c.isidentifier() or c.startswith("_"):
                raise UsageError(f"--columns: {c!r} is not a name")
            if names.count(c) > 1:
                raise UsageError(f"--columns: {c!r} is named twice")
    return FitSettings(
        model.strip(),
        data,
        names,
        parse_assignments(params, "-p/--param"),
        start,
        starts,
        bounds,
        sigma,
        weights,
        level,
        dtype,
        seed,
    )
