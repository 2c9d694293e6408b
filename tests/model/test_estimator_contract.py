"""The tagger and the featurizer as scikit-learn estimators: the library's own checks where they apply, the
methods and parameter validation it expects, a grid search over the tagger, and config keys that all count.

``check_estimator`` as a whole does not apply: most of its checks fit on numeric arrays, and both estimators
read text. The checks run here are those that look at parameters, cloning, tags and unfitted use, plus
``check_param_validation``, which fits with every parameter set to an invalid value and needs the error to
come before the data is looked at. What the numeric checks test about fitting (fit returns self and leaves
the parameters alone, refitting gives the same model) is tested below on text.
"""

from __future__ import annotations

import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

from pipeline.config import load_config
from pipeline.features import Featurizer
from pipeline.model import NewsTagger, label_columns, tagger_from_config

ESTIMATORS = [NewsTagger(Featurizer(word_min_df=1)), Featurizer()]
CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_param_validation",
    "check_estimators_unfitted",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", CHECKS)
def test_scikit_learn_checks_that_apply_to_text_estimators(estimator, check) -> None:
    getattr(estimator_checks, check)(type(estimator).__name__, clone(estimator))


def test_featurizer_passes_the_transformer_only_checks() -> None:
    for check in ("check_transformers_unfitted", "check_get_feature_names_out_error"):
        getattr(estimator_checks, check)("Featurizer", Featurizer())


# --------------------------------------------------------------------------- parameter validation


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"threshold_strategy": "typo"}, "threshold_strategy"),
        ({"classifier": "x"}, "classifier"),
        ({"C": 0.0}, "C"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"min_support": "5"}, "min_support"),
    ],
)
def test_a_bad_tagger_parameter_fails_at_fit_naming_it(tiny_corpus, params, name) -> None:
    xt, yt = tiny_corpus["train"]
    tagger = NewsTagger(Featurizer(word_min_df=1), threshold_strategy="fixed", n_jobs=1).set_params(**params)
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of NewsTagger must be"):
        tagger.fit(xt, yt)
    assert not hasattr(tagger, "coef_")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"gazetteer_mode": "logs"}, "gazetteer_mode"),
        ({"word_min_df": -1}, "word_min_df"),
        ({"title_weight": -2.0}, "title_weight"),
        ({"char_sublinear_tf": "yes"}, "char_sublinear_tf"),
    ],
)
def test_a_bad_featurizer_parameter_fails_at_its_fit_and_at_the_taggers(tiny_corpus, params, name) -> None:
    xt, yt = tiny_corpus["train"]
    match = rf"The '{name}' parameter of Featurizer must be"
    with pytest.raises(InvalidParameterError, match=match):
        Featurizer(**params).fit(xt)
    tagger = NewsTagger(Featurizer(**params), threshold_strategy="fixed", n_jobs=1)
    with pytest.raises(InvalidParameterError, match=match):
        tagger.fit(xt, yt)


def test_axes_and_axis_blocks_are_checked_at_fit(tiny_corpus) -> None:
    xt, yt = tiny_corpus["train"]
    base = NewsTagger(Featurizer(word_min_df=1), threshold_strategy="fixed", n_jobs=1)
    with pytest.raises(ValueError, match="distinct axes"):
        clone(base).set_params(axes=("regions", "regions")).fit(xt, yt)
    with pytest.raises(ValueError, match=r"unknown blocks \['words'\]"):
        clone(base).set_params(axis_blocks={"regions": ["words"]}).fit(xt, yt)
    with pytest.raises(ValueError, match="needs place_words=True"):
        clone(base).set_params(axis_blocks={"regions": ["word-places"]}).fit(xt, yt)
    with pytest.raises(ValueError, match="lack the axes"):
        clone(base).set_params(axes=("regions", "topics")).fit(xt, yt)
    with pytest.raises(ValueError, match="go together"):
        clone(base).fit(xt, yt, xt)


# --------------------------------------------------------------------------- fit, predict, score


def test_fit_returns_self_leaves_parameters_alone_and_refits_the_same(tiny_corpus) -> None:
    (xt, yt), (xv, yv) = tiny_corpus["train"], tiny_corpus["validation"]
    tagger = NewsTagger(Featurizer(word_min_df=1), min_support=3, n_jobs=1)
    before = joblib.hash(tagger.get_params(deep=True))
    assert tagger.fit(xt, yt, xv, yv) is tagger
    assert joblib.hash(tagger.get_params(deep=True)) == before
    assert not hasattr(tagger.featurizer, "blocks_"), "the given featurizer is cloned, not fitted"
    first = tagger.predict_proba(xv)
    again = clone(tagger).fit(xt, yt, xv, yv).predict_proba(xv)
    for axis in first:
        np.testing.assert_array_equal(first[axis], again[axis])


def test_predict_is_a_dict_of_indicator_matrices_matching_the_label_names(tiny_tagger, tiny_corpus) -> None:
    docs, _ = tiny_corpus["test"]
    hits, names = tiny_tagger.predict(docs), tiny_tagger.predict_labels(docs)
    assert set(hits) == {"regions", "themes"}
    for axis, matrix in hits.items():
        assert matrix.dtype == np.int8 and matrix.shape == (len(docs), len(tiny_tagger.labels_[axis]))
        decoded = [[tiny_tagger.labels_[axis][j] for j in np.flatnonzero(row)] for row in matrix]
        assert decoded == names[axis]


def test_predict_proba_is_predict_scores(tiny_tagger, tiny_corpus) -> None:
    docs, _ = tiny_corpus["test"]
    proba, scores = tiny_tagger.predict_proba(docs), tiny_tagger.predict_scores(docs)
    assert set(proba) == set(scores)
    for axis in proba:
        np.testing.assert_array_equal(proba[axis], scores[axis])


def test_one_axis_still_gives_a_dict(tiny_corpus) -> None:
    xt, yt = tiny_corpus["train"]
    tagger = NewsTagger(
        Featurizer(word_min_df=1), axes=("themes",), min_support=3, threshold_strategy="fixed", n_jobs=1
    ).fit(xt, {"themes": yt["themes"]})
    assert list(tagger.predict(xt[:4])) == ["themes"]
    assert list(tagger.predict_proba(xt[:4])) == ["themes"]


def test_score_is_the_mean_micro_f1_over_axes_and_counts_unknown_gold_labels(
    tiny_tagger, tiny_corpus
) -> None:
    docs, gold = tiny_corpus["test"]
    pred = tiny_tagger.predict_labels(docs)

    def micro(axis: str, gold_rows: list[list[str]]) -> float:
        mlb = MultiLabelBinarizer().fit(gold_rows + pred[axis])
        return f1_score(mlb.transform(gold_rows), mlb.transform(pred[axis]), average="micro")

    expected = np.mean([micro(axis, gold[axis]) for axis in ("regions", "themes")])
    assert tiny_tagger.score(docs, gold) == pytest.approx(expected)
    assert tiny_tagger.score(docs, pd.DataFrame(gold)) == pytest.approx(expected)
    shifted = {"regions": [[*row, "Antarctica"] for row in gold["regions"]], "themes": gold["themes"]}
    assert tiny_tagger.score(docs, shifted) == pytest.approx(
        np.mean([micro("regions", shifted["regions"]), micro("themes", gold["themes"])])
    )
    assert tiny_tagger.score(docs, shifted) < tiny_tagger.score(docs, gold)


def test_the_three_label_layouts_fit_the_same_model(tiny_corpus) -> None:
    xt, yt = tiny_corpus["train"]
    rows = [{"regions": r, "themes": t} for r, t in zip(yt["regions"], yt["themes"], strict=True)]
    layouts = [yt, pd.DataFrame(yt), rows]
    tagger = NewsTagger(Featurizer(word_min_df=1), min_support=3, threshold_strategy="fixed", n_jobs=1)
    fitted = [clone(tagger).fit(xt, y) for y in layouts]
    for other in fitted[1:]:
        assert other.labels_ == fitted[0].labels_
        np.testing.assert_array_equal(other.coef_, fitted[0].coef_)
    assert label_columns(rows, ("regions",), len(xt)) == {"regions": yt["regions"]}
    with pytest.raises(ValueError, match="3 documents but 240 label lists"):
        label_columns(rows, ("regions",), 3)
    with pytest.raises(ValueError, match="label row 0 is not a mapping"):
        label_columns([["Europe"]], ("regions",), 1)


@pytest.mark.parametrize("strategy", ["cv", "fixed"])
@pytest.mark.parametrize("layout", ["dataframe", "rows"])
def test_grid_search_over_the_tagger(tiny_corpus, strategy, layout) -> None:
    (xt, yt), (xs, ys) = tiny_corpus["train"], tiny_corpus["test"]
    rows = [{"regions": r, "themes": t} for r, t in zip(yt["regions"], yt["themes"], strict=True)]
    Y = pd.DataFrame(yt) if layout == "dataframe" else rows
    tagger = NewsTagger(Featurizer(word_min_df=1), min_support=3, threshold_strategy=strategy, n_jobs=1)
    search = GridSearchCV(tagger, {"C": [0.5, 1.0]}, cv=2, error_score="raise").fit(xt, Y)
    assert [p["C"] for p in search.cv_results_["params"]] == [0.5, 1.0]
    assert (search.cv_results_["mean_test_score"] > 0.8).all()
    assert search.best_params_["C"] in (0.5, 1.0)
    assert search.score(xs, pd.DataFrame(ys)) > 0.9
    assert set(search.predict(xs[:2])) == {"regions", "themes"}


# --------------------------------------------------------------------------- the place-word mask


def test_the_place_word_mask_is_learned_by_the_featurizer(tiny_corpus) -> None:
    xt, yt = tiny_corpus["train"]
    feat = Featurizer(word_min_df=1, place_words=True).fit(xt)
    names = dict(feat.blocks_)["word"].get_feature_names_out()
    masked = set(names[feat.place_terms_])
    assert {"paris", "in paris", "tokyo", "nairobi"} <= masked
    assert not masked & {"oil", "wheat harvest", "officials", "rose"}
    assert not hasattr(Featurizer(word_min_df=1).fit(xt), "place_terms_")
    with pytest.raises(ValueError, match="hashed word features"):
        Featurizer(hashing=True, place_words=True).fit(xt)
    tagger = NewsTagger(
        Featurizer(word_min_df=1, place_words=True),
        min_support=3,
        threshold_strategy="fixed",
        n_jobs=1,
        axis_blocks={"regions": ["word-places"], "themes": ["word"]},
    ).fit(xt, yt)
    regions = tagger._slices()["regions"]
    word = tagger.featurizer_.block_slices_["word"]
    places = word.start + np.flatnonzero(tagger.featurizer_.place_terms_)
    assert not tagger.coef_[places, regions].any(), "region heads see no place term"
    assert tagger.coef_[places, tagger._slices()["themes"]].any(), "theme heads see them all"


# --------------------------------------------------------------------------- config keys all count


ALTERNATIVES = {
    "features.include_title": False,
    "features.lowercase": False,
    "features.word.enabled": False,
    "features.word.ngram_range": [1, 3],
    "features.word.min_df": 3,
    "features.word.max_df": 0.9,
    "features.word.max_features": 1000,
    "features.word.sublinear_tf": False,
    "features.word.hashing": True,
    "features.word.n_features": 1024,
    "features.char.enabled": True,
    "features.char.ngram_range": [2, 4],
    "features.char.min_df": 2,
    "features.char.max_features": 1000,
    "features.char.sublinear_tf": False,
    "features.gazetteer.enabled": False,
    "features.gazetteer.taxonomy": "TAXONOMY",
    "features.gazetteer.mode": "binary",
    "features.gazetteer.include_countries": False,
    "features.gazetteer.title_weight": 1.0,
    "features.gazetteer.min_city_population": 50000,
    "features.gazetteer.weight": 0.5,
    "features.gazetteer.axes": ["themes"],
    "features.gazetteer.mask_place_words": True,
    "features.gazetteer.lede_chars": 500,
    "features.gazetteer.home": "US",
    "model.classifier": "logreg",
    "model.C": 2.0,
    "model.class_weight": None,
    "model.max_iter": 500,
    "model.n_jobs": 1,
    "model.recent_corpora": ["reuters"],
    "model.recent_weight": 3.0,
    "model.recent_axes": ["regions"],
    "model.refit_axes": ["regions"],
    "axes.regions.C": 0.25,
    "axes.themes.C": 4.0,
    "thresholds.strategy": "validation",
    "thresholds.cv_folds": 5,
    "thresholds.default": 0.4,
    "thresholds.floor": 0.1,
    "thresholds.min_positives": 5,
    "thresholds.cv_include_validation": True,
    "thresholds.shared_sigmoid_axes": ["themes"],
    "axes.regions.min_support": 2,
    "axes.regions.at_least_one": True,
    "axes.themes.min_support": 2,
    "axes.themes.at_least_one": True,
    "split.seed": 7,
}
TAGGER_KEYS = re.compile(
    r"(features|model|thresholds)\..+|axes\.\w+\.(min_support|at_least_one|C)|split\.seed"
)


def test_every_model_config_key_reaches_the_tagger(tmp_path: Path) -> None:
    """A config key that changes nothing must not exist: each one, changed, changes the tagger's parameters."""
    taxonomy = tmp_path / "regions.yaml"
    taxonomy.write_text("regions:\n  Europe: [FR, DE]\n  Africa: [KE]\n")
    cfg = load_config("configs/reuters.yaml")
    keys = [key for key in cfg.flat() if TAGGER_KEYS.fullmatch(key)]
    assert sorted(keys) == sorted(ALTERNATIVES), "a new config key: add it here and wire it to the tagger"
    base = joblib.hash(tagger_from_config(cfg).get_params(deep=True))
    for key, value in ALTERNATIVES.items():
        value = str(taxonomy) if value == "TAXONOMY" else value
        changed = load_config("configs/reuters.yaml", [f"{key}={_yaml(value)}"])
        assert changed.flat()[key] != cfg.flat()[key], f"{key}: pick another alternative"
        params = tagger_from_config(changed).get_params(deep=True)
        assert joblib.hash(params) != base, f"{key} changes nothing in the tagger"


def _yaml(value: object) -> str:
    """A value as a ``--set`` override reads it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
