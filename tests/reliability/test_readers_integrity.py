"""Reader integrity (issue 12): rows that used to crash a run, hide lost rows, exhaust memory or change ids.

- a lone surrogate (``"\\ud800"``) in an id or a kept column is one reject line (line and field), in every
  output format and across ``--resume``; in a title or text it becomes U+FFFD and the row is kept;
- a corrupt parquet row group counts every row it held as rejected, so the reject limit sees them;
- a gzip input that expands to a line longer than the line limit is one reject, and reading goes on;
- CSV output neutralises cells a spreadsheet would run as formulas;
- ids are kept as written (``1`` and ``1.0`` differ), an empty or non-scalar id rejects its row, and a
  repeated id is kept and noted.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures_model import tiny_model_folder, tiny_rows

from pipeline import predict as P
from pipeline.cli import main
from pipeline.config import CorpusConfig
from pipeline.corpora import ReadIssue, iter_rows, read_files

FORMATS = ["jsonl", "csv", "parquet"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return tiny_rows(40, 2)[0]


def run(model_dir: Path, inp: Path, out: Path, **kw: Any) -> dict[str, Any]:
    args = {"model": str(model_dir), "input": str(inp), "output": str(out), "quiet": True, "batch_size": 10}
    return P.predict_command(**{**args, **kw})


def output_ids(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(pq.read_table(path).column("id").to_pylist())
    if path.suffix == ".csv":
        return [row["id"] for row in csv.DictReader(io.StringIO(path.read_text()))]
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def rejects_of(out: Path) -> list[dict[str, Any]]:
    path = Path(f"{out}.rejects.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------ lone surrogates

# raw JSON lines: each holds a lone surrogate escape where no UTF-8 writer can write it
SURROGATE_LINES = {
    5: (b'{"id": "\\ud800", "text": "oil output in Paris"}', "id"),
    12: (b'{"id": "k1", "text": "crude prices in Tokyo", "source": "\\udfff"}', "source"),
    18: (b'{"id": "k2", "text": "refinery in Berlin", "source": {"note": ["\\ud83d"]}}', "source"),
    25: (b'{"id": "k3", "text": "wheat harvest in Jakarta", "source": {"\\ud800": 1}}', "source"),
}
KEPT_LINES = {  # a lone surrogate in the title or text: U+FFFD, the row is kept
    30: b'{"id": "t1", "title": "half \\ud83d", "text": "coffee crop in Sydney \\ud83d"}',
}


def surrogate_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    lines = [json.dumps(r).encode() for r in rows]
    for number, raw in sorted({**{n: raw for n, (raw, _) in SURROGATE_LINES.items()}, **KEPT_LINES}.items()):
        lines.insert(number - 1, raw)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lone_surrogate_in_an_id_or_kept_field_is_one_reject_line(model_dir, rows, tmp_path, fmt):
    inp = surrogate_file(tmp_path / "in.jsonl", rows)
    out = tmp_path / f"out.{fmt}"
    summary = run(model_dir, inp, out, keep_fields="source", max_reject_rate=0.5)
    assert summary["rejected"] == len(SURROGATE_LINES)
    assert summary["written"] == len(rows) + len(KEPT_LINES)
    rejects = rejects_of(out)
    assert [r["line"] for r in rejects] == sorted(SURROGATE_LINES)
    for reject in rejects:
        field = SURROGATE_LINES[reject["line"]][1]
        assert reject["reason"].startswith(f"field {field!r}: ") and "lone surrogate" in reject["reason"]
    ids = output_ids(out)
    assert "t1" in ids and not {"k1", "k2", "k3"} & set(ids)


class Crash(Exception):
    pass


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_past_a_lone_surrogate_equals_an_uninterrupted_run(
    model_dir, rows, tmp_path, monkeypatch, fmt
):
    inp = surrogate_file(tmp_path / "in.jsonl", rows)
    full, cut = tmp_path / f"full.{fmt}", tmp_path / f"cut.{fmt}"
    run(model_dir, inp, full, keep_fields="source", max_reject_rate=0.5)
    original = P.FileSink.write
    calls = {"n": 0}

    def crashing(self: Any, chunk: Any, data: bytes) -> None:
        if calls["n"] == 1:  # after the first chunk, which holds the first lone surrogate
            raise Crash
        calls["n"] += 1
        original(self, chunk, data)

    monkeypatch.setattr(P.FileSink, "write", crashing)
    with pytest.raises(Crash):
        run(model_dir, inp, cut, keep_fields="source", max_reject_rate=0.5)
    monkeypatch.setattr(P.FileSink, "write", original)
    summary = run(model_dir, inp, cut, keep_fields="source", max_reject_rate=0.5, resume=True)
    assert summary["resumed_from_chunk"] == 1
    assert cut.read_bytes() == full.read_bytes()
    assert Path(f"{cut}.rejects.jsonl").read_bytes() == Path(f"{full}.rejects.jsonl").read_bytes()


def test_training_rejects_a_lone_surrogate_id_and_keeps_a_text_one(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "fine"}\n{"id": "\\ud800", "text": "bad id"}\n{"id": "c", "text": "x \\udfff"}\n'
    )
    issues: list[ReadIssue] = []
    records = list(read_files(CorpusConfig(format="jsonl", path=str(path)), issues))
    assert [r.id for r in records] == ["a", "c"] and records[1].text == "x \ufffd"
    rejected = [i for i in issues if not i.kept]
    assert [(i.line, i.field) for i in rejected] == [(2, "id")]


# ------------------------------------------------------------------------------------------ parquet row groups


def corrupt_parquet(path: Path, n_groups: int, group_rows: int, bad_group: int) -> None:
    """A parquet file of ``n_groups`` row groups of ``group_rows`` rows, with the text column's pages of one
    row group garbled (checksums on, so the reader notices)."""
    rows = [
        {"id": f"r{i}", "title": "t", "text": f"oil output in Paris, report number {i} of the day"}
        for i in range(n_groups * group_rows)
    ]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group_rows, write_page_checksum=True)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == n_groups
    chunk = meta.row_group(bad_group).column(2)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data = bytearray(path.read_bytes())
    for i in range(start, start + chunk.total_compressed_size):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_corrupt_row_group_counts_every_row_it_held(tmp_path):
    path = tmp_path / "in.parquet"
    corrupt_parquet(path, n_groups=4, group_rows=1000, bad_group=2)
    items = list(iter_rows(path))
    assert len(items) == 4000
    issues = [(n, item) for n, item in items if isinstance(item, ReadIssue)]
    assert [n for n, _ in issues] == list(range(2001, 3001))
    assert all("row group 2" in i.reason and i.line == n for n, i in issues)


def test_a_corrupt_row_group_puts_predict_over_the_reject_limit(model_dir, tmp_path, capsys):
    path = tmp_path / "in.parquet"
    corrupt_parquet(path, n_groups=10, group_rows=1000, bad_group=7)  # 1,000 of 10,000 rows: 10 %
    out = tmp_path / "out.jsonl"
    args = ["predict", "-m", str(model_dir), "-i", str(path), "-o", str(out), "-q", "--batch-size", "5000"]
    assert main(args) == 1  # over the default 5 % limit
    assert "1,000 of 10,000 rows rejected" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ over-long lines


def test_a_gzip_that_expands_to_a_huge_line_is_one_reject(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    huge = b'{"id": "huge", "text": "' + b"a" * (100 * 2**20) + b'"}\n'
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(b'{"id": "before", "text": "one"}\n')
        fh.write(huge)
        fh.write(b'{"id": "after", "text": "two"}\n')
    del huge
    assert path.stat().st_size < 2**20  # 100 MB of one byte compresses to almost nothing
    items = list(iter_rows(path))  # the default limit, 64 MiB
    assert [(n, type(item).__name__) for n, item in items] == [(1, "dict"), (2, "ReadIssue"), (3, "dict")]
    assert items[1][1].line == 2 and "longer than 67,108,864 bytes" in items[1][1].reason
    assert [items[0][1]["id"], items[2][1]["id"]] == ["before", "after"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_line_over_a_lower_configured_limit_is_a_reject_naming_its_line(tmp_path, fmt):
    long_text = "word " * 1000
    if fmt == "jsonl":
        lines = [json.dumps({"id": i, "text": "short" if i != 2 else long_text}) for i in (1, 2, 3)]
        data = "\n".join(lines) + "\n"
    else:
        data = "id,text\n1,short\n2," + long_text + "\n3,short\n"
    path = tmp_path / f"in.{fmt}.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(data)
    issues: list[ReadIssue] = []
    cfg = CorpusConfig(format=fmt, path=str(path), max_line_bytes=1024)
    records = list(read_files(cfg, issues))
    assert [r.id for r in records] == ["1", "3"]
    line = 2 if fmt == "jsonl" else 3
    assert [(i.line, i.kept) for i in issues] == [(line, False)] and "longer than 1,024" in issues[0].reason


def test_a_csv_field_over_the_limit_across_lines_is_a_reject(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,text\n1,short\n2,"' + "many lines\n" * 300 + '"\n3,short\n')
    issues: list[ReadIssue] = []
    records = list(read_files(CorpusConfig(format="csv", path=str(path), max_line_bytes=1024), issues))
    ids = [r.id for r in records]
    assert ids[0] == "1" and "3" in ids
    assert any(i.line == 3 and "field larger than field limit" in i.reason for i in issues)


# ------------------------------------------------------------------------------------------ CSV output


def test_csv_output_neutralises_formula_cells(model_dir, tmp_path):
    risky = ['=HYPERLINK("http://x")', "+1+2", "-3-4", "@SUM(A1)", "\tcmd", "\rcmd"]
    rows = [{"id": f"{r}#{i}", "text": "oil output in Paris", "source": r} for i, r in enumerate(risky)]
    rows.append({"id": "plain", "text": "oil output in Paris", "source": "ok = fine"})
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.csv"
    run(model_dir, inp, out, keep_fields="source")
    table = list(csv.DictReader(io.StringIO(out.read_bytes().decode(), newline="")))
    ids = [r["id"].strip() for r in rows[:4]]  # ids are stripped: a tab or CR cannot lead one
    assert [r["id"] for r in table][:4] == ["'" + i for i in ids]
    assert [r["source"] for r in table] == ["'" + r for r in risky] + ["ok = fine"]
    # JSON keeps the values as they are
    run(model_dir, inp, tmp_path / "out.jsonl", keep_fields="source")
    assert output_ids(tmp_path / "out.jsonl") == [r["id"].strip() for r in rows]


# ------------------------------------------------------------------------------------------ ids


def test_ids_are_kept_as_written_and_bad_ids_are_rejects(model_dir, tmp_path):
    lines = [
        '{"id": 1, "text": "oil output in Paris"}',
        '{"id": 1.0, "text": "oil output in Paris"}',
        '{"id": "", "text": "oil output in Paris"}',
        '{"id": {"a": 1}, "text": "oil output in Paris"}',
        '{"id": [1], "text": "oil output in Paris"}',
        '{"id": "  ", "text": "oil output in Paris"}',
        '{"text": "oil output in Paris"}',
        '{"id": 1e400, "text": "oil output in Paris"}',
    ]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    run(model_dir, inp, out, max_reject_rate=1)
    assert output_ids(out) == ["1", "1.0", "in:7"]
    rejects = rejects_of(out)
    assert [r["line"] for r in rejects] == [3, 4, 5, 6, 8]
    assert all(r["reason"].startswith("field 'id': ") for r in rejects)
    assert "empty" in rejects[0]["reason"] and "got an object" in rejects[1]["reason"]
    assert "got a list" in rejects[2]["reason"]


def test_a_repeated_id_is_kept_and_noted_in_the_data_report(tmp_path):
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n{"id": "a", "text": "z"}\n')
    test.write_text('{"id": "b", "text": "w"}\n')
    issues: list[ReadIssue] = []
    cfg = CorpusConfig(format="jsonl", files={"train": str(train), "test": str(test)})
    records = list(read_files(cfg, issues))
    assert [r.id for r in records] == ["a", "b", "a", "b"]  # both kept: the reader cannot tell which is right
    assert [(i.file, i.line, i.id, i.kept) for i in issues] == [
        (str(train), 3, "a", True),
        (str(test), 1, "b", True),
    ]
    assert "duplicate id (first on line 1)" in issues[0].reason
    assert f"first on {train}, line 2" in issues[1].reason


def test_the_data_report_counts_repeated_ids(tmp_path):
    from pipeline.config import load_config
    from pipeline.prepare import prepare, summary_lines

    places = ["Paris", "Lagos", "Lima", "Tokyo"]
    rows = [
        {"id": f"a{i}", "text": f"Markets in {places[i % 4]} moved.", "desk": [places[i % 4]]}
        for i in range(40)
    ]
    rows += [dict(rows[3], text="A second story."), dict(rows[7], text="A third one.")]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: dups\ncorpus: {{format: jsonl, path: {data}, label_fields: {{desk: desk}}}}\n"
        f"axes: {{desk: {{source: desk, min_support: 2}}}}\nprocessed_dir: {tmp_path / 'processed'}\n"
    )
    report = prepare(load_config(config), say=lambda _: None).report
    assert report["duplicate_ids"] == 2 and sum(report["documents"].values()) == 42
    assert "repeated ids (kept, noted below): 2" in summary_lines(report)
