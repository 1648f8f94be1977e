"""``python -m autodiffcli.serve [IDLE_S]``: the server process, with the command-line app passed in.

A composition root: ``autodiff server start`` detaches this; the daemon and its workers
run ``cli`` for each request without importing it themselves.
"""

from __future__ import annotations

import os
import sys

from .cli import cli
from .server.daemon import IDLE_S, serve


def main() -> None:
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else float(os.environ.get("AUTODIFF_SERVER_IDLE", IDLE_S))
    serve(cli, idle)
    # the socket is removed and the workers ended: skip TensorFlow's interpreter teardown
    # (about a second), so that `server stop`, which waits for this pid to go, returns soon
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
