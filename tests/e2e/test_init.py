"""``newstag init`` as a new user runs it: a header-less 4-class CSV (AG News' layout: class index, title,
description) -> init -> train the written config untouched -> predict and evaluate."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import QUIET_ENV
from pipeline.config import load_config
from pipeline.init import has_header, init_command, inspect_corpus

NEWSTAG = str(Path(sys.executable).with_name("newstag"))

# Four classes, each with its own words, sharing filler and a few cross-class words, so a word model must
# learn them (not one keyword per class): a story also borrows words of another class now and then.
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
WORDS = {
    1: "ceasefire troops embassy minister parliament refugees election diplomats border rebels summit treaty",
    2: "coach striker season league playoff goalkeeper tournament champions stadium referee medal coach",
    3: "shares profit merger investors quarterly earnings retailer bank dividend stocks revenue analysts",
    4: "software chip researchers satellite browser genome internet processor scientists spacecraft laptop",
}
SHARED = [
    "report",
    "said",
    "week",
    "new",
    "plans",
    "officials",
    "year",
    "group",
    "after",
    "over",
    "more",
    "could",
    "first",
    "talks",
    "deal",
    "game",
]
FILLER = [
    "the",
    "a",
    "of",
    "in",
    "on",
    "to",
    "and",
    "for",
    "with",
    "as",
    "by",
    "at",
    "from",
    "that",
    "its",
    "was",
    "is",
    "has",
]


def ag_rows(n: int, seed: int) -> list[tuple[int, str, str]]:
    """``n`` rows (class index 1-4, title, description), classes in turn, words drawn with noise."""
    rng = random.Random(seed)
    vocab = {k: v.split() for k, v in WORDS.items()}
    rows = []
    for i in range(n):
        k = i % 4 + 1
        other = rng.choice([j for j in vocab if j != k])

        def words(m: int, k: int = k, other: int = other) -> list[str]:
            out = []
            for _ in range(m):
                roll = rng.random()
                pool = (
                    vocab[k]
                    if roll < 0.22
                    else vocab[other]
                    if roll < 0.32
                    else SHARED
                    if roll < 0.6
                    else FILLER
                )
                out.append(rng.choice(pool))
            return out

        title = " ".join(words(6)).capitalize()
        text = " ".join(words(rng.randint(22, 40))).capitalize() + "."
        rows.append((k, title, text))
    return rows


def write_csv(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows((str(k), t, d) for k, t, d in rows)
    return path


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([NEWSTAG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


# --------------------------------------------------------------------------- guessing (fast)


def test_header_is_told_from_data() -> None:
    rows = [[str(k), t, d] for k, t, d in ag_rows(40, 1)]
    assert not has_header(rows)
    assert has_header([["Class Index", "Title", "Description"], *rows])
    labelled = [["sports", "Oil prices rise", "A long description of the day " * 3]] + [
        [["sports", "world"][i % 2], f"Title {i}", "Another long description of a day " * 2]
        for i in range(20)
    ]
    assert not has_header(labelled)  # "sports" recurs below: a label, not a column name


def test_init_guesses_a_headerless_class_index_csv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "news.csv", ag_rows(300, 0))
    guess = inspect_corpus(data)
    assert guess.format == "csv" and guess.header is False
    assert guess.roles == {"label": "label", "title": "title", "text": "text"}
    assert guess.columns == ["label", "title", "text"]
    assert guess.class_indices and guess.label_values == ["1", "2", "3", "4"]
    assert not guess.multi_label
    assert guess.label_map == {str(i): f"class-{i}" for i in range(1, 5)}
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    assert inspect_corpus(data).label_map == {str(i + 1): name for i, name in enumerate(CLASSES)}


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "news.csv", ag_rows(200, 0))
    result = init_command(str(data))
    path = tmp_path / "configs" / "news.yaml"
    assert result["config"] == str(Path("configs") / "news.yaml") and path.is_file()
    cfg = load_config(path)
    assert cfg.corpus is not None and cfg.corpus.path == "news.csv"
    assert "#" in path.read_text()  # commented
    table = "\n".join(result["table"])
    assert "label" in table and "text" in table
    assert all(len(line) < 120 for line in result["table"])  # examples cut to 60 characters
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="--force"):
        init_command(str(data))
    init_command(str(data), force=True)


def test_init_reads_jsonl_with_named_fields(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [
        {"guid": f"a{i}", "headline": t, "body": d, "section": CLASSES[k - 1], "published": "2024-01-02"}
        for i, (k, t, d) in enumerate(ag_rows(120, 3))
    ]
    (tmp_path / "cms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    guess = inspect_corpus(tmp_path / "cms.jsonl")
    assert guess.roles == {
        "label": "section",
        "text": "body",
        "title": "headline",
        "id": "guid",
        "date": "published",
    }
    assert not guess.class_indices and not guess.multi_label
    tags = [
        dict(r, section=f"{r['section']}|Extra" if i % 3 == 0 else r["section"]) for i, r in enumerate(rows)
    ]
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tags))
    multi = inspect_corpus(tmp_path / "tags.jsonl")
    assert multi.multi_label and multi.label_delimiter == "|"
    init_command(str(tmp_path / "tags.jsonl"))
    cfg = load_config(tmp_path / "configs" / "tags.yaml")
    assert cfg.corpus is not None and cfg.corpus.label_fields == {"label": "section"}


# --------------------------------------------------------------------------- init -> train -> predict


@pytest.mark.slow
def test_init_then_train_untouched_gives_one_label_per_row(tmp_path: Path, tracking_uri: str) -> None:
    env = {**os.environ, **QUIET_ENV, "MLFLOW_TRACKING_URI": tracking_uri}
    write_csv(tmp_path / "news.csv", ag_rows(480, 0))
    init = run("init", "news.csv", "--out", "configs/news.yaml", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert "no header" in init.stdout and "newstag train --config configs/news.yaml" in init.stdout
    config = tmp_path / "configs" / "news.yaml"
    assert yaml.safe_load(config.read_text())["axes"]["themes"]["multi_label"] is False

    train = run("train", "--config", "configs/news.yaml", cwd=tmp_path, env=env)
    assert train.returncode == 0, train.stderr + train.stdout

    model = tmp_path / "models" / "news-tagger-news" / "champion"
    assert model.exists(), train.stdout
    unlabelled = tmp_path / "new.jsonl"
    docs = ag_rows(80, 7)
    unlabelled.write_text(
        "".join(json.dumps({"id": str(i), "title": t, "text": d}) + "\n" for i, (_, t, d) in enumerate(docs))
    )
    predict = run("predict", "-m", str(model), "-i", "new.jsonl", "-o", "out.jsonl", cwd=tmp_path, env=env)
    assert predict.returncode == 0, predict.stderr
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(out) == len(docs)
    assert all(len(row["themes"]) == 1 for row in out)  # exactly one label per row
    right = sum(row["themes"] == [f"class-{k}"] for row, (k, _, _) in zip(out, docs, strict=True))
    assert right / len(docs) > 0.7  # separable, not trivially

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": str(i), "title": t, "text": d, "themes": [f"class-{k}"]}) + "\n"
            for i, (k, t, d) in enumerate(docs)
        )
    )
    evaluate = run("evaluate", "-m", str(model), "--input", "gold.jsonl", cwd=tmp_path, env=env)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "accuracy" in (train.stdout + evaluate.stdout).lower()  # reported without --json


def test_init_pairs_a_train_file_with_its_test_file_and_reads_label_folders(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ag").mkdir()
    write_csv(tmp_path / "ag" / "train.csv", ag_rows(120, 0))
    write_csv(tmp_path / "ag" / "test.csv", ag_rows(40, 1))
    init_command("ag/train.csv", out="configs/ag.yaml")
    cfg = load_config("configs/ag.yaml")
    assert cfg.corpus is not None and cfg.corpus.files == {"train": "ag/train.csv", "test": "ag/test.csv"}
    assert cfg.name == "ag" and cfg.corpus.header is False
    for i, (k, title, text) in enumerate(ag_rows(24, 2)):
        folder = tmp_path / "desk" / CLASSES[k - 1].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.txt").write_text(f"{title}\n\n{text}\n")
    guess = inspect_corpus(tmp_path / "desk")
    assert guess.format == "folders" and not guess.multi_label
    assert guess.label_values == ["Business", "Sci-Tech", "Sports", "World"]
    init_command("desk")
    folders = load_config("configs/desk.yaml")
    assert folders.corpus is not None and folders.corpus.format == "folders"
    assert folders.axes["themes"].multi_label is False
