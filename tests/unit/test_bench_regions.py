"""The regions rows of the benchmark (issue 15): segment figures (bench.regions), segments of the world
dataset (bench.data), scoring a child run into them and their goals (bench.run), the results.md table
(bench.report), and each system's primary region (bench.systems), on hand-made data and small models."""

from __future__ import annotations

from typing import Any

import pytest
from synthetic import synthetic_rows

from bench.data import LONG_CHARS, Segment, segment_rows, world_regions
from bench.regions import median_segments, no_region_share, primary_top1, segment_figures
from bench.report import markdown, segment_table
from bench.run import goal_targets, score_run, single_label_axis
from bench.systems import GazetteerSystem, NewstagSystem, PlainSystem, primary_among

REGIONS = ["Africa", "Asia-Pacific", "Europe", "Latin America", "Middle East", "North America"]
THEMES = ["diplomacy", "sports"]


# --------------------------------------------------------------------------- figures


def test_no_region_share_counts_only_documents_with_a_gold_region() -> None:
    gold = [["Europe"], ["Africa", "Europe"], [], ["Asia-Pacific"]]
    pred = [[], ["Africa"], [], []]
    assert no_region_share(gold, pred) == (2 / 3, 3)
    assert no_region_share([[]], [[]]) == (None, 0)


def test_primary_top1_is_scored_on_single_region_documents_and_none_is_a_miss() -> None:
    gold = [["Europe"], ["Africa", "Europe"], ["Asia-Pacific"], ["Europe", "Europe"], ["Africa"]]
    primary = ["Europe", "Africa", None, "Europe", "Europe"]
    assert primary_top1(gold, primary) == (2 / 4, 4)


def test_segment_figures_leave_unknown_gold_out() -> None:
    gold = [["Europe"], None, ["Africa", "Europe"], ["Asia-Pacific"], []]
    pred = [["Europe"], ["Africa"], ["Europe"], [], []]
    primary = ["Europe", "Africa", "Europe", None, None]
    fig = segment_figures(gold, pred, primary, REGIONS)
    # known: 4 documents, gold 4 labels, predicted 2, both right: micro-F1 = 2*2 / (4 + 2)
    assert fig["n_docs"] == 4
    assert fig["micro_f1"] == pytest.approx(4 / 6)
    # macro over the regions with gold support: Europe 1.0 (2 of 2 found, 2 predicted), Africa 0, Asia 0
    assert fig["macro_f1"] == pytest.approx(1 / 3)
    assert (fig["no_region_share"], fig["n_with_region"]) == (pytest.approx(1 / 3), 3)
    assert (fig["primary_top1"], fig["n_single_region"]) == (pytest.approx(1 / 2), 2)
    assert segment_figures(gold, pred, None, REGIONS)["primary_top1"] is None  # no primary: not a miss
    assert segment_figures([None], [["Europe"]], None, REGIONS)["micro_f1"] is None


def test_median_segments_takes_each_figure_over_runs() -> None:
    runs = [
        {"a": {"n_docs": 3, "n_with_region": 3, "n_single_region": 2, "micro_f1": v, "macro_f1": None}}
        for v in (0.9, 0.7, 0.8)
    ]
    got = median_segments(runs)["a"]
    assert got["micro_f1"] == pytest.approx(0.8) and got["macro_f1"] is None and got["n_docs"] == 3


# --------------------------------------------------------------------------- segments of the dataset


def test_segments_split_a_corpus_by_body_length_and_keep_known_gold() -> None:
    long_text = "x" * (LONG_CHARS + 1)
    docs = {
        "corpus": ["wcep2025", "reuters", "reuters", "reuters", "wcep2025"],
        "text": ["short item", long_text, "x" * LONG_CHARS, "short wire", "no country"],
        "regions": [["Europe"], ["Africa"], [], ["Europe"], None],
    }
    view = world_regions({"labels": {"regions": REGIONS}})
    assert view.multi_label and view.test_corpora == ("wcep2025",)
    rows = {r["name"]: r for r in segment_rows(view.segments, docs, [0, 1, 2, 3, 4], "regions")}
    assert rows["wcep2025"]["test"] == [0]  # the item linking no country is unknown
    assert rows["reuters"]["test"] == [1, 2, 3]
    assert rows["reuters-long"]["test"] == [1]
    assert rows["reuters-short"]["test"] == [2, 3]
    assert rows["reuters-short"]["median_chars"] == (LONG_CHARS + len("short wire")) / 2
    assert Segment("s", "S", "reuters", longer_than=5).holds("reuters", "123456")
    assert not Segment("s", "S", "reuters", longer_than=5).holds("wcep2025", "123456")


# --------------------------------------------------------------------------- scoring a run


def _data() -> dict[str, Any]:
    """A world-like dataset: themes top-1 on wcep2025, regions as label sets on wcep2025 with segments."""
    docs = {
        "id": ["t", "w1", "w2", "w3", "r1", "r2"],
        "corpus": ["wcep2025", "wcep2025", "wcep2025", "wcep2025", "reuters", "reuters"],
        "text": ["a", "b", "c", "d", "x" * 2000, "y"],
        "themes": [["diplomacy"], ["sports"], ["diplomacy"], ["sports"], None, None],
        "regions": [None, ["Europe"], ["Africa", "Europe"], ["Asia-Pacific"], ["Africa"], []],
    }
    view = world_regions({"labels": {"regions": REGIONS}})
    return {
        "single_label": True,
        "multi_label": ["regions"],
        "axes": {"themes": THEMES, "regions": REGIONS},
        "scored": {"themes": THEMES, "regions": REGIONS},
        "test_corpora": {"themes": ["wcep2025"], "regions": ["wcep2025"]},
        "docs": docs,
        "units": [{"train": [], "validation": [], "test": [0, 1, 2, 3, 4, 5]}],
        "segments": {"regions": segment_rows(view.segments, docs, [0, 1, 2, 3, 4, 5], "regions")},
    }


def _run() -> dict[str, Any]:
    return {
        "units": [
            {
                "pred": {
                    "themes": [["diplomacy"], [], ["diplomacy"], ["sports"], [], []],
                    "regions": [["Europe"], ["Europe"], ["Africa"], [], ["Africa", "Europe"], []],
                },
                "top1": {
                    "themes": [
                        ["diplomacy"],
                        ["diplomacy"],
                        ["diplomacy"],
                        ["sports"],
                        ["sports"],
                        ["sports"],
                    ],
                    "regions": [["Europe"]] * 6,
                },
                "primary": {"regions": ["Europe", "Europe", "Africa", None, "Africa", None]},
            }
        ]
    }


def test_score_run_scores_regions_as_label_sets_on_their_corpus_and_each_segment() -> None:
    data = _data()
    assert single_label_axis(data, "themes") and not single_label_axis(data, "regions")
    got = score_run(_run(), data)
    assert got["themes"]["accuracy"] == pytest.approx(3 / 4)  # top-1 on the four wcep2025 items
    # regions main row: wcep2025 only (w1..w3), gold 4 labels, predicted 2, both right
    assert got["regions"]["micro_f1"] == pytest.approx(4 / 6)
    assert "accuracy" not in got["regions"]
    segs = got["regions"]["segments"]
    assert segs["wcep2025"]["micro_f1"] == pytest.approx(got["regions"]["micro_f1"])
    assert segs["wcep2025"]["no_region_share"] == pytest.approx(1 / 3)
    assert segs["wcep2025"]["primary_top1"] == pytest.approx(1 / 2)
    # reuters: r1 gold Africa, predicted Africa + Europe; r2 gold none, predicted none
    assert segs["reuters"]["micro_f1"] == pytest.approx(2 / 3)
    assert segs["reuters-long"]["n_docs"] == 1 and segs["reuters-short"]["n_docs"] == 1
    assert segs["reuters-short"]["no_region_share"] is None  # r2 has no gold region
    assert segs["reuters-long"]["primary_top1"] == 1.0


def _results(newstag_segments: dict[str, Any]) -> dict[str, Any]:
    seg_meta = [
        {"name": "wcep2025", "title": "WCEP 2025 Q4", "corpus": "wcep2025", "n_docs": 3, "median_chars": 169},
        {"name": "reuters", "title": "Reuters ModApte test, all", "corpus": "reuters", "n_docs": 2},
    ]

    def system(segments: dict[str, Any]) -> dict[str, Any]:
        return {
            "fit_seconds": 1.0,
            "predict_docs_per_s": 100.0,
            "peak_rss_mb": 200.0,
            "model_mb": 1.0,
            "info": {},
            "axes": {"regions": {"micro_f1": 0.9, "macro_f1": 0.8, "repeats": [], "segments": segments}},
        }

    gaz = {k: {**v, "primary_top1": 0.5} for k, v in newstag_segments.items()}
    return {
        "datasets": {
            "world": {
                "title": "World model",
                "config": "configs/world.yaml",
                "single_label": True,
                "multi_label": ["regions"],
                "cv_folds": 0,
                "units": [{"train": 5, "validation": 2, "test": 6}],
                "n_docs": 13,
                "labels": {"regions": 6},
                "scored": {"regions": REGIONS},
                "test_corpora": {"regions": ["wcep2025"]},
                "known": {"regions": {"train": 5, "validation": 2, "test": 3}},
                "segments": {"regions": seg_meta},
                "goals": {
                    "regions@wcep2025 micro_f1": 0.93,
                    "regions@wcep2025 no_region_share": 0.05,
                    "regions@reuters primary_top1": 0.92,
                },
                "systems": {"newstag": system(newstag_segments), "gazetteer": system(gaz)},
            }
        }
    }


FIG = {"n_docs": 3, "n_with_region": 3, "n_single_region": 2, "macro_f1": 0.7}


def test_segment_goals_are_floors_and_the_no_region_share_a_ceiling() -> None:
    segs = {
        "wcep2025": {**FIG, "micro_f1": 0.95, "no_region_share": 0.08, "primary_top1": 0.97},
        "reuters": {**FIG, "micro_f1": 0.9, "no_region_share": 0.0, "primary_top1": None},
    }
    got = {t["target"]: t for t in goal_targets(_results(segs))}
    micro = got["world regions micro-F1, WCEP 2025 Q4: newstag >= 0.93 (goal)"]
    assert micro["met"] is True and micro["margin"] == pytest.approx(0.02)
    share = got["world regions share with no region, WCEP 2025 Q4: newstag <= 0.05 (goal)"]
    assert share["met"] is False and share["margin"] == pytest.approx(-0.03)
    top1 = next(t for k, t in got.items() if "primary-region top-1" in k)
    assert top1["met"] is None  # not measured


def test_results_md_has_a_row_per_segment_and_system() -> None:
    segs = {
        "wcep2025": {**FIG, "micro_f1": 0.9512, "no_region_share": 0.0054, "primary_top1": 0.9758},
        "reuters": {**FIG, "micro_f1": 0.9442, "no_region_share": 0.0123, "primary_top1": 0.961},
    }
    results = _results(segs)
    lines = segment_table(results["datasets"]["world"], "regions")
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    assert rows[0].startswith("| WCEP 2025 Q4: 3 documents, 3 with a region, 2 with one; median body 169")
    assert "| newstag | 0.9512 | 0.7000 | 0.5 % | 0.9758 |" in rows[0]
    assert rows[1] == "|  | gazetteer only | 0.9512 | 0.7000 | 0.5 % | 0.5000 |"
    assert "| newstag | 0.9442 |" in rows[2]
    assert segment_table(results["datasets"]["world"], "themes") == []


def test_markdown_renders_the_world_regions_table_as_label_sets() -> None:
    segs = {"wcep2025": {**FIG, "micro_f1": 0.95, "no_region_share": 0.0, "primary_top1": 0.97}}
    results = _results(segs)
    results.update(
        {
            "generated": "now",
            "mode": "quick",
            "command": "python -m bench.run --only world --quick",
            "repeats": {"child_runs": 1, "predict_in_memory": 3, "cli": 1, "latency": 3},
            "machine": {
                "cpu": "cpu",
                "logical_cores": 2,
                "usable_cores": 2,
                "ram_gb": 8,
                "os": "linux",
                "python": "3",
            },
            "versions": {},
            "git": {"commit": "abc", "dirty": False},
            "total_seconds": 60.0,
            "stage_seconds": {"world": 60.0},
            "targets": goal_targets(results),
        }
    )
    world = results["datasets"]["world"]
    world["labels"]["themes"] = 2
    world["systems"]["newstag"]["axes"]["themes"] = {
        "accuracy": 0.84,
        "macro_f1": 0.78,
        "subset_accuracy": 0.84,
        "thresholded_micro_f1": 0.82,
        "repeats": [],
    }  # the gazetteer has no themes
    md = markdown(results)
    assert "| system | accuracy | macro-F1 |" in md  # themes: top-1
    assert "| system | micro-F1 | macro-F1 |" in md  # regions: label sets
    assert "micro-F1 of each system's own thresholded label sets (not top-1): newstag 0.8200" in md
    assert "### Regions: short items and long articles" in md
    assert f"split by body length at {LONG_CHARS:,} characters" in md


# --------------------------------------------------------------------------- primary regions of the systems


def test_primary_among_picks_the_best_scoring_predicted_label() -> None:
    scores = [[0.1, 0.9, 0.5], [0.8, 0.2, 0.3], [0.4, 0.4, 0.1]]
    names = ["Africa", "Europe", "Asia-Pacific"]
    predicted = [["Africa", "Asia-Pacific"], [], ["Europe", "Africa"]]
    # row 0: Europe scores highest but is not predicted; row 2: a tie goes to the first label
    assert primary_among(scores, names, predicted) == ["Asia-Pacific", None, "Africa"]


def test_gazetteer_primary_is_the_region_with_most_mentions() -> None:
    system = GazetteerSystem({"regions": REGIONS})
    system.fit({}, {})
    docs = {
        "title": ["", "", ""],
        "text": [
            "Talks in Paris and Berlin, then Tokyo.",
            "Protests spread across Caracas.",
            "Nothing here names a place at all.",
        ],
    }
    assert system.predict(docs)["regions"] == [["Europe"], ["Latin America"], []]
    assert system.primary(docs)["regions"] == ["Europe", "Latin America", None]


PLACES = {
    "Europe": ["Paris", "Berlin", "Madrid", "Warsaw"],
    "Asia-Pacific": ["Tokyo", "Jakarta", "Manila", "Sydney"],
    "Africa": ["Nairobi", "Lagos", "Accra", "Dakar"],
    "North America": ["Washington", "Chicago", "Ottawa", "Toronto"],
    "Latin America": ["Caracas", "Bogota", "Lima", "Guadalajara"],
}


def _corpus(n: int, seed: int) -> dict[str, list[Any]]:
    rows, labels = synthetic_rows(n, seed, PLACES)
    return {"id": [r["id"] for r in rows], "title": [""] * n, "text": [r["text"] for r in rows], **labels}


def test_peer_and_newstag_primary_regions_are_among_their_predicted_regions() -> None:
    from pipeline.features import Featurizer
    from pipeline.model import NewsTagger
    from pipeline.taxonomy import country_regions

    train, val, test = _corpus(300, 1), _corpus(100, 2), _corpus(40, 3)
    axes = {"regions": sorted(PLACES), "themes": sorted({t for row in train["themes"] for t in row})}
    plain = PlainSystem(axes)
    plain.fit(train, val)
    nt = NewstagSystem("configs/world.yaml", axes)
    f = Featurizer(
        word_min_df=1,
        gazetteer=True,
        country_to_region=country_regions("configs/taxonomy/regions.yaml"),
        gazetteer_mode="log+share",
    )
    nt.tagger = NewsTagger(f, axes=("regions", "themes"), min_support=3, n_jobs=1).fit(
        {"title": train["title"], "text": train["text"]},
        {a: train[a] for a in axes},
        {"title": val["title"], "text": val["text"]},
        {a: val[a] for a in axes},
    )
    for system in (plain, nt):
        pred, primary = system.predict(test)["regions"], system.primary(test)["regions"]
        assert len(primary) == len(test["text"])
        assert all((p is None) == (not labels) for p, labels in zip(primary, pred, strict=True))
        assert all(p is None or p in labels for p, labels in zip(primary, pred, strict=True))
        top1, n = primary_top1(test["regions"], primary)
        assert n == len(test["text"]) and top1 > 0.5  # one region per document, named by a place
