"""The compiled scorer on real data: bit-identical scores to the tagger it was compiled from, on the Reuters
test split (the trained and exported small model) and on the world model's test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_model import reuters_test_rows, small_model  # noqa: F401 - fixture

from pipeline.loading import load_model_files, load_scorer, load_verified, locate_model
from pipeline.prepare import load_prepared
from pipeline.scoring import Scorer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def assert_same_scores(tagger, scorer, docs) -> None:
    want, got = tagger.transform_docs(docs), scorer.transform_docs(docs)
    assert np.array_equal(want.indptr, got.indptr) and np.array_equal(want.indices, got.indices)
    assert np.array_equal(want.data, got.data)
    a, b = tagger.scores_from_features(want), scorer.scores_from_features(got)
    for axis in tagger.axes:
        assert np.array_equal(a[axis], b[axis]), axis
    assert tagger.labels_from_scores(a) == scorer.labels_from_scores(b)


def test_the_exported_model_scores_the_reuters_test_split_like_its_tagger(small_model) -> None:  # noqa: F811
    info = locate_model(str(small_model.folder))
    assert info.scorer_path is not None and info.scorer_path.name == "scorer.npz"
    scorer = load_model_files(info)
    assert isinstance(scorer, Scorer)
    tagger = load_verified(info.path, info.sha256)
    rows = reuters_test_rows()
    assert len(rows) > 3000
    docs = {"title": [r["title"] for r in rows], "text": [r["text"] for r in rows]}
    assert_same_scores(tagger, scorer, docs)
    assert load_scorer(info.scorer_path, info.scorer_sha256).labels_ == tagger.labels_


def test_the_world_model_compiles_to_the_same_scores(world_tagger, tmp_path) -> None:
    path = tmp_path / "scorer.npz"
    world_tagger.compile().save(path)
    scorer = Scorer.from_bytes(path.read_bytes())
    test = load_prepared(ROOT / "data" / "processed" / "world")["test"].to_pandas()
    assert_same_scores(world_tagger, scorer, test[["title", "text"]])
