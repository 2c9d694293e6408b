"""Unit tests of the corpus readers on small files written here (no real corpus, no internet).

Every fixture text below is made up for these tests.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import CorpusConfig
from pipeline.corpora import (
    REUTERS_FILES,
    CorpusError,
    ReadIssue,
    Record,
    check_reuters_dir,
    detect_format,
    download_reuters,
    iter_rows,
    read_corpus,
    read_files,
    read_folders,
    read_huggingface,
    read_reuters,
    row_to_record,
)
from pipeline.corpora.documents import Document, Fields, document_of
from pipeline.corpora.files import parse_labels
from pipeline.corpora.reuters import clean_text, parse_sgml, strip_sign_off


def jsonl_cfg(path: Path | None = None, **kw: object) -> CorpusConfig:
    return CorpusConfig(format="jsonl", path=str(path) if path else None, **kw)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- detect_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.json", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.tsv", "tsv"),
        ("a.parquet", "parquet"),
        ("-", "jsonl"),
    ],
)
def test_detect_format_from_extension(name: str, expected: str) -> None:
    assert detect_format(name, None) == expected


def test_detect_format_forced_wins_over_extension() -> None:
    assert detect_format("rows.txt", "csv") == "csv"
    assert detect_format("rows.csv", "ndjson") == "jsonl"


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.txt", None), ("a", None), ("a.parquet.gz", None), ("a.csv", "xml")]
)
def test_detect_format_unknown_raises(name: str, fmt: str | None) -> None:
    with pytest.raises(CorpusError, match=rf"^{name}: "):
        detect_format(name, fmt)


# ---------------------------------------------------------------------------------------------- JSONL


@pytest.fixture
def messy_jsonl(tmp_path: Path) -> Path:
    lines = [
        json.dumps({"id": "a1", "title": "Rain in Lima", "text": "It rained in Lima.", "places": ["peru"]}),
        "",
        '{"id": "a2", "title": "broken", "text": "no closing brace"',
        json.dumps({"id": "a3", "title": "No text here"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": 4, "text": "  Ships left Oslo.  ", "places": "norway|sweden"}),
    ]
    path = tmp_path / "messy.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b'{"id": "a5", "text": "caf\xe9"}\n')
    return path


def test_iter_rows_jsonl_reports_bad_lines_by_number(messy_jsonl: Path) -> None:
    items = list(iter_rows(messy_jsonl))
    rows = {line: row for line, row in items if isinstance(row, dict)}
    issues = {line: row for line, row in items if isinstance(row, ReadIssue)}
    assert sorted(rows) == [1, 4, 6]
    assert sorted(issues) == [3, 5, 7]
    assert "not valid JSON" in issues[3].reason
    assert "not a JSON object (got a list)" in issues[5].reason
    assert "not valid utf-8" in issues[7].reason
    assert all(issue.file == str(messy_jsonl) and issue.line == line for line, issue in issues.items())


def test_read_files_jsonl_keeps_good_rows_and_names_skipped_ones(messy_jsonl: Path) -> None:
    issues: list[ReadIssue] = []
    records = list(read_files(jsonl_cfg(messy_jsonl, label_fields={"places": "places"}), issues))
    assert [r.id for r in records] == ["a1", "4"]
    assert records[1].text == "Ships left Oslo."
    assert records[1].labels == {"places": ["norway", "sweden"]}
    assert records[0].labels == {"places": ["peru"]}
    assert [(i.line, i.field) for i in issues] == [(3, None), (4, "text"), (5, None), (7, None)]
    assert issues[1].id == "a3" and "missing" in issues[1].reason


def test_iter_rows_jsonl_accepts_bom_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "x", "text": "one"}\n\n   \n{"id": "y", "text": "two"}\r\n')
    assert list(iter_rows(path)) == [(1, {"id": "x", "text": "one"}), (4, {"id": "y", "text": "two"})]


def test_iter_rows_jsonl_gz_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write('{"id": "g1", "text": "zipped"}\n{"id": "g2", "text": "also zipped"}\n')
    assert [row["id"] for _, row in iter_rows(path)] == ["g1", "g2"]


def test_iter_rows_json_array_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text('[{"id": 1, "text": "a"},\n {"id": 2, "text": "b"}]\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="JSON array"):
        list(iter_rows(path))


def test_iter_rows_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"id": "s1", "text": "from a pipe"}\nnot json\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    items = list(iter_rows("-"))
    assert items[0] == (1, {"id": "s1", "text": "from a pipe"})
    assert items[1][0] == 2 and isinstance(items[1][1], ReadIssue) and items[1][1].file == "<stdin>"


def test_read_files_from_stdin_uses_stdin_name_for_missing_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"text": "no id at all"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    records = list(read_files(CorpusConfig(format="jsonl", path="-"), []))
    assert [r.id for r in records] == ["<stdin>:1"]


def test_missing_file_raises_before_iteration(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(CorpusError, match=r"nope\.jsonl: file not found"):
        iter_rows(missing)
    with pytest.raises(CorpusError, match=r"nope\.jsonl"):
        read_files(jsonl_cfg(missing), [])


def test_directory_given_as_file_raises(tmp_path: Path) -> None:
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(CorpusError, match=r"dir\.csv: is a folder"):
        iter_rows(folder)


def test_unreadable_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "locked.jsonl", [{"text": "x"}])
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(CorpusError, match=r"locked\.jsonl: cannot read: Permission denied"):
        iter_rows(path)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.jsonl.gz"])
def test_zero_byte_file_yields_nothing(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert list(iter_rows(path)) == []


# ---------------------------------------------------------------------------------------------- CSV / TSV


def test_iter_rows_csv_embedded_newlines_and_wrong_column_count(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"id,title,text\n"
        b'c1,First,"Line one\nline two, with a comma"\n'
        b"c2,Short row\n"
        b'c3,Third,"He said ""yes""."\n'
        b"c4,NUL,has a \x00 byte\n"
        b"c5,Bad,caf\xe9\n"
        b"c6,Extra,a,b\n"
    )
    items = list(iter_rows(path))
    rows = {line: row for line, row in items if isinstance(row, dict)}
    issues = {line: row for line, row in items if isinstance(row, ReadIssue)}
    assert rows[2] == {"id": "c1", "title": "First", "text": "Line one\nline two, with a comma"}
    assert rows[5]["text"] == 'He said "yes".'
    assert rows[6]["text"] == "has a \x00 byte"
    assert sorted(rows) == [2, 5, 6]
    assert sorted(issues) == [4, 7, 8]
    assert issues[4].reason == "has 2 fields, the header has 3"
    assert "not valid utf-8" in issues[7].reason
    assert issues[8].reason == "has 4 fields, the header has 3"


def test_iter_rows_csv_bom_gz_and_tsv(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfid,text\nb1,hello\n")
    assert list(iter_rows(bom)) == [(2, {"id": "b1", "text": "hello"})]
    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress(b"id,text\nz1,packed\n"))
    assert list(iter_rows(packed)) == [(2, {"id": "z1", "text": "packed"})]
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("id\ttext\nt1\ta, b and c\n", encoding="utf-8")
    assert list(iter_rows(tsv)) == [(2, {"id": "t1", "text": "a, b and c"})]


def test_csv_long_field_over_default_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    long_text = "word " * 40_000
    path.write_text(f'id,text\nl1,"{long_text}"\n', encoding="utf-8")
    (_, row), *_ = iter_rows(path)
    assert row["text"] == long_text


def test_read_files_csv_split_column_and_delimited_labels(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "id,headline,body,part,where,when\n"
        "n1,Frost,Frost hit the crops.,TRAINING,france| spain |france,2024-01-02\n"
        "n2,Flood,Rivers rose.,Test,,\n"
        "n3,Fog,Fog closed the airport.,dev,italy,\n"
        "n4,Hail,Hail fell.,holdout,italy,\n",
        encoding="utf-8",
    )
    cfg = CorpusConfig(
        format="csv",
        path=str(path),
        title_field="headline",
        text_field="body",
        date_field="when",
        split_field="part",
        label_fields={"places": "where"},
    )
    issues: list[ReadIssue] = []
    records = list(read_corpus(cfg, issues))
    assert [(r.id, r.split) for r in records] == [
        ("n1", "train"),
        ("n2", "test"),
        ("n3", "validation"),
        ("n4", "unused"),
    ]
    assert records[0].labels == {"places": ["france", "spain"]}
    assert records[1].labels == {"places": []}
    assert records[0].title == "Frost" and records[0].date == "2024-01-02" and records[1].date is None
    assert [(i.line, i.field, i.id) for i in issues] == [(5, "part", "n4")]


def test_read_files_csv_format_reads_tsv_file_as_tsv(tmp_path: Path) -> None:
    path = tmp_path / "rows.tsv"
    path.write_text("id\ttext\nt1\tcommas, inside\n", encoding="utf-8")
    records = list(read_files(CorpusConfig(format="csv", path=str(path)), []))
    assert [(r.id, r.text) for r in records] == [("t1", "commas, inside")]


# ---------------------------------------------------------------------------------------------- parquet


def test_iter_rows_parquet_numbers_rows_from_one(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    table = pa.table(
        {
            "id": [10, 11, 12],
            "text": ["first text", None, "third text"],
            "topics": [["grain", "wheat"], [], None],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    items = list(iter_rows(path))
    assert [line for line, _ in items] == [1, 2, 3]
    assert items[0][1] == {"id": 10, "text": "first text", "topics": ["grain", "wheat"]}
    issues: list[ReadIssue] = []
    cfg = CorpusConfig(format="parquet", files={"test": str(path)}, label_fields={"topics": "topics"})
    records = list(read_files(cfg, issues))
    assert [(r.id, r.split, r.labels["topics"]) for r in records] == [
        ("10", "test", ["grain", "wheat"]),
        ("12", "test", []),
    ]
    assert [(i.line, i.field, i.id) for i in issues] == [(2, "text", "11")]


def test_not_a_parquet_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("id,text\n1,a\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"fake\.parquet: not a readable parquet file"):
        iter_rows(path)


# ---------------------------------------------------------------------------------------------- row_to_record


def test_row_to_record_maps_configured_columns() -> None:
    cfg = CorpusConfig(
        format="jsonl", id_field="uid", title_field="head", text_field="body", label_fields={"t": "tags"}
    )
    row = {
        "uid": 7.0,
        "head": " Quake ",
        "body": " A quake shook the coast. ",
        "tags": ["geo", "geo", "", "news"],
    }
    record = row_to_record(row, 3, "in/rows.jsonl", cfg, [])
    assert record == Record(
        id="7.0", title="Quake", text="A quake shook the coast.", labels={"t": ["geo", "news"]}
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"id": "x"}, "missing"),
        ({"id": "x", "text": None}, "is null"),
        ({"id": "x", "text": 5}, "not a string"),
    ],
)
def test_row_to_record_without_text_is_an_issue(row: dict, reason: str) -> None:
    issues: list[ReadIssue] = []
    assert row_to_record(row, 9, "f.jsonl", jsonl_cfg(), issues) is None
    assert len(issues) == 1
    assert (issues[0].file, issues[0].line, issues[0].field, issues[0].id) == ("f.jsonl", 9, "text", "x")
    assert reason in issues[0].reason


def test_row_to_record_empty_text_and_missing_id() -> None:
    issues: list[ReadIssue] = []
    assert row_to_record({"text": "   "}, 2, "dir/my.file.jsonl", jsonl_cfg(), issues) is None
    assert issues[0].id == "my.file:2" and "empty" in issues[0].reason
    record = row_to_record({"text": "kept"}, 5, "dir/my.file.jsonl", jsonl_cfg(), issues)
    assert record is not None and record.id == "my.file:5" and record.title == ""


@pytest.mark.parametrize("value", [{"a": 1}, 3, [["nested"]], [True]])
def test_row_to_record_wrong_label_type_skips_the_row(value: object) -> None:
    issues: list[ReadIssue] = []
    cfg = jsonl_cfg(label_fields={"places": "where"})
    assert row_to_record({"id": "r", "text": "t", "where": value}, 4, "f.jsonl", cfg, issues) is None
    assert [(i.line, i.field, i.id) for i in issues] == [(4, "where", "r")]


def test_row_to_record_custom_delimiter_and_null_labels() -> None:
    cfg = jsonl_cfg(label_fields={"a": "x", "b": "y"}, label_delimiter=";")
    record = row_to_record({"text": "t", "x": "one; two;;", "y": None}, 1, "f.jsonl", cfg, [])
    assert record is not None and record.labels == {"a": ["one", "two"], "b": []}


# ---------------------------------------------------------------------------------------------- document_of


def test_document_of_strips_and_turns_scalars_into_text() -> None:
    fields = Fields(id="key", title="head", text="body")
    row = {"key": 12.0, "head": 1987, "body": "  Ships left Oslo. \n", "other": "x"}
    assert document_of(row, fields, "in/rows.jsonl", 4) == Document("12.0", "1987", "Ships left Oslo.")
    assert document_of({"body": "t", "head": ["a", "list"]}, fields, "in/rows.jsonl", 5) == Document(
        "rows:5", "", "t"
    )
    assert document_of({"body": "t", "head": "kept"}, Fields(title=None, text="body"), "f", 1).title == ""
    doc = document_of({"id": "half", "text": "an emoji \ud83d cut"}, Fields(), "f.jsonl", 1)
    assert doc == Document("half", "", "an emoji \ufffd cut")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"id": "x"}, "text is missing"),
        ({"id": "x", "body": None}, "text is null"),
        ({"id": "x", "body": 5}, "text is not a string (got int)"),
        ({"id": "x", "body": ["a"]}, "text is not a string (got a list)"),
        ({"id": "x", "body": {"a": 1}}, "text is not a string (got an object)"),
        ({"id": "x", "body": " \n\t"}, "text is empty"),
        ({"id": "x", "body": ""}, "text is empty"),
    ],
)
def test_document_of_rejects_a_row_without_text_naming_the_field(row: dict, problem: str) -> None:
    issue = document_of(row, Fields(text="body"), "dir/f.jsonl", 9)
    assert issue == ReadIssue("dir/f.jsonl", 9, "body", f"{problem}: row skipped", "x")
    assert str(issue) == f"dir/f.jsonl, line 9, field 'body' (id x): {problem}: row skipped"


def test_row_to_record_reads_a_row_as_document_of_does() -> None:
    cfg = jsonl_cfg(id_field="key", title_field="head", text_field="body")
    fields = Fields(id="key", title="head", text="body")
    rows = [
        {"key": " a ", "head": " Title ", "body": " Text. "},
        {"head": 3.5, "body": "no id"},
        {"key": True, "head": None, "body": "x"},
        {"key": "r", "body": 7},
        {"key": "s"},
    ]
    for line, row in enumerate(rows, 1):
        issues: list[ReadIssue] = []
        record = row_to_record(row, line, "f.jsonl", cfg, issues)
        doc = document_of(row, fields, "f.jsonl", line)
        if isinstance(doc, ReadIssue):
            assert record is None and issues == [doc]
        else:
            assert record is not None and (record.id, record.title, record.text) == doc


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="|", blacklist_categories=["Cs"])), max_size=6
    )
)
def test_parse_labels_string_and_list_agree(labels: list[str]) -> None:
    expected = list(dict.fromkeys(x.strip() for x in labels if x.strip()))
    assert parse_labels(labels, "|") == expected
    assert parse_labels("|".join(labels), "|") == expected


# ---------------------------------------------------------------------------------------------- read_files / read_corpus


def test_read_files_split_from_files_key(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}])
    valid = write_jsonl(tmp_path / "valid.jsonl", [{"id": "3", "text": "c", "split": "test"}])
    cfg = CorpusConfig(format="jsonl", files={"training": str(train), "dev": str(valid)}, split_field="split")
    assert [(r.id, r.split) for r in read_files(cfg, [])] == [
        ("1", "train"),
        ("2", "train"),
        ("3", "validation"),
    ]
    none = cfg.model_copy(update={"split_scheme": "none"})
    assert {r.split for r in read_files(none, [])} == {""}


def test_read_files_without_split_info_gives_empty_split(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "all.jsonl", [{"id": "1", "text": "a", "split": "train"}])
    assert [r.split for r in read_files(jsonl_cfg(path), [])] == [""]


def test_read_files_bad_config_raises(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "a"}])
    with pytest.raises(CorpusError, match="unknown split 'heldout'"):
        read_files(CorpusConfig(format="jsonl", files={"heldout": str(path)}), [])
    with pytest.raises(CorpusError, match=r"corpus\.path"):
        read_files(CorpusConfig(format="jsonl"), [])


def test_read_corpus_relative_path_is_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path / "rel.jsonl", [{"id": "r1", "text": "relative"}])
    monkeypatch.chdir(tmp_path)
    assert [r.id for r in read_corpus(CorpusConfig(format="jsonl", path="rel.jsonl"), [])] == ["r1"]


def test_read_corpus_reuters_without_path_raises() -> None:
    with pytest.raises(CorpusError, match=r"corpus\.path is not set.*reut2"):
        read_corpus(CorpusConfig(format="reuters21578"), [])


# ---------------------------------------------------------------------------------------------- folders


@pytest.fixture
def label_tree(tmp_path: Path) -> Path:
    root = tmp_path / "news"
    (root / "sport").mkdir(parents=True)
    (root / "tech").mkdir()
    (root / ".hidden").mkdir()
    (root / "README.TXT").write_text("not an article", encoding="utf-8")
    (root / "sport" / "002.txt").write_bytes("Cup final\n\nThe cup cost \xa35 to see.\n".encode("latin-1"))
    (root / "sport" / "001.txt").write_text(
        "\n\nRace won\n\nShe won the race.\n\nBy a second.\n", encoding="utf-8"
    )
    (root / "sport" / "003.txt").write_bytes(b"  \n\n")
    (root / "sport" / "notes.md").write_text("ignored", encoding="utf-8")
    (root / "tech" / "001.txt").write_bytes("\ufeffNew chip\n\nA faster chip — with café.\n".encode())
    (root / ".hidden" / "x.txt").write_text("Hidden\n\nbody", encoding="utf-8")
    return root


def test_read_folders_labels_titles_and_fallback(label_tree: Path) -> None:
    issues: list[ReadIssue] = []
    records = list(read_folders(label_tree, issues))
    assert [r.id for r in records] == ["sport/001", "sport/002", "tech/001"]
    first, latin, tech = records
    assert (first.title, first.text, first.labels) == (
        "Race won",
        "She won the race.\nBy a second.",
        {"label": ["sport"]},
    )
    assert latin.text == "The cup cost £5 to see."
    assert tech.title == "New chip" and tech.text == "A faster chip — with café."
    assert [(Path(i.file).name, i.id, i.reason) for i in issues] == [
        ("002.txt", "sport/002", "decoded as latin-1"),
        ("003.txt", "sport/003", "empty file: skipped"),
    ]


def test_read_folders_missing_or_empty_root_raises(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="nowhere: folder not found"):
        read_folders(tmp_path / "nowhere", [])
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="no label sub-folders"):
        read_folders(tmp_path / "flat", [])


# ---------------------------------------------------------------------------------------------- Hugging Face


@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``datasets`` with no network and its caches in tmp_path, whenever it was first imported."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    datasets.disable_progress_bars()
    return datasets


def test_read_huggingface_saved_to_disk(tmp_path: Path, hf_offline) -> None:
    datasets = hf_offline
    rows = {
        "id": ["h1", "h2"],
        "text": ["Markets rose.", ""],
        "title": ["Up", "Blank"],
        "tags": [["econ"], []],
    }
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows),
            "validation": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}),
            "extra": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}),
        }
    ).save_to_disk(str(saved))
    issues: list[ReadIssue] = []
    cfg = CorpusConfig(format="huggingface", hf_name=str(saved), label_fields={"tags": "tags"})
    records = list(read_corpus(cfg, issues))
    assert [(r.id, r.split, r.labels["tags"]) for r in records] == [
        ("h1", "train", ["econ"]),
        ("h1", "validation", ["econ"]),
        ("h1", "unused", ["econ"]),
    ]
    assert [(i.file, i.line, i.field) for i in issues] == [
        (f"{saved}[train]", 2, "text"),
        (str(saved), None, None),
    ]
    assert "'extra'" in issues[1].reason


def test_read_huggingface_json_builder_with_files(tmp_path: Path, hf_offline) -> None:
    train = write_jsonl(
        tmp_path / "tr.jsonl", [{"id": "j1", "text": "Oil fell."}, {"id": "j2", "text": "Gold rose."}]
    )
    test = write_jsonl(tmp_path / "te.jsonl", [{"id": "j3", "text": "Wheat held."}])
    cfg = CorpusConfig(format="huggingface", hf_name="json", files={"train": str(train), "test": str(test)})
    records = list(read_huggingface(cfg, []))
    assert sorted((r.id, r.split, r.text) for r in records) == [
        ("j1", "train", "Oil fell."),
        ("j2", "train", "Gold rose."),
        ("j3", "test", "Wheat held."),
    ]


def test_read_huggingface_hub_name_offline_raises(hf_offline) -> None:
    cfg = CorpusConfig(format="huggingface", hf_name="someone/no-such-news-dataset")
    with pytest.raises(CorpusError, match=r"needs internet.*local"):
        read_huggingface(cfg, [])


def test_read_huggingface_without_name_raises() -> None:
    with pytest.raises(CorpusError, match="hf_name"):
        read_huggingface(CorpusConfig(format="huggingface"), [])


# ---------------------------------------------------------------------------------------------- Reuters SGML

SGML_HEAD = b'<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
SGML_ARTICLES = (
    b'<REUTERS TOPICS="YES" LEWISSPLIT="TEST" CGISPLIT="TRAINING-SET" OLDID="901" NEWID="7">\n'
    b"<DATE> 5-MAR-1987 09:10:11.12</DATE>\n"
    b"<TOPICS><D>grain</D><D>wheat</D></TOPICS>\n"
    b"<PLACES><D>canada</D><D>usa</D></PLACES>\n"
    b"<PEOPLE><D>doe</D></PEOPLE>\n"
    b"<ORGS></ORGS>\n"
    b"<EXCHANGES><D>nyse</D></EXCHANGES>\n"
    b"<COMPANIES></COMPANIES>\n"
    b"<UNKNOWN> \n&#5;&#5;&#5;G\n&#22;&#22;&#1;f0001&#31;reute\nr f BC-FARM   03-05 0042</UNKNOWN>\n"
    b"<TEXT>&#2;\n"
    b"<TITLE>PRAIRIE FARMERS PLAN &lt;EARLY> SEEDING</TITLE>\n"
    b"<DATELINE>    WINNIPEG, March 5 - </DATELINE><BODY>Farmers in the west expect to\n"
    b"start seeding early,  a growers' group &amp; an agency\n"
    b"said on Thursday.\n"
    b"    The group said soil moisture was good at \xe9tables.\n"
    b" Reuter\n"
    b"&#3;</BODY></TEXT>\n"
    b"</REUTERS>\n"
    b'<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="902" NEWID="8">\n'
    b"<DATE>6-MAR-1987 10:00:00.00</DATE>\n"
    b"<TOPICS></TOPICS>\n<PLACES><D>japan</D></PLACES>\n<PEOPLE></PEOPLE>\n<ORGS><D>opec</D></ORGS>\n"
    b"<EXCHANGES></EXCHANGES>\n<COMPANIES></COMPANIES>\n"
    b'<TEXT TYPE="BRIEF">&#2;\n'
    b"******<TITLE>TOKYO BANK SAYS RATES &amp; FEES STEADY\n"
    b"</TITLE>Blah blah blah.\n"
    b"&#3;\n\n</TEXT>\n"
    b"</REUTERS>\n"
    b'<REUTERS TOPICS="YES" LEWISSPLIT="NOT-USED" CGISPLIT="TRAINING-SET" OLDID="903" NEWID="9">\n'
    b"<DATE>7-MAR-1987 11:00:00.00</DATE>\n"
    b"<TOPICS><D>money-supply</D></TOPICS>\n<PLACES></PLACES>\n<PEOPLE></PEOPLE>\n<ORGS></ORGS>\n"
    b"<EXCHANGES></EXCHANGES>\n<COMPANIES></COMPANIES>\n"
    b'<TEXT TYPE="UNPROC">&#2;\n'
    b"WEEKLY TABLE - MARCH 7\n"
    b" Item one.........12 vs.....10\n"
    b" Item two..........3 vs......4\n"
    b" REUTER^M\n"
    b"&#3;\n\n</TEXT>\n"
    b"</REUTERS>\n"
)


@pytest.fixture
def reuters_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "reuters21578"
    folder.mkdir()
    (folder / REUTERS_FILES[0]).write_bytes(SGML_HEAD + SGML_ARTICLES)
    for name in REUTERS_FILES[1:]:
        (folder / name).write_bytes(SGML_HEAD)
    return folder


def test_parse_sgml_article_with_body() -> None:
    issues: list[ReadIssue] = []
    first, _, _ = parse_sgml((SGML_HEAD + SGML_ARTICLES).decode("latin-1"), "x.sgm", "modapte", issues)
    assert issues == []
    assert first.id == "7" and first.date == "5-MAR-1987 09:10:11.12" and first.split == "test"
    assert first.title == "PRAIRIE FARMERS PLAN <EARLY> SEEDING"
    assert first.text == (
        "WINNIPEG, March 5 - Farmers in the west expect to start seeding early, a growers' group & an agency said on Thursday.\n"
        "The group said soil moisture was good at étables."
    )
    assert first.labels == {
        "places": ["canada", "usa"],
        "topics": ["grain", "wheat"],
        "people": ["doe"],
        "orgs": [],
        "exchanges": ["nyse"],
    }
    assert first.meta == {
        "lewissplit": "TEST",
        "topics_attr": "YES",
        "cgisplit": "TRAINING-SET",
        "oldid": "901",
        "text_type": "NORM",
        "dateline": "WINNIPEG, March 5",
    }


def test_parse_sgml_brief_and_unproc_articles() -> None:
    _, brief, unproc = parse_sgml((SGML_HEAD + SGML_ARTICLES).decode("latin-1"), "x.sgm", "modapte", [])
    assert brief.title == brief.text == "TOKYO BANK SAYS RATES & FEES STEADY"
    assert (brief.split, brief.meta["text_type"], brief.labels["orgs"]) == ("unused", "BRIEF", ["opec"])
    assert unproc.title == "WEEKLY TABLE - MARCH 7"
    assert unproc.text == "Item one.........12 vs.....10\nItem two..........3 vs......4"
    assert (unproc.split, unproc.meta["text_type"]) == ("unused", "UNPROC")


@pytest.mark.parametrize(
    ("scheme", "splits"),
    [
        ("modapte", ["test", "unused", "unused"]),
        ("apte_mod", ["test", "unused", "unused"]),
        ("source", ["test", "train", "unused"]),
        ("none", ["", "", ""]),
    ],
)
def test_read_reuters_split_schemes(reuters_dir: Path, scheme: str, splits: list[str]) -> None:
    assert [r.split for r in read_reuters(reuters_dir, scheme, [])] == splits


def test_read_reuters_unknown_scheme_raises(reuters_dir: Path) -> None:
    with pytest.raises(CorpusError, match="unknown split scheme 'lewis'"):
        read_reuters(reuters_dir, "lewis", [])


def test_parse_sgml_reports_articles_without_text_by_line() -> None:
    sgml = (
        '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n<REUTERS TOPICS="NO" NEWID="5">\n<TEXT TYPE="UNPROC">&#2;\n&#3;\n'
        '</TEXT>\n</REUTERS>\n<REUTERS TOPICS="NO">\n<TEXT>x</TEXT></REUTERS>\n'
    )
    issues: list[ReadIssue] = []
    records = list(parse_sgml(sgml, "y.sgm", "modapte", issues))
    assert [(r.id, r.text) for r in records] == [("5", "")]
    assert [(i.line, i.id, i.reason.split(" (")[0]) for i in issues] == [
        (2, "5", "empty story"),
        (7, None, "article without NEWID: skipped"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Prices rose.\n Reuter\n&#3;", "Prices rose."),
        ("Prices rose. REUTER...\n REUTER\n", "Prices rose."),
        ("It said so to Reuters.", "It said so to Reuters."),
        ("reuter", ""),
        ("Wrapped\nline.\n    New para &lt;B&gt;.\n\n\tTab para", "Wrapped line.\nNew para <B>.\nTab para"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@given(st.text(alphabet=st.sampled_from(list("ab \n\t&;#3x\x03Reut")), max_size=60))
def test_clean_text_output_is_tidy(raw: str) -> None:
    text = clean_text(raw)
    assert "\x03" not in text and "\t" not in text and "  " not in text
    assert all(line and line == line.strip() for line in text.split("\n")) or text == ""
    assert strip_sign_off(text) == text


def test_check_reuters_dir_names_folder_and_missing_files(reuters_dir: Path, tmp_path: Path) -> None:
    check_reuters_dir(reuters_dir)
    (reuters_dir / "reut2-013.sgm").unlink()
    with pytest.raises(
        CorpusError, match=r"reuters21578: 1 of the 22 .*reut2-013\.sgm.*data/raw/reuters21578"
    ):
        check_reuters_dir(reuters_dir)
    with pytest.raises(CorpusError, match="elsewhere: Reuters-21578 folder not found"):
        read_reuters(tmp_path / "elsewhere", "modapte", [])


# ---------------------------------------------------------------------------------------------- download


def make_tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def corpus_files(prefix: str = "") -> dict[str, bytes]:
    files = {f"{prefix}{name}": SGML_HEAD for name in REUTERS_FILES}
    files[f"{prefix}{REUTERS_FILES[0]}"] = SGML_HEAD + SGML_ARTICLES
    files[f"{prefix}README.txt"] = b"made-up readme\n"
    return files


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_uci_style_zip_holding_tar_gz(tmp_path: Path) -> None:
    inner = make_tar_gz(tmp_path / "reuters21578.tar.gz", corpus_files())
    archive = tmp_path / "collection.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(inner, "reuters21578.tar.gz")
    dest = tmp_path / "data" / "raw" / "reuters21578"
    download_reuters(dest, archive.as_uri(), sha256_of(archive))
    assert sorted(p.name for p in dest.glob("*.sgm")) == list(REUTERS_FILES)
    assert (dest / "README.txt").is_file()
    assert [r.id for r in read_reuters(dest, "modapte", [])] == ["7", "8", "9"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["reuters21578"]  # no archive or temp left


def test_download_plain_tar_gz_with_folder_and_no_checksum(tmp_path: Path) -> None:
    archive = make_tar_gz(tmp_path / "r.tar.gz", corpus_files("reuters21578/"))
    dest = tmp_path / "out"
    download_reuters(dest, archive.as_uri(), None)
    check_reuters_dir(dest)


def test_download_checksum_mismatch_deletes_the_download(tmp_path: Path) -> None:
    archive = make_tar_gz(tmp_path / "r.tar.gz", corpus_files())
    dest = tmp_path / "raw" / "reuters21578"
    with pytest.raises(CorpusError, match="sha256 mismatch"):
        download_reuters(dest, archive.as_uri(), "0" * 64)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("bad", ["../escaped.sgm", "/tmp/absolute-newstag-test.sgm"])
def test_download_refuses_path_traversal_in_tar(tmp_path: Path, bad: str) -> None:
    archive = make_tar_gz(tmp_path / "evil.tar.gz", {**corpus_files("x/"), bad: b"owned"})
    dest = tmp_path / "raw" / "reuters21578"
    with pytest.raises(CorpusError, match="unsafe path"):
        download_reuters(dest, archive.as_uri(), None)
    assert (
        not (dest.parent.parent / "escaped.sgm").exists() and not (tmp_path / "raw" / "escaped.sgm").exists()
    )
    assert not dest.exists()


def test_download_refuses_traversal_in_zip_and_links_in_tar(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "owned")
    with pytest.raises(CorpusError, match="unsafe path"):
        download_reuters(tmp_path / "a" / "reuters21578", archive.as_uri(), None)
    linked = tmp_path / "link.tar.gz"
    with tarfile.open(linked, "w:gz") as tf:
        info = tarfile.TarInfo("reut2-000.sgm")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(CorpusError, match="links"):
        download_reuters(tmp_path / "b" / "reuters21578", linked.as_uri(), None)


def test_download_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "page.html"
    junk.write_text("<html>not here</html>", encoding="utf-8")
    with pytest.raises(CorpusError, match="not a zip or tar"):
        download_reuters(tmp_path / "raw" / "reuters21578", junk.as_uri(), None)


def test_download_without_network_fails_fast_and_says_where_to_put_files(tmp_path: Path) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 9)) == 0:
            pytest.skip("something listens on 127.0.0.1:9")
    dest = tmp_path / "data" / "raw" / "reuters21578"
    started = time.monotonic()
    with pytest.raises(CorpusError) as caught:
        download_reuters(dest, "http://127.0.0.1:9/reuters21578.zip", None, timeout=5)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "data/raw/reuters21578" in message
    assert "../shared/data/reuters21578" in message
    assert not dest.exists()


def test_download_skipped_when_corpus_present(reuters_dir: Path) -> None:
    download_reuters(reuters_dir, "http://127.0.0.1:9/never-fetched.zip", "0" * 64)
    check_reuters_dir(reuters_dir)


# ---------------------------------------------------------------------------------------------- header-less CSV, label_map

HEADERLESS = (
    '3,"Wall St. rally","Stocks rose."\n1,"Quake","A quake hit the coast."\n2,"Final","A late goal."\n'
)


def headerless_cfg(path: Path, **kw: object) -> CorpusConfig:
    columns = ["class", "title", "text"]
    return CorpusConfig(format="csv", path=str(path), header=False, columns=columns, **kw)


def test_a_csv_without_header_is_read_with_the_columns_named(tmp_path: Path) -> None:
    path = tmp_path / "ag.csv"
    path.write_text(HEADERLESS)
    issues: list[ReadIssue] = []
    records = list(read_files(headerless_cfg(path, label_fields={"topic": "class"}), issues))
    assert [(r.id, r.title, r.labels["topic"]) for r in records] == [
        ("ag:1", "Wall St. rally", ["3"]),
        ("ag:2", "Quake", ["1"]),
        ("ag:3", "Final", ["2"]),
    ]
    assert issues == []
    rows = list(iter_rows(path, columns=["class", "title", "text"]))
    assert rows[0] == (1, {"class": "3", "title": "Wall St. rally", "text": "Stocks rose."})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"header": False}, "header: false needs columns"),
        ({"columns": ["a", "b"]}, "add header: false"),
        ({"header": False, "columns": ["a", "a"]}, "distinct"),
        ({"format": "jsonl", "header": False, "columns": ["a"]}, "header: false is for csv"),
        ({"label_map": {1: ["x"]}}, "map each class index"),
        ({"label_map_start": 2}, "less than or equal to 1"),
        ({"max_line_bytes": 10}, "greater than or equal to 1024"),
    ],
)
def test_csv_header_and_label_map_settings_are_checked(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CorpusConfig(**{"format": "csv", "path": "x.csv", **kw})


def test_label_map_from_the_config_names_class_indices(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "ag.csv"
    path.write_text(HEADERLESS + '7,"Odd","An unknown class."\n')
    label_map = yaml.safe_load("{1: World, 2: Sports, 3: Business}")  # integer keys, as YAML reads them
    cfg = headerless_cfg(path, label_fields={"topic": "class"}, label_map=label_map)
    issues: list[ReadIssue] = []
    records = list(read_files(cfg, issues))
    assert [r.labels["topic"] for r in records] == [["Business"], ["World"], ["Sports"]]
    assert [(i.line, i.field, i.kept) for i in issues] == [(4, "class", False)]
    assert "label '7' is not in corpus.label_map" in issues[0].reason


@pytest.mark.parametrize(
    ("start", "expected"), [(1, ["Business", "World", "Sports"]), (0, ["Sci", "Sports", "Business"])]
)
def test_label_map_from_a_classes_file(tmp_path: Path, start: int, expected: list[str]) -> None:
    path = tmp_path / "ag.csv"
    path.write_text(HEADERLESS)
    classes = tmp_path / "classes.txt"
    classes.write_text("World\nSports\nBusiness\nSci\n\n")
    cfg = headerless_cfg(path, label_fields={"topic": "class"}, label_map=str(classes), label_map_start=start)
    records = list(read_files(cfg, []))
    assert [r.labels["topic"][0] for r in records] == expected


def test_a_bad_classes_file_stops_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "ag.csv"
    path.write_text(HEADERLESS)
    for name, text, message in [("none.txt", None, "cannot read"), ("gap.txt", "A\n\nB\n", "line 2: blank")]:
        if text is not None:
            (tmp_path / name).write_text(text)
        cfg = headerless_cfg(path, label_fields={"topic": "class"}, label_map=str(tmp_path / name))
        with pytest.raises(CorpusError, match=message):
            read_files(cfg, [])


def test_no_documents_read_names_the_files_and_the_first_reject(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.prepare import prepare

    data = tmp_path / "ag.csv"
    data.write_text(HEADERLESS)  # read with a header: its first row names the columns, no text column
    config = tmp_path / "ag.yaml"
    config.write_text(
        f"name: ag\ncorpus: {{format: csv, files: {{train: {data}}}, label_fields: {{topic: class}}}}\n"
        f"axes: {{topic: {{source: topic}}}}\nprocessed_dir: {tmp_path / 'processed'}\n"
    )
    with pytest.raises(CorpusError) as caught:
        prepare(load_config(config), say=lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"{data}: no documents read (corpus ") and "{" not in message.split(":")[0]
    assert "2 rows rejected, the first: " in message and "line 2, field 'text'" in message
