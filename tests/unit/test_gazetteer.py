"""Behaviour of the gazetteer and its feature block, on sentences written for these tests."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pipeline.gazetteer import KINDS, TITLE_SEP, Gazetteer, GazetteerVectorizer, combine

REGIONS = ("Africa", "Asia-Pacific", "Europe", "Latin America", "Middle East", "North America")

# A small hand-written mapping; the real one comes from configs/taxonomy/regions.yaml.
COUNTRY_TO_REGION = {
    "NG": "Africa",
    "KE": "Africa",
    "ET": "Africa",
    "AU": "Asia-Pacific",
    "VN": "Asia-Pacific",
    "KZ": "Asia-Pacific",
    "BD": "Asia-Pacific",
    "UA": "Europe",
    "RU": "Europe",
    "GB": "Europe",
    "FR": "Europe",
    "VE": "Latin America",
    "BR": "Latin America",
    "CO": "Latin America",
    "MX": "Latin America",
    "YE": "Middle East",
    "AE": "Middle East",
    "IR": "Middle East",
    "SA": "Middle East",
    "TR": "Middle East",
    "US": "North America",
    "CA": "North America",
}

TAXONOMY = Path(__file__).resolve().parents[2] / "configs" / "taxonomy" / "regions.yaml"


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    g = Gazetteer()
    g.find("warm up")  # build the shared index once for the module
    return g


def countries(g: Gazetteer, text: str) -> set[str]:
    return set(g.country_counts(text))


def fitted(**params: object) -> GazetteerVectorizer:
    params.setdefault("country_to_region", COUNTRY_TO_REGION)
    params.setdefault("regions", REGIONS)
    return GazetteerVectorizer(**params).fit()


def dense_row(vec: GazetteerVectorizer, doc: object) -> dict[str, float]:
    row = vec.transform([doc]).toarray()[0]
    names = vec.get_feature_names_out()
    return {str(n): float(v) for n, v in zip(names, row, strict=True) if v}


# --------------------------------------------------------------------------------------------- Gazetteer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ukraine's forces near Kyiv dug in overnight.", {"UA"}),
        ("Houthis in Yemen fired drones at a tanker.", {"YE"}),
        ("Morning traffic in Lagos crawled after the rain.", {"NG"}),
        ("Students led protests in Caracas on Sunday.", {"VE"}),
        ("Canberra announced a new visa scheme.", {"AU"}),
        ("A Kazakh wheat trader said prices were firm.", {"KZ"}),
        ("Vietnamese exporters shipped more coffee.", {"VN"}),
        ("Floods in Bangladesh cut rice output.", {"BD"}),
        ("The Emirati minister met investors.", {"AE"}),
        ("Officials in Hanoi approved the budget.", {"VN"}),
        ("A tech hub is growing in Nairobi.", {"KE"}),
        ("Leaders gathered in Addis Ababa.", {"ET"}),
        ("São Paulo shares rose.", {"BR"}),
        ("Sao Paulo shares rose.", {"BR"}),
        ("Bogotá raised its fuel tax.", {"CO"}),
        ("Bogota raised its fuel tax.", {"CO"}),
        ("Talks resumed in Tehran.", {"IR"}),
        ("Riyadh cut its oil output.", {"SA"}),
        ("Ankara summoned the envoy.", {"TR"}),
        ("Mexico City imposed water limits.", {"MX"}),
    ],
)
def test_modern_places_map_to_their_country(gaz: Gazetteer, text: str, expected: set[str]) -> None:
    assert countries(gaz, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "of",
        "nice weather for a turkey dinner",
        "Nice weather again today.",
        "Split the bill and read the mobile app.",
        "The EU, NATO and the UN met in a hotel.",
        "Growth across Latin America slowed.",
        "Ships crossed the South China Sea.",
    ],
)
def test_words_and_regions_that_are_not_countries(gaz: Gazetteer, text: str) -> None:
    assert gaz.find(text) == []
    assert gaz.country_counts(text) == {}


def test_matching_is_case_sensitive_except_in_all_caps(gaz: Gazetteer) -> None:
    assert countries(gaz, "Turkey raised rates.") == {"TR"}
    assert countries(gaz, "we ate turkey.") == set()
    assert countries(gaz, "TURKEY RAISES RATES") == {"TR"}
    assert countries(gaz, "NAIROBI SEES GROWTH") == {"KE"}
    assert countries(gaz, "MOBILE PHONE SALES RISE") == set()


def test_longest_name_wins_and_compounds_split(gaz: Gazetteer) -> None:
    assert countries(gaz, "Papua New Guinea signed a deal.") == {"PG"}
    assert countries(gaz, "Voters in Guinea-Bissau went to the polls.") == {"GW"}
    assert countries(gaz, "Iran-backed groups and a U.S.-led coalition.") == {"IR", "US"}
    assert countries(gaz, "The Democratic Republic of the Congo and Côte d’Ivoire.") == {"CD", "CI"}
    assert countries(gaz, "British Columbia had wildfires.") == {"CA"}


def test_find_reports_surface_code_and_kind(gaz: Gazetteer) -> None:
    hits = gaz.find("Iranians in Tehran watched the Kremlin and Iran's rivals.")
    assert hits == [
        ("Iranians", "IR", "demonym"),
        ("Tehran", "IR", "capital"),
        ("Kremlin", "RU", "other"),
        ("Iran", "IR", "country"),
    ]
    assert all(kind in KINDS for _, _, kind in hits)


def test_country_counts_adds_up_mentions(gaz: Gazetteer) -> None:
    text = "Iran said Iranian ships left Tehran. The UK and Britain's allies watched."
    assert gaz.country_counts(text) == {"IR": 3, "GB": 2}


def test_options_drop_places_and_demonyms() -> None:
    text = "Iranians in Tehran, Texas and Iran."
    countries_only = Gazetteer(include_cities=False, include_subdivisions=False)
    assert countries_only.find(text) == [("Iranians", "IR", "demonym"), ("Iran", "IR", "country")]
    with_states = Gazetteer(include_cities=False, include_subdivisions=True, include_demonyms=False)
    assert with_states.country_counts(text) == {"IR": 2, "US": 1}  # Tehran is also a province
    bare = Gazetteer(include_cities=False, include_subdivisions=False, include_demonyms=False)
    assert bare.country_counts(text) == {"IR": 1}


def test_index_is_shared_per_parameter_set(gaz: Gazetteer) -> None:
    assert Gazetteer()._index is gaz._index
    assert Gazetteer(include_cities=False)._index is not gaz._index
    stats = gaz.stats
    assert stats["countries"] >= 240
    assert stats["by_kind_city"] > 1000
    assert stats["by_kind_demonym"] > 200


def test_gazetteer_pickles_without_its_index(gaz: Gazetteer) -> None:
    blob = pickle.dumps(gaz)
    assert len(blob) < 1000
    assert pickle.loads(blob).find("Canberra") == [("Canberra", "AU", "capital")]


def test_twenty_megabyte_text_completes(gaz: Gazetteer) -> None:
    chunk = "the committee talked about prices and wages for a long while, " * 15 + "then Nairobi replied. "
    n = 20_000_000 // len(chunk) + 1
    text = chunk * n
    assert len(text) >= 20_000_000
    assert gaz.country_counts(text) == {"KE": n}


def test_long_runs_of_capitals_complete(gaz: Gazetteer) -> None:
    text = "Aa-Bb-Cc Dd " * 20_000 + "A " * 50_000 + "NEW SOUTH UNITED " * 20_000 + "Kenya"
    assert gaz.country_counts(text) == {"KE": 1}


# ------------------------------------------------------------------------------------ GazetteerVectorizer


def test_regions_then_countries_columns() -> None:
    vec = fitted(include_countries=True)
    names = list(vec.get_feature_names_out())
    assert names[:6] == [f"region={r}" for r in REGIONS]
    assert names[6:] == sorted(names[6:])
    assert "country=UA" in names and "country=US" in names


def test_regions_of_modern_places() -> None:
    vec = fitted(mode="binary")
    assert dense_row(vec, "Ankara summoned the envoy.") == {"region=Middle East": 1.0}
    assert dense_row(vec, "Mexico City imposed water limits.") == {"region=Latin America": 1.0}
    assert dense_row(vec, "Houthis fired on ships.") == {"region=Middle East": 1.0}
    assert dense_row(vec, "a quiet day") == {}


def test_modes() -> None:
    doc = "Kyiv and Kyiv and Moscow, then Lagos."
    assert dense_row(fitted(mode="log"), doc) == pytest.approx(
        {"region=Europe": np.log1p(3.0), "region=Africa": np.log1p(1.0)}, rel=1e-6
    )
    assert dense_row(fitted(mode="binary"), doc) == {"region=Europe": 1.0, "region=Africa": 1.0}
    share = dense_row(fitted(mode="share", include_countries=True), doc)
    assert share["region=Europe"] == pytest.approx(0.75)
    assert share["region=Africa"] == pytest.approx(0.25)
    assert share["country=UA"] == pytest.approx(0.5)
    assert share["country=RU"] == pytest.approx(0.25)


def test_title_weight_for_pairs_and_combined_strings() -> None:
    vec = fitted(mode="share", title_weight=3.0)
    expected = {"region=Africa": 0.75, "region=Europe": 0.25}
    assert dense_row(vec, ("Lagos", "Talks with Kyiv.")) == pytest.approx(expected)
    assert dense_row(vec, combine("Lagos", "Talks with Kyiv.")) == pytest.approx(expected)
    assert combine("", "body only") == "body only"
    assert TITLE_SEP in combine("t", "b")
    unweighted = fitted(mode="share", title_weight=1.0)
    assert dense_row(unweighted, ("Lagos", "Talks with Kyiv.")) == pytest.approx(
        {"region=Africa": 0.5, "region=Europe": 0.5}
    )


def test_countries_without_region_are_ignored_in_region_block() -> None:
    vec = fitted(mode="binary", include_countries=True)
    assert dense_row(vec, "Fiji and Kenya.") == {"region=Africa": 1.0, "country=FJ": 1.0, "country=KE": 1.0}


def test_countries_only_block() -> None:
    vec = GazetteerVectorizer(country_to_region=None, include_countries=True, mode="binary").fit(["x"])
    assert not any(str(n).startswith("region=") for n in vec.get_feature_names_out())
    assert dense_row(vec, "Hanoi") == {"country=VN": 1.0}


def test_output_is_sparse_and_typed() -> None:
    docs = ["Kenya", "", None, ("Riyadh", "Tehran"), "nothing here"]
    mat = fitted(dtype=np.float64).transform(docs)
    assert sp.isspmatrix_csr(mat) or isinstance(mat, sp.csr_array | sp.csr_matrix)
    assert mat.shape == (5, len(REGIONS))
    assert mat.dtype == np.float64
    assert fitted().transform(docs).dtype == np.float32
    assert mat[1].nnz == 0 and mat[2].nnz == 0


def test_estimator_contract() -> None:
    vec = GazetteerVectorizer(country_to_region=COUNTRY_TO_REGION, regions=REGIONS)
    assert vec.get_params()["mode"] == "log"
    with pytest.raises(NotFittedError):
        vec.transform(["Kenya"])
    assert vec.fit(["Kenya"]) is vec
    assert clone(vec).get_params() == vec.get_params()
    assert not hasattr(clone(vec), "feature_names_")
    with pytest.raises(TypeError):
        vec.transform("Kenya")


@pytest.mark.parametrize(
    "params",
    [
        {"mode": "tfidf"},
        {"title_weight": -1.0},
        {"country_to_region": {"KE": "Antarctica"}},
        {"country_to_region": None, "include_countries": False},
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object]) -> None:
    base: dict[str, object] = {"country_to_region": COUNTRY_TO_REGION, "regions": REGIONS}
    with pytest.raises(ValueError):
        GazetteerVectorizer(**{**base, **params}).fit()


def test_vectorizer_pickles_small_and_transforms_the_same() -> None:
    vec = fitted(include_countries=True)
    docs = ["Protests in Caracas", ("Nairobi", "Hanoi and Bogotá")]
    buf = io.BytesIO()
    joblib.dump(vec, buf)
    assert buf.tell() < 50_000
    buf.seek(0)
    loaded = joblib.load(buf)
    assert (loaded.transform(docs) != vec.transform(docs)).nnz == 0


def test_every_emitted_country_is_in_the_taxonomy(gaz: Gazetteer) -> None:
    if not TAXONOMY.exists():
        pytest.skip("configs/taxonomy/regions.yaml not written yet")
    import yaml

    tax = yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))
    in_regions = {code for codes in tax["regions"].values() for code in codes}
    no_region = set(tax.get("no_region") or {})
    assert gaz.codes - in_regions - no_region == set()


# --------------------------------------------------------------------------- leaders and institutions of today


def test_every_hand_written_entry_maps_to_a_country_of_the_taxonomy(gaz: Gazetteer) -> None:
    """Each name of the hand-written list (leaders, institutions, groups, ...) is found in text as itself and
    names a country that has a region in configs/taxonomy/regions.yaml."""
    from pipeline.gazetteer import _EXTRA, _TODAY, TODAY_AS_OF
    from pipeline.taxonomy import country_regions

    regions = country_regions(TAXONOMY)
    assert len(_TODAY) >= 40 and set(_TODAY) <= set(_EXTRA)
    assert TODAY_AS_OF[:2] == "20" and len(TODAY_AS_OF) == 7  # a year and a month
    for name, iso, kind in _EXTRA:
        if iso is None:
            continue
        assert iso in regions, f"{name!r} -> {iso}: not in a region of {TAXONOMY}"
        hits = gaz.find(f"On Monday {name} said so.")
        assert hits and hits[-1][:2] == (name, iso), f"{name!r} is found as {hits}"
        assert kind in KINDS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Indian Prime Minister Narendra Modi met Chinese President Xi Jinping", {"IN", "CN"}),
        ("Claudia Sheinbaum rejected the tariffs.", {"MX"}),
        ("M23 rebels seized Goma.", {"CD"}),
        ("The Kremlin and the Pentagon traded accusations.", {"RU", "US"}),
        ("Hamas and the Houthis praised the attack.", {"PS", "YE"}),
        ("The Rapid Support Forces shelled a camp.", {"SD"}),
        ("Zelenskyy spoke to Starmer, Macron and Merz.", {"UA", "GB", "FR", "DE"}),
    ],
)
def test_leaders_and_groups_of_today_name_their_country(
    gaz: Gazetteer, text: str, expected: set[str]
) -> None:
    assert {iso for _, iso, _ in gaz.find(text)} == expected


def test_country_names_and_neighbours_for_scoring(gaz: Gazetteer) -> None:
    names, neighbours = gaz.country_names(), gaz.neighbours()
    assert gaz.codes <= set(names)
    assert names["VE"] == "Venezuela" and names["US"] == "United States" and names["PS"] == "Palestine"
    assert neighbours["US"] == ["CA", "MX"] and "US" in neighbours["MX"] and "IE" in neighbours["GB"]
    assert all(iso in neighbours[n] for iso, ns in neighbours.items() for n in ns if n in neighbours)


def test_the_run_filter_never_drops_a_hit(gaz: Gazetteer) -> None:
    """A run none of whose pieces starts a key is skipped without a scan (``places._run_hits``): on tricky
    runs and on every run of this file's texts, the hits are those of the full scan."""
    from pipeline import places

    idx = gaz._index
    tricky = (
        "U.S.-backed forces met in The Hague, then in Côte d'Ivoire and ST. LOUIS; Franco-German talks, "
        "Guinea-Bissau, New York-based Sao Tome and Principe officials, the U.K. and the UAE. "
        "The Company Said On Monday That It Would Sell Its Unit. Rio de Janeiro-born Bosnia and Herzegovina"
    )
    texts = [
        tricky,
        "Ukraine's forces near Kyiv dug in overnight. Houthis in Yemen fired drones at a tanker.",
        "Students led protests in Caracas on Sunday. The Emirati minister met investors in Addis Ababa.",
        "São Paulo shares rose; Bogota raised its fuel tax; Mexico City imposed water limits.",
        "The EU, NATO and the UN met in a hotel. Growth across Latin America slowed.",
        "NEW YORK, March 3 - Texaco Inc Said It Agreed With Pennzoil Co On The Sale Of Its West Texas Unit.",
        "Prime Minister Narendra Modi met Chinese President Xi Jinping at the Shanghai Cooperation Organisation.",
        "Sri Lanka-born St. Kitts and Nevis envoy; Saint Vincent and the Grenadines; Trinidad-and-Tobago.",
    ]
    runs = {run for text in texts for run in places._runs(text)}
    assert len(runs) > 30
    skipped = 0
    for run in sorted(runs):
        idx.runs.pop(run, None)
        filtered = places._run_hits(idx, run)
        skipped += filtered is places._NO_HITS
        idx.runs.pop(run, None)
        assert filtered[0] == tuple(places._hits_of_run(idx, run)), run  # the scan without the filter
    assert skipped >= 3  # the filter does skip runs: the comparison above is not vacuous


def test_the_index_parts_carry_the_first_pieces_the_run_filter_reads(gaz: Gazetteer) -> None:
    """A compiled model saves the keys' first pieces (``index_parts``), so loading it skips computing them;
    parts saved before they were give the same set, computed on first use."""
    from pipeline import places

    parts = places.index_parts(gaz._index)
    loaded = places.index_from_parts(**parts)
    older = places.index_from_parts(**{k: v for k, v in parts.items() if k != "firsts"})
    assert not older.firsts
    places._run_hits(older, "Nowhere Land")  # the first scan fills them
    assert loaded.firsts == older.firsts and len(loaded.firsts) > 1000
    assert {"United", "Côte", "Sao", "U", "Rio"} <= loaded.firsts
