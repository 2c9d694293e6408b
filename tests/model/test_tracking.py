"""MLflow against a temporary SQLite store: the pyfunc contract, registry promotion, export."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline import tracking
from pipeline.errors import ModelError
from pipeline.loading import load_tagger

DOCS = ["In Nairobi, coffee growers rose.", "In Tokyo, oil output rose.", "In Paris, wheat harvest rose."]


@pytest.fixture
def logged(tiny_tagger, tracking_uri):
    """The tiny tagger logged as a pyfunc in a fresh store: (run id, LoggedModel)."""
    tracking.setup_tracking(tracking_uri)
    tracking.ensure_experiment("tests", "test experiment")
    example = pd.DataFrame({"text": DOCS[:2], "title": ["a", "b"]})
    with mlflow.start_run() as run:
        info = tracking.log_tagger(tiny_tagger, example, tiny_tagger.describe())
    return run.info.run_id, info


def test_pyfunc_returns_one_row_per_input_row(logged) -> None:
    _, info = logged
    model = mlflow.pyfunc.load_model(info.model_uri)
    for n in (1, 3, 7):
        frame = pd.DataFrame({"text": (DOCS * 3)[:n], "title": [""] * n})
        out = model.predict(frame)
        assert len(out) == n
        assert list(out.columns) == ["regions", "themes", "scores"]
    out = model.predict(pd.DataFrame({"text": DOCS}))  # title is optional
    assert out["regions"].tolist() == [["Africa"], ["Asia-Pacific"], ["Europe"]]
    scores = json.loads(out["scores"][0])
    assert set(scores) == {"regions", "themes"} and scores["regions"]["Africa"] > 0.5


def test_logged_model_records_its_sha256_and_signature(logged) -> None:
    run_id, info = logged
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["newstag.tagger_sha256"] == info.sha256
    model = mlflow.models.get_model_info(info.model_uri)
    inputs = {c["name"]: c for c in model.signature.inputs.to_dict()}
    assert inputs["text"]["required"] is True and inputs["title"]["required"] is False
    assert [c["name"] for c in model.signature.outputs.to_dict()] == ["regions", "themes", "scores"]


def _register(name: str, logged, metrics: dict[str, float], digest: str = "d1", rescore=None):
    run_id, info = logged
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        mlflow.set_tag("newstag.test_digest", digest)
        return tracking.register_and_promote(
            name,
            info.model_uri,
            run_id,
            metrics,
            ["test/regions/micro_f1"],
            digest,
            rescore or (lambda uri: {}),
        )


def _new_run(tiny_tagger):
    with mlflow.start_run() as run:
        info = tracking.log_tagger(tiny_tagger, pd.DataFrame({"text": DOCS[:1]}), {})
    return run.info.run_id, info


def test_promotion_only_when_the_champion_is_beaten(logged, tiny_tagger) -> None:
    first = _register("m", logged, {"test/regions/micro_f1": 0.90})
    assert (first.alias, first.promoted, first.reason) == ("champion", True, "no champion yet")
    worse = _register("m", _new_run(tiny_tagger), {"test/regions/micro_f1": 0.85})
    assert worse.alias == "challenger" and not worse.promoted
    assert worse.champion_score == pytest.approx(0.90)
    tie = _register("m", _new_run(tiny_tagger), {"test/regions/micro_f1": 0.90})
    assert tie.alias == "challenger"  # a tie does not replace the champion
    better = _register("m", _new_run(tiny_tagger), {"test/regions/micro_f1": 0.93})
    assert better.alias == "champion" and better.promoted
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("m", "champion").version) == better.version
    assert str(client.get_model_version_by_alias("m", "challenger").version) == tie.version
    run = client.get_run(client.get_model_version("m", better.version).tags["newstag.run_id"])
    assert run.data.tags["newstag.decision"].startswith("champion: 0.9300 beats champion v1 0.9000")
    assert run.data.tags["newstag.champion_score"] == "0.900000"


def test_champion_on_another_test_set_is_rescored(logged, tiny_tagger) -> None:
    _register("m", logged, {"test/regions/micro_f1": 0.99}, digest="old-test-set")
    seen = []

    def rescore(uri: str) -> dict[str, float]:
        seen.append(uri)
        return {"test/regions/micro_f1": 0.80}

    promo = _register(
        "m", _new_run(tiny_tagger), {"test/regions/micro_f1": 0.85}, digest="new", rescore=rescore
    )
    assert seen == ["models:/m/1"]
    assert promo.promoted and "re-scored on this test set" in promo.reason


def test_export_and_load_without_a_store(logged, tmp_path: Path, monkeypatch) -> None:
    _, info = logged
    dest = tracking.export_model(info.model_uri, "m", "1", True, str(tmp_path / "models"))
    assert (dest / "MLmodel").is_file() and (tmp_path / "models" / "m" / "champion").resolve() == dest
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////nonexistent/dir/x.db")
    tagger, where = load_tagger(str(tmp_path / "models" / "m" / "champion"))
    assert tagger.predict_labels(DOCS[:1])["regions"] == [["Africa"]]
    assert where.sha256 == info.sha256


def test_a_changed_model_file_is_refused(logged, tmp_path: Path) -> None:
    _, info = logged
    dest = tracking.export_model(info.model_uri, "m", "1", False, str(tmp_path / "models"))
    blob = dest / "artifacts" / "scorer.npz"  # the file a loader reads
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_tagger(str(dest))


def test_latest_runs_finds_the_experiment_to_show(tracking_uri: str) -> None:
    tracking.setup_tracking(tracking_uri)
    assert tracking.latest_runs(tracking_uri, "news", None) is None  # an empty store
    tracking.ensure_experiment("other", "")
    with mlflow.start_run(run_name="first"):
        pass
    found = tracking.latest_runs(tracking_uri, "news", "news-tagger")
    assert (found.experiment_name, found.latest_run, found.fell_back) == ("other", "first", True)
    assert found.model_name is None  # no such registered model
    tracking.ensure_experiment("news", "")
    with mlflow.start_run(run_name="second"):
        pass
    tracking.ensure_registered_model("news-tagger", "")
    found = tracking.latest_runs(tracking_uri, "news", "news-tagger")
    assert (found.experiment_name, found.latest_run, found.fell_back) == ("news", "second", False)
    assert found.model_name == "news-tagger"
    assert not tracking.latest_runs(tracking_uri, None, None).fell_back  # nothing asked, nothing missed


def test_a_store_uri_that_holds_no_such_model_is_a_model_error(tracking_uri: str) -> None:
    with pytest.raises(ModelError, match="models:/nothing/1: cannot load the model"):
        load_tagger("models:/nothing/1", tracking_uri)
