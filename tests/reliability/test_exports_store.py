"""Exports and prepared data follow the store (issue 12 "Medium", issue 10 "Paths").

A small generated corpus (four themes told by made-up cue words; a CLI training takes seconds) is trained
with the real ``newstag train`` in a throw-away project folder:

- into the project's store (``./mlflow.db``) and then into another store from the same folder: each store's
  exports stay its own (``./models/...`` and ``elsewhere/models/...``) and each ``champion`` link resolves to
  a folder whose MLmodel names the run its own store records for the champion version. Before the fix the
  second training overwrote ``./models/news-tagger/v1`` and moved ``champion`` onto the other store's model;
- from a folder that is not the project, into a store elsewhere: nothing is created in the current folder
  (before the fix: ``models/`` and ``data/processed/``);
- two stores told to export into one folder: the second export is refused with a message and the first
  store's model and link are left alone.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from reliability_support import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

MODEL = "news-tagger"
THEMES = ("energy", "farming", "trade", "health")
FILLER = [
    "officials",
    "said",
    "on",
    "monday",
    "that",
    "the",
    "plan",
    "would",
    "be",
    "reviewed",
    "again",
    "next",
    "week",
    "by",
    "committee",
]


def write_corpus(path: Path, seed: int) -> Path:
    """Stories of four themes: filler words and two made-up cue words of the theme."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for split, n in (("train", 240), ("validation", 120), ("test", 120)):
            for i in range(n):
                theme = rng.choice(THEMES)
                words = rng.sample(FILLER, 8) + [f"{theme[:3]}{rng.randrange(12)}x" for _ in range(2)]
                rng.shuffle(words)
                row = {"id": f"{split}-{i}", "title": "headline", "text": " ".join(words), "split": split}
                out.write(json.dumps({**row, "theme": [theme]}) + "\n")
    return path


def write_config(path: Path, corpus: Path) -> Path:
    """A config with the default ``processed_dir`` and ``tracking.export_dir`` (both relative)."""
    path.write_text(
        "name: synth\n"
        f"corpus: {{format: jsonl, path: {corpus}, split_scheme: source, split_field: split, "
        "label_fields: {theme: theme}}\n"
        "axes: {themes: {source: theme, min_support: 2}}\n"
        "features: {gazetteer: {enabled: false}}\n"
        "model: {n_jobs: 1}\n"
    )
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a config (its corpus outside it, by absolute path)."""
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    corpus = write_corpus(tmp_path / "corpus.jsonl", seed=1)
    write_config(root / "configs" / "synth.yaml", corpus)
    return root


def train(cwd: Path, config: Path, *extra: str) -> dict:
    proc = run_cli(["train", "--config", str(config), "--json", *extra], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"result": json.loads(proc.stdout), "stderr": proc.stderr}


def exported_run(folder: Path) -> str:
    return yaml.safe_load((folder / "MLmodel").read_text())["run_id"]


def champion_run(db: Path) -> str:
    """The run id the store ``db`` records for the version aliased ``champion``."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{db}"
    return (
        MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(MODEL, "champion").run_id
    )


def test_two_stores_from_one_project_keep_their_own_exports(project: Path, tmp_path: Path) -> None:
    config = project / "configs" / "synth.yaml"
    home = train(project, config)["result"]  # the project's store, ./mlflow.db
    ours = project / "models" / MODEL
    assert home["export_path"] == f"models/{MODEL}/v1"
    first_run = exported_run(ours / "v1")
    assert first_run == home["run_id"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = train(project, config, "--tracking-uri", f"sqlite:///{elsewhere / 'mlflow.db'}")["result"]
    theirs = elsewhere / "models" / MODEL
    assert exported_run(ours / "v1") == first_run, "the other store's training overwrote ./models"
    assert Path(other["export_path"]) == theirs / "v1"
    assert exported_run(theirs / "v1") == other["run_id"] != first_run
    # each champion link resolves to a model its own store knows, under that store's champion alias
    assert exported_run((ours / "champion").resolve()) == champion_run(project / "mlflow.db") == first_run
    assert exported_run((theirs / "champion").resolve()) == champion_run(elsewhere / "mlflow.db")
    # the prepared data followed the store too (it is keyed by the config's fingerprint; either place is safe)
    assert (elsewhere / "data" / "processed" / "synth" / "fingerprint.json").is_file()
    assert (project / "data" / "processed" / "synth" / "fingerprint.json").is_file()
    assert sorted(p.name for p in (project / "models").iterdir()) == [MODEL]


def test_training_from_another_folder_creates_nothing_there(project: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    store = tmp_path / "x"
    store.mkdir()
    result = train(
        cwd, project / "configs" / "synth.yaml", "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}"
    )
    assert sorted(cwd.iterdir()) == [], "training wrote into the current folder"
    assert exported_run(store / "models" / MODEL / "champion") == result["result"]["run_id"]
    assert (store / "data" / "processed" / "synth" / "dataset").is_dir()


def test_a_folder_of_another_store_is_not_exported_into(project: Path, tmp_path: Path) -> None:
    config = project / "configs" / "synth.yaml"
    shared = tmp_path / "shared"
    first = train(project, config, "--set", f"tracking.export_dir={shared}")["result"]
    link = shared / MODEL / "champion"
    assert exported_run(link.resolve()) == first["run_id"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    uri = f"sqlite:///{elsewhere / 'mlflow.db'}"
    second = train(project, config, "--tracking-uri", uri, "--set", f"tracking.export_dir={shared}")
    assert "export_path" not in second["result"]
    assert "holds the exports of another store" in second["result"]["export_skipped"]
    assert "export skipped" in second["stderr"]
    assert second["result"]["registry"]["version"] == "1"  # registered in its own store all the same
    assert exported_run(shared / MODEL / "v1") == first["run_id"], "the other store's export overwrote v1"
    assert exported_run(link.resolve()) == first["run_id"] == champion_run(project / "mlflow.db")


def test_evaluate_from_another_folder_reads_the_data_beside_the_store(project: Path, tmp_path: Path) -> None:
    """`newstag evaluate --config C --split test --tracking-uri <elsewhere>` reads the prepared data training put
    beside that store, and writes nothing into the current folder."""
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    store = tmp_path / "x"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    train(cwd, project / "configs" / "synth.yaml", "--tracking-uri", uri)
    assert sorted(cwd.iterdir()) == []
    args = ["evaluate", "-m", f"models:/{MODEL}@champion", "--tracking-uri", uri, "--split", "test", "--json"]
    proc = run_cli([*args, "--config", str(project / "configs" / "synth.yaml")], cwd)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["axes"]
    assert sorted(cwd.iterdir()) == [], "evaluate wrote into the current folder"
