"""Unit tests of pipeline.evaluate: hand-computed metrics, report shapes, metric names, markdown, plots."""

from __future__ import annotations

import posixpath
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluate import (
    axis_metrics,
    evaluation_report,
    metric_items,
    plot_confusion_single,
    plot_cooccurrence,
    plot_per_label_f1,
    plot_pr_curves,
    report_markdown,
    summary_lines,
    top_terms_markdown,
)

# Four documents, three labels.
#   doc  gold    pred
#   0    A, B    A
#   1    A       A, C
#   2    C       C
#   3    B       -
# Per label: A tp=2 fp=0 fn=0 -> P 1,   R 1, F1 1,   support 2
#            B tp=0 fp=0 fn=2 -> P 0*,  R 0, F1 0,   support 2   (* zero_division=0)
#            C tp=1 fp=1 fn=0 -> P 1/2, R 1, F1 2/3, support 1
# Micro: tp=3 fp=1 fn=2 -> P 3/4, R 3/5, F1 2*3/(2*3+1+2) = 2/3
# Macro over A, B, C: P (1+0+1/2)/3 = 1/2, R (1+0+1)/3 = 2/3, F1 (1+0+2/3)/3 = 5/9
# Samples F1: doc0 2*1/(2+1) = 2/3, doc1 2/3, doc2 1, doc3 0 -> 7/12; subset accuracy: doc2 only -> 1/4
GOLD = [["A", "B"], ["A"], ["C"], ["B"]]
PRED = [["A"], ["A", "C"], ["C"], []]
LABELS = ["A", "B", "C"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MLFLOW_NAME = re.compile(r"^[/\w.\- ]*$")  # MLflow's rule for metric names (Windows variant, the stricter)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails when the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


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


def test_metric_items_flatten_summary_and_per_label_f1(report):
    items = metric_items(report, "test")

    assert items["test/themes/micro_f1"] == pytest.approx(2 / 3)
    assert items["test/themes/macro_f1"] == pytest.approx(5 / 9)
    assert items["test/themes/subset_accuracy"] == pytest.approx(1 / 4)
    assert items["test/themes/f1/C"] == pytest.approx(2 / 3)
    assert len(items) == 8 + 3
    assert all(type(v) is float for v in items.values())


def test_metric_names_are_sanitised_for_mlflow():
    labels = ["Asia-Pacific", "money-fx", "Latin America", "a&b", "a_b", "x/y", "..", "café"]
    gold = [[label] for label in labels]
    items = metric_items(evaluation_report({"topics": gold}, {"topics": gold}, {"topics": labels}), "val")
    per_label = sorted(name.removeprefix("val/topics/f1/") for name in items if "/f1/" in name)

    assert per_label == sorted(
        ["Asia-Pacific", "money-fx", "Latin America", "a_b", "a_b_2", "x_y", "__", "café"]
    )
    for name in items:
        assert MLFLOW_NAME.match(name), name
        assert posixpath.normpath(name) == name, name


# --------------------------------------------------------------------------- text


def test_report_markdown_has_summary_and_per_label_rows_by_support(report):
    text = report_markdown(report, "Reuters test", extra={"model": "runs:/abc|1/model"})

    assert text.startswith("# Reuters test\n")
    assert "- **model**: runs:/abc\\|1/model" in text
    assert "| axis | micro-F1 | macro-F1 | micro-P | micro-R | docs |" in text
    assert "| themes | 0.667 | 0.556 | 0.750 | 0.600 | 4 |" in text
    assert "3 of 3 labels" in text
    rows = [line for line in text.splitlines() if re.match(r"\| [ABC] \|", line)]
    assert rows == [
        "| A | 2 | 1.000 | 1.000 | 1.000 |",
        "| B | 2 | 0.000 | 0.000 | 0.000 |",
        "| C | 1 | 0.500 | 1.000 | 0.667 |",
    ]


def test_summary_lines_one_per_axis_tolerating_extra_keys(report):
    lines = summary_lines({**report, "model": "models:/news-tagger@champion", "split": "test"})

    assert lines == ["themes: micro-F1 0.667  macro-F1 0.556  P 0.750  R 0.600  (4 docs, 3/3 labels)"]


def test_top_terms_markdown_renders_one_table_per_axis():
    text = top_terms_markdown(
        {
            "regions": {"Europe": [("german", 2.5), ("french", 1.25)], "Africa": [("nigeria", 3.0)]},
            "themes": {"money|fx": [("dollar", 0.5)]},
        }
    )

    assert "## Top terms: regions" in text and "## Top terms: themes" in text
    assert "| label | top positive terms |" in text
    assert "| Europe | german (2.5), french (1.25) |" in text
    assert "| Africa | nigeria (3) |" in text
    assert "| money\\|fx | dollar (0.5) |" in text


# --------------------------------------------------------------------------- plots


def test_plot_per_label_f1_writes_a_wide_png_that_grows_with_labels(report, tmp_path):
    labels = [f"topic{i}" for i in range(30)]
    gold = [[label] for label in labels]
    big = evaluation_report({"topics": gold}, {"topics": gold}, {"topics": labels})

    small_png = plot_per_label_f1(report, "themes", tmp_path / "small.png")
    big_png = plot_per_label_f1(big, "topics", tmp_path / "plots" / "big.png")

    assert small_png == tmp_path / "small.png"
    assert png_size(small_png)[0] >= 800
    assert png_size(big_png)[0] >= 800
    assert png_size(big_png)[1] > 2 * png_size(small_png)[1]
    with pytest.raises(ValueError, match="'regions' is not in the report"):
        plot_per_label_f1(report, "regions", tmp_path / "none.png")


def test_plot_pr_curves_marks_thresholds_and_checks_the_score_shape(tmp_path):
    scores = np.array([[0.9, 0.6, 0.1], [0.8, 0.2, 0.7], [0.3, 0.1, 0.9], [0.2, 0.4, 0.3]])
    # Label A (gold docs 0, 1): threshold 0.5 -> recall 1, precision 1; 0.85 -> recall 1/2, precision 1.
    # Same title and curves, so the two images differ only if the operating points are drawn.
    low, high = {"A": 0.5, "B": 0.5, "C": 0.5}, {"A": 0.85, "B": 0.5, "C": 0.5}

    at_low = plot_pr_curves(GOLD, scores, LABELS, tmp_path / "low.png", thresholds=low)
    at_high = plot_pr_curves(GOLD, scores, LABELS, tmp_path / "high.png", thresholds=high)

    assert png_size(at_low)[0] >= 800
    assert at_low.read_bytes() != at_high.read_bytes()
    with pytest.raises(ValueError, match=r"shape \(4, 2\), expected \(4, 3\)"):
        plot_pr_curves(GOLD, scores[:, :2], LABELS, tmp_path / "bad.png")


def test_plot_cooccurrence_shows_the_most_frequent_labels(tmp_path):
    # A and B have two gold documents each, C one: with room for two labels both plots show A and B,
    # whatever the order of the label list, so the images are identical.
    path = plot_cooccurrence(GOLD, LABELS, tmp_path / "co.png", max_labels=2)
    reordered = plot_cooccurrence(GOLD, ["C", "A", "B"], tmp_path / "co_reordered.png", max_labels=2)

    assert png_size(path)[0] >= 800
    assert path.read_bytes() == reordered.read_bytes()


def test_plot_confusion_single_writes_a_wide_png(tmp_path):
    gold = [["business"], ["sport"], ["tech"], ["sport"]]
    pred = [["business"], ["tech"], [], ["sport"]]

    path = plot_confusion_single(gold, pred, ["business", "sport", "tech"], tmp_path / "cm.png")

    assert png_size(path)[0] >= 800
    with pytest.raises(ValueError, match="gold has 4 documents but pred has 3"):
        plot_confusion_single(gold, pred[:3], ["business", "sport", "tech"], tmp_path / "bad.png")


def test_importing_the_module_does_not_import_matplotlib_or_sklearn():
    code = "import sys, pipeline.evaluate; print(sorted({'matplotlib', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_gold_labels_the_model_cannot_predict_count_in_macro() -> None:
    from pipeline.evaluate import scored_labels

    gold = {"topics": [["a"], ["b"], ["rare"]]}
    labels = scored_labels({"topics": ["a", "b"]}, gold)
    assert labels == {"topics": ["a", "b", "rare"]}
    report = evaluation_report(gold, {"topics": [["a"], ["b"], []]}, labels)
    assert report["axes"]["topics"]["macro_f1"] == pytest.approx(2 / 3)  # rare scores 0 instead of vanishing
