"""Where the output goes: a file built atomically and resumably (``FileSink``) or stdout (``StreamSink``).

Files beside the output while a run is under way: ``<output>.part`` (the output so far, locked against a
second run), ``<output>.rejects.jsonl.part`` and ``<output>.progress.json`` (chunks done, input rows
consumed, bytes of both part files, the sha256 of what the consumed rows held). The output appears under its
name only when complete, and the part file's lock is held until it has; a resumed run checks that the input
still starts with the rows it consumed, cuts the part files back to the last complete chunk and goes on from
there, so the result equals that of an uninterrupted run byte for byte. Parquet output is kept as
length-prefixed Arrow IPC chunks in the part file and turned into one parquet file (one row group per chunk)
at the end. A failed run (over the reject limit) leaves its rejects file and nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import UsageError
from pipeline.predict.encode import LENGTH, Batch, Encoding, csv_header

PROGRESS_VERSION = 3  # 2: prefix_sha256; 3: documents hashed length-prefixed instead of by repr


def run_files(output: str | Path) -> dict[str, Path]:
    """The files a run on ``output`` writes beside it, by what they are: none of them may be its input."""
    return {
        "part file": Path(f"{output}.part"),
        "rejects file": Path(f"{output}.rejects.jsonl"),
        "rejects part file": Path(f"{output}.rejects.jsonl.part"),
        "progress file": Path(f"{output}.progress.json"),
        "progress temporary file": Path(f"{output}.progress.json.tmp"),
        "parquet temporary file": Path(f"{output}.tmp"),
    }


@dataclass
class Chunk:
    """Rows read from the input for one chunk: the documents to score and the rows rejected."""

    index: int
    consumed: int  # input rows (good and bad) consumed up to the end of this chunk
    batch: Batch = field(default_factory=Batch)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # {"line", "id", "reason"} per rejected row
    read: int = 0
    prefix_sha256: str = ""  # of the rows consumed up to the end of this chunk (see command.RowTrace)
    last: bool = False  # no row follows this chunk's (known when read one row ahead)


@dataclass
class Progress:
    """What a resumed run needs: chunks done, input rows consumed, part file lengths, counters."""

    fingerprint: str
    chunks: int = 0
    consumed: int = 0
    out_bytes: int = 0
    rejects_bytes: int = 0
    read: int = 0
    written: int = 0
    rejected: int = 0
    truncated: int = 0
    prefix_sha256: str = ""
    version: int = PROGRESS_VERSION

    def count(self, chunk: Chunk) -> None:
        """Add a written chunk to the counters."""
        self.read += chunk.read
        self.written += len(chunk.batch.ids)
        self.rejected += len(chunk.rejects)
        self.truncated += sum(chunk.batch.truncated)


class FileSink:
    """The output under construction: part files beside the output, a progress file, rename at the end."""

    def __init__(
        self, output: str, fmt: str, enc: Encoding, fingerprint: str, resume: bool, say: Callable
    ) -> None:
        self.output = Path(output)
        self.fmt, self.enc = fmt, enc
        files = run_files(output)
        self.part = files["part file"]
        self.rejects_path = files["rejects file"]
        self.rejects_part = files["rejects part file"]
        self.progress_path = files["progress file"]
        self.output.parent.mkdir(parents=True, exist_ok=True)
        # opened without truncating, and locked before anything is cut: one run per output at a time
        self.out = _open_locked(self.part)
        self.rejects = _open_for_update(self.rejects_part)
        try:
            state = self._resume(fingerprint, say) if resume else None
        except UsageError:
            self.abort()
            raise
        if state is None:
            state = self._start(fingerprint, resume, say)
        for fh, length in ((self.out, state.out_bytes), (self.rejects, state.rejects_bytes)):
            fh.truncate(length)
            fh.seek(length)
        self.state = state
        self._save()
        self.resumed = state.chunks

    def _start(self, fingerprint: str, resume: bool, say: Callable) -> Progress:
        """The progress of a fresh run (the part file holds the CSV header, if any)."""
        if self.progress_path.exists() and not resume:
            say(f"note: {self.progress_path} found: starting afresh (add --resume to continue that run)")
        state = Progress(fingerprint)
        if self.fmt == "csv":
            self.out.write(csv_header(self.enc))
        state.out_bytes = self.out.tell()
        return state

    def _resume(self, fingerprint: str, say: Callable) -> Progress | None:
        if not self.progress_path.exists():
            say(
                f"note: no interrupted run to resume for {self.output} ({self.progress_path} not found): starting afresh"
            )
            return None
        try:
            state = Progress(**json.loads(self.progress_path.read_text()))
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"--resume: {self.progress_path} is unreadable ({exc}); run without --resume"
            ) from None
        if state.version != PROGRESS_VERSION:
            raise UsageError(
                f"--resume: {self.progress_path} was written by another version of newstag; "
                "run without --resume"
            )
        if state.fingerprint != fingerprint:
            raise UsageError(
                f"--resume: {self.progress_path} belongs to a run with another input, model or options; "
                "repeat that run's options, or run without --resume to start afresh"
            )
        for path, length in ((self.part, state.out_bytes), (self.rejects_part, state.rejects_bytes)):
            if path.stat().st_size < length:
                raise UsageError(f"--resume: {path} is shorter than recorded; run without --resume")
        return state

    def _save(self) -> None:
        tmp = run_files(self.output)["progress temporary file"]
        tmp.write_text(json.dumps(asdict(self.state)))
        os.replace(tmp, self.progress_path)

    def write(self, chunk: Chunk, data: bytes) -> None:
        """Append one complete chunk (in order) and record it."""
        self.out.write(data)
        self.out.flush()
        if chunk.rejects:
            self.rejects.write(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk.rejects).encode()
            )
            self.rejects.flush()
        s = self.state
        s.chunks, s.consumed, s.prefix_sha256 = chunk.index + 1, chunk.consumed, chunk.prefix_sha256
        s.out_bytes, s.rejects_bytes = self.out.tell(), self.rejects.tell()
        s.count(chunk)
        self._save()

    def finish(self) -> str | None:
        """Turn the part files into the output (and the rejects file), then close and unlock; returns the
        rejects path or None. The part file stays locked until the output is in place (a second run on the
        same output is refused until then, and never opens this part file again)."""
        self.rejects.close()
        self.out.flush()
        if not _LOCKS:
            self.out.close()  # without locks (Windows) an open file cannot be renamed
        if self.fmt == "parquet":
            final = run_files(self.output)["parquet temporary file"]
            write_parquet(self.part, final, self.enc.arrow_schema())
            os.replace(final, self.output)
            self.part.unlink()
        else:
            os.replace(self.part, self.output)
        rejects = self._keep_rejects()
        self.progress_path.unlink(missing_ok=True)
        self.out.close()
        return rejects

    def fail(self) -> str | None:
        """End a run that failed (over the reject limit): no output under its name, the part and progress
        files removed, the rejects file kept; returns its path or None. Unlocks last."""
        self.rejects.close()
        if not _LOCKS:
            self.out.close()  # without locks (Windows) an open file cannot be removed
        self.part.unlink(missing_ok=True)
        rejects = self._keep_rejects()
        self.progress_path.unlink(missing_ok=True)
        self.out.close()
        return rejects

    def _keep_rejects(self) -> str | None:
        if self.state.rejected:
            os.replace(self.rejects_part, self.rejects_path)
            return str(self.rejects_path)
        self.rejects_part.unlink(missing_ok=True)
        self.rejects_path.unlink(missing_ok=True)  # a stale one from an earlier run of this output
        return None

    def abort(self) -> None:
        """Leave the part and progress files for --resume."""
        for fh in (self.out, self.rejects):
            if not fh.closed:
                fh.close()


def _open_for_update(path: Path) -> BinaryIO:
    """``path`` opened for reading and writing, created if missing, not truncated."""
    return open(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # closed by the sink


try:
    import fcntl

    _LOCKS = True
except ImportError:  # no POSIX locks (Windows): nothing to guard with
    _LOCKS = False


def _open_locked(path: Path) -> BinaryIO:
    """``path`` opened for update (created if missing, not truncated) under an exclusive lock.

    The lock is on the file open under ``path`` now: a file that another run renamed or removed between
    our open and our lock (it finished) is let go and ``path`` opened again.
    """
    while True:
        fh = _open_for_update(path)
        if not _LOCKS:
            return fh
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise UsageError(
                f"{path}: another run is writing this output; wait for it or choose another"
            ) from None
        if _same_inode(fh, path):
            return fh
        fh.close()


def _same_inode(fh: BinaryIO, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fh``."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fh.fileno())
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class StreamSink:
    """Output on stdout (JSONL or CSV, no resume); rejected rows are reported on stderr."""

    def __init__(self, fmt: str, enc: Encoding) -> None:
        if fmt == "parquet":
            raise UsageError("--output -: parquet cannot be streamed to stdout; give a file name")
        self.out = sys.stdout.buffer
        self.state = Progress("")
        self.resumed = 0
        if fmt == "csv":
            self.out.write(csv_header(enc))

    def write(self, chunk: Chunk, data: bytes) -> None:
        """Write one chunk's output, and its rejected rows as messages on stderr."""
        self.out.write(data)
        self.out.flush()
        for r in chunk.rejects:
            ident = f" (id {r['id']})" if r["id"] else ""
            print(f"newstag predict: rejected line {r['line']}{ident}: {r['reason']}", file=sys.stderr)
        self.state.count(chunk)

    def finish(self) -> str | None:
        """Flush stdout; there is no rejects file."""
        self.out.flush()
        return None

    def fail(self) -> str | None:
        """Flush stdout (what was written cannot be taken back); there is no rejects file."""
        return self.finish()

    def abort(self) -> None:
        """Nothing to keep: a streamed run cannot be resumed."""


def write_parquet(part: Path, target: Path, schema: Any) -> None:
    """Turn a part file of length-prefixed Arrow IPC chunks into one parquet file, a row group per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(part, "rb") as fh, pq.ParquetWriter(target, schema) as writer:
        while header := fh.read(LENGTH.size):
            (length,) = LENGTH.unpack(header)
            table = pa.ipc.open_stream(fh.read(length)).read_all()
            if table.num_rows:
                writer.write_table(table, row_group_size=table.num_rows)
