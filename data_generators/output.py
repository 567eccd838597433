"""Writing record streams to a file: JSONL or CSV, atomically, with a plain progress line on stderr.

Records are serialised with orjson and written in batches; a generator that renders its own JSON lines
(the dossier generator's fast path) hands over ready batches of lines to :func:`write_jsonl_batches`. A regular
file appears under its name only when complete (written to a temporary file in the same folder, then renamed),
so a failed or interrupted run (an exception, Ctrl-C or SIGTERM) never leaves a partial file behind. A target that
exists and is not a regular file (``/dev/null``, a FIFO, a terminal) is written directly and never replaced;
``-`` means standard output. CSV columns are given by the caller (the contract's property order); nested
values (lists, objects) are JSON in their cell.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from haicap.errors import HaicapError

__all__ = ["FORMATS", "STDOUT", "Progress", "is_special_target", "write_jsonl_batches", "write_records"]

FORMATS = ("jsonl", "csv")
#: The ``path`` (a ``str``, not a ``Path``) that means standard output, as in most command-line tools.
STDOUT = "-"
_BATCH = 2000


class Progress:
    """``label: 41% 410,000/1,000,000 123,456 rec/s`` on stderr: one line redrawn 4 times a second on a terminal,
    a whole line every 5 s elsewhere (log files and CI keep readable lines)."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.perf_counter()
        self._last = 0.0
        self._open_line = False  # a line without its newline is on the stream
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self._last < (0.25 if self._tty else 5.0):
            return
        self._last = now
        rate = done / max(now - self.started, 1e-9)
        percent = 100 * done // max(self.total, 1)
        line = f"{self.label}: {percent:3d}% {done:,}/{self.total:,} {rate:,.0f} rec/s"
        if self._tty:  # redrawn in place
            self.stream.write(f"\r{line}" + ("\n" if final else ""))
            self._open_line = not final
        else:  # a log file or CI: whole lines, one every 5 s
            self.stream.write(f"{line}\n")
        self.stream.flush()

    def abandon(self) -> None:
        """End an unfinished progress line, so that an error message that follows starts on its own line."""
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def write_records(
    path: Path | str,
    records: Iterable[dict[str, Any]],
    total: int,
    fmt: str = "jsonl",
    columns: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``records`` to ``path``; returns how many were written. Raises HaicapError naming the path."""
    if fmt not in FORMATS:
        raise HaicapError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if fmt == "csv" and not columns:
        raise HaicapError("CSV output needs its columns")
    if fmt == "jsonl":
        return _write_atomically(path, lambda fh: _write_jsonl(fh, records, progress), progress)
    return _write_atomically(path, lambda fh: _write_csv(fh, records, columns or (), progress), progress)


def write_jsonl_batches(
    path: Path | str, batches: Iterable[tuple[int, bytes]], progress: Progress | None = None
) -> int:
    """Write (record count, ``\\n``-terminated JSON lines) batches atomically; returns the number of records."""

    def write(fh: IO[bytes]) -> int:
        written = 0
        for count, lines in batches:
            fh.write(lines)
            written += count
            if progress:
                progress.update(written)
        return written

    return _write_atomically(path, write, progress)


def is_special_target(path: Path | str) -> bool:
    """True for standard output (``"-"``) and for an existing target that is not a regular file or folder."""
    if isinstance(path, str) and path == STDOUT:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_atomically(path: Path | str, write: Callable[[IO[bytes]], int], progress: Progress | None) -> int:
    """Run ``write`` on a temporary file next to ``path``, then rename it; on any failure remove it.

    Standard output and special files (devices, FIFOs) are written directly: renaming onto them would replace
    the device node or the pipe with a regular file."""
    try:
        with _terminate_as_exit():
            if isinstance(path, str) and path == STDOUT:
                written = _write_stdout(write)
            elif is_special_target(path):
                written = _write_special(Path(path), write)
            else:
                written = _write_regular(Path(path), write)
    except BaseException:
        if progress:
            progress.abandon()
        raise
    if progress:
        progress.update(written, final=True)
    return written


def _write_regular(target: Path, write: Callable[[IO[bytes]], int]) -> int:
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise HaicapError(f"cannot write {target}: it is a directory")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise HaicapError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            written = write(fh)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise HaicapError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return written


def _write_special(target: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Write straight into a device or FIFO (opening a FIFO waits for its reader, as ``cat > fifo`` does)."""
    try:
        with open(target, "wb") as fh:  # the flush on close is inside the try: ENOSPC (/dev/full) may surface there
            return write(fh)
    except OSError as exc:
        raise HaicapError(f"cannot write {target}: {exc.strerror or exc}") from None


def _write_stdout(write: Callable[[IO[bytes]], int]) -> int:
    """Write to standard output; a closed pipe (``| head``) is left to the CLI, other errors name the stream."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        written = write(out)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise HaicapError(f"cannot write standard output: {exc.strerror or exc}") from None
    return written


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While writing, turn SIGTERM/SIGHUP into SystemExit so the ``finally``/``except`` clean-up runs.

    Only a default (process-killing) disposition is replaced, only in the main thread (signal handlers can be
    set nowhere else), and the previous handlers are restored afterwards."""
    installed: list[tuple[int, Any]] = []
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                installed.append((signum, signal.signal(signum, _raise_exit)))
    try:
        yield
    finally:
        for signum, previous in installed:
            signal.signal(signum, previous)


def _write_jsonl(fh: IO[bytes], records: Iterable[dict[str, Any]], progress: Progress | None) -> int:
    dumps = orjson.dumps
    batch: list[bytes] = []
    written = 0
    for record in records:
        batch.append(dumps(record))
        if len(batch) == _BATCH:
            batch.append(b"")
            fh.write(b"\n".join(batch))
            written += _BATCH
            batch = []
            if progress:
                progress.update(written)
    if batch:
        batch.append(b"")
        fh.write(b"\n".join(batch))
        written += len(batch) - 1
    return written


def _write_csv(
    fh: IO[bytes], records: Iterable[dict[str, Any]], columns: Sequence[str], progress: Progress | None
) -> int:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    written = 0
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
        written += 1
        if progress and written % _BATCH == 0:
            progress.update(written)
    text.flush()
    text.detach()
    return written
