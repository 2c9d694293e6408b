"""Fixtures for model tests: the synthetic corpus (tests/synthetic.py) and a tagger trained on it in seconds;
the world model (configs/world.yaml) trained on the shared corpora in minutes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from synthetic import synthetic_corpus

from pipeline.config import load_config
from pipeline.features import Featurizer
from pipeline.model import NewsTagger, tagger_from_config
from pipeline.prepare import load_prepared, prepare, split_frame

ROOT = Path(__file__).resolve().parents[2]
WORLD_CONFIG = "configs/world.yaml"


@pytest.fixture(scope="session")
def tiny_corpus() -> dict[str, tuple[list[str], dict[str, list[list[str]]]]]:
    """Train, validation and test parts of the synthetic corpus."""
    return {
        "train": synthetic_corpus(240, 1),
        "validation": synthetic_corpus(80, 2),
        "test": synthetic_corpus(80, 3),
    }


@pytest.fixture(scope="session")
def tiny_tagger(tiny_corpus) -> NewsTagger:
    """A tagger fitted on the tiny corpus (word features only, thresholds tuned on validation)."""
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    tagger = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1)
    return tagger.fit(xt, yt, xv, yv)


@pytest.fixture(scope="session")
def world_tagger() -> NewsTagger:
    """The tagger of ``configs/world.yaml``, fitted in process as ``newstag train`` fits it (no MLflow); the
    prepared dataset is data/processed/world, built or reused. Skips when a corpus it reads is not linked
    into data/raw (``make link-data``)."""
    cwd = os.getcwd()
    os.chdir(ROOT)  # the config's paths are relative to the project root
    try:
        cfg = load_config(WORLD_CONFIG)
        missing = [c.path for c in cfg.corpus_list() if c.path and not Path(c.path).exists()]
        if missing:
            pytest.skip(f"{WORLD_CONFIG}: corpora not found: {', '.join(missing)} (make link-data)")
        prepared = prepare(cfg, say=lambda _: None)
        data = load_prepared(prepared.path)
        (xt, yt), (xv, yv) = split_frame(data["train"]), split_frame(data["validation"])
        return tagger_from_config(cfg).fit(xt, yt, xv, yv, coverage=prepared.report.get("coverage"))
    finally:
        os.chdir(cwd)
