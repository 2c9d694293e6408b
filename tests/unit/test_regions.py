"""Regions at scoring time (pipeline/scoring.py ``ScoringMixin``): length-aware mention counts, the primary
region, the publication's home country and place evidence, on a small tagger with the gazetteer block
trained in seconds on the synthetic corpus, and through ``newstag predict`` and the pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from fixtures_model import write_model_folder
from synthetic import synthetic_corpus, synthetic_rows

from pipeline.errors import UsageError
from pipeline.features import Featurizer
from pipeline.gazetteer import Gazetteer
from pipeline.loading import load_tagger
from pipeline.model import NewsTagger
from pipeline.places import doc_counts
from pipeline.predict import predict_command
from pipeline.scoring import PLACE_PREFIX
from pipeline.taxonomy import country_regions

TAXONOMY = "configs/taxonomy/regions.yaml"
LONG_FILLER = " ".join(["The committee met again on Tuesday and the talks went on."] * 40)  # ~2,300 chars

DOCS = {
    "title": ["", "", "", "", "", ""],
    "text": [
        "Protests spread across Caracas.",
        "Congress passed the budget in Washington on Friday.",
        "US and Mexican officials met in Washington over tariffs and migration at the border.",
        "US and Canadian officials met in Ottawa over tariffs.",
        "The US struck a Venezuelan boat off Caracas, Washington said.",
        "Nothing here names a place at all.",
    ],
}


# Five regions, so that a home (the US) and its neighbours (Canada, Mexico) have regions of their own.
PLACES = {
    "Europe": ["Paris", "Berlin", "Madrid", "Warsaw"],
    "Asia-Pacific": ["Tokyo", "Jakarta", "Manila", "Sydney"],
    "Africa": ["Nairobi", "Lagos", "Accra", "Dakar"],
    "North America": ["Washington", "Chicago", "Ottawa", "Toronto"],
    "Latin America": ["Caracas", "Bogota", "Lima", "Guadalajara"],
}


def corpus(n: int, seed: int) -> tuple[list[str], dict[str, list[list[str]]]]:
    rows, labels = synthetic_rows(n, seed, PLACES)
    return [r["text"] for r in rows], labels


def fit_tagger(**featurizer: object) -> NewsTagger:
    (xt, yt), (xv, yv) = corpus(300, 1), corpus(100, 2)
    f = Featurizer(
        word_min_df=1,
        gazetteer=True,
        country_to_region=country_regions(TAXONOMY),
        gazetteer_mode="log+share",
        **featurizer,
    )
    return NewsTagger(f, axes=("regions", "themes"), min_support=3, n_jobs=1).fit(xt, yt, xv, yv)


@pytest.fixture(scope="module")
def tagger() -> NewsTagger:
    """Trained with a 300-character lede and the US as its home."""
    return fit_tagger(gazetteer_lede_chars=300, home="US")


@pytest.fixture(scope="module")
def scorer(tagger: NewsTagger):
    return tagger.compile()


# --------------------------------------------------------------------------- length-aware counts


def test_a_passing_mention_deep_in_a_long_body_hardly_counts() -> None:
    idx = Gazetteer()._index
    short = "Protests spread across Caracas."
    long_doc = f"Protests spread across Caracas. {LONG_FILLER} Officials in Berlin said nothing."
    assert doc_counts(idx, short, 2.0, 500) == doc_counts(idx, short, 2.0, 0) == {"VE": 1}
    counts = doc_counts(idx, long_doc, 2.0, 500)
    assert counts["VE"] == 1.0  # in the lede: counts in full
    assert counts["DE"] == pytest.approx(500 / len(long_doc))  # past it: its density per lede-length
    assert doc_counts(idx, long_doc, 2.0, 0) == {"VE": 1, "DE": 1}
    titled = doc_counts(idx, ("Berlin talks", long_doc), 2.0, 500)
    assert titled["DE"] == pytest.approx(2.0 + 500 / len(long_doc))  # a title counts in full


def test_the_scorer_counts_like_the_tagger_with_a_lede(tagger, scorer) -> None:
    docs = {"title": ["", "Berlin"], "text": [DOCS["text"][0], f"Caracas. {LONG_FILLER} Berlin and Lagos."]}
    want, got = tagger.transform_docs(docs), scorer.transform_docs(docs)
    assert np.array_equal(want.indices, got.indices) and np.array_equal(want.data, got.data)
    assert scorer.meta["gaz"]["lede_chars"] == 300


# --------------------------------------------------------------------------- tag, home


def _scipy(m):
    """A scipy matrix of ``m`` (the scorer's numpy ``Csr`` or the tagger's scipy matrix)."""
    return m.to_scipy() if hasattr(m, "to_scipy") else m


def test_tag_without_home_is_the_plain_scoring_path(tagger, scorer) -> None:
    for model in (tagger, scorer):
        M, scores, labels = model.tag(DOCS, home=None)
        plain = model.predict_scores(DOCS)
        assert all(np.array_equal(scores[a], plain[a]) for a in plain)
        assert labels == model.labels_from_scores(plain)
        assert (_scipy(model.transform_docs(DOCS)) != _scipy(M)).nnz == 0


def test_the_model_carries_its_home_and_the_gazetteer_tables(tagger, scorer) -> None:
    assert tagger.default_home() == scorer.default_home() == "US"
    assert scorer.meta["gaz"]["neighbours"]["US"] == ["CA", "MX"]
    assert scorer.meta["gaz"]["country_names"]["VE"] == "Venezuela"
    assert scorer.resolve_home("none") is None and scorer.resolve_home("") is None
    assert scorer.resolve_home("gb") == "GB"
    with pytest.raises(ValueError, match="not a country code"):
        scorer.resolve_home("XX")
    plain = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1)
    (xt, yt), (xv, yv) = synthetic_corpus(120, 1), synthetic_corpus(40, 2)
    plain.fit(xt, yt, xv, yv)
    assert plain.resolve_home("none") is None
    with pytest.raises(ValueError, match="cannot apply a home"):
        plain.resolve_home("US")  # no gazetteer block


def test_home_alone_makes_no_region_a_neighbour_or_a_peer_keeps_it(tagger, scorer) -> None:
    """Home US: Washington alone is no region; US-Mexico and US-Canada keep North America's evidence."""
    layout = scorer._gaz_layout()
    col = layout.start + layout.country_index["US"]
    M = scorer.transform_docs(DOCS)
    H, allowed = scorer.without_home(M, "US")
    M, H = M.to_scipy(), H.to_scipy()
    assert allowed.tolist() == [False, False, True, True, False, False]
    assert M[1, col] > 0 and H[1, col] == 0  # Washington alone: removed
    assert H[2, col] == M[2, col] and H[3, col] == M[3, col]  # with Mexico (a neighbour), Canada (a peer)
    assert H[4, col] == 0 and (H[4] != M[4]).nnz  # with Venezuela only: removed
    assert (H[0] != M[0]).nnz == 0 and (H[5] != M[5]).nnz == 0  # no US mention: untouched
    share = layout.start + layout.n_names + layout.regions.index("North America")
    assert H[1, share] == 0
    for model in (tagger, scorer):
        _, _, plain = model.tag(DOCS, home=None)
        _, _, labels = model.tag(DOCS, home="US")
        assert "North America" in plain["regions"][1]
        assert "North America" not in labels["regions"][1]  # Congress in Washington: the home story
        assert "North America" in labels["regions"][3]  # US and Canada: still North America
        _, _, mine = model.tag(DOCS)  # the model's own home is the US too
        assert mine == labels
    # both loaders agree bit for bit under a home too
    a, b = tagger.tag(DOCS, home="US"), scorer.tag(DOCS, home="US")
    assert all(np.array_equal(a[1][x], b[1][x]) for x in a[1]) and a[2] == b[2]


def test_a_passing_foreign_mention_stays_passing_under_home(scorer) -> None:
    """Removing the home's mentions keeps the share denominator: one Berlin among ten US mentions stays a
    tenth of the story."""
    text = "Washington. " * 9 + "Berlin."
    M = scorer.transform_docs({"title": [""], "text": [text]})
    H, _ = scorer.without_home(M, "US")
    M, H = M.to_scipy(), H.to_scipy()
    layout = scorer._gaz_layout()
    europe = layout.start + layout.n_names + layout.regions.index("Europe")
    assert H[0, europe] == pytest.approx(M[0, europe]) == pytest.approx(0.1 * layout.weight)


# --------------------------------------------------------------------------- primary region


def test_primary_region_is_the_most_probable_predicted_region(scorer) -> None:
    M, scores, labels = scorer.tag(DOCS, home=None)
    primary = scorer.primary_regions(scores, labels, M)
    names = scorer.labels_["regions"]
    for row, probs, got in zip(labels["regions"], scores["regions"], primary, strict=True):
        if not row:
            assert got is None
        else:
            assert got == max(row, key=lambda r: probs[names.index(r)])


def test_a_probability_tie_goes_to_the_region_with_more_mentions(scorer) -> None:
    docs = {"title": [""], "text": ["Berlin, Paris and Madrid met Caracas."]}
    M = scorer.transform_docs(docs)
    tie = np.zeros((1, len(scorer.labels_["regions"])))
    labels = {"regions": [["Latin America", "Europe"]], "themes": [[]]}
    assert scorer.primary_regions({"regions": tie}, labels, M) == ["Europe"]  # three mentions against one
    assert scorer.primary_regions({"regions": tie}, labels) == ["Europe"]  # no features: label order


# --------------------------------------------------------------------------- place evidence


def test_explain_places_names_the_mentions_behind_a_region(scorer) -> None:
    M, _, labels = scorer.tag(DOCS, home=None)
    plain = scorer.explain_features(M, labels, 5)
    named = scorer.explain_places(M, labels, DOCS["title"], DOCS["text"], 5)
    for i, doc in enumerate(named):
        assert doc["themes"] == plain[i]["themes"]  # other axes: as before
        for terms in doc["regions"].values():
            assert not any(t.startswith("gaz:") for t, _ in terms)
            assert [w for _, w in terms] == sorted((w for _, w in terms), reverse=True)
    if "Latin America" in labels["regions"][0]:
        terms = dict(named[0]["regions"]["Latin America"])
        assert terms[f"{PLACE_PREFIX}Caracas (Venezuela)"] > 0
    # the gazetteer's weight is shared out, not lost: mentions add up to the gazetteer columns' sum
    i, label = next((i, r) for i, rows in enumerate(labels["regions"]) for r in rows)
    everything = scorer.explain_places(M, labels, DOCS["title"], DOCS["text"], 1000)[i]["regions"][label]
    row = M.getrow(i)
    j = scorer.labels_["regions"].index(label)
    contrib = row.data * scorer.coef_[row.indices, j]
    gaz = scorer._gaz_layout().start
    positive_places = sum(w for t, w in everything if t.startswith(PLACE_PREFIX))
    assert positive_places == pytest.approx(contrib[row.indices >= gaz].clip(min=0).sum(), abs=0.05)


# --------------------------------------------------------------------------- predict and pyfunc


@pytest.fixture(scope="module")
def model_dir(tagger, tmp_path_factory) -> Path:
    return write_model_folder(tagger, tmp_path_factory.mktemp("regions-model"))


def _predict(model_dir: Path, tmp_path: Path, **options: object) -> list[dict]:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(DOCS["text"])))
    out.unlink(missing_ok=True)
    predict_command(str(model_dir), str(inp), str(out), quiet=True, **options)
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_predict_home_option(model_dir, tagger, tmp_path) -> None:
    mine = _predict(model_dir, tmp_path)  # the model's own home: US
    us = _predict(model_dir, tmp_path, home="US")
    none = _predict(model_dir, tmp_path, home="none")
    assert mine == us
    _, _, want = tagger.tag(DOCS, home=None)
    assert [r["regions"] for r in none] == want["regions"]
    _, _, want = tagger.tag(DOCS, home="US")
    assert [r["regions"] for r in us] == want["regions"]
    assert all((r["primary_region"] is None) == (not r["regions"]) for r in us + none)
    with pytest.raises(UsageError, match="--home"):
        _predict(model_dir, tmp_path, home="Atlantis")


def test_predict_explain_names_places(model_dir, tmp_path) -> None:
    rows = _predict(model_dir, tmp_path, explain=True, home="none")
    terms = [t for r in rows for per in r["evidence"]["regions"].values() for t, _ in per]
    assert any(t.startswith(PLACE_PREFIX) and "(" in t for t in terms)
    assert not any(t.startswith("gaz:") for t in terms)


def test_pyfunc_adds_the_primary_region_and_takes_a_home_at_load(model_dir, tracking_uri) -> None:
    import mlflow
    import pandas as pd

    from pipeline import tracking

    example = pd.DataFrame({"text": DOCS["text"][:2]})
    tagger, _ = load_tagger(str(model_dir))
    tracking.setup_tracking(tracking_uri)
    tracking.ensure_experiment("tests", "regions")
    with mlflow.start_run():
        info = tracking.log_tagger(joblib.load(model_dir / "artifacts" / "tagger.joblib"), example, {})
    frame = pd.DataFrame({"text": DOCS["text"]})
    out = mlflow.pyfunc.load_model(info.model_uri).predict(frame)
    assert list(out.columns) == ["regions", "themes", "primary_region", "scores"]
    M, scores, labels = tagger.tag(frame)  # the model's own home
    assert out["regions"].tolist() == labels["regions"]
    assert out["primary_region"].tolist() == tagger.primary_regions(scores, labels, M)
    out = mlflow.pyfunc.load_model(info.model_uri, model_config={"home": "none"}).predict(frame)
    assert out["regions"].tolist() == tagger.tag(frame, home=None)[2]["regions"]
