"""``grad`` over a stream of points: computed and written batch by batch.

Memory is bounded by one batch: plain lines and JSON results are written as each batch is
done, and a table keeps only the points it shows. Output is in input order. A batch is
written whole, so when a later line turns out bad, what was written stays valid (plain:
whole lines; JSON: the document is ended, with an ``error`` key).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from .calculus.derivatives import Derivatives
from .errors import AutodiffError
from .grad import GradChunk, GradReport, GradRequest, GradRun
from .runtime import resident_bytes

KEEP = 16  # first points kept for a table (8 shown) and a picture (10 marked)


class Progress(Protocol):
    def advance(self, points: int) -> None: ...


def grad_stream(
    req: GradRequest,
    batches: Iterable[np.ndarray],
    fmt: str,
    write: Callable[[Any], None],
    progress: Progress | None = None,
    keep: int = KEEP,
) -> GradReport:
    """Compute every batch and write it in ``fmt`` (``json`` or ``plain``; for ``table``
    nothing is written and the report keeps the first ``keep`` points for it).

    The returned report holds the first points' results, the symbolic derivatives, the
    warnings of the whole run and the number of points.
    """
    from .output import serialize

    write = _whole(write)
    run = GradRun(req)
    dtype = req.problem.dtype
    writer = serialize.GradJson(run, write) if fmt == "json" else None
    head: list[GradChunk] = []
    kept = 0
    resident = Resident()
    try:
        for points in batches:
            batch = run.batch(points)
            if kept < keep:
                head.append(batch)
                kept += len(points)
            if writer is not None:
                writer.batch(batch)
            elif fmt == "plain":
                write(serialize.grad_plain_batch(batch, dtype))
            if progress is not None:
                progress.advance(run.count)
            resident.check()
    except (AutodiffError, KeyboardInterrupt) as err:
        if writer is not None and writer.started:
            writer.finish(head[0].result, err.message if isinstance(err, AutodiffError) else "interrupted")
        raise
    points, result = _first(head, keep)
    if writer is not None:
        writer.finish(result)
    shown = GradRequest(req.problem, points, req.wrt, req.watch, req.order, req.check)
    verdicts = [v for b in head for v in b.verdicts][:keep]
    checks = [c for b in head for c in b.checks][:keep]
    return GradReport(shown, result, run.symbolic, run.warnings, run.count, run.extent, verdicts, checks)


def _whole(write: Callable[[Any], None]) -> Callable[[Any], None]:
    """``write``, with Ctrl-C held back until the data is all out: an interrupt lands
    between batches, never inside one, so what was written stays valid."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or threading.current_thread() is not threading.main_thread():
        return write

    def whole(data: Any) -> None:
        held = block(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            write(data)
        finally:
            block(signal.SIG_SETMASK, held)

    return whole


def _first(batches: list[GradChunk], n: int) -> tuple[np.ndarray, Derivatives]:
    """The first ``n`` points of a run and their results, as one batch."""
    points = np.concatenate([b.points for b in batches])[:n]

    def cut(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)[:n]

    rs = [b.result for b in batches]
    first = rs[0]
    return points, Derivatives(
        value=cut([r.value for r in rs]),
        gradient={k: None if g is None else cut([r.gradient_by(k) for r in rs]) for k, g in first.gradient.items()},
        hessian={a: {b: cut([r.hessian[a][b] for r in rs]) for b in row} for a, row in first.hessian.items()},
        higher=[cut([r.higher[k] for r in rs]) for k in range(len(first.higher))],
    )


class Resident:
    """Keeps a long stream's resident memory near what its first chunk needed.

    Reading and computing chunk after chunk fragments glibc's heap: resident memory grows
    chunk by chunk though nothing is kept. When it has grown by ``slack`` since the first
    chunk, ``malloc_trim`` hands the free pages back. Trimming after every chunk would cost
    time (the pages are faulted in again), so it happens only once ``slack`` is reached.
    Where there is no glibc or no /proc, nothing is done.
    """

    def __init__(self, slack: int = 64 << 20) -> None:
        self.slack = slack
        self.base: int | None = None
        self._trim: Callable[[int], int] | None
        try:
            import ctypes

            self._trim = ctypes.CDLL(None).malloc_trim if resident_bytes() else None
        except (OSError, AttributeError, ValueError):
            self._trim = None

    def check(self) -> None:
        if self._trim is None:
            return
        rss = resident_bytes()
        if self.base is None:
            self.base = rss
        elif rss > self.base + self.slack:
            self._trim(0)
            self.base = max(self.base, resident_bytes() - self.slack // 2)  # what cannot be handed back is kept
