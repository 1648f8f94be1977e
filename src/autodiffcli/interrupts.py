"""Ctrl-C as a request, honoured where the work can stop cleanly. Standard library only.

Python turns SIGINT into a KeyboardInterrupt raised at whatever bytecode the main thread
runs next: inside TensorFlow's or Keras's Python code (a half-applied optimizer step, a
function call whose outputs are being wrapped), or in the middle of ``import tensorflow``,
which is then half-initialized for the rest of the process (a second import fails with
"already registered" errors, or the interpreter later exits by SIGINT instead of 130).
Within :func:`deferred`, Ctrl-C only sets a flag; the loop checks it between chunks of
steps, where variables, optimizer state and the step count agree, and a block that never
checks gets the KeyboardInterrupt when it ends. A second Ctrl-C raises at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Request:
    """Whether Ctrl-C was pressed inside a :func:`deferred` block."""

    def __init__(self) -> None:
        self.pressed = False

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed; call it where stopping leaves a consistent state."""
        if self.pressed:
            self.pressed = False
            raise KeyboardInterrupt

    def __repr__(self) -> str:
        return f"Request(pressed={self.pressed})"


@contextmanager
def deferred() -> Iterator[Request]:
    """Hold Ctrl-C back as a :class:`Request` for the block; raise it at ``check()`` or at the end.

    Only where Python's own handler is installed, in the main thread (a cold run, the warm
    server's worker during a request, click's test runner); anywhere else SIGINT is left as
    it is and the request is never pressed. A block inside another leaves Ctrl-C to the
    outer one.
    """
    request = Request()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield request
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if request.pressed:  # pressed again before the work reached a check: stop at once
            request.pressed = False
            signal.default_int_handler(signum, frame)
        request.pressed = True

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    request.check()
