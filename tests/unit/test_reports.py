"""Unit tests of pipeline.reports: markdown reports, summary lines and plots."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from evaluation_cases import GOLD, LABELS, PRED

from pipeline.metrics import evaluation_report
from pipeline.reports import (
    plot_confusion_single,
    plot_cooccurrence,
    plot_per_label_f1,
    plot_pr_curves,
    report_markdown,
    summary_lines,
    top_terms_markdown,
    write_figures,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails when the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def report() -> dict:
    return evaluation_report({"themes": GOLD}, {"themes": PRED}, {"themes": LABELS})


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

    assert lines == [
        "themes: exact-match acc 0.250  micro-F1 0.667  macro-F1 0.556  P 0.750  R 0.600  (4 docs, 3/3 labels)"
    ]


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


def test_plot_per_label_f1_draws_validation_beside_test(report, tmp_path):
    labels = [f"topic{i}" for i in range(30)]
    gold = [[label] for label in labels]
    test = evaluation_report({"topics": gold}, {"topics": gold}, {"topics": labels})
    validation = evaluation_report({"topics": gold}, {"topics": [[]] * 30}, {"topics": labels})

    alone = plot_per_label_f1(test, "topics", tmp_path / "test.png")
    both = plot_per_label_f1(test, "topics", tmp_path / "both.png", validation)

    assert png_size(both)[1] > png_size(alone)[1]  # two bars per label need more room
    assert both.read_bytes() != alone.read_bytes()


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


class ThresholdedTagger:
    """What write_figures reads of a trained tagger: its axes, labels and per-label thresholds."""

    def __init__(self) -> None:
        self.axes = ("themes",)
        self.labels_ = {"themes": LABELS}

    def thresholds(self) -> dict[str, np.ndarray]:
        return {"themes": np.array([0.5, 0.5, 0.85])}


def test_write_figures_draws_three_pngs_per_axis(report, tmp_path):
    scores = {"themes": np.array([[0.9, 0.6, 0.1], [0.8, 0.2, 0.7], [0.3, 0.1, 0.9], [0.2, 0.4, 0.3]])}

    paths = write_figures(tmp_path / "figures", ThresholdedTagger(), report, {"themes": GOLD}, scores)

    assert [p.name for p in paths] == [
        "themes_per_label_f1.png",
        "themes_pr_curves.png",
        "themes_cooccurrence.png",
    ]
    assert all(png_size(p)[0] >= 800 for p in paths)
