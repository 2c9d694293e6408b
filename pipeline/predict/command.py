"""``newstag predict``: read the input a chunk at a time, score each chunk on an engine, write it in order.

The input is streamed with ``corpora.files.iter_rows``; each row becomes a document by ``document_of`` (bad
rows go to ``<output>.rejects.jsonl``), and each chunk of ``batch_size`` documents is scored by an engine and
handed to a sink, in input order. ``predict_command`` returns the run's summary; printing it is the CLI's job.

With ``stream=True`` (``--stream``) the process stays open on stdin: each line is a chunk of its own, tagged
in this process and written to stdout (flushed) before the next line is read; a bad line is reported as its
rejects-file row, one JSON object on stderr, and the stream goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.corpora.base import ReadIssue
from pipeline.corpora.documents import Document, Fields, document_of, no_surrogates
from pipeline.corpora.files import detect_format, iter_rows
from pipeline.errors import UsageError
from pipeline.loading import load_tagger
from pipeline.predict.encode import Batch, Encoding, score_chunk
from pipeline.predict.engines import Engine, make_engine
from pipeline.predict.sinks import Chunk, FileSink, Progress, StreamSink, run_files
from pipeline.scoring import MODEL_HOME, REGION_AXIS

STDIO = "-"
OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
_OUTPUT_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# --------------------------------------------------------------------------- options


def parse_thresholds(specs: Sequence[str], axes: Sequence[str], labels: Mapping[str, Sequence[str]]) -> dict:
    """``["regions=0.4", "Europe=0.3"]`` (or comma-separated) as an overrides mapping; UsageError if wrong."""
    known = set(axes) | {lab for a in axes for lab in labels[a]}
    out: dict[str, float] = {}
    for spec in specs:
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            name, sep, value = item.rpartition("=")
            name = name.strip()
            try:
                number = float(value) if sep and name else None
            except ValueError:
                number = None
            if number is None or not 0.0 <= number <= 1.0:
                raise UsageError(
                    f"--threshold {item!r}: expected AXIS=VALUE or LABEL=VALUE with VALUE between 0 and 1"
                )
            if name not in known:
                label_list = "; ".join(f"{a}: {', '.join(labels[a])}" for a in axes)
                raise UsageError(
                    f"--threshold {item!r}: {name!r} is neither an axis ({', '.join(axes)}) "
                    f"nor a label of this model ({label_list})"
                )
            out[name] = number
    return out


def _output_format(path: str, forced: str | None) -> str:
    """jsonl, csv or parquet: ``forced`` when given, else from the output's extension (``-`` is JSONL)."""
    if forced:
        if forced not in OUTPUT_FORMATS:
            raise UsageError(f"--output-format {forced!r}: use one of {', '.join(OUTPUT_FORMATS)}")
        return forced
    if path == STDIO:
        return "jsonl"
    fmt = _OUTPUT_EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(
            f"{path}: cannot tell the output format from the file name; "
            f"use .jsonl, .csv or .parquet, or --output-format"
        )
    return fmt


def _check_numbers(
    batch_size: int, jobs: int | None, top_k: int | None, max_chars: int, max_reject_rate: float
) -> None:
    for name, value in (("--batch-size", batch_size), ("--jobs", jobs), ("--max-chars", max_chars)):
        if value is not None and value < 1:
            raise UsageError(f"{name} {value}: must be at least 1")
    if top_k is not None and top_k < 1:
        raise UsageError(f"--top-k {top_k}: must be at least 1")
    if not 0.0 <= max_reject_rate <= 1.0:
        raise UsageError(f"--max-reject-rate {max_reject_rate}: must be between 0 and 1")


def _columns(spec: str | Sequence[str] | None, fmt: str) -> list[str] | None:
    """The column names given for a header-less CSV/TSV input; UsageError for another format, an empty name
    or a name given twice."""
    if not spec:
        return None
    names = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else [str(c).strip() for c in spec]
    if fmt not in ("csv", "tsv"):
        raise UsageError(
            f"--columns names the columns of a CSV/TSV without a header line; the input is {fmt}"
        )
    if not all(names) or len(set(names)) != len(names):
        raise UsageError(f"--columns {','.join(names)!r}: each column needs a name, and each name once")
    return names


def _check_paths(input: str, output: str, resume: bool) -> None:
    """UsageError when the input is the output or one of the files the run writes beside it (its part,
    rejects or progress files), by name, through a link, or as a hard link (the same inode)."""
    if resume and STDIO in (input, output):
        raise UsageError("--resume needs a named input and output file (not -)")
    if STDIO in (input, output):
        return
    if _same_file(input, output):
        raise UsageError(f"{output}: the output would overwrite the input")
    for what, path in run_files(output).items():
        if _same_file(input, path):
            raise UsageError(
                f"{input}: the input is this run's own {what} ({path}), which the run would overwrite "
                "or remove; give another --output, or copy the input elsewhere first"
            )


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same resolved path, or (both existing) the same inode."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _check_stream(input: str, output: str, out_fmt: str, resume: bool, elsewhere: bool) -> None:
    """--stream reads stdin and writes JSONL or CSV to stdout, a line at a time, in this process; UsageError
    otherwise (``elsewhere``: --jobs, --engine or --scheduler ask to score outside this process)."""
    if input != STDIO:
        raise UsageError(
            f"--stream reads stdin: drop --input {input} (or give -i -); to tag a file, run without --stream"
        )
    if output != STDIO:
        raise UsageError(
            f"--stream writes to stdout: drop --output {output} (or give -o -) and redirect stdout; "
            "a file output is renamed into place only when complete, which a stream never is"
        )
    if out_fmt == "parquet":
        raise UsageError("--stream writes lines: parquet cannot be streamed; use jsonl or csv")
    if resume:
        raise UsageError("--stream cannot --resume: stdin cannot be read again")
    if elsewhere:
        raise UsageError(
            "--stream tags each line in this process as soon as it is read: --jobs, --engine dask and "
            "--scheduler would only add a round trip per line"
        )


def _keep_fields(spec: str | Sequence[str] | None, axes: Sequence[str], explain: bool) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec or [])
    names = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    taken = {"id", "scores", "truncated", *axes, *(["evidence"] if explain else [])}
    if REGION_AXIS in axes:
        taken.add("primary_region")
    clash = [n for n in names if n in taken]
    if clash:
        raise UsageError(
            f"--keep-fields: {', '.join(clash)} would clash with an output column of the same name"
        )
    return names


def _parquet_file(input_path: str, fmt: str) -> Any:
    """The input as a ``pyarrow.parquet.ParquetFile`` when it is one and readable, else None."""
    if fmt != "parquet" or input_path == STDIO:
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(input_path)
    except Exception:  # unreadable: iter_rows reports it
        return None


def _keep_types(input_path: str, fmt: str, keep: Sequence[str]) -> dict[str, Any]:
    """Parquet in and out: kept columns keep their Arrow type; otherwise they are strings."""
    parquet = _parquet_file(input_path, fmt) if keep else None
    if parquet is None:
        return {}
    schema = parquet.schema_arrow
    return {name: schema.field(name).type for name in keep if name in schema.names}


def _total_rows(input_path: str, fmt: str) -> int | None:
    """The row count when it is cheap to know (parquet metadata), else None."""
    parquet = _parquet_file(input_path, fmt)
    return None if parquet is None else int(parquet.metadata.num_rows)


def _encoding(
    tagger: Any,
    fmt: str,
    input_path: str,
    in_fmt: str,
    keep_fields: str | Sequence[str] | None,
    top_k: int | None,
    explain: bool,
    threshold: Sequence[str] | None,
    home: str | None = None,
) -> Encoding:
    """How this tagger's output is encoded in ``fmt``, with the options of the command.

    ``home``: an ISO code, "none", or None for the model's own (``features.gazetteer.home``).
    """
    axes = tuple(tagger.axes)
    labels = {a: list(tagger.labels_[a]) for a in axes}
    keep = _keep_fields(keep_fields, axes, explain)
    primary = REGION_AXIS in axes and hasattr(tagger, "primary_regions")
    try:
        code = tagger.resolve_home(MODEL_HOME if home is None else home) if primary else None
    except ValueError as exc:
        raise UsageError(f"--home: {exc}") from None
    if home is not None and home.strip().lower() != "none" and not primary:
        raise UsageError(f"--home {home}: this model has no {REGION_AXIS!r} axis")
    return Encoding(
        fmt=fmt,
        axes=axes,
        labels=labels,
        keep_fields=keep,
        keep_types=_keep_types(input_path, in_fmt, keep) if fmt == "parquet" else {},
        top_k=top_k,
        explain=explain,
        overrides=parse_thresholds(threshold or [], axes, labels),
        primary=primary,
        home=code,
    )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReadOptions:
    """How rows become documents: the columns to read, the columns to keep, the longest text scored."""

    fields: Fields
    keep: tuple[str, ...]
    max_chars: int


def reject_of(line: int, issue: ReadIssue) -> dict[str, Any]:
    """A rejects-file row: line, id and a reason that names the field at fault, if any."""
    reason = f"field {issue.field!r}: {issue.reason}" if issue.field else issue.reason
    return {"line": line, "id": issue.id, "reason": reason}


@dataclass
class RowTrace:
    """What the rows read so far held: a running sha256 of what each became (its document and kept values,
    or its reject), which ``--resume`` checks the input against; for the reject message, the rows that
    lacked a field and the columns of the first of them; and the documents whose id an earlier one had.

    Ids are remembered by their 64-bit hash (about 60 bytes per document, 60 MB for a million): two different
    ids sharing a hash, about one chance in 10^7 among a million ids, would be counted as a repeat."""

    sha256: Any = field(default_factory=hashlib.sha256)
    missing: Counter = field(default_factory=Counter)  # field name -> rows without it
    columns: dict[str, Any] = field(default_factory=dict)  # the first such row
    ids: set[int] = field(default_factory=set)
    duplicates: int = 0  # documents whose id an earlier document of the input had
    first_duplicate: str | None = None

    def add(self, row: Any, result: Document | dict[str, Any], keep: Sequence[str]) -> None:
        """Account for one row read and what it became."""
        if isinstance(result, dict):  # a reject
            self.sha256.update(repr(result).encode("utf-8", "surrogatepass"))
            return
        key = hash(result.id)
        if key in self.ids:
            self.duplicates += 1
            self.first_duplicate = self.first_duplicate or result.id
        else:
            self.ids.add(key)
        ident, title, body = result  # length-prefixed: unambiguous, and far cheaper than a repr's escaping
        text = f"{len(ident)},{len(title)},{len(body)}|{ident}{title}{body}"
        if keep:
            text += repr([row.get(name) for name in keep])
        self.sha256.update(text.encode("utf-8", "surrogatepass"))

    def lacking(self, row: Any, issue: ReadIssue) -> None:
        """Note a row rejected because a column is absent from it."""
        if issue.field and isinstance(row, Mapping) and issue.field not in row:
            self.missing[issue.field] += 1
            if not self.columns:
                self.columns = dict(row)

    def hint(self, fields: Fields) -> str:
        """For rows rejected for a missing column: the columns found and the option that would read them."""
        if not self.missing:
            return ""
        name, count = self.missing.most_common(1)[0]
        found = ", ".join(map(str, self.columns)) or "none"
        flag = {fields.text: "--text-field", fields.id: "--id-field", fields.title: "--title-field"}.get(name)
        others = {fields.id, fields.title} - {name}
        texts = {k: v for k, v in self.columns.items() if isinstance(v, str) and k not in others}
        guess = max(texts, key=lambda k: len(texts[k])) if texts else "COLUMN"
        fix = f"; use {flag} {guess}" if flag else ""
        return f"no {name!r} column in {count:,} rows; columns found: {found}{fix}"


def _document_or_reject(
    line: int, row: Any, fields: Fields, file: str, trace: RowTrace | None
) -> Document | dict[str, Any]:
    doc = row if isinstance(row, ReadIssue) else document_of(row, fields, file, line)
    if isinstance(doc, ReadIssue):
        if trace is not None:
            trace.lacking(row, doc)
        return reject_of(line, doc)
    return doc


def _batch(docs: list[Document], rows: list[Mapping[str, Any]], options: ReadOptions) -> Batch:
    """The batch of a chunk's documents: texts cut at ``max_chars`` (and flagged), kept columns beside."""
    if not docs:
        return Batch(keep={name: [] for name in options.keep})
    ids, titles, texts = (list(column) for column in zip(*docs, strict=True))
    limit = options.max_chars
    truncated = [len(text) > limit for text in texts]
    if any(truncated):
        texts = [text[:limit] for text in texts]
    keep = {name: [no_surrogates(row.get(name)) for row in rows] for name in options.keep}
    return Batch(ids, titles, texts, truncated, keep)


def read_chunks(
    rows: Iterator[tuple[int, Any]],
    options: ReadOptions,
    batch_size: int,
    file: str,
    first_index: int,
    consumed: int,
    trace: RowTrace | None = None,
    first_size: int | None = None,
    ahead: bool = False,
) -> Iterator[Chunk]:
    """Chunks of up to ``batch_size`` documents (rejected rows ride along with the chunk they fall in); the
    first of them up to ``first_size`` when given (an engine that starts sooner on a smaller chunk).

    With a ``trace``, every row is added to it, and each chunk carries the trace's sha256 at its end. With
    ``ahead``, one row is read ahead, so that a chunk knows whether it is the input's last (never for a
    stream, whose next line may not have been written yet).
    """
    fields, keep, index, read = options.fields, options.keep, first_index, 0
    size = min(batch_size, first_size or batch_size)
    docs: list[Document] = []
    kept: list[Mapping[str, Any]] = []  # the rows of ``docs``, when columns are kept
    rejects: list[dict[str, Any]] = []
    peeking = _Ahead(rows) if ahead else None
    for line, row in peeking or rows:
        read += 1
        doc = _document_or_reject(line, row, fields, file, trace)
        if trace is not None:
            trace.add(row, doc, keep)
        if isinstance(doc, dict):
            rejects.append(doc)
        else:
            docs.append(doc)
            if keep:
                kept.append(row)
        if len(docs) >= size or len(rejects) >= size:
            consumed += read
            last = peeking is not None and peeking.ended
            yield Chunk(index, consumed, _batch(docs, kept, options), rejects, read, _digest(trace), last)
            index, read, docs, kept, rejects, size = index + 1, 0, [], [], [], batch_size
    if read:
        yield Chunk(index, consumed + read, _batch(docs, kept, options), rejects, read, _digest(trace), True)


_END: Any = object()


class _Ahead:
    """Rows read one ahead: ``ended`` once the row last returned was the last. An error reading ahead is
    raised when that row is asked for, as it would have been without reading ahead."""

    def __init__(self, rows: Iterable[tuple[int, Any]]) -> None:
        self.rows = iter(rows)
        self.following: Any = self._read()

    def _read(self) -> Any:
        try:
            return next(self.rows, _END)
        except Exception as exc:  # raised in turn by __next__
            return exc

    @property
    def ended(self) -> bool:
        return self.following is _END

    def __iter__(self) -> _Ahead:
        return self

    def __next__(self) -> tuple[int, Any]:
        row = self.following
        if row is _END:
            raise StopIteration
        if isinstance(row, Exception):
            self.following = _END
            raise row
        self.following = self._read()
        return row


def _digest(trace: RowTrace | None) -> str:
    return "" if trace is None else trace.sha256.hexdigest()


def _replay(
    rows: Iterator[tuple[int, Any]], n: int, options: ReadOptions, file: str, trace: RowTrace
) -> Iterator[tuple[int, Any]]:
    """``rows`` after its first ``n``, which are read into ``trace`` as ``read_chunks`` would."""
    for _ in range(n):
        item = next(rows, None)
        if item is None:
            break
        line, row = item
        trace.add(row, _document_or_reject(line, row, options.fields, file, trace), options.keep)
    return rows


# --------------------------------------------------------------------------- running


def run_chunks(chunks: Iterable[Chunk], engine: Engine, sink: Any, on_chunk: Callable[[Chunk], None]) -> None:
    """Score chunks on ``engine`` with a bounded number in flight, and write them in input order."""
    pending: deque[tuple[Chunk, Any]] = deque()

    def write_oldest() -> None:
        chunk, future = pending.popleft()
        sink.write(chunk, future.result() if future is not None else b"")
        on_chunk(chunk)

    for chunk in chunks:
        pending.append((chunk, engine.submit(chunk.batch, chunk.last) if chunk.batch.ids else None))
        while len(pending) >= engine.in_flight:
            write_oldest()
    while pending:
        write_oldest()


def _fingerprint(input_path: str, sha256: str | None, settings: Mapping[str, Any]) -> str:
    stat = Path(input_path).stat()
    what = {
        "input": str(Path(input_path).resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "model_sha256": sha256,
        **settings,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


class _NoBar:
    """The progress bar when none is shown (quiet, or stderr is not a terminal): tqdm is not even imported."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _progress_bar(total: int | None, initial: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit=" docs",
        unit_scale=True,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


@dataclass(frozen=True)
class _Run:
    """One run's input, output and the settings its resume fingerprint covers."""

    input: str
    in_fmt: str
    output: str
    out_fmt: str
    enc: Encoding
    read: ReadOptions
    batch_size: int
    resume: bool
    quiet: bool

    def say(self, message: str) -> None:
        """A note on stderr, unless quiet."""
        if not self.quiet:
            print(f"newstag predict: {message}", file=sys.stderr, flush=True)

    def open_sink(self, sha256: str | None) -> FileSink | StreamSink:
        """The sink of the output: stdout, or a file sink (resumed when asked and possible)."""
        if self.output == STDIO:
            return StreamSink(self.out_fmt, self.enc)
        settings = {
            "format": self.in_fmt,
            "fields": {**asdict(self.read.fields), "keep": self.read.keep, "max_chars": self.read.max_chars},
            "encoding": {k: str(v) for k, v in asdict(self.enc).items()},
        }
        fingerprint = _fingerprint(self.input, sha256, settings)
        return FileSink(self.output, self.out_fmt, self.enc, fingerprint, self.resume, self.say)


def _over_limit(state: Progress, limit: float) -> bool:
    """Whether the run rejected more than ``limit`` of the rows it read (it failed)."""
    return state.read > 0 and state.rejected / state.read > limit


def _write_chunks(
    run: _Run, rows: Iterator[tuple[int, Any]], scorer: Engine, sha256: str | None, limit: float
) -> tuple[Progress, str | None, int, RowTrace]:
    """Score and write every chunk, then put the output in place, or, over the reject limit ``limit``, only
    the rejects file; returns the final progress, the rejects file (or None), the resumed chunk, the trace."""
    sink: Any = None
    bar: Any = None
    trace = RowTrace()
    try:
        sink = run.open_sink(sha256)
        state = sink.state
        rows = _replay(rows, state.consumed, run.read, str(run.input), trace)
        if state.consumed and _digest(trace) != state.prefix_sha256:
            raise UsageError(
                f"--resume: {run.input} no longer starts with the {state.consumed:,} rows the interrupted "
                "run read (the file changed since); run without --resume to start afresh"
            )
        chunks = read_chunks(
            rows,
            run.read,
            run.batch_size,
            str(run.input),
            state.chunks,
            state.consumed,
            trace,
            scorer.first_size,
            scorer.wants_last,
        )
        bar = _progress_bar(_total_rows(run.input, run.in_fmt), state.consumed, run.quiet)
        run_chunks(chunks, scorer, sink, lambda c: bar.update(c.read))
        rejects = sink.fail() if _over_limit(state, limit) else sink.finish()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        scorer.close()
        if bar is not None:
            bar.close()
    return state, rejects, sink.resumed, trace


def predict_command(
    model: str,
    input: str,
    output: str,
    format: str | None = None,
    output_format: str | None = None,
    id_field: str = "id",
    title_field: str = "title",
    text_field: str = "text",
    keep_fields: str | Sequence[str] | None = "",
    top_k: int | None = None,
    explain: bool = False,
    threshold: Sequence[str] | None = None,
    batch_size: int = 2000,
    jobs: int | None = None,
    max_reject_rate: float = 0.05,
    max_chars: int = 100_000,
    resume: bool = False,
    engine: str = "local",
    scheduler: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
    stream: bool = False,
    home: str | None = None,
    columns: str | Sequence[str] | None = None,
    keep_model: list[Any] | None = None,
) -> dict[str, Any]:
    """Tag every document of ``input`` into ``output``; returns the run summary (see ``summary_lines``).

    ``stream``: stdin to stdout, each line tagged and written before the next is read (``batch_size`` does
    not apply; a named input or output, ``resume``, ``jobs`` > 1 and the dask engine are refused).
    ``jobs``: None scores in this process, a chunk of 1,000 documents or more split across the cores
    (``engines.SplitEngine``); 1 in this process alone; more in that many worker processes.
    ``home``: the publication's home country (ISO code), "none", or None for the model's own.
    ``columns``: the names of a header-less CSV/TSV input's columns, in order (a list or "a,b,c").
    ``keep_model``: a list the loaded model is appended to, for a caller that ends the process without
    freeing it (the ``newstag`` script: ``cli.console``).
    """
    start = time.perf_counter()
    _check_numbers(batch_size, jobs, top_k, max_chars, max_reject_rate)
    out_fmt = _output_format(output, output_format)
    if stream:
        _check_stream(input, output, out_fmt, resume, (jobs or 1) > 1 or engine != "local" or bool(scheduler))
    _check_paths(input, output, resume)
    in_fmt = detect_format(input, format)
    names = _columns(columns, in_fmt)
    rows = iter_rows(input, in_fmt, columns=names)  # checks the input file before the model is loaded
    before_load = time.perf_counter()
    tagger, info = load_tagger(model, tracking_uri)
    if keep_model is not None:
        keep_model.append(tagger)
    loaded = time.perf_counter()
    enc = _encoding(tagger, out_fmt, input, in_fmt, keep_fields, top_k, explain, threshold, home)
    read = ReadOptions(Fields(id_field, title_field, text_field, enc.keep_fields), enc.keep_fields, max_chars)
    if stream:
        state, load_more, busy = _tag_lines(rows, tagger, enc, read, input)
        timing = _Timing(start, loaded - before_load + load_more, busy)
        return _summary(state, timing, output, None, max_reject_rate, 0)
    run = _Run(input, in_fmt, output, out_fmt, enc, read, batch_size, resume, quiet)
    # workers start (fork) before the output is opened and locked, so they never hold its lock
    scorer = make_engine(engine, tagger, enc, jobs, info, scheduler)
    state, rejects, resumed, trace = _write_chunks(run, rows, scorer, info.sha256, max_reject_rate)
    timing = _Timing(start, loaded - before_load, time.perf_counter() - loaded)
    return _summary(state, timing, output, rejects, max_reject_rate, resumed, trace.hint(read.fields), trace)


# --------------------------------------------------------------------------- --stream


class _LineSink(StreamSink):
    """stdout, flushed after every line; a rejected line is its rejects-file row, as JSON on stderr."""

    def __init__(self, fmt: str, enc: Encoding) -> None:
        super().__init__(fmt, enc)
        self.out.flush()  # the CSV header, before the first line arrives

    def write(self, chunk: Chunk, data: bytes) -> None:
        """Write one line's output (or its reject) and flush it."""
        self.out.write(data)
        self.out.flush()
        if chunk.rejects:
            sys.stderr.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk.rejects))
            sys.stderr.flush()
        self.state.count(chunk)


def _warm_up(tagger: Any, enc: Encoding) -> float:
    """Score one throw-away document, so that tables the tagger builds on first use do not delay the first
    line; returns the seconds it took."""
    start = time.perf_counter()
    keep = {name: [None] for name in enc.keep_fields}
    score_chunk(tagger, enc, Batch(["warm-up"], [""], ["warm up"], [False], keep))
    return time.perf_counter() - start


def _tag_lines(
    rows: Iterator[tuple[int, Any]], tagger: Any, enc: Encoding, read: ReadOptions, input: str
) -> tuple[Progress, float, float]:
    """--stream: each row a chunk of its own, scored and written before the next row is read.

    Returns the progress, the warm-up seconds, and the seconds spent on rows (from a row read to its output
    flushed; the time spent waiting for input is not counted).
    """
    sink = _LineSink(enc.fmt, enc)
    warm = _warm_up(tagger, enc)
    busy = [0.0]

    def timed(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        for row in rows:
            mark = time.perf_counter()
            yield row  # resumed when the row's output is written and the next row is asked for
            busy[0] += time.perf_counter() - mark

    chunks = read_chunks(timed(rows), read, 1, input, 0, 0)
    run_chunks(chunks, Engine(tagger, enc), sink, lambda chunk: None)
    sink.finish()
    return sink.state, warm, busy[0]


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class _Timing:
    """When the run started, the seconds the model took to load, the seconds spent tagging after that."""

    start: float
    load: float
    score: float


def _summary(
    state: Progress,
    timing: _Timing,
    output: str,
    rejects: str | None,
    limit: float,
    resumed: int,
    hint: str = "",
    trace: RowTrace | None = None,
) -> dict[str, Any]:
    """The run summary; over the reject limit, a warning on stderr (shown even with --quiet), followed by
    ``hint`` (what the rejects have in common and how to fix it), and ``output`` None: a failed run leaves
    no output file (on stdout, what was written stays written).

    ``seconds`` is the whole wall time; ``load_seconds`` locating, verifying and loading the model (with
    --stream, also the warm-up); ``docs_per_s`` is rows read per second of ``score_seconds``: reading,
    scoring and writing after the load (with --stream, the time spent on lines, not waiting for them).
    ``duplicate_ids`` counts the documents whose id an earlier document had (both are tagged and written;
    the first repeated id is ``first_duplicate_id``).
    """
    seconds = time.perf_counter() - timing.start
    rate = state.rejected / state.read if state.read else 0.0
    failed = _over_limit(state, limit)
    summary = {
        "read": state.read,
        "written": state.written,
        "rejected": state.rejected,
        "truncated": state.truncated,
        "seconds": round(seconds, 3),
        "load_seconds": round(timing.load, 3),
        "score_seconds": round(timing.score, 3),
        "docs_per_s": round(state.read / timing.score, 1) if timing.score > 0 else 0.0,
        "reject_rate": round(rate, 6),
        "over_reject_limit": failed,
        "output": None if failed and output != STDIO else output,
        "rejects": rejects,
        "resumed_from_chunk": resumed,
        "duplicate_ids": trace.duplicates if trace is not None else 0,
        "first_duplicate_id": trace.first_duplicate if trace is not None else None,
    }
    if failed:
        not_written = f"; {output} not written" if output != STDIO else ""
        print(
            f"newstag predict: {state.rejected:,} of {state.read:,} rows rejected ({rate:.1%}), over "
            f"--max-reject-rate {limit:g}{not_written}; the reasons are in {rejects or 'the messages above'}"
            + (f"; {hint}" if hint else ""),
            file=sys.stderr,
        )
    return summary


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary of a run as the CLI prints it (one line): counts, wall time, model load, docs/s tagging."""
    s = summary
    where = f" (see {s['rejects']})" if s["rejects"] else ""
    return [
        f"newstag predict: read {s['read']:,}, wrote {s['written']:,}, rejected {s['rejected']:,}{where}, "
        f"truncated {s['truncated']:,} in {_seconds(s['seconds'])} s (model {_seconds(s['load_seconds'])} s; "
        f"{s['docs_per_s']:,.0f} docs/s) -> {s['output'] or 'no output (over the reject limit)'}"
        + (
            f"; {s['duplicate_ids']:,} documents repeat an earlier id (first: {s['first_duplicate_id']!r})"
            if s.get("duplicate_ids")
            else ""
        )
    ]
