"""The click layer: options -> frozen settings -> library -> serialize. One error boundary.

TensorFlow is imported only inside the commands' work, never for --help, --version or a
bad option or expression.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import AutodiffError, BudgetError, ExitCode, UsageError
from .server.commands import server_group

if TYPE_CHECKING:  # imported when a command runs: they bring SymPy and TensorFlow
    from .minimize import MinimizeReport
    from .settings import Problem
    from .solve.types import MinimizeSettings

FORMATS = ("table", "json", "plain")
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class AutodiffGroup(click.Group):
    """Runs every command inside the one error boundary."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        name = prog_name or "autodiff"  # also under python -m; completion reads _AUTODIFF_COMPLETE
        code = boundary(
            lambda: super(AutodiffGroup, self).main(argv, name, complete_var, standalone_mode=False, **extra), argv
        )
        if standalone_mode:
            sys.exit(code)
        return code


class ExprCommand(click.Command):
    """A command whose EXPR may start with a minus sign: ``maximize "-(x-2)^2+3"``.

    click reads every token that starts with ``-`` as an option. Before it parses, a token
    that is none of this command's options (nor an option's value, as in ``--at -1`` or
    ``--from x=-1``) is moved behind ``--``, where click reads it as EXPR. A token that
    starts with a short option's name and could be either (``-p*x``: ``-p`` with the value
    ``*x``, or the expression -p*x) is refused with one line that says how to write each.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:  # completion parses half-typed lines: leave them alone
            args = self.expression_last(ctx, args)
        return super().parse_args(ctx, args)

    def expression_last(self, ctx: click.Context, args: list[str]) -> list[str]:
        """``args`` with an EXPR that starts with ``-`` moved behind ``--``."""
        long: dict[str, bool] = {}  # option name -> takes a value
        short: dict[str, bool] = {}
        for param in self.get_params(ctx):  # -h and --help too
            if isinstance(param, click.Option):
                takes = not (param.is_flag or param.count)
                for name in [*param.opts, *param.secondary_opts]:
                    (long if name.startswith("--") else short)[name] = takes
        positional: list[int] = []
        candidate: int | None = None
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":  # the user said where EXPR is; options typed after it go before it
                after = args[i + 1 :]
                if positional or len(after) < 2:
                    return args
                return [*args[:i], *after[1:], "--", after[0]]
            name = token.split("=", 1)[0]
            if token.startswith("--") or token in short:
                i += 2 if (long.get(name) or short.get(token)) and "=" not in token else 1
                continue
            if token.startswith("-") and token != "-":
                prefix = token[:2]
                if prefix in short:
                    rest = token[2:]
                    if short[prefix] and _assignment(rest):  # -pa=1: -p with the value a=1
                        i += 1
                        continue
                    raise UsageError(
                        f"{token!r} could be the option {prefix} or an expression; write "
                        f"{prefix} NAME=VALUE with a space for the option, or put the expression after --, "
                        f'as in: autodiff {self.name} -- "{token}"'
                    )
                if candidate is None:
                    candidate = i
            else:
                positional.append(i)
            i += 1
        if candidate is None or positional:
            return args
        return [*args[:candidate], *args[candidate + 1 :], "--", args[candidate]]


def _assignment(text: str) -> bool:
    """NAME=VALUE[,NAME=VALUE...]: an option's value, not an expression."""
    import re

    return bool(re.fullmatch(r"\s*[A-Za-z_]\w*\s*=[^=].*", text))


def boundary(work: Callable[[], Any], argv: Sequence[str]) -> int:
    """Run ``work``; turn every failure into one ``Error: ...`` line and an exit code."""
    try:
        result = work()
        return int(result) if isinstance(result, int) else ExitCode.OK
    except AutodiffError as err:
        _error(err.message, err.detail())
        return err.exit_code
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.format_message(), err=True)
        return ExitCode.USAGE
    except click.NoSuchOption as err:
        hint = (
            ""
            if err.option_name.startswith("--")
            else ("; an expression that starts with '-' goes after --, as in: autodiff grad -- \"-x**2\"")
        )
        _error(_one_line(err.format_message()).rstrip(".") + hint)
        return ExitCode.USAGE
    except click.ClickException as err:
        _error(_one_line(err.format_message()))
        return ExitCode.USAGE
    except (click.Abort, KeyboardInterrupt):
        _error("interrupted")
        return ExitCode.INTERRUPTED
    except (RecursionError, MemoryError) as err:
        _error(f"input too large to handle ({type(err).__name__}); limits are listed in the README")
        return ExitCode.USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return ExitCode.NUMERIC
    except Exception as err:  # the last resort: still one line, unless asked for more
        if "--traceback" in argv:
            traceback.print_exc()
        module = type(err).__module__
        where = "TensorFlow" if module.startswith("tensorflow") else "internal error"
        _error(f"{where}: {type(err).__name__}: {_one_line(str(err))} (rerun with --traceback for details)")
        return ExitCode.NUMERIC


def _error(message: str, detail: Sequence[str] = ()) -> None:
    click.echo(f"Error: {message}", err=True)
    for line in detail:
        click.echo(line, err=True)


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _traceback_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--traceback", is_flag=True, hidden=False, help="Show a Python traceback on errors.")(f)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    """EXPR, -p, --dtype, --format and --traceback, shared by grad and minimize."""
    decorators: list[Decorator] = [
        click.argument("expr", required=False),
        click.option(
            "-p",
            "--param",
            "params",
            multiple=True,
            metavar="NAME=VALUE",
            help="Bind a parameter (a constant, like a, b, c in the seed). Repeatable.",
        ),
        click.option(
            "--dtype",
            default="float32",
            show_default=True,
            shell_complete=_complete_dtype,
            help="float32 or float64.",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS, case_sensitive=False),
            default=None,
            help="table (default on a terminal), json, or plain (default when piped).",
        ),
        _traceback_option,
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _plot_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--plot and --plot-file, shared by grad and minimize."""
    f = click.option(
        "--plot-file",
        "plot_file",
        metavar="FILE",
        help="Write the pictures to FILE: .png, .svg or .pdf (matplotlib), atomically.",
    )(f)
    return click.option(
        "--plot",
        is_flag=True,
        help="Draw the pictures in the terminal (on stdout after a table, else on stderr).",
    )(f)


def _check_plot_file(plot_file: str | None) -> None:
    if plot_file is not None:
        from .output.draw import check_file

        check_file(plot_file)


def _show_picture(make: Callable[[], Any], fmt: str, plot: bool, plot_file: str | None) -> None:
    """Draw what ``make()`` returns: in the terminal, to a file, or both."""
    if not (plot or plot_file):
        return
    from .output import draw

    picture = make()
    if plot:
        stream = sys.stdout if fmt == "table" else sys.stderr
        text = draw.terminal(picture, _columns(stream), _colour(stream))
        click.echo(text, file=stream, nl=False)
    if plot_file:
        draw.write_file(picture, plot_file)


def _columns(stream: Any) -> int:
    """The width to draw in: COLUMNS, else the terminal's, else 80 (at least 40)."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            width = 80
    return max(40, width)


def _colour(stream: Any) -> bool:
    """ANSI colours only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _completion() -> Any:
    from . import completion

    return completion


def _complete_dtype(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _completion().dtypes(ctx, param, incomplete)


def _read_expr(expr: str | None) -> str | None:
    if expr != "-":
        return expr
    from .language.budgets import LIMITS

    text = sys.stdin.read(LIMITS.max_length + 1)
    if len(text) > LIMITS.max_length:
        raise BudgetError(f"expression on stdin is longer than the limit of {LIMITS.max_length:,} characters")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:  # read as one, two lines would silently become a product
        raise UsageError(
            f"EXPR -: stdin holds {len(lines)} lines ({', '.join(_shorten(x) for x in lines[:2])}"
            f"{', ...' if len(lines) > 2 else ''}); "
            "an expression on stdin is one line: run once per expression"
        )
    return text.strip()


def _shorten(text: str, most: int = 20) -> str:
    return repr(text if len(text) <= most else text[: most - 3] + "...")


def _format(fmt: str | None) -> str:
    if fmt:
        return fmt.lower()
    return "table" if sys.stdout.isatty() else "plain"


def _stdout() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=False)


@click.group(name="autodiff", cls=AutodiffGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="autodiff")
def cli() -> None:
    """Differentiate and minimize math expressions with TensorFlow.

    \b
    autodiff grad "x**2-2*x+1" --at 0
    autodiff minimize --opt adam --graph
    autodiff minimize "(x**2+y-11)**2 + (x+y**2-7)**2" --opt newton --starts 100 --bounds x=-5:5,y=-5:5
    autodiff tour
    """


@cli.command(cls=ExprCommand)
@_common
@click.option(
    "--at",
    "at",
    multiple=True,
    metavar="POINT",
    help="Point: 0 for one variable, or x=0,y=1 (a missing variable is 0). Repeat for a batch.",
)
@click.option(
    "--at-file",
    "at_file",
    metavar="FILE",
    help="Points from a file, one per line: CSV with a header (x,y), bare numbers, or x=1,y=2; - for stdin. "
    "Read and written in chunks, so it may be of any size.",
)
@click.option(
    "--max-lines",
    "max_lines",
    type=int,
    default=None,
    metavar="N",
    help="Refuse an --at-file of more lines than this (default 100,000,000).",
)
@click.option("--wrt", metavar="NAMES", help="Differentiate with respect to these (default: every variable).")
@click.option("--watch", metavar="NAMES", help="Put these parameters on the tape so they get gradients.")
@click.option("--order", type=int, default=1, show_default=True, help="Highest derivative order (nested tapes).")
@click.option(
    "--check",
    is_flag=True,
    help="Compare the tape's gradient (and Hessian with --order 2) with the exact value and a finite difference.",
)
@_plot_options
@click.option(
    "--range",
    "span",
    metavar="x=LO:HI",
    help="The x range of the pictures (default: around the points).",
)
def grad(
    expr: str | None,
    params: tuple[str, ...],
    dtype: str,
    fmt: str | None,
    traceback: bool,
    at: tuple[str, ...],
    at_file: str | None,
    max_lines: int | None,
    wrt: str | None,
    watch: str | None,
    order: int,
    check: bool,
    plot: bool,
    plot_file: str | None,
    span: str | None,
) -> int:
    """Values, gradients, Hessians and higher derivatives with tf.GradientTape.

    Each derivative is shown beside SymPy's symbolic one. EXPR defaults to the seed's
    a*x**2 + b*x + c with a=1, b=-2, c=1; "-" reads it from stdin (one line).

    \b
    Examples:
      autodiff grad "x**2-2*x+1" --at 0
      autodiff grad "x**2*y + sin(x*y)" --at x=1,y=2 --order 2
      autodiff grad "exp(x)*log(1+y**2)" --at x=2.5,y=3 --order 2 --check
      autodiff grad --wrt x,a --watch a --format json
      autodiff grad "x**2 + 3*x*y" --at-file points.csv --format plain
      autodiff grad "sin(x)" --at 1 --order 2 --plot --range x=-pi:pi
    """
    from . import points, settings
    from .grad import grad_request

    _check_plot_file(plot_file)
    if at_file == "-" and expr == "-":
        raise UsageError(
            "EXPR - and --at-file -: the expression and the points cannot both come from stdin; "
            "give the expression as an argument or the points in a file"
        )
    problem = settings.load_problem(_read_expr(expr), params, dtype)
    settings.at_least(order, 1, "--order", settings.MAX_ORDER)
    if span is not None and not (plot or plot_file):
        raise UsageError("--range: only with --plot or --plot-file")
    if plot or plot_file:
        from .output.pictures import require_one_variable

        require_one_variable(problem)
    x_range = settings.parse_range(span, problem.variables, dtype=problem.dtype) if span is not None else None
    names = [*problem.variables, *problem.params]
    limits = points.POINT_LIMITS
    if max_lines is not None:
        limits = points.PointLimits(max_lines=settings.at_least(max_lines, 1, "--max-lines"))
    at_points = settings.points_array(
        [settings.parse_point(p, problem.variables, "--at", problem=problem) for p in at], problem.variables
    )
    request = grad_request(
        problem,
        at_points if at or at_file else None,
        settings.parse_names(wrt, names, "--wrt", problem=problem),
        settings.parse_names(watch, names, "--watch", problem=problem),
        order,
        check,
    )
    reader = points.PointReader(at_file, problem.variables, limits, problem=problem) if at_file else None
    batches = points.batches(request.points, reader)  # a file's first chunk is read here, before any output
    report = _grad_stream(request, batches, reader, _format(fmt))
    _show_picture(lambda: _figures().grad_picture(report, x_range), _format(fmt), plot, plot_file)
    for warning in report.warnings[:1]:
        more = f" (and {len(report.warnings) - 1} more)" if len(report.warnings) > 1 else ""
        _error(warning + more)
    return report.exit_code


def _figures() -> Any:
    from .output import pictures

    return pictures


def _grad_stream(request: Any, batches: Any, reader: Any, fmt: str) -> Any:
    """Compute and write batch by batch; a table is printed at the end; a progress bar on a
    terminal's stderr for a points file (not with JSON, whose successful runs keep stderr empty)."""
    from .stream import grad_stream

    def write(data: Any) -> None:
        click.echo(data, nl=False)

    if reader is None or fmt == "json" or not sys.stderr.isatty():
        report = grad_stream(request, batches, fmt, write)
    else:
        from rich.console import Console

        from .output.tables import BatchProgress

        with BatchProgress(Console(stderr=True), reader, _progress_delay()) as progress:
            report = grad_stream(request, batches, fmt, write, progress)
    if fmt == "table":
        from .output.tables import grad_table

        grad_table(report, _stdout())
    return report


def _progress_delay() -> float:
    """Seconds a run goes before live progress shows on a terminal: 1, or AUTODIFF_PROGRESS_DELAY
    (0 shows it at once, so a test need not count on a run being slow enough)."""
    try:
        delay = float(os.environ.get("AUTODIFF_PROGRESS_DELAY", "1"))
    except ValueError:
        return 1.0
    return delay if delay >= 0 else 1.0


def _search_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of minimize and maximize."""
    decorators: list[Decorator] = [
        _common,
        click.option(
            "--opt",
            "opt",
            default=None,
            metavar="NAME",
            shell_complete=lambda ctx, param, incomplete: _completion().optimizers(ctx, param, incomplete),
            help="newton, bfgs, lbfgs, or any Keras optimizer: sgd, adam, adamw, rmsprop, adagrad, nadam, ...; "
            "with --subject-to, slsqp or trust-constr [default: newton up to 20 variables, lbfgs beyond; sgd "
            "(the tutorial's) with --lr or --style minimize; slsqp with --subject-to]",
        ),
        click.option("--lr", type=float, default=None, help="Learning rate of a Keras optimizer [default: 0.01]."),
        click.option("--steps", type=int, default=1000, show_default=True, help="Most steps (iterations) to take."),
        click.option("--from", "start", metavar="POINT", default=None, help="Start point (default: every variable 0)."),
        click.option(
            "--starts",
            type=int,
            default=1,
            show_default=True,
            help="Run this many starts at once, drawn uniformly in the --bounds box, and list the basins found.",
        ),
        click.option(
            "--bounds",
            metavar="NAME=LO:HI,...",
            default=None,
            help="Keep every iterate in this box; starts are drawn in it (a name without bounds: its "
            "--from value +-10). One-sided: x=0: or x=:5 (or inf, -inf).",
        ),
        click.option(
            "--subject-to",
            "subject_to",
            multiple=True,
            metavar="CONSTRAINT",
            help="A constraint: lhs = rhs, lhs <= rhs or lhs >= rhs (also lo <= expr <= hi). Repeatable. "
            "Runs SLSQP (or --opt trust-constr) and reports multipliers; see docs/constraints.md.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random starts."),
        click.option(
            "--graph/--eager",
            default=True,
            show_default=True,
            help="One compiled tf.function loop, or a Python loop of eager steps.",
        ),
        click.option("--jit/--no-jit", default=True, show_default=True, help="Compile the graph loop with XLA."),
        click.option(
            "--style",
            type=click.Choice(["tape", "minimize"], case_sensitive=False),
            default="tape",
            show_default=True,
            help="GradientTape + apply_gradients, or a loss callable (Keras 2's minimize).",
        ),
        click.option(
            "--tol",
            type=float,
            default=None,
            help="Stop when |grad| <= TOL (exit 3 if never reached). newton, bfgs, lbfgs: their "
            "gradient tolerance [default: 1e-5]. slsqp, trust-constr: the KKT residual's, over "
            "max(1, |grad f|) [default: 1e-3].",
        ),
        click.option("--every", type=int, default=None, help="A history row every K steps (default: about 20 rows)."),
        _plot_options,
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


@cli.command(name="minimize", cls=ExprCommand)
@_search_options
def minimize_cmd(**options: Any) -> int:
    """Minimize EXPR: Newton, BFGS, L-BFGS-B or a Keras optimizer, from one start or many;
    SLSQP or trust-constr subject to --subject-to constraints.

    Without --opt: Newton with the exact Hessian up to 20 variables, L-BFGS-B beyond (the
    tutorial's SGD with --lr or --style minimize). EXPR defaults to the seed's
    a*x**2 + b*x + c with a=1, b=-2, c=1; "-" reads it from stdin
    (one line). Keras 3 optimizers
    have no minimize(); --style minimize gives the same semantics through a loss
    callable. The point found gets a verdict (minimum, saddle, ...) from the Hessian's
    eigenvalues, and from higher derivatives where the Hessian is singular.

    \b
    Examples:
      autodiff minimize "(1-x)**2 + 100*(y-x**2)**2"
      autodiff minimize --opt adam --graph
      autodiff minimize "(x-3)**2 + (y+1)**2" --opt adam --lr 0.1 --tol 1e-6
      autodiff minimize "100*(y-x**2)**2 + (1-x)**2" --opt newton --from x=-1.2,y=1
      autodiff minimize "(x**2+y-11)**2 + (x+y**2-7)**2" --opt newton --starts 1000 --bounds x=-5:5,y=-5:5
      autodiff minimize "(1-x)**2 + 100*(y-x**2)**2" --opt adam --lr 0.02 --from x=-1,y=1 --plot
      autodiff minimize "x**2 + y**2" --subject-to "x + y = 1" --subject-to "x >= 0.7"
    """
    return _optimize(maximize=False, **options)


@cli.command(name="maximize", cls=ExprCommand)
@_search_options
def maximize_cmd(**options: Any) -> int:
    """Maximize EXPR: the options of minimize; the report gives f itself.

    \b
    Examples:
      autodiff maximize "x*exp(-x**2)" --opt newton --from 0.5
      autodiff maximize "sin(x)*cos(y)" --opt lbfgs --starts 100 --bounds x=-3:3,y=-3:3
    """
    return _optimize(maximize=True, **options)


def _optimize(
    maximize: bool,
    expr: str | None,
    params: tuple[str, ...],
    dtype: str,
    fmt: str | None,
    traceback: bool,
    opt: str | None,
    lr: float | None,
    steps: int,
    start: str | None,
    starts: int,
    bounds: str | None,
    seed: int,
    graph: bool,
    jit: bool,
    style: str,
    tol: float | None,
    every: int | None,
    plot: bool,
    plot_file: str | None,
    subject_to: tuple[str, ...] = (),
) -> int:
    from . import settings

    _check_plot_file(plot_file)
    problem = settings.load_problem(_read_expr(expr), params, dtype, subject_to)
    problem, opt = _constraints(problem, opt, subject_to, start, bounds)
    config = settings.minimize_settings(
        problem, maximize, opt, lr, steps, starts, bounds, seed, graph, jit, style, tol, every
    )
    origin = (
        settings.parse_point(start, problem.variables, "--from", problem=problem)
        if start
        else {v: 0.0 for v in problem.variables}
    )
    try:
        report = _run_minimize(problem, origin, config, _format(fmt))
    except KeyboardInterrupt:  # during set-up, before any step: still a report, with nulls
        from . import minimize

        report = minimize.not_started(problem, origin, config, "interrupted", [])
    _show_minimize(report, _format(fmt))
    _show_picture(lambda: _figures().minimize_picture(report), _format(fmt), plot, plot_file)
    if report.outcome.status == "interrupted":
        _error(f"interrupted after {report.outcome.steps} steps; the best point so far is reported")
    for warning in report.warnings:
        _error(warning)
    if _format(fmt) != "json":
        for advice in report.advice:
            click.echo(f"Warning: {advice}", err=True)
    return report.exit_code


def _constraints(
    problem: Problem, opt: str | None, subject_to: tuple[str, ...], start: str | None, bounds: str | None
) -> tuple[Problem, str | None]:
    """The problem with its --subject-to constraints, and the method: SLSQP by default with
    constraints; --opt as given otherwise (a method that takes no constraints is refused).
    None: no --opt and no constraints, so minimize_settings chooses the default method."""
    from . import settings

    method = settings.constrained_method(opt, bool(subject_to))
    if subject_to:
        problem = settings.with_constraints(problem, subject_to, start, bounds)
    return problem, method or opt


def _run_minimize(problem: Problem, origin: dict[str, float], settings: MinimizeSettings, fmt: str) -> MinimizeReport:
    from . import minimize
    from .solve.registry import CONSTRAINED

    run = minimize.minimize
    if settings.optimizer in CONSTRAINED:
        from .constrained import minimize_constrained as run
    if fmt == "json" or not sys.stderr.isatty():
        return run(problem, origin, settings)
    from rich.console import Console

    from .output.tables import LiveProgress

    with LiveProgress(Console(stderr=True), problem.variables, problem.dtype, _progress_delay()) as live:
        return run(problem, origin, settings, live)


def _show_minimize(report: MinimizeReport, fmt: str) -> None:
    from .output import serialize

    if fmt == "json":
        click.echo(serialize.dumps(serialize.minimize_json(report)))
    elif fmt == "plain":
        click.echo(serialize.minimize_plain(report), nl=False)
    else:
        from .output.tables import minimize_table

        minimize_table(report, _stdout())


FIT_FORMATS = (*FORMATS, "params")


@cli.command(name="fit")
@click.argument("model", required=False)
@click.option(
    "--data", "data", metavar="FILE", help="The table: CSV, TSV or whitespace, a header row, # comments; - is stdin."
)
@click.option(
    "--columns", metavar="NAMES", default=None, help="Names of the columns of a file without a header row: y,x."
)
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Hold a parameter at a value. Repeatable."
)
@click.option(
    "--from", "start", metavar="POINT", default=None, help="Start: b1=500,b2=1e-4 (a parameter not given starts at 1)."
)
@click.option(
    "--starts",
    type=int,
    default=1,
    show_default=True,
    help="Fit from this many starts (--from and random ones beside it); list every local fit.",
)
@click.option(
    "--bounds", metavar="NAME=LO:HI,...", default=None, help="Keep parameters in this box (trust-region method)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random starts.")
@click.option(
    "--sigma",
    metavar="COL",
    default=None,
    help="Column of standard deviations of the response: absolute, covariance unscaled.",
)
@click.option(
    "--weights",
    metavar="COL",
    default=None,
    help="Column of relative weights: covariance scaled by the residual variance.",
)
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level of the intervals.")
@click.option(
    "--dtype",
    default="float64",
    show_default=True,
    shell_complete=_complete_dtype,
    help="float64, or float32 (less accurate).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FIT_FORMATS, case_sensitive=False),
    default=None,
    help="table (default on a terminal), json, plain (the values, default when piped), or params (b1=...,b2=...).",
)
@_plot_options
@_traceback_option
def fit_cmd(
    model: str | None,
    data: str | None,
    columns: str | None,
    params: tuple[str, ...],
    start: str | None,
    starts: int,
    bounds: str | None,
    seed: int,
    sigma: str | None,
    weights: str | None,
    level: float,
    dtype: str,
    fmt: str | None,
    plot: bool,
    plot_file: str | None,
    traceback: bool,
) -> int:
    """Fit MODEL's parameters to the data in FILE by least squares.

    MODEL is an equation: names that are columns of the data are data, every other name
    is a parameter. Without '=', the response is the column y. Exit status 0: a trusted fit;
    3: a fit that cannot be trusted (a Warning line says why); 2: bad input; 130: Ctrl-C
    (the best parameters so far are reported).

    \b
    Examples:
      autodiff fit "y = b1*(1 - exp(-b2*x))" --data misra1a.csv --from b1=500,b2=1e-4
      autodiff fit "y = a*x**2 + b*x + c" --data points.csv --format params
      autodiff fit "y = a*exp(-k*t)" --data decay.csv --sigma dy --plot
    """
    from . import settings

    _check_plot_file(plot_file)
    config = settings.fit_settings(
        _read_expr(model), data, columns, params, start, starts, bounds, sigma, weights, level, dtype, seed
    )
    from . import fit

    report = fit.fit(config)
    shown = _format(fmt)
    from .output import serialize

    if shown == "json":
        click.echo(serialize.dumps(serialize.fit_json(report)))
    elif shown == "plain":
        click.echo(serialize.fit_plain(report), nl=False)
    elif shown == "params":
        click.echo(serialize.fit_params(report), nl=False)
    else:
        from .output.tables import fit_table

        fit_table(report, _stdout())
    _show_picture(lambda: _figures().fit_picture(report), shown, plot, plot_file)
    if report.status == "interrupted":
        _error("interrupted; the best parameters so far are reported")
    if shown != "json":
        for warning in report.warnings:
            click.echo(warning, err=True)
    return report.exit_code


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    default=None,
    help="table (default on a terminal), json, or plain.",
)
@_traceback_option
def tour(fmt: str | None, traceback: bool) -> int:
    """Run the seed tutorial's seven cells and compare with the numbers it printed.

    Each cell gets one line of explanation, the equivalent autodiff command, and our
    result beside the seed's.

    \b
    Example:
      autodiff tour
    """
    from .tour import run_all, show

    cells = run_all()
    show(cells, _format(fmt), _stdout())
    return ExitCode.OK if all(c.matches for c in cells) else ExitCode.NUMERIC


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), metavar="SHELL")
def completion(shell: str) -> int:
    """Print the shell completion script for bash, zsh or fish.

    It completes commands, options, --format, --dtype, --style and the --opt names.

    \b
    Install (bash 4.4+, in ~/.bashrc; zsh, in ~/.zshrc after compinit):
      eval "$(autodiff completion bash)"
      eval "$(autodiff completion zsh)"
    Fish:
      autodiff completion fish > ~/.config/fish/completions/autodiff.fish
    """
    click.echo(_completion().script(cli, shell))
    return ExitCode.OK


cli.add_command(server_group)


def main() -> NoReturn:
    """Console-script entry: run, flush, and skip TensorFlow's slow interpreter teardown."""
    code = cli.main(standalone_mode=False)
    sys.stdout.flush()
    sys.stderr.flush()
    from .runtime import loaded

    if loaded():  # TensorFlow's interpreter teardown costs about a second: skip it
        os._exit(int(code))
    sys.exit(int(code))
