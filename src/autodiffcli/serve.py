"""``python -m autodiffcli.serve [IDLE_S]``: the server process, with the command-line app passed in.

A composition root: ``autodiff server start`` detaches this; the daemon and its workers
run ``cli`` for each request without importing it themselves.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    idle_text = sys.argv[1] if len(sys.argv) > 1 else None
    _reap_the_server()
    from .cli import cli
    from .server.daemon import IDLE_S, serve

    idle = float(idle_text) if idle_text is not None else float(os.environ.get("AUTODIFF_SERVER_IDLE", IDLE_S))
    serve(cli, idle)
    # the socket is removed and the workers ended: skip TensorFlow's interpreter teardown
    # (about a second), so that `server stop`, which waits for this pid to go, returns soon
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _reap_the_server() -> None:
    """Fork; the server runs in the child, and this process only waits for it and exits with it.

    A detached server is adopted by init, and an init that reaps late (a second, in some
    sandboxes) or never (PID 1 of a container without one) leaves its pid a zombie that
    ``kill -0`` still finds after it has exited: ``server stop``, which returns once the pid
    is gone, would wait for init. Its own parent reaps it at once. The fork comes before any
    import that starts threads.
    """
    child = os.fork()
    if child == 0:
        return
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:  # pragma: no cover - retried by Python since 3.5
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)  # killed by a signal: 128 + its number, as shells say


if __name__ == "__main__":
    main()
