"""MLflow against a temporary SQLite store: the pyfunc contract, registry promotion, export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline import tracking
from pipeline.errors import ModelError
from pipeline.loading import load_tagger
from pipeline.promotion import Rule, Sample

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
        assert list(out.columns) == ["regions", "themes", "primary_region", "scores"]
    out = model.predict(pd.DataFrame({"text": DOCS}))  # title is optional
    assert out["regions"].tolist() == [["Africa"], ["Asia-Pacific"], ["Europe"]]
    assert out["primary_region"].tolist() == ["Africa", "Asia-Pacific", "Europe"]
    scores = json.loads(out["scores"][0])
    assert set(scores) == {"regions", "themes"} and scores["regions"]["Africa"] > 0.5


def test_logged_model_records_its_sha256_and_signature(logged) -> None:
    run_id, info = logged
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["newstag.tagger_sha256"] == info.sha256
    model = mlflow.models.get_model_info(info.model_uri)
    inputs = {c["name"]: c for c in model.signature.inputs.to_dict()}
    assert inputs["text"]["required"] is True and inputs["title"]["required"] is False
    assert [c["name"] for c in model.signature.outputs.to_dict()] == [
        "regions",
        "themes",
        "primary_region",
        "scores",
    ]


RULE = Rule(("regions/micro_f1",))


def _samples(new_hits: int, old_hits: int, n: int = 300) -> list[Sample]:
    """Validation documents all about Europe: the challenger finds the first ``new_hits``, the champion
    the first ``old_hits``."""

    def found(k: int) -> list[list[str]]:
        return [["Europe"]] * k + [[]] * (n - k)

    return [Sample("regions", None, [["Europe"]] * n, found(new_hits), found(old_hits))]


def _register(name: str, logged, champion_samples=None):
    run_id, info = logged
    with mlflow.start_run(run_id=run_id):
        return tracking.register_and_promote(
            name, info.model_uri, run_id, champion_samples or (lambda uri: []), RULE
        )


def _new_run(tiny_tagger):
    with mlflow.start_run() as run:
        info = tracking.log_tagger(tiny_tagger, pd.DataFrame({"text": DOCS[:1]}), {})
    return run.info.run_id, info


def test_promotion_only_when_the_champion_is_beaten_beyond_the_noise(logged, tiny_tagger) -> None:
    first = _register("m", logged)
    assert (first.alias, first.promoted, first.reason) == ("champion", True, "no champion yet")
    asked = []

    def against(new_hits: int, old_hits: int):
        def champion_samples(uri: str) -> list[Sample]:
            asked.append(uri)
            return _samples(new_hits, old_hits)

        return champion_samples

    worse = _register("m", _new_run(tiny_tagger), against(240, 270))
    assert worse.alias == "challenger" and not worse.promoted
    assert worse.reason.startswith("v2 is worse than v1 on validation regions micro-F1 by -0.0")
    noise = _register("m", _new_run(tiny_tagger), against(271, 270))  # one document more: noise
    assert noise.alias == "challenger" and "does not beat v1 beyond the noise" in noise.reason
    better = _register("m", _new_run(tiny_tagger), against(295, 270))
    assert better.alias == "champion" and better.promoted and better.champion_version == "1"
    assert asked == ["models:/m/1"] * 3  # the champion is re-scored for every decision
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("m", "champion").version) == better.version
    assert str(client.get_model_version_by_alias("m", "challenger").version) == noise.version
    version = client.get_model_version("m", better.version)
    assert version.description == version.tags["newstag.decision_reason"]
    assert re.fullmatch(
        r"v4 beats v1 on validation regions micro-F1 by \+0\.\d{3} \[0\.\d{3}, 0\.\d{3}\], p < 0\.001: champion",
        version.description,
    ), version.description
    run = client.get_run(version.tags["newstag.run_id"])
    tags = run.data.tags
    assert (tags["newstag.decision"], tags["newstag.promoted"]) == ("promoted", "true")
    assert tags["newstag.decision_reason"] == version.description
    assert (tags["newstag.compared_with"], tags["newstag.decision_basis"]) == ("v1", "validation")
    [numbers] = json.loads(tags["newstag.decision_numbers"])
    assert numbers["verdict"] == "better" and numbers["n_docs"] == 300 and numbers["low"] > 0
    assert "newstag.score" not in tags and "newstag.champion_score" not in tags
    noisy = client.get_model_version("m", noise.version)
    assert noisy.tags["newstag.decision"] == "not promoted"
    assert noisy.description.endswith("(95% intervals include 0): challenger")


def test_a_champion_that_cannot_be_scored_is_replaced_and_the_reason_says_why(logged, tiny_tagger) -> None:
    _register("m", logged)

    def unloadable(uri: str) -> list[Sample]:
        raise ModelError(f"{uri}: cannot load the model: artifact gone\nmore detail")

    promo = _register("m", _new_run(tiny_tagger), unloadable)
    assert promo.promoted and promo.alias == "champion"
    assert promo.reason == (
        "champion v1 cannot be scored on this validation split: models:/m/1: cannot load the model: artifact gone"
    )


def test_the_champion_is_rescored_on_the_validation_documents(logged, tiny_tagger, tiny_corpus) -> None:
    """train.champion_samples loads the registered champion and scores this run's validation split."""
    from pipeline.train import champion_samples

    _register("m", logged)
    texts, gold = tiny_corpus["validation"]
    frame = pd.DataFrame({"text": texts, "title": [""] * len(texts)})
    mine = {axis: [[] for _ in texts] for axis in gold}  # a challenger that finds nothing
    [sample] = champion_samples("models:/m/1", None, frame, gold, mine, ["regions/micro_f1"])
    assert (sample.axis, sample.corpus, len(sample.gold)) == ("regions", None, len(texts))
    assert sample.champion == tiny_tagger.predict_labels(frame)["regions"]
    assert sample.challenger == [[]] * len(texts) and sample.gold == gold["regions"]
    with pytest.raises(ModelError, match="it has no topics axis"):
        champion_samples("models:/m/1", None, frame, {"topics": [[]] * len(texts)}, {}, ["topics/micro_f1"])


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
