"""``newstag init``: look at the first rows of a corpus a user brings and write a config that trains as is.

The guesses (which column holds the id, the title, the text and the label; whether a CSV has a header;
whether labels are class indices; whether each document has one label) come from a sample of the file, are
shown as a table, and are written as a commented config that ``load_config`` accepts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import load_config
from pipeline.corpora.base import CorpusError, ReadIssue
from pipeline.corpora.files import detect_format, iter_rows, open_binary
from pipeline.corpora.folders import label_folders
from pipeline.errors import UsageError

SAMPLE_ROWS = 200
"""Rows read to guess the roles of the columns."""

LABEL_ROWS = 20_000
"""Rows read to list the label values (a file sorted by label would show one label in its first rows)."""

EXAMPLE_CHARS = 60
AXIS = "themes"
"""The axis a brought corpus's labels feed (``tune.metric``'s default names it)."""

CLASSES_FILES = ("classes.txt", "labels.txt")

_ID_NAMES = ("id", "doc_id", "docid", "article_id", "guid", "uuid", "key", "story_id", "item_id", "url")
_TITLE_NAMES = ("title", "headline", "head", "heading", "subject", "hed")
_TEXT_NAMES = (
    "text",
    "body",
    "content",
    "article",
    "story",
    "description",
    "abstract",
    "summary",
    "full_text",
    "document",
    "lede",
)
_LABEL_NAMES = (
    "label",
    "labels",
    "category",
    "categories",
    "class",
    "class_index",
    "topic",
    "topics",
    "section",
    "sections",
    "tag",
    "tags",
    "target",
    "theme",
    "themes",
    "desk",
)
_DATE_NAMES = ("date", "published", "published_at", "pubdate", "publish_date", "created", "timestamp", "time")
_SPLIT_NAMES = ("split", "set", "fold", "subset", "partition")
_SPLIT_VALUES = {"train", "test", "validation", "valid", "val", "dev", "training", "testing"}
_DELIMITERS = ("|", ";")
_INT = re.compile(r"^[+-]?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,39}$")


@dataclass
class Column:
    """What the sample shows of one column."""

    name: str
    values: list[Any]

    @property
    def texts(self) -> list[str]:
        return [_text(v) for v in self.values if _text(v)]

    @property
    def filled(self) -> int:
        return len(self.texts)

    @property
    def mean_len(self) -> float:
        texts = self.texts
        return sum(map(len, texts)) / len(texts) if texts else 0.0

    @property
    def distinct(self) -> int:
        return len(set(self.texts))

    @property
    def all_int(self) -> bool:
        texts = self.texts
        return bool(texts) and all(_INT.match(t) for t in texts)

    @property
    def lists(self) -> bool:
        return any(isinstance(v, list | tuple) for v in self.values)

    @property
    def wordy(self) -> float:
        """Share of values with at least three words."""
        texts = self.texts
        return sum(len(t.split()) >= 3 for t in texts) / len(texts) if texts else 0.0


@dataclass
class Guess:
    """What ``init`` found out about a corpus, and how it will describe it."""

    path: str
    format: str  # csv, jsonl, parquet, folders
    columns: list[str] = field(default_factory=list)
    header: bool | None = None  # CSV only
    encoding: str = "utf-8"
    roles: dict[str, str] = field(
        default_factory=dict
    )  # role (id, title, text, label, date, split) -> column
    examples: dict[str, str] = field(default_factory=dict)  # column -> an example value
    rows_sampled: int = 0
    label_values: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    multi_label: bool = False
    label_lists: bool = False  # label values are lists (JSON, parquet), not delimited strings
    label_delimiter: str = "|"
    class_indices: bool = False
    label_map: dict[str, str] | None = None
    classes_file: str | None = None
    label_map_start: int = 1
    files: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading a sample


def _text(value: Any) -> str:
    if value is None or isinstance(value, list | tuple | dict):
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def sample_csv(path: Path, delimiter: str, n: int) -> tuple[list[list[str]], str]:
    """The first ``n + 1`` non-empty rows of a CSV/TSV file as lists of fields, and the encoding read."""
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(2**31 - 1)
    for encoding in ("utf-8-sig", "latin-1"):
        rows: list[list[str]] = []
        try:
            with open_binary(path) as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as fh:
                for fields in csv.reader(fh, delimiter=delimiter):
                    if fields:
                        rows.append(fields)
                    if len(rows) > n:
                        break
        except UnicodeDecodeError:
            continue
        except csv.Error as exc:
            raise CorpusError(f"{path}: not readable as CSV: {exc}") from None
        return rows, "utf-8" if encoding == "utf-8-sig" else encoding
    raise CorpusError(f"{path}: not valid text")  # pragma: no cover - latin-1 decodes any byte


def has_header(rows: list[list[str]]) -> bool:
    """Whether the first row of a CSV sample names its columns rather than holding data.

    A header's cells are short names (not numbers, not sentences, all different), and at least one column
    tells it apart from the rows below: numbers under a name, or long texts under a short one.
    ``csv.Sniffer.has_header`` decides only when the columns cannot.
    """
    if len(rows) < 2:
        return False
    first, rest = rows[0], rows[1:]
    width = len(first)
    if any(not _IDENT.match(cell.strip()) for cell in first) or len(set(first)) != width:
        return False  # a number, a sentence, a blank or a repeated cell: data
    rest = [r for r in rest if len(r) == width]
    if not rest:
        return True
    columns = [[r[j].strip() for r in rest if r[j].strip()] for j in range(width)]
    if any(below and all(_INT.match(v) for v in below) for below in columns):
        return True  # a name over numbers
    if any(cell.strip() in below for cell, below in zip(first, columns, strict=True)):
        return False  # a first-row value recurs in its column: a label, not a name
    for cell, below in zip(first, columns, strict=True):
        if (
            below
            and sum(map(len, below)) / len(below) >= 30
            and len(cell) < sum(map(len, below)) / len(below) / 3
        ):
            return True  # a short name over long texts
    sample = "\n".join(",".join(f'"{c}"' for c in r) for r in rows[:20])
    try:
        return csv.Sniffer().has_header(sample)
    except csv.Error:
        return False


def _dict_rows(path: Path, fmt: str, n: int) -> tuple[list[dict[str, Any]], int]:
    """The first ``n`` rows of a JSONL or parquet file, and how many rows were bad."""
    rows: list[dict[str, Any]] = []
    bad = 0
    for _, item in iter_rows(path, fmt):
        if isinstance(item, ReadIssue):
            bad += 1
        else:
            rows.append(item)
        if len(rows) >= n:
            break
    return rows, bad


# --------------------------------------------------------------------------- guessing roles


def _by_name(columns: dict[str, Column], names: tuple[str, ...], taken: set[str]) -> str | None:
    lowered = {re.sub(r"[\s-]+", "_", c.lower().strip()): c for c in columns if c not in taken}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _label_like(col: Column, rows: int) -> bool:
    """Few distinct, short values repeated across rows (or lists of them)."""
    if col.lists:
        return True
    if col.filled < max(2, rows // 2) or col.mean_len > 40 or col.wordy > 0.5:
        return False
    return col.distinct <= max(2, min(100, rows // 3)) and col.distinct < col.filled


def guess_roles(columns: dict[str, Column], rows: int) -> dict[str, str]:
    """role -> column: text (required), label (required), title, id, date and split when found."""
    roles: dict[str, str] = {}
    taken: set[str] = set()

    def take(role: str, column: str | None) -> None:
        if column is not None:
            roles[role] = column
            taken.add(column)

    free = lambda: [c for c in columns.values() if c.name not in taken]  # noqa: E731
    take("split", _by_name(columns, _SPLIT_NAMES, taken))
    if "split" not in roles:
        for col in free():
            if col.texts and {t.lower() for t in col.texts} <= _SPLIT_VALUES:
                take("split", col.name)
                break
    take("label", _by_name(columns, _LABEL_NAMES, taken))
    if "label" not in roles:
        candidates = [c for c in free() if _label_like(c, rows)]
        if candidates:  # the fewest distinct values, more than one; left-most on a tie
            take("label", min(candidates, key=lambda c: (c.distinct < 2, c.distinct)).name)
    take("text", _by_name(columns, _TEXT_NAMES, taken))
    take("title", _by_name(columns, _TITLE_NAMES, taken))
    take("id", _by_name(columns, _ID_NAMES, taken))
    take("date", _by_name(columns, _DATE_NAMES, taken))
    if "date" not in roles:
        for col in free():
            if col.texts and all(_DATE.match(t) for t in col.texts):
                take("date", col.name)
                break
    if "text" not in roles:
        wordy = sorted((c for c in free() if c.wordy > 0.5), key=lambda c: -c.mean_len)
        if wordy:
            take("text", wordy[0].name)
    if "title" not in roles and "text" in roles:
        text_len = columns[roles["text"]].mean_len
        titles = [c for c in free() if c.wordy > 0.3 and 10 <= c.mean_len <= 200 and c.mean_len < text_len]
        if titles:
            take("title", max(titles, key=lambda c: c.mean_len).name)
    if "id" not in roles:
        for col in free():
            if col.filled == rows and col.distinct == rows and col.wordy == 0 and col.mean_len <= 64:
                take("id", col.name)
                break
    return roles


def _label_stats(values: list[Any]) -> tuple[Counter[str], bool, str]:
    """(label counts, multi-label?, delimiter) over raw label values."""
    counts: Counter[str] = Counter()
    per_row: list[int] = []
    raw = [v for v in values if not isinstance(v, list | tuple)]
    delimiter = "|"
    texts = [_text(v) for v in raw if _text(v)]
    for cand in _DELIMITERS:
        if texts and sum(cand in t for t in texts) >= max(1, len(texts) // 100):
            delimiter = cand
            break
    for value in values:
        if isinstance(value, list | tuple):
            items = [_text(v) for v in value if _text(v)]
        else:
            text = _text(value)
            items = [p.strip() for p in text.split(delimiter) if p.strip()] if text else []
        per_row.append(len(set(items)))
        counts.update(dict.fromkeys(items, 1))
    multi = any(k > 1 for k in per_row)
    return counts, multi, delimiter


def _classes_beside(path: Path) -> Path | None:
    folder = path if path.is_dir() else path.parent
    for name in CLASSES_FILES:
        cand = folder / name
        if cand.is_file():
            return cand
    return None


def _class_names(classes: Path, indices: list[int]) -> dict[str, str] | None:
    """index -> name from a classes file (one name a line, in index order, from 0 or from 1)."""
    try:
        names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    if not names or not indices:
        return None
    base = 1 if min(indices) >= 1 and max(indices) <= len(names) else 0
    if max(indices) - base >= len(names) or min(indices) - base < 0:
        return None
    return {str(i): names[i - base] for i in range(base, base + len(names))}


# --------------------------------------------------------------------------- the whole look


def inspect_corpus(path: str | Path, sample: int = SAMPLE_ROWS) -> Guess:
    """What ``init`` guesses about the corpus at ``path`` (a file, or a folder of label sub-folders)."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: not found")
    if path.is_dir():
        return _inspect_folders(path)
    fmt = detect_format(path, None)
    guess = Guess(path=str(path), format="csv" if fmt == "tsv" else fmt)
    if fmt in ("csv", "tsv"):
        raw_rows, guess.encoding = sample_csv(path, "\t" if fmt == "tsv" else ",", max(sample, LABEL_ROWS))
        if not raw_rows:
            raise CorpusError(f"{path}: no rows")
        guess.header = has_header(raw_rows[: sample + 1])
        width = max(len(r) for r in raw_rows[: sample + 1])
        names = [c.strip() for c in raw_rows[0]] if guess.header else [f"col{j + 1}" for j in range(width)]
        body = raw_rows[1:] if guess.header else raw_rows
        dict_rows = [dict(zip(names, r, strict=False)) for r in body if len(r) == len(names)]
    else:
        dict_rows, bad = _dict_rows(path, fmt, LABEL_ROWS)
        if not dict_rows:
            raise CorpusError(f"{path}: no readable rows in the first {LABEL_ROWS} ({bad} bad)")
        names = list(dict.fromkeys(k for row in dict_rows[:sample] for k in row))
    head = dict_rows[:sample]
    guess.rows_sampled = len(head)
    columns = {n: Column(n, [r.get(n) for r in head]) for n in names}
    roles = guess_roles(columns, len(head))
    if "text" not in roles:
        found = ", ".join(names)
        raise CorpusError(f"{path}: no column looks like article text (columns: {found})")
    if "label" not in roles:
        found = ", ".join(names)
        raise CorpusError(
            f"{path}: no column looks like a label (columns: {found}); newstag trains on labels"
        )
    if not guess.header and guess.format == "csv":
        names = _name_columns(names, roles)
        rename = dict(zip(columns, names, strict=True))
        roles = {role: rename[c] for role, c in roles.items()}
        dict_rows = [{rename[k]: v for k, v in r.items()} for r in dict_rows]
        head = dict_rows[:sample]
    guess.columns = names
    guess.roles = roles
    for name in names:
        example = next(
            (_text(r.get(name)) or _show(r.get(name)) for r in head if r.get(name) not in (None, "")), ""
        )
        guess.examples[name] = example
    _guess_labels(guess, [r.get(roles["label"]) for r in dict_rows], path)
    guess.files = _split_files(path)
    return guess


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str) if value is not None else ""


def _name_columns(names: list[str], roles: dict[str, str]) -> list[str]:
    """Names for the columns of a header-less CSV: the role's, else ``colN``."""
    role_of = {c: r for r, c in roles.items()}
    return [role_of.get(n, n) for n in names]


def _guess_labels(guess: Guess, values: list[Any], path: Path) -> None:
    counts, guess.multi_label, guess.label_delimiter = _label_stats(values)
    guess.label_lists = any(isinstance(v, list | tuple) for v in values)
    guess.label_counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    labels = sorted(counts, key=lambda v: (len(v), v))
    guess.label_values = labels
    if labels and all(_INT.match(v) for v in labels) and not guess.multi_label:
        guess.class_indices = True
        indices = sorted(int(v) for v in labels)
        labels = [str(i) for i in indices]
        guess.label_values = labels
        classes = _classes_beside(path)
        names = _class_names(classes, indices) if classes else None
        if names:
            guess.label_map = names
            guess.classes_file = str(classes)
            guess.label_map_start = min(int(k) for k in names)
        else:
            guess.label_map = {v: f"class-{v}" for v in labels}
            guess.notes.append(
                f"labels are class indices ({', '.join(labels)}): fill in their names under "
                "corpus.label_map (or put a classes.txt, one name a line, beside the file and run init again)"
            )


def _split_files(path: Path) -> dict[str, str] | None:
    """``{train: ..., test: ...}`` when ``path`` is a train file with a test file beside it."""
    stem, rest = path.name.split(".", 1) if "." in path.name else (path.name, "")
    if stem.lower() not in ("train", "training"):
        return None
    suffix = f".{rest}" if rest else ""
    for other in ("test", "testing"):
        cand = path.with_name(other + suffix)
        if cand.is_file():
            return {"train": str(path), "test": str(cand)}
    return None


def _inspect_folders(path: Path) -> Guess:
    folders = label_folders(path)
    guess = Guess(path=str(path), format="folders")
    guess.columns = ["label", "title", "text"]
    guess.roles = {"label": "label", "title": "title", "text": "text"}
    counts = {f.name: sum(1 for p in f.glob("*.txt") if not p.name.startswith(".")) for f in folders}
    guess.label_counts = counts
    guess.label_values = sorted(counts)
    guess.rows_sampled = sum(counts.values())
    first = next(p for p in sorted(folders[0].glob("*.txt")) if not p.name.startswith("."))
    lines = [line.strip() for line in first.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    guess.examples = {
        "label": folders[0].name,
        "title": lines[0] if lines else "",
        "text": " ".join(lines[1:]) if len(lines) > 1 else "",
    }
    return guess


# --------------------------------------------------------------------------- showing and writing


def _cut(text: str, width: int = EXAMPLE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def guess_table(guess: Guess) -> list[str]:
    """The guesses as a short table: column -> role, with an example value (60 characters at most)."""
    role_of = {c: r for r, c in guess.roles.items()}
    width = max([len("column"), *(len(c) for c in guess.columns)])
    lines = [f"{'column':<{width}}  {'role':<6}  example", f"{'-' * width}  {'-' * 6}  {'-' * 7}"]
    for name in guess.columns:
        role = role_of.get(name, "-")
        lines.append(f"{name:<{width}}  {role:<6}  {_cut(guess.examples.get(name, ''))}")
    return lines


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What ``newstag init`` prints: the source, the table, the label facts, notes and the next command."""
    g = result["guess"]
    src = g["format"]
    if g["format"] == "csv":
        src += ", header row" if g["header"] else ", no header row (first row is data)"
    lines = [
        f"{g['path']}: {src}; columns guessed from the first {g['rows_sampled']} rows",
        *result["table"],
        "",
    ]
    labels = g["label_values"] if g["class_indices"] else list(g["label_counts"])
    counts = g["label_counts"]
    named = g["label_map"] or {}
    shown = ", ".join(
        f"{named[v]} ({v}) {counts.get(v, 0)}" if v in named else f"{v} {counts.get(v, 0)}"
        for v in labels[:12]
    )
    more = f" and {len(labels) - 12} more" if len(labels) > 12 else ""
    lines.append(f"labels ({len(labels)}, documents each in the rows read): {shown}{more}")
    if not g["multi_label"]:
        lines.append("one label per document: single-label (multi_label: false)")
    elif g["label_lists"]:
        lines.append("several labels per document (lists): multi-label")
    else:
        lines.append(f"several labels per document (split on {g['label_delimiter']!r}): multi-label")
    if g["classes_file"]:
        lines.append(f"class names from {g['classes_file']}")
    for note in g["notes"]:
        lines.append(f"note: {note}")
    lines.append(f"wrote {result['config']}")
    lines.append(f"next: newstag train --config {result['config']}")
    return lines


def _q(value: Any) -> str:
    """A YAML scalar (JSON is YAML: strings quoted and escaped as JSON)."""
    return json.dumps(value, ensure_ascii=False)


def _config_path(path: str, base: Path) -> str:
    """``path`` relative to ``base`` (the working directory) when it lies inside it, else absolute."""
    full = Path(path).resolve()
    try:
        return str(full.relative_to(base.resolve()))
    except ValueError:
        return str(full)


def render_config(guess: Guess, name: str, base: Path | None = None) -> str:
    """The config text (YAML with comments) that trains on the guessed corpus as is."""
    base = base or Path.cwd()
    r = guess.roles
    out = [
        f"# Written by `newstag init {guess.path}`: check the guesses, then `newstag train --config ...`.",
        "# Relative paths resolve against the working directory (run newstag from the folder you ran init in).",
        f"name: {name}",
        f"description: {_q(f'{name}: labels from {Path(guess.path).name}, one axis ({AXIS}).')}",
        "corpus:",
        f"  format: {guess.format}",
    ]
    if guess.files:
        out.append("  files:                  # a train file with its test file beside it")
        for split, file in guess.files.items():
            out.append(f"    {split}: {_q(_config_path(file, base))}")
    else:
        out.append(f"  path: {_q(_config_path(guess.path, base))}")
    if guess.format == "csv":
        if not guess.header:
            out.append("  header: false           # the first row is data, not column names")
            out.append(f"  columns: {_q(guess.columns)}")
        if guess.encoding != "utf-8":
            out.append(f"  encoding: {guess.encoding}")
    if guess.format != "folders":
        out.append(f"  text_field: {_q(r['text'])}")
        out.append(f"  title_field: {_q(r['title']) if 'title' in r else 'null'}")
        if "id" in r:
            out.append(f"  id_field: {_q(r['id'])}")
        else:
            out.append("  id_field: id              # no id column: rows are named <file>:<line>")
        if "split" in r:
            out.append(f"  split_field: {_q(r['split'])}   # train/test per row")
        if "date" in r:
            out.append(f"  date_field: {_q(r['date'])}")
        out.append("  label_fields:")
        out.append(f"    label: {_q(r['label'])}")
        if guess.multi_label and not guess.label_lists:
            out.append(f"  label_delimiter: {_q(guess.label_delimiter)}")
    if guess.classes_file:
        out.append(f"  label_map: {_q(_config_path(guess.classes_file, base))}   # class names, one a line")
        out.append(
            f"  label_map_start: {guess.label_map_start}        # the class index its first line names"
        )
    elif guess.label_map:
        out.append(
            "  label_map:               # class index -> name: FILL IN the names (placeholders train as is);"
        )
        out.append("                           # a label missing here rejects its row (prepare reports it)")
        for index, label in guess.label_map.items():
            out.append(f"    {_q(index)}: {_q(label)}")
    out += [
        "split:",
        "  test_fraction: 0.2        # carved out when the source has no test split (stratified, seeded)",
        "  validation_fraction: 0.1  # thresholds and promotion are decided on validation",
        "  seed: 42",
        "axes:",
        f"  {AXIS}:",
        "    source: label",
        "    min_support: 5           # labels with fewer training documents are dropped",
    ]
    if guess.multi_label:
        out.append("    at_least_one: true       # every document gets its best label when none passes")
    else:
        out.append(
            "    multi_label: false       # one label per document: the best one (accuracy is reported)"
        )
    out += [
        "features:",
        "  word:",
        "    ngram_range: [1, 2]",
        "    min_df: 2",
        "  gazetteer:",
        "    enabled: false           # place names -> world regions; for a regions axis only",
        "model:",
        "  classifier: linear_svc",
        "  C: 0.5",
        "tracking:",
        f"  experiment: newstag-{name}",
        f"  registered_model: news-tagger-{name}",
        "tune:",
        f"  metric: validation/{AXIS}/micro_f1",
        "  space:",
        "    model.C: [0.25, 0.5, 1.0]",
    ]
    return "\n".join(out) + "\n"


def config_name(path: str | Path) -> str:
    """A config name from a file or folder name (``ag_news.csv.gz`` -> ``ag_news``)."""
    stem = Path(path).name.split(".")[0] or "corpus"
    if stem.lower() in ("train", "training", "data", "corpus") and Path(path).resolve().parent.name:
        stem = Path(path).resolve().parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._") or "corpus"
    return name if name[0].isalnum() else f"c{name}"


def init_command(
    path: str, out: str | None = None, force: bool = False, name: str | None = None
) -> dict[str, Any]:
    """Inspect ``path``, write the config to ``out`` (default ``configs/<name>.yaml``) and return what was
    guessed. Refuses to overwrite ``out`` without ``force``; the config is checked with ``load_config``
    before it is put in place."""
    name = name or config_name(path)
    target = Path(out) if out else Path("configs") / f"{name}.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target}: already exists; pass --force to overwrite it, or --out another file")
    guess = inspect_corpus(path)
    text = render_config(guess, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.init-tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_config(tmp)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    facts = {k: v for k, v in guess.__dict__.items()}
    return {"config": str(target), "name": name, "guess": facts, "table": guess_table(guess)}
