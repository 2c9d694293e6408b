"""bench.ceiling: which portal items it reads into which part, the oracle biases, and the report without the
optional sentence encoder, on hand-made items."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import bench.ceiling as ceiling
from bench.label_noise import ORDER


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    with gzip.open(folder / name, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def _item(uid: str, date: str, category: str, text: str, title: str = "") -> dict:
    return {"id": uid, "date": date, "title": title, "text": text, "category": category}


def test_read_items_keeps_the_world_configs_date_split(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "wcep-2010-2020.jsonl.gz",
        [
            _item("w1", "2015-12-31", ORDER[0], "before date_from"),
            _item("w2", "2016-01-01", ORDER[0], "first day kept"),
            _item("w3", "2018-12-31", ORDER[1], "last training day"),
            _item("w4", "2019-06-01", ORDER[2], "validation year"),
            _item("w5", "2020-01-01", ORDER[3], "the portal's own test year"),
        ],
    )
    _write(
        tmp_path,
        "wcep-2025.jsonl.gz",
        [
            _item("wcep25-a", "2025-07-31", ORDER[4], "training"),
            _item("wcep25-b", "2025-08-01", ORDER[5], "validation"),
            _item("wcep25-c", "2025-10-01", ORDER[6], "test quarter"),
        ],
    )
    parts = {r["id"]: r["part"] for r in ceiling.read_items(tmp_path)}
    assert parts == {
        "w2": "train",
        "w3": "train",
        "w4": "validation",
        "wcep25-a": "train",
        "wcep25-b": "validation",
        "wcep25-c": "test",
    }


def test_oracle_biases_find_the_smallest_shift_that_fixes_a_class() -> None:
    y = np.array([0, 1, 1, 2, 1])
    scores = np.array(
        [
            [1.0, 0.0, -1.0],
            [0.5, 0.2, -1.0],  # class 1 needs more than +0.3
            [0.0, 0.1, -1.0],
            [-1.0, -1.0, 0.5],
            [0.4, 0.0, -1.0],  # and more than +0.4 here
        ]
    )
    assert float((scores.argmax(1) == y).mean()) == pytest.approx(0.6)
    bias = ceiling.oracle_biases(scores, y)
    assert float(((scores + bias).argmax(1) == y).mean()) == 1.0
    assert bias[1] - bias[0] == pytest.approx(0.45)  # the first grid step past 0.4, no further
    assert bias[2] == 0.0


def test_the_report_without_the_encoder_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = {
        ORDER[0]: "troops shelling rebels",
        ORDER[3]: "flood storm quake",
        ORDER[9]: "football league final",
    }
    rows = []
    for n in range(40):
        for category, text in words.items():
            recent = n % 2 == 0
            k = (n // 2) % 3  # training, validation, test (the portal's 2020 is never read)
            date = f"2025-{[3, 8, 11][k]:02d}-10" if recent else f"{[2017, 2019, 2018][k]}-05-05"
            uid = f"wcep25-{n}-{category[:3]}" if recent else f"w{n}-{category[:3]}"
            rows.append({**_item(uid, date, category, f"{text} item {n}"), "part": ""})
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder, "wcep-2010-2020.jsonl.gz", [r for r in rows if not r["id"].startswith("wcep25")])
    _write(folder, "wcep-2025.jsonl.gz", [r for r in rows if r["id"].startswith("wcep25")])
    monkeypatch.setattr(ceiling, "embedder", lambda: (None, "not measured: no encoder here"))
    assert ceiling.main(["--data", str(folder), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| TF-IDF (1,2) LinearSVC | 1.0000 / 1.0000 | 1.0000 / 1.0000 | 1.0000 | 1.0000 |" in report
    assert "`python -m bench.ceiling` (60 training items" in report
    assert "TF-IDF + oracle biases" in report
    assert "embeddings (weight" not in report
    assert "Sentence embeddings: not measured: no encoder here." in report
