"""The console script: the warm server if one runs, else the ordinary in-process CLI.

A composition root: it is the one module that knows both the client (standard library
only, asked first) and the command line (imported only when the server cannot serve).
"""

from __future__ import annotations

import sys
from typing import NoReturn

from .server.client import run_remote


def main() -> NoReturn:
    code = run_remote(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli import main as cold

    cold()
