"""The tagger's contract: thresholds, calibration, label handling, explanations, sklearn compatibility."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from pipeline.features import Featurizer
from pipeline.model import NewsTagger, best_threshold, fit_platt


def test_best_threshold_finds_the_f1_optimal_cut() -> None:
    probs = np.array([0.95, 0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    threshold, f1 = best_threshold(probs, y, floor=0.0)
    # cutting after 0.6 keeps 3 positives and 1 negative: P 3/4, R 3/3, F1 6/7
    assert f1 == pytest.approx(6 / 7)
    assert 0.4 < threshold <= 0.6
    assert ((probs >= threshold) == np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)).all()


def test_best_threshold_respects_the_floor() -> None:
    probs = np.array([0.04, 0.03, 0.02, 0.01])
    y = np.array([1, 1, 0, 0])
    threshold, _ = best_threshold(probs, y, floor=0.05)
    assert threshold == 0.05


def test_platt_scaling_is_increasing_and_calibrated_on_separable_scores() -> None:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1.5, 0.5, 200), rng.normal(-1.5, 0.5, 800)]
    y = np.r_[np.ones(200), np.zeros(800)]
    a, b = fit_platt(scores, y)
    assert a > 0
    p = 1 / (1 + np.exp(-(a * scores + b)))
    assert p[:200].mean() > 0.9 and p[200:].mean() < 0.1
    assert fit_platt(scores, np.zeros(1000)) == (1.0, 0.0)


def test_thresholds_are_tuned_per_label_on_validation(tiny_tagger) -> None:
    assert tiny_tagger.threshold_source_ == ["tuned"] * 5
    th = tiny_tagger.thresholds()
    assert set(th) == {"regions", "themes"} and len(th["regions"]) == 3
    assert all(0.05 <= t < 1 for t in np.concatenate(list(th.values())))


def test_predicts_the_tiny_test_set(tiny_tagger, tiny_corpus) -> None:
    docs, gold = tiny_corpus["test"]
    pred = tiny_tagger.predict_labels(docs)
    for axis in ("regions", "themes"):
        right = sum(p == g for p, g in zip(pred[axis], gold[axis], strict=True))
        assert right / len(docs) > 0.95, axis


def test_scores_have_one_row_per_document_and_label_order(tiny_tagger) -> None:
    scores = tiny_tagger.predict_scores(["In Lagos, refinery rose.", "x", ""])
    assert scores["regions"].shape == (3, 3)
    assert tiny_tagger.labels_["regions"] == ["Africa", "Asia-Pacific", "Europe"]
    assert scores["regions"][0].argmax() == 0
    assert ((scores["themes"] >= 0) & (scores["themes"] <= 1)).all()


def test_threshold_overrides_by_axis_and_by_label(tiny_tagger) -> None:
    docs = ["In Tokyo, oil output rose."]
    assert tiny_tagger.predict_labels(docs, {"regions": 0.999999})["regions"] == [[]]
    everything = tiny_tagger.predict_labels(docs, {"Europe": 0.0})["regions"][0]
    assert "Europe" in everything and "Asia-Pacific" in everything


def test_at_least_one_label_per_axis_when_configured(tiny_corpus) -> None:
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    tagger = NewsTagger(
        Featurizer(word_min_df=1),
        axes=("regions", "themes"),
        min_support=3,
        at_least_one={"regions": True},
        n_jobs=1,
    ).fit(xt, yt, xv, yv)
    pred = tagger.predict_labels(["nothing here at all", "zzz"], {"regions": 0.999999, "themes": 0.999999})
    assert all(len(labels) == 1 for labels in pred["regions"])
    assert pred["themes"] == [[], []]


def test_rare_labels_are_dropped_and_reported(tiny_corpus) -> None:
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    yt = {a: [list(v) for v in rows] for a, rows in yt.items()}
    yt["themes"][0].append("shipping")
    yt["themes"][1].append("shipping")
    tagger = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1)
    tagger.fit(xt, yt, xv, yv)
    assert "shipping" not in tagger.labels_["themes"]
    assert tagger.dropped_labels_["themes"] == {"shipping": 2}


def test_cv_thresholds_leave_validation_unseen(tiny_corpus) -> None:
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    tagger = NewsTagger(
        Featurizer(word_min_df=1), axes=("regions",), min_support=3, threshold_strategy="cv", n_jobs=1
    )
    tagger.fit(xt, {"regions": yt["regions"]}, xv, {"regions": yv["regions"]})
    assert tagger.threshold_source_ == ["tuned"] * 3
    vocab = tagger.featurizer_.blocks_[0][1].vocabulary_
    # the vocabulary is the training part's alone: validation documents were not folded in
    assert vocab == Featurizer(word_min_df=1).fit(xt).blocks_[0][1].vocabulary_


def test_explain_names_the_terms_that_pushed_a_label(tiny_tagger) -> None:
    [doc] = tiny_tagger.explain(["In Nairobi, coffee growers rose."])
    assert doc["regions"]["Africa"][0][0].startswith("terms: nairobi")  # evidence in words
    assert any(term.startswith("terms: ") and "coffee" in term for term, _ in doc["themes"]["agriculture"])
    top = [t for t, _ in tiny_tagger.top_terms(8)["regions"]["Africa"]]
    assert {"word:nairobi", "word:lagos", "word:accra", "word:dakar"} <= set(top)


def test_sklearn_contract_clone_and_params(tiny_tagger) -> None:
    params = tiny_tagger.get_params()
    assert params["C"] == 1.0 and "featurizer__word_ngram_range" in params
    fresh = clone(tiny_tagger)
    assert not hasattr(fresh, "coef_")
    fresh.set_params(C=0.1, featurizer__word_ngram_range=(1, 1))
    assert fresh.featurizer.word_ngram_range == (1, 1)


def test_validation_strategy_needs_validation_data(tiny_corpus) -> None:
    xt, yt = tiny_corpus["train"]
    with pytest.raises(ValueError, match="needs X_val"):
        NewsTagger(Featurizer(word_min_df=1), axes=("regions",)).fit(xt, {"regions": yt["regions"]})


def test_one_thread_refits_bit_for_bit(tiny_tagger, tiny_corpus) -> None:
    """``n_jobs=1`` (README, "Reproducing a model"): the same data and settings give the same weights, Platt
    scaling and thresholds to the last bit (liblinear's threads share one random generator; one thread
    does not)."""
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    again = clone(tiny_tagger).fit(xt, yt, xv, yv)
    assert tiny_tagger.n_jobs == 1
    for name in ("coef_", "intercept_", "platt_", "thresholds_"):
        assert np.array_equal(getattr(tiny_tagger, name), getattr(again, name)), name
