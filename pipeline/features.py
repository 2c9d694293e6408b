"""The featurizer: text vectorizer blocks plus the gazetteer block, fitted once and shared by every axis.

Documents are given as a sequence of strings (the text) or as a pandas DataFrame / mapping with a ``text``
column and an optional ``title`` column. Word (and optionally character) n-grams see ``title + text``;
the gazetteer block sees the title and the text apart, so title mentions can weigh more.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from pipeline.gazetteer import Gazetteer, GazetteerVectorizer
from pipeline.scoring import DEFAULT_TOKEN_PATTERN, WordCounter, gazetteer_block, joined, split_docs
from pipeline.taxonomy import country_regions

Docs = Sequence[str] | Mapping[str, Sequence[Any]] | Any  # Any: a pandas DataFrame


_VOCABULARY = (
    CountVectorizer._parameter_constraints
)  # min_df, max_df, max_features as scikit-learn checks them


class Featurizer(TransformerMixin, BaseEstimator):
    """Word n-gram TF-IDF (or hashed), optional character n-grams, and gazetteer region features.

    Parameters are checked at ``fit`` against ``_parameter_constraints`` (scikit-learn's
    ``InvalidParameterError``, a ``ValueError``, names the parameter). With ``place_words=True`` the
    fitted ``place_terms_`` marks the word-block terms that name a place (for heads that must learn places
    from the gazetteer block rather than from the place names of their training years).
    ``gazetteer_lede_chars`` makes the gazetteer counts length-aware (``pipeline.places.doc_counts``).
    ``home`` (an ISO alpha-2 code or None) is the publication's own country: the featurizer never uses it,
    fitting or transforming; it rides along to the compiled model, whose scoring applies it
    (``pipeline.scoring.ScoringMixin.tag``).
    """

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's own convention
        "word": ["boolean"],
        "word_ngram_range": [tuple, list],
        "word_min_df": _VOCABULARY["min_df"],
        "word_max_df": _VOCABULARY["max_df"],
        "word_max_features": _VOCABULARY["max_features"],
        "sublinear_tf": ["boolean"],
        "hashing": ["boolean"],
        "n_features": [Interval(Integral, 1, np.iinfo(np.int32).max, closed="left")],
        "char": ["boolean"],
        "char_ngram_range": [tuple, list],
        "char_min_df": _VOCABULARY["min_df"],
        "char_max_features": _VOCABULARY["max_features"],
        "char_sublinear_tf": ["boolean"],
        "include_title": ["boolean"],
        "lowercase": ["boolean"],
        "gazetteer": ["boolean"],
        "country_to_region": [Mapping, None],
        "gazetteer_mode": [StrOptions({"log", "binary", "share", "log+share"})],
        "include_countries": ["boolean"],
        "title_weight": [Interval(Real, 0, None, closed="left")],
        "min_city_population": [Interval(Integral, 0, None, closed="left")],
        "gazetteer_weight": [Interval(Real, 0, None, closed="left")],
        "place_words": ["boolean"],
        "gazetteer_lede_chars": [Interval(Integral, 0, None, closed="left")],
        "home": [str, None],
    }

    def __init__(
        self,
        word: bool = True,
        word_ngram_range: tuple[int, int] = (1, 2),
        word_min_df: int = 2,
        word_max_df: float = 1.0,
        word_max_features: int | None = None,
        sublinear_tf: bool = True,
        hashing: bool = False,
        n_features: int = 2**20,
        char: bool = False,
        char_ngram_range: tuple[int, int] = (3, 5),
        char_min_df: int = 3,
        char_max_features: int | None = 200_000,
        char_sublinear_tf: bool = True,
        include_title: bool = True,
        lowercase: bool = True,
        gazetteer: bool = False,
        country_to_region: dict[str, str] | None = None,
        gazetteer_mode: str = "log",
        include_countries: bool = True,
        title_weight: float = 2.0,
        min_city_population: int = 100_000,
        gazetteer_weight: float = 1.0,
        place_words: bool = False,
        gazetteer_lede_chars: int = 0,
        home: str | None = None,
    ) -> None:
        self.word = word
        self.word_ngram_range = word_ngram_range
        self.word_min_df = word_min_df
        self.word_max_df = word_max_df
        self.word_max_features = word_max_features
        self.sublinear_tf = sublinear_tf
        self.hashing = hashing
        self.n_features = n_features
        self.char = char
        self.char_ngram_range = char_ngram_range
        self.char_min_df = char_min_df
        self.char_max_features = char_max_features
        self.char_sublinear_tf = char_sublinear_tf
        self.include_title = include_title
        self.lowercase = lowercase
        self.gazetteer = gazetteer
        self.country_to_region = country_to_region
        self.gazetteer_mode = gazetteer_mode
        self.include_countries = include_countries
        self.title_weight = title_weight
        self.min_city_population = min_city_population
        self.gazetteer_weight = gazetteer_weight
        self.place_words = place_words
        self.gazetteer_lede_chars = gazetteer_lede_chars
        self.home = home

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # -- blocks

    def _word_block(self) -> Any:
        ngrams = tuple(self.word_ngram_range)
        if self.hashing:
            return make_pipeline(
                HashingVectorizer(
                    ngram_range=ngrams,
                    n_features=self.n_features,
                    alternate_sign=False,
                    norm=None,
                    lowercase=self.lowercase,
                    dtype=np.float32,
                ),
                TfidfTransformer(sublinear_tf=self.sublinear_tf),
            )
        return TfidfVectorizer(
            ngram_range=ngrams,
            min_df=self.word_min_df,
            max_df=self.word_max_df,
            max_features=self.word_max_features,
            sublinear_tf=self.sublinear_tf,
            lowercase=self.lowercase,
            dtype=np.float32,
        )

    def _char_block(self) -> Any:
        return TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(self.char_ngram_range),
            min_df=self.char_min_df,
            max_features=self.char_max_features,
            sublinear_tf=self.char_sublinear_tf,
            lowercase=self.lowercase,
            dtype=np.float32,
        )

    def _gazetteer_block(self) -> Any:
        mapping = dict(self.country_to_region or {})
        return GazetteerVectorizer(
            country_to_region=mapping or None,
            regions=tuple(sorted(set(mapping.values()))),
            mode="log" if self.gazetteer_mode == "log+share" else self.gazetteer_mode,
            include_countries=self.include_countries,
            title_weight=self.title_weight,
            min_city_population=self.min_city_population,
            lede_chars=self.gazetteer_lede_chars,
        )

    # -- sklearn API

    def fit(self, X: Docs, y: Any = None) -> Featurizer:
        """Learn the vocabularies (and idf weights) from training documents."""
        self.fit_transform(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)  # the inner vectorizers get checked values
    def fit_transform(self, X: Docs, y: Any = None, **fit_params: Any) -> sp.csr_matrix:
        """Fit every block and return the training matrix."""
        titles, texts = split_docs(X)
        if not texts:
            raise ValueError("no documents to fit on")
        if self.place_words and self.word and self.hashing:
            raise ValueError("place_words needs a word vocabulary: hashed word features name no terms")
        blocks: list[tuple[str, Any]] = []
        mats = []
        text_in = joined(titles, texts) if self.include_title else texts
        if self.word:
            vec = self._word_block()
            mats.append(vec.fit_transform(text_in))
            blocks.append(("word", vec))
        if self.char:
            vec = self._char_block()
            mats.append(vec.fit_transform(text_in))
            blocks.append(("char", vec))
        if self.gazetteer:
            vec = self._gazetteer_block().fit(texts)
            mats.append(self._gazetteer_matrix(vec, titles, texts))
            blocks.append(("gaz", vec))
        if not blocks:
            raise ValueError("every feature block is disabled")
        self.blocks_ = blocks
        self.n_features_out_ = sum(m.shape[1] for m in mats)
        starts = np.cumsum([0] + [m.shape[1] for m in mats])
        self.block_slices_ = {
            name: slice(int(a), int(b))
            for (name, _), a, b in zip(blocks, starts[:-1], starts[1:], strict=True)
        }
        if self.place_words:
            self.place_terms_ = self._place_terms(dict(blocks)["word"]) if self.word else np.zeros(0, bool)
        return sp.hstack(mats, format="csr", dtype=np.float32)

    def _place_terms(self, vec: TfidfVectorizer) -> np.ndarray:
        """A mask over the word block: True for terms that are, or contain, a gazetteer place name."""
        names = vec.get_feature_names_out()
        places = Gazetteer(min_city_population=self.min_city_population).place_words()
        return np.fromiter(
            (t in places or any(w in places for w in t.split(" ")) for t in names),
            dtype=bool,
            count=len(names),
        )

    def _gazetteer_matrix(self, vec: Any, titles: list[str], texts: list[str]) -> sp.csr_matrix:
        mat = vec.transform(list(zip(titles, texts, strict=True))).tocsr()
        shares = self.gazetteer_mode == "log+share"
        return gazetteer_block(mat, shares, vec.n_regions_, self.gazetteer_weight).to_scipy()

    def transform(self, X: Docs) -> sp.csr_matrix:
        """The feature matrix of ``X`` (rows in input order)."""
        check_is_fitted(self, "blocks_")
        titles, texts = split_docs(X)
        text_in = joined(titles, texts) if self.include_title else texts
        mats = []
        for name, vec in self.blocks_:
            if name == "gaz":
                mats.append(self._gazetteer_matrix(vec, titles, texts))
            else:
                mats.append(word_transform(vec, text_in))
        return sp.hstack(mats, format="csr", dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Feature names, prefixed by block (``word:``, ``char:``, ``gaz:``)."""
        check_is_fitted(self, "blocks_")
        names: list[str] = []
        for name, vec in self.blocks_:
            if name == "word" and self.hashing:
                names += [f"word:#{i}" for i in range(self.n_features)]
            elif name == "gaz" and self.gazetteer_mode == "log+share":
                base = list(vec.get_feature_names_out())
                names += [f"gaz:{f}" for f in base]
                names += [f"gaz:share:{f}" for f in base[: vec.n_regions_]]
            else:
                names += [f"{name}:{f}" for f in vec.get_feature_names_out()]
        return np.asarray(names, dtype=object)


# --------------------------------------------------------------------------- fast word n-gram counts
#
# ``TfidfVectorizer.transform`` spends nearly all its time in Python: it builds every bigram string of every
# document, looks each one up and counts in a dict per document. ``word_transform`` gives the same matrix,
# bit for bit, for the default word analyzer: the counts come from ``pipeline.scoring.WordCounter`` (the
# counter a compiled model scores with), the TF-IDF weighting and normalisation are scikit-learn's own
# ``TfidfTransformer.transform``.

_WORD_INDEXES: weakref.WeakKeyDictionary[Any, WordCounter] = weakref.WeakKeyDictionary()
_WORD_INDEX_LOCK = threading.Lock()


def _fast_word_ok(vec: Any) -> bool:
    """Whether ``word_transform`` reproduces ``vec.transform`` (the default word analyzer, 1- and 2-grams)."""
    return (
        type(vec) is TfidfVectorizer
        and vec.analyzer == "word"
        and vec.input == "content"
        and vec.token_pattern == DEFAULT_TOKEN_PATTERN
        and vec.tokenizer is None
        and vec.preprocessor is None
        and vec.stop_words is None
        and not vec.strip_accents
        and not vec.binary
        and tuple(vec.ngram_range) in ((1, 1), (1, 2), (2, 2))
        and hasattr(vec, "vocabulary_")
        and hasattr(vec, "_tfidf")
    )


def _word_index(vec: Any) -> WordCounter:
    with _WORD_INDEX_LOCK:
        index = _WORD_INDEXES.get(vec)
        if index is None or index.vocabulary is not vec.vocabulary_:  # refitted since
            index = WordCounter.from_vocabulary(
                vec.vocabulary_, tuple(vec.ngram_range), vec.lowercase, vec.dtype
            )
            _WORD_INDEXES[vec] = index
        return index


def word_transform(vec: Any, docs: Sequence[str]) -> sp.csr_matrix:
    """``vec.transform(docs)``, computed faster when ``vec`` is a default word-n-gram ``TfidfVectorizer``.

    The result is identical (same indices, same float32 values): only the counting differs, the TF-IDF
    weighting and normalisation are the vectorizer's own.
    """
    if not _fast_word_ok(vec) or any(not isinstance(d, str) for d in docs):
        return vec.transform(docs)
    return vec._tfidf.transform(_word_index(vec).counts(docs).to_scipy(), copy=False)


def featurizer_from_config(features: Any) -> Featurizer:
    """A Featurizer set up from a ``FeaturesConfig``."""
    w, c, g = features.word, features.char, features.gazetteer
    return Featurizer(
        word=w.enabled,
        word_ngram_range=tuple(w.ngram_range),
        word_min_df=w.min_df,
        word_max_df=w.max_df,
        word_max_features=w.max_features,
        sublinear_tf=w.sublinear_tf,
        hashing=w.hashing,
        n_features=w.n_features,
        char=c.enabled,
        char_ngram_range=tuple(c.ngram_range),
        char_min_df=c.min_df,
        char_max_features=c.max_features,
        char_sublinear_tf=c.sublinear_tf,
        include_title=features.include_title,
        lowercase=features.lowercase,
        gazetteer=g.enabled,
        country_to_region=country_regions(g.taxonomy) if g.enabled else None,
        gazetteer_mode=g.mode,
        include_countries=g.include_countries,
        title_weight=g.title_weight,
        min_city_population=g.min_city_population,
        gazetteer_weight=g.weight,
        place_words=g.enabled and g.mask_place_words,
        gazetteer_lede_chars=g.lede_chars,
        home=g.home,
    )
