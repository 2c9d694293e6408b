"""Behaviour of a tagger trained on Reuters-21578 (1987) when it reads modern news it has never seen.

Minimum functionality, invariance and direction tests (Made-With-ML style) on sentences we wrote.
"""

from __future__ import annotations

import pytest

from pipeline.config import load_config

pytestmark = pytest.mark.slow

MODERN = [
    ("Ukrainian drones struck a refinery as Kyiv pressed its counteroffensive.", "Europe"),
    ("Houthi rebels in Yemen fired missiles at ships in the Red Sea.", "Middle East"),
    ("Traffic in Lagos ground to a halt after fuel queues lengthened across Nigeria.", "Africa"),
    ("Protesters marched through Caracas demanding a recount of the vote.", "Latin America"),
    ("Canberra announced new limits on foreign students at Australian universities.", "Asia-Pacific"),
    ("Vietnamese exporters in Hanoi expect record shipments of electronics.", "Asia-Pacific"),
    ("The Emirati minister met investors in Abu Dhabi on Tuesday.", "Middle East"),
    ("Kazakh officials in Astana signed a pipeline deal.", "Asia-Pacific"),
    ("Farmers near Addis Ababa brace for another failed rainy season.", "Africa"),
    ("Bangladesh garment workers in Dhaka walked out over wages.", "Asia-Pacific"),
    ("Police in Bogotá detained dozens after the clashes.", "Latin America"),
    ("Ottawa and Washington agreed to extend the softwood lumber talks.", "North America"),
    ("Pakistan and India traded fire across the Line of Control near Kashmir.", "Asia-Pacific"),
    ("The Kenyan shilling weakened as Nairobi sought IMF support.", "Africa"),
    ("Chilean copper miners in Antofagasta went on strike.", "Latin America"),
    ("Saudi Aramco raised its official selling prices for Asian buyers.", "Middle East"),
    ("Polish farmers blocked the border crossing with Ukraine.", "Europe"),
    ("Ghana's cocoa board cut its forecast for the season.", "Africa"),
    ("Peru's congress removed the president after a week of protests in Lima.", "Latin America"),
    ("Seoul and Tokyo agreed to share missile warning data.", "Asia-Pacific"),
    ("Israeli strikes hit Gaza as talks in Cairo stalled.", "Middle East"),
    ("Mexican officials in Monterrey welcomed new car plants.", "Latin America"),
    ("Turkish lira slid as Ankara cut rates again.", "Middle East"),
    ("A cyclone hit Mozambique's port of Beira.", "Africa"),
    ("Texas regulators approved new wind farms near Houston.", "North America"),
    ("Quebec's premier met Ontario counterparts in Toronto.", "North America"),
    ("Hungarian ministers in Budapest defended the veto.", "Europe"),
    ("Indonesian nickel smelters in Sulawesi expanded output.", "Asia-Pacific"),
]
# One-sentence stories are the hardest case: a single mention, no dateline, no context. Full articles
# repeat their places; these floors are what a 1987-trained model with the gazetteer reaches on 28 sentences.
MIN_HIT_RATE = 0.75
CAPITALS = ["Kyiv", "Sanaa", "Abuja", "Caracas", "Canberra", "Hanoi"]


@pytest.fixture(scope="module")
def reuters_tagger(reuters_dir, tmp_path_factory):
    """The default config's tagger, fitted in process on ModApte (no MLflow)."""
    from pipeline.model import tagger_from_config
    from pipeline.prepare import load_prepared, prepare, split_frame

    tmp = tmp_path_factory.mktemp("reuters")
    cfg = load_config("configs/reuters.yaml", [f"processed_dir={tmp}", f"corpus.path={reuters_dir}"])
    data = load_prepared(prepare(cfg, say=lambda _: None).path)
    (xt, yt), (xv, yv) = split_frame(data["train"]), split_frame(data["validation"])
    return load_config, cfg, tagger_from_config(cfg).fit(xt, yt, xv, yv)


def test_modern_places_get_their_region(reuters_tagger) -> None:
    _, _, tagger = reuters_tagger
    pred = tagger.predict_labels([t for t, _ in MODERN])["regions"]
    misses = [(t, p) for p, (t, r) in zip(pred, MODERN, strict=True) if r not in p]
    wrong = [(t, p) for p, (t, r) in zip(pred, MODERN, strict=True) if set(p) - {r}]
    assert len(misses) <= len(MODERN) * (1 - MIN_HIT_RATE), misses
    assert len(wrong) <= 2, wrong  # a region it was not about is rarely added


def test_a_second_mention_makes_a_missed_region_certain(reuters_tagger) -> None:
    _, _, tagger = reuters_tagger
    pred = tagger.predict_labels(
        [
            f"{t} Officials in {capital} confirmed it."
            for (t, _), capital in zip(MODERN[:6], CAPITALS, strict=True)
        ]
    )["regions"]
    assert pred == [[r] for _, r in MODERN[:6]]


def test_invariance_a_person_name_does_not_move_the_region(reuters_tagger) -> None:
    _, _, tagger = reuters_tagger
    base = "{} told reporters in Nairobi that Kenya's maize harvest would be late."
    pred = tagger.predict_labels([base.format(n) for n in ("Mr Smith", "Ms Okafor", "Dr Tanaka")])["regions"]
    assert pred[0] == pred[1] == pred[2] and "Africa" in pred[0]


def test_direction_adding_a_place_adds_its_region(reuters_tagger) -> None:
    _, _, tagger = reuters_tagger
    before = "The central bank raised interest rates by half a point on Thursday."
    after = before + " Markets in Jakarta fell sharply."
    scores = tagger.predict_scores([before, after])["regions"]
    j = tagger.labels_["regions"].index("Asia-Pacific")
    assert scores[1, j] > scores[0, j] + 0.2


def test_themes_follow_the_subject_not_the_place(reuters_tagger) -> None:
    _, _, tagger = reuters_tagger
    docs = [
        "Crude oil prices rose after OPEC agreed to cut output in Vienna.",
        "Wheat and corn futures fell as the harvest outlook improved in Kansas.",
        "The company said quarterly net profit rose 12 pct and it raised its dividend.",
    ]
    pred = tagger.predict_labels(docs)["themes"]
    assert "energy" in pred[0] and "agriculture" in pred[1] and "corporate" in pred[2], pred
