"""The synthetic corpus of the tests that train a tagger in seconds: short articles written from templates.

Each article names one place of one region and one phrase of one theme among filler words, so a word
model learns both axes from a few hundred of them. The same seed gives the same articles; callers may
pass their own place and theme vocabularies.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

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

Labels = dict[str, list[list[str]]]


def synthetic_rows(
    n: int,
    seed: int,
    places: Mapping[str, Sequence[str]] = PLACES,
    themes: Mapping[str, Sequence[str]] = THEMES,
) -> tuple[list[dict[str, Any]], Labels]:
    """``n`` rows (``id``, ``title``, ``text``, ``source``), each with one region and one theme."""
    rng = random.Random(seed)
    rows, regions, topics = [], [], []
    for i in range(n):
        region, theme = rng.choice(sorted(places)), rng.choice(sorted(themes))
        words = " ".join(rng.sample(FILLER, 8))
        text = f"In {rng.choice(places[region])}, {rng.choice(themes[theme])} rose as {words}."
        rows.append({"id": f"d{seed}-{i}", "title": f"News {i}", "text": text, "source": f"wire-{i % 3}"})
        regions.append([region])
        topics.append([theme])
    return rows, {"regions": regions, "themes": topics}


def synthetic_corpus(n: int, seed: int) -> tuple[list[str], Labels]:
    """``n`` article texts and their labels per axis (the rows of ``synthetic_rows``, text only)."""
    rows, labels = synthetic_rows(n, seed)
    return [row["text"] for row in rows], labels
