"""``newstag predict`` as a user runs it (a subprocess), on the Reuters test split and a small trained model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures_model import NEWSTAG, ROOT, TrainedModel, reuters_test_rows, small_model

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
__all__ = ["small_model"]  # the fixture, imported for pytest

N_TEST = 3299
# broken lines inserted at these 0-based positions (in order) land on these 1-based line numbers
BROKEN = {
    0: "this is not JSON",
    1500: '{"id": "no-text", "title": "A title only"}',
    3000: '{"id": "n", "text": 1987}',
}
BROKEN_LINES = [1, 1501, 3001]


def newstag(*args: str, model: TrainedModel, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NEWSTAG, *args],
        cwd=kw.pop("cwd", ROOT),
        env=model.env(),
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def jsonl(path: Path, rows: list[dict[str, Any]], broken: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    for pos, raw in sorted((broken or {}).items()):
        lines.insert(pos, raw)
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, small_model: TrainedModel) -> dict[str, Path]:
    """The test split as JSONL with three broken lines, and clean JSONL, CSV and parquet copies."""
    root = tmp_path_factory.mktemp("predict-data")
    rows = reuters_test_rows()
    assert len(rows) == N_TEST
    pd.DataFrame(rows).to_csv(root / "test.csv", index=False)
    pq.write_table(pa.Table.from_pylist(rows), root / "test.parquet")
    big = [dict(r, id=f"{r['id']}-{k}") for k in range(4) for r in rows]
    return {
        "broken": jsonl(root / "broken.jsonl", rows, BROKEN),
        "jsonl": jsonl(root / "test.jsonl", rows),
        "csv": root / "test.csv",
        "parquet": root / "test.parquet",
        "big": jsonl(root / "big.jsonl", big, {5: "broken", 9000: "{}"}),
    }


@pytest.fixture(scope="module")
def reference(
    data: dict[str, Path], small_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The output of one run in one process on the broken file (``-j 1``), compared with by the other tests
    (which mostly run the default, whose 2,000-document chunks are split across the cores)."""
    out = tmp_path_factory.mktemp("reference") / "out.jsonl"
    args = ["predict", "-m", str(small_model.folder), "-i", str(data["broken"]), "-o", str(out), "-j", "1"]
    done = newstag(*args, model=small_model)
    assert done.returncode == 0, done.stderr
    return out


def test_reuters_split_with_three_broken_lines(reference, data, small_model):
    rows = [json.loads(line) for line in reference.read_text().splitlines()]
    assert len(rows) == N_TEST
    assert [r["id"] for r in rows] == [r["id"] for r in reuters_test_rows()]
    assert all(set(r) == {"id", "regions", "themes", "primary_region", "scores", "truncated"} for r in rows)
    rejects = [json.loads(line) for line in Path(f"{reference}.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == BROKEN_LINES
    assert [r["id"] for r in rejects] == [None, "no-text", "n"]
    assert "not valid JSON" in rejects[0]["reason"]
    assert "missing" in rejects[1]["reason"] and "not a string" in rejects[2]["reason"]
    # the labels are the model's: most Reuters test articles get a region and a theme
    assert sum(bool(r["regions"]) for r in rows) > 0.8 * N_TEST
    assert sum(bool(r["themes"]) for r in rows) > 0.6 * N_TEST


def test_summary_on_stderr_and_no_leftovers(data, small_model, tmp_path):
    out = tmp_path / "out.jsonl"
    done = newstag(
        "predict", "-m", str(small_model.folder), "-i", str(data["broken"]), "-o", str(out), model=small_model
    )
    assert done.returncode == 0
    assert f"read 3,302, wrote 3,299, rejected 3 (see {out}.rejects.jsonl)" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.rejects.jsonl"]


def test_the_default_split_across_processes_equals_jobs_one(reference, data, small_model, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["predict", "-m", str(small_model.folder), "-i", str(data["broken"]), "-o", str(out)]
    done = newstag(*args, "--batch-size", "3302", model=small_model)  # one chunk, two or more parts
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{reference}.rejects.jsonl").read_bytes()


def test_jobs_two_equals_jobs_one(reference, data, small_model, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["predict", "-m", str(small_model.folder), "-i", str(data["broken"]), "-o", str(out), "-j", "2"]
    done = newstag(*args, "--batch-size", "300", model=small_model)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{reference}.rejects.jsonl").read_bytes()


def test_jsonl_csv_and_parquet_inputs_give_the_same_output(reference, data, small_model, tmp_path):
    outputs = {}
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"from-{fmt}.jsonl"
        done = newstag(
            "predict", "-m", str(small_model.folder), "-i", str(data[fmt]), "-o", str(out), model=small_model
        )
        assert done.returncode == 0, done.stderr
        outputs[fmt] = out.read_bytes()
    assert outputs["jsonl"] == outputs["csv"] == outputs["parquet"] == reference.read_bytes()


def test_models_uri_through_the_tracking_store(reference, data, small_model, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["predict", "-m", small_model.uri, "-i", str(data["broken"]), "-o", str(out), "-q"]
    done = newstag(*args, "--tracking-uri", small_model.tracking_uri, cwd=tmp_path, model=small_model)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet: no progress, no summary
    assert out.read_bytes() == reference.read_bytes()


def _children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        time.sleep(0.2)
    assert not alive, f"worker processes {alive} outlived the killed run"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_sigkill_then_resume_equals_an_uninterrupted_run(data, small_model, tmp_path):
    base = ["predict", "-m", str(small_model.folder), "-i", str(data["big"]), "--batch-size", "25", "-j", "2"]
    full, cut = tmp_path / "full.jsonl", tmp_path / "cut.jsonl"
    done = newstag(*base, "-o", str(full), model=small_model)
    assert done.returncode == 0, done.stderr

    progress = Path(f"{cut}.progress.json")
    proc = subprocess.Popen(
        [NEWSTAG, *base, "-o", str(cut)], cwd=ROOT, env=small_model.env(), stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text() or "{}").get("chunks", 0) >= 2:
            break
        time.sleep(0.01)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    _wait_gone(workers)  # the worker processes do not outlive a killed run
    assert not cut.exists() and Path(f"{cut}.part").exists()
    done_chunks = json.loads(progress.read_text())["chunks"]
    assert 2 <= done_chunks < 4 * N_TEST // 25

    resumed = newstag(*base, "-o", str(cut), "--resume", model=small_model)
    assert resumed.returncode == 0, resumed.stderr
    assert cut.read_bytes() == full.read_bytes()
    assert Path(f"{cut}.rejects.jsonl").read_bytes() == Path(f"{full}.rejects.jsonl").read_bytes()
    assert not progress.exists() and not Path(f"{cut}.part").exists()
    assert (
        "read 13,198, wrote 13,196, rejected 2" in resumed.stderr
    )  # counts include the chunks before the kill


def test_reject_limit_exits_1_with_a_message(data, small_model, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["predict", "-m", str(small_model.folder), "-i", str(data["broken"]), "-o", str(out)]
    done = newstag(*args, "--max-reject-rate", "0.0005", model=small_model)
    assert done.returncode == 1
    assert "3 of 3,302 rows rejected (0.1%), over --max-reject-rate 0.0005" in done.stderr
    assert f"{out} not written" in done.stderr
    assert not out.exists(), "a failed run leaves no finished-looking output"
    assert len(Path(f"{out}.rejects.jsonl").read_text().splitlines()) == 3


def test_empty_input_gives_an_empty_output(small_model, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    out = tmp_path / "out.jsonl"
    done = newstag(
        "predict",
        "-m",
        str(small_model.folder),
        "-i",
        str(tmp_path / "empty.jsonl"),
        "-o",
        str(out),
        model=small_model,
    )
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.read_bytes() == b""


def test_bad_threshold_exits_2(data, small_model, tmp_path):
    args = [
        "predict",
        "-m",
        str(small_model.folder),
        "-i",
        str(data["jsonl"]),
        "-o",
        str(tmp_path / "o.jsonl"),
    ]
    done = newstag(*args, "--threshold", "Atlantis=0.4", model=small_model)
    assert done.returncode == 2
    assert "'Atlantis' is neither an axis (regions, themes) nor a label of this model" in done.stderr
    done = newstag(*args, "--threshold", "regions:0.4", model=small_model)
    assert done.returncode == 2 and "expected AXIS=VALUE or LABEL=VALUE" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_model_exits_2_with_a_clear_message(data, small_model, tmp_path):
    args = ["-i", str(data["jsonl"]), "-o", str(tmp_path / "o.jsonl")]
    done = newstag(
        "predict", "-m", str(tmp_path / "models" / "news-tagger" / "champion"), *args, model=small_model
    )
    assert done.returncode == 2 and "model folder not found" in done.stderr
    uri = ["--tracking-uri", small_model.tracking_uri]
    done = newstag("predict", "-m", "models:/no-such-model@champion", *uri, *args, model=small_model)
    assert done.returncode == 2
    assert "models:/no-such-model@champion: cannot load the model" in done.stderr
    assert "Traceback" not in done.stderr
