"""Single-label axes (``multi_label: false``): one label per document always (argmax), scores summing to 1,
no thresholds, accuracy and macro-F1 reported and used for promotion; on BBC News, at least the accuracy of a
plain TF-IDF + LinearSVC trained on the same documents."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from synthetic import THEMES, synthetic_rows

from pipeline.config import AxisConfig, load_config
from pipeline.evaluate import evaluate_split
from pipeline.features import Featurizer
from pipeline.metrics import (
    axis_metric_names,
    default_promotion_metrics,
    evaluation_report,
    metric_items,
)
from pipeline.model import NewsTagger, tagger_from_config
from pipeline.prepare import load_prepared, prepare, split_frame
from pipeline.promotion import METRICS, Rule, Sample, compare
from pipeline.reports import summary_lines
from pipeline.scoring import sigmoid

ROOT = Path(__file__).resolve().parents[2]
# documents a multi-label model leaves without a theme or gives two: a single-label one gives each one
HARD = [
    "",
    "   ",
    "officials said the committee would meet again next week",
    "In Paris, oil output and the wheat harvest rose as crude prices fell and coffee growers worried.",
    "Refinery workers and cattle herds: gas pipeline talks and maize crop reports, Tokyo said.",
]


THREE_THEMES = {
    **THEMES,
    "elections": ["election results", "polling stations", "ballot count", "runoff vote"],
}


def synthetic_corpus(n: int, seed: int) -> tuple[list[str], dict[str, list[list[str]]]]:
    """The synthetic corpus with three themes (with two, the binary heads mirror each other)."""
    rows, labels = synthetic_rows(n, seed, themes=THREE_THEMES)
    return [row["text"] for row in rows], labels


@pytest.fixture(scope="module")
def fitted() -> tuple[NewsTagger, NewsTagger]:
    """(multi-label tagger, the same with ``themes`` single-label), fitted on the synthetic corpus."""
    (xt, yt), (xv, yv) = synthetic_corpus(240, 1), synthetic_corpus(80, 2)
    make = lambda multi: NewsTagger(  # noqa: E731
        Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1, multi_label=multi
    )
    return make(True).fit(xt, yt, xv, yv), make({"themes": False}).fit(xt, yt, xv, yv)


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return list(synthetic_corpus(60, 3)[0]) + HARD


def test_a_single_label_axis_gives_exactly_one_label_always(fitted, docs) -> None:
    multi, single = fitted
    labels = single.predict_labels(docs)
    assert all(len(row) == 1 for row in labels["themes"])
    # the multi-label heads leave some of the hard documents with none or two themes: the old behaviour
    assert any(len(row) != 1 for row in multi.predict_labels(docs)["themes"])
    # the regions axis stays multi-label: the empty documents get no region
    assert labels["regions"][len(docs) - len(HARD)] == []
    assert single.predict(docs)["themes"].sum(axis=1).tolist() == [1] * len(docs)


def test_the_label_is_the_argmax_of_the_platt_probabilities(fitted, docs) -> None:
    _, single = fitted
    s = single._slices()["themes"]
    raw = single._raw(single.transform_docs(docs))[:, s]
    platt = sigmoid(raw * single.platt_[s, 0] + single.platt_[s, 1])
    names = single.labels_["themes"]
    assert [row[0] for row in single.predict_labels(docs)["themes"]] == [
        names[j] for j in platt.argmax(axis=1)
    ]


def test_scores_sum_to_one_and_keep_the_platt_order(fitted, docs) -> None:
    multi, single = fitted
    scores = single.predict_scores(docs)
    assert np.allclose(scores["themes"].sum(axis=1), 1.0)
    assert not np.allclose(scores["regions"].sum(axis=1), 1.0)  # the multi-label axis is untouched
    platt = multi.predict_scores(docs)["themes"]  # the same heads and sigmoids, not normalised
    assert np.allclose(scores["themes"], platt / platt.sum(axis=1, keepdims=True))


def test_no_thresholds_are_tuned_or_applied_on_a_single_label_axis(fitted, docs) -> None:
    multi, single = fitted
    s = single._slices()["themes"]
    assert set(single.threshold_source_[s]) == {"argmax"}
    assert set(multi.threshold_source_[s]) == {"tuned"}
    assert single.predict_labels(docs, {"themes": 0.999}) == single.predict_labels(docs)
    assert (
        single.predict_labels(docs, {"regions": 0.999})["regions"] != single.predict_labels(docs)["regions"]
    )


def test_the_config_setting_reaches_the_tagger(tmp_path: Path) -> None:
    assert AxisConfig().multi_label is True
    cfg = load_config("configs/bbc.yaml", ["axes.themes.multi_label=false", f"processed_dir={tmp_path}"])
    tagger = tagger_from_config(cfg)
    assert tagger.multi_label == {"themes": False}


def test_metric_and_promotion_names_of_a_single_label_axis(fitted, docs) -> None:
    assert default_promotion_metrics(multi_label=False) == ("accuracy", "macro_f1")
    assert default_promotion_metrics(multi_label=True) == ("micro_f1",)
    assert "accuracy" in axis_metric_names(multi_label=False)
    assert "accuracy" not in axis_metric_names(multi_label=True)
    assert set(axis_metric_names(False)) <= set(METRICS)
    gold = {"themes": [["energy"], ["energy"], ["agriculture"], ["agriculture"]]}
    pred = {"themes": [["energy"], ["agriculture"], ["agriculture"], ["agriculture"]]}
    report = evaluation_report(gold, pred, {"themes": ["agriculture", "energy"]}, single_label=["themes"])
    m = report["axes"]["themes"]
    assert m["accuracy"] == pytest.approx(0.75) == pytest.approx(m["micro_f1"])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    items = metric_items(report, "validation")
    assert items["validation/themes/accuracy"] == pytest.approx(0.75)
    assert (
        "accuracy"
        not in evaluation_report(gold, pred, {"themes": ["agriculture", "energy"]})["axes"]["themes"]
    )
    assert "accuracy" in summary_lines(report)[0]
    # promotion compares accuracy from the same documents
    sample = Sample("themes", None, gold["themes"], pred["themes"], gold["themes"])
    c = compare(sample, "themes/accuracy", Rule(("themes/accuracy",), resamples=200))
    assert (c.challenger, c.champion) == (pytest.approx(0.75), pytest.approx(1.0))


def test_evaluation_of_a_tagger_reports_accuracy_on_its_single_label_axis(fitted) -> None:
    multi, single = fitted
    texts, gold = synthetic_corpus(80, 3)
    report, _ = evaluate_split(single, {"text": texts}, gold)
    assert "accuracy" in report["axes"]["themes"] and "accuracy" not in report["axes"]["regions"]
    assert report["axes"]["themes"]["accuracy"] == pytest.approx(report["axes"]["themes"]["micro_f1"])
    assert "accuracy" not in evaluate_split(multi, {"text": texts}, gold)[0]["axes"]["themes"]


# --------------------------------------------------------------------------- BBC News, against a baseline

HEADERLESS = True  # header: false + columns (pipeline/corpora/files.py)


def _bbc_csv(bbc_dir: Path, path: Path) -> int:
    """BBC News as one CSV (label, title, text; no header line when HEADERLESS); the number of rows."""
    rows = []
    for folder in sorted(p for p in bbc_dir.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # sport/199.txt has one latin-1 byte (PROVENANCE.md)
                text = raw.decode("latin-1")
            title, _, body = text.strip().partition("\n")
            rows.append([folder.name, title.strip(), body.strip()])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if not HEADERLESS:
            writer.writerow(["label", "title", "text"])
        writer.writerows(rows)
    return len(rows)


def _bbc_config(csv_path: Path, folder: Path) -> Path:
    """A config of the CSV: bbc.yaml's split, features and model, the themes axis single-label."""
    base = yaml.safe_load((ROOT / "configs" / "bbc.yaml").read_text())
    corpus = {"format": "csv", "path": str(csv_path), "id_field": "id", "title_field": "title"}
    if HEADERLESS:
        corpus.update(header=False, columns=["label", "title", "text"])
    cfg = {
        "name": "bbc-csv",
        "corpus": {**corpus, "label_fields": {"label": "label"}, "split_scheme": "none"},
        "split": base["split"],
        "axes": {"themes": {"source": "label", "multi_label": False}},
        "features": base["features"],
        "model": base["model"],
        "processed_dir": str(folder / "processed"),
    }
    path = folder / "bbc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_bbc_single_label_matches_tfidf_linearsvc(bbc_dir: Path, tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    assert _bbc_csv(bbc_dir, tmp_path / "bbc.csv") == 2225
    cfg = load_config(_bbc_config(tmp_path / "bbc.csv", tmp_path))
    prepared = prepare(cfg, say=lambda _: None)
    data = load_prepared(prepared.path)
    (xt, yt), (xv, yv), (xs, ys) = (split_frame(data[s]) for s in ("train", "validation", "test"))
    assert prepared.report["n_rejected"] == 0 and len(xt) + len(xv) + len(xs) == 2225

    tagger = tagger_from_config(cfg).fit(xt, yt, xv, yv)
    report, scores = evaluate_split(tagger, xs, ys)
    pred = tagger.predict_labels(xs)["themes"]
    assert all(len(row) == 1 for row in pred)
    assert np.allclose(scores["themes"].sum(axis=1), 1.0)
    newstag = report["axes"]["themes"]["accuracy"]
    assert newstag == pytest.approx(report["axes"]["themes"]["micro_f1"])

    # the ten-line baseline, trained on the documents the tagger's heads learn from (the train split)
    text = lambda frame: [f"{t}\n{x}" for t, x in zip(frame["title"], frame["text"], strict=True)]  # noqa: E731
    gold = lambda labels: [row[0] for row in labels["themes"]]  # noqa: E731
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    svm = LinearSVC().fit(vectorizer.fit_transform(text(xt)), gold(yt))
    baseline = float(np.mean(svm.predict(vectorizer.transform(text(xs))) == np.asarray(gold(ys))))
    print(
        f"BBC test split ({len(xs)} docs): newstag single-label accuracy {newstag:.4f}, "
        f"TF-IDF + LinearSVC {baseline:.4f}; macro-F1 {report['axes']['themes']['macro_f1']:.4f}"
    )
    assert newstag >= baseline


def test_the_train_summary_shows_accuracy_for_a_single_label_axis() -> None:
    from pipeline.train import summary_lines

    m = {"micro_f1": 0.9, "macro_f1": 0.8, "micro_precision": 0.9, "micro_recall": 0.9}
    result = {
        "reports": {
            s: {"axes": {"themes": {**m, "accuracy": 0.9}, "regions": m}} for s in ("validation", "test")
        },
        "train_seconds": 1.0,
    }
    lines = summary_lines(result)
    assert any("themes" in line and "accuracy 0.9000" in line for line in lines)
    assert not any("regions" in line and "accuracy" in line for line in lines)
