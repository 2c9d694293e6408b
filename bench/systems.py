"""The four systems compared, behind one small interface.

``fit(train, validation)`` trains (and tunes whatever the system tunes on ``validation``), ``predict(docs)``
returns one label list per document and axis, ``top1(docs)`` the single best label (for single-label
scoring), ``primary(docs)`` the one region each document is mostly about, or None (regions only; see each
class), ``save(folder)`` writes the model and returns its size in bytes. Documents are column dicts with
``title`` and ``text`` (and the gold label lists per axis for training).

A gold entry of None is unknown (the document's corpus does not feed that axis): the peers leave such
documents out of that axis's training and tuning; newstag gets them as ``newstag train`` does. ``scored``
(default: every label of the axis) limits the labels ``top1`` picks from.

Heavy libraries are imported inside the classes, so a child process only loads what its system needs.

- ``NewstagSystem``: ``tagger_from_config(cfg)`` and ``NewsTagger.fit`` with the corpus coverage of the
  prepared data, as ``newstag train`` calls it, nothing logged. A tagger that tunes
  its thresholds on validation gets train and validation apart; one that does not (``thresholds.strategy``
  ``cv`` or ``fixed``) trains on train + validation, like every other system with no use for validation.
  Its primary region is the tagger's own (``ScoringMixin.tag`` + ``primary_regions``, the model's home).
- ``FastTextSystem``: ``fasttext.train_supervised(loss="ova", thread=2)``, one model per axis, hyper-parameters
  given (chosen by ``tune_fasttext`` on validation); one probability threshold per axis chosen on
  validation micro-F1. Primary region: the most probable of the predicted regions.
- ``PlainSystem``: TF-IDF unigrams (sublinear tf; the dataset may ask for other ``TfidfVectorizer``
  arguments, e.g. (1,2)-grams) + one-vs-rest ``LinearSVC(C=1)``, one head set per axis, decision > 0; trained on
  train + validation. Primary region: the predicted region with the largest decision value.
- ``GazetteerSystem``: regions only. Country and city mentions (``pipeline.gazetteer.Gazetteer``) mapped to
  regions with the taxonomy; the region(s) with most mentions win (ties: all), no mention: no region.
  Primary region: the region with most mentions (ties: the first in the taxonomy's order).

A peer's primary region is None when it predicts no region, as newstag's ``primary_region`` is.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, Timer, doc_text, ft_line

Docs = Mapping[str, Sequence[Any]]
Pred = dict[str, list[list[str]]]

FT_GRID_FULL = {"epoch": [10, 25], "lr": [0.5, 1.0], "wordNgrams": [1, 2]}
FT_GRID_QUICK = {"epoch": [25], "lr": [0.5, 1.0], "wordNgrams": [1]}
FT_FIXED = {"loss": "ova", "thread": 2, "verbose": 0, "seed": 0}  # everything else: fastText's defaults
FT_ATTEMPTS = 3  # seeds tried when a fastText fit diverges ("Encountered NaN", seen with lr 1.0)
FT_THRESHOLDS = [round(0.01 * i, 2) for i in range(1, 100)]


def _concat(a: Docs, b: Docs) -> dict[str, list[Any]]:
    return {k: list(a[k]) + list(b[k]) for k in a}


def _dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _known(docs: Docs, axis: str) -> dict[str, list[Any]]:
    """The documents whose gold entry on ``axis`` is known (not None)."""
    from bench.data import known

    return known({k: list(v) for k, v in docs.items()}, [axis])


def _docs_in(docs: Docs) -> dict[str, Sequence[Any]]:
    """Title and text (and corpus, when the documents have one) of documents, as the tagger reads them."""
    return {k: docs[k] for k in ("title", "text", "corpus") if k in docs}


def best_of(scores: Any, names: Sequence[str], scored: Sequence[str] | None) -> list[list[str]]:
    """Per row of ``scores`` (docs x ``names``), the best-scoring label among ``scored`` (all when None)."""
    import numpy as np

    keep = set(names if scored is None else scored)
    cols = [j for j, n in enumerate(names) if n in keep]
    best = np.asarray(scores).reshape(len(scores), len(names))[:, cols].argmax(axis=1)
    return [[names[cols[j]]] for j in best]


REGION_AXIS = "regions"


def primary_among(scores: Any, names: Sequence[str], predicted: Sequence[Sequence[str]]) -> list[str | None]:
    """Per row of ``scores`` (docs x ``names``), the best-scoring label of those ``predicted`` for the
    document; None when it has none."""
    import numpy as np

    scores = np.asarray(scores).reshape(len(predicted), len(names))
    col = {n: j for j, n in enumerate(names)}
    out: list[str | None] = []
    for row, labels in zip(scores, predicted, strict=True):
        known = [lb for lb in labels if lb in col]
        out.append(max(known, key=lambda lb: (row[col[lb]], -col[lb])) if known else None)
    return out


# --------------------------------------------------------------------------- newstag


class NewstagSystem:
    name = "newstag"

    def __init__(
        self,
        config: str,
        axes: Mapping[str, list[str]],
        scored: Mapping[str, list[str]] | None = None,
        coverage: Mapping[str, Any] | None = None,
    ) -> None:
        from pipeline.config import load_config

        cwd = os.getcwd()
        os.chdir(ROOT)  # relative paths in the config (taxonomies)
        try:
            self.cfg = load_config(config)
        finally:
            os.chdir(cwd)
        self.axes = list(axes)
        self.scored = dict(scored or {})
        self.coverage = coverage
        self.info: dict[str, Any] = {}

    def fit(self, train: Docs, validation: Docs) -> None:
        from pipeline.model import tagger_from_config

        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            tagger = tagger_from_config(self.cfg)
            X, Xv = _docs_in(train), _docs_in(validation)
            Y = {a: train[a] for a in tagger.axes}
            Yv = {a: validation[a] for a in tagger.axes}
            if self.cfg.thresholds.strategy == "validation":
                tagger.fit(X, Y, Xv, Yv, coverage=self.coverage)
                used = "train; thresholds on validation"
                if tagger.refit_axes:
                    used += f"; {', '.join(tagger.refit_axes)} heads refit on train + validation"
            else:
                tagger.fit(_concat(X, Xv), {a: list(Y[a]) + list(Yv[a]) for a in Y}, coverage=self.coverage)
                used = f"train + validation; thresholds {self.cfg.thresholds.strategy}"
        finally:
            os.chdir(cwd)
        self.tagger = tagger
        self.info = {
            "data": used,
            "timings": {k: round(v, 3) for k, v in tagger.timings_.items()},
            "n_features": int(tagger.coef_.shape[0]),
            "labels_fitted": {a: len(v) for a, v in tagger.labels_.items()},
        }

    def predict(self, docs: Docs) -> Pred:
        out = self.tagger.predict_labels({"title": docs["title"], "text": docs["text"]})
        return {a: out[a] for a in self.axes if a in out}

    def top1(self, docs: Docs) -> Pred:
        scores = self.tagger.predict_scores({"title": docs["title"], "text": docs["text"]})
        return {
            axis: best_of(scores[axis], self.tagger.labels_[axis], self.scored.get(axis))
            for axis in self.axes
        }

    def primary(self, docs: Docs) -> dict[str, list[str | None]]:
        """The tagger's ``primary_region`` of each document (what every newstag output gives)."""
        if REGION_AXIS not in self.axes or REGION_AXIS not in self.tagger.axes:
            return {}
        M, scores, labels = self.tagger.tag({"title": docs["title"], "text": docs["text"]})
        return {REGION_AXIS: self.tagger.primary_regions(scores, labels, M)}

    def save(self, folder: Path) -> int:
        import joblib

        path = folder / "tagger.joblib"
        joblib.dump(self.tagger, path)
        return path.stat().st_size


# --------------------------------------------------------------------------- fastText


def _ft_label(label: str) -> str:
    return "__label__" + label.replace(" ", "_")


def _ft_train_file(docs: Docs, axis: str, folder: Path) -> tuple[Path, int]:
    """A fastText training file for one axis; documents without a label on the axis are left out."""
    path = folder / f"train-{axis}.txt"
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for title, text, labels in zip(docs["title"], docs["text"], docs[axis], strict=True):
            if labels:
                fh.write(" ".join(_ft_label(lb) for lb in labels) + " " + ft_line(title, text) + "\n")
                n += 1
    return path, n


def _ft_probs(model: Any, lines: list[str], labels: list[str]) -> Any:
    """(docs x labels) probabilities of every label."""
    import numpy as np

    index = {_ft_label(lb): j for j, lb in enumerate(labels)}
    probs = np.zeros((len(lines), len(labels)), dtype=np.float32)
    got, p = model.predict(lines, k=-1, threshold=0.0)
    for i, (names, values) in enumerate(zip(got, p, strict=True)):
        for name, value in zip(names, values, strict=True):
            j = index.get(name)
            if j is not None:
                probs[i, j] = value
    return probs


def _gold_matrix(rows: Sequence[Sequence[str]], labels: list[str]) -> Any:
    import numpy as np

    index = {lb: j for j, lb in enumerate(labels)}
    y = np.zeros((len(rows), len(labels)), dtype=bool)
    for i, row in enumerate(rows):
        for lb in row:
            if lb in index:
                y[i, index[lb]] = True
    return y


def _micro_f1(y: Any, hit: Any) -> float:
    tp = float((y & hit).sum())
    denom = float(y.sum() + hit.sum())
    return 2 * tp / denom if denom else 0.0


def best_threshold(probs: Any, y: Any) -> tuple[float, float]:
    """(threshold, micro-F1) of the global probability threshold with the best micro-F1 on held-out data."""
    best = (0.5, -1.0)
    for t in FT_THRESHOLDS:
        f1 = _micro_f1(y, probs >= t)
        if f1 > best[1]:
            best = (t, f1)
    return best


def train_ft(path: Path, params: Mapping[str, Any]) -> tuple[Any, int]:
    """(model, attempts): ``train_supervised``, retried with seeds 1 and 2 when training diverges (NaN)."""
    import fasttext

    for attempt in range(FT_ATTEMPTS):
        try:
            return fasttext.train_supervised(
                input=str(path), **{**FT_FIXED, "seed": attempt}, **params
            ), attempt + 1
        except RuntimeError as exc:
            if "NaN" not in str(exc) or attempt == FT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def top1_accuracy(probs: Any, y: Any) -> float:
    return float(y[range(len(y)), probs.argmax(axis=1)].mean()) if len(y) else 0.0


class FastTextSystem:
    name = "fasttext"

    def __init__(
        self,
        axes: Mapping[str, list[str]],
        params: Mapping[str, Any],
        scored: Mapping[str, list[str]] | None = None,
    ) -> None:
        """``params``: per axis, the grid points to use, best first (the next is tried if one diverges)."""
        self.labels = {a: list(v) for a, v in axes.items()}
        self.scored = dict(scored or {})
        self.params = {a: [p] if isinstance(p, Mapping) else list(p) for a, p in params.items()}
        self.models: dict[str, Any] = {}
        self.thresholds: dict[str, float] = {}
        self.info: dict[str, Any] = {}

    def fit(self, train: Docs, validation: Docs) -> None:
        with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
            for axis, labels in self.labels.items():
                held = _known(validation, axis)
                val_lines = [ft_line(t, x) for t, x in zip(held["title"], held["text"], strict=True)]
                path, n = _ft_train_file(train, axis, Path(tmp))
                model, attempts, params, diverged = None, 0, {}, []
                for params in self.params[axis]:
                    try:
                        model, attempts = train_ft(path, params)
                        break
                    except RuntimeError:
                        diverged.append(dict(params))
                if model is None:
                    raise RuntimeError(f"fastText diverged on every grid point for {axis}: {diverged}")
                probs = _ft_probs(model, val_lines, labels)
                t, f1 = best_threshold(probs, _gold_matrix(held[axis], labels))
                self.models[axis], self.thresholds[axis] = model, t
                self.info[axis] = {
                    "params": dict(params),
                    "attempts": attempts,
                    "diverged_points": diverged,
                    "threshold": t,
                    "validation_micro_f1": round(f1, 4),
                    "train_lines": n,
                    "vocabulary": len(model.words),
                }

    def predict(self, docs: Docs) -> Pred:
        lines = [ft_line(t, x) for t, x in zip(docs["title"], docs["text"], strict=True)]
        out = {}
        for axis, model in self.models.items():
            got, _ = model.predict(lines, k=-1, threshold=self.thresholds[axis])
            back = {_ft_label(lb): lb for lb in self.labels[axis]}
            out[axis] = [[back.get(name, name[9:]) for name in names] for names in got]
        return out

    def top1(self, docs: Docs) -> Pred:
        lines = [ft_line(t, x) for t, x in zip(docs["title"], docs["text"], strict=True)]
        out = {}
        for axis, model in self.models.items():
            if axis in self.scored:  # the best of the scored labels: every label's probability
                out[axis] = best_of(
                    _ft_probs(model, lines, self.labels[axis]), self.labels[axis], self.scored[axis]
                )
                continue
            got, _ = model.predict(lines, k=1)
            back = {_ft_label(lb): lb for lb in self.labels[axis]}
            out[axis] = [[back.get(name, name[9:]) for name in names] for names in got]
        return out

    def primary(self, docs: Docs) -> dict[str, list[str | None]]:
        """The most probable of each document's predicted regions (None: none predicted)."""
        if REGION_AXIS not in self.models:
            return {}
        lines = [ft_line(t, x) for t, x in zip(docs["title"], docs["text"], strict=True)]
        labels = self.labels[REGION_AXIS]
        probs = _ft_probs(self.models[REGION_AXIS], lines, labels)
        return {REGION_AXIS: primary_among(probs, labels, self.predict(docs)[REGION_AXIS])}

    def save(self, folder: Path) -> int:
        for axis, model in self.models.items():
            model.save_model(str(folder / f"{axis}.bin"))
        return _dir_bytes(folder)


def grid(quick: bool) -> list[dict[str, Any]]:
    space = FT_GRID_QUICK if quick else FT_GRID_FULL
    keys = list(space)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]


def tune_fasttext(
    train: Docs,
    validation: Docs,
    axes: Mapping[str, list[str]],
    quick: bool,
    single_label: bool,
    multi_label: Sequence[str] = (),
) -> dict[str, Any]:
    """Per axis, the grid point with the best validation score (top-1 accuracy when single-label, else
    micro-F1 at the best threshold; the axes in ``multi_label`` are scored by micro-F1 in a single-label
    dataset), and every point's score."""
    best: dict[str, list[dict[str, Any]]] = {}
    table: dict[str, list[dict[str, Any]]] = {}
    metrics = {a: "top1_accuracy" if single_label and a not in multi_label else "micro_f1" for a in axes}
    with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
        for axis, labels in axes.items():
            held = _known(validation, axis)
            val_lines = [ft_line(t, x) for t, x in zip(held["title"], held["text"], strict=True)]
            path, _ = _ft_train_file(train, axis, Path(tmp))
            y = _gold_matrix(held[axis], labels)
            table[axis] = []
            for point in grid(quick):
                try:
                    with Timer() as t:
                        model, attempts = train_ft(path, point)
                except RuntimeError as exc:
                    table[axis].append({**point, "score": None, "error": str(exc)[:200]})
                    continue
                probs = _ft_probs(model, val_lines, labels)
                del model
                threshold, f1 = best_threshold(probs, y)
                score = top1_accuracy(probs, y) if metrics[axis] == "top1_accuracy" else f1
                table[axis].append(
                    {
                        **point,
                        "threshold": threshold,
                        "score": round(score, 4),
                        "fit_seconds": round(t.seconds, 2),
                        "attempts": attempts,
                    }
                )
            # best first; equal scores keep grid order; diverged points last
            ranked = sorted(table[axis], key=lambda r: -1.0 if r["score"] is None else -r["score"])
            best[axis] = [{k: r[k] for k in grid(quick)[0]} for r in ranked]
    return {
        "best": {a: ranked[0] for a, ranked in best.items()},
        "ranked": best,
        "grid": table,
        "metric": "top1_accuracy" if single_label else "micro_f1",
        "metrics": metrics,
    }


def _scratch() -> str:
    from bench.common import OUT

    path = OUT / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


# --------------------------------------------------------------------------- plain scikit-learn


class PlainSystem:
    name = "tfidf-svm"

    def __init__(
        self,
        axes: Mapping[str, list[str]],
        scored: Mapping[str, list[str]] | None = None,
        tfidf: Mapping[str, Any] | None = None,
    ) -> None:
        self.labels = {a: list(v) for a, v in axes.items()}
        self.scored = dict(scored or {})
        self.tfidf = {"sublinear_tf": True, **(tfidf or {})}
        self.info: dict[str, Any] = {"data": "train + validation", "tfidf": dict(self.tfidf)}

    def fit(self, train: Docs, validation: Docs) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer
        from sklearn.svm import LinearSVC

        from bench.data import known

        docs = known(_concat(train, validation), list(self.labels))
        texts = [doc_text(t, x) for t, x in zip(docs["title"], docs["text"], strict=True)]
        self.vectorizer = TfidfVectorizer(**self.tfidf)
        X = self.vectorizer.fit_transform(texts)
        self.heads = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # labels absent from training; LinearSVC convergence
            for axis, labels in self.labels.items():
                rows = np.flatnonzero([row is not None for row in docs[axis]])
                mlb = MultiLabelBinarizer(classes=labels)
                Y = mlb.fit_transform([[lb for lb in docs[axis][i] if lb in set(labels)] for i in rows])
                self.heads[axis] = OneVsRestClassifier(LinearSVC(C=1.0)).fit(X[rows], Y)
        self.info["n_features"] = len(self.vectorizer.vocabulary_)
        self.info["train_docs"] = len(docs["id"])

    def _X(self, docs: Docs) -> Any:
        return self.vectorizer.transform(
            [doc_text(t, x) for t, x in zip(docs["title"], docs["text"], strict=True)]
        )

    def predict(self, docs: Docs) -> Pred:
        import numpy as np

        X = self._X(docs)
        out = {}
        for axis, clf in self.heads.items():
            hit = np.asarray(clf.decision_function(X)) > 0
            names = self.labels[axis]
            out[axis] = [[names[j] for j in np.flatnonzero(row)] for row in hit.reshape(len(hit), -1)]
        return out

    def top1(self, docs: Docs) -> Pred:
        import numpy as np

        X = self._X(docs)
        out = {}
        for axis, clf in self.heads.items():
            scores = np.asarray(clf.decision_function(X)).reshape(X.shape[0], -1)
            out[axis] = best_of(scores, self.labels[axis], self.scored.get(axis))
        return out

    def primary(self, docs: Docs) -> dict[str, list[str | None]]:
        """The predicted region with the largest decision value (None: none predicted)."""
        import numpy as np

        if REGION_AXIS not in self.heads:
            return {}
        X = self._X(docs)
        scores = np.asarray(self.heads[REGION_AXIS].decision_function(X)).reshape(X.shape[0], -1)
        names = self.labels[REGION_AXIS]
        hit = scores > 0
        predicted = [[names[j] for j in np.flatnonzero(row)] for row in hit]
        return {REGION_AXIS: primary_among(scores, names, predicted)}

    def save(self, folder: Path) -> int:
        import joblib

        path = folder / "tfidf-svm.joblib"
        joblib.dump({"vectorizer": self.vectorizer, "heads": self.heads}, path)
        return path.stat().st_size


# --------------------------------------------------------------------------- gazetteer only


class GazetteerSystem:
    name = "gazetteer"
    axis = "regions"
    taxonomy = "configs/taxonomy/regions.yaml"

    def __init__(self, axes: Mapping[str, list[str]]) -> None:
        self.labels = list(axes.get(self.axis, []))
        self.info: dict[str, Any] = {"data": "none (no training)"}

    def fit(self, train: Docs, validation: Docs) -> None:
        from pipeline.gazetteer import Gazetteer
        from pipeline.taxonomy import country_regions

        self.region_of = country_regions(ROOT / self.taxonomy)
        self.gazetteer = Gazetteer()
        self.info["index_entries"] = len(self.gazetteer.codes)  # builds the index: the "training" time

    def _region_counts(self, docs: Docs) -> list[dict[str, int]]:
        """Per document, its mentions per region (countries mapped with the taxonomy)."""
        out = []
        known = set(self.labels)
        for title, text in zip(docs["title"], docs["text"], strict=True):
            counts: dict[str, int] = {}
            for iso, n in self.gazetteer.country_counts(doc_text(title, text)).items():
                region = self.region_of.get(iso)
                if region in known:
                    counts[region] = counts.get(region, 0) + n
            out.append(counts)
        return out

    def predict(self, docs: Docs) -> Pred:
        out = []
        for counts in self._region_counts(docs):
            top = max(counts.values(), default=0)
            out.append(sorted(r for r, n in counts.items() if n == top) if top else [])
        return {self.axis: out}

    def top1(self, docs: Docs) -> Pred:
        return self.predict(docs)

    def primary(self, docs: Docs) -> dict[str, list[str | None]]:
        """The region with most mentions (ties: the first in the taxonomy's order); None without one."""
        order = {r: j for j, r in enumerate(self.labels)}
        return {
            self.axis: [
                min(counts, key=lambda r: (-counts[r], order[r])) if counts else None
                for counts in self._region_counts(docs)
            ]
        }

    def save(self, folder: Path) -> int:
        return 0  # nothing trained: the index is rebuilt from installed packages
