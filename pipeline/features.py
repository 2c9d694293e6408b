"""The featurizer: text vectorizer blocks plus the gazetteer block, fitted once and shared by every axis.

Documents are given as a sequence of strings (the text) or as a pandas DataFrame / mapping with a ``text``
column and an optional ``title`` column. Word (and optionally character) n-grams see ``title + text``;
the gazetteer block sees the title and the text apart, so title mentions can weigh more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

Docs = Sequence[str] | Mapping[str, Sequence[Any]] | Any  # Any: a pandas DataFrame


def split_docs(docs: Docs) -> tuple[list[str], list[str]]:
    """(titles, texts) from strings or a table with ``text`` and optional ``title`` columns."""
    if isinstance(docs, str):
        raise TypeError("expected a sequence of documents, got a single string")
    if hasattr(docs, "columns") or isinstance(docs, Mapping):
        if "text" not in docs:
            raise ValueError("the input table needs a 'text' column")
        texts = [t if isinstance(t, str) else "" for t in docs["text"]]
        raw_titles = docs["title"] if "title" in docs else [""] * len(texts)
        titles = [t if isinstance(t, str) else "" for t in raw_titles]
        return titles, texts
    texts = [t if isinstance(t, str) else "" for t in docs]
    return [""] * len(texts), texts


def joined(titles: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Title and text as one string per document (what the n-gram blocks read)."""
    return [f"{ti}\n{te}" if ti else te for ti, te in zip(titles, texts, strict=True)]


class Featurizer(BaseEstimator, TransformerMixin):
    """Word n-gram TF-IDF (or hashed), optional character n-grams, and gazetteer region features."""

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
        include_title: bool = True,
        lowercase: bool = True,
        gazetteer: bool = False,
        country_to_region: dict[str, str] | None = None,
        gazetteer_mode: str = "log",
        include_countries: bool = True,
        title_weight: float = 2.0,
        min_city_population: int = 100_000,
        gazetteer_weight: float = 1.0,
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
        self.include_title = include_title
        self.lowercase = lowercase
        self.gazetteer = gazetteer
        self.country_to_region = country_to_region
        self.gazetteer_mode = gazetteer_mode
        self.include_countries = include_countries
        self.title_weight = title_weight
        self.min_city_population = min_city_population
        self.gazetteer_weight = gazetteer_weight

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
            sublinear_tf=True,
            lowercase=self.lowercase,
            dtype=np.float32,
        )

    def _gazetteer_block(self) -> Any:
        from pipeline.gazetteer import GazetteerVectorizer

        mapping = dict(self.country_to_region or {})
        return GazetteerVectorizer(
            country_to_region=mapping or None,
            regions=tuple(sorted(set(mapping.values()))),
            mode=self.gazetteer_mode,
            include_countries=self.include_countries,
            title_weight=self.title_weight,
            min_city_population=self.min_city_population,
        )

    # -- sklearn API

    def fit(self, X: Docs, y: Any = None) -> Featurizer:
        """Learn the vocabularies (and idf weights) from training documents."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Docs, y: Any = None, **fit_params: Any) -> sp.csr_matrix:
        """Fit every block and return the training matrix."""
        titles, texts = split_docs(X)
        if not texts:
            raise ValueError("no documents to fit on")
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
        return sp.hstack(mats, format="csr", dtype=np.float32)

    def _gazetteer_matrix(self, vec: Any, titles: list[str], texts: list[str]) -> sp.csr_matrix:
        mat = vec.transform(list(zip(titles, texts, strict=True)))
        return (mat * self.gazetteer_weight).astype(np.float32).tocsr()

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
                mats.append(vec.transform(text_in))
        return sp.hstack(mats, format="csr", dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Feature names, prefixed by block (``word:``, ``char:``, ``gaz:``)."""
        check_is_fitted(self, "blocks_")
        names: list[str] = []
        for name, vec in self.blocks_:
            if name == "word" and self.hashing:
                names += [f"word:#{i}" for i in range(self.n_features)]
            else:
                names += [f"{name}:{f}" for f in vec.get_feature_names_out()]
        return np.asarray(names, dtype=object)


def featurizer_from_config(features: Any) -> Featurizer:
    """A Featurizer set up from a ``FeaturesConfig``."""
    from pipeline.taxonomy import country_regions

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
        include_title=features.include_title,
        lowercase=features.lowercase,
        gazetteer=g.enabled,
        country_to_region=country_regions(g.taxonomy) if g.enabled else None,
        gazetteer_mode=g.mode,
        include_countries=g.include_countries,
        title_weight=g.title_weight,
        min_city_population=g.min_city_population,
        gazetteer_weight=g.weight,
    )
