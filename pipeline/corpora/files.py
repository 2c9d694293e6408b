"""Streaming readers for the files a user brings (JSON Lines, CSV/TSV, parquet), one row at a time.

Shared by the data stage and the batch predictor: nothing here loads a whole file. A row that cannot be
read becomes a ``ReadIssue`` in the stream; a file that cannot be read at all raises ``CorpusError``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pipeline.corpora.base import CorpusError, ReadIssue, Record
from pipeline.corpora.documents import Fields, document_of, no_surrogates, scalar_text, type_name

if TYPE_CHECKING:  # annotations only: reading rows does not need the config schema (pydantic)
    from pipeline.config import CorpusConfig

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
MAX_LINE_BYTES = 64 * 2**20  # the longest line read (JSON Lines: bytes; CSV: characters); longer: a reject
_SKIP_CHUNK = 2**20  # the rest of an over-long line is read and dropped this many bytes at a time
_READ_ERRORS = (OSError, EOFError, zlib.error)  # zlib.error: a corrupt deflate stream inside a .gz


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
    path: str | Path,
    fmt: str | None = None,
    encoding: str = "utf-8",
    columns: Sequence[str] | None = None,
    max_line: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, Row | ReadIssue]]:
    """(line number, row dict) for every row of a file, or (line number, ReadIssue) for a row that is bad.

    The file is checked before the first row is asked for: a missing, folder or unreadable path raises
    ``CorpusError`` here. ``path`` ``-`` reads JSON Lines from stdin. ``columns``: a CSV/TSV without a header
    line, its columns named in order. No read holds more than ``max_line`` bytes (JSON Lines) or characters
    (CSV) of one line or field: a longer line is a ``ReadIssue`` and reading goes on at the next line.
    """
    name = detect_format(path, fmt)
    if str(path) == STDIN:
        if name != "jsonl":
            raise CorpusError(f"stdin: only JSON Lines can be read from stdin, not {name}")
        return _iter_jsonl(_stdin_lines(max_line), STDIN_NAME, encoding, max_line)
    path = Path(path)
    check_file(path)
    if name == "parquet":
        return _iter_parquet(path)
    if name == "jsonl":
        return _iter_jsonl_file(path, encoding, max_line)
    return _iter_csv(path, encoding, "\t" if name == "tsv" else ",", columns, max_line)


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
    if not gzipped:
        return path.open("rb")
    import gzip

    return gzip.open(path, "rb")


def _stdin_lines(limit: int) -> Iterator[bytes | None]:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        yield from bounded_lines(buffer, limit)
    else:
        for line in sys.stdin:
            yield line.encode("utf-8", "surrogateescape")


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The lines of a binary stream, never holding more than ``limit`` bytes of one: a longer line comes out
    as None (its bytes are read and dropped), and the next line is read as usual."""
    read, size = stream.readline, limit + 1
    while raw := read(size):
        if len(raw) < size or raw.endswith(b"\n"):
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = read(_SKIP_CHUNK)
        yield None


def _too_long(file: str, number: int, limit: int, unit: str = "bytes") -> ReadIssue:
    return ReadIssue(file, number, None, f"line longer than {limit:,} {unit} (the line limit): row skipped")


def _iter_jsonl_file(path: Path, encoding: str, limit: int) -> Iterator[tuple[int, Row | ReadIssue]]:
    number = 0
    try:
        with open_binary(path) as fh:
            for number, item in _iter_jsonl(bounded_lines(fh, limit), str(path), encoding, limit):
                yield number, item
    except _READ_ERRORS as exc:
        raise CorpusError(f"{path}: cannot read past line {number}: {exc}") from exc


def _iter_jsonl(
    lines: Iterable[bytes | None], file: str, encoding: str, limit: int
) -> Iterator[tuple[int, Row | ReadIssue]]:
    for number, raw in enumerate(lines, 1):
        if raw is None:
            yield number, _too_long(file, number, limit)
            continue
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
        if number == 1 and _looks_like_json_array(text):
            raise CorpusError(f"{file}: is a JSON array; expected JSON Lines (one object per line)") from None
        return ReadIssue(file, number, None, f"not valid JSON ({exc.msg}, column {exc.colno})")
    except RecursionError:
        return ReadIssue(file, number, None, "not readable JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        return ReadIssue(file, number, None, f"not readable JSON: {exc}")
    if not isinstance(value, dict):
        return ReadIssue(file, number, None, f"not a JSON object (got {type_name(value)})")
    return value


def _looks_like_json_array(text: str) -> bool:
    """True for the first line of a JSON array of objects (``[`` alone, or ``[{...``), not for any line
    that happens to start with a bracket."""
    head = text.strip()
    return head == "[" or (head.startswith("[") and head[1:].lstrip().startswith("{"))


def _iter_csv(
    path: Path, encoding: str, delimiter: str, columns: Sequence[str] | None, limit: int
) -> Iterator[tuple[int, Row | ReadIssue]]:
    # whole articles are longer than the 128 KiB default; a field longer than a line is not read whole either
    csv.field_size_limit(limit)
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    lines = None
    try:
        with (
            open_binary(path) as raw,
            io.TextIOWrapper(raw, encoding=codec, errors="surrogateescape", newline="") as fh,
        ):
            lines = _ReplayableLines(fh, limit)
            yield from _csv_rows(lines, delimiter, str(path), encoding, columns)
    except _READ_ERRORS as exc:
        where = f" past line {lines.number}" if lines is not None else ""
        raise CorpusError(f"{path}: cannot read{where}: {exc}") from exc


class _ReplayableLines:
    """The lines of a text stream, numbered, remembering those of the current CSV row so that a malformed
    row that swallowed the lines after it (an unclosed quote) can hand them back to be read again. A line
    longer than ``limit`` characters is read and dropped (it reads as a blank line) and its number noted in
    ``too_long``."""

    def __init__(self, stream: IO[str], limit: int) -> None:
        self._read, self.limit = stream.readline, limit
        self.too_long: list[int] = []
        self._pending: list[tuple[int, str]] = []  # lines handed back, the next one last
        self._row: list[tuple[int, str]] = []
        self._fresh = 1  # the number of the next line from the stream
        self.number = 0  # the number of the last line read

    def __iter__(self) -> _ReplayableLines:
        return self

    def __next__(self) -> str:
        if self._pending:
            self.number, line = self._pending.pop()
        else:
            line = self._read(self.limit + 1)
            if not line:
                raise StopIteration
            self.number, self._fresh = self._fresh, self._fresh + 1
            if len(line) > self.limit and not line.endswith(("\n", "\r")):
                while line and not line.endswith(("\n", "\r")):
                    line = self._read(_SKIP_CHUNK)
                self.too_long.append(self.number)
                line = "\n"
        self._row.append((self.number, line))
        return line

    def start_row(self) -> int:
        """Forget the lines of the previous row; returns the number of the line the next row starts on."""
        self._row = []
        return self._pending[-1][0] if self._pending else self._fresh

    def row_lines(self) -> int:
        """How many lines the current row took."""
        return len(self._row)

    def replay_after_first(self) -> None:
        """Hand back every line of the current row but its first, to be read as rows again."""
        self._pending.extend(reversed(self._row[1:]))
        self._row = []


def _csv_rows(
    lines: _ReplayableLines, delimiter: str, file: str, encoding: str, columns: Sequence[str] | None = None
) -> Iterator[tuple[int, Row | ReadIssue]]:
    """Rows of a CSV stream. ``strict`` parsing reports a quote left open at the end of the file instead
    of silently joining every later line into one field; a malformed row that spans several lines is
    reported on its first line and the lines after it are read again, so the rows it swallowed are kept.
    ``columns``: the stream has no header line; these name its columns."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = list(columns) if columns else None
    while True:
        first = lines.start_row()
        try:
            fields = next(reader)
        except StopIteration:
            yield from _too_long_lines(lines, file)
            return
        except csv.Error as exc:
            yield from _too_long_lines(lines, file)
            yield first, ReadIssue(file, first, None, f"not valid CSV: {exc}: row skipped")
            if lines.row_lines() > 1:
                lines.replay_after_first()
            continue
        yield from _too_long_lines(lines, file)
        if not fields:
            continue
        if header is None:
            header = _csv_header(fields, file, encoding)
            continue
        row = _csv_row(header, fields, first, file, encoding)
        if isinstance(row, ReadIssue) and len(fields) != len(header) and lines.row_lines() > 1:
            lines.replay_after_first()
        yield first, row


def _too_long_lines(lines: _ReplayableLines, file: str) -> Iterator[tuple[int, ReadIssue]]:
    """An issue for each line the last row read dropped for its length."""
    for number in lines.too_long:
        yield number, _too_long(file, number, lines.limit, "characters")
    lines.too_long.clear()


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
        parquet = pq.ParquetFile(path, page_checksum_verification=True)  # when the writer stored CRCs
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{path}: not a readable parquet file: {exc}") from exc
    return _parquet_rows(parquet, str(path))


def _parquet_rows(parquet: Any, file: str) -> Iterator[tuple[int, Row | ReadIssue]]:
    """Rows one row group at a time: in a row group that cannot be decoded, each row not yet read becomes an
    issue (the count comes from the row group's metadata) and reading goes on with the next group."""
    import pyarrow as pa

    number = 0
    with parquet:
        for group in range(parquet.num_row_groups):
            end = number + parquet.metadata.row_group(group).num_rows
            try:
                for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, row_groups=[group]):
                    for row in batch.to_pylist():
                        number += 1
                        yield number, row
            except (pa.ArrowException, OSError) as exc:
                # every row the group held is a reject, so that a reject limit counts them all
                reason = f"row group {group} (rows {number + 1}-{end}) cannot be read ({exc}): row skipped"
                for lost in range(number + 1, end + 1):
                    yield lost, ReadIssue(file, lost, None, reason)
            number = end


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
    A lone surrogate (JSON ``"\\ud800"``, which no encoder can write) in the title, text, date, split or a
    label becomes U+FFFD, with a note; in the id it rejects the row (``document_of``). Labels pass through
    ``cfg.label_map`` when one is set.
    """
    doc = document_of(row, Fields(cfg.id_field, cfg.title_field, cfg.text_field), file, line)
    if isinstance(doc, ReadIssue):
        issues.append(doc)
        return None
    ident = doc.id
    row = _replace_surrogates(row, line, file, cfg, ident, issues)
    labels = _labels_of(row, line, file, cfg, ident, issues)
    if labels is None:
        return None
    return Record(
        id=ident,
        title=doc.title,
        text=doc.text,
        date=_date_of(row, cfg),
        split=_split_of(row, line, file, cfg, ident, issues),
        labels=labels,
    )


def _replace_surrogates(
    row: Row, line: int, file: str, cfg: CorpusConfig, ident: str, issues: list[ReadIssue]
) -> Row:
    """``row`` with lone surrogates in the columns ``cfg`` reads replaced by U+FFFD (one note per column)."""
    columns = [cfg.title_field, cfg.text_field, cfg.date_field, cfg.split_field]
    changed = {}
    for column in dict.fromkeys([*columns, *cfg.label_fields.values()]):
        if column and (clean := no_surrogates(row.get(column))) is not row.get(column):
            changed[column] = clean
    if not changed:
        return row
    for column in changed:
        reason = "invalid Unicode (a lone surrogate) replaced by U+FFFD: kept"
        issues.append(ReadIssue(file, line, column, reason, ident, kept=True))
    return {**row, **changed}


def _date_of(row: Row, cfg: CorpusConfig) -> str | None:
    if not cfg.date_field:
        return None
    return scalar_text(row.get(cfg.date_field)) or None


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
    names = label_map_of(cfg)
    for source, column in cfg.label_fields.items():
        values = parse_labels(row.get(column), cfg.label_delimiter)
        if values is None:
            got = type_name(row.get(column))
            reason = (
                f"labels must be a list of strings or a {cfg.label_delimiter!r}-separated string, got {got}"
            )
            issues.append(ReadIssue(file, line, column, f"{reason}: row skipped", ident))
            return None
        if names is not None:
            unknown = [v for v in values if v not in names]
            if unknown:
                known = ", ".join(list(names)[:10]) + (", ..." if len(names) > 10 else "")
                reason = f"label {unknown[0]!r} is not in corpus.label_map ({known}): row skipped"
                issues.append(ReadIssue(file, line, column, reason, ident))
                return None
            values = list(dict.fromkeys(names[v] for v in values))
        labels[source] = values
    return labels


def label_map_of(cfg: CorpusConfig) -> dict[str, str] | None:
    """``cfg.label_map`` as raw label -> label name: the mapping itself, or a classes file read once (its
    line N, counted from ``cfg.label_map_start``, names class N); None without one."""
    if cfg.label_map is None or isinstance(cfg.label_map, dict):
        return cfg.label_map
    return read_classes(cfg.label_map, cfg.label_map_start)


@lru_cache(maxsize=8)
def read_classes(path: str, start: int = 1) -> dict[str, str]:
    """A ``classes.txt``-style file (one class name per line; blank lines at the end ignored) as
    index -> name, the first line being index ``start``; CorpusError naming the file if it is unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"corpus.label_map: {path}: cannot read the classes file: {exc}") from None
    names = [name.strip() for name in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise CorpusError(f"corpus.label_map: {path}: the classes file is empty")
    blank = [n for n, name in enumerate(names, 1) if not name]
    if blank:
        raise CorpusError(f"corpus.label_map: {path}, line {blank[0]}: blank class name")
    return {str(i): name for i, name in enumerate(names, start)}


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
    texts = [scalar_text(item) if not isinstance(item, bool) else None for item in items if item is not None]
    if any(text is None for text in texts):
        return None
    return list(dict.fromkeys(text for text in texts if text))


def read_files(cfg: CorpusConfig, issues: list[ReadIssue]) -> Iterator[Record]:
    """Records from ``cfg.files`` (split = the key) or from ``cfg.path`` (split from ``cfg.split_field``).

    Every file is checked before the first record is read.
    """
    sources = _sources(cfg)
    for _, path in sources:
        if str(path) != STDIN:
            check_file(Path(path))
    label_map_of(cfg)  # a bad classes file stops here
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
    """The records of every source; a repeated id is kept and noted (``duplicate_note``)."""
    seen: dict[str, tuple[str, int]] = {}
    columns = None if cfg.header else cfg.columns
    for split, path in sources:
        file = STDIN_NAME if path == STDIN else path
        rows = iter_rows(path, _format_for(path, cfg.format), cfg.encoding, columns, cfg.max_line_bytes)
        for line, item in rows:
            if isinstance(item, ReadIssue):
                issues.append(item)
                continue
            record = row_to_record(item, line, file, cfg, issues)
            if record is not None:
                first = seen.setdefault(record.id, (file, line))
                if first != (file, line):
                    issues.append(duplicate_note(record.id, file, line, first, cfg.id_field))
                if split is not None:
                    record.split = split
                yield record


DUPLICATE_ID = "duplicate id"


def duplicate_note(ident: str, file: str, line: int, first: tuple[str, int], field: str) -> ReadIssue:
    """The note on a row whose id an earlier row has: both are kept (the reader cannot tell which is right,
    and both are real articles), and the report counts them."""
    where = f"line {first[1]}" if first[0] == file else f"{first[0]}, line {first[1]}"
    return ReadIssue(file, line, field, f"{DUPLICATE_ID} (first on {where}): kept", ident, kept=True)


def _format_for(path: str, fmt: str) -> str:
    """The configured format, except that a ``.tsv`` file in a csv corpus is read as TSV."""
    name = path.lower().removesuffix(".gz")
    return "tsv" if fmt == "csv" and name.endswith((".tsv", ".tab")) else fmt
