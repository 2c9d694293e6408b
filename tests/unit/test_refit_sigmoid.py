"""Two training options for a top-1 decision: heads refit on train + validation after calibration
(``refit_axes``), and one Platt sigmoid shared by an axis's labels (``shared_sigmoid_axes``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.features import Featurizer
from pipeline.model import NewsTagger, tagger_from_config
from pipeline.prepare import load_prepared, prepare, split_frame
from tests.unit.test_corpora_several import _config

TOPICS = {
    "conflict": "Troops shell the border town as fighting spreads {n}.",
    "election": "Voters elect a new parliament in a tight race {n}.",
    "quake": "An earthquake flattens houses in the valley {n}.",
}


def _frames() -> tuple[pd.DataFrame, dict, pd.DataFrame, dict]:
    """Train and validation documents: ``ceasefire`` is in both, with conflict in train but with elections
    (a ceasefire vote) in validation, so heads refit on validation must lean it towards elections."""
    rows, gold = [], []
    for i in range(90):
        topic = list(TOPICS)[i % 3]
        text = TOPICS[topic].format(n=i)
        if topic == "conflict" and i % 2:
            text += " A ceasefire is announced."
        rows.append({"title": "", "text": text})
        gold.append([topic])
    val_rows, val_gold = [], []
    for i in range(60):
        topic = list(TOPICS)[i % 3]
        text = TOPICS[topic].format(n=i)
        if topic == "election":
            text += " A ceasefire is announced."
        val_rows.append({"title": "", "text": text})
        val_gold.append([topic])
    return pd.DataFrame(rows), {"themes": gold}, pd.DataFrame(val_rows), {"themes": val_gold}


def _tagger(**kw: object) -> NewsTagger:
    return NewsTagger(Featurizer(word_min_df=1), axes=("themes",), min_support=2, n_jobs=1, **kw)


def test_refit_heads_learn_from_validation_and_keep_the_validation_calibration() -> None:
    X, Y, Xv, Yv = _frames()
    plain = _tagger().fit(X, Y, Xv, Yv)
    refit = _tagger(refit_axes=("themes",)).fit(X, Y, Xv, Yv)
    np.testing.assert_array_equal(refit.platt_, plain.platt_)  # sigmoids and thresholds from validation
    np.testing.assert_array_equal(refit.thresholds_, plain.thresholds_)
    term = list(refit.feature_names()).index("word:ceasefire")
    election = refit.labels_["themes"].index("election")
    conflict = refit.labels_["themes"].index("conflict")
    assert refit.coef_[term, election] > plain.coef_[term, election]
    assert refit.coef_[term, conflict] < plain.coef_[term, conflict]
    assert refit.coef_.shape == plain.coef_.shape  # scoring stays one sparse product
    assert 0 < refit.timings_["refit"] < refit.timings_["heads"]  # the fit time counts the refit


def test_refit_touches_only_its_axes_and_records_the_corpora(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    prepared = prepare(cfg, say=lambda _: None)
    data = load_prepared(prepared.path)
    (xt, yt), (xv, yv) = split_frame(data["train"]), split_frame(data["validation"])
    coverage = prepared.report["coverage"]
    kw = {"axes": ("regions", "themes"), "min_support": 2, "n_jobs": 1}
    plain = NewsTagger(Featurizer(word_min_df=1), **kw).fit(xt, yt, xv, yv, coverage=coverage)
    refit = NewsTagger(Featurizer(word_min_df=1), refit_axes=("themes",), **kw).fit(
        xt, yt, xv, yv, coverage=coverage
    )
    themes, regions = refit._slices()["themes"], refit._slices()["regions"]
    np.testing.assert_array_equal(refit.coef_[:, regions], plain.coef_[:, regions])
    assert not np.allclose(refit.coef_[:, themes], plain.coef_[:, themes], atol=1e-3)
    # the coverage rule holds in the refit too: portal words never reach the migration head
    names = list(refit.feature_names())
    migration = themes.start + refit.labels_["themes"].index("migration")
    portal_only = [names.index(f"word:{w}") for w in ("earthquake", "drone", "parliament")]
    assert np.all(refit.coef_[portal_only, migration] == 0)
    assert refit.trained_on_["themes"]["migration"] == ["articles"]


def test_refit_needs_validation_thresholds_and_known_axes() -> None:
    X, Y, Xv, Yv = _frames()
    with pytest.raises(ValueError, match="refit_axes needs threshold_strategy='validation'"):
        _tagger(refit_axes=("themes",), threshold_strategy="cv").fit(X, Y)
    with pytest.raises(ValueError, match="refit_axes names axes"):
        _tagger(refit_axes=("regions",)).fit(X, Y, Xv, Yv)
    with pytest.raises(ValueError, match="shared_sigmoid_axes names axes"):
        _tagger(shared_sigmoid_axes=("topics",)).fit(X, Y, Xv, Yv)


def test_a_shared_sigmoid_ranks_labels_by_raw_score_and_thresholds_stay_per_label() -> None:
    X, Y, Xv, Yv = _frames()
    plain = _tagger().fit(X, Y, Xv, Yv)
    shared = _tagger(shared_sigmoid_axes=("themes",)).fit(X, Y, Xv, Yv)
    assert len({tuple(row) for row in shared.platt_}) == 1
    assert len({tuple(row) for row in plain.platt_}) > 1  # per-label sigmoids without it
    np.testing.assert_array_equal(shared.coef_, plain.coef_)
    docs = pd.DataFrame(
        {"title": ["", ""], "text": ["Troops and voters in the valley.", "A ceasefire vote."]}
    )
    raw = shared._raw(shared.transform_docs(docs))
    probs = shared.predict_scores(docs)["themes"]
    np.testing.assert_array_equal(probs.argmax(axis=1), raw.argmax(axis=1))
    assert shared.threshold_source_ == ["tuned"] * 3
    assert shared.compile().predict_scores(docs)["themes"].tolist() == probs.tolist()


def test_config_names_the_axes_and_reaches_the_tagger(tmp_path: Path) -> None:
    path = _config(tmp_path, "model: {refit_axes: [themes]}\nthresholds: {shared_sigmoid_axes: [themes]}")
    tagger = tagger_from_config(load_config(path))
    assert (tagger.refit_axes, tagger.shared_sigmoid_axes) == (("themes",), ("themes",))
    for extra, key in (
        ("model: {refit_axes: [topics]}", "model.refit_axes"),
        ("thresholds: {shared_sigmoid_axes: [topics]}", "thresholds.shared_sigmoid_axes"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(_config(tmp_path, extra))


def test_a_refit_config_compares_on_validation_before_the_refit(tmp_path: Path) -> None:
    from pipeline.train import comparison_basis

    assert comparison_basis(load_config(_config(tmp_path))) == "validation"
    refit = load_config(_config(tmp_path, "model: {refit_axes: [themes]}"))
    assert comparison_basis(refit) == "validation (themes before the refit)"


def test_the_refit_tagger_keeps_its_held_out_validation_labels() -> None:
    """The labels the promotion compares: those of the heads fitted on train alone, not of the refit ones
    (which have seen validation: the ceasefire item of an election is then called an election)."""
    X, Y, Xv, Yv = _frames()
    plain = _tagger().fit(X, Y, Xv, Yv)
    refit = _tagger(refit_axes=("themes",)).fit(X, Y, Xv, Yv)
    assert refit.heldout_validation_labels_ == plain.labels_from_scores(plain.predict_scores(Xv))
    election = refit.labels_["themes"].index("election")
    seen = refit.predict_scores(Xv)["themes"][1::3, election]  # the refit heads have seen these items
    assert np.all(seen > plain.predict_scores(Xv)["themes"][1::3, election])
    assert not hasattr(plain, "heldout_validation_labels_")


def test_training_with_a_refit_judges_the_challenger_before_its_refit(
    tmp_path: Path, tracking_uri: str
) -> None:
    """Two trainings in one store: the second, refit on validation, is compared with the champion on the labels
    its theme heads gave validation before the refit; the logged model does not carry those labels."""
    import joblib
    from mlflow import MlflowClient

    from pipeline.train import train

    path = _config(tmp_path, f"tracking: {{export_dir: {tmp_path / 'models'}, registered_model: several}}")
    first = train(load_config(path), str(path), tracking_uri=tracking_uri, say=lambda _: None)
    refit = load_config(path, ["model.refit_axes=[themes]"])
    second = train(refit, str(path), tracking_uri=tracking_uri, say=lambda _: None)
    client = MlflowClient(tracking_uri)
    tags = client.get_run(second["run_id"]).data.tags
    assert tags["newstag.decision_basis"] == "validation (themes before the refit)"
    assert client.get_run(first["run_id"]).data.tags["newstag.decision_basis"] == "validation"
    tagger = joblib.load(Path(second["export_path"]) / "artifacts" / "tagger.joblib")
    assert tagger.refit_axes == ("themes",) and not hasattr(tagger, "heldout_validation_labels_")


def test_a_refit_champion_is_judged_by_the_labels_it_gave_validation_before_its_refit(
    tmp_path: Path, tracking_uri: str
) -> None:
    """A champion whose theme heads were refit on validation is, on those documents, compared by the labels
    its run kept from before the refit, never by what its refit heads say of documents they were fitted on;
    a refit champion whose run kept none cannot be compared (and the new version is promoted, saying why)."""
    import json
    from urllib.parse import urlparse

    from mlflow import MlflowClient

    from pipeline import tracking
    from pipeline.errors import ModelError
    from pipeline.train import champion_samples, train

    path = _config(tmp_path, f"tracking: {{export_dir: {tmp_path / 'models'}, registered_model: several}}")
    cfg = load_config(path, ["model.refit_axes=[themes]"])
    first = train(cfg, str(path), tracking_uri=tracking_uri, say=lambda _: None)
    client = MlflowClient(tracking_uri)
    kept_file = (
        Path(urlparse(client.get_run(first["run_id"]).info.artifact_uri).path) / tracking.HELDOUT_ARTIFACT
    )
    kept = json.loads(kept_file.read_text())
    data = load_prepared(prepare(cfg, say=lambda _: None).path)
    frame, gold = split_frame(data["validation"])
    assert kept["ids"] == [str(i) for i in frame["id"]] and len(kept["labels"]["themes"]) == len(frame)

    def champion_themes() -> list[list[str]]:
        challenger = {a: [[] for _ in range(len(frame))] for a in ("regions", "themes")}
        samples = champion_samples(
            "models:/several/1", tracking_uri, frame, gold, challenger, ["themes/micro_f1"], None
        )
        return [list(row) for sample in samples for row in sample.champion]

    # what the run kept is what the champion is judged by: mark one kept item and find it in the comparison
    marked = next(i for i, row in enumerate(gold["themes"]) if row is not None)
    kept["labels"]["themes"][marked] = ["migration"]
    kept_file.write_text(json.dumps(kept))
    assert ["migration"] in champion_themes()
    kept_file.unlink()
    with pytest.raises(ModelError, match="refit on its validation split and its run kept no labels"):
        champion_themes()
    second = train(cfg, str(path), tracking_uri=tracking_uri, say=lambda _: None)
    assert second["registry"]["promoted"] and second["registry"]["alias"] == "champion"
    assert "refit on its validation split" in second["registry"]["reason"]
