"""Streaming readers for the files a user brings (JSON Lines, CSV/TSV, parquet), one row at a time.

Shared by the data stage and the batch predictor: nothing here loads a whole file. A row that cannot be
read becomes a ``ReadIssue`` in the stream; a file that cannot be read at all raises ``CorpusError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from pipeline.config import CorpusConfig
from pipeline.corpora.base import CorpusError, ReadIssue, Record

FORMATS = ("jsonl", "csv", "tsv", "parquet")
STDIN = "-"
STDIN_NAME = "<stdin>"

_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "jsonlines": "jsonl"}
_SPLITS = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "unused": "unused",
}
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_PARQUET_BATCH = 4096
_CSV_FIELD_LIMIT = 2**31 - 1


Row = dict[str, Any]


def detect_format(path: str | Path, fmt: str | None) -> str:
    """The reader for ``path``: ``fmt`` when given, else from the extension (``.gz`` is looked through).

    Returns one of ``jsonl``, ``csv``, ``tsv``, ``parquet``; stdin (``-``) is JSON Lines.
    """
    if fmt:
        name = _ALIASES.get(fmt.lower(), fmt.lower())
        if name not in FORMATS:
            raise CorpusError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return name
    if str(path) == STDIN:
        return "jsonl"
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    name = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if name is None or (name == "parquet" and str(path).lower().endswith(".gz")):
        known = ", ".join(sorted(_EXTENSIONS))
        raise CorpusError(
            f"{path}: cannot tell the format from the file name (known: {known}, optionally .gz)"
        )
    return name


def iter_rows(
    path: str | Path, fmt: str | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[int, Row | ReadIssue]]:
    """(line number, row dict) for every row of a file, or (line number, ReadIssue) for a row that is bad.

    The file is checked before the first row is asked for: a missing, folder or unreadable path raises
    ``CorpusError`` here. ``path`` ``-`` reads JSON Lines from stdin.
    """
    name = detect_format(path, fmt)
    if str(path) == STDIN:
        if name != "jsonl":
            raise CorpusError(f"stdin: only JSON Lines can be read from stdin, not {name}")
        return _iter_jsonl(_stdin_lines(), STDIN_NAME, encoding)
    path = Path(path)
    check_file(path)
    if name == "parquet":
        return _iter_parquet(path)
    if name == "jsonl":
        return _iter_jsonl_file(path, encoding)
    return _iter_csv(path, encoding, "\t" if name == "tsv" else ",")


def check_file(path: Path) -> None:
    """Raise CorpusError naming ``path`` unless it is a readable file."""
    if not path.exists():
        raise CorpusError(f"{path}: file not found")
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, expected a file")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _stdin_lines() -> Iterator[bytes]:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        yield from buffer
    else:
        for line in sys.stdin:
            yield line.encode("utf-8", "surrogateescape")


def _iter_jsonl_file(path: Path, encoding: str) -> Iterator[tuple[int, Row | ReadIssue]]:
    try:
        with open_binary(path) as fh:
            yield from _iter_jsonl(fh, str(path), encoding)
    except (OSError, EOFError) as exc:
        raise CorpusError(f"{path}: cannot read: {exc}") from exc


def _iter_jsonl(lines: Iterable[bytes], file: str, encoding: str) -> Iterator[tuple[int, Row | ReadIssue]]:
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        item = _parse_json_line(raw, number, file, encoding)
        if item is not None:
            yield number, item


def _parse_json_line(raw: bytes, number: int, file: str, encoding: str) -> Row | ReadIssue | None:
    """The object on one JSON line, None for a blank line, or the issue that stops it."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return ReadIssue(file, number, None, f"not valid {encoding} (byte {exc.start}): line skipped")
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if number == 1 and text.lstrip().startswith("["):
            raise CorpusError(f"{file}: is a JSON array; expected JSON Lines (one object per line)") from None
        return ReadIssue(file, number, None, f"not valid JSON ({exc.msg}, column {exc.colno})")
    if not isinstance(value, dict):
        return ReadIssue(file, number, None, f"not a JSON object (got {_type_name(value)})")
    return value


def _iter_csv(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, Row | ReadIssue]]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)  # whole articles are longer than the 128 KiB default
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        with (
            open_binary(path) as raw,
            io.TextIOWrapper(raw, encoding=codec, errors="surrogateescape", newline="") as fh,
        ):
            yield from _csv_rows(csv.reader(fh, delimiter=delimiter), str(path), encoding)
    except (OSError, EOFError) as exc:
        raise CorpusError(f"{path}: cannot read: {exc}") from exc


def _csv_rows(reader: Any, file: str, encoding: str) -> Iterator[tuple[int, Row | ReadIssue]]:
    header: list[str] | None = None
    last = 0
    while True:
        first = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last = reader.line_num
            yield first, ReadIssue(file, first, None, f"not valid CSV: {exc}")
            continue
        last = reader.line_num
        if not fields:
            continue
        if header is None:
            header = _csv_header(fields, file, encoding)
            continue
        yield first, _csv_row(header, fields, first, file, encoding)


def _csv_header(fields: list[str], file: str, encoding: str) -> list[str]:
    header = [name.strip() for name in fields]
    if _has_undecodable(header):
        raise CorpusError(f"{file}: the header line is not valid {encoding}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CorpusError(f"{file}: repeated column names in the header: {', '.join(duplicates)}")
    return header


def _csv_row(header: list[str], fields: list[str], line: int, file: str, encoding: str) -> Row | ReadIssue:
    if len(fields) != len(header):
        return ReadIssue(file, line, None, f"has {len(fields)} fields, the header has {len(header)}")
    if _has_undecodable(fields):
        return ReadIssue(file, line, None, f"not valid {encoding}: row skipped")
    return dict(zip(header, fields, strict=True))


def _has_undecodable(values: list[str]) -> bool:
    """True when a value carries bytes the codec could not decode (kept as lone surrogates)."""
    try:
        for value in values:
            value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _iter_parquet(path: Path) -> Iterator[tuple[int, Row | ReadIssue]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{path}: not a readable parquet file: {exc}") from exc
    return _parquet_rows(parquet)


def _parquet_rows(parquet: Any) -> Iterator[tuple[int, Row | ReadIssue]]:
    number = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
            for row in batch.to_pylist():
                number += 1
                yield number, row


def normalise_split(value: Any) -> str | None:
    """``train``, ``test``, ``validation``, ``unused`` or ``""`` for a split name; None if it is unknown."""
    if value is None:
        return ""
    name = str(value).strip().lower()
    if not name:
        return ""
    return _SPLITS.get(name)


def row_to_record(
    row: Row, line: int, file: str, cfg: CorpusConfig, issues: list[ReadIssue]
) -> Record | None:
    """The canonical record for one row, with its columns named by ``cfg``; None (and an issue) if unusable.

    The split comes from ``cfg.split_field`` when set (otherwise ``""``; callers that know it set it).
    """
    text = _text_of(row, line, file, cfg, issues)
    if text is None:
        return None
    ident = _id_of(row.get(cfg.id_field), line, file)
    labels = _labels_of(row, line, file, cfg, ident, issues)
    if labels is None:
        return None
    return Record(
        id=ident,
        title=_title_of(row, cfg),
        text=text,
        date=_date_of(row, cfg),
        split=_split_of(row, line, file, cfg, ident, issues),
        labels=labels,
    )


def _text_of(row: Row, line: int, file: str, cfg: CorpusConfig, issues: list[ReadIssue]) -> str | None:
    value = row.get(cfg.text_field)
    reason = None
    if value is None:
        reason = "missing" if cfg.text_field not in row else "is null"
    elif not isinstance(value, str):
        reason = f"is not a string (got {_type_name(value)})"
    elif not value.strip():
        reason = "is empty"
    if reason is None:
        return value.strip()
    ident = _id_of(row.get(cfg.id_field), line, file)
    issues.append(ReadIssue(file, line, cfg.text_field, f"text {reason}: row skipped", ident))
    return None


def _id_of(value: Any, line: int, file: str) -> str:
    text = _scalar_text(value)
    return text if text else f"{Path(file).stem}:{line}"


def _title_of(row: Row, cfg: CorpusConfig) -> str:
    if not cfg.title_field:
        return ""
    return _scalar_text(row.get(cfg.title_field)) or ""


def _date_of(row: Row, cfg: CorpusConfig) -> str | None:
    if not cfg.date_field:
        return None
    return _scalar_text(row.get(cfg.date_field)) or None


def _scalar_text(value: Any) -> str | None:
    """A string, number or date as stripped text; None for null, NaN and anything else."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None


def _split_of(row: Row, line: int, file: str, cfg: CorpusConfig, ident: str, issues: list[ReadIssue]) -> str:
    if not cfg.split_field or cfg.split_scheme == "none":
        return ""
    value = row.get(cfg.split_field)
    split = normalise_split(value)
    if split is None:
        reason = f"unknown split {value!r} (expected train, test or validation): marked unused"
        issues.append(ReadIssue(file, line, cfg.split_field, reason, ident, kept=True))
        return "unused"
    return split


def _labels_of(
    row: Row, line: int, file: str, cfg: CorpusConfig, ident: str, issues: list[ReadIssue]
) -> dict[str, list[str]] | None:
    labels: dict[str, list[str]] = {}
    for source, column in cfg.label_fields.items():
        values = parse_labels(row.get(column), cfg.label_delimiter)
        if values is None:
            got = _type_name(row.get(column))
            reason = (
                f"labels must be a list of strings or a {cfg.label_delimiter!r}-separated string, got {got}"
            )
            issues.append(ReadIssue(file, line, column, f"{reason}: row skipped", ident))
            return None
        labels[source] = values
    return labels


def parse_labels(value: Any, delimiter: str) -> list[str] | None:
    """Labels from a list or a delimited string, without blanks or repeats; [] for null; None if unusable."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(delimiter) if delimiter else [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    texts = [_scalar_text(item) if not isinstance(item, bool) else None for item in items if item is not None]
    if any(text is None for text in texts):
        return None
    return list(dict.fromkeys(text for text in texts if text))


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def read_files(cfg: CorpusConfig, issues: list[ReadIssue]) -> Iterator[Record]:
    """Records from ``cfg.files`` (split = the key) or from ``cfg.path`` (split from ``cfg.split_field``).

    Every file is checked before the first record is read.
    """
    sources = _sources(cfg)
    for _, path in sources:
        if str(path) != STDIN:
            check_file(Path(path))
    return _read_sources(sources, cfg, issues)


def _sources(cfg: CorpusConfig) -> list[tuple[str | None, str]]:
    """(split or None when rows say it, path) for each input file."""
    if cfg.files:
        out = []
        for key, path in cfg.files.items():
            split = normalise_split(key)
            if not split:
                raise CorpusError(f"corpus.files: unknown split {key!r}; use train, test or validation")
            out.append(("" if cfg.split_scheme == "none" else split, path))
        return out
    if cfg.path:
        return [(None, cfg.path)]
    raise CorpusError(
        f"corpus: format {cfg.format} needs corpus.path (one file) or corpus.files (split -> file)"
    )


def _read_sources(
    sources: list[tuple[str | None, str]], cfg: CorpusConfig, issues: list[ReadIssue]
) -> Iterator[Record]:
    for split, path in sources:
        file = STDIN_NAME if path == STDIN else path
        for line, item in iter_rows(path, _format_for(path, cfg.format), cfg.encoding):
            if isinstance(item, ReadIssue):
                issues.append(item)
                continue
            record = row_to_record(item, line, file, cfg, issues)
            if record is not None:
                if split is not None:
                    record.split = split
                yield record


def _format_for(path: str, fmt: str) -> str:
    """The configured format, except that a ``.tsv`` file in a csv corpus is read as TSV."""
    name = path.lower().removesuffix(".gz")
    return "tsv" if fmt == "csv" and name.endswith((".tsv", ".tab")) else fmt
