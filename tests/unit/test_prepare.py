"""The data stage on small files we write: mapping, splits, reports, reuse, rejects named by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.prepare import load_prepared, prepare, stratified_split

PLACES = ["Paris", "Lagos", "Lima", "Tokyo"]


def _write_corpus(folder: Path, n: int = 60) -> Path:
    path = folder / "articles.jsonl"
    lines = []
    for i in range(n):
        place = PLACES[i % 4]
        row = {
            "id": f"a{i}",
            "title": f"Story {i}",
            "text": f"Markets in {place} moved on day {i}.",
            "desk": [place],
        }
        lines.append(json.dumps(row))
    lines.insert(10, "{this is not json")
    lines.insert(20, json.dumps({"id": "no-text", "title": "empty", "desk": ["Paris"]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"""
name: mine
corpus: {{format: jsonl, path: {data}, label_fields: {{desk: desk}}}}
split: {{test_fraction: 0.25, validation_fraction: 0.2, seed: 7}}
axes: {{desk: {{source: desk, min_support: 2}}}}
processed_dir: {tmp_path / "processed"}
"""
    )
    return path


def test_jsonl_with_a_broken_line_and_a_row_without_text(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, _write_corpus(tmp_path)))
    result = prepare(cfg, say=lambda _: None)
    report = result.report
    rejected = {(i["line"], i["field"]) for i in report["issues"]}
    assert rejected == {(11, None), (21, "text")}  # 1-based line numbers of the two lines inserted above
    assert report["n_rejected"] == 2
    assert sum(report["documents"].values()) == 60  # every good row kept
    # four places x 15 rows: per place round(15 * 0.25) = 4 to test, then round(11 * 0.2) = 2 to validation
    assert report["documents"] == {"train": 36, "validation": 8, "test": 16}
    assert report["labels"] == {"desk": sorted(PLACES)}
    data = load_prepared(result.path)
    ids = {r for split in data.values() for r in split["id"]}
    assert len(ids) == 60 and "no-text" not in ids


def test_second_run_reuses_and_a_changed_file_rebuilds(tmp_path: Path) -> None:
    data = _write_corpus(tmp_path)
    cfg = load_config(_config(tmp_path, data))
    first = prepare(cfg, say=lambda _: None)
    again = prepare(cfg, say=lambda _: None)
    assert not first.reused and again.reused and again.fingerprint == first.fingerprint
    data.write_text(
        data.read_text() + json.dumps({"id": "new", "text": "Lima again", "desk": ["Lima"]}) + "\n"
    )
    third = prepare(cfg, say=lambda _: None)
    assert not third.reused and sum(third.report["documents"].values()) == 61


def test_stratified_split_is_deterministic_and_keeps_label_shares() -> None:
    rows = [{"id": str(i), "a": ["x"] if i % 4 else ["y"]} for i in range(400)]
    kept, carved = stratified_split(rows, 0.25, seed=1, axis="a")
    assert len(kept) == 300
    again = stratified_split(rows, 0.25, seed=1, axis="a")[1]
    assert [r["id"] for r in carved] == [r["id"] for r in again]
    assert len(carved) == 100 and sum(r["a"] == ["y"] for r in carved) == 25
    other = stratified_split(rows, 0.25, seed=2, axis="a")[1]
    assert [r["id"] for r in other] != [r["id"] for r in carved]


@pytest.mark.parametrize(
    ("config", "train_val", "test", "n_labels"),
    [
        ("reuters.yaml", 9603, 3299, {"regions": 6, "themes": 8}),
        ("reuters-r90.yaml", 7770, 3019, {"topics": 90}),
    ],
)
def test_reuters_counts(
    reuters_dir, tmp_path: Path, config: str, train_val: int, test: int, n_labels
) -> None:
    cfg = load_config(Path("configs") / config, [f"processed_dir={tmp_path}", f"corpus.path={reuters_dir}"])
    report = prepare(cfg, say=lambda _: None).report
    assert report["n_read"] == 21578
    docs = report["documents"]
    assert docs["train"] + docs["validation"] == train_val and docs["test"] == test
    assert {a: len(v) for a, v in report["labels"].items()} == n_labels


def test_bbc_counts(bbc_dir, tmp_path: Path) -> None:
    cfg = load_config("configs/bbc.yaml", [f"processed_dir={tmp_path}", f"corpus.path={bbc_dir}"])
    report = prepare(cfg, say=lambda _: None).report
    assert report["n_read"] == 2225 and sum(report["documents"].values()) == 2225
    assert report["labels"] == {"themes": ["business", "entertainment", "politics", "sport", "tech"]}
    assert report["n_rejected"] == 0 and report["n_notes"] == 1  # sport/199 read as latin-1, kept
