"""Property-based tests of every corpus reader on hostile input (JSONL, CSV, parquet, folders, Reuters SGML).

Each test mixes N good rows (made up here, with awkward but valid content: quotes, commas, CRLF,
embedded newlines, NUL, non-ASCII, a BOM) with bad ones (random bytes, invalid UTF-8, truncated JSON, deep
nesting, huge integers, unclosed quotes, wrong field counts, empty texts, corrupt compressed pages...), and
checks three promises:

- the reader never raises anything but ``CorpusError`` (the CLI turns it into one line and exit code 2);
- every rejected row is reported as a ``ReadIssue`` naming the file and the line (and the field when the
  problem is a field);
- no good row is lost: every good id comes out, once, with its text.

Run with ``--hypothesis-show-statistics`` to see how many inputs of each kind were tried.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.config import CorpusConfig
from pipeline.corpora import CorpusError, ReadIssue, read_files, read_folders
from pipeline.corpora.reuters import REUTERS_FILES, parse_sgml, read_reuters

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Printable text with the characters that break naive readers; no lone surrogates (those cannot be written
# as UTF-8 at all; the JSON escape of one is tested on its own).
AWKWARD = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
WORDS = st.text(AWKWARD, min_size=1, max_size=60).filter(lambda t: t.strip())
TRICKY = st.sampled_from(
    ['say "hi"', "a,b,c", "line one\nline two", "crlf\r\nnext", "tab\there", "nul\x00byte"]
)
TEXTS = st.one_of(WORDS, TRICKY, st.lists(st.one_of(WORDS, TRICKY), min_size=2, max_size=4).map(" ".join))


def tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="newstag-fuzz-")


def read(fmt: str, path: Path, **kw: object) -> tuple[list, list[ReadIssue]]:
    issues: list[ReadIssue] = []
    return list(read_files(CorpusConfig(format=fmt, path=str(path), **kw), issues)), issues


def check_issues(issues: list[ReadIssue], file: Path, n_lines: int | None) -> None:
    """Every issue names this file and a line in it; a problem with the text names the field."""
    for issue in issues:
        assert issue.file == str(file), issue
        assert issue.reason.strip(), issue
        if n_lines is not None:
            assert issue.line is not None and 1 <= issue.line <= n_lines, (issue, n_lines)
        if issue.reason.startswith("text "):
            assert issue.field == "text", issue
        event(f"issue: {issue.reason.split(':')[0].split('(')[0].strip()[:40]}")


def check_good(records: list, good: dict[str, str], issues: list[ReadIssue]) -> None:
    """Every good id comes out exactly once, with its (stripped) text."""
    ids = Counter(r.id for r in records)
    missing = sorted(set(good) - set(ids))
    assert not missing, (missing, [str(i) for i in issues])
    for record in records:
        if record.id in good:
            assert ids[record.id] == 1, record.id
            assert record.text == good[record.id].strip(), (record.id, record.text[:80])


# ------------------------------------------------------------------------------------------------ JSON Lines

DEEP = b'{"id": "deep", "text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
BAD_JSON_LINES: dict[str, Callable[[random.Random], bytes]] = {
    "invalid utf-8": lambda r: b'{"id": "u8", "text": "caf\xe9 \xff\xfe"}',
    "raw NUL in a string": lambda r: b'{"id": "nul", "text": "a\x00b"}',
    "truncated object": lambda r: b'{"id": "cut", "te',
    "deeply nested": lambda r: DEEP,
    "5000-digit integer": lambda r: b'{"id": "big", "text": "x", "n": ' + b"9" * 5000 + b"}",
    "not an object": lambda r: r.choice([b"[1, 2]", b'"a string"', b"null", b"42", b"true"]),
    "text missing": lambda r: b'{"id": "notext", "title": "only a title"}',
    "text null": lambda r: b'{"id": "null", "text": null}',
    "text empty": lambda r: b'{"id": "empty", "text": "  \\n "}',
    "text a number": lambda r: b'{"id": "num", "text": 3.5}',
    "text an object": lambda r: b'{"id": "obj", "text": {"a": [1, {"b": 2}]}}',
    "NaN and Infinity": lambda r: b'{"id": NaN, "text": Infinity}',
    "lone surrogate escape": lambda r: b'{"id": "sur", "text": "half an emoji \\ud83d here"}',
    "random bytes": lambda r: bytes(r.getrandbits(8) for _ in range(r.randint(1, 80))).replace(b"\n", b" "),
}


@st.composite
def jsonl_files(draw: st.DrawFn) -> tuple[bytes, dict[str, str], int, list[str]]:
    """(file bytes, good id -> text, number of lines, kinds of bad lines) of a JSONL file."""
    n_good = draw(st.integers(1, 12))
    good = {f"good-{i}": draw(TEXTS) for i in range(n_good)}
    lines = [
        json.dumps(
            {"id": ident, "title": draw(TEXTS), "text": text, "extra": {"nested": [1, [2, [3]]]}},
            ensure_ascii=draw(st.booleans()),
        ).encode()
        for ident, text in good.items()
    ]
    kinds = draw(st.lists(st.sampled_from(sorted(BAD_JSON_LINES)), max_size=8))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for kind in kinds:
        lines.insert(draw(st.integers(0, len(lines))), BAD_JSON_LINES[kind](rng))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = ending.join(lines) + draw(st.sampled_from([b"", ending]))
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, good, len(lines), kinds


@FUZZ
@given(jsonl_files())
def test_jsonl_reader_keeps_every_good_row(case: tuple[bytes, dict[str, str], int, list[str]]) -> None:
    data, good, n_lines, kinds = case
    for kind in kinds:
        event(f"bad line: {kind}")
    with tmpdir() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_bytes(data)
        try:
            records, issues = read("jsonl", path)
        except CorpusError as exc:  # only for a file that looks like a JSON array on its first line
            first = data.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip()
            assert "JSON array" in str(exc) and first.startswith(b"["), exc
            event("refused as a JSON array")
            return
    check_issues(issues, path, n_lines)
    check_good(records, good, issues)
    rejected = sum(not i.kept for i in issues)
    blank = sum(1 for k in kinds if k == "random bytes")  # random bytes may happen to be a blank line
    assert len(kinds) - blank <= rejected + sum(1 for r in records if r.id not in good) <= len(kinds)


# ------------------------------------------------------------------------------------------------ CSV

BAD_CSV_ROWS: dict[str, Callable[[random.Random], bytes]] = {
    "too few fields": lambda r: b"short,row",
    "too many fields": lambda r: b"a,b,c,d,e",
    "invalid utf-8": lambda r: b"u8,title,caf\xe9 \xff",
    "text empty": lambda r: b"empty,title,   ",
    "unclosed quote": lambda r: b'open,"title,this quote is never closed',
    "text after a closing quote": lambda r: b'junk,"quoted"tail,text',
    # random bytes without quotes: a stray quote can make CSV ambiguous (see test_csv_unclosed_quote_*)
    "random bytes": lambda r: bytes(r.choice(b"abc,;\t \xe9\xff\x00") for _ in range(r.randint(1, 40))),
}


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, dict[str, str], int, list[str]]:
    """(file bytes, good id -> text, number of physical lines, kinds of bad rows) of a CSV file."""
    n_good = draw(st.integers(1, 12))
    good = {f"good-{i}": draw(TEXTS) for i in range(n_good)}
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    quote_all = draw(st.booleans())

    def encode(fields: list[str]) -> bytes:  # RFC 4180 (Python 3.11's writer leaves a bare CR unquoted)
        cells = [
            '"' + f.replace('"', '""') + '"' if quote_all or any(c in f for c in ',"\r\n') else f
            for f in fields
        ]
        return (",".join(cells) + terminator).encode()

    rows = [encode([ident, draw(TEXTS), text]) for ident, text in good.items()]
    kinds = draw(st.lists(st.sampled_from(sorted(BAD_CSV_ROWS)), max_size=6))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for kind in kinds:
        rows.insert(draw(st.integers(0, len(rows))), BAD_CSV_ROWS[kind](rng) + terminator.encode())
    data = encode(["id", "title", "text"]) + b"".join(rows)
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, good, len(re.split(rb"\r\n|\r|\n", data)), kinds  # the reader's lines: CR, LF or CRLF


@FUZZ
@given(csv_files())
def test_csv_reader_keeps_every_good_row(case: tuple[bytes, dict[str, str], int, list[str]]) -> None:
    data, good, n_lines, kinds = case
    for kind in kinds:
        event(f"bad row: {kind}")
    with tmpdir() as tmp:
        path = Path(tmp) / "rows.csv"
        path.write_bytes(data)
        records, issues = read("csv", path)
    check_issues(issues, path, n_lines)
    check_good(records, good, issues)


@pytest.mark.parametrize(
    "bad",
    [
        b'9,"never closed,x\n',  # swallows every later line up to the end of the file
        b'9,"never closed\n',
        b'9,x,"closed only by the quote of a later row\n',
    ],
)
def test_csv_unclosed_quote_does_not_swallow_later_rows(bad: bytes, tmp_path: Path) -> None:
    good = b'1,t,plain text\n2,t,"quoted, with comma"\n3,t,"multi\nline"\n4,t,last one\n'
    path = tmp_path / "q.csv"
    path.write_bytes(b"id,title,text\n" + bad + good)
    records, issues = read("csv", path)
    assert [r.id for r in records] == ["1", "2", "3", "4"]
    assert [(i.line, i.reason.split(":")[0]) for i in issues] == [(2, "not valid CSV")]


# ------------------------------------------------------------------------------------------------ parquet


@st.composite
def parquet_tables(draw: st.DrawFn) -> tuple[list[dict], dict[str, str], list[str]]:
    n_good = draw(st.integers(1, 30))
    good = {f"good-{i}": draw(TEXTS) for i in range(n_good)}
    rows: list[dict] = [{"id": k, "title": "t", "text": v} for k, v in good.items()]
    bad = {
        "text null": {"id": "null", "title": "t", "text": None},
        "text empty": {"id": "empty", "title": "t", "text": "   "},
        "id null": {"id": None, "title": None, "text": None},
    }
    kinds = draw(st.lists(st.sampled_from(sorted(bad)), max_size=6))
    for kind in kinds:
        rows.insert(draw(st.integers(0, len(rows))), bad[kind])
    return rows, good, kinds


@FUZZ
@given(parquet_tables(), st.integers(1, 8), st.booleans())
def test_parquet_reader_keeps_every_good_row_of_intact_row_groups(
    case: tuple[list[dict], dict[str, str], list[str]], group_size: int, corrupt: bool
) -> None:
    rows, good, kinds = case
    for kind in kinds:
        event(f"bad row: {kind}")
    with tmpdir() as tmp:
        path = Path(tmp) / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group_size, write_page_checksum=True)
        lost: set[str] = set()
        meta = pq.ParquetFile(path).metadata
        if corrupt and meta.num_row_groups > 1:  # garble the text column of one row group
            group = meta.num_row_groups // 2
            chunk = meta.row_group(group).column(2)
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            data = bytearray(path.read_bytes())
            for i in range(start, start + chunk.total_compressed_size):
                data[i] ^= 0x5A
            path.write_bytes(bytes(data))
            first = group * group_size
            lost = {r["id"] for r in rows[first : first + meta.row_group(group).num_rows]}
            event("one row group corrupted")
        records, issues = read("parquet", path)
    check_issues(issues, path, len(rows))
    check_good(records, {k: v for k, v in good.items() if k not in lost}, issues)
    if lost:
        assert any("row group" in i.reason for i in issues), [str(i) for i in issues]
    else:
        assert sum(not i.kept for i in issues) == len(kinds), [str(i) for i in issues]


def test_parquet_random_bytes_and_truncation_are_refused_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    for data in (os.urandom(4096), b"", b"PAR1" + os.urandom(100) + b"PAR1"):
        path.write_bytes(data)
        with pytest.raises(CorpusError, match=r"bad\.parquet: not a readable parquet file"):
            read("parquet", path)


# ------------------------------------------------------------------------------------------------ folders

BAD_FILES: dict[str, Callable[[random.Random], bytes | None]] = {
    "empty file": lambda r: b"",
    "only blank lines": lambda r: b"\n  \r\n\t\n",
    "a folder named *.txt": lambda r: None,
}
ODD_GOOD_FILES: dict[str, Callable[[random.Random], bytes]] = {
    "random bytes": lambda r: b"title " + bytes(r.getrandbits(8) for _ in range(r.randint(1, 200))),
    "latin-1 text": lambda r: "Caf\xe9 au lait\nd\xe9j\xe0 vu".encode("latin-1"),
    "NUL bytes": lambda r: b"title\x00\nbody\x00text",
    "BOM and CRLF": lambda r: b"\xef\xbb\xbfTitle line\r\nBody line one\r\nBody line two\r\n",
}


@st.composite
def label_folders(draw: st.DrawFn) -> tuple[dict[str, bytes | None], set[str], list[str]]:
    """(relative path -> bytes (None = a folder), ids that must come out, kinds of odd entries)."""
    files: dict[str, bytes | None] = {}
    must: set[str] = set()
    for i in range(draw(st.integers(1, 10))):
        label = draw(st.sampled_from(["business", "sport", "tech"]))
        title, body = draw(WORDS), draw(TEXTS)
        ending = draw(st.sampled_from(["\n", "\r\n"]))
        files[f"{label}/{i:03d}.txt"] = f"{title}{ending}{ending}{body}{ending}".encode()
        must.add(f"{label}/{i:03d}")
    rng = random.Random(draw(st.integers(0, 2**32)))
    kinds = draw(st.lists(st.sampled_from(sorted({**BAD_FILES, **ODD_GOOD_FILES})), max_size=6))
    for j, kind in enumerate(kinds):
        label = draw(st.sampled_from(["business", "sport", "tech"]))
        name = f"{label}/odd-{j}.txt"
        if kind in ODD_GOOD_FILES:
            files[name] = ODD_GOOD_FILES[kind](rng)
            must.add(name.removesuffix(".txt"))
        else:
            files[name] = BAD_FILES[kind](rng)
    return files, must, kinds


@FUZZ
@given(label_folders())
def test_folder_reader_keeps_every_readable_article(
    case: tuple[dict[str, bytes | None], set[str], list[str]],
) -> None:
    files, must, kinds = case
    for kind in kinds:
        event(f"odd file: {kind}")
    with tmpdir() as tmp:
        root = Path(tmp) / "corpus"
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if data is None:
                path.mkdir()
            else:
                path.write_bytes(data)
        issues: list[ReadIssue] = []
        try:
            records = list(read_folders(root, issues))
        except CorpusError as exc:  # only when no label folder has a single .txt file
            assert "no label sub-folders" in str(exc)
            assert not must
            return
    assert {r.id for r in records} >= must, [str(i) for i in issues]
    assert len({r.id for r in records}) == len(records)
    for issue in issues:
        assert issue.file.startswith(str(root)) and issue.reason, issue
    skipped = {i.file for i in issues if not i.kept}
    # a folder with no regular .txt file at all is not a label folder, so nothing in it is read or reported
    labelled = {name.split("/")[0] for name, data in files.items() if data is not None}
    bad = {
        str(root / n) for n, d in files.items() if n.split("/")[0] in labelled and (not d or not d.strip())
    }
    assert skipped == bad, [str(i) for i in issues]


def test_folder_reader_names_with_invalid_utf8_are_kept_and_reported(tmp_path: Path) -> None:
    folder = tmp_path / "corpus" / "tech"
    folder.mkdir(parents=True)
    (folder / "good.txt").write_text("Title\nbody")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as fh:
        fh.write(b"Another title\nanother body")
    issues: list[ReadIssue] = []
    records = list(read_folders(tmp_path / "corpus", issues))
    assert sorted(r.id for r in records) == ["tech/caf\\xe9", "tech/good"]
    assert [i.reason for i in issues] == ["file name is not valid UTF-8: bad bytes shown as \\xNN"]
    for text in [r.id for r in records] + [i.file for i in issues]:
        text.encode("utf-8")  # no lone surrogates left: datasets and JSON reports can hold them


# ------------------------------------------------------------------------------------------------ Reuters SGML


def article(newid: str, title: str, body: str, extra: str = "") -> str:
    return (
        f'<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="1" NEWID="{newid}">\n'
        f"<DATE>26-FEB-1987 15:01:01.79</DATE>\n<TOPICS><D>cocoa</D></TOPICS>\n<PLACES><D>el-salvador</D></PLACES>\n"
        f"{extra}<TEXT>&#2;\n<TITLE>{title}</TITLE>\n<DATELINE>    LIMA, Mar 2 - </DATELINE><BODY>{body}\n"
        " Reuter\n&#3;</BODY></TEXT>\n</REUTERS>\n"
    )


SGML_TEXT = st.text(
    st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)), min_size=1, max_size=80
).filter(
    # a good article has some visible content (the reader drops control characters) and no sign-off word
    lambda t: any(c.isprintable() and not c.isspace() for c in t)
    and t.split()[-1].lower().rstrip(".") not in ("reuter", "reuters")
)
BAD_SGML: dict[str, Callable[[random.Random, str], str]] = {
    "article never closed": lambda r, n: f'<REUTERS NEWID="{n}">\n<TEXT><TITLE>cut</TITLE><BODY>cut off',
    "article without NEWID": lambda r,
    n: '<REUTERS TOPICS="NO">\n<TEXT><BODY>no id</BODY></TEXT></REUTERS>\n',
    "stray closing tag": lambda r, n: "</REUTERS></TEXT></BODY>\n",
    "control chars and NUL": lambda r, n: "\x00\x01\x02\x7f junk \x1b[31m\n",
    "odd entities": lambda r, n: "&#0; &#xD800; &#99999999; &bogus; &amp\n",
    "random text": lambda r, n: "".join(chr(r.randint(1, 0x2FF)) for _ in range(r.randint(1, 120))),
}


@st.composite
def sgml_files(draw: st.DrawFn) -> tuple[str, set[str], list[str]]:
    n_good = draw(st.integers(0, 8))
    parts = [article(str(1000 + i), draw(SGML_TEXT), draw(SGML_TEXT)) for i in range(n_good)]
    good = {str(1000 + i) for i in range(n_good)}
    rng = random.Random(draw(st.integers(0, 2**32)))
    kinds = draw(st.lists(st.sampled_from(sorted(BAD_SGML)), max_size=6))
    for j, kind in enumerate(kinds):
        parts.insert(draw(st.integers(0, len(parts))), BAD_SGML[kind](rng, str(9000 + j)))
    text = "".join(parts)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\xef\xbb\xbf" + text  # a UTF-8 BOM read as latin-1
    return text, good, kinds


@FUZZ
@given(sgml_files())
def test_reuters_sgml_parser_keeps_every_good_article(case: tuple[str, set[str], list[str]]) -> None:
    text, good, kinds = case
    for kind in kinds:
        event(f"bad chunk: {kind}")
    issues: list[ReadIssue] = []
    records = list(parse_sgml(text, "reut2-000.sgm", "none", issues))
    ids = Counter(r.id for r in records)
    assert set(ids) >= good, [str(i) for i in issues]
    assert all(ids[i] == 1 for i in good)
    for record in records:
        if record.id in good:
            assert record.text and "Reuter" not in record.text.split()[-1:]
    n_lines = text.count("\n") + 1
    for issue in issues:
        assert issue.file == "reut2-000.sgm"
        assert issue.line is None or 1 <= issue.line <= n_lines
    if "article never closed" in kinds and "stray closing tag" not in kinds:  # a stray tag may close it
        assert any("not closed" in i.reason for i in issues), [str(i) for i in issues]


def test_reuters_reader_on_garbage_files_keeps_the_good_ones(tmp_path: Path) -> None:
    """A whole collection where one file is random bytes, one is empty and one is truncated mid-article."""
    folder = tmp_path / "reuters"
    folder.mkdir()
    rng = random.Random(7)
    expected = set()
    for i, name in enumerate(REUTERS_FILES):
        ident = str(i + 1)
        if i == 3:
            (folder / name).write_bytes(bytes(rng.getrandbits(8) for _ in range(5000)))
        elif i == 4:
            (folder / name).write_bytes(b"")
        elif i == 5:
            (folder / name).write_text(
                article(ident, "ok", "fine") + article("999", "cut", "x")[:150], "latin-1"
            )
            expected.add(ident)
        else:
            (folder / name).write_text(article(ident, "Title", "Some body text."), "latin-1")
            expected.add(ident)
    issues: list[ReadIssue] = []
    records = list(read_reuters(folder, "none", issues))
    assert {r.id for r in records} == expected
    reasons = {Path(i.file).name: i.reason for i in issues}
    assert reasons["reut2-004.sgm"] == "no <REUTERS> article in this file"
    assert reasons["reut2-005.sgm"].startswith("article NEWID 999 not closed before the end of the file")
    lines = {Path(i.file).name: i.line for i in issues}
    assert lines["reut2-005.sgm"] == 11


def test_reuters_reader_refuses_a_folder_where_a_file_should_be(tmp_path: Path) -> None:
    folder = tmp_path / "reuters"
    folder.mkdir()
    for name in REUTERS_FILES[1:]:
        (folder / name).write_text(article("1", "t", "b"))
    (folder / REUTERS_FILES[0]).mkdir()
    with pytest.raises(CorpusError, match=r"1 of the 22 Reuters-21578 files are missing \(reut2-000\.sgm\)"):
        read_reuters(folder, "none", [])
