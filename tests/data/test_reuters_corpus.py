"""Checks of the corpus readers on the real corpora: Reuters-21578 and BBC News.

The expected numbers come from each corpus's PROVENANCE.md and were re-measured with these readers.
Corpus location: $NEWSTAG_REUTERS_DIR / $NEWSTAG_BBC_DIR (relative paths are taken from the repo root),
else data/raw/<name>, else ../shared/data/<name> next to the repo; the tests are skipped when none exists.
Each corpus is parsed once per module.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.config import CorpusConfig
from pipeline.corpora import REUTERS_FILES, ReadIssue, Record, read_corpus, read_folders
from pipeline.corpora.reuters import split_of

REPO_ROOT = Path(__file__).resolve().parents[2]
N_ARTICLES = 21_578
BBC_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}


def corpus_dir(env: str, name: str, marker: str) -> Path | None:
    """The first candidate folder for a corpus that holds ``marker``, or None."""
    candidates = [REPO_ROOT / "data" / "raw" / name, REPO_ROOT.parent / "shared" / "data" / name]
    if os.environ.get(env):
        candidates.insert(0, REPO_ROOT / os.environ[env])
    return next((c for c in candidates if (c / marker).exists()), None)


REUTERS_DIR = corpus_dir("NEWSTAG_REUTERS_DIR", "reuters21578", REUTERS_FILES[-1])
BBC_DIR = corpus_dir("NEWSTAG_BBC_DIR", "bbc_news", "sport/199.txt")
needs_reuters = pytest.mark.skipif(
    REUTERS_DIR is None,
    reason="Reuters-21578 not found: set NEWSTAG_REUTERS_DIR or link it to data/raw/reuters21578",
)
needs_bbc = pytest.mark.skipif(
    BBC_DIR is None, reason="BBC News not found: set NEWSTAG_BBC_DIR or link it to data/raw/bbc_news"
)


@pytest.fixture(scope="module")
def reuters() -> tuple[list[Record], list[ReadIssue], float]:
    assert REUTERS_DIR is not None
    issues: list[ReadIssue] = []
    started = time.perf_counter()
    cfg = CorpusConfig(format="reuters21578", path=str(REUTERS_DIR), split_scheme="modapte")
    records = list(read_corpus(cfg, issues))
    return records, issues, time.perf_counter() - started


@pytest.fixture(scope="module")
def modapte(reuters) -> dict[str, list[Record]]:
    records, _, _ = reuters
    return {split: [r for r in records if r.split == split] for split in ("train", "test")}


@needs_reuters
def test_reuters_every_article_once(reuters) -> None:
    records, _, seconds = reuters
    assert len(records) == N_ARTICLES
    assert [r.id for r in records] == [str(i) for i in range(1, N_ARTICLES + 1)]
    assert seconds < 10, f"reading the corpus took {seconds:.1f} s"


@needs_reuters
def test_reuters_the_one_issue_is_the_empty_story(reuters) -> None:
    records, issues, _ = reuters
    assert [(Path(i.file).name, i.line, i.id) for i in issues] == [("reut2-012.sgm", 25983, "12793")]
    empty = [r for r in records if not r.text]
    assert [(r.id, r.title, r.meta["text_type"], r.split) for r in empty] == [
        ("12793", "", "UNPROC", "unused")
    ]


@needs_reuters
def test_reuters_modapte_split_sizes(reuters, modapte) -> None:
    records, _, _ = reuters
    assert Counter(r.split for r in records) == {"train": 9_603, "test": 3_299, "unused": 8_676}
    combos = Counter((r.meta["lewissplit"], r.meta["topics_attr"]) for r in records)
    assert combos == {
        ("NOT-USED", "NO"): 148,
        ("NOT-USED", "YES"): 574,
        ("TEST", "NO"): 2_889,
        ("TEST", "YES"): 3_299,
        ("TRAIN", "BYPASS"): 1_043,
        ("TRAIN", "NO"): 4_022,
        ("TRAIN", "YES"): 9_603,
    }


@needs_reuters
def test_reuters_source_scheme_follows_lewissplit(reuters) -> None:
    records, _, _ = reuters
    splits = Counter(split_of(r.meta["lewissplit"], r.meta["topics_attr"], "source") for r in records)
    assert splits == {"train": 14_668, "test": 6_188, "unused": 722}


@needs_reuters
def test_reuters_modapte_stories_without_body(modapte) -> None:
    docs = modapte["train"] + modapte["test"]
    kinds = Counter(r.meta["text_type"] for r in docs)
    assert kinds == {"NORM": 11_771, "BRIEF": 1_063, "UNPROC": 68}  # 1,131 without <BODY>, as PROVENANCE says
    briefs = [r for r in docs if r.meta["text_type"] == "BRIEF"]
    assert all(r.text == r.title and r.title for r in briefs)
    unproc = [r for r in docs if r.meta["text_type"] == "UNPROC"]
    assert all(r.title and r.text for r in unproc)
    assert sum(r.text != r.title for r in unproc) == 65
    assert all(r.text != r.title for r in docs if r.meta["text_type"] == "NORM")


@needs_reuters
def test_reuters_text_is_clean(reuters) -> None:
    records, _, _ = reuters
    leftovers = re.compile(
        r"[\x00-\x08\x0b-\x1f\x7f]|&(?:lt|gt|amp|#\d+);|</?(?:TEXT|TITLE|BODY|DATELINE|AUTHOR)\b|</D>"
    )
    dirty = [r.id for r in records if leftovers.search(r.title) or leftovers.search(r.text)]
    assert dirty == []
    signed = [r.id for r in records if re.search(r"\breuters?(?:\.\.\.)?\Z", r.text, re.I)]
    assert signed == []
    assert sum(r.text.endswith(" Reuters.") for r in records) == 16  # "... told Reuters." is not a sign-off
    assert all("  " not in r.text and "\n\n" not in r.text and r.text == r.text.strip() for r in records)
    assert sum("<" in r.text for r in records) > 1_000  # company names such as <Acme Corp> survive unescaping


@needs_reuters
def test_reuters_latin1_byte_is_decoded(reuters) -> None:
    records, _, _ = reuters
    accented = [r.id for r in records if not (r.title.isascii() and r.text.isascii())]
    assert accented == ["17980"]
    assert "ü" in next(r.text for r in records if r.id == "17980")


@needs_reuters
def test_reuters_datelines_lead_the_text_and_stay_in_meta(reuters) -> None:
    records, _, _ = reuters
    norm = [r for r in records if r.meta["text_type"] == "NORM"]
    assert len(norm) == 19_043
    assert sum(bool(r.meta["dateline"]) for r in norm) == 19_042
    # the dateline names a place, so it leads the text as in the printed story
    assert all(r.text.startswith(r.meta["dateline"] + " - ") for r in norm if r.meta["dateline"])


@needs_reuters
def test_reuters_dates_are_given_and_stripped(reuters) -> None:
    records, _, _ = reuters
    assert all(r.date and r.date == r.date.strip() for r in records)
    assert all(re.match(r"\d{1,2}-[A-Z]{3}-1987 \d+:\d\d:\d\d\.\d", r.date or "") for r in records)
    stamp = re.compile(r"\d{1,2}-[A-Z]{3}-1987 \d\d:\d\d:\d\d\.\d\d")
    assert (
        sum(bool(stamp.fullmatch(r.date or "")) for r in records) == 21_247
    )  # the rest carry stray letters or a note


@needs_reuters
def test_reuters_label_statistics(reuters, modapte) -> None:
    records, _, _ = reuters
    docs = modapte["train"] + modapte["test"]
    assert sum(bool(r.labels["places"]) for r in docs) == 12_030
    assert sum(len(r.labels["places"]) >= 2 for r in docs) == 1_751
    assert len({p for r in docs for p in r.labels["places"]}) == 136
    assert sum(bool(r.labels["topics"]) for r in docs) == 10_794
    assert sum(bool(r.labels["places"]) for r in records) == 18_798
    assert sum(bool(r.labels["topics"]) for r in records) == 11_367
    assert Counter(p for r in docs for p in r.labels["places"]).most_common(3) == [
        ("usa", 7_774),
        ("uk", 1_141),
        ("canada", 750),
    ]
    assert all(set(r.labels) == {"places", "topics", "people", "orgs", "exchanges"} for r in records)


@needs_reuters
def test_reuters_aptemod_topics(modapte) -> None:
    train = {t for r in modapte["train"] for t in r.labels["topics"]}
    test = {t for r in modapte["test"] for t in r.labels["topics"]}
    both = train & test
    assert (len(train), len(test), len(both)) == (115, 93, 90)
    assert {"earn", "acq", "crude", "trade", "money-fx", "grain"} <= both
    with_r90 = {
        split: sum(bool(set(r.labels["topics"]) & both) for r in docs) for split, docs in modapte.items()
    }
    assert with_r90 == {"train": 7_770, "test": 3_019}


@needs_bbc
def test_bbc_folders() -> None:
    issues: list[ReadIssue] = []
    records = list(read_folders(BBC_DIR, issues))
    assert len(records) == 2_225
    assert Counter(r.labels["label"][0] for r in records) == BBC_COUNTS
    assert len({r.id for r in records}) == 2_225
    assert [(i.id, i.reason) for i in issues] == [("sport/199", "decoded as latin-1")]
    fallback = next(r for r in records if r.id == "sport/199")
    assert "£" in fallback.text and fallback.labels == {"label": ["sport"]}
    assert all(r.title and r.text and r.split == "" for r in records)
    first = next(r for r in records if r.id == "business/001")
    assert first.title == "Ad sales boost Time Warner profit"
