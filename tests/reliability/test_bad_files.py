"""Whole bad files, through the readers and through the real ``newstag prepare``.

A 20 MB single document, a 0-byte file, a folder where a file should be, a corrupt gzip, a JSON array,
random bytes: each is read correctly or refused with one line naming the file (exit code 2), never a
traceback; and a file mixing good rows with every kind of bad one keeps all its good rows on disk.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reliability_support import assert_clean_failure, message_lines, run_cli

from pipeline.config import CorpusConfig
from pipeline.corpora import CorpusError, ReadIssue, read_files, read_folders
from pipeline.corpora.reuters import REUTERS_FILES, read_reuters

BIG = 20 * 1024 * 1024  # a 20 MB article


def big_text(seed: int = 0) -> str:
    """About 20 MB of text: a shuffled block of awkward words, repeated."""
    words = [
        "market",
        "oil",
        "Kenya",
        "café",
        "naïve",
        "東京",
        "rates",
        '"quoted"',
        "a,b",
        "line\nbreak",
    ] * 500
    random.Random(seed).shuffle(words)
    block = " ".join(words) + " "
    return (block * (BIG // len(block.encode()) + 1)).strip()


def read(fmt: str, path: Path) -> tuple[list, list[ReadIssue]]:
    issues: list[ReadIssue] = []
    return list(read_files(CorpusConfig(format=fmt, path=str(path)), issues)), issues


# ------------------------------------------------------------------------------------------------ readers


@pytest.fixture(scope="module")
def big() -> str:
    return big_text()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_20mb_single_document_is_read_whole(fmt: str, big: str, tmp_path: Path) -> None:
    path = tmp_path / f"big.{fmt}"
    rows = [{"id": "big", "title": "Big", "text": big}, {"id": "small", "title": "t", "text": "after it"}]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["id", "title", "text"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    records, issues = read(fmt, path)
    assert [r.id for r in records] == ["big", "small"] and not issues
    assert records[0].text == big.strip()


def test_a_20mb_article_file_and_sgml_file_are_read_whole(big: str, tmp_path: Path) -> None:
    folder = tmp_path / "corpus" / "business"
    folder.mkdir(parents=True)
    (folder / "big.txt").write_text("Big title\n" + big)
    issues: list[ReadIssue] = []
    [record] = list(read_folders(tmp_path / "corpus", issues))
    assert record.id == "business/big" and len(record.text) > BIG * 0.9 and not issues

    sgml = tmp_path / "reuters"
    sgml.mkdir()
    body = big.replace("<", " ").replace("&", " ")
    for i, name in enumerate(REUTERS_FILES):
        text = body if i == 0 else "small"
        (sgml / name).write_text(
            f'<REUTERS NEWID="{i + 1}"><TEXT><TITLE>T</TITLE><BODY>{text}</BODY></TEXT></REUTERS>\n',
            "latin-1" if i else "utf-8",
        )
    records = list(read_reuters(sgml, "none", issues))
    assert len(records) == 22 and len(records[0].text) > BIG * 0.9 and not issues


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_0_byte_file_gives_no_rows_and_no_crash(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")
    assert read(fmt, path) == ([], [])


def test_a_0_byte_parquet_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(CorpusError, match=r"empty\.parquet: not a readable parquet file"):
        read("parquet", path)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_folder_where_a_file_should_be_is_refused(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"rows.{fmt}"
    path.mkdir()
    with pytest.raises(CorpusError, match=rf"rows\.{fmt}: is a folder, expected a file"):
        read(fmt, path)


def test_a_file_where_a_folder_should_be_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus"
    path.write_text("not a folder")
    with pytest.raises(CorpusError, match="corpus: folder not found"):
        read_folders(path, [])
    with pytest.raises(CorpusError, match="corpus: Reuters-21578 folder not found"):
        read_reuters(path, "none", [])


def test_a_corrupt_gzip_is_refused_with_the_last_good_line(tmp_path: Path) -> None:
    data = bytearray(
        gzip.compress(b"".join(b'{"id": "%d", "text": "row %d"}\n' % (i, i) for i in range(5000)))
    )
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"rows\.jsonl\.gz: cannot read past line \d+"):
        read("jsonl", path)


def test_a_bom_and_crlf_are_invisible(tmp_path: Path) -> None:
    jsonl, csv_file = tmp_path / "a.jsonl", tmp_path / "a.csv"
    jsonl.write_bytes(b'\xef\xbb\xbf{"id": "1", "text": "caf\xc3\xa9"}\r\n{"id": "2", "text": "two"}\r\n')
    csv_file.write_bytes(b'\xef\xbb\xbfid,text\r\n1,caf\xc3\xa9\r\n2,"two\r\nlines"\r\n')
    for fmt, path in (("jsonl", jsonl), ("csv", csv_file)):
        records, issues = read(fmt, path)
        assert [(r.id, r.text) for r in records] == [
            ("1", "café"),
            ("2", "two" if fmt == "jsonl" else "two\r\nlines"),
        ]
        assert not issues


# ------------------------------------------------------------------------------------------------ the CLI

CONFIG = """\
name: bad-input
corpus: {format: jsonl, path: rows.jsonl, label_fields: {topic: themes}}
split: {seed: 1}
axes: {themes: {source: topic, min_support: 1}}
features: {gazetteer: {enabled: false}}
processed_dir: processed
"""


def good_rows(n: int) -> list[bytes]:
    themes = ["oil", "grain", "money"]
    return [
        json.dumps(
            {
                "id": f"good-{i}",
                "title": f"T{i}",
                "text": f"text {i} about {themes[i % 3]}",
                "themes": [themes[i % 3]],
            }
        ).encode()
        for i in range(n)
    ]


BAD_LINES = [
    b'{"id": "u8", "text": "caf\xe9"}',
    b'{"id": "nul", "text": "a\x00b"}',
    b'{"id": "cut", "te',
    b'{"id": "deep", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"id": "big-int", "text": "x", "n": ' + b"9" * 5000 + b"}",
    b"[1, 2, 3]",
    b'{"id": "no-text"}',
    b'{"id": "empty", "text": ""}',
    b'{"id": "labels", "text": "x", "themes": [["nested"]]}',
    bytes(random.Random(3).getrandbits(8) for _ in range(200)).replace(b"\n", b" "),
]


def test_cli_prepare_keeps_every_good_row_of_a_hostile_file(tmp_path: Path, big: str) -> None:
    """Good rows (one of them 20 MB, one with a lone surrogate) mixed with every kind of bad line: exit 0,
    every good id stored, every bad line in the report with file, line and reason."""
    rows = good_rows(40)
    rows.append(json.dumps({"id": "huge", "text": big, "themes": ["oil"]}).encode())
    rows.append(b'{"id": "surrogate", "text": "half an emoji \\ud83d", "themes": ["oil"]}')
    good = {json.loads(r)["id"] for r in rows}
    rng = random.Random(11)
    for bad in BAD_LINES:
        rows.insert(rng.randrange(1, len(rows)), bad)  # line 1 stays good: a bad first line may be an array
    (tmp_path / "rows.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(rows) + b"\r\n")
    (tmp_path / "config.yaml").write_text(CONFIG)

    proc = run_cli(["prepare", "--config", "config.yaml", "--json"], tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["n_read"] == len(good)
    rejected = [i for i in report["issues"] if not i["kept"]]
    assert len(rejected) == len(BAD_LINES), rejected
    for issue in report["issues"]:
        assert issue["file"] == "rows.jsonl" and isinstance(issue["line"], int) and issue["reason"]
    [note] = [i for i in report["issues"] if i["kept"]]
    assert (note["id"], note["field"]) == ("surrogate", "text")

    from datasets import load_from_disk

    stored = load_from_disk(str(tmp_path / "processed" / "bad-input" / "dataset"))
    ids = [i for split in stored.values() for i in split["id"]]
    assert sorted(ids) == sorted(good)  # records lost: 0
    texts = {i: t for split in stored.values() for i, t in zip(split["id"], split["text"], strict=True)}
    assert texts["huge"] == big.strip() and texts["surrogate"] == "half an emoji \ufffd"


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("a folder", lambda p: p.mkdir(), "rows.jsonl: is a folder, expected a file"),
        ("a 0-byte file", lambda p: p.write_bytes(b""), "no documents read"),
        ("random bytes", lambda p: p.write_bytes(random.Random(5).randbytes(100_000)), "no documents read"),
        (
            "a JSON array",
            lambda p: p.write_text('[{"id": "1", "text": "x"},\n {"id": "2"}]'),
            "is a JSON array",
        ),
        (
            "a corrupt gzip",
            lambda p: p.write_bytes(b"\x1f\x8b\x08\x00" + random.Random(1).randbytes(5000)),
            "rows.jsonl: cannot read",
        ),
        ("a missing file", lambda p: None, "rows.jsonl: file not found"),
    ],
)
def test_cli_prepare_refuses_an_unreadable_file_in_one_line(
    name: str, make, needle: str, tmp_path: Path
) -> None:
    make(tmp_path / "rows.jsonl")
    (tmp_path / "config.yaml").write_text(CONFIG)
    proc = run_cli(["prepare", "--config", "config.yaml"], tmp_path)
    assert_clean_failure(proc, "prepare", needle)
    assert not (tmp_path / "processed" / "bad-input").exists()


def test_cli_prepare_reports_rows_it_rejects_on_stderr_only_as_summary(tmp_path: Path) -> None:
    """A few rejected rows do not fail prepare; the human summary names file and line of each."""
    rows = [*good_rows(12), b'{"id": "x", "text": ""}', b"{oops"]
    (tmp_path / "rows.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    (tmp_path / "config.yaml").write_text(CONFIG)
    proc = run_cli(["prepare", "--config", "config.yaml"], tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout
    assert "rejected rows.jsonl, line 13, field 'text' (id x): text is empty: row skipped" in out
    assert "rejected rows.jsonl, line 14: not valid JSON" in out
    assert not [line for line in message_lines(proc.stderr) if "Error" in line]
