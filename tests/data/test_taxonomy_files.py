"""Checks of the hand-written taxonomy files configs/taxonomy/regions.yaml and themes.yaml.

The region file is checked against ISO 3166-1 (pycountry), the Reuters-21578 PLACES list and the PLACES values
actually used in the SGML files; the theme file against the TOPICS list and the 90 ApteMod topics computed
from the SGML files. Corpus location: $NEWSTAG_REUTERS_DIR (relative paths are taken from the repo
root), default data/raw/reuters21578, falling back to ../shared/data/reuters21578 next to the repo. Tests that
need the corpus are skipped when it is in none of these places.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pycountry
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TAXONOMY_DIR = REPO_ROOT / "configs" / "taxonomy"
REGIONS_FILE = TAXONOMY_DIR / "regions.yaml"
THEMES_FILE = TAXONOMY_DIR / "themes.yaml"

EXPECTED_REGIONS = {"Africa", "Asia-Pacific", "Europe", "Latin America", "Middle East", "North America"}
# XK (Kosovo) is a user-assigned code, used by the EU, the IMF and the gazetteer; it belongs in the map too.
ISO_CODES = {c.alpha_2 for c in pycountry.countries} | {"XK"}
MIN_THEME_TRAIN_DOCS = 20
N_APTEMOD_TOPICS = 90

_DOC_ATTRS_RE = re.compile(r"^([^>]*)>")
_ATTR_RE = re.compile(r'(\w+)="([^"]*)"')
_PLACES_RE = re.compile(r"<PLACES>(.*?)</PLACES>", re.S)
_TOPICS_RE = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D_RE = re.compile(r"<D>(.*?)</D>", re.S)


# --------------------------------------------------------------------------------------------- corpus


def _corpus_candidates() -> list[Path]:
    configured = Path(os.environ.get("NEWSTAG_REUTERS_DIR", "data/raw/reuters21578"))
    if not configured.is_absolute():
        configured = REPO_ROOT / configured
    return [configured, REPO_ROOT.parent / "shared" / "data" / "reuters21578"]


def _is_corpus_dir(path: Path) -> bool:
    return (path / "all-places-strings.lc.txt").is_file() and any(path.glob("reut2-*.sgm"))


@dataclass
class Corpus:
    places_list: list[str]
    topics_list: list[str]
    places_used: set[str] = field(default_factory=set)
    train_topics: list[set[str]] = field(default_factory=list)  # one set per ModApte training doc
    test_topics: list[set[str]] = field(default_factory=list)  # one set per ModApte test doc

    @property
    def aptemod_topics(self) -> set[str]:
        train = set().union(*self.train_topics)
        test = set().union(*self.test_topics)
        return train & test


def _read_code_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="latin-1").splitlines() if line.strip()]


def _labels(pattern: re.Pattern[str], doc: str) -> list[str]:
    """The <D> values of the first element matched by `pattern` in one <REUTERS> record (empty if none)."""
    m = pattern.search(doc)
    return [v.strip() for v in _D_RE.findall(m.group(1))] if m else []


def parse_corpus(corpus_dir: Path) -> Corpus:
    corpus = Corpus(
        places_list=_read_code_list(corpus_dir / "all-places-strings.lc.txt"),
        topics_list=_read_code_list(corpus_dir / "all-topics-strings.lc.txt"),
    )
    for sgm in sorted(corpus_dir.glob("reut2-*.sgm")):
        text = sgm.read_text(encoding="latin-1")
        for doc in text.split("<REUTERS ")[1:]:
            head = _DOC_ATTRS_RE.match(doc)
            attrs = dict(_ATTR_RE.findall(head.group(1))) if head else {}
            corpus.places_used.update(_labels(_PLACES_RE, doc))
            if attrs.get("TOPICS") != "YES":
                continue
            split = attrs.get("LEWISSPLIT")
            if split == "TRAIN":
                corpus.train_topics.append(set(_labels(_TOPICS_RE, doc)))
            elif split == "TEST":
                corpus.test_topics.append(set(_labels(_TOPICS_RE, doc)))
    return corpus


@pytest.fixture(scope="module")
def corpus_dir() -> Path:
    candidates = _corpus_candidates()
    for path in candidates:
        if _is_corpus_dir(path):
            return path
    pytest.skip(
        "Reuters-21578 corpus not found (looked in: "
        + ", ".join(str(p) for p in candidates)
        + "); set NEWSTAG_REUTERS_DIR to the directory holding reut2-*.sgm and all-*-strings.lc.txt"
    )


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path) -> Corpus:
    return parse_corpus(corpus_dir)


# --------------------------------------------------------------------------------------------- YAML files


@pytest.fixture(scope="module")
def regions_doc() -> dict:
    with REGIONS_FILE.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    assert isinstance(doc, dict), f"{REGIONS_FILE} is not a mapping"
    return doc


@pytest.fixture(scope="module")
def themes_doc() -> dict:
    with THEMES_FILE.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    assert isinstance(doc, dict), f"{THEMES_FILE} is not a mapping"
    return doc


@pytest.fixture(scope="module")
def country_region(regions_doc: dict) -> dict[str, str]:
    """ISO alpha-2 code -> region (the last region wins if a code is listed twice; tested separately)."""
    return {code: region for region, codes in regions_doc["regions"].items() for code in codes}


@pytest.fixture(scope="module")
def place_region(regions_doc: dict, country_region: dict[str, str]) -> dict[str, str | None]:
    return {
        place: country_region.get(entry["country"]) if entry["country"] is not None else None
        for place, entry in regions_doc["places"].items()
    }


# --------------------------------------------------------------------------------------------- regions


def test_regions_file_has_the_expected_sections(regions_doc: dict) -> None:
    assert set(regions_doc) == {"regions", "no_region", "places"}
    assert isinstance(regions_doc["regions"], dict)
    assert isinstance(regions_doc["no_region"], dict)
    assert isinstance(regions_doc["places"], dict)


def test_exactly_six_regions_with_the_expected_names(regions_doc: dict) -> None:
    assert set(regions_doc["regions"]) == EXPECTED_REGIONS


def test_region_lists_are_sorted_upper_case_strings(regions_doc: dict) -> None:
    for region, codes in regions_doc["regions"].items():
        assert isinstance(codes, list) and codes, f"{region}: not a non-empty list"
        # a bare NO (Norway) is read by PyYAML as False; it must be quoted
        bad = [c for c in codes if not (isinstance(c, str) and re.fullmatch(r"[A-Z]{2}", c))]
        assert not bad, f"{region}: not upper-case alpha-2 strings: {bad}"
        assert codes == sorted(codes), f"{region}: codes not sorted"


def test_every_iso_code_is_in_exactly_one_region_or_in_no_region(regions_doc: dict) -> None:
    listed = Counter(code for codes in regions_doc["regions"].values() for code in codes)
    listed.update(list(regions_doc["no_region"]))
    duplicated = sorted(code for code, n in listed.items() if n > 1)
    missing = sorted(ISO_CODES - set(listed))
    unknown = sorted(str(c) for c in set(listed) - ISO_CODES)
    assert not duplicated, f"codes in more than one region / in a region and no_region: {duplicated}"
    assert not missing, f"ISO codes in no region and not in no_region: {missing}"
    assert not unknown, f"codes that are not current ISO 3166-1 alpha-2 codes: {unknown}"


def test_no_region_entries_have_a_reason(regions_doc: dict) -> None:
    for code, reason in regions_doc["no_region"].items():
        assert isinstance(reason, str) and reason.strip(), f"no_region {code}: empty reason"


def test_places_are_exactly_the_reuters_places_list_in_order(regions_doc: dict, corpus: Corpus) -> None:
    assert len(corpus.places_list) == 175
    assert list(regions_doc["places"]) == corpus.places_list


def test_place_entries_map_to_a_regioned_country_or_null_with_reason(
    regions_doc: dict, country_region: dict[str, str]
) -> None:
    for place, entry in regions_doc["places"].items():
        assert isinstance(entry, dict) and "country" in entry, f"{place}: no country"
        country = entry["country"]
        if country is None:
            assert set(entry) == {"country", "reason"}, f"{place}: null country needs exactly a reason"
            reason = entry["reason"]
            assert isinstance(reason, str) and reason.strip(), f"{place}: empty reason"
        else:
            assert set(entry) <= {"country", "note"}, f"{place}: unexpected keys {sorted(entry)}"
            assert country in ISO_CODES, f"{place}: {country!r} is not an ISO 3166-1 alpha-2 code"
            assert country in country_region, f"{place}: {country} is in no region"
            if "note" in entry:
                assert isinstance(entry["note"], str) and entry["note"].strip(), f"{place}: empty note"


def test_every_place_used_in_the_sgml_is_covered(regions_doc: dict, corpus: Corpus) -> None:
    assert len(corpus.places_used) > 100  # the parser found the PLACES values at all
    uncovered = sorted(corpus.places_used - set(regions_doc["places"]))
    assert not uncovered, f"PLACES values in the SGML but not in regions.yaml: {uncovered}"


@pytest.mark.parametrize(
    ("place", "region"),
    [
        ("mexico", "Latin America"),
        ("cuba", "Latin America"),
        ("panama", "Latin America"),
        ("turkey", "Middle East"),
        ("egypt", "Middle East"),
        ("libya", "Middle East"),
        ("ussr", "Europe"),
        ("usa", "North America"),
        ("canada", "North America"),
        ("nigeria", "Africa"),
        ("japan", "Asia-Pacific"),
        ("australia", "Asia-Pacific"),
    ],
)
def test_region_spot_checks(place_region: dict[str, str | None], place: str, region: str) -> None:
    assert place_region.get(place) == region


@pytest.mark.parametrize(
    ("place", "successor"),
    [
        ("ussr", "RU"),
        ("west-germany", "DE"),
        ("east-germany", "DE"),
        ("czechoslovakia", "CZ"),
        ("yugoslavia", "RS"),
        ("yemen-arab-republic", "YE"),
        ("yemen-demo-republic", "YE"),
    ],
)
def test_historical_places_map_to_their_successor_with_a_note(
    regions_doc: dict, place: str, successor: str
) -> None:
    entry = regions_doc["places"][place]
    assert entry["country"] == successor
    assert entry.get("note", "").strip(), f"{place}: historical state without a note"


# --------------------------------------------------------------------------------------------- themes


def test_themes_file_has_the_expected_sections(themes_doc: dict) -> None:
    assert set(themes_doc) == {"themes", "unmapped"}
    assert isinstance(themes_doc["themes"], dict)
    assert isinstance(themes_doc["unmapped"] or {}, dict)


def test_theme_names_and_no_theme_is_empty(themes_doc: dict) -> None:
    themes = themes_doc["themes"]
    assert 6 <= len(themes) <= 12, f"{len(themes)} themes"
    for name, topics in themes.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), f"bad theme name {name!r}"
        assert isinstance(topics, list) and topics, f"theme {name} is empty"
        assert all(isinstance(t, str) for t in topics), f"theme {name}: non-string topic codes"


def test_every_topic_is_in_exactly_one_theme_or_unmapped(themes_doc: dict, corpus: Corpus) -> None:
    assert len(corpus.topics_list) == 135
    unmapped = themes_doc["unmapped"] or {}
    listed = Counter(t for topics in themes_doc["themes"].values() for t in topics)
    listed.update(list(unmapped))
    duplicated = sorted(t for t, n in listed.items() if n > 1)
    missing = sorted(set(corpus.topics_list) - set(listed))
    unknown = sorted(str(t) for t in set(listed) - set(corpus.topics_list))
    assert not duplicated, f"topics in more than one theme / in a theme and unmapped: {duplicated}"
    assert not missing, f"topics in no theme and not unmapped: {missing}"
    assert not unknown, f"codes that are not Reuters TOPICS codes: {unknown}"
    for topic, reason in unmapped.items():
        assert isinstance(reason, str) and reason.strip(), f"unmapped {topic}: empty reason"


def test_corpus_has_the_modapte_split(corpus: Corpus) -> None:
    assert len(corpus.train_topics) == 9603
    assert len(corpus.test_topics) == 3299
    assert len(corpus.aptemod_topics) == N_APTEMOD_TOPICS


def test_every_aptemod_topic_is_in_exactly_one_theme(themes_doc: dict, corpus: Corpus) -> None:
    in_themes = Counter(t for topics in themes_doc["themes"].values() for t in topics)
    not_once = sorted(t for t in corpus.aptemod_topics if in_themes[t] != 1)
    assert not not_once, f"ApteMod topics not in exactly one theme: {not_once}"
    unmapped_apte = sorted(corpus.aptemod_topics & set(themes_doc["unmapped"] or {}))
    assert not unmapped_apte, f"ApteMod topics must not be unmapped: {unmapped_apte}"


def test_every_theme_has_enough_modapte_training_docs(themes_doc: dict, corpus: Corpus) -> None:
    counts = {
        name: sum(1 for doc_topics in corpus.train_topics if doc_topics & set(topics))
        for name, topics in themes_doc["themes"].items()
    }
    small = {name: n for name, n in counts.items() if n < MIN_THEME_TRAIN_DOCS}
    assert not small, f"themes with fewer than {MIN_THEME_TRAIN_DOCS} ModApte training docs: {small}"
