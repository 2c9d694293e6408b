"""The champion/challenger rule, without a tracking store."""

from __future__ import annotations

import pytest

from pipeline.promotion import Decision, challenger_score, decide, registry_score

KEYS = ["test/regions/micro_f1", "test/themes/micro_f1"]


def scores(regions: float, themes: float) -> dict[str, float]:
    return {"test/regions/micro_f1": regions, "test/themes/micro_f1": themes, "test/regions/macro_f1": 0.1}


def test_the_score_is_the_sum_of_the_promotion_metrics() -> None:
    assert registry_score(scores(0.5, 0.25), KEYS) == pytest.approx(0.75)
    assert registry_score({"test/regions/micro_f1": 0.9}, KEYS) is None


def test_a_challenger_missing_a_promotion_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"promotion metrics .* not all logged"):
        challenger_score({"test/regions/micro_f1": 0.9}, KEYS)
    with pytest.raises(ValueError, match="not all logged"):
        decide({"test/regions/micro_f1": 0.9}, None, KEYS)


def test_the_first_model_becomes_champion() -> None:
    assert decide(scores(0.5, 0.5), None, KEYS) == Decision(True, "no champion yet", 1.0, None)


def test_a_higher_score_wins_and_says_by_how_much() -> None:
    d = decide(scores(0.6, 0.5), scores(0.5, 0.5), KEYS, "champion v3", "its logged test metrics")
    assert d.promote and d.score == pytest.approx(1.1) and d.champion_score == pytest.approx(1.0)
    assert d.reason == "1.1000 beats champion v3 1.0000 (its logged test metrics)"


def test_a_lower_score_loses() -> None:
    d = decide(scores(0.4, 0.5), scores(0.5, 0.5), KEYS, "champion v2", "re-scored on this test set")
    assert not d.promote
    assert d.reason == "0.9000 does not beat champion v2 1.0000 (re-scored on this test set)"


def test_a_tie_keeps_the_champion() -> None:
    assert not decide(scores(0.5, 0.5), scores(0.5, 0.5), KEYS).promote


def test_a_champion_without_comparable_metrics_is_replaced() -> None:
    d = decide(scores(0.1, 0.1), {"test/regions/micro_f1": 0.99}, KEYS, "champion v1")
    assert d.promote and d.champion_score is None
    assert d.reason == "champion v1 has no comparable test/regions/micro_f1+test/themes/micro_f1"
    assert decide(scores(0.1, 0.1), {}, KEYS).promote  # a champion that could not be re-scored


def test_only_the_promotion_metrics_count() -> None:
    better_elsewhere = {**scores(0.5, 0.5), "test/regions/macro_f1": 0.99}
    assert not decide(better_elsewhere, scores(0.5, 0.5), KEYS).promote
