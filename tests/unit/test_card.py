"""The model card from plain facts: data, figures with intervals, known limits, the decision; cut to fit."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.card import (
    card_facts,
    data_facts,
    description_of,
    figure_facts,
    render_card,
    uncovered_labels,
)
from pipeline.metrics import covered_report, interval_report


class Split:
    """What ``data_facts`` reads of a datasets.Dataset: column names, length, columns."""

    def __init__(self, **columns: list) -> None:
        self.columns = columns
        self.column_names = list(columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name: str) -> list:
        return self.columns[name]


DATA = {
    "train": Split(corpus=["wire", "wire", "blog"], date=["2020-01-05", "2019-12-30T10:00", ""]),
    "validation": Split(corpus=["wire", "blog"], date=["2020-02-01", None]),
    "test": Split(corpus=["wire", "blog", "blog"], date=["2020-03-01", "", ""]),
}
GOLD = {"themes": [["war"], ["vote"], ["war"], None, ["vote"], ["war"]]}
PRED = {"themes": [["war"], ["war"], ["war"], ["vote"], ["vote"], ["war", "vote"]]}
CORPORA = ["wire", "wire", "wire", "blog", "blog", "blog"]
COVERAGE = {"wire": {"themes": ["war", "vote"]}, "blog": {"themes": ["vote", "war"]}}


def test_data_facts_count_documents_and_date_ranges_per_corpus() -> None:
    facts = {c["name"]: c for c in data_facts(DATA)}
    assert facts["wire"]["documents"] == {"train": 2, "validation": 1, "test": 1}
    assert facts["wire"]["dates"]["train"] == ["2019-12-30", "2020-01-05"]
    assert facts["blog"]["dates"]["train"] is None  # no dates: no range


def test_uncovered_labels_name_what_each_corpus_cannot_say() -> None:
    labels = {"themes": ["migration", "vote", "war"], "regions": ["Europe"]}
    coverage = {"wire": {"themes": ["vote", "war"], "regions": ["Europe"]}, "blog": {"themes": ["migration"]}}
    assert uncovered_labels(labels, coverage) == {
        "blog": {"themes": ["vote", "war"]},
        "wire": {"themes": ["migration"]},
    }
    assert uncovered_labels(labels, {"wire": coverage["wire"]}) == {}  # one corpus: nothing to say


def _facts() -> dict:
    model_labels = {"themes": ["vote", "war"]}
    report = covered_report(GOLD, PRED, None, model_labels, CORPORA, COVERAGE)
    intervals = interval_report(GOLD, PRED, CORPORA, COVERAGE, resamples=200)
    cfg = SimpleNamespace(
        name="world",
        description="Two corpora.",
        fingerprint=lambda: "abcdef0123456789",
        axes={"themes": SimpleNamespace(min_support=5)},
        thresholds=SimpleNamespace(strategy="validation", cv_include_validation=False),
        model=SimpleNamespace(refit_axes=[]),
    )
    tagger = SimpleNamespace(labels_=model_labels, dropped_labels_={"themes": {"quake": 2}, "regions": {}})
    coverage = {"wire": {"themes": ["vote", "war"]}, "blog": {"themes": ["vote"]}}
    return card_facts(
        cfg,
        DATA,
        tagger,
        {"validation": report, "test": report},
        {"validation": intervals, "test": intervals},
        coverage,
        "configs/world.yaml",
    )


def test_figure_facts_carry_intervals_per_corpus() -> None:
    figures = _facts()["figures"]
    whole = figures["test"]["themes"]["all"]
    assert whole["low"] <= whole["micro_f1"] <= whole["high"]
    assert set(figures["test"]["themes"]) == {"all", "wire", "blog"}
    assert figure_facts({"test": {"axes": {}}}, {}) == {}


def test_card_says_data_figures_limits_and_decision() -> None:
    card = render_card(_facts(), "version 3 -> champion: v3 beats v2", "news-tagger", "3")
    assert card.startswith("# Model card: news-tagger v3")
    assert "**Decision**: version 3 -> champion: v3 beats v2" in card
    assert "| wire | 2 | 1 | 1 | 2019-12-30 to 2020-01-05 | 2020-03-01 to 2020-03-01 |" in card
    whole = _facts()["figures"]["test"]["themes"]["all"]
    assert f"{whole['micro_f1']:.3f} [{whole['low']:.3f}, {whole['high']:.3f}]" in card
    assert "| themes | blog |" in card
    assert "quake (2)" in card and "fewer than 5 training documents" in card
    assert "**blog** cannot say themes war" in card
    assert "`configs/world.yaml`" in card


def test_description_is_cut_at_a_line_and_says_where_the_card_is() -> None:
    card = "\n".join(f"line {i} " + "x" * 80 for i in range(200))
    cut = description_of(card, "run abc", limit=2000)
    assert len(cut) <= 2000 and cut.endswith("the whole card is `model_card.md` of run abc.")
    assert description_of("short", "run abc") == "short"
