"""The click layer: options -> frozen settings -> library -> serialize. One error boundary.

TensorFlow is imported only inside the commands' work, never for --help, --version or a
bad option or expression.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from . import __version__
from .errors import AutodiffError, BudgetError, ExitCode, UsageError
from .server.commands import server_group

FORMATS = ("table", "json", "plain")


class AutodiffGroup(click.Group):
    """Runs every command inside the one error boundary."""

    def main(self, args: Sequence[str] | None = None, *a: Any, standalone_mode: bool = True, **kw: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        kw.setdefault("prog_name", "autodiff")  # also under python -m; completion reads _AUTODIFF_COMPLETE
        code = boundary(lambda: super(AutodiffGroup, self).main(argv, *a, standalone_mode=False, **kw), argv)
        if standalone_mode:
            sys.exit(code)
        return code


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
    for decorator in reversed(
        [
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
    ):
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
    from .language.parse import LIMITS

    text = sys.stdin.read(LIMITS.max_length + 1)
    if len(text) > LIMITS.max_length:
        raise BudgetError(f"expression on stdin is longer than the limit of {LIMITS.max_length:,} characters")
    return text.strip()


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


@cli.command()
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
    a*x**2 + b*x + c with a=1, b=-2, c=1; "-" reads it from stdin.

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
    problem = settings.load_problem(_read_expr(expr), params, dtype)
    settings.at_least(order, 1, "--order", settings.MAX_ORDER)
    if span is not None and not (plot or plot_file):
        raise UsageError("--range: only with --plot or --plot-file")
    if plot or plot_file:
        from .output.pictures import check_grad

        check_grad(problem)
    x_range = settings.parse_range(span, problem.variables) if span is not None else None
    names = [*problem.variables, *problem.params]
    if at_file and expr == "-":
        raise UsageError("--at-file -: stdin already holds the expression")
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
    for decorator in reversed(
        [
            _common,
            click.option(
                "--opt",
                "opt",
                default="sgd",
                show_default=True,
                metavar="NAME",
                shell_complete=lambda ctx, param, incomplete: _completion().optimizers(ctx, param, incomplete),
                help="newton, bfgs, lbfgs, or any Keras optimizer: sgd, adam, adamw, rmsprop, adagrad, nadam, ...",
            ),
            click.option("--lr", type=float, default=None, help="Learning rate of a Keras optimizer [default: 0.01]."),
            click.option("--steps", type=int, default=1000, show_default=True, help="Most steps (iterations) to take."),
            click.option(
                "--from", "start", metavar="POINT", default=None, help="Start point (default: every variable 0)."
            ),
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
                "--from value +-10).",
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
                "gradient tolerance [default: 1e-5].",
            ),
            click.option(
                "--every", type=int, default=None, help="A history row every K steps (default: about 20 rows)."
            ),
            _plot_options,
        ]
    ):
        f = decorator(f)
    return f


@cli.command(name="minimize")
@_search_options
def minimize_cmd(**options: Any) -> int:
    """Minimize EXPR: Newton, BFGS, L-BFGS-B or a Keras optimizer, from one start or many.

    EXPR defaults to the seed's a*x**2 + b*x + c with a=1, b=-2, c=1; "-" reads it
    from stdin. Keras 3 optimizers have no minimize(); --style minimize gives the same
    semantics through a loss callable. The point found gets a verdict (minimum, saddle,
    ...) from the Hessian's eigenvalues.

    \b
    Examples:
      autodiff minimize --opt adam --graph
      autodiff minimize "(x-3)**2 + (y+1)**2" --opt adam --lr 0.1 --tol 1e-6
      autodiff minimize "100*(y-x**2)**2 + (1-x)**2" --opt newton --from x=-1.2,y=1
      autodiff minimize "(x**2+y-11)**2 + (x+y**2-7)**2" --opt newton --starts 1000 --bounds x=-5:5,y=-5:5
      autodiff minimize "(1-x)**2 + 100*(y-x**2)**2" --opt adam --lr 0.02 --from x=-1,y=1 --plot
    """
    return _optimize(maximize=False, **options)


@cli.command(name="maximize")
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
    opt: str,
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
) -> int:
    from . import settings

    _check_plot_file(plot_file)
    problem = settings.load_problem(_read_expr(expr), params, dtype)
    config = settings.minimize_settings(
        problem, maximize, opt, lr, steps, starts, bounds, seed, graph, jit, style, tol, every
    )
    origin = settings.parse_point(start, problem.variables, "--from") if start else {v: 0.0 for v in problem.variables}
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


def _run_minimize(problem: Any, origin: dict[str, float], settings: Any, fmt: str) -> Any:
    from . import minimize

    if fmt == "json" or not sys.stderr.isatty():
        return minimize.minimize(problem, origin, settings)
    from rich.console import Console

    from .output.tables import LiveProgress

    with LiveProgress(Console(stderr=True), problem.variables, problem.dtype, _progress_delay()) as live:
        return minimize.minimize(problem, origin, settings, live)


def _show_minimize(report: Any, fmt: str) -> None:
    from .output import serialize

    if fmt == "json":
        click.echo(serialize.dumps(serialize.minimize_json(report)))
    elif fmt == "plain":
        click.echo(serialize.minimize_plain(report), nl=False)
    else:
        from .output.tables import minimize_table

        minimize_table(report, _stdout())


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
