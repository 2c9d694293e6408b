"""``newstag predict --engine dask`` writes what the local engine writes, row for row."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures_model import NEWSTAG, ROOT, TrainedModel, reuters_test_rows, small_model

pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow, pytest.mark.e2e]
__all__ = ["small_model"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def articles(tmp_path_factory: pytest.TempPathFactory, small_model: TrainedModel) -> Path:
    path = tmp_path_factory.mktemp("dask") / "articles.jsonl"
    rows = reuters_test_rows()[:1500]
    lines = [json.dumps(r) for r in rows]
    lines.insert(700, "not json")
    path.write_text("".join(line + "\n" for line in lines))
    return path


def predict(model: TrainedModel, articles: Path, out: Path, *extra: str) -> None:
    args = [NEWSTAG, "predict", "-m", str(model.folder), "-i", str(articles), "-o", str(out), "-q"]
    done = subprocess.run(
        [*args, "--batch-size", "200", *extra],
        cwd=ROOT,
        env=model.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_local_cluster_equals_local_engine(small_model, articles, tmp_path):
    predict(small_model, articles, tmp_path / "local.jsonl")
    predict(small_model, articles, tmp_path / "dask.jsonl", "--engine", "dask", "--jobs", "2")
    local, dask = rows(tmp_path / "local.jsonl"), rows(tmp_path / "dask.jsonl")
    assert len(local) == len(dask) == 1500
    for a, b in zip(local, dask, strict=True):
        assert a == b
    assert (tmp_path / "local.jsonl").read_bytes() == (tmp_path / "dask.jsonl").read_bytes()
    assert (tmp_path / "dask.jsonl.rejects.jsonl").read_text().count("\n") == 1


def test_scheduler_address(small_model, articles, tmp_path):
    from distributed import LocalCluster

    predict(small_model, articles, tmp_path / "local.parquet")
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=None,
    ) as cluster:
        predict(
            small_model,
            articles,
            tmp_path / "remote.parquet",
            "--engine",
            "dask",
            "--scheduler",
            cluster.scheduler_address,
        )
    assert (tmp_path / "local.parquet").read_bytes() == (tmp_path / "remote.parquet").read_bytes()
