"""Checks of configs/taxonomy/world-themes.yaml against the raw labels of the corpora that feed it, and of the
region gold of the 2025 portal items against regions.yaml.

The corpora are read from data/raw/ (``make link-data``), falling back to ../shared/data beside the repo; tests
that need one are skipped when it is in neither place.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from pipeline.taxonomy import load_taxonomy
from world_themes import THEMES

REPO_ROOT = Path(__file__).resolve().parents[2]
WORLD_THEMES = REPO_ROOT / "configs" / "taxonomy" / "world-themes.yaml"
REGIONS = REPO_ROOT / "configs" / "taxonomy" / "regions.yaml"
PORTAL = {
    "Armed conflicts and attacks": "conflict-and-security",
    "International relations": "diplomacy",
    "Politics and elections": "politics-and-elections",
    "Law and crime": "law-and-crime",
    "Disasters and accidents": "disasters",
    "Business and economy": "economy-and-trade",
    "Health and environment": "health-and-environment",
    "Science and technology": "science-and-technology",
    "Arts and culture": "culture",
    "Sports": "sports",
}
PLACE_TOPICS = {"middle_east", "russia", "china", "great_britain", "europe", "israel", "mexico", "asia"}
PLACE_TOPICS |= {"palestine", "africa", "north_korea", "south_korea"}


def _find(name: str, file: str) -> Path:
    for root in (REPO_ROOT / "data" / "raw", REPO_ROOT.parent / "shared" / "data"):
        if (root / name / file).is_file():
            return root / name / file
    pytest.skip(f"{name}/{file} is not linked into data/raw (make link-data)")


@lru_cache(maxsize=4)
def _values(name: str, file: str, key: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with gzip.open(_find(name, file), "rt", encoding="utf-8") as fh:
        for line in fh:
            value = json.loads(line)[key]
            counts.update(value if isinstance(value, list) else [value])
    return counts


def test_the_world_themes_are_exactly_the_eleven_foreign_policy_themes() -> None:
    assert tuple(yaml.safe_load(WORLD_THEMES.read_text())["themes"]) == THEMES
    assert load_taxonomy(WORLD_THEMES).labels == tuple(sorted(THEMES))


def test_the_ten_portal_categories_map_one_to_one_onto_the_first_ten_themes() -> None:
    table = load_taxonomy(WORLD_THEMES).table
    assert {category: table[category] for category in PORTAL} == {c: (t,) for c, t in PORTAL.items()}
    for name in ("wcep-2010-2020.jsonl.gz", "wcep-2025.jsonl.gz"):
        assert set(_values("wikipedia_current_events", name, "category")) == set(PORTAL)


def test_every_allsides_topic_is_mapped_or_left_out_with_a_reason() -> None:
    taxonomy = load_taxonomy(WORLD_THEMES)
    topics = _values("allsides", "allsides.jsonl.gz", "topic")
    assert len(topics) == 108
    unplaced = sorted(t for t in topics if t not in taxonomy.table and t not in taxonomy.excluded)
    assert unplaced == []
    assert all(reason.strip() for reason in taxonomy.excluded.values())
    assert PLACE_TOPICS <= set(taxonomy.excluded)  # places are regions, not themes
    assert taxonomy.table["immigration"] == ("migration",)
    mapped = sum(n for t, n in topics.items() if t in taxonomy.table)
    assert mapped / sum(topics.values()) > 0.8  # most articles get a theme


def test_every_country_a_2025_portal_item_links_maps_to_its_region() -> None:
    regions = load_taxonomy(REGIONS)
    countries = _values("wikipedia_current_events", "wcep-2025.jsonl.gz", "countries")
    unknown = sorted(c for c in countries if c not in regions.table and c not in regions.excluded)
    assert unknown == []
    with gzip.open(_find("wikipedia_current_events", "wcep-2025.jsonl.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            mapped = sorted({r for c in item["countries"] for r in regions.table.get(c, ())})
            assert mapped == sorted(item["regions"]), item["id"]
