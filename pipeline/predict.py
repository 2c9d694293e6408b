"""Batch prediction: tag every article of a file, a chunk at a time, atomically and resumably.

``predict_command`` is ``newstag predict``. The input is streamed with ``corpora.files.iter_rows``; each chunk
of ``batch_size`` rows is validated (bad rows go to ``<output>.rejects.jsonl``), featurized once for all
axes, scored, labelled and encoded by ``score_chunk``, in this process, in ``jobs`` worker processes or on a
Dask cluster (same function, so every engine writes the same bytes), and written in input order.

Files beside the output while a run is under way: ``<output>.part`` (the output so far, locked against a
second run), ``<output>.rejects.jsonl.part`` and ``<output>.progress.json`` (chunks done, input rows
consumed, bytes of both part files).
The output appears under its name only when complete; ``--resume`` cuts the part files back to the last
complete chunk and goes on from there, so the result equals that of an uninterrupted run byte for byte.
Parquet output is kept as length-prefixed Arrow IPC chunks in the part file and turned into one parquet
file (one row group per chunk) at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.corpora.base import ReadIssue
from pipeline.corpora.files import _scalar_text, detect_format, iter_rows
from pipeline.errors import UsageError

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
PROGRESS_VERSION = 1
EVIDENCE_TERMS = 5
SCORE_DECIMALS = 6
_LENGTH = struct.Struct("<Q")  # length prefix of one Arrow IPC chunk in a parquet part file
_MISSING: Any = object()


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Encoding:
    """What a worker needs, besides the tagger, to turn a chunk into output bytes."""

    fmt: str
    axes: tuple[str, ...]
    labels: dict[str, list[str]]
    keep_fields: tuple[str, ...] = ()
    keep_types: dict[str, Any] = field(default_factory=dict)  # parquet: Arrow type per kept field
    top_k: int | None = None
    explain: bool = False
    overrides: dict[str, float] = field(default_factory=dict)

    def columns(self) -> list[str]:
        """Output columns, in order."""
        return [
            "id",
            *self.keep_fields,
            *self.axes,
            "scores",
            *(["evidence"] if self.explain else []),
            "truncated",
        ]

    def arrow_schema(self) -> Any:
        """The parquet schema: plain list and struct columns (they read back with pandas as lists/dicts)."""
        import pyarrow as pa

        score = pa.struct(
            [
                pa.field(a, pa.struct([pa.field(lab, pa.float64()) for lab in self.labels[a]]))
                for a in self.axes
            ]
        )
        fields = [pa.field("id", pa.string())]
        fields += [pa.field(f, self.keep_types.get(f, pa.string())) for f in self.keep_fields]
        fields += [pa.field(a, pa.list_(pa.string())) for a in self.axes]
        fields.append(pa.field("scores", score))
        if self.explain:
            term = pa.list_(pa.struct([pa.field("term", pa.string()), pa.field("weight", pa.float64())]))
            evidence = pa.struct(
                [pa.field(a, pa.struct([pa.field(lab, term) for lab in self.labels[a]])) for a in self.axes]
            )
            fields.append(pa.field("evidence", evidence))
        fields.append(pa.field("truncated", pa.bool_()))
        return pa.schema(fields)


@dataclass
class Chunk:
    """Rows read from the input for one chunk: the documents to score and the rows rejected."""

    index: int
    consumed: int  # input rows (good and bad) consumed up to the end of this chunk
    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    keep: dict[str, list[Any]] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0

    def payload(self) -> tuple[Any, ...]:
        """What is sent to a worker."""
        return (self.ids, self.titles, self.texts, self.truncated, self.keep)


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


# --------------------------------------------------------------------------- scoring (any process)


def score_chunk(tagger: Any, enc: Encoding, payload: tuple[Any, ...]) -> bytes:
    """The encoded output of one chunk: featurize once, score every axis, label, encode."""
    ids, titles, texts, truncated, keep = payload
    M = tagger.transform_docs({"title": titles, "text": texts})
    scores = tagger.scores_from_features(M)
    labels = tagger.labels_from_scores(scores, enc.overrides)
    evidence = tagger.explain_features(M, labels, EVIDENCE_TERMS) if enc.explain else None
    if enc.fmt == "jsonl" and evidence is None and enc.top_k is None:
        return _encode_jsonl_fast(enc, ids, keep, labels, scores, truncated)
    table = _score_table(enc, scores)
    if enc.fmt == "parquet":
        return _encode_arrow(enc, ids, keep, labels, table, evidence, truncated)
    rows = _rows(enc, ids, keep, labels, table, evidence, truncated)
    return _encode_csv(enc, rows) if enc.fmt == "csv" else _encode_jsonl(rows)


def _score_table(enc: Encoding, scores: Mapping[str, np.ndarray]) -> dict[str, list[dict[str, float]]]:
    """Per axis, per document: {label: probability}, all labels in label order, or the ``top_k`` best first."""
    out: dict[str, list[dict[str, float]]] = {}
    for axis in enc.axes:
        names = enc.labels[axis]
        probs = np.round(np.asarray(scores[axis], dtype=np.float64), SCORE_DECIMALS)
        if enc.top_k is None:
            out[axis] = [dict(zip(names, row, strict=True)) for row in probs.tolist()]
            continue
        order = np.argsort(-probs, axis=1, kind="stable")[:, : enc.top_k]
        best = np.take_along_axis(probs, order, axis=1).tolist()
        out[axis] = [
            {names[j]: p for j, p in zip(cols, vals, strict=True)}
            for cols, vals in zip(order.tolist(), best, strict=True)
        ]
    return out


def _evidence_of(doc: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]]) -> dict:
    return {
        axis: {lab: [[t, w] for t, w in terms] for lab, terms in per.items()} for axis, per in doc.items()
    }


def _rows(
    enc: Encoding,
    ids: list[str],
    keep: Mapping[str, list[Any]],
    labels: Mapping[str, list[list[str]]],
    table: Mapping[str, list[dict[str, float]]],
    evidence: list[Any] | None,
    truncated: list[bool],
) -> Iterator[dict[str, Any]]:
    axes = enc.axes
    for i, ident in enumerate(ids):
        row: dict[str, Any] = {"id": ident}
        for name in enc.keep_fields:
            row[name] = keep[name][i]
        for axis in axes:
            row[axis] = labels[axis][i]
        row["scores"] = {axis: table[axis][i] for axis in axes}
        if evidence is not None:
            row["evidence"] = _evidence_of(evidence[i])
        row["truncated"] = truncated[i]
        yield row


def _encode_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    return "".join([dumps(row) + "\n" for row in rows]).encode("utf-8")


def _encode_jsonl_fast(
    enc: Encoding,
    ids: list[str],
    keep: Mapping[str, list[Any]],
    labels: Mapping[str, list[list[str]]],
    scores: Mapping[str, np.ndarray],
    truncated: list[bool],
) -> bytes:
    """The bytes ``_encode_jsonl`` writes for rows with all scores and no evidence, without building them.

    Each axis's scores object is one ``%r`` template over its labels (``repr`` of a float is what the JSON
    encoder writes), and the JSON of each distinct label list is made once per chunk.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    keys = {a: dumps(a) for a in enc.axes}
    templates = {a: "{" + ", ".join(f"{dumps(lab)}: %r" for lab in enc.labels[a]) + "}" for a in enc.axes}
    values = {a: np.round(np.asarray(scores[a], dtype=np.float64), SCORE_DECIMALS).tolist() for a in enc.axes}
    kept = [(dumps(name), keep[name]) for name in enc.keep_fields]
    label_json: dict[tuple[str, ...], str] = {}
    lines = []
    for i, ident in enumerate(ids):
        parts = [f'{{"id": {dumps(ident)}']
        parts += [f"{key}: {dumps(column[i])}" for key, column in kept]
        for axis in enc.axes:
            row = tuple(labels[axis][i])
            text = label_json.get(row)
            if text is None:
                text = label_json[row] = dumps(list(row))
            parts.append(f"{keys[axis]}: {text}")
        score = ", ".join(f"{keys[a]}: {templates[a] % tuple(values[a][i])}" for a in enc.axes)
        parts.append(f'"scores": {{{score}}}')
        parts.append('"truncated": true}\n' if truncated[i] else '"truncated": false}\n')
        lines.append(", ".join(parts))
    return "".join(lines).encode("utf-8")


def _csv_cell(value: Any, dumps: Callable[[Any], str]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)


def _encode_csv(enc: Encoding, rows: Iterable[dict[str, Any]]) -> bytes:
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = enc.columns()
    writer.writerows([_csv_cell(row[c], dumps) for c in columns] for row in rows)
    return buffer.getvalue().encode("utf-8")


def csv_header(enc: Encoding) -> bytes:
    """The CSV header line of the output."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(enc.columns())
    return buffer.getvalue().encode("utf-8")


def _keep_column(values: list[Any], arrow_type: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_string(arrow_type):
        dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
        values = [v if v is None or isinstance(v, str) else dumps(v) for v in values]
    return pa.array(values, type=arrow_type)


def _encode_arrow(
    enc: Encoding,
    ids: list[str],
    keep: Mapping[str, list[Any]],
    labels: Mapping[str, list[list[str]]],
    table: Mapping[str, list[dict[str, float]]],
    evidence: list[Any] | None,
    truncated: list[bool],
) -> bytes:
    import pyarrow as pa

    schema = enc.arrow_schema()
    columns: dict[str, Any] = {"id": pa.array(ids, type=pa.string())}
    for name in enc.keep_fields:
        columns[name] = _keep_column(keep[name], schema.field(name).type)
    for axis in enc.axes:
        columns[axis] = pa.array(labels[axis], type=schema.field(axis).type)
    scores = [{axis: table[axis][i] for axis in enc.axes} for i in range(len(ids))]
    columns["scores"] = pa.array(scores, type=schema.field("scores").type)
    if evidence is not None:
        docs = [
            {
                a: {lab: [{"term": t, "weight": w} for t, w in terms] for lab, terms in per.items()}
                for a, per in d.items()
            }
            for d in evidence
        ]
        columns["evidence"] = pa.array(docs, type=schema.field("evidence").type)
    columns["truncated"] = pa.array(truncated, type=pa.bool_())
    batch = pa.table(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(batch)
    data = sink.getvalue().to_pybytes()
    return _LENGTH.pack(len(data)) + data


# --------------------------------------------------------------------------- engines

_WORKER: dict[str, Any] = {}


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog: a parent killed outright (SIGKILL) cannot stop its pool, so workers stop alone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(model_path: str, sha256: str | None, enc: Encoding) -> None:
    """Process pool initializer: the verified tagger, once per worker (inherited as is when forked)."""
    import threading

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if _WORKER.get("path") != model_path:
        from pipeline.loading import load_verified

        _WORKER.update(path=model_path, tagger=load_verified(model_path, sha256))
    _WORKER["enc"] = enc


def _score_in_worker(payload: tuple[Any, ...]) -> bytes:
    return score_chunk(_WORKER["tagger"], _WORKER["enc"], payload)


class _Done:
    """A finished result with the interface of a future."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def result(self) -> bytes:
        return self.value


class Engine:
    """Where chunks are scored: ``submit(payload)`` returns a future; ``in_flight`` bounds memory."""

    in_flight = 1

    def __init__(self, tagger: Any, enc: Encoding) -> None:
        self.tagger, self.enc = tagger, enc

    def submit(self, payload: tuple[Any, ...]) -> Any:
        return _Done(score_chunk(self.tagger, self.enc, payload))

    def close(self) -> None:
        pass


class ProcessEngine(Engine):
    """``jobs`` worker processes, each loading the tagger once; at most 2 chunks per worker in flight."""

    def __init__(self, tagger: Any, enc: Encoding, jobs: int, model_path: str, sha256: str | None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().__init__(tagger, enc)
        methods = multiprocessing.get_all_start_methods()
        fork = "fork" in methods
        context = multiprocessing.get_context("fork" if fork else "spawn")
        # The parent only reads and writes: it does not build the scoring tables (gazetteer index, word ids).
        # Each worker builds its own on its first chunk; copy-on-write pages shared after a warm-up are
        # counted again in every process's RSS, so this keeps the process tree's summed RSS lower.
        # forked workers inherit the verified tagger; spawned ones load and verify it again
        _WORKER.update(path=model_path, tagger=tagger)
        self.pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(model_path, sha256, enc)
        )
        self.pool.submit(len, ()).result()  # start the workers now (all at once when forking)
        self.in_flight = 2 * jobs

    def submit(self, payload: tuple[Any, ...]) -> Any:
        return self.pool.submit(_score_in_worker, payload)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine(Engine):
    """Chunks scored on a Dask cluster: ``scheduler`` or a loopback LocalCluster of ``jobs`` workers."""

    def __init__(self, tagger: Any, enc: Encoding, jobs: int, scheduler: str | None) -> None:
        import logging

        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("--engine dask needs the dask extra: pip install 'newstag[dask]'") from None
        super().__init__(tagger, enc)
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise UsageError(
                    f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})"
                ) from None
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        n_workers = max(1, len(self.client.scheduler_info().get("workers", {})) or jobs)
        self.in_flight = 2 * n_workers
        # the tagger travels once to every worker and stays there
        self.tagger_future = self.client.scatter(tagger, broadcast=True)

    def submit(self, payload: tuple[Any, ...]) -> Any:
        return self.client.submit(score_chunk, self.tagger_future, self.enc, payload, pure=False)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Fields:
    id: str
    title: str
    text: str
    keep: tuple[str, ...]
    max_chars: int


def _text_problem(text: Any, name: str) -> str | None:
    if isinstance(text, str):
        return None if text and not text.isspace() else f"no text: field {name!r} is empty"
    if text is _MISSING:
        return f"no text: field {name!r} is missing"
    if text is None:
        return f"no text: field {name!r} is null"
    kind = {dict: "an object", list: "a list"}.get(type(text), type(text).__name__)
    return f"text is not a string: field {name!r} holds {kind}"


def _id_text(value: Any) -> str | None:
    return _scalar_text(value) or None


def read_chunks(
    rows: Iterator[tuple[int, Any]],
    fields: Fields,
    batch_size: int,
    file: str,
    first_index: int,
    consumed: int,
) -> Iterator[Chunk]:
    """Chunks of up to ``batch_size`` documents (rejected rows ride along with the chunk they fall in)."""
    stem = Path(file).stem
    index = first_index
    chunk = Chunk(index, consumed, keep={k: [] for k in fields.keep})
    id_field, title_field, text_field, max_chars = fields.id, fields.title, fields.text, fields.max_chars
    keep_lists = [(k, chunk.keep[k]) for k in fields.keep]
    for line, row in rows:
        chunk.read += 1
        chunk.consumed += 1
        if isinstance(row, ReadIssue):
            chunk.rejects.append({"line": line, "id": row.id, "reason": row.reason})
        else:
            text = row.get(text_field, _MISSING)
            problem = _text_problem(text, text_field)
            if problem is not None:
                chunk.rejects.append({"line": line, "id": _id_text(row.get(id_field)), "reason": problem})
            else:
                chunk.ids.append(_id_text(row.get(id_field)) or f"{stem}:{line}")
                title = row.get(title_field)
                chunk.titles.append(title if isinstance(title, str) else "" if title is None else str(title))
                cut = len(text) > max_chars
                chunk.texts.append(text[:max_chars] if cut else text)
                chunk.truncated.append(cut)
                for name, values in keep_lists:
                    values.append(row.get(name))
        if len(chunk.ids) >= batch_size or len(chunk.rejects) >= batch_size:
            yield chunk
            index += 1
            chunk = Chunk(index, chunk.consumed, keep={k: [] for k in fields.keep})
            keep_lists = [(k, chunk.keep[k]) for k in fields.keep]
    if chunk.read:
        yield chunk


def _skip(rows: Iterator[tuple[int, Any]], n: int) -> Iterator[tuple[int, Any]]:
    for _ in range(n):
        if next(rows, None) is None:
            break
    return rows


# --------------------------------------------------------------------------- writing


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
        self.rejects = open(os.open(self.rejects_part, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # noqa: SIM115
        try:
            state = self._resume(fingerprint, say) if resume else None
        except UsageError:
            self.abort()
            raise
        if state is None:
            if self.progress_path.exists() and not resume:
                say(f"note: {self.progress_path} found: starting afresh (add --resume to continue that run)")
            state = Progress(fingerprint)
            if fmt == "csv":
                self.out.write(csv_header(enc))
            state.out_bytes = self.out.tell()
        for fh, length in ((self.out, state.out_bytes), (self.rejects, state.rejects_bytes)):
            fh.truncate(length)
            fh.seek(length)
        self.state = state
        self._save()
        self.resumed = state.chunks

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
        s.read += chunk.read
        s.written += len(chunk.ids)
        s.rejected += len(chunk.rejects)
        s.truncated += sum(chunk.truncated)
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


def _open_locked(path: Path) -> Any:
    """``path`` opened for update (created if missing, not truncated) under an exclusive lock."""
    fh = open(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # noqa: SIM115 (closed by the sink)
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
        self.out.write(data)
        self.out.flush()
        for r in chunk.rejects:
            ident = f" (id {r['id']})" if r["id"] else ""
            print(f"newstag predict: rejected line {r['line']}{ident}: {r['reason']}", file=sys.stderr)
        s = self.state
        s.read += chunk.read
        s.written += len(chunk.ids)
        s.rejected += len(chunk.rejects)
        s.truncated += sum(chunk.truncated)

    def finish(self) -> str | None:
        self.out.flush()
        return None

    def abort(self) -> None:
        pass


def write_parquet(part: Path, target: Path, schema: Any) -> None:
    """Turn a part file of length-prefixed Arrow IPC chunks into one parquet file, a row group per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(part, "rb") as fh, pq.ParquetWriter(target, schema) as writer:
        while header := fh.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            table = pa.ipc.open_stream(fh.read(length)).read_all()
            if table.num_rows:
                writer.write_table(table, row_group_size=table.num_rows)


# --------------------------------------------------------------------------- the command


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


def _check_numbers(
    batch_size: int, jobs: int, top_k: int | None, max_chars: int, max_reject_rate: float
) -> None:
    for name, value in (("--batch-size", batch_size), ("--jobs", jobs), ("--max-chars", max_chars)):
        if value < 1:
            raise UsageError(f"{name} {value}: must be at least 1")
    if top_k is not None and top_k < 1:
        raise UsageError(f"--top-k {top_k}: must be at least 1")
    if not 0.0 <= max_reject_rate <= 1.0:
        raise UsageError(f"--max-reject-rate {max_reject_rate}: must be between 0 and 1")


def _keep_fields(spec: str | Sequence[str] | None, axes: Sequence[str], explain: bool) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec or [])
    names = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    taken = {"id", "scores", "truncated", *axes, *(["evidence"] if explain else [])}
    clash = [n for n in names if n in taken]
    if clash:
        raise UsageError(
            f"--keep-fields: {', '.join(clash)} would clash with an output column of the same name"
        )
    return names


def _keep_types(input_path: str, fmt: str, keep: Sequence[str]) -> dict[str, Any]:
    """Parquet in and out: kept columns keep their Arrow type; otherwise they are strings."""
    if not keep or fmt != "parquet" or input_path == STDIO:
        return {}
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(input_path).schema_arrow
    except Exception:  # unreadable: iter_rows reports it
        return {}
    return {name: schema.field(name).type for name in keep if name in schema.names}


def _total_rows(input_path: str, fmt: str) -> int | None:
    """The row count when it is cheap to know (parquet metadata), else None."""
    if fmt != "parquet" or input_path == STDIO:
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(input_path).metadata.num_rows)
    except Exception:
        return None


def _make_engine(
    engine: str, tagger: Any, enc: Encoding, jobs: int, info: Any, scheduler: str | None
) -> Engine:
    if engine == "dask":
        return DaskEngine(tagger, enc, jobs, scheduler)
    if engine != "local":
        raise UsageError(f"--engine {engine!r}: use local or dask")
    if scheduler:
        raise UsageError("--scheduler needs --engine dask")
    if jobs > 1:
        return ProcessEngine(tagger, enc, jobs, str(info.path), info.sha256)
    return Engine(tagger, enc)


def _progress_bar(total: int | None, initial: int, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit=" docs",
        unit_scale=True,
        file=sys.stderr,
        disable=quiet or not sys.stderr.isatty(),
        dynamic_ncols=True,
        smoothing=0.1,
    )


def run_chunks(chunks: Iterable[Chunk], engine: Engine, sink: Any, on_chunk: Callable[[Chunk], None]) -> None:
    """Score chunks on ``engine`` with a bounded number in flight, and write them in input order."""
    pending: deque[tuple[Chunk, Any]] = deque()

    def write_oldest() -> None:
        chunk, future = pending.popleft()
        sink.write(chunk, future.result() if future is not None else b"")
        on_chunk(chunk)

    for chunk in chunks:
        pending.append((chunk, engine.submit(chunk.payload()) if chunk.ids else None))
        while len(pending) >= engine.in_flight:
            write_oldest()
    while pending:
        write_oldest()


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
    jobs: int = 1,
    max_reject_rate: float = 0.05,
    max_chars: int = 100_000,
    resume: bool = False,
    engine: str = "local",
    scheduler: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Tag every document of ``input`` into ``output``; returns the run summary (see the module docstring)."""
    from pipeline.loading import load_tagger

    start = time.perf_counter()
    _check_numbers(batch_size, jobs, top_k, max_chars, max_reject_rate)
    out_fmt = _output_format(output, output_format)
    in_fmt = detect_format(input, format)
    if output != STDIO and input != STDIO and Path(output).resolve() == Path(input).resolve():
        raise UsageError(f"{output}: the output would overwrite the input")
    if resume and STDIO in (input, output):
        raise UsageError("--resume needs a named input and output file (not -)")
    rows = iter_rows(input, in_fmt)  # checks the input file before the model is loaded
    tagger, info = load_tagger(model, tracking_uri)
    axes = tuple(tagger.axes)
    labels = {a: list(tagger.labels_[a]) for a in axes}
    keep = _keep_fields(keep_fields, axes, explain)
    enc = Encoding(
        fmt=out_fmt,
        axes=axes,
        labels=labels,
        keep_fields=keep,
        keep_types=_keep_types(input, in_fmt, keep) if out_fmt == "parquet" else {},
        top_k=top_k,
        explain=explain,
        overrides=parse_thresholds(threshold or [], axes, labels),
    )
    say = (
        (lambda m: None) if quiet else (lambda m: print(f"newstag predict: {m}", file=sys.stderr, flush=True))
    )
    fields = Fields(id_field, title_field, text_field, keep, max_chars)
    # workers start (fork) before the output is opened and locked, so they never hold its lock
    scorer = _make_engine(engine, tagger, enc, jobs, info, scheduler)
    sink: Any = None
    bar: Any = None
    try:
        if output == STDIO:
            sink = StreamSink(out_fmt, enc)
        else:
            settings = {
                "format": in_fmt,
                "fields": asdict(fields),
                "encoding": {k: str(v) for k, v in asdict(enc).items()},
            }
            sink = FileSink(output, out_fmt, enc, _fingerprint(input, info.sha256, settings), resume, say)
        state = sink.state
        chunks = read_chunks(
            _skip(rows, state.consumed), fields, batch_size, str(input), state.chunks, state.consumed
        )
        bar = _progress_bar(_total_rows(input, in_fmt), state.consumed, quiet)
        run_chunks(chunks, scorer, sink, lambda c: bar.update(c.read))
        rejects = sink.finish()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        scorer.close()
        if bar is not None:
            bar.close()
    return _summary(state, start, output, rejects, max_reject_rate, sink.resumed, quiet)


def _summary(
    state: Progress, start: float, output: str, rejects: str | None, limit: float, resumed: int, quiet: bool
) -> dict[str, Any]:
    seconds = time.perf_counter() - start
    rate = state.rejected / state.read if state.read else 0.0
    summary = {
        "read": state.read,
        "written": state.written,
        "rejected": state.rejected,
        "truncated": state.truncated,
        "seconds": round(seconds, 3),
        "docs_per_s": round(state.read / seconds, 1) if seconds > 0 else 0.0,
        "reject_rate": round(rate, 6),
        "over_reject_limit": rate > limit,
        "output": output,
        "rejects": rejects,
        "resumed_from_chunk": resumed,
    }
    if not quiet:
        where = f" (see {rejects})" if rejects else ""
        print(
            f"newstag predict: read {state.read:,}, wrote {state.written:,}, rejected {state.rejected:,}{where}, "
            f"truncated {state.truncated:,} in {seconds:.1f} s ({summary['docs_per_s']:,.0f} docs/s) -> {output}",
            file=sys.stderr,
        )
    if summary["over_reject_limit"]:
        print(
            f"newstag predict: {state.rejected:,} of {state.read:,} rows rejected ({rate:.1%}), over "
            f"--max-reject-rate {limit:g}; the reasons are in {rejects or 'the messages above'}",
            file=sys.stderr,
        )
    return summary
