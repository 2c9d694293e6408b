"""Where the output goes: a file built atomically and resumably (``FileSink``) or stdout (``StreamSink``).

Files beside the output while a run is under way: ``<output>.part`` (the output so far, locked against a
second run), ``<output>.rejects.jsonl.part`` and ``<output>.progress.json`` (chunks done, input rows
consumed, bytes of both part files). The output appears under its name only when complete; a resumed run
cuts the part files back to the last complete chunk and goes on from there, so the result equals that of an
uninterrupted run byte for byte. Parquet output is kept as length-prefixed Arrow IPC chunks in the part file
and turned into one parquet file (one row group per chunk) at the end.
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

PROGRESS_VERSION = 1


@dataclass
class Chunk:
    """Rows read from the input for one chunk: the documents to score and the rows rejected."""

    index: int
    consumed: int  # input rows (good and bad) consumed up to the end of this chunk
    batch: Batch = field(default_factory=Batch)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # {"line", "id", "reason"} per rejected row
    read: int = 0


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
        self.part = Path(f"{output}.part")
        self.rejects_path = Path(f"{output}.rejects.jsonl")
        self.rejects_part = Path(f"{output}.rejects.jsonl.part")
        self.progress_path = Path(f"{output}.progress.json")
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
        tmp = Path(f"{self.progress_path}.tmp")
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
        s.chunks, s.consumed = chunk.index + 1, chunk.consumed
        s.out_bytes, s.rejects_bytes = self.out.tell(), self.rejects.tell()
        s.count(chunk)
        self._save()

    def finish(self) -> str | None:
        """Close, turn the part files into the output (and the rejects file); returns the rejects path or None."""
        self.out.close()
        self.rejects.close()
        if self.fmt == "parquet":
            final = Path(f"{self.output}.tmp")
            write_parquet(self.part, final, self.enc.arrow_schema())
            os.replace(final, self.output)
            self.part.unlink()
        else:
            os.replace(self.part, self.output)
        rejects: str | None = None
        if self.state.rejected:
            os.replace(self.rejects_part, self.rejects_path)
            rejects = str(self.rejects_path)
        else:
            self.rejects_part.unlink(missing_ok=True)
            self.rejects_path.unlink(missing_ok=True)  # a stale one from an earlier run of this output
        self.progress_path.unlink(missing_ok=True)
        return rejects

    def abort(self) -> None:
        """Leave the part and progress files for --resume."""
        for fh in (self.out, self.rejects):
            if not fh.closed:
                fh.close()


def _open_for_update(path: Path) -> BinaryIO:
    """``path`` opened for reading and writing, created if missing, not truncated."""
    return open(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # closed by the sink


def _open_locked(path: Path) -> BinaryIO:
    """``path`` opened for update (created if missing, not truncated) under an exclusive lock."""
    fh = _open_for_update(path)
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): nothing to guard with
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise UsageError(
            f"{path}: another run is writing this output; wait for it or choose another"
        ) from None
    return fh


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
