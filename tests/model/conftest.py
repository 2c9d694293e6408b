"""Fixtures for model tests: the synthetic corpus (tests/synthetic.py) and a tagger trained on it in seconds."""

from __future__ import annotations

import pytest
from synthetic import synthetic_corpus

from pipeline.features import Featurizer
from pipeline.model import NewsTagger


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
