"""The tagger: one featurizer, one multi-label linear head per axis, per-label probabilities and thresholds.

Each label is a binary linear model (a linear SVM or a logistic regression) on the shared features; its
raw score is turned into a probability by a sigmoid fitted on held-out scores (Platt scaling), and a
per-label threshold on that probability is tuned to maximise F1 on held-out documents. Held-out means
the validation split (``threshold_strategy="validation"``) or out-of-fold scores of a k-fold split of the
training documents (``"cv"``: more positives per label, the validation split stays unseen; with
``cv_use_validation=True`` it is folded in as well). After fitting, all heads live in one coefficient
matrix, so scoring a batch is one sparse product.

Two training-only options serve a top-1 decision on an axis. ``refit_axes``: once their sigmoids and thresholds
are fitted on the validation split, the heads of these axes are fitted again on train + validation (the
validation documents nearest in time to the text the model will tag), keeping the calibration; their
validation figures are then in-sample. ``shared_sigmoid_axes``: the labels of these axes share one Platt sigmoid
fitted on all their held-out scores, so the most probable label is the head with the highest raw score (per-label
sigmoids reorder the heads; thresholds are still tuned per label).

A single-label axis (``multi_label`` false for it: one section per article) trains the same one-vs-rest
heads and Platt sigmoids, but tunes no thresholds: each document gets exactly one label, its most probable
one, and the axis's scores are the Platt probabilities divided by their sum, so they sum to 1
(``ScoringMixin.scores_from_features``).

The tagger is a scikit-learn estimator: ``fit``, ``predict`` (per axis, a 0/1 indicator matrix),
``predict_proba`` (per axis, probabilities), ``score`` (mean micro-F1 over the axes), parameters checked at
``fit`` against ``_parameter_constraints``; ``clone``, ``get_params`` and ``GridSearchCV`` work on it.
Labels (``Y``) come per axis and per document, in any of three layouts (see ``label_columns``); a pandas
DataFrame with one column per axis, or a list of one mapping per document, is what cross-validation can
split.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from pipeline.features import Docs, Featurizer, featurizer_from_config
from pipeline.scoring import GazLayout, Scorer, ScoringMixin, compile_parts, sigmoid

Labels = Mapping[str, Sequence[Sequence[str] | None]]
Coverage = Mapping[str, Mapping[str, Sequence[str]]]
BLOCKS = ("word", "word-places", "char", "gaz")  # what ``axis_blocks`` may name


def fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) with P(y=1 | s) = sigmoid(a*s + b), fitted on held-out scores; (1, 0) when one class only.

    Platt's method with smoothed targets, solved by Newton steps with a backtracking line search
    (Lin, Lin & Weng 2007), so separable scores give a finite, steep sigmoid rather than a diverging one.
    """
    if y.min() == y.max():
        return 1.0, 0.0
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(a: float, b: float) -> float:
        z = a * scores + b
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    a, b = 1.0, float(np.log((n_neg + 1.0) / (n_pos + 1.0))) * -1.0
    f = loss(a, b)
    for _ in range(100):
        p = sigmoid(a * scores + b)
        g = p - target
        g1, g2 = float((g * scores).sum()), float(g.sum())
        if abs(g1) < 1e-6 and abs(g2) < 1e-6:
            break
        w = p * (1 - p)
        h11, h12, h22 = (
            float((w * scores * scores).sum()) + 1e-12,
            float((w * scores).sum()),
            float(w.sum()) + 1e-12,
        )
        det = h11 * h22 - h12 * h12
        da, db = -(h22 * g1 - h12 * g2) / det, -(h11 * g2 - h12 * g1) / det
        step = 1.0
        while step > 1e-10:
            na, nb = a + step * da, b + step * db
            nf = loss(na, nb)
            if nf < f + 1e-4 * step * (g1 * da + g2 * db):
                break
            step /= 2
        else:
            break
        a, b, f = na, nb, nf
    return float(a), float(b)


def best_threshold(probs: np.ndarray, y: np.ndarray, floor: float) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``probs >= threshold`` on held-out labels ``y``."""
    order = np.argsort(-probs, kind="stable")
    p_sorted, y_sorted = probs[order], y[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, len(y) + 1)
    f1 = 2 * tp / (k + y.sum())
    # only cut between distinct probabilities
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    nxt = p_sorted[i + 1] if i + 1 < len(p_sorted) else 0.0
    threshold = max(float((p_sorted[i] + nxt) / 2), floor)
    return threshold, float(f1[i])


def label_columns(Y: Any, axes: Sequence[str], n_docs: int) -> dict[str, Sequence[Sequence[str]]]:
    """Per axis, each document's label list, from any of the layouts the tagger accepts.

    ``Y`` is a mapping axis -> one label list per document (what ``train`` passes), a pandas DataFrame with
    one column per axis holding label lists, or a sequence of one mapping axis -> labels per document. The
    last two are what scikit-learn's cross-validation can split. ``None`` in a cell means unknown: the
    document's corpus cannot say (it trains and scores none of that axis's heads).
    """
    if hasattr(Y, "columns") or isinstance(Y, Mapping):
        missing = [axis for axis in axes if axis not in Y]
        if missing:
            raise ValueError(f"the labels lack the axes {missing}: one entry per axis of {list(axes)}")
        out = {a: list(Y[a]) for a in axes}
    else:
        rows = list(Y)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or any(axis not in row for axis in axes):
                raise ValueError(f"label row {i} is not a mapping with the axes {list(axes)}: {row!r}")
        out = {a: [row[a] for row in rows] for a in axes}
    for axis, rows in out.items():
        if len(rows) != n_docs:
            raise ValueError(f"{n_docs} documents but {len(rows)} label lists on axis {axis!r}")
    return out


def _n_docs(X: Docs) -> int:
    return len(X["text"]) if isinstance(X, Mapping) else len(X)


def corpus_column(X: Docs, n_docs: int) -> np.ndarray:
    """Each document's corpus name (the ``corpus`` column of a table; "" when there is none)."""
    if (hasattr(X, "columns") or isinstance(X, Mapping)) and "corpus" in X:
        return np.asarray([str(c) if c is not None else "" for c in X["corpus"]], dtype=object)
    return np.full(n_docs, "", dtype=object)


def micro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro-averaged F1 of predicted label lists against gold ones (0.0 when both are empty).

    Every label counts, so a gold label the model cannot predict is a miss, as in the evaluation.
    """
    hits = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        if g is None:  # unknown: not scored
            continue
        g, p = set(g), set(p)
        hits, n_gold, n_pred = hits + len(g & p), n_gold + len(g), n_pred + len(p)
    return 2 * hits / (n_gold + n_pred) if n_gold + n_pred else 0.0


class NewsTagger(ScoringMixin, BaseEstimator):
    """Multi-label tagger over several axes sharing one featurizer (scikit-learn estimator contract).

    ``fit(X, Y, X_val, Y_val)`` takes documents and their labels (see ``label_columns`` for the layouts of
    ``Y``); ``X_val``/``Y_val`` are needed by ``threshold_strategy="validation"`` only. Parameters are
    checked when ``fit`` starts: a value outside ``_parameter_constraints`` raises scikit-learn's
    ``InvalidParameterError`` (a ``ValueError``) naming the parameter and the accepted values.
    """

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's own convention
        "featurizer": [HasMethods(["fit_transform", "transform"]), None],
        "axes": [tuple, list],
        "classifier": [StrOptions({"linear_svc", "logreg"})],
        "C": [Interval(Real, 0, None, closed="neither"), Mapping],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "min_support": [Interval(Integral, 1, None, closed="left"), Mapping],
        "at_least_one": ["boolean", Mapping],
        "multi_label": ["boolean", Mapping],
        "threshold_strategy": [StrOptions({"validation", "cv", "fixed"})],
        "cv_folds": [Interval(Integral, 2, None, closed="left")],
        "default_threshold": [Interval(Real, 0, 1, closed="neither")],
        "threshold_floor": [Interval(Real, 0, 1, closed="left")],
        "min_positives": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "axis_blocks": [Mapping, None],
        "cv_use_validation": ["boolean"],
        "recent_corpora": [tuple, list],
        "recent_weight": [Interval(Real, 0, None, closed="left")],
        "recent_axes": [tuple, list, None],
        "refit_axes": [tuple, list],
        "shared_sigmoid_axes": [tuple, list],
    }

    def __init__(
        self,
        featurizer: Featurizer | None = None,
        axes: Sequence[str] = ("regions", "themes"),
        classifier: str = "linear_svc",
        C: float | Mapping[str, float] = 1.0,
        class_weight: str | None = "balanced",
        max_iter: int = 2000,
        min_support: Mapping[str, int] | int = 5,
        at_least_one: Mapping[str, bool] | bool = False,
        threshold_strategy: str = "validation",
        cv_folds: int = 3,
        default_threshold: float = 0.5,
        threshold_floor: float = 0.05,
        min_positives: int = 3,
        n_jobs: int = 2,
        random_state: int = 0,
        axis_blocks: Mapping[str, Sequence[str]] | None = None,
        cv_use_validation: bool = False,
        recent_corpora: Sequence[str] = (),
        recent_weight: float = 1.0,
        recent_axes: Sequence[str] | None = None,
        multi_label: Mapping[str, bool] | bool = True,
        refit_axes: Sequence[str] = (),
        shared_sigmoid_axes: Sequence[str] = (),
    ) -> None:
        self.featurizer = featurizer
        self.axes = axes
        self.classifier = classifier
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.min_support = min_support
        self.at_least_one = at_least_one
        self.threshold_strategy = threshold_strategy
        self.cv_folds = cv_folds
        self.default_threshold = default_threshold
        self.threshold_floor = threshold_floor
        self.min_positives = min_positives
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.axis_blocks = axis_blocks
        self.cv_use_validation = cv_use_validation
        self.recent_corpora = recent_corpora
        self.recent_weight = recent_weight
        self.recent_axes = recent_axes
        self.multi_label = multi_label
        self.refit_axes = refit_axes
        self.shared_sigmoid_axes = shared_sigmoid_axes

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ helpers

    def _per_axis(self, value: Any, axis: str, default: Any) -> Any:
        return value.get(axis, default) if isinstance(value, Mapping) else value

    def _at_least_one(self, axis: str) -> bool:
        return bool(self._per_axis(self.at_least_one, axis, False))

    def _multi_label(self, axis: str) -> bool:
        return bool(self._per_axis(self.multi_label, axis, True))

    def _base(self, axis: str = "") -> Any:
        """The unfitted binary model of one label of ``axis`` (``C`` may differ per axis; ``random_state``
        fixes liblinear's coordinate order)."""
        C = self._per_axis(self.C, axis, 1.0)
        common = {"C": C, "class_weight": self.class_weight, "max_iter": self.max_iter}
        if self.classifier == "logreg":
            return LogisticRegression(**common, solver="liblinear", random_state=self.random_state)
        if self.classifier == "linear_svc":
            return LinearSVC(**common, random_state=self.random_state)
        raise ValueError(f"unknown classifier {self.classifier!r}: use linear_svc or logreg")

    def _columns(self) -> dict[str, np.ndarray | None]:
        """Per axis, the feature columns its heads see (None: all).

        Block names: ``word``, ``char``, ``gaz``, and ``word-places`` for the word columns minus the terms
        that name a place (so a head learns places from the gazetteer, which knows every country, and not
        from the place names of its training years).
        """
        out: dict[str, np.ndarray | None] = {}
        slices = getattr(self.featurizer_, "block_slices_", {})
        for axis in self.axes:
            blocks = (self.axis_blocks or {}).get(axis)
            if blocks is None or set(blocks) >= set(slices):
                out[axis] = None
                continue
            parts = [np.arange(slices[b].start, slices[b].stop) for b in blocks if b in slices]
            if "word-places" in blocks and "word" in slices:
                parts.append(slices["word"].start + np.flatnonzero(~self.featurizer_.place_terms_))
            out[axis] = np.sort(np.concatenate(parts)) if parts else np.arange(0)
        return out

    def _check_axes(self) -> None:
        """ValueError for an empty or repeated axis, or an ``axis_blocks`` the featurizer cannot serve."""
        if not self.axes or len(set(self.axes)) != len(self.axes):
            raise ValueError(f"axes must name one or more distinct axes, got {self.axes!r}")
        for axis, blocks in (self.axis_blocks or {}).items():
            unknown = sorted(set(blocks) - set(BLOCKS))
            if unknown:
                raise ValueError(f"axis_blocks[{axis!r}] names unknown blocks {unknown}: use {list(BLOCKS)}")
            if "word-places" in blocks and not getattr(self.featurizer, "place_words", False):
                raise ValueError(
                    f"axis_blocks[{axis!r}] uses 'word-places': the featurizer needs place_words=True"
                )

    def _views(
        self,
        X: sp.csr_matrix,
        mask: np.ndarray | None,
        recent: np.ndarray | None,
        only: Sequence[int] | None = None,
    ) -> tuple[list[tuple[Any, np.ndarray | None, np.ndarray | None, bool]], list[tuple[int, str]]]:
        """The training matrices the heads need, one per (axis, document mask), and which one each head uses.

        A view is (matrix, its feature columns or None, its rows or None, whether it carries the recent
        copy). Heads of one axis whose corpora cover the same documents share a view. Only the axes of
        ``recent_axes`` (all when None) get the recent copy. With ``only``, heads outside it get no view (-1).
        """
        owner = [axis for axis in self.axes for _ in self.labels_[axis]]
        columns = self._columns()
        keys: dict[tuple[str, bytes], int] = {}
        views: list[tuple[Any, np.ndarray | None, np.ndarray | None, bool]] = []
        which = []
        for j, axis in enumerate(owner):
            if only is not None and j not in only:
                which.append((-1, axis))
                continue
            key = (axis, b"" if mask is None else np.packbits(mask[:, j]).tobytes())
            if key not in keys:
                rows = None if mask is None or mask[:, j].all() else np.flatnonzero(mask[:, j])
                keys[key] = len(views)
                use_recent = self.recent_axes is None or axis in self.recent_axes
                views.append(self._view(X, columns[axis], rows, recent if use_recent else None))
            which.append((keys[key], axis))
        return views, which

    def _view(
        self, X: sp.csr_matrix, cols: np.ndarray | None, rows: np.ndarray | None, recent: np.ndarray | None
    ) -> tuple[Any, np.ndarray | None, np.ndarray | None, bool]:
        Xa = X if cols is None else X[:, cols]
        if rows is not None:
            Xa = Xa[rows]
        rec = None if recent is None else (recent if rows is None else recent[rows])
        augmented = rec is not None and bool(rec.any())
        if augmented:  # recent documents get a second copy of their features (Daume's "easy adaptation")
            scale = sp.diags(rec.astype(np.float32) * np.float32(self.recent_weight))
            Xa = sp.hstack([Xa, scale @ Xa], format="csr")
        Xa = Xa.tocsr()
        Xa.sort_indices()  # here, once: a fit sorting a shared matrix in place would race the other threads
        return Xa, cols, rows, augmented

    def _fit_heads(
        self,
        X: sp.csr_matrix,
        Y: np.ndarray,
        mask: np.ndarray | None = None,
        recent: np.ndarray | None = None,
        only: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(coef (n_features, n_labels), intercept (n_labels,)) of one binary model per column of Y, each
        fitted on the documents ``mask`` allows for it (all when None); with ``only``, just those columns
        (the others stay 0).

        With ``recent`` documents, a head learns shared weights plus weights only recent documents show,
        and keeps their sum: every document it scores later is taken as recent.
        """
        only = None if only is None else set(only)
        views, which = self._views(X, mask, recent, only)

        def one(j: int) -> tuple[np.ndarray, float]:
            view, axis = which[j]
            coef = np.zeros(X.shape[1], dtype=np.float32)
            if view < 0:  # not asked for
                return coef, 0.0
            Xa, cols, rows, augmented = views[view]
            y = Y[:, j] if rows is None else Y[rows, j]
            if not len(y) or y.min() == y.max():  # a label every or no training document has
                return coef, (10.0 if len(y) and y[0] else -10.0)
            est = clone(self._base(axis)).fit(Xa, y)
            w = est.coef_.ravel()
            if augmented:
                w = w[: w.size // 2] + self.recent_weight * w[w.size // 2 :]
            if cols is None:
                coef[:] = w
            else:
                coef[cols] = w
            return coef, float(est.intercept_[0])

        # liblinear releases the GIL, so threads share X without copies
        heads = Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(one)(j) for j in range(Y.shape[1]))
        coef = np.stack([h[0] for h in heads], axis=1) if heads else np.zeros((X.shape[1], 0), np.float32)
        return coef, np.asarray([h[1] for h in heads], dtype=np.float32)

    def _mask(self, corpora: np.ndarray, Y: Labels, coverage: Coverage | None) -> np.ndarray | None:
        """(n_docs, n_labels) booleans: the documents that train and score each head (None: all of them).

        A document counts for a label when its labels on that axis are known (not None) and its corpus covers
        the label; a corpus that ``coverage`` does not name covers every label. ``corpora``: each document's
        corpus (``corpus_column``).
        """
        coverage = coverage or {}
        parts = []
        for axis in self.axes:
            labels = self.labels_[axis]
            known = np.fromiter((row is not None for row in Y[axis]), dtype=bool, count=len(corpora))
            part = np.repeat(known[:, None], len(labels), axis=1)
            for name in set(corpora) & set(coverage):
                covered = coverage[name].get(axis, ())
                outside = [j for j, label in enumerate(labels) if label not in covered]
                part[np.ix_(corpora == name, outside)] = False
            parts.append(part)
        mask = np.hstack(parts)
        return None if mask.all() else mask

    def _recent(self, corpora: np.ndarray) -> np.ndarray | None:
        """Which documents come from a recent corpus (None when no corpus is recent or the weight is 0)."""
        if not self.recent_corpora or not self.recent_weight:
            return None
        recent = np.isin(corpora, list(self.recent_corpora))
        return recent if recent.any() else None

    def _binarize(self, rows: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
        index = {label: j for j, label in enumerate(labels)}
        Y = np.zeros((len(rows), len(labels)), dtype=np.int8)
        for i, row in enumerate(rows):
            for label in row or ():
                j = index.get(label)
                if j is not None:
                    Y[i, j] = 1
        return Y

    # ------------------------------------------------------------------ fit

    def _choose_labels(self, Y: Labels) -> None:
        self.labels_: dict[str, list[str]] = {}
        self.dropped_labels_: dict[str, dict[str, int]] = {}
        for axis in self.axes:
            counts = Counter(label for row in Y[axis] for label in row or ())
            floor = self._per_axis(self.min_support, axis, 5)
            self.labels_[axis] = sorted(k for k, n in counts.items() if n >= floor)
            self.dropped_labels_[axis] = {k: n for k, n in sorted(counts.items()) if n < floor}
            if not self.labels_[axis]:
                raise ValueError(f"axis {axis!r}: no label has {floor} or more training documents")

    def _stack(self, Y: Labels) -> np.ndarray:
        return np.hstack([self._binarize(Y[axis], self.labels_[axis]) for axis in self.axes])

    def _checked_inputs(
        self, X: Docs, Y: Any, X_val: Docs | None, Y_val: Any
    ) -> tuple[Docs, Labels, Any, Any]:
        """The fit inputs with labels as ``label_columns`` gives them; ValueError when they do not fit."""
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val and Y_val go together: give both or neither")
        if self.threshold_strategy == "validation" and X_val is None:
            raise ValueError("threshold_strategy='validation' needs X_val and Y_val")
        if self.refit_axes and self.threshold_strategy != "validation":
            raise ValueError(
                "refit_axes needs threshold_strategy='validation': it refits on train + validation"
            )
        for name in ("refit_axes", "shared_sigmoid_axes"):
            unknown = sorted(set(getattr(self, name)) - set(self.axes))
            if unknown:
                raise ValueError(f"{name} names axes {unknown} the tagger does not have: {list(self.axes)}")
        self._check_axes()
        Y = label_columns(Y, self.axes, _n_docs(X))
        if X_val is not None:
            Y_val = label_columns(Y_val, self.axes, _n_docs(X_val))
        return X, Y, X_val, Y_val

    @_fit_context(prefer_skip_nested_validation=False)  # the featurizer is given: it checks its own
    def fit(
        self,
        X: Docs,
        Y: Any,
        X_val: Docs | None = None,
        Y_val: Any = None,
        coverage: Coverage | None = None,
    ) -> NewsTagger:
        """Fit the featurizer and heads on (X, Y); calibrate and tune thresholds on held-out documents.

        ``coverage`` (corpus -> axis -> labels) says which labels each corpus can express; with a
        ``corpus`` column in ``X``, a head trains and is tuned only on documents whose corpus covers its
        label. Unknown labels (None) never count as negatives.
        """
        start = time.perf_counter()
        strategy = self.threshold_strategy
        X, Y, X_val, Y_val = self._checked_inputs(X, Y, X_val, Y_val)
        if strategy == "cv" and X_val is not None and self.cv_use_validation:
            X, Y = _concat_docs(X, X_val), {a: list(Y[a]) + list(Y_val[a]) for a in self.axes}
            X_val = Y_val = None
        self.featurizer_ = clone(self.featurizer) if self.featurizer is not None else Featurizer()
        M = self.featurizer_.fit_transform(X)
        featurized = time.perf_counter()
        self._choose_labels(Y)
        corpora = corpus_column(X, _n_docs(X))
        Yb, mask, recent = self._stack(Y), self._mask(corpora, Y, coverage), self._recent(corpora)
        self.coef_, self.intercept_ = self._fit_heads(M, Yb, mask, recent)
        self.trained_on_ = self._trained_on(corpora, mask)
        fitted = time.perf_counter()
        if strategy == "validation":
            M_val, corpora_val = self.featurizer_.transform(X_val), corpus_column(X_val, _n_docs(X_val))
            held = (self._raw(M_val), self._stack(Y_val), self._mask(corpora_val, Y_val, coverage))
        elif strategy == "cv":
            held = (self._oof_scores(M, Yb, mask, recent), Yb, mask)
        else:
            held = (self._raw(M), Yb, mask)
        self._calibrate(*held)
        calibrated = time.perf_counter()
        if self.refit_axes:
            # what the heads said on validation before they saw it: the promotion compares these (train.py)
            self.heldout_validation_labels_ = self.tag_features(M_val)[2]
            self._refit(
                sp.vstack([M, M_val], format="csr"),
                np.vstack([Yb, held[1]]),
                np.concatenate([corpora, corpora_val]),
                {a: list(Y[a]) + list(Y_val[a]) for a in self.axes},
                coverage,
            )
        end = time.perf_counter()
        self.timings_ = {
            "featurize": featurized - start,
            "heads": (fitted - featurized) + (end - calibrated),  # the refit's too
            "thresholds": calibrated - fitted,
            "refit": end - calibrated,
        }
        self.fit_seconds_ = end - start
        return self

    def _refit(
        self, M: sp.csr_matrix, Yb: np.ndarray, corpora: np.ndarray, Y: Labels, coverage: Coverage | None
    ) -> None:
        """Fit the heads of ``refit_axes`` again on train + validation (``M``, ``Yb``: both stacked), keeping
        the sigmoids and thresholds the validation split gave them."""
        slices = self._slices()
        only = [j for axis in self.refit_axes for j in range(slices[axis].start, slices[axis].stop)]
        mask = self._mask(corpora, Y, coverage)
        coef, intercept = self._fit_heads(M, Yb, mask, self._recent(corpora), only)
        self.coef_[:, only], self.intercept_[only] = coef[:, only], intercept[only]
        refit_on = self._trained_on(corpora, mask)
        for axis in self.refit_axes:
            self.trained_on_[axis] = refit_on[axis]

    def _trained_on(self, corpora: np.ndarray, mask: np.ndarray | None) -> dict[str, dict[str, list[str]]]:
        """Per axis and label, the corpora whose documents trained its head."""
        out: dict[str, dict[str, list[str]]] = {}
        for axis, s in self._slices().items():
            out[axis] = {}
            for j, label in zip(range(s.start, s.stop), self.labels_[axis], strict=True):
                rows = corpora if mask is None else corpora[mask[:, j]]
                out[axis][label] = sorted({str(c) for c in rows if c})
        return out

    def _oof_scores(
        self,
        M: sp.csr_matrix,
        Yb: np.ndarray,
        mask: np.ndarray | None = None,
        recent: np.ndarray | None = None,
    ) -> np.ndarray:
        out = np.zeros(Yb.shape, dtype=np.float32)
        folds = KFold(self.cv_folds, shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in folds.split(M):
            sub_mask = None if mask is None else mask[train_idx]
            sub_recent = None if recent is None else recent[train_idx]
            coef, intercept = self._fit_heads(M[train_idx], Yb[train_idx], sub_mask, sub_recent)
            out[test_idx] = M[test_idx] @ coef + intercept
        return out

    def _calibrate(self, scores: np.ndarray, y: np.ndarray, mask: np.ndarray | None) -> None:
        """Platt sigmoid and F1-best threshold per label, from held-out scores of the documents ``mask``
        allows for it (with ``threshold_strategy="fixed"``: training scores, default thresholds). Labels of
        a single-label axis (``multi_label`` false) get their sigmoid but no threshold (0.0, source
        ``argmax``): each document gets its most probable label."""
        n = y.shape[1]
        self.platt_ = np.tile(np.array([[1.0, 0.0]], dtype=np.float64), (n, 1))
        self.thresholds_ = np.full(n, self.default_threshold, dtype=np.float64)
        self.threshold_source_ = ["default"] * n
        single = np.zeros(n, dtype=bool)
        for axis, s in self._slices().items():
            single[s] = not self._multi_label(axis)
        self.thresholds_[single] = 0.0
        for j in np.flatnonzero(single):
            self.threshold_source_[j] = "argmax"
        shared = self._shared_sigmoids(scores, y, mask)
        for j in range(n):
            rows = slice(None) if mask is None else mask[:, j]
            s_j, y_j = scores[rows, j].astype(np.float64), y[rows, j]
            if not len(y_j):
                continue
            self.platt_[j] = shared[j] if j in shared else fit_platt(s_j, y_j)
            if single[j]:
                continue
            if self.threshold_strategy == "fixed" or y_j.sum() < self.min_positives:
                continue
            probs = sigmoid(self.platt_[j, 0] * s_j + self.platt_[j, 1])
            self.thresholds_[j], _ = best_threshold(probs, y_j, self.threshold_floor)
            self.threshold_source_[j] = "tuned"

    def _shared_sigmoids(
        self, scores: np.ndarray, y: np.ndarray, mask: np.ndarray | None
    ) -> dict[int, tuple[float, float]]:
        """Per label of the ``shared_sigmoid_axes``, the one Platt sigmoid of its axis, fitted on the held-out
        scores of all the axis's labels (each on the documents ``mask`` allows for it)."""
        out: dict[int, tuple[float, float]] = {}
        for axis, s in self._slices().items():
            if axis not in self.shared_sigmoid_axes or s.start == s.stop:
                continue
            cols = range(s.start, s.stop)
            rows = [slice(None) if mask is None else mask[:, j] for j in cols]
            s_all = np.concatenate([scores[r, j] for r, j in zip(rows, cols, strict=True)]).astype(np.float64)
            y_all = np.concatenate([y[r, j] for r, j in zip(rows, cols, strict=True)])
            if not len(y_all):
                continue
            ab = fit_platt(s_all, y_all)
            out.update({j: ab for j in cols})
        return out

    # ------------------------------------------------------------------ predict

    def transform_docs(self, X: Docs) -> sp.csr_matrix:
        """The shared feature matrix of ``X``."""
        check_is_fitted(self, "coef_")
        return self.featurizer_.transform(X)

    def compile(self) -> Scorer:
        """The fitted tagger as a ``Scorer`` (arrays only; same scores, bit for bit).

        Raises ``ValueError`` when a feature block has no compiled form (hashed words, character n-grams,
        a custom token pattern).
        """
        check_is_fitted(self, "coef_")
        f = self.featurizer_
        blocks = dict(f.blocks_)
        word = blocks.get("word")
        if word is not None and not _compilable_words(word):
            raise ValueError("the word block cannot be compiled (hashed features or a custom analyzer)")
        if "char" in blocks:
            raise ValueError("character n-gram features cannot be compiled")
        meta, arrays = compile_parts(
            word,
            blocks.get("gaz"),
            f.include_title,
            float(f.gazetteer_weight),
            f.gazetteer_mode == "log+share",
            [n for n, _ in f.blocks_],
            getattr(f, "home", None),
        )
        meta.update(
            axes=list(self.axes),
            labels={a: list(v) for a, v in self.labels_.items()},
            at_least_one={a: self._at_least_one(a) for a in self.axes},
            multi_label={a: self._multi_label(a) for a in self.axes},
            dropped_labels=self.dropped_labels_,
            trained_on=getattr(self, "trained_on_", {}),
            recent_corpora=list(self.recent_corpora),
        )
        arrays.update(
            coef=self.coef_,
            intercept=np.asarray(self.intercept_),
            platt=self.platt_,
            thresholds=self.thresholds_,
        )
        return Scorer(meta, arrays)

    def score(self, X: Docs, Y: Any) -> float:
        """Mean over the axes of the micro-F1 of the predicted labels against ``Y`` (layouts as for ``fit``).

        Gold labels the model does not know count as misses, so this is the evaluation's micro-F1.
        """
        gold, pred = label_columns(Y, self.axes, _n_docs(X)), self.predict_labels(X)
        return float(np.mean([micro_f1(gold[axis], pred[axis]) for axis in self.axes]))

    # ------------------------------------------------------------------ gazetteer (home, places)

    def _gaz_layout(self) -> GazLayout | None:
        """Where the featurizer's gazetteer block sits and what its columns mean (None without one)."""
        check_is_fitted(self, "coef_")
        f = self.featurizer_
        vec = dict(getattr(f, "blocks_", [])).get("gaz")
        if vec is None:
            return None
        gazetteer = vec._gazetteer()
        return GazLayout(
            start=f.block_slices_["gaz"].start,
            regions=list(vec.regions) if vec.country_to_region is not None else [],
            region_of=dict(vec.region_index_),
            country_index=dict(vec.country_index_),
            n_names=len(vec.feature_names_),
            shares=f.gazetteer_mode == "log+share",
            log_counts=vec.mode == "log",
            weight=float(f.gazetteer_weight),
            home=getattr(f, "home", None),
            neighbours=gazetteer.neighbours(),
            country_names=gazetteer.country_names(),
        )

    def _place_index(self) -> Any:
        """The gazetteer's place index (built from the gazetteer packages, cached per process)."""
        check_is_fitted(self, "coef_")
        vec = dict(self.featurizer_.blocks_).get("gaz")
        if vec is None:
            raise ValueError("this tagger has no gazetteer block")
        return vec._gazetteer()._index

    # ------------------------------------------------------------------ explanations

    def feature_names(self) -> np.ndarray:
        """Names of the shared features."""
        if not hasattr(self, "feature_names_"):
            self.feature_names_ = self.featurizer_.get_feature_names_out()
        return self.feature_names_

    def top_terms(self, n: int = 15) -> dict[str, dict[str, list[tuple[str, float]]]]:
        """Per axis and label, the ``n`` features with the largest positive weights."""
        names = self.feature_names()
        out: dict[str, dict[str, list[tuple[str, float]]]] = {}
        for axis, s in self._slices().items():
            out[axis] = {}
            for j, label in zip(range(s.start, s.stop), self.labels_[axis], strict=True):
                col = self.coef_[:, j]
                best = np.argsort(-col)[:n]
                out[axis][label] = [(str(names[i]), round(float(col[i]), 4)) for i in best if col[i] > 0]
        return out

    # ------------------------------------------------------------------ description

    def describe(self) -> dict[str, Any]:
        """Labels, thresholds and sizes, for reports and the pyfunc metadata."""
        check_is_fitted(self, "coef_")
        th = self.thresholds()
        return {
            "axes": list(self.axes),
            "labels": {a: list(v) for a, v in self.labels_.items()},
            "dropped_labels": self.dropped_labels_,
            "thresholds": {a: dict(zip(self.labels_[a], map(float, th[a]), strict=True)) for a in self.axes},
            "n_features": int(self.coef_.shape[0]),
            "trained_on": getattr(self, "trained_on_", {}),
            "recent_corpora": list(self.recent_corpora),
            "multi_label": {a: self._multi_label(a) for a in self.axes},
        }


def _compilable_words(vec: Any) -> bool:
    """Whether a word block is a default word-n-gram ``TfidfVectorizer`` with l2 norm (what ``Scorer`` reads)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.features import _fast_word_ok

    return type(vec) is TfidfVectorizer and _fast_word_ok(vec) and vec.norm == "l2"


def _concat_docs(a: Docs, b: Docs) -> Docs:
    if hasattr(a, "columns"):
        import pandas as pd

        return pd.concat([a, b], ignore_index=True)
    return list(a) + list(b)


def tagger_from_config(cfg: Any) -> NewsTagger:
    """A NewsTagger set up from a whole ``Config``."""
    m, t = cfg.model, cfg.thresholds
    return NewsTagger(
        featurizer=featurizer_from_config(cfg.features),
        axes=tuple(cfg.axes),
        classifier=m.classifier,
        class_weight=m.class_weight,
        max_iter=m.max_iter,
        min_support={a: ax.min_support for a, ax in cfg.axes.items()},
        at_least_one={a: ax.at_least_one for a, ax in cfg.axes.items()},
        multi_label={a: ax.multi_label for a, ax in cfg.axes.items()},
        threshold_strategy=t.strategy,
        cv_folds=t.cv_folds,
        default_threshold=t.default,
        threshold_floor=t.floor,
        min_positives=t.min_positives,
        n_jobs=m.n_jobs,
        random_state=cfg.split.seed,
        axis_blocks=_axis_blocks(cfg),
        cv_use_validation=t.cv_include_validation,
        recent_corpora=tuple(m.recent_corpora),
        recent_weight=m.recent_weight,
        recent_axes=tuple(m.recent_axes) if m.recent_axes is not None else None,
        C={a: ax.C if ax.C is not None else m.C for a, ax in cfg.axes.items()},
        refit_axes=tuple(m.refit_axes),
        shared_sigmoid_axes=tuple(t.shared_sigmoid_axes),
    )


def _axis_blocks(cfg: Any) -> dict[str, list[str]]:
    """Per axis, the feature blocks its heads see: text blocks for all, the gazetteer for its axes only."""
    gaz = cfg.features.gazetteer
    out = {}
    for axis in cfg.axes:
        if gaz.enabled and axis in gaz.axes:
            out[axis] = ["word-places" if gaz.mask_place_words else "word", "char", "gaz"]
        else:
            out[axis] = ["word", "char"]
    return out
