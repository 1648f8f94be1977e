"""Points for ``grad --at-file``: a file or stdin, read as a stream of chunks under budgets.

Memory is bounded by the chunk size and the line budget, never by the input: the file is
read in pieces of raw bytes, each piece is checked as it arrives (NUL bytes, line length,
column and line counts), and complete lines are handed on a chunk at a time as one array
per chunk. No ``readline()`` without a size and no ``read()`` of a whole file, so
``/dev/zero``, a line without an end, or an endless pipe is refused within its budget.

Three formats, chosen by the first non-blank line: CSV with a header naming the
variables (a column left out is 0), bare numbers (one variable), or ``x=1,y=2`` lines.
Numbers of CSV and bare lines are parsed by numpy's C reader; ``x=...`` values may be
constant expressions such as ``pi/2``.
"""

from __future__ import annotations

import codecs
import io
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

import numpy as np

from .errors import UsageError, listing
from .settings import Problem, parse_point, plus_zero, unheld, unheld_in

OPTION = "--at-file"


class BadLine(UsageError):
    """A line of the file that is refused, with its number and the points of the lines
    before it that were not handed on yet (they are, before the error is raised)."""

    def __init__(self, message: str, line: int, rows: np.ndarray | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.rows = rows


@dataclass(frozen=True)
class PointLimits:
    """Budgets on a points file (the README's budget table lists them)."""

    max_line_bytes: int = 65_536  # one line, its end excluded
    max_columns: int = 1_000  # values (or names) on one line
    max_lines: int = 100_000_000  # lines in the file, blank ones included (--max-lines)


POINT_LIMITS = PointLimits()
PIECE_BYTES = 1 << 18  # one read from the file: every budget is checked on each
CHUNK_BYTES = 1 << 22  # complete lines handed on at a time (4 MiB) ...
CHUNK_LINES = 1 << 18  # ... and at most this many: memory per chunk is bounded by both


class PointReader:
    """Chunks of points (one array each: rows are points, columns variables) from one file.

    ``bytes_read`` and ``size`` (None for a pipe) are there for a progress bar.
    """

    def __init__(
        self,
        path: str,
        names: Sequence[str],
        limits: PointLimits = POINT_LIMITS,
        chunk_bytes: int | None = None,
        chunk_lines: int | None = None,
        piece_bytes: int | None = None,
        problem: Problem | None = None,
    ) -> None:
        self.path = path
        self.names = list(names)
        self.limits = limits
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.chunk_lines = chunk_lines or CHUNK_LINES
        self.piece_bytes = piece_bytes or PIECE_BYTES
        self.where = "stdin" if path == "-" else repr(path)
        self.bytes_read = 0
        self.size: int | None = None
        self.points = 0
        self._lines_done = 0  # newlines seen so far
        self._line_len = 0  # bytes of the line being read, so far
        self.problem = problem  # to say what the expression became, when a name is missing
        self._parse: Callable[[str, int], np.ndarray] | None = None  # set by the first non-blank line
        self._columns: list[str] = []
        self.stopping = False  # the last chunk handed on ends before a bad line: the error comes next

    # ------------------------------------------------------------ the public stream

    def chunks(self) -> Iterator[np.ndarray]:
        """Non-empty arrays of points, in file order; raises UsageError naming the line.

        Every point on a line before a bad one is handed on first, so that what is written
        for them is the whole of the output up to the bad line.
        """
        stream = self._open()
        try:
            for block, first_line in self._blocks(stream):
                try:
                    chunk = self._block_points(block, first_line)
                except BadLine as bad:
                    if bad.rows is not None and len(bad.rows):
                        self.points += len(bad.rows)
                        self.stopping = True
                        yield bad.rows
                    raise UsageError(bad.message) from None
                if len(chunk):
                    self.points += len(chunk)
                    yield chunk
        finally:
            if stream is not _stdin():
                stream.close()
        if self.points == 0:
            raise UsageError(f"{OPTION}: {self.where} has no points")

    def _block_points(self, block: bytes, first_line: int) -> np.ndarray:
        """The points of a block of whole lines; a BadLine carries those before the bad line."""
        try:
            text = self._decode(block, first_line)
        except BadLine as bad:
            good = _lines_before(block, bad.line - first_line)
            bad.rows = self._points(self._decode(good, first_line), first_line) if good else None
            raise
        return self._points(text, first_line)

    # ------------------------------------------------------------ bytes -> blocks of whole lines

    def _open(self) -> BinaryIO:
        if self.path == "-":
            return _stdin()
        try:
            stream = open(self.path, "rb")  # noqa: SIM115 (closed by chunks())
        except OSError as err:
            raise UsageError(f"{OPTION}: cannot read {self.path!r}: {err.strerror or err}") from None
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode):
            self.size = info.st_size
        return stream

    def _blocks(self, stream: BinaryIO) -> Iterator[tuple[bytes, int]]:
        """Blocks of whole lines, with the number of their first line. A block is handed on
        once it holds ``chunk_lines`` lines or ``chunk_bytes`` bytes, so it holds at most
        that and one more piece."""
        read = getattr(stream, "read1", stream.read)
        pending: list[bytes] = []
        pending_size = pending_lines = 0
        next_line = 1  # number of the first line not yet handed on
        while True:
            piece = read(self.piece_bytes)
            if not piece:
                break
            self.bytes_read += len(piece)
            try:
                ends = self._check(piece)
            except BadLine as bad:  # the whole lines before the bad one are handed on first
                good = _lines_before(b"".join([*pending, piece]), bad.line - next_line)
                if good:
                    self.stopping = True
                    yield good, next_line
                raise
            pending.append(piece)
            pending_size += len(piece)
            pending_lines += ends
            if not ends or (pending_lines < self.chunk_lines and pending_size < self.chunk_bytes):
                continue
            data = b"".join(pending)
            cut = data.rindex(b"\n") + 1
            rest = data[cut:]  # the unfinished line: no line end in it
            yield data[:cut], next_line
            next_line += pending_lines
            pending = [rest] if rest else []
            pending_size, pending_lines = len(rest), 0
        if pending:
            yield b"".join(pending), next_line

    def _check(self, piece: bytes) -> int:
        """Every budget, on each piece as it arrives: NUL bytes, line length, columns, lines.
        Returns the number of line ends in the piece."""
        limits, longest = self.limits, self.limits.max_line_bytes
        nul = piece.find(b"\0")
        if nul >= 0:
            line = self._lines_done + piece.count(b"\n", 0, nul) + 1
            raise self._error(line, "a NUL byte: this is a binary file, not text")
        ends = piece.count(b"\n")
        first, last = piece.find(b"\n"), piece.rfind(b"\n")
        tail = len(piece) - last - 1  # the unfinished line at the end (all of it when ends == 0)
        if (
            self._line_len + (first if ends else len(piece)) > longest
            or (ends and tail > longest)
            or (ends > 1 and last - first - 1 > longest and not _ends_every(piece, first + 1, last, longest // 2))
        ):
            self._refuse_long_line(piece)
        self._lines_done += ends
        self._line_len = tail if ends else self._line_len + len(piece)
        lines = self._lines_done + (1 if self._line_len else 0)
        if lines > limits.max_lines:
            raise self._error(limits.max_lines + 1, f"more than the limit of {limits.max_lines:,} lines (--max-lines)")
        return ends

    def _refuse_long_line(self, piece: bytes) -> None:
        """Find the line of ``piece`` longer than the budget, if there is one, and refuse it."""
        limits = self.limits
        ends = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == 10)
        lengths = np.empty(len(ends) + 1, dtype=np.int64)
        lengths[0] = self._line_len + (ends[0] if len(ends) else len(piece))
        if len(ends):
            lengths[1:-1] = np.diff(ends) - 1
            lengths[-1] = len(piece) - ends[-1] - 1
        at = int(np.argmax(lengths))
        if lengths[at] <= limits.max_line_bytes:
            return
        line = self._lines_done + at + 1
        start = 0 if at == 0 else int(ends[at - 1]) + 1
        seen = piece[start : start + limits.max_line_bytes + 1]
        if seen.count(b",") + 1 > limits.max_columns:  # the more telling budget of the two
            raise self._error(line, f"more than the limit of {limits.max_columns:,} columns")
        raise self._error(line, f"the line is longer than the limit of {limits.max_line_bytes:,} bytes")

    def _decode(self, block: bytes, first_line: int) -> str:
        if first_line == 1 and block.startswith(codecs.BOM_UTF8):
            block = block[len(codecs.BOM_UTF8) :]
        try:
            return block.decode("utf-8")
        except UnicodeDecodeError as err:
            line = first_line + block.count(b"\n", 0, err.start)
            raise self._error(line, f"not a UTF-8 text file (byte 0x{block[err.start]:02x})") from None

    def _error(self, line: int, what: str) -> BadLine:
        return BadLine(f"{OPTION} {self.where} line {line:,}: {what}", line)

    # ------------------------------------------------------------ text -> points

    def _points(self, text: str, first_line: int) -> np.ndarray:
        if self._parse is None:
            text, first_line = self._header(text, first_line)
            if self._parse is None:  # nothing but blank lines so far
                return np.zeros((0, len(self.names)))
        return self._parse(text, first_line)

    def _header(self, text: str, first_line: int) -> tuple[str, int]:
        """Find the first non-blank line and choose the format from it.

        Returns the text that still holds points (from the header's next line on, or from
        the first line itself when it is already a point) and the number of its first line.
        """
        start, line = 0, first_line
        while start < len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            head = text[start:end].strip()
            if head:
                break
            start, line = end + 1, line + 1
        else:
            return "", line
        self._check_columns(head, line)
        if "=" in head:
            self._parse = self._assignments
            return text[start:], line
        header = [c.strip() for c in head.split(",")]
        if all(_is_number(c) for c in header):
            if len(self.names) != 1 or len(header) != 1:
                raise self._error(line, f"the first line must name the columns ({','.join(self.names)})")
            self._columns = list(self.names)
            self._parse = self._numbers
            return text[start:], line
        for c in header:
            if c not in self.names:
                why = self.problem.absent(c, self.names) if self.problem else f" (it has {listing(self.names)})"
                raise self._error(line, f"column {c!r} is not a variable of the expression{why}")
        for c in header:
            if header.count(c) > 1:
                raise self._error(line, f"column {c!r} is named twice")
        self._columns = header
        self._parse = self._numbers
        return text[end + 1 :], line + 1

    def _check_columns(self, line_text: str, line: int) -> None:
        if line_text.count(",") + 1 > self.limits.max_columns:
            raise self._error(line, f"more than the limit of {self.limits.max_columns:,} columns")

    def _numbers(self, text: str, first_line: int) -> np.ndarray:
        """CSV rows or bare numbers: numpy's C reader, and on any doubt a line-by-line pass
        that finds the first bad line (numpy reports rows, not lines)."""
        columns = self._columns
        data = None
        if text.strip():
            try:
                # bytes, not a StringIO (four bytes a character): lines end at "\n" only, as they are counted
                rows = io.BytesIO(text.encode())
                data = np.loadtxt(rows, delimiter=",", ndmin=2, dtype=np.float64, comments=None)
            except ValueError:
                data = None
            if data is not None and (
                data.shape[1] != len(columns)
                or not np.isfinite(data).all()
                or (self.dtype is not None and unheld_in(data, self.dtype).any())
            ):
                data = None
            if data is None:
                try:
                    data = self._numbers_line_by_line(text, first_line)
                except BadLine as bad:
                    bad.rows = None if bad.rows is None else self._in_order(bad.rows)
                    raise
        else:
            data = np.zeros((0, len(columns)))
        return self._in_order(plus_zero(data))

    def _in_order(self, data: np.ndarray) -> np.ndarray:
        """Columns of the file -> one column per variable, in the expression's order (0 if absent)."""
        columns = self._columns
        if columns == self.names:
            return data
        out = np.zeros((len(data), len(self.names)))
        for j, c in enumerate(columns):
            out[:, self.names.index(c)] = data[:, j]
        return out

    @property
    def dtype(self) -> str | None:
        return self.problem.dtype if self.problem else None

    def _numbers_line_by_line(self, text: str, first_line: int) -> np.ndarray:
        columns = self._columns
        rows: list[list[float]] = []
        try:
            for offset, raw in enumerate(text.split("\n")):
                if raw.strip():
                    rows.append(self._number_row(raw, first_line + offset))
        except BadLine as bad:
            bad.rows = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))
            raise
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))

    def _number_row(self, raw: str, line: int) -> list[float]:
        columns = self._columns
        self._check_columns(raw, line)
        fields = raw.split(",")
        if len(fields) != len(columns):
            raise self._error(line, f"expected {len(columns)} values ({','.join(columns)}), found {len(fields)}")
        row = []
        for name, field in zip(columns, fields, strict=True):
            value = field.strip()
            if not value:
                raise self._error(line, f"no value for {name}")
            try:
                number = float(value)
            except ValueError:
                raise self._error(line, f"{value!r} is not a number") from None
            if not np.isfinite(number):
                raise self._error(line, f"{value!r} is not a finite number")
            why = unheld(number, self.dtype) if self.dtype else None
            if why:
                raise self._error(line, f"{name} = {value} {why}")
            row.append(plus_zero(number))
        return row

    def _assignments(self, text: str, first_line: int) -> np.ndarray:
        rows: list[list[float]] = []
        for offset, raw in enumerate(text.split("\n")):
            if raw.strip():
                line = first_line + offset
                try:
                    self._check_columns(raw, line)
                    where = f"{OPTION} {self.where} line {line:,}"
                    point = parse_point(raw, self.names, where, problem=self.problem, file=True)
                except UsageError as err:
                    done = np.array(rows, dtype=np.float64).reshape(len(rows), len(self.names))
                    raise BadLine(err.message, line, done) from None
                rows.append([point[n] for n in self.names])
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.names))


def batches(given: np.ndarray, reader: PointReader | None) -> Iterator[np.ndarray]:
    """The points given on the command line, then the file's chunks, in order.

    The file's first chunk is read now, so that an error in it (or an empty file) is
    reported before anything is computed or written. After it, a bad line stops the run
    once the points of every line before it are handed on.
    """
    head = [given] if len(given) else []
    if reader is None:
        return iter(head)
    chunks = reader.chunks()
    first = next(chunks)  # an empty file raises UsageError here
    if reader.stopping:  # the first chunk holds a bad line: refused before any output
        next(chunks)
    return itertools.chain(head, [first], chunks)


def _ends_every(data: bytes, lo: int, hi: int, block: int) -> bool:
    """Whether every aligned stretch of ``block`` bytes of ``data[lo:hi]`` holds a line end.

    A cheap test (each search stops at the first line end): when it holds, no line in
    there is longer than ``2 * block``, since such a line covers a whole stretch.
    """
    block = max(block, 1)
    return all(data.find(b"\n", at, at + block) >= 0 for at in range(lo, hi - block + 1, block))


def _lines_before(data: bytes, count: int) -> bytes:
    """The first ``count`` whole lines of ``data``, their line ends included."""
    if count <= 0:
        return b""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return data[: int(ends[count - 1]) + 1] if len(ends) >= count else b""


def _stdin() -> BinaryIO:
    """Standard input as bytes; a stand-in without a ``buffer`` is bytes already."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer if buffer is not None else cast(BinaryIO, sys.stdin)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- data tables for fit

DATA_OPTION = "--data"
NIST_HEAD = "NIST/ITL StRD"  # a NIST StRD file is read as it is: its data block, named by its "Data:" line
PRECISE_ROWS = 200_000  # up to this many rows the table is also read in long double
EXACT_ROWS = 2_000  # up to this many rows the table also keeps each value's text


@dataclass(frozen=True)
class Table:
    """A data file's columns: float64 values, the line of each row, and, for a table of at
    most PRECISE_ROWS rows, the same values read in long double from their text."""

    where: str  # "'file.csv'" or "stdin", for messages
    names: tuple[str, ...]
    values: np.ndarray  # (rows, columns) float64
    lines: np.ndarray  # (rows,) line number of each row in the file
    precise: np.ndarray | None  # (rows, columns) long double, or None
    cells: list[list[str]] | None = None  # each value's own text, for a table of at most EXACT_ROWS rows

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


class TableReader(PointReader):
    """The bytes, budgets and line-numbered errors of ``--at-file``, read as a table: a
    header row naming the columns (or ``--columns``), CSV, TSV or whitespace-separated,
    ``#`` comments, ``-`` for stdin."""

    def __init__(self, path: str, columns: Sequence[str] | None = None, limits: PointLimits = POINT_LIMITS) -> None:
        super().__init__(path, list(columns or ()), limits)
        self.given = list(columns) if columns else None
        self._delimiter: str | None = None
        self._rows: list[np.ndarray] = []
        self._row_lines: list[np.ndarray] = []
        self._texts: list[bytes] | None = []  # the rows' text, while the table is small
        self._nist = False  # inside the description of a NIST StRD file, before its data

    def _open(self) -> BinaryIO:
        try:
            return super()._open()
        except UsageError as err:
            raise UsageError(err.message.replace(OPTION, DATA_OPTION, 1)) from None

    def _error(self, line: int, what: str) -> BadLine:
        return BadLine(f"{DATA_OPTION} {self.where} line {line:,}: {what}", line)

    def read(self) -> Table:
        stream = self._open()
        try:
            for block, first_line in self._blocks(stream):
                self._table_block(self._decode(block, first_line), first_line)
        finally:
            if stream is not _stdin():
                stream.close()
        if not self._rows or sum(len(r) for r in self._rows) == 0:
            raise UsageError(f"{DATA_OPTION}: {self.where} has no rows of data")
        values = np.concatenate(self._rows)
        lines = np.concatenate(self._row_lines)
        precise = cells = None
        if self._texts is not None:
            text = b"\n".join(self._texts)
            precise = np.loadtxt(io.BytesIO(text), delimiter=self._delimiter, ndmin=2, dtype=np.longdouble).reshape(
                values.shape
            )
            if len(values) <= EXACT_ROWS:
                cells = [self._split(line) for line in text.decode().split("\n") if line.strip()]
                cells = cells if len(cells) == len(values) else None
        return Table(self.where, tuple(self.names), values, lines, precise, cells)

    def _table_block(self, text: str, first_line: int) -> None:
        if self.names and not self._nist and "#" not in text and self._whole_block(text, first_line):
            return
        raw = text.split("\n")
        if "#" in text:
            raw = [line.split("#", 1)[0] for line in raw]
        keep = [k for k, line in enumerate(raw) if line.strip()]
        if not keep:
            return
        if not self.names and not self._nist and raw[keep[0]].strip().startswith(NIST_HEAD):
            self._nist = True
        if self._nist:
            keep = self._nist_description(raw, keep, first_line)
            if not keep:
                return
        if self._delimiter is None and not self.names:
            keep = self._table_header(raw, keep, first_line)
            if not keep:
                return
        body = [raw[k].strip() for k in keep]
        numbers = np.asarray(keep, dtype=np.int64) + first_line
        data = self._parse_rows(body, numbers)
        self._rows.append(data)
        self._row_lines.append(numbers)
        if self._texts is not None:
            if sum(len(r) for r in self._rows) > PRECISE_ROWS:
                self._texts = None
            else:
                self._texts.append("\n".join(body).encode())

    def _whole_block(self, text: str, first_line: int) -> bool:
        """The common case, fast: a block of rows without comments or blank lines, read by
        NumPy's C reader in one call. False (nothing read) when the block needs the line pass."""
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        try:
            data = np.loadtxt(
                io.BytesIO(text.encode()), delimiter=self._delimiter, ndmin=2, dtype=np.float64, comments=None
            )
        except ValueError:
            return False
        if data.shape != (lines, len(self.names)):
            return False
        self._rows.append(data)
        self._row_lines.append(np.arange(first_line, first_line + lines, dtype=np.int64))
        if self._texts is not None:
            if sum(len(r) for r in self._rows) > PRECISE_ROWS:
                self._texts = None
            else:
                self._texts.append(text.strip("\n").encode())
        return True

    def _nist_description(self, raw: list[str], keep: list[int], first_line: int) -> list[int]:
        """Skip a NIST StRD file's description up to its ``Data:  y  x`` line, which names
        the columns; return the lines after it."""
        for at, k in enumerate(keep):
            fields = raw[k].split()
            if fields[0] == "Data:" and len(fields) > 1 and all(f.isidentifier() for f in fields[1:]):
                self._nist = False
                self._delimiter = None
                self.names = fields[1:]
                return keep[at + 1 :]
        return []

    def _table_header(self, raw: list[str], keep: list[int], first_line: int) -> list[int]:
        head = raw[keep[0]].strip()
        line = first_line + keep[0]
        self._delimiter = "," if "," in head else "\t" if "\t" in head else None
        fields = self._split(head)
        if len(fields) > self.limits.max_columns:
            raise self._error(line, f"more than the limit of {self.limits.max_columns:,} columns")
        numeric = all(_is_number(f) for f in fields)
        if self.given is not None:
            if not numeric:
                raise self._error(line, "the file has a header row naming its columns; leave out --columns")
            if len(fields) != len(self.given):
                raise self._error(
                    line,
                    f"--columns names {len(self.given)} columns ({','.join(self.given)}), the line has {len(fields)}",
                )
            self.names = list(self.given)
            return keep
        if numeric:
            raise self._error(
                line, "the first line must name the columns (a header row such as y,x), or give --columns"
            )
        for f in fields:
            if not f.isidentifier() or f.startswith("_"):
                raise self._error(
                    line, f"column name {f!r} is not a name (letters, digits and _, starting with a letter)"
                )
            if fields.count(f) > 1:
                raise self._error(line, f"column {f!r} is named twice")
        self.names = fields
        return keep[1:]

    def _split(self, line: str) -> list[str]:
        return [f.strip() for f in line.split(self._delimiter)] if self._delimiter else line.split()

    def _parse_rows(self, body: list[str], numbers: np.ndarray) -> np.ndarray:
        width = len(self.names)
        try:
            data = np.loadtxt(
                io.BytesIO("\n".join(body).encode()),
                delimiter=self._delimiter,
                ndmin=2,
                dtype=np.float64,
                comments=None,
            )
            if data.shape == (len(body), width):
                return data
        except ValueError:
            pass
        for text, line in zip(body, numbers, strict=True):
            fields = self._split(text)
            if len(fields) > self.limits.max_columns:
                raise self._error(int(line), f"more than the limit of {self.limits.max_columns:,} columns")
            if len(fields) != width:
                raise self._error(int(line), f"expected {width} values ({','.join(self.names)}), found {len(fields)}")
            for name, field in zip(self.names, fields, strict=True):
                if not field:
                    raise self._error(int(line), f"no value for {name}")
                if not _is_number(field):
                    raise self._error(int(line), f"{field!r} is not a number (column {name})")
        raise self._error(int(numbers[0]), "cannot read the values")
