"""Unit tests of pipeline.metrics: hand-computed metrics, report shapes, metric names, label sets scored."""

from __future__ import annotations

import posixpath
import re

import numpy as np
import pytest
from evaluation_cases import GOLD, LABELS, PRED

from pipeline.metrics import (
    LABEL_COLUMNS,
    SUMMARY_METRICS,
    axis_metrics,
    covered_report,
    evaluation_report,
    interval_report,
    label_rows,
    metric_items,
    micro_f1_interval,
    scored_labels,
)

MLFLOW_NAME = re.compile(r"^[/\w.\- ]*$")  # MLflow's rule for metric names (Windows variant, the stricter)


@pytest.fixture
def report() -> dict:
    return evaluation_report({"themes": GOLD}, {"themes": PRED}, {"themes": LABELS})


# --------------------------------------------------------------------------- axis_metrics


def test_axis_metrics_match_hand_computed_values():
    m = axis_metrics(GOLD, PRED, LABELS)

    assert m["n_docs"] == 4
    assert m["micro_precision"] == pytest.approx(3 / 4)
    assert m["micro_recall"] == pytest.approx(3 / 5)
    assert m["micro_f1"] == pytest.approx(2 / 3)
    assert m["macro_precision"] == pytest.approx(1 / 2)
    assert m["macro_recall"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["samples_f1"] == pytest.approx(7 / 12)
    assert m["subset_accuracy"] == pytest.approx(1 / 4)
    assert (m["n_labels"], m["macro_labels"], m["ignored_labels"]) == (3, 3, 0)


def test_per_label_values_and_plain_python_types():
    per_label = axis_metrics(GOLD, PRED, LABELS)["per_label"]

    assert list(per_label) == LABELS
    assert per_label["A"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert per_label["B"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert per_label["C"]["precision"] == pytest.approx(0.5)
    assert per_label["C"]["f1"] == pytest.approx(2 / 3)
    assert type(per_label["C"]["support"]) is int
    assert type(per_label["C"]["f1"]) is float


def test_macro_covers_only_labels_with_gold_documents():
    # D has no gold document but is predicted once (doc 3): micro precision pays (tp=3, fp=2 -> 3/5),
    # macro stays the mean over A, B, C (sklearn's all-label default would give (1+0+2/3+0)/4 = 5/12).
    pred = [["A"], ["A", "C"], ["C"], ["D"]]
    m = axis_metrics(GOLD, pred, [*LABELS, "D"])

    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["micro_precision"] == pytest.approx(3 / 5)
    assert (m["n_labels"], m["macro_labels"]) == (4, 3)
    assert m["per_label"]["D"]["support"] == 0


def test_labels_outside_the_axis_are_ignored_and_counted():
    gold = [["A", "B", "X"], ["A"], ["C"], ["B"]]
    pred = [["A", "Y"], ["A", "C"], ["C", "Z"], []]
    m = axis_metrics(gold, pred, LABELS)

    assert m["ignored_labels"] == 3
    assert m["micro_f1"] == pytest.approx(2 / 3)
    assert "X" not in m["per_label"]


def test_document_without_gold_or_predicted_labels_is_a_perfect_sample():
    # doc0 gold {A} pred {A} -> 1; doc1 gold {} pred {} -> 1 (nothing to find, nothing claimed);
    # doc2 gold {} pred {B} -> 0. Mean 2/3; subset accuracy 2/3 as well.
    m = axis_metrics([["A"], [], None], [["A"], [], ["B"]], ["A", "B"])

    assert m["samples_f1"] == pytest.approx(2 / 3)
    assert m["subset_accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("gold", "pred", "labels", "message"),
    [
        (GOLD, PRED[:3], LABELS, "gold has 4 documents but pred has 3"),
        ([], [], LABELS, "no documents"),
        (["A", "B"], [["A"], ["B"]], LABELS, "is a string"),
        (GOLD, PRED, ["A", "B", "A"], "repeated labels"),
        (GOLD, PRED, [], "empty"),
    ],
)
def test_axis_metrics_refuses_bad_input(gold, pred, labels, message):
    with pytest.raises(ValueError, match=message):
        axis_metrics(gold, pred, labels)


# --------------------------------------------------------------------------- evaluation_report


def test_evaluation_report_has_the_design_shape():
    r = evaluation_report(
        {"regions": [["Europe"], ["Africa"]], "themes": [["a"], ["b"]]},
        {"regions": [["Europe"], []], "themes": [["a"], ["a"]], "extra": [[], []]},
        {"regions": ["Europe", "Africa"], "themes": ["a", "b"]},
    )

    assert set(r) == {"n_docs", "axes"}
    assert r["n_docs"] == 2
    assert list(r["axes"]) == ["regions", "themes"]
    assert r["axes"]["regions"]["micro_recall"] == pytest.approx(1 / 2)
    assert r["axes"]["themes"]["per_label"]["a"]["precision"] == pytest.approx(1 / 2)


def test_evaluation_report_names_axis_and_lengths_on_mismatch():
    with pytest.raises(ValueError, match=r"'themes'.*4.*3"):
        evaluation_report({"themes": GOLD}, {"themes": PRED[:3]}, {"themes": LABELS})


def test_evaluation_report_refuses_uneven_axes_and_missing_predictions():
    with pytest.raises(ValueError, match=r"'regions' has 1 gold documents, axis 'themes' has 4"):
        evaluation_report(
            {"themes": GOLD, "regions": [["Europe"]]},
            {"themes": PRED, "regions": [["Europe"]]},
            {"themes": LABELS, "regions": ["Europe"]},
        )
    with pytest.raises(ValueError, match=r"'themes' has gold labels but no pred"):
        evaluation_report({"themes": GOLD}, {}, {"themes": LABELS})


# --------------------------------------------------------------------------- metric names


def test_metric_items_are_the_summary_only(report):
    items = metric_items(report, "test")

    assert items["test/themes/micro_f1"] == pytest.approx(2 / 3)
    assert items["test/themes/macro_f1"] == pytest.approx(5 / 9)
    assert items["test/themes/subset_accuracy"] == pytest.approx(1 / 4)
    assert sorted(items) == sorted(f"test/themes/{m}" for m in SUMMARY_METRICS)  # no per-label metric
    assert all(type(v) is float for v in items.values())


def test_per_corpus_metric_items_are_micro_and_macro_f1_and_top1():
    report = covered_report(
        {"themes": [["A"], ["B"], ["A"], ["B"]]},
        {"themes": [["A"], ["A"], ["A"], ["B"]]},
        {"themes": np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])},
        {"themes": ["A", "B"]},
        ["x", "x", "y", "y"],
    )
    items = metric_items(report, "validation")
    assert sorted(k for k in items if k.startswith("validation/x/")) == [
        "validation/x/themes/macro_f1",
        "validation/x/themes/micro_f1",
        "validation/x/themes/top1_accuracy",
        "validation/x/themes/top1_macro_f1",
    ]
    assert items["validation/y/themes/micro_f1"] == pytest.approx(1.0)
    assert items["validation/themes/micro_precision"] == pytest.approx(3 / 4)


def test_metric_names_are_sanitised_for_mlflow():
    gold = [["a"], ["b"]]
    report = covered_report({"x/y": gold}, {"x/y": gold}, None, {"x/y": ["a", "b"]}, ["Latin America", "a&b"])
    items = metric_items(report, "val")
    assert "val/x_y/micro_f1" in items and "val/a_b/x_y/micro_f1" in items
    for name in items:
        assert MLFLOW_NAME.match(name), name
        assert posixpath.normpath(name) == name, name


def test_label_rows_hold_every_label_of_every_corpus_with_its_threshold(report):
    rows = label_rows(report, "test", {"themes": {"A": 0.4, "C": 0.25}})
    assert [r["label"] for r in rows] == LABELS
    assert set(rows[0]) == set(LABEL_COLUMNS)
    c = rows[2]
    assert (c["split"], c["axis"], c["corpus"], c["support"]) == ("test", "themes", "all", 1)
    assert (c["precision"], c["recall"], c["f1"], c["threshold"]) == (0.5, 1.0, pytest.approx(2 / 3), 0.25)
    assert rows[1]["threshold"] is None  # B has no threshold: the model cannot predict it
    several = covered_report(
        {"themes": GOLD}, {"themes": PRED}, None, {"themes": LABELS}, ["p", "p", "q", "q"]
    )
    corpora = [r["corpus"] for r in label_rows(several, "validation")]
    assert corpora == ["all"] * 3 + ["p"] * 3 + ["q"] * 3


# --------------------------------------------------------------------------- confidence intervals


def test_micro_f1_interval_holds_the_point_estimate_and_is_seeded():
    gold = GOLD * 50
    pred = PRED * 50
    found = micro_f1_interval(gold, pred)
    assert found["micro_f1"] == pytest.approx(2 / 3)  # the report's micro-F1
    assert found["low"] < 2 / 3 < found["high"] and found["n_docs"] == 200
    assert found == micro_f1_interval(gold, pred)  # seeded
    wide = micro_f1_interval(GOLD * 5, PRED * 5)
    assert wide["high"] - wide["low"] > found["high"] - found["low"]  # fewer documents, more noise
    perfect = micro_f1_interval(gold, gold)
    assert (perfect["low"], perfect["high"]) == (1.0, 1.0)
    assert micro_f1_interval([None, None], [["A"], []]) is None


def test_interval_report_follows_covered_report():
    gold = {"themes": [["A"], ["B"], None, ["A"], ["A"], ["B"]]}
    pred = {"themes": [["A"], ["A", "B"], ["A"], ["A", "B"], ["A"], ["B"]]}
    corpora = ["p", "p", "p", "q", "q", "q"]
    coverage = {"p": {"themes": ["A", "B"]}, "q": {"themes": ["A"]}}
    got = interval_report(gold, pred, corpora, coverage, resamples=200)
    report = covered_report(gold, pred, None, {"themes": ["A", "B"]}, corpora, coverage)
    assert set(got["themes"]) == {"all", "p", "q"}
    assert got["themes"]["all"]["micro_f1"] == pytest.approx(report["axes"]["themes"]["micro_f1"])
    for corpus in ("p", "q"):
        expected = report["corpora"][corpus]["axes"]["themes"]["micro_f1"]
        assert got["themes"][corpus]["micro_f1"] == pytest.approx(expected)
    assert got["themes"]["p"]["n_docs"] == 2  # the unknown gold is left out


def test_gold_labels_the_model_cannot_predict_count_in_macro() -> None:
    gold = {"topics": [["a"], ["b"], ["rare"]]}
    labels = scored_labels({"topics": ["a", "b"]}, gold)
    assert labels == {"topics": ["a", "b", "rare"]}
    report = evaluation_report(gold, {"topics": [["a"], ["b"], []]}, labels)
    assert report["axes"]["topics"]["macro_f1"] == pytest.approx(2 / 3)  # rare scores 0 instead of vanishing
