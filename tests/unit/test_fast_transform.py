"""The fast paths of ``Featurizer.transform`` give exactly what the plain scikit-learn / gazetteer code gives.

``features.word_transform`` replaces ``TfidfVectorizer.transform``'s counting, and the gazetteer memoises the
hits of each run of capitalised words; both must be invisible in the output, bit for bit.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from fixtures_model import reuters_texts
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline import gazetteer as G
from pipeline import places as P  # the scanning half of the gazetteer
from pipeline.features import Featurizer, word_transform

TRICKY = [
    "",
    "   ",
    "a b c d",
    "Oil oil OIL o_il __ _ x1 1x 42 4 2",
    "Tokyo's exports—rose; U.S.-Japan trade (15.6 bln dlrs) 'quoted' \"double\"",
    "Café naïve façade Ünïcode İstanbul ß ﬁnance ǅemal ²³ ① Ⅻ ٣٤ 中文字 日本",
    "curly ’quotes’ and em—dash in otherwise plain text about oil and Paris",
    "title line\n\x1e\nbody with the RECORD separator and\ttabs\r\nand CRLF",
    "x" * 5000 + " oil " + "y " * 200,
    "ＦＵＬＬＷＩＤＴＨ letters and e\u0301 combining marks",
]


def same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    """Identical CSR matrices: type, shape, dtypes, structure and float bits."""
    a, b = a.tocsr(), b.tocsr()
    return (
        type(a) is type(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.indices.dtype == b.indices.dtype
        and a.indptr.dtype == b.indptr.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and a.data.tobytes() == b.data.tobytes()
    )


def corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [
        "oil",
        "crude",
        "Paris",
        "tokyo",
        "trade",
        "the",
        "of",
        "said",
        "bank",
        "rates",
        "wheat",
        "x",
        "y",
        "z_1",
        "2024",
        "naïve",
        "café",
        "Ölpreis",
    ]
    return [" ".join(rng.choice(words, size=rng.integers(0, 40))) for _ in range(n)] + TRICKY


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_word_transform_equals_tfidf_transform(ngram_range, lowercase, dtype):
    docs = corpus(300, 1)
    vec = TfidfVectorizer(ngram_range=ngram_range, lowercase=lowercase, sublinear_tf=True, dtype=dtype).fit(
        docs
    )
    test = corpus(200, 2)
    assert same(word_transform(vec, test), vec.transform(test))
    assert same(word_transform(vec, test[:1]), vec.transform(test[:1]))
    for transform in (vec.transform, lambda d: word_transform(vec, d)):
        with pytest.raises(ValueError, match="0 sample"):
            transform([])


def test_word_transform_follows_a_refit_and_falls_back_when_it_cannot_apply():
    vec = TfidfVectorizer(ngram_range=(1, 2)).fit(corpus(100, 3))
    test = corpus(50, 4)
    assert same(word_transform(vec, test), vec.transform(test))
    vec.fit(corpus(100, 5))  # a new vocabulary: the cached tables must not be reused
    assert same(word_transform(vec, test), vec.transform(test))
    for other in (
        TfidfVectorizer(stop_words="english"),
        TfidfVectorizer(token_pattern=r"\w+"),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)),
        TfidfVectorizer(ngram_range=(1, 3)),
        TfidfVectorizer(binary=True),
    ):
        other.fit(corpus(100, 6))
        assert same(word_transform(other, test), other.transform(test))


ALPHABET = st.sampled_from(list("aAbBzZ09_ .,;'-\n\t\x1e") + list("éÉßİıﬁ’—中①²\u0301"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(ALPHABET, max_size=60), min_size=1, max_size=8))
def test_word_transform_on_random_text(docs):
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
    vec.fit([*docs, "ab cd", "ab cd ef"])
    assert same(word_transform(vec, docs), vec.transform(docs))


def test_featurizer_transform_equals_the_plain_blocks():
    texts = corpus(200, 7)
    frame = pd.DataFrame({"title": [f"Title {i} Tokyo" for i in range(len(texts))], "text": texts})
    feat = Featurizer(word_min_df=1, char=True, gazetteer=True, country_to_region={"JP": "Asia-Pacific"})
    feat.fit(frame)
    joined = [f"{t}\n{x}" for t, x in zip(frame["title"], frame["text"], strict=True)]
    parts = [
        feat._gazetteer_matrix(vec, list(frame["title"]), list(frame["text"]))
        if name == "gaz"
        else vec.transform(joined)
        for name, vec in feat.blocks_
    ]
    assert same(feat.transform(frame), sp.hstack(parts, format="csr", dtype=np.float32))


def test_word_transform_on_reuters():
    texts = reuters_texts()
    if texts is None:
        pytest.skip("the prepared Reuters dataset is not there (make data)")
    train, test = texts["train"][:1500], texts["test"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32).fit(train)
    assert same(word_transform(vec, test), vec.transform(test))


# --------------------------------------------------------------------------- gazetteer


def reference_scan(idx, text: str) -> list[tuple[str, str, str]]:
    """The gazetteer's scan as it was before runs were memoised (no cache)."""
    out: list[tuple[str, str, str]] = []
    for run in P._RUN_RE.findall(text):
        e = idx.exact.get(run, P._MISS)
        if e is not P._MISS:
            if e is not None:
                out.append((run, *e))
            continue
        if run.isalpha():
            if run.isupper():
                e = idx.upper.get(run)
                if e is not None:
                    out.append((run, *e))
            continue
        P._scan_run(idx, run, out)
    return out


GAZ_TEXTS = [
    "Papua New Guinea and Guinea; the U.S. and U.K. met in Rio de Janeiro, Côte d'Ivoire and Bosnia and Herzegovina.",
    "IRAN SAYS OIL OUTPUT UP; TEHRAN, March 3 - Iran's Iranian officials, Iran-backed groups, Russia-Ukraine talks.",
    "Michael Jordan visited Jordan. The Kremlin and Downing Street; Latin America; South China Sea; New Guinea.",
    "",
    "lower case only, no capitals here at all",
]


@pytest.mark.parametrize("cache_size", [2, 200_000])
def test_gazetteer_memo_changes_nothing(monkeypatch, cache_size):
    monkeypatch.setattr(P, "_RUN_CACHE_SIZE", cache_size)
    gaz = G.Gazetteer()
    idx = gaz._index
    idx.runs.clear()
    reuters = reuters_texts()
    texts = GAZ_TEXTS + ((reuters["test"][:800] + reuters["titles"][:800]) if reuters else [])
    for _ in range(2):  # a cold and a warm cache
        for text in texts:
            hits = reference_scan(idx, text)
            assert P._scan(idx, text) == hits
            assert gaz.find(text) == hits
            expected = Counter(iso for _, iso, _ in hits)
            assert list(gaz.country_counts(text).items()) == list(expected.items())
    assert len(idx.runs) <= max(cache_size, 1)
