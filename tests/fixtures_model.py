"""Shared by the predict, serve and Dask tests: the prepared Reuters split, and a small model trained once.

Import the fixture into a test module (``from fixtures_model import small_model``); it trains at most once
per test process whichever modules use it: a small Reuters model (20,000 word features, thresholds on
validation), logged and registered as ``news-tagger@champion`` in a temporary SQLite store whose artifacts
stay in the temporary folder, and exported to a folder there.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import QUIET_ENV as CLI_QUIET_ENV

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "data" / "processed" / "reuters" / "dataset"
NEWSTAG = str(Path(sys.executable).with_name("newstag"))
RUN_ID = "0123456789abcdef0123456789abcdef"  # the run write_model_folder's MLmodel names (in no store)
QUIET_ENV = CLI_QUIET_ENV  # the switches the CLI sets: nothing a test starts may call out


@dataclass(frozen=True)
class TrainedModel:
    root: Path
    tracking_uri: str
    folder: Path  # the exported champion
    uri: str = "models:/news-tagger@champion"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a subprocess using this model's store."""
        # MLFLOW_REGISTRY_URI too: mlflow.set_registry_uri in an earlier in-process test exports its own store
        store = {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_REGISTRY_URI": self.tracking_uri}
        return {**os.environ, **QUIET_ENV, **store, **extra}


@functools.cache
def _load_dataset() -> Any:
    if not (DATASET / "dataset_dict.json").is_file():
        return None
    import datasets

    return datasets.load_from_disk(str(DATASET))


def reuters_texts() -> dict[str, list[str]] | None:
    """Texts of the prepared Reuters train and test splits and the test titles, or None when not prepared."""
    data = _load_dataset()
    if data is None:
        return None
    return {"train": data["train"]["text"], "test": data["test"]["text"], "titles": data["test"]["title"]}


def reuters_test_rows() -> list[dict[str, str]]:
    """The Reuters test split as id/title/text rows (never written inside the repository)."""
    data = _load_dataset()
    assert data is not None, "train the small model first: it prepares the dataset"
    test = data["test"]
    return [
        {"id": i, "title": t, "text": x}
        for i, t, x in zip(test["id"], test["title"], test["text"], strict=True)
    ]


def write_model_folder(tagger: Any, root: Path) -> Path:
    """``root`` laid out as an exported model, as training writes it: MLmodel naming a run, the joblib tagger
    and its compiled scorer, both sha256-recorded, signed with the test session's key; ``load_tagger`` accepts
    it without a store."""
    import joblib
    import yaml

    from pipeline import signing
    from pipeline.artifacts import SCORER_FILE, TAGGER_FILE, sha256_file

    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    joblib.dump(tagger, root / "artifacts" / TAGGER_FILE)
    tagger.compile().save(root / "artifacts" / SCORER_FILE)
    pyfunc = {
        "config": {
            "tagger_sha256": sha256_file(root / "artifacts" / TAGGER_FILE),
            "scorer_sha256": sha256_file(root / "artifacts" / SCORER_FILE),
        },
        "artifacts": {
            "tagger": {"path": f"artifacts/{TAGGER_FILE}"},
            "scorer": {"path": f"artifacts/{SCORER_FILE}"},
        },
    }
    spec = {"flavors": {"python_function": pyfunc}, "run_id": RUN_ID}
    (root / "MLmodel").write_text(yaml.safe_dump(spec))
    signing.sign_folder(root)
    return root


_TRAINED: dict[str, TrainedModel] = {}


def _train(root: Path) -> TrainedModel:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    # the experiment's artifacts go to the temporary folder, not to ./mlruns
    MlflowClient(uri).create_experiment("newstag", artifact_location=(root / "artifacts").as_uri())
    cmd = [
        NEWSTAG,
        "train",
        "-c",
        "configs/reuters.yaml",
        "--tracking-uri",
        uri,
        "--set",
        f"tracking.export_dir={root / 'models'}",
        "--set",  # the project's prepared Reuters split (reuters_texts reads it), not one beside the store
        f"processed_dir={ROOT / 'data' / 'processed'}",
        "--set",
        "features.word.max_features=20000",
        "--set",
        "thresholds.strategy=validation",
        "--set",
        "tracking.registered_model=news-tagger",  # the CLI's default model name
        "--json",
    ]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **QUIET_ENV}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"training failed:\n{done.stderr[-3000:]}"
    json.loads(done.stdout)
    folder = root / "models" / "news-tagger" / "champion"
    assert (folder / "MLmodel").is_file()
    return TrainedModel(root, uri, folder)


@pytest.fixture(scope="session")
def small_model(reuters_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A small Reuters model, registered and exported (trained once per test process)."""
    if "model" not in _TRAINED:
        _TRAINED["model"] = _train(tmp_path_factory.mktemp("small-model"))
    return _TRAINED["model"]


TINY_PLACES = {"Europe": ["Paris", "Berlin", "Madrid"], "Asia-Pacific": ["Tokyo", "Jakarta", "Sydney"]}
TINY_THEMES = {
    "energy": ["oil output", "crude prices", "refinery"],
    "agriculture": ["wheat harvest", "coffee crop"],
}


def tiny_rows(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, list[list[str]]]]:
    """``n`` synthetic articles about TINY_PLACES and TINY_THEMES, and their gold labels per axis."""
    from synthetic import synthetic_rows

    return synthetic_rows(n, seed, TINY_PLACES, TINY_THEMES)


def tiny_model_folder(dest: Path) -> Path:
    """An exported model folder (signed; MLmodel, tagger and scorer with their sha256) of a tagger trained in
    a second on 160 synthetic articles: what the predict and reader tests score with."""
    import pandas as pd

    from pipeline.features import Featurizer
    from pipeline.model import NewsTagger

    rows, labels = tiny_rows(160, 1)
    tagger = NewsTagger(
        featurizer=Featurizer(word_min_df=1),
        axes=("regions", "themes"),
        min_support=1,
        threshold_strategy="fixed",
        n_jobs=1,
    ).fit(pd.DataFrame(rows), labels)
    return write_model_folder(tagger, dest)
