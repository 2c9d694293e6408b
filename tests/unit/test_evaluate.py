"""Unit tests of the evaluation stage (pipeline.evaluate) with a stand-in tagger, and of the light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import evaluate
from pipeline.corpora import CorpusError


class StubTagger:
    """Scores "Europe" 0.9 when the text names Paris, else 0.1; every other label 0.2 (threshold 0.5)."""

    def __init__(self) -> None:
        self.axes = ("regions", "themes")
        self.labels_ = {"regions": ["Europe", "Africa"], "themes": ["energy"]}

    def predict_scores(self, frame: Any) -> dict[str, np.ndarray]:
        paris = np.array(["Paris" in text for text in frame["text"]])
        return {
            "regions": np.column_stack([np.where(paris, 0.9, 0.1), np.full(len(paris), 0.2)]),
            "themes": np.full((len(paris), 1), 0.2),
        }

    def labels_from_scores(self, scores: dict[str, np.ndarray]) -> dict[str, list[list[str]]]:
        return {
            axis: [[label for label, s in zip(self.labels_[axis], row, strict=True) if s >= 0.5] for row in m]
            for axis, m in scores.items()
        }


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Replaces the model loader; records the (model URI, tracking URI) it was asked for."""
    asked: list[tuple[str, str | None]] = []

    def load(uri: str, tracking_uri: str | None = None) -> tuple[StubTagger, None]:
        asked.append((uri, tracking_uri))
        return StubTagger(), None

    monkeypatch.setattr(evaluate, "load_tagger", load)
    return asked


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_evaluate_command_scores_a_labelled_file(stub, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "gold.jsonl",
        [
            {"id": "1", "title": "Rates", "text": "Paris bankers met.", "regions": ["Europe"]},
            {"id": "2", "title": "Ports", "text": "Lagos traders met.", "regions": ["Asia"]},
            "{not json",
        ],
    )

    report = evaluate.evaluate_command("models:/news-tagger@champion", input_path=str(path), tracking_uri="x")

    assert stub == [("models:/news-tagger@champion", "x")]
    assert (report["n_docs"], list(report["axes"])) == (2, ["regions"])  # no themes column in the file
    regions = report["axes"]["regions"]
    assert list(regions["per_label"]) == ["Europe", "Africa", "Asia"]  # a gold label the model cannot predict
    assert regions["micro_precision"] == 1.0 and regions["micro_recall"] == pytest.approx(1 / 2)
    assert (report["model"], report["input"]) == ("models:/news-tagger@champion", str(path))
    assert len(report["rejected"]) == 1


def test_evaluate_command_refuses_a_file_without_gold_labels(stub, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "plain.jsonl", [{"id": "1", "title": "t", "text": "Paris"}])

    with pytest.raises(CorpusError, match="no gold label column; expected one of regions, themes"):
        evaluate.evaluate_command("m", input_path=str(path))


@pytest.mark.parametrize("module", ["pipeline.metrics", "pipeline.reports", "pipeline.evaluate"])
def test_importing_the_module_does_not_import_matplotlib_or_sklearn(module: str):
    code = f"import sys, {module}; print(sorted({{'matplotlib', 'sklearn'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
