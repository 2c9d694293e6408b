"""Scoring a batch of documents and encoding the result as output bytes (JSON Lines, CSV or Arrow IPC).

``score_chunk`` runs wherever a chunk is scored (this process, a worker process, a Dask worker), so every
engine writes the same bytes. It featurizes once for all axes, scores, labels and hands a ``Scored`` batch to
the encoder of the output format.

CSV is flat, for spreadsheets and tools that read plain cells: label lists joined by ``|``, one
``score_<axis>_<label>`` column per label (empty outside ``--top-k``), with ``--explain`` one
``evidence_<axis>_<label>`` column of ``|``-joined terms, ``truncated`` as ``true``/``false``; a text cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (``csv_safe``), so a
spreadsheet shows it instead of running it as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EVIDENCE_TERMS = 5
SCORE_DECIMALS = 6
LENGTH = struct.Struct("<Q")  # length prefix of one Arrow IPC chunk in a parquet part file


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
    primary: bool = False  # a primary_region column (the model has a regions axis)
    home: str | None = None  # the publication's home country applied when scoring (ISO alpha-2)

    def columns(self) -> list[str]:
        """Output columns, in order."""
        return [
            "id",
            *self.keep_fields,
            *self.axes,
            *(["primary_region"] if self.primary else []),
            "scores",
            *(["evidence"] if self.explain else []),
            "truncated",
        ]

    def csv_columns(self) -> list[str]:
        """The CSV output's columns, in order: one score (and evidence) column per label."""
        per_label = [(a, lab) for a in self.axes for lab in self.labels[a]]
        return [
            "id",
            *self.keep_fields,
            *self.axes,
            *(["primary_region"] if self.primary else []),
            *(f"score_{a}_{lab}" for a, lab in per_label),
            *((f"evidence_{a}_{lab}" for a, lab in per_label) if self.explain else ()),
            "truncated",
        ]

    def arrow_schema(self) -> Any:
        """The parquet schema: plain list and struct columns (they read back with pandas as lists/dicts)."""
        import pyarrow as pa

        def per_label(axis: str, kind: Any) -> Any:
            return pa.struct([pa.field(lab, kind) for lab in self.labels[axis]])

        def per_axis(kind: Any) -> Any:
            return pa.struct([pa.field(a, per_label(a, kind)) for a in self.axes])

        fields = [pa.field("id", pa.string())]
        fields += [pa.field(f, self.keep_types.get(f, pa.string())) for f in self.keep_fields]
        fields += [pa.field(a, pa.list_(pa.string())) for a in self.axes]
        if self.primary:
            fields.append(pa.field("primary_region", pa.string()))
        fields.append(pa.field("scores", per_axis(pa.float64())))
        if self.explain:
            term = pa.list_(pa.struct([pa.field("term", pa.string()), pa.field("weight", pa.float64())]))
            fields.append(pa.field("evidence", per_axis(term)))
        fields.append(pa.field("truncated", pa.bool_()))
        return pa.schema(fields)


@dataclass
class Batch:
    """The documents of one chunk, as sent to a worker: what is scored and what rides along to the output."""

    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    keep: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """A batch after scoring: per axis, every document's probabilities (label order) and labels."""

    batch: Batch
    scores: Mapping[str, np.ndarray]
    labels: Mapping[str, list[list[str]]]
    evidence: list[Any] | None = None  # per document: {axis: {label: [(term, weight), ...]}}
    primary: list[str | None] | None = None  # per document: its primary region (None: no region)


def score_chunk(tagger: Any, enc: Encoding, batch: Batch) -> bytes:
    """The encoded output of one batch: featurize once, score every axis, label, encode.

    With ``enc.home`` the tagger's ``tag`` applies it; with ``enc.primary`` each document gets its primary
    region (``primary_regions``) and ``--explain`` names the place mentions behind a region
    (``explain_places``).
    """
    docs = {"title": batch.titles, "text": batch.texts}
    if enc.home is None:
        M = tagger.transform_docs(docs)
        scores = tagger.scores_from_features(M)
        labels = tagger.labels_from_scores(scores, enc.overrides)
    else:
        M, scores, labels = tagger.tag(docs, enc.overrides, enc.home)
    primary = tagger.primary_regions(scores, labels, M) if enc.primary else None
    evidence = None
    if enc.explain:
        evidence = (
            tagger.explain_places(M, labels, batch.titles, batch.texts, EVIDENCE_TERMS, enc.overrides)
            if enc.primary
            else tagger.explain_features(M, labels, EVIDENCE_TERMS, enc.overrides)
        )
    return encode_scored(enc, Scored(batch, scores, labels, evidence, primary))


def encode_scored(enc: Encoding, scored: Scored) -> bytes:
    """The output bytes of a scored batch in ``enc.fmt``."""
    if enc.fmt == "jsonl" and scored.evidence is None and enc.top_k is None:
        return _encode_jsonl_fast(enc, scored)
    if enc.fmt == "parquet":
        return _encode_arrow(enc, scored)
    if enc.fmt == "csv":
        return _encode_csv(enc, scored)
    return _encode_jsonl(_rows(enc, scored))


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


def _doc_scores(enc: Encoding, scored: Scored) -> list[dict[str, dict[str, float]]]:
    """Per document: {axis: {label: probability}} as the output writes it."""
    table = _score_table(enc, scored.scores)
    return [{axis: table[axis][i] for axis in enc.axes} for i in range(len(scored.batch.ids))]


def _evidence_of(doc: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], term: Callable) -> dict:
    """One document's evidence with each (term, weight) pair turned into ``term(t, w)``."""
    return {
        axis: {lab: [term(t, w) for t, w in terms] for lab, terms in per.items()} for axis, per in doc.items()
    }


def _rows(enc: Encoding, scored: Scored) -> Iterator[dict[str, Any]]:
    """The output rows of a scored batch, as dicts in column order."""
    batch, axes = scored.batch, enc.axes
    for i, (ident, scores) in enumerate(zip(batch.ids, _doc_scores(enc, scored), strict=True)):
        row: dict[str, Any] = {"id": ident}
        for name in enc.keep_fields:
            row[name] = batch.keep[name][i]
        for axis in axes:
            row[axis] = scored.labels[axis][i]
        if enc.primary:
            row["primary_region"] = scored.primary[i] if scored.primary is not None else None
        row["scores"] = scores
        if scored.evidence is not None:
            row["evidence"] = _evidence_of(scored.evidence[i], lambda t, w: [t, w])
        row["truncated"] = batch.truncated[i]
        yield row


def _dumps() -> Callable[[Any], str]:
    """The JSON encoder every format uses for values: UTF-8 as is, anything unknown as its ``str``."""
    return json.JSONEncoder(ensure_ascii=False, default=str).encode


def _encode_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    dumps = _dumps()
    return "".join([dumps(row) + "\n" for row in rows]).encode("utf-8")


def _encode_jsonl_fast(enc: Encoding, scored: Scored) -> bytes:
    """The bytes ``_encode_jsonl`` writes for rows with all scores and no evidence, without building them.

    Each line is one ``%`` template over the row's values: its JSON texts (id, kept values, label lists,
    primary region) and its scores, each ``%r`` (``repr`` of a float is what the JSON encoder writes). The
    JSON of each distinct label list is made once per chunk.
    """
    dumps, batch = _dumps(), scored.batch
    if not batch.ids:
        return b""

    def name(text: Any) -> str:  # a key as the template holds it
        return dumps(text).replace("%", "%%")

    scores = ", ".join(
        f"{name(a)}: {{" + ", ".join(f"{name(lab)}: %r" for lab in enc.labels[a]) + "}" for a in enc.axes
    )
    template = (
        ", ".join(
            [
                '{"id": %s',
                *(f"{name(field)}: %s" for field in enc.keep_fields),
                *(f"{name(a)}: %s" for a in enc.axes),
                *(['"primary_region": %s'] if enc.primary else []),
                f'"scores": {{{scores}}}',
                '"truncated": %s',
            ]
        )
        + "}\n"
    )
    label_json: dict[tuple[str, ...], str] = {}

    def labels_text(row: Sequence[str]) -> str:
        key = tuple(row)
        text = label_json.get(key)
        if text is None:
            text = label_json[key] = dumps(list(key))
        return text

    columns = [list(map(dumps, batch.ids))]
    columns += [list(map(dumps, batch.keep[field])) for field in enc.keep_fields]
    columns += [list(map(labels_text, scored.labels[a])) for a in enc.axes]
    if enc.primary:
        primary = scored.primary if scored.primary is not None else [None] * len(batch.ids)
        columns.append(list(map(dumps, primary)))
    n = len(batch.ids)
    values = np.round(
        np.hstack([np.asarray(scored.scores[a], dtype=np.float64).reshape(n, -1) for a in enc.axes]),
        SCORE_DECIMALS,
    ).tolist()
    flags = ["true" if t else "false" for t in batch.truncated]
    lines = [
        template % (*texts, *row, flag)
        for texts, row, flag in zip(zip(*columns, strict=True), values, flags, strict=True)
    ]
    return "".join(lines).encode("utf-8")


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
LABEL_JOIN = "|"


def csv_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula (OWASP's CSV injection
    rule: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return)."""
    return "'" + text if text.startswith(FORMULA_LEADS) else text


def _csv_cell(value: Any, dumps: Callable[[Any], str]) -> str:
    """A kept column's cell: text made safe, null empty, a number as written, a list or object as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_safe(value)
    if isinstance(value, bool | int | float):
        return dumps(value)
    return csv_safe(dumps(value))


def _encode_csv(enc: Encoding, scored: Scored) -> bytes:
    dumps, batch = _dumps(), scored.batch
    per_label = [(a, lab) for a in enc.axes for lab in enc.labels[a]]
    primary = scored.primary if scored.primary is not None else [None] * len(batch.ids)
    rows = []
    for i, (ident, scores) in enumerate(zip(batch.ids, _doc_scores(enc, scored), strict=True)):
        cells = [csv_safe(ident)]
        cells += [_csv_cell(batch.keep[name][i], dumps) for name in enc.keep_fields]
        cells += [csv_safe(LABEL_JOIN.join(scored.labels[a][i])) for a in enc.axes]
        if enc.primary:
            cells.append(csv_safe(primary[i] or ""))
        for axis, label in per_label:
            value = scores[axis].get(label)
            cells.append("" if value is None else repr(value))
        if enc.explain:
            evidence = scored.evidence[i] if scored.evidence is not None else {}
            for axis, label in per_label:
                terms = evidence.get(axis, {}).get(label, ())
                cells.append(csv_safe(LABEL_JOIN.join(t for t, _ in terms)))
        cells.append("true" if batch.truncated[i] else "false")
        rows.append(cells)
    return _csv_text(rows).encode("utf-8")


def _csv_text(rows: list[list[str]]) -> str:
    """CSV lines ending in ``\\n``; a cell holding a carriage return is quoted too (Python 3.11's writer
    quotes only the characters of its line terminator, so such rows are written one at a time with CRLF)."""
    buffer = io.StringIO()
    if not any("\r" in cell for row in rows for cell in row):
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()
    writer, lines = csv.writer(buffer, lineterminator="\r\n"), []
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2] + "\n")
    return "".join(lines)


def csv_header(enc: Encoding) -> bytes:
    """The CSV header line of the output."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(enc.csv_columns())
    return buffer.getvalue().encode("utf-8")


def _keep_column(values: list[Any], arrow_type: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_string(arrow_type):
        dumps = _dumps()
        values = [v if v is None or isinstance(v, str) else dumps(v) for v in values]
    return pa.array(values, type=arrow_type)


def _encode_arrow(enc: Encoding, scored: Scored) -> bytes:
    """One length-prefixed Arrow IPC stream holding the batch's output table."""
    import pyarrow as pa

    schema, batch = enc.arrow_schema(), scored.batch
    columns: dict[str, Any] = {"id": pa.array(batch.ids, type=pa.string())}
    for name in enc.keep_fields:
        columns[name] = _keep_column(batch.keep[name], schema.field(name).type)
    for axis in enc.axes:
        columns[axis] = pa.array(scored.labels[axis], type=schema.field(axis).type)
    if enc.primary:
        primary = scored.primary if scored.primary is not None else [None] * len(batch.ids)
        columns["primary_region"] = pa.array(primary, type=pa.string())
    columns["scores"] = pa.array(_doc_scores(enc, scored), type=schema.field("scores").type)
    if scored.evidence is not None:
        docs = [_evidence_of(d, lambda t, w: {"term": t, "weight": w}) for d in scored.evidence]
        columns["evidence"] = pa.array(docs, type=schema.field("evidence").type)
    columns["truncated"] = pa.array(batch.truncated, type=pa.bool_())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(pa.table(columns, schema=schema))
    data = sink.getvalue().to_pybytes()
    return LENGTH.pack(len(data)) + data
