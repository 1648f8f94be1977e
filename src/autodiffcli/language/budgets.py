"""The budgets every input is parsed under: sizes, depth, and a wall-clock limit (time_limit)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from ..errors import BudgetError


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
    """Is a ``__del__``, a garbage-collector callback (``gc.callbacks``) or a weak reference's
    callback running? Python swallows what any of them raises. The standard library's weak
    references (WeakKeyDictionary's ``remove``, ``weakref.finalize``) run their callbacks
    through ``weakref.py`` and ``_weakrefset.py``: an alarm anywhere in those waits for the
    next (RETRY_S)."""
    import _weakrefset
    import gc
    import weakref

    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    weak = {weakref.__file__, _weakrefset.__file__}
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code in callbacks or code.co_filename in weak:
            return True
        frame = frame.f_back
    return False
