"""Shell completion: click's own scripts for bash, zsh and fish, and the value completers.

``autodiff completion SHELL`` prints the script; the shell then calls ``autodiff`` with
``_AUTODIFF_COMPLETE`` set, and click answers from the command tree (commands, options,
``--format`` and ``--style`` choices) and from the completers here (``--dtype``, ``--opt``).
Nothing here imports TensorFlow, so a completion answers in well under a second.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")
PROG = "autodiff"
COMPLETE_VAR = "_AUTODIFF_COMPLETE"
DTYPES = ("float32", "float64")  # config.DTYPES, without importing SymPy for a completion


def script(cli: click.Command, shell: str) -> str:
    """The completion script ``shell`` sources, as click writes it for this program."""
    cls = get_completion_class(shell)
    if cls is None:  # click.Choice has already refused anything else
        raise click.BadParameter(f"no completion for {shell!r}")
    return cls(cli, {}, PROG, COMPLETE_VAR).source()


def dtypes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(d) for d in DTYPES if d.startswith(incomplete)]


def optimizers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Every name ``--opt`` takes, with the Keras class or the method it runs as help."""
    from .solve.registry import CONSTRAINED, METHODS, OPTIMIZERS

    key = incomplete.lower()
    known = {**OPTIMIZERS, **METHODS, **{cls.lower(): cls for cls in CONSTRAINED.values()}}
    return [CompletionItem(name, help=cls) for name, cls in sorted(known.items()) if name.startswith(key)]
