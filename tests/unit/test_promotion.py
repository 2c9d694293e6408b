"""The champion/challenger rule without a tracking store: metrics from document counts, the paired bootstrap,
the decision and its sentence, the documents compared, and the config keys that set the rule."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.metrics import axis_metrics, covered_report
from pipeline.promotion import (
    METRICS,
    Decision,
    Rule,
    Sample,
    compare,
    decide,
    metric_value,
    no_champion,
    not_comparable,
    paired_samples,
)

ROOT = Path(__file__).resolve().parents[2]
LABELS = [f"L{i}" for i in range(12)]
RULE = Rule(("themes/micro_f1",))


def gold_rows(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [sorted(rng.sample(LABELS, rng.randint(0, 3))) for _ in range(n)]


def noisy(gold: list[list[str]], miss: float, seed: int) -> list[list[str]]:
    """Predictions that drop each gold label with probability ``miss`` and add a wrong one as often."""
    rng = random.Random(seed)
    out = []
    for row in gold:
        pred = {x for x in row if rng.random() >= miss}
        if rng.random() < miss:
            pred.add(rng.choice(LABELS))
        out.append(sorted(pred))
    return out


def sample(gold, new, old, axis: str = "themes", corpus: str | None = None) -> Sample:
    return Sample(axis, corpus, gold, new, old)


# --------------------------------------------------------------------------- metrics


def test_every_metric_from_document_counts_equals_the_metrics_module() -> None:
    gold = gold_rows(400)
    pred = [*noisy(gold, 0.3, 1), ["ZZ"]]  # a prediction of a label with no gold document
    gold = [*gold, []]
    reference = axis_metrics(gold, pred, [*LABELS, "ZZ"], single_label=True)  # with accuracy
    for metric in METRICS:
        assert metric_value(metric, gold, pred) == pytest.approx(reference[metric], abs=1e-12), metric


def test_the_observed_scores_are_each_models_metric_on_all_documents() -> None:
    gold = gold_rows(300)
    new, old = noisy(gold, 0.1, 2), noisy(gold, 0.2, 3)
    c = compare(sample(gold, new, old), "themes/macro_f1", RULE)
    assert c.challenger == pytest.approx(axis_metrics(gold, new, LABELS)["macro_f1"])
    assert c.champion == pytest.approx(axis_metrics(gold, old, LABELS)["macro_f1"])
    assert c.n_docs == 300 and c.low <= c.diff <= c.high


# --------------------------------------------------------------------------- the bootstrap and the rule


def test_a_clearly_better_challenger_is_promoted_and_the_sentence_says_by_how_much() -> None:
    gold = gold_rows(1500)
    d = decide([sample(gold, noisy(gold, 0.1, 4), noisy(gold, 0.2, 5))], RULE, "v7", "v5")
    assert d.promote and d.champion == "v5" and d.confidence == 0.95
    [c] = d.comparisons
    assert c.verdict == "better" and c.low > 0 and c.p < 0.01
    assert re.fullmatch(
        r"v7 beats v5 on validation themes micro-F1 by \+0\.\d{3} \[0\.\d{3}, 0\.\d{3}\], p < 0\.001: champion",
        d.sentence(),
    ), d.sentence()


def test_a_difference_of_two_documents_in_1500_is_noise() -> None:
    """The case of the issue: 0.0013 on 1,520 documents promoted a version. Here the challenger gets two
    documents right that the champion missed; the interval straddles 0 and the champion stays."""
    gold = gold_rows(1500, seed=6)
    old = noisy(gold, 0.2, 7)
    wrong = [i for i in range(1500) if old[i] != gold[i]][:2]
    new = [gold[i] if i in wrong else old[i] for i in range(1500)]
    d = decide([sample(gold, new, old)], RULE, "v2", "v1")
    [c] = d.comparisons
    assert 0 < c.diff < 0.003 and c.low <= 0 <= c.high and c.verdict == "within noise"
    assert not d.promote
    assert d.reason.startswith("v2 does not beat v1 beyond the noise on validation: themes micro-F1 +0.00")
    assert f"[{c.low:.4f}, {c.high:.4f}]" in d.reason and d.reason.endswith("(95% intervals include 0)")


def test_identical_predictions_tie_and_the_champion_stays() -> None:
    gold = gold_rows(200)
    pred = noisy(gold, 0.2, 8)
    d = decide([sample(gold, pred, pred)], RULE, "v2", "v1")
    [c] = d.comparisons
    assert (c.diff, c.low, c.high, c.p, c.verdict) == (0.0, 0.0, 0.0, 1.0, "within noise")
    assert not d.promote and d.sentence().endswith(": challenger")


def test_worse_on_one_corpus_blocks_a_win_on_another() -> None:
    """The world model: a version better on one corpus's validation split but worse on another's by more
    than the noise is not promoted, and the reason names the corpus it got worse on."""
    a, b = gold_rows(800, 9), gold_rows(800, 10)
    samples = [
        sample(a, noisy(a, 0.1, 11), noisy(a, 0.25, 12), corpus="allsides"),
        sample(b, noisy(b, 0.3, 13), noisy(b, 0.1, 14), corpus="wcep"),
    ]
    d = decide(samples, RULE, "v3", "v2")
    assert [c.verdict for c in d.comparisons] == ["better", "worse"]
    assert not d.promote
    assert d.reason.startswith("v3 is worse than v2 on validation wcep themes micro-F1 by -0.")
    assert "allsides" not in d.reason  # one clause per comparison that matters
    assert d.comparisons[1].p < 0.01  # one-sided, in the direction of the difference


def test_better_on_one_corpus_within_noise_on_the_other_is_promoted() -> None:
    a, b = gold_rows(800, 15), gold_rows(800, 16)
    same = noisy(b, 0.2, 17)
    samples = [
        sample(a, noisy(a, 0.1, 18), noisy(a, 0.25, 19), corpus="reuters"),
        sample(b, same, same, corpus="wcep2025"),
    ]
    d = decide(samples, Rule(("themes/micro_f1",)), "v3", "v2")
    assert d.promote and d.reason.startswith("v3 beats v2 on validation reuters themes micro-F1 by +")


def test_only_the_rules_metrics_and_their_axes_count() -> None:
    gold = gold_rows(600)
    regions = sample(gold, noisy(gold, 0.05, 20), noisy(gold, 0.3, 21), axis="regions")
    themes_gold = gold_rows(600, 22)
    same = noisy(themes_gold, 0.2, 23)
    themes = sample(themes_gold, same, same)
    assert not decide([regions, themes], RULE).promote  # regions is much better, but not a promotion metric
    both = Rule(("regions/micro_f1", "themes/micro_f1"))
    d = decide([regions, themes], both)
    assert d.promote and [c.metric for c in d.comparisons] == ["regions/micro_f1", "themes/micro_f1"]


def test_a_higher_confidence_asks_for_a_larger_margin() -> None:
    gold = gold_rows(600, 24)
    new, old = noisy(gold, 0.18, 25), noisy(gold, 0.2, 26)
    loose = compare(sample(gold, new, old), "themes/micro_f1", Rule(RULE.metrics, confidence=0.5))
    strict = compare(sample(gold, new, old), "themes/micro_f1", Rule(RULE.metrics, confidence=0.99))
    assert strict.low < loose.low <= loose.high < strict.high


def test_the_bootstrap_is_seeded() -> None:
    gold = gold_rows(300, 27)
    s = sample(gold, noisy(gold, 0.2, 28), noisy(gold, 0.25, 29))
    first, again = compare(s, "themes/micro_f1", RULE), compare(s, "themes/micro_f1", RULE)
    other = compare(s, "themes/micro_f1", Rule(RULE.metrics, seed=1))
    assert first == again and (other.low, other.high) != (first.low, first.high)
    small = compare(s, "themes/micro_f1", Rule(RULE.metrics, resamples=100))
    assert small.p >= 1 / 101


def test_no_documents_to_compare_keeps_the_champion() -> None:
    d = decide([], RULE, "v2", "v1")
    assert not d.promote and d.comparisons == ()
    assert d.reason == "v2 cannot be compared with v1: no validation documents with themes labels"


def test_no_champion_and_a_champion_that_cannot_be_scored_promote() -> None:
    assert no_champion() == Decision(True, "no champion yet")
    assert no_champion().sentence() == "no champion yet: champion"
    d = not_comparable("v3", "it has no themes axis (its axes: topics)")
    assert d.promote and d.champion == "v3"
    assert d.sentence() == (
        "champion v3 cannot be scored on this validation split: it has no themes axis (its axes: topics): champion"
    )


def test_the_numbers_are_plain_values() -> None:
    gold = gold_rows(100)
    d = decide([sample(gold, gold, noisy(gold, 0.3, 30))], RULE, "v2", "v1")
    [numbers] = d.numbers()
    assert set(numbers) == {
        "metric",
        "corpus",
        "n_docs",
        "challenger",
        "champion",
        "low",
        "high",
        "p",
        "diff",
        "verdict",
    }
    assert numbers["verdict"] == "better" and numbers["diff"] == pytest.approx(d.comparisons[0].diff)


# --------------------------------------------------------------------------- the documents compared


def test_samples_per_corpus_leave_out_unknown_gold_and_uncovered_labels() -> None:
    """Each corpus that has gold on an axis gives one sample; unknown gold (None) is left out; predictions
    are limited to the labels the document's corpus covers, as the evaluation reports score them."""
    corpora = ["reuters", "reuters", "wcep", "wcep", "allsides"]
    gold = {
        "regions": [["Europe"], ["Asia"], ["Africa"], None, None],
        "themes": [None, None, ["trade"], ["health"], ["migration"]],
    }
    coverage = {
        "reuters": {"regions": ["Europe", "Asia", "Africa"]},
        "wcep": {"regions": ["Europe", "Asia", "Africa"], "themes": ["trade", "health"]},
        "allsides": {"themes": ["trade", "migration"]},
    }
    new = {
        "regions": [["Europe"], ["Europe"], ["Africa"], [], []],
        "themes": [["trade"], [], ["trade", "migration"], ["health"], ["health", "migration"]],
    }
    old = {"regions": [[]] * 5, "themes": [[]] * 5}
    samples = paired_samples(gold, new, old, corpora, coverage)
    assert [(s.axis, s.corpus, len(s.gold)) for s in samples] == [
        ("regions", "reuters", 2),
        ("regions", "wcep", 1),
        ("themes", "allsides", 1),
        ("themes", "wcep", 2),
    ]
    wcep_themes, allsides_themes = samples[3], samples[2]
    assert wcep_themes.challenger == [["trade"], ["health"]]  # migration: not a wcep label
    assert allsides_themes.challenger == [["migration"]]  # health: not an allsides label
    report = covered_report(
        gold,
        new,
        None,
        {"regions": ["Africa", "Asia", "Europe"], "themes": ["health", "migration", "trade"]},
        corpora,
        coverage,
    )
    for s in samples:
        expected = report["corpora"][s.corpus]["axes"][s.axis]["micro_f1"]
        assert metric_value("micro_f1", s.gold, s.challenger) == pytest.approx(expected), (s.axis, s.corpus)


def test_one_corpus_gives_one_sample_per_axis() -> None:
    gold = {"themes": [["a"], ["b"]], "regions": [["x"], []]}
    pred = {"themes": [["a"], []], "regions": [["x"], ["x"]]}
    samples = paired_samples(gold, pred, pred)
    assert [(s.axis, s.corpus, len(s.gold)) for s in samples] == [("themes", None, 2), ("regions", None, 2)]


# --------------------------------------------------------------------------- the config keys


def _config(tmp_path: Path, tracking: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\ncorpus: {format: jsonl, path: x.jsonl, label_fields: {t: t}}\n"
        f"axes: {{themes: {{source: t}}, regions: {{source: t}}}}\ntracking: {tracking}\n"
    )
    return path


def test_promotion_keys_default_to_every_axis_micro_f1(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "{}"))
    assert cfg.promotion_metrics() == ["themes/micro_f1", "regions/micro_f1"]
    p = cfg.tracking.promotion
    assert (p.confidence, p.resamples, p.seed) == (0.95, 1000, 0)
    cfg = load_config(_config(tmp_path, "{promotion: {metrics: [regions/macro_f1], confidence: 0.99}}"))
    assert cfg.promotion_metrics() == ["regions/macro_f1"] and cfg.tracking.promotion.confidence == 0.99


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        ("{promotion: {metrics: [topics/micro_f1]}}", "'topics' is not an axis of this config"),
        ("{promotion: {metrics: [themes/f1]}}", "no metric 'f1'; known: micro_f1"),
        ("{promotion: {metrics: [micro_f1]}}", "'micro_f1' is not an axis"),
        ("{promotion: {confidence: 1.0}}", "tracking.promotion.confidence"),
        ("{promotion: {resamples: 10}}", "tracking.promotion.resamples"),
        ("{promotion: {metric: [themes/micro_f1]}}", "tracking.promotion.metric: unknown key"),
        ("{promotion_metrics: [test/themes/micro_f1]}", "replaced by tracking.promotion.metrics"),
    ],
)
def test_bad_promotion_keys_fail_at_load_naming_the_key(tmp_path: Path, tracking: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, tracking))
    assert message in str(err.value)
    assert "tracking.promotion" in str(err.value)


@pytest.mark.parametrize("name", ["bbc", "reuters", "reuters-r90", "world"])
def test_the_shipped_configs_promote_on_validation_metrics_of_their_axes(name: str) -> None:
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    for metric in cfg.promotion_metrics():
        axis, value = metric.split("/")
        assert axis in cfg.axes and value in METRICS and not metric.startswith("test/")
