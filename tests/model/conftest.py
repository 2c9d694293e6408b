"""Fixtures for model tests: a tiny hand-written corpus and a tagger trained on it in seconds."""

from __future__ import annotations

import random

import pytest

from pipeline.features import Featurizer
from pipeline.model import NewsTagger

PLACES = {
    "Europe": ["Paris", "Berlin", "Madrid", "Warsaw"],
    "Asia-Pacific": ["Tokyo", "Jakarta", "Manila", "Sydney"],
    "Africa": ["Nairobi", "Lagos", "Accra", "Dakar"],
}
THEMES = {
    "energy": ["oil output", "crude prices", "gas pipeline", "refinery"],
    "agriculture": ["wheat harvest", "maize crop", "coffee growers", "cattle herds"],
}
FILLER = [
    "officials",
    "said",
    "on",
    "Monday",
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
    "the",
    "committee",
]


def make_corpus(n: int, seed: int) -> tuple[list[str], dict[str, list[list[str]]]]:
    """``n`` short articles we write from templates, each with one region and one theme."""
    rng = random.Random(seed)
    docs, regions, themes = [], [], []
    for _ in range(n):
        region = rng.choice(sorted(PLACES))
        theme = rng.choice(sorted(THEMES))
        words = rng.sample(FILLER, 8)
        text = f"In {rng.choice(PLACES[region])}, {rng.choice(THEMES[theme])} rose as {' '.join(words)}."
        docs.append(text)
        regions.append([region])
        themes.append([theme])
    return docs, {"regions": regions, "themes": themes}


@pytest.fixture(scope="session")
def tiny_corpus() -> dict[str, tuple[list[str], dict[str, list[list[str]]]]]:
    """Train, validation and test parts of the hand-written corpus."""
    return {"train": make_corpus(240, 1), "validation": make_corpus(80, 2), "test": make_corpus(80, 3)}


@pytest.fixture(scope="session")
def tiny_tagger(tiny_corpus) -> NewsTagger:
    """A tagger fitted on the tiny corpus (word features only, thresholds tuned on validation)."""
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    tagger = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1)
    return tagger.fit(xt, yt, xv, yv)
