"""Metrics of multi-label tagging, given gold and predicted label sets.

Pure functions: callers pass label lists and get plain dicts back. Nothing here knows about models, MLflow
or plotting; scikit-learn is imported inside the functions that need it, so importing this module stays cheap.

Macro averages (``macro_f1``, ``macro_precision``, ``macro_recall``) are taken over the labels of the axis
that have at least one gold document in the evaluated set; their number is ``macro_labels``. Labels with no
gold document can only be wrong there, whatever the model does, so counting them (scikit-learn's default)
would measure the split rather than the model. This is the Reuters R90 convention (all 90 topics occur in
the ApteMod test split, so both conventions agree there). Predictions of such labels still cost micro
precision, and every label of the axis stays in ``per_label`` with its support, so the averages can be
recomputed either way.

A single-label axis (``multi_label: false``: the model gives each document exactly one label) also reports
``accuracy``, the share of documents whose predicted label is their gold label; with one gold and one
predicted label per document it equals micro-F1. Promotion compares such an axis on accuracy and macro-F1
by default (``default_promotion_metrics``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SUMMARY_METRICS = (
    "micro_f1",
    "macro_f1",
    "micro_precision",
    "micro_recall",
    "macro_precision",
    "macro_recall",
    "samples_f1",
    "subset_accuracy",
)
SINGLE_LABEL_METRICS = ("accuracy",)
"""Summary metrics a single-label axis adds to ``SUMMARY_METRICS``."""


def axis_metric_names(multi_label: bool = True) -> tuple[str, ...]:
    """The summary metrics an axis's report offers: what ``<axis>/<metric>`` (promotion, MLflow) may name."""
    return SUMMARY_METRICS if multi_label else (*SUMMARY_METRICS, *SINGLE_LABEL_METRICS)


def default_promotion_metrics(multi_label: bool = True) -> tuple[str, ...]:
    """The metrics promotion compares on an axis when the config names none: micro-F1 on a multi-label
    axis; accuracy and macro-F1 on a single-label one."""
    return ("micro_f1",) if multi_label else ("accuracy", "macro_f1")


_METRIC_UNSAFE = re.compile(r"[^\w.\- ]")  # MLflow's allowed characters, minus "/": a label is one segment


# --------------------------------------------------------------------------- inputs


def label_lists(rows: Iterable[Any], what: str) -> list[list[str]]:
    """Each document's labels as a list; ``None`` means no labels, a bare string is a caller's mistake."""
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, str | bytes):
            raise ValueError(f"{what}[{i}] is a string ({row!r}); expected a list of labels")
        out.append([] if row is None else list(row))
    return out


def paired_label_lists(
    gold: Sequence[Sequence[str] | None], pred: Sequence[Sequence[str] | None]
) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted label lists of the same documents, refused when their lengths differ."""
    gold_rows, pred_rows = label_lists(gold, "gold"), label_lists(pred, "pred")
    if len(gold_rows) != len(pred_rows):
        raise ValueError(f"gold has {len(gold_rows)} documents but pred has {len(pred_rows)}")
    return gold_rows, pred_rows


def checked_labels(labels: Sequence[str]) -> list[str]:
    """The axis labels as a list, refused when empty or repeated."""
    labels = list(labels)
    if not labels:
        raise ValueError("the label list is empty")
    repeated = sorted(label for label, count in Counter(labels).items() if count > 1)
    if repeated:
        raise ValueError(f"repeated labels in the label list: {repeated}")
    return labels


def drop_unknown(rows: list[list[str]], labels: list[str]) -> tuple[list[list[str]], int]:
    """The rows restricted to ``labels``, and how many label occurrences were dropped."""
    known = set(labels)
    kept = [[label for label in row if label in known] for row in rows]
    return kept, sum(len(row) - len(k) for row, k in zip(rows, kept, strict=True))


def _binarize(rows: list[list[str]], labels: list[str]) -> np.ndarray:
    """A (documents x labels) 0/1 matrix; rows must hold known labels only."""
    from sklearn.preprocessing import MultiLabelBinarizer

    return MultiLabelBinarizer(classes=labels).fit_transform(rows)


def gold_matrix(gold: Sequence[Sequence[str]], labels: list[str]) -> np.ndarray:
    """The gold indicator matrix, labels outside ``labels`` ignored."""
    return _binarize(drop_unknown(label_lists(gold, "gold"), labels)[0], labels)


# --------------------------------------------------------------------------- metrics


def _micro(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    return {"micro_f1": float(f), "micro_precision": float(p), "micro_recall": float(r)}


def _per_label(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, dict[str, Any]]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    return {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }


def _macro(per_label: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Unweighted means over the labels with gold support (0.0 when there are none)."""
    stats = [m for m in per_label.values() if m["support"] > 0]

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in stats])) if stats else 0.0

    return {
        "macro_f1": mean("f1"),
        "macro_precision": mean("precision"),
        "macro_recall": mean("recall"),
        "macro_labels": len(stats),
    }


def _samples_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-document F1; a document with neither gold nor predicted labels scores 1."""
    from sklearn.metrics import f1_score

    # zero_division only decides the empty-gold-and-empty-prediction case, which is a correct answer.
    return float(f1_score(y_true, y_pred, average="samples", zero_division=1.0))


def axis_metrics(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    labels: Sequence[str],
    single_label: bool = False,
) -> dict[str, Any]:
    """Micro, macro and per-document scores of one label axis, plus per-label precision/recall/F1/support;
    with ``single_label`` also ``accuracy`` (the share of documents whose predicted labels are their gold).

    Labels outside ``labels`` are ignored and their occurrences (gold and predicted) counted in
    ``ignored_labels``; ``None`` stands for a document without labels. Macro averages cover the
    ``macro_labels`` labels with at least one gold document (see the module docstring); ``n_labels`` is the
    size of the axis. Raises ``ValueError`` when gold and pred differ in length or there are no documents.
    """
    labels = checked_labels(labels)
    gold_rows, pred_rows = paired_label_lists(gold, pred)
    if not gold_rows:
        raise ValueError("no documents to evaluate")
    (gold_kept, gold_ignored), (pred_kept, pred_ignored) = (
        drop_unknown(gold_rows, labels),
        drop_unknown(pred_rows, labels),
    )
    y_true, y_pred = _binarize(gold_kept, labels), _binarize(pred_kept, labels)
    micro, per_label = _micro(y_true, y_pred), _per_label(y_true, y_pred, labels)
    macro = _macro(per_label)
    exact = float((y_true == y_pred).all(axis=1).mean())
    return {
        "n_docs": len(gold_rows),
        **({"accuracy": exact} if single_label else {}),
        "micro_f1": micro["micro_f1"],
        "macro_f1": macro["macro_f1"],
        "micro_precision": micro["micro_precision"],
        "micro_recall": micro["micro_recall"],
        "macro_precision": macro["macro_precision"],
        "macro_recall": macro["macro_recall"],
        "samples_f1": _samples_f1(y_true, y_pred),
        "subset_accuracy": exact,
        "n_labels": len(labels),
        "macro_labels": macro["macro_labels"],
        "ignored_labels": gold_ignored + pred_ignored,
        "per_label": per_label,
    }


def _checked_axes(
    gold: Mapping[str, Sequence[Any]], pred: Mapping[str, Sequence[Any]], labels: Mapping[str, Any]
) -> int:
    """The common number of documents; raises ValueError naming the axis when anything is missing or uneven."""
    if not gold:
        raise ValueError("no axes to evaluate")
    first = next(iter(gold))
    for axis, rows in gold.items():
        if axis not in pred or axis not in labels:
            raise ValueError(
                f"axis {axis!r} has gold labels but no {'pred' if axis not in pred else 'labels'}"
            )
        if len(rows) != len(pred[axis]):
            raise ValueError(f"axis {axis!r}: gold has {len(rows)} documents, pred has {len(pred[axis])}")
        if len(rows) != len(gold[first]):
            raise ValueError(
                f"axis {axis!r} has {len(rows)} gold documents, axis {first!r} has {len(gold[first])}"
            )
    return len(gold[first])


def evaluation_report(
    gold: Mapping[str, Sequence[Sequence[str]]],
    pred: Mapping[str, Sequence[Sequence[str]]],
    labels: Mapping[str, Sequence[str]],
    single_label: Collection[str] = (),
) -> dict[str, Any]:
    """The DESIGN §3 report ``{"n_docs": N, "axes": {axis: axis_metrics(...)}}`` for every axis of ``gold``;
    the axes of ``single_label`` report accuracy too.

    Axes present only in ``pred`` or ``labels`` are left out. Raises ``ValueError`` when an axis of ``gold``
    has no predictions or labels, or when its lengths differ (the message names the axis and both lengths).
    """
    n_docs = _checked_axes(gold, pred, labels)
    return {
        "n_docs": n_docs,
        "axes": {
            axis: axis_metrics(gold[axis], pred[axis], labels[axis], axis in single_label) for axis in gold
        },
    }


# --------------------------------------------------------------------------- MLflow metric names


def _metric_segment(name: str) -> str:
    """``name`` as one MLflow-safe path segment: other characters (and "/") become "_"; never "", "." or ".."."""
    segment = _METRIC_UNSAFE.sub("_", str(name))
    return segment.replace(".", "_") if set(segment) <= {"."} else segment


def metric_items(report: Mapping[str, Any], split: str) -> dict[str, float]:
    """Flat ``{name: value}`` for MLflow: the summary metrics ``<split>/<axis>/<metric>`` (and accuracy and
    top-1 ones, where present), then ``<split>/<corpus>/<axis>/<metric>`` per corpus (``corpus_metric_items``).

    Per-label figures are no metrics: they are one table per split (``label_rows``). Axis and corpus names
    are made safe for MLflow metric keys (alphanumerics, ``_ - .`` and spaces; anything else, including "/",
    becomes "_").
    """
    items: dict[str, float] = {}
    for axis, metrics in report["axes"].items():
        items.update(_summary_items(f"{split}/{_metric_segment(axis)}", metrics))
    items.update(corpus_metric_items(report, split))
    return items


LABEL_COLUMNS = ("split", "axis", "corpus", "label", "precision", "recall", "f1", "support", "threshold")
ALL_CORPORA = "all"


def label_rows(
    report: Mapping[str, Any], split: str, thresholds: Mapping[str, Mapping[str, float]] | None = None
) -> list[dict[str, Any]]:
    """One row per axis, corpus and label of a report (``LABEL_COLUMNS``): precision, recall, F1, gold
    support and the label's threshold (None for a label the model cannot predict). Corpus ``all`` is the
    whole split; a report with a ``corpora`` section adds one block per corpus."""
    thresholds = thresholds or {}
    sections = [(ALL_CORPORA, report), *sorted(report.get("corpora", {}).items())]
    rows = []
    for corpus, sub in sections:
        for axis, metrics in sub["axes"].items():
            for label, s in metrics["per_label"].items():
                threshold = thresholds.get(axis, {}).get(label)
                rows.append(
                    {
                        "split": split,
                        "axis": axis,
                        "corpus": corpus,
                        "label": label,
                        "precision": round(float(s["precision"]), 6),
                        "recall": round(float(s["recall"]), 6),
                        "f1": round(float(s["f1"]), 6),
                        "support": int(s["support"]),
                        "threshold": None if threshold is None else round(float(threshold), 6),
                    }
                )
    return rows


def scored_labels(
    model_labels: Mapping[str, Sequence[str]], gold: Mapping[str, Sequence[Sequence[str]]]
) -> dict[str, list[str]]:
    """Per gold axis, the model's labels plus gold labels it cannot predict (they score 0, not vanish)."""
    out = {}
    for axis, rows in gold.items():
        known = list(model_labels.get(axis, []))
        extra = sorted({label for row in rows for label in row or ()} - set(known))
        out[axis] = known + extra
    return out


# --------------------------------------------------------------------------- several corpora

TOP1_METRICS = ("top1_accuracy", "top1_macro_f1")
Coverage = Mapping[str, Mapping[str, Sequence[str]]]


def _allowed(coverage: Coverage | None, corpus: str, axis: str) -> frozenset[str] | None:
    """The labels ``corpus`` covers on ``axis`` (None: every label, when the coverage does not say)."""
    if not coverage or corpus not in coverage or axis not in coverage[corpus]:
        return None
    return frozenset(coverage[corpus][axis])


def top1_metrics(gold: Sequence[Sequence[str]], top: Sequence[str]) -> dict[str, float]:
    """Single-label scores of each document's top-scoring label against its one gold label: accuracy and
    macro-F1 over the labels with gold support (the protocol of a single-label classifier)."""
    truth = [g[0] for g in gold]
    accuracy = float(np.mean([t == p for t, p in zip(truth, top, strict=True)])) if truth else 0.0
    f1s = []
    for label in sorted(set(truth)):
        tp = sum(t == p == label for t, p in zip(truth, top, strict=True))
        n_true, n_pred = truth.count(label), sum(p == label for p in top)
        f1s.append(2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0)
    return {"top1_accuracy": accuracy, "top1_macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def _top_label(probs: np.ndarray, labels: Sequence[str], allowed: frozenset[str] | None) -> str:
    order = np.argsort(-probs, kind="stable")
    for j in order:
        if allowed is None or labels[j] in allowed:
            return labels[j]
    return ""


def _covered_axis(
    rows: list[int],
    gold: Sequence[Sequence[str] | None],
    pred: Sequence[Sequence[str]],
    scores: np.ndarray | None,
    model_labels: Sequence[str],
    allowed: Sequence[frozenset[str] | None],
    single_label: bool = False,
) -> dict[str, Any] | None:
    """``axis_metrics`` over the documents of ``rows`` whose gold is known, predictions limited to the
    labels each document's corpus covers; with top-1 scores when every one of them has one gold label."""
    keep = [i for i in rows if gold[i] is not None]
    if not keep:
        return None
    g = [list(gold[i]) for i in keep]
    p = [[label for label in pred[i] if allowed[i] is None or label in allowed[i]] for i in keep]
    union = None if any(allowed[i] is None for i in keep) else frozenset().union(*(allowed[i] for i in keep))
    known = [label for label in model_labels if union is None or label in union]
    labels = known + sorted({label for row in g for label in row} - set(known))
    out = axis_metrics(g, p, labels, single_label)
    if scores is not None and all(len(row) == 1 for row in g):
        top = [_top_label(scores[i], model_labels, allowed[i]) for i in keep]
        out.update(top1_metrics(g, top))
    return out


def covered_report(
    gold: Mapping[str, Sequence[Sequence[str] | None]],
    pred: Mapping[str, Sequence[Sequence[str]]],
    scores: Mapping[str, np.ndarray] | None,
    model_labels: Mapping[str, Sequence[str]],
    corpora: Sequence[str],
    coverage: Coverage | None = None,
    single_label: Collection[str] = (),
) -> dict[str, Any]:
    """The evaluation report of documents from one or several corpora: gold ``None`` is unknown (the
    document is left out of that axis), a document is scored only on the labels its corpus covers, and with
    several corpora the report has a ``corpora`` section, one report per corpus. The axes of
    ``single_label`` report accuracy too."""
    n = len(corpora)
    allowed = {axis: [_allowed(coverage, corpus, axis) for corpus in corpora] for axis in gold}

    def report(rows: list[int]) -> dict[str, Any]:
        axes = {}
        for axis, rows_gold in gold.items():
            axis_scores = scores.get(axis) if scores is not None else None
            metrics = _covered_axis(
                rows,
                rows_gold,
                pred[axis],
                axis_scores,
                model_labels[axis],
                allowed[axis],
                axis in single_label,
            )
            if metrics is not None:
                axes[axis] = metrics
        return {"n_docs": len(rows), "axes": axes}

    out = report(list(range(n)))
    names = sorted(set(corpora))
    if len(names) > 1:
        out["corpora"] = {name: report([i for i in range(n) if corpora[i] == name]) for name in names}
    return out


CORPUS_METRICS = ("micro_f1", "macro_f1")  # per corpus, as MLflow metrics; the rest is in the reports


def corpus_metric_items(report: Mapping[str, Any], split: str) -> dict[str, float]:
    """Flat ``<split>/<corpus>/<axis>/<metric>`` of a report's ``corpora`` section: micro- and macro-F1, and
    top-1 accuracy and macro-F1 where every gold entry is one label (the full summary is in the report)."""
    items: dict[str, float] = {}
    for corpus, sub in report.get("corpora", {}).items():
        for axis, metrics in sub["axes"].items():
            prefix = f"{split}/{_metric_segment(corpus)}/{_metric_segment(axis)}"
            items.update(_summary_items(prefix, metrics, CORPUS_METRICS))
    return items


def _summary_items(
    prefix: str, metrics: Mapping[str, Any], names: Sequence[str] = SUMMARY_METRICS
) -> dict[str, float]:
    """``{prefix/name: value}`` for ``names`` (and accuracy and top-1 metrics, where present) of one axis."""
    present = [m for m in (*SINGLE_LABEL_METRICS, *names, *TOP1_METRICS) if m in metrics]
    return {f"{prefix}/{name}": float(metrics[name]) for name in present}


# --------------------------------------------------------------------------- confidence intervals


def _document_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """(documents x 3) true positives, false positives and false negatives of each document."""
    out = np.zeros((len(gold), 3))
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        g, p = set(g), set(p)
        out[i] = (len(g & p), len(p - g), len(g - p))
    return out


def _micro_f1(sums: np.ndarray) -> np.ndarray:
    """Micro-F1 of each row of summed (tp, fp, fn); 0 where there is nothing to count."""
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=np.float64), where=den > 0)


def micro_f1_interval(
    gold: Sequence[Sequence[str] | None],
    pred: Sequence[Sequence[str]],
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float] | None:
    """Micro-F1 of ``pred`` against ``gold`` with a percentile bootstrap interval over documents: ``{"micro_f1",
    "low", "high", "n_docs"}``; documents whose gold is ``None`` (unknown) are left out, None when none is
    left. Seeded, so the same predictions give the same interval."""
    keep = [i for i, g in enumerate(gold) if g is not None]
    if not keep:
        return None
    counts = _document_counts([gold[i] or () for i in keep], [pred[i] for i in keep])
    n = len(keep)
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, 2_000_000 // n))
    draws = []
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        picks = rng.integers(0, n, size=(size, n))
        draws.append(_micro_f1(counts[picks].sum(axis=1)))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(draws), [alpha, 1 - alpha])
    point = float(_micro_f1(counts.sum(axis=0)))
    return {"micro_f1": point, "low": float(low), "high": float(high), "n_docs": n}


def interval_report(
    gold: Mapping[str, Sequence[Sequence[str] | None]],
    pred: Mapping[str, Sequence[Sequence[str]]],
    corpora: Sequence[str] = (),
    coverage: Coverage | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{axis: {corpus: micro_f1_interval}}`` over the documents ``covered_report`` scores: corpus ``all``
    for the whole split and one entry per corpus when there are several; predictions are limited to the
    labels each document's corpus covers. An axis or corpus without known gold has no entry."""
    names = sorted(set(corpora))
    n = len(next(iter(gold.values()), []))
    groups = [(ALL_CORPORA, list(range(n)))]
    if len(names) > 1:
        groups += [(name, [i for i in range(n) if corpora[i] == name]) for name in names]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for axis, rows in gold.items():
        allowed = [_allowed(coverage, c, axis) for c in corpora] if corpora else [None] * n
        limited = [[x for x in pred[axis][i] if allowed[i] is None or x in allowed[i]] for i in range(n)]
        for corpus, docs in groups:
            found = micro_f1_interval(
                [rows[i] for i in docs], [limited[i] for i in docs], confidence, resamples
            )
            if found is not None:
                out.setdefault(axis, {})[corpus] = found
    return out
