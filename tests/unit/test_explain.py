"""``--explain`` an editor can read (pipeline/scoring.py ``explain_features``, ``explain_places``,
``near_misses``): evidence in words, no stop words, a region's place evidence from its own countries only,
and why a label just under its threshold fell short. On a small tagger with the gazetteer block."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import FILLER, synthetic_rows

from pipeline.features import Featurizer
from pipeline.model import NewsTagger
from pipeline.scoring import NEAR_MISS, PLACE_PREFIX, STOP_WORDS, TERMS_PREFIX
from pipeline.taxonomy import country_regions

TAXONOMY = "configs/taxonomy/regions.yaml"
PLACES = {
    "Europe": ["Paris", "Berlin", "Madrid", "Warsaw"],
    "Africa": ["Nairobi", "Lagos", "Accra", "Dakar"],
    "Latin America": ["Caracas", "Bogota", "Lima", "Santiago"],
}
DOCS = {
    "title": ["", "Oil output", "", ""],
    "text": [
        "In Caracas, oil output rose as the officials said that the plan would be reviewed.",
        "Officials in Paris and Caracas said the refinery would be reviewed on Monday by the committee.",
        "In Lagos, the wheat harvest rose as officials said that it would be reviewed next week.",
        "The committee said that the plan would be reviewed again on Monday.",
    ],
}


@pytest.fixture(scope="module")
def tagger() -> NewsTagger:
    (rows_t, yt), (rows_v, yv) = synthetic_rows(300, 1, PLACES), synthetic_rows(100, 2, PLACES)
    xt, xv = [r["text"] for r in rows_t], [r["text"] for r in rows_v]
    f = Featurizer(word_min_df=1, gazetteer=True, country_to_region=country_regions(TAXONOMY))
    return NewsTagger(f, axes=("regions", "themes"), min_support=3, n_jobs=1).fit(xt, yt, xv, yv)


def _phrases(evidence: list[dict]) -> list[str]:
    return [t for doc in evidence for per in doc.values() for terms in per.values() for t, _ in terms]


def test_evidence_reads_as_words(tagger: NewsTagger) -> None:
    M = tagger.transform_docs(DOCS)
    labels = tagger.labels_from_scores(tagger.scores_from_features(M))
    evidence = tagger.explain_places(M, labels, DOCS["title"], DOCS["text"], 5)
    assert "Latin America" in labels["regions"][0]
    caracas = evidence[0]["regions"]["Latin America"]
    assert caracas[0][0] == f"{PLACE_PREFIX}Caracas (Venezuela)"  # "mentions Caracas (Venezuela)"
    energy = dict(evidence[0]["themes"]).get("energy") or []
    assert any(t.startswith(TERMS_PREFIX) and "oil" in t for t, _ in energy)
    for phrase in _phrases(evidence):
        assert not phrase.startswith(("word:", "gaz:", "place:")), phrase
        assert phrase.startswith((PLACE_PREFIX, TERMS_PREFIX)) or ", needs " in phrase, phrase


def test_no_stop_word_is_evidence(tagger: NewsTagger) -> None:
    assert {"the", "that", "said", "would", "be", "on", "by"} <= STOP_WORDS
    assert {"oil", "fire", "interest"}.isdisjoint(STOP_WORDS)  # news words stay
    # the filler of the synthetic stories is mostly stop words: some carry positive weights, none is shown
    stop_filler = [w.lower() for w in FILLER if w.lower() in STOP_WORDS]
    assert len(stop_filler) >= 5
    M = tagger.transform_docs(DOCS)
    every = {a: [list(tagger.labels_[a])] * len(DOCS["text"]) for a in tagger.axes}
    shown = [
        word
        for phrase in _phrases(tagger.explain_features(M, every, 1000))
        if phrase.startswith(TERMS_PREFIX)
        for term in phrase[len(TERMS_PREFIX) :].split(", ")
        for word in (term.split()[0], term.split()[-1])
    ]
    assert shown
    assert not [w for w in shown if w in STOP_WORDS]


def test_place_evidence_only_for_the_region_it_supports(tagger: NewsTagger) -> None:
    M = tagger.transform_docs(DOCS)
    every = {a: [list(tagger.labels_[a])] * len(DOCS["text"]) for a in tagger.axes}
    evidence = tagger.explain_places(M, every, DOCS["title"], DOCS["text"], 1000)
    paris_and_caracas = evidence[1]["regions"]
    places = {
        r: [t for t, _ in terms if t.startswith(PLACE_PREFIX)] for r, terms in paris_and_caracas.items()
    }
    assert places["Europe"] == [f"{PLACE_PREFIX}Paris (France)"]
    assert places["Latin America"] == [f"{PLACE_PREFIX}Caracas (Venezuela)"]
    assert places["Africa"] == []
    assert not any(t.startswith(PLACE_PREFIX) for t, _ in evidence[3]["regions"].get("Europe", []))


def test_a_label_just_under_its_threshold_says_why_it_fell_short(tagger: NewsTagger) -> None:
    M = tagger.transform_docs(DOCS)
    scores = tagger.scores_from_features(M)
    j = tagger.labels_["regions"].index("Latin America")
    p = float(scores["regions"][0, j])
    over = {"Latin America": min(p + NEAR_MISS / 2, 0.99)}  # Caracas's story now falls just short
    labels = tagger.labels_from_scores(scores, over)
    assert "Latin America" not in labels["regions"][0]
    evidence = tagger.explain_places(M, labels, DOCS["title"], DOCS["text"], 5, over)
    miss = evidence[0]["regions"]["Latin America"]
    assert miss[0][0] == f"Latin America {p:.2f}, needs {over['Latin America']:.2f}"
    assert miss[1][0] == f"{PLACE_PREFIX}Caracas (Venezuela)"  # and what pushed it that far
    assert tagger.near_misses(scores, labels, over)[0]["regions"] == (
        "Latin America",
        p,
        over["Latin America"],
    )
    far = {"Latin America": 0.999} if p < 0.999 - NEAR_MISS else {}
    if far:  # far under its threshold: no near miss, no evidence
        labels = tagger.labels_from_scores(scores, far)
        assert "Latin America" not in tagger.explain_features(M, labels, 5, far)[0]["regions"]


def test_a_single_label_axis_has_no_near_miss() -> None:
    (rows_t, yt), (rows_v, yv) = synthetic_rows(300, 1, PLACES), synthetic_rows(100, 2, PLACES)
    xt, xv = [r["text"] for r in rows_t], [r["text"] for r in rows_v]
    single = NewsTagger(
        Featurizer(word_min_df=1), axes=("themes",), min_support=3, n_jobs=1, multi_label=False
    ).fit(xt, {"themes": yt["themes"]}, xv, {"themes": yv["themes"]})
    M = single.transform_docs(DOCS)
    scores = single.scores_from_features(M)
    labels = single.labels_from_scores(scores)
    assert all(len(given) == 1 for given in labels["themes"])
    runner_up = int(
        np.argsort(-scores["themes"][0])[1]
    )  # a threshold just above it: not a reason on this axis
    over = {single.labels_["themes"][runner_up]: float(scores["themes"][0, runner_up]) + NEAR_MISS / 2}
    assert single.near_misses(scores, labels, over) == [{}] * len(DOCS["text"])
    evidence = single.explain_features(M, labels, 5, over)
    assert [set(doc["themes"]) for doc in evidence] == [set(given) for given in labels["themes"]]


def test_predict_explains_a_near_miss_against_the_threshold_given_on_the_command_line(
    tagger: NewsTagger,
) -> None:
    """`newstag predict --explain --threshold "Latin America=..."`: the near miss names the threshold in force."""
    import json

    from pipeline.predict.encode import Batch, Encoding, score_chunk

    M = tagger.transform_docs(DOCS)
    j = tagger.labels_["regions"].index("Latin America")
    p = float(tagger.scores_from_features(M)["regions"][0, j])
    over = {"Latin America": round(min(p + NEAR_MISS / 2, 0.99), 2)}
    enc = Encoding("jsonl", tagger.axes, tagger.labels_, explain=True, overrides=over, primary=True)
    batch = Batch(ids=["a", "b", "c", "d"], titles=DOCS["title"], texts=DOCS["text"], truncated=[False] * 4)
    first = json.loads(score_chunk(tagger, enc, batch).decode().splitlines()[0])
    assert "Latin America" not in first["regions"]
    assert f"Latin America {p:.2f}, needs {over['Latin America']:.2f}" in json.dumps(first["evidence"])
