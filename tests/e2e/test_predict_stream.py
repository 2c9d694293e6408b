"""``newstag predict --stream`` as a pipeline keeps it open (a subprocess fed one line at a time), and the
run summary's load time and scoring throughput."""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
from fixtures_model import NEWSTAG, ROOT, TrainedModel, reuters_test_rows, small_model

from pipeline.cli import main
from pipeline.predict import summary_lines

__all__ = ["small_model"]  # the fixture, imported for pytest
e2e = [pytest.mark.slow, pytest.mark.e2e]

FIRST_LINE_TIMEOUT = 120.0  # the model loads (and warms up) before the first line is answered
LINE_TIMEOUT = 20.0  # generous on a busy 2-core machine; a line that never comes fails instead of hanging
PAUSE = 0.005


class Stream:
    """A running ``newstag predict --stream``: write a line, read its answer with a timeout."""

    def __init__(self, model: TrainedModel, *options: str) -> None:
        cmd = [NEWSTAG, "predict", "-m", str(model.folder), "--stream", *options]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=model.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdin is not None
        self.stdin = self.proc.stdin
        self.out: queue.Queue[bytes] = queue.Queue()
        self.err: queue.Queue[bytes] = queue.Queue()
        for pipe, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_pump, args=(pipe, lines), daemon=True).start()

    def send(self, line: str) -> None:
        self.stdin.write(line.encode() + b"\n")
        self.stdin.flush()

    def answer(self, lines: queue.Queue[bytes], timeout: float) -> bytes:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"no line within {timeout} s (exit code {self.proc.poll()})")
        assert line, f"the stream ended early (exit code {self.proc.wait(timeout=30)})"
        return line

    def close(self) -> tuple[int, str]:
        """Close stdin (EOF); the exit code and what is left on stderr."""
        self.stdin.close()
        code = self.proc.wait(timeout=60)
        rest = []
        while (line := self.err.get(timeout=10)) != b"":
            rest.append(line.decode())
        return code, "".join(rest)


def _pump(pipe: IO[bytes], lines: queue.Queue[bytes]) -> None:
    for line in iter(pipe.readline, b""):
        lines.put(line)
    lines.put(b"")  # end of the stream


def batch_output(model: TrainedModel, rows: list[dict[str, Any]], tmp_path: Path, *options: str) -> bytes:
    """What batch mode writes for ``rows`` (a file in, a file out), with ``options``."""
    inp = tmp_path / "batch-in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / ("batch-out.csv" if "csv" in options else "batch-out.jsonl")
    cmd = [NEWSTAG, "predict", "-m", str(model.folder), "-i", str(inp), "-o", str(out), "-q", *options]
    done = subprocess.run(cmd, cwd=ROOT, env=model.env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    return out.read_bytes()


# --------------------------------------------------------------------------- line by line


@pytest.mark.slow
@pytest.mark.e2e
def test_each_line_is_answered_before_the_next_is_written(small_model, capsys):
    rows = reuters_test_rows()[:1000]
    stream = Stream(small_model)
    latencies = []
    for k, row in enumerate(rows):
        sent = time.perf_counter()
        stream.send(json.dumps(row))
        line = stream.answer(stream.out, FIRST_LINE_TIMEOUT if k == 0 else LINE_TIMEOUT)
        latencies.append(time.perf_counter() - sent)
        assert json.loads(line)["id"] == row["id"]
        time.sleep(PAUSE)
    assert stream.out.empty()
    code, err = stream.close()
    assert code == 0, err
    assert stream.out.get(timeout=10) == b""  # nothing more on stdout after the last answer
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("newstag predict: read 1,000, wrote 1,000, rejected 0, truncated ")
    assert "docs/s) -> -" in summary
    steady = latencies[1:]  # the first line waits for the model to load
    with capsys.disabled():
        print(
            f"\n--stream, 1,000 lines one at a time ({PAUSE * 1000:.0f} ms pause): first answer "
            f"{latencies[0]:.2f} s; then median {statistics.median(steady) * 1000:.2f} ms per line, "
            f"p90 {statistics.quantiles(steady, n=10)[-1] * 1000:.2f} ms, "
            f"{len(steady) / sum(steady):,.0f} lines/s excluding the pauses\n{summary}"
        )


@pytest.mark.slow
@pytest.mark.e2e
def test_a_bad_line_is_a_reject_on_stderr_and_the_stream_goes_on(small_model):
    rows = reuters_test_rows()[:4]
    stream = Stream(small_model)
    stream.send(json.dumps(rows[0]))
    assert json.loads(stream.answer(stream.out, FIRST_LINE_TIMEOUT))["id"] == rows[0]["id"]
    stream.send("{not json")
    reject = json.loads(stream.answer(stream.err, LINE_TIMEOUT))
    assert reject["line"] == 2 and reject["id"] is None and "not valid JSON" in reject["reason"]
    stream.send(json.dumps({"id": "no-text", "title": "A title only"}))
    reject = json.loads(stream.answer(stream.err, LINE_TIMEOUT))
    assert (reject["line"], reject["id"]) == (3, "no-text") and "field 'text'" in reject["reason"]
    for row in rows[1:]:
        stream.send(json.dumps(row))
        assert json.loads(stream.answer(stream.out, LINE_TIMEOUT))["id"] == row["id"]
    code, err = stream.close()
    assert stream.out.empty() or stream.out.get(timeout=10) == b""  # no output line for the bad lines
    assert code == 1, err  # 2 of 6 rejected: over --max-reject-rate, as in batch mode
    assert "read 6, wrote 4, rejected 2, truncated 0" in err


# --------------------------------------------------------------------------- same bytes as batch mode

OPTIONS = {
    "defaults": [],
    "shaped": [
        *("--top-k", "2", "--explain", "--keep-fields", "topic,year"),
        *("--threshold", "regions=0.3", "--threshold", "themes=0.6", "--max-chars", "400"),
        *("--id-field", "key", "--title-field", "headline", "--text-field", "body"),
    ],
    "csv": ["--output-format", "csv", "--top-k", "3"],
}


def _rows_for(name: str) -> list[dict[str, Any]]:
    rows = reuters_test_rows()[:150]
    if name != "shaped":
        return rows
    return [
        {
            "key": r["id"],
            "headline": r["title"],
            "body": r["text"],
            "topic": f"t{k % 3}",
            "year": 1987 + k % 2,
        }
        for k, r in enumerate(rows)
    ]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("name", list(OPTIONS))
def test_the_stream_writes_what_batch_mode_writes(small_model, tmp_path, name):
    rows, options = _rows_for(name), OPTIONS[name]
    fed = "".join(json.dumps(r) + "\n" for r in rows).encode()
    cmd = [NEWSTAG, "predict", "-m", str(small_model.folder), "--stream", *options]
    done = subprocess.run(cmd, cwd=ROOT, env=small_model.env(), input=fed, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    expected = batch_output(small_model, rows, tmp_path, *options)
    assert done.stdout == expected
    assert len(expected.splitlines()) == len(rows) + (name == "csv")
    if name == "shaped":
        assert any(json.loads(line)["truncated"] for line in expected.splitlines())


# --------------------------------------------------------------------------- refused combinations


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "in.jsonl"], "--stream reads stdin"),
        (["-o", "out.jsonl"], "--stream writes to stdout"),
        (["--resume"], "--stream cannot --resume"),
        (["--jobs", "2"], "in this process"),
        (["--engine", "dask"], "in this process"),
        (["--scheduler", "tcp://127.0.0.1:1"], "in this process"),
        (["--output-format", "parquet"], "parquet cannot be streamed"),
        (["-o", "out.parquet"], "--stream writes to stdout"),
    ],
)
def test_refused_combinations(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "b"}\n')
    model = str(tmp_path / "no-model-needed")  # refused before the model is looked for
    assert main(["predict", "-m", model, "--stream", *args]) == 2
    assert message in capsys.readouterr().err


def test_input_and_output_are_required_without_stream(capsys):
    assert main(["predict", "-m", "x", "-o", "out.jsonl"]) == 2
    assert "--input is required (or --stream" in capsys.readouterr().err
    assert main(["predict", "-m", "x", "-i", "in.jsonl"]) == 2
    assert "--output is required" in capsys.readouterr().err


# --------------------------------------------------------------------------- the summary's times


def test_summary_line_reports_the_model_load_apart():
    summary = {
        "read": 4,
        "written": 4,
        "rejected": 0,
        "truncated": 0,
        "seconds": 0.6234,
        "load_seconds": 0.31,
        "score_seconds": 0.0032,
        "docs_per_s": 1250.0,
        "output": "out.jsonl",
        "rejects": None,
    }
    assert summary_lines(summary) == [
        "newstag predict: read 4, wrote 4, rejected 0, truncated 0 in 0.62 s (model 0.31 s; 1,250 docs/s) "
        "-> out.jsonl"
    ]
    assert "in 12.3 s (model 4.0 s;" in summary_lines({**summary, "seconds": 12.3, "load_seconds": 4.0})[0]


@pytest.mark.slow
@pytest.mark.e2e
def test_json_summary_times_load_and_scoring_apart(small_model, tmp_path):
    rows = reuters_test_rows()[:4]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmd = [NEWSTAG, "predict", "-m", str(small_model.folder), "-i", str(inp), "-o", str(tmp_path / "o.jsonl")]
    done = subprocess.run([*cmd, "--json"], cwd=ROOT, env=small_model.env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert s["read"] == 4 and s["load_seconds"] > 0 and s["score_seconds"] > 0
    assert s["load_seconds"] + s["score_seconds"] <= s["seconds"] + 0.002  # each rounded to the millisecond
    assert s["docs_per_s"] == pytest.approx(4 / s["score_seconds"], rel=0.05)
    assert s["docs_per_s"] >= 1  # a 4-document run no longer reads "(0 docs/s)"
