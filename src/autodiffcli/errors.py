"""Error classes and exit codes. Nothing here imports TensorFlow or click."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit statuses of ``autodiff``."""

    OK = 0
    NUMERIC = 1  # non-finite result, divergence, internal failure
    USAGE = 2  # bad option or bad expression
    NOT_CONVERGED = 3  # --tol given and not reached within --steps
    INTERRUPTED = 130  # Ctrl-C


class AutodiffError(Exception):
    """A failure we can explain in one line. ``exit_code`` says how the process ends."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def detail(self) -> list[str]:
        """Extra lines printed under the one-line message (for example a caret excerpt)."""
        return []


class UsageError(AutodiffError):
    """A bad command-line option; the message names the option."""


class ExpressionError(AutodiffError):
    """A bad expression. Keeps the source text and the offending span for a caret."""

    def __init__(self, message: str, text: str = "", start: int | None = None, end: int | None = None):
        super().__init__(message)
        self.text = text
        self.start = start
        self.end = end if end is not None else (start + 1 if start is not None else None)

    def detail(self) -> list[str]:
        if self.start is None or not self.text:
            return []
        return caret_excerpt(self.text, self.start, self.end or self.start + 1)


class BudgetError(ExpressionError):
    """An input budget (length, nodes, depth, number size, time) was exceeded."""


class PlotFileError(AutodiffError):
    """``--plot-file`` cannot be written: a bad extension, a missing directory, no permission."""


class NumericError(AutodiffError):
    """The computation produced a non-finite value, a domain error or an overflow."""

    exit_code = ExitCode.NUMERIC


def caret_excerpt(text: str, start: int, end: int, width: int = 72) -> list[str]:
    """Two lines: a window of ``text`` around ``start`` and ``^`` marks under ``[start, end)``.

    Offsets count the user's characters. Invisible characters (controls, bidirectional and
    zero-width marks, combining marks) are shown as a space, so the echo cannot reorder or
    hide anything; a wide character (full-width, CJK) takes two columns, and so do its marks.
    """
    text = "".join(" " if _invisible(c) else c for c in text)
    start = max(0, min(start, len(text)))
    end = max(start + 1, min(end, len(text) + 1))
    left = max(0, min(start - width // 2, len(text) - width))
    right = min(len(text), left + width)
    window = text[left:right]
    prefix = "..." if left > 0 else ""
    suffix = "..." if right < len(text) else ""
    pad = _columns(text[left:start])
    marks = max(1, _columns(text[start : min(end, right)]) + max(0, min(end, right + 1) - max(start, right)))
    return [
        f"  {prefix}{window}{suffix}",
        "  " + " " * (len(prefix) + pad) + "^" * marks,
    ]


def _invisible(char: str) -> bool:
    return not char.isprintable() or unicodedata.category(char) in ("Mn", "Me", "Cf")


def _columns(text: str) -> int:
    """Terminal columns of ``text`` (after invisible characters became spaces)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'sin'?)`` or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff) or difflib.get_close_matches(
        name.lower(), list(known), n=1, cutoff=cutoff
    )
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(names: Iterable[str]) -> str:
    """``x, y`` for a message, or ``no variables``."""
    names = list(names)
    return ", ".join(names) if names else "no variables"
