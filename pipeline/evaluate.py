"""Metrics, reports and plots for multi-label tagging, given gold and predicted label sets.

Nothing here knows about models or MLflow: callers pass label lists (and, for curves, score matrices) and get
plain dicts, markdown text or PNG files back. scikit-learn and matplotlib are imported inside the functions
that need them, so importing this module stays cheap.

Macro averages (``macro_f1``, ``macro_precision``, ``macro_recall``) are taken over the labels of the axis
that have at least one gold document in the evaluated set; their number is ``macro_labels``. Labels with no
gold document can only be wrong there, whatever the model does, so counting them (scikit-learn's default)
would measure the split rather than the model. This is the Reuters R90 convention (all 90 topics occur in
the ApteMod test split, so both conventions agree there). Predictions of such labels still cost micro
precision, and every label of the axis stays in ``per_label`` with its support, so the averages can be
recomputed either way.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
NO_LABEL = "(none)"
FIG_WIDTH_IN, DPI = 12.0, 100  # 1200 px wide
MAX_FIG_HEIGHT_IN = 300.0  # Agg cannot draw more than 2**16 px
MAX_ANNOTATED = 20  # heatmap cells are annotated up to this many labels
_METRIC_UNSAFE = re.compile(r"[^\w.\- ]")  # MLflow's allowed characters, minus "/": a label is one segment

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- inputs


def _label_lists(rows: Iterable[Any], what: str) -> list[list[str]]:
    """Each document's labels as a list; ``None`` means no labels, a bare string is a caller's mistake."""
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, str | bytes):
            raise ValueError(f"{what}[{i}] is a string ({row!r}); expected a list of labels")
        out.append([] if row is None else list(row))
    return out


def _checked_labels(labels: Sequence[str]) -> list[str]:
    """The axis labels as a list, refused when empty or repeated."""
    labels = list(labels)
    if not labels:
        raise ValueError("the label list is empty")
    repeated = sorted(label for label, count in Counter(labels).items() if count > 1)
    if repeated:
        raise ValueError(f"repeated labels in the label list: {repeated}")
    return labels


def _drop_unknown(rows: list[list[str]], labels: list[str]) -> tuple[list[list[str]], int]:
    """The rows restricted to ``labels``, and how many label occurrences were dropped."""
    known = set(labels)
    kept = [[label for label in row if label in known] for row in rows]
    return kept, sum(len(row) - len(k) for row, k in zip(rows, kept, strict=True))


def _binarize(rows: list[list[str]], labels: list[str]) -> np.ndarray:
    """A (documents x labels) 0/1 matrix; rows must hold known labels only."""
    from sklearn.preprocessing import MultiLabelBinarizer

    return MultiLabelBinarizer(classes=labels).fit_transform(rows)


def _gold_matrix(gold: Sequence[Sequence[str]], labels: list[str]) -> np.ndarray:
    """The gold indicator matrix, labels outside ``labels`` ignored."""
    return _binarize(_drop_unknown(_label_lists(gold, "gold"), labels)[0], labels)


def _most_frequent(y: np.ndarray, limit: int) -> list[int]:
    """Column indices of the ``limit`` labels with most documents (at least one), most frequent first."""
    support = y.sum(axis=0)
    order = sorted(range(y.shape[1]), key=lambda i: (-support[i], i))
    return [i for i in order if support[i] > 0][: max(limit, 0)]


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
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Micro, macro and per-document scores of one label axis, plus per-label precision/recall/F1/support.

    Labels outside ``labels`` are ignored and their occurrences (gold and predicted) counted in
    ``ignored_labels``; ``None`` stands for a document without labels. Macro averages cover the
    ``macro_labels`` labels with at least one gold document (see the module docstring); ``n_labels`` is the
    size of the axis. Raises ``ValueError`` when gold and pred differ in length or there are no documents.
    """
    labels = _checked_labels(labels)
    gold_rows, pred_rows = _label_lists(gold, "gold"), _label_lists(pred, "pred")
    if len(gold_rows) != len(pred_rows):
        raise ValueError(f"gold has {len(gold_rows)} documents but pred has {len(pred_rows)}")
    if not gold_rows:
        raise ValueError("no documents to evaluate")
    (gold_kept, gold_ignored), (pred_kept, pred_ignored) = (
        _drop_unknown(gold_rows, labels),
        _drop_unknown(pred_rows, labels),
    )
    y_true, y_pred = _binarize(gold_kept, labels), _binarize(pred_kept, labels)
    micro, per_label = _micro(y_true, y_pred), _per_label(y_true, y_pred, labels)
    macro = _macro(per_label)
    return {
        "n_docs": len(gold_rows),
        "micro_f1": micro["micro_f1"],
        "macro_f1": macro["macro_f1"],
        "micro_precision": micro["micro_precision"],
        "micro_recall": micro["micro_recall"],
        "macro_precision": macro["macro_precision"],
        "macro_recall": macro["macro_recall"],
        "samples_f1": _samples_f1(y_true, y_pred),
        "subset_accuracy": float((y_true == y_pred).all(axis=1).mean()),
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
) -> dict[str, Any]:
    """The DESIGN §3 report ``{"n_docs": N, "axes": {axis: axis_metrics(...)}}`` for every axis of ``gold``.

    Axes present only in ``pred`` or ``labels`` are left out. Raises ``ValueError`` when an axis of ``gold``
    has no predictions or labels, or when its lengths differ (the message names the axis and both lengths).
    """
    n_docs = _checked_axes(gold, pred, labels)
    return {
        "n_docs": n_docs,
        "axes": {axis: axis_metrics(gold[axis], pred[axis], labels[axis]) for axis in gold},
    }


# --------------------------------------------------------------------------- MLflow metric names


def _metric_segment(name: str) -> str:
    """``name`` as one MLflow-safe path segment: other characters (and "/") become "_"; never "", "." or ".."."""
    segment = _METRIC_UNSAFE.sub("_", str(name))
    return segment.replace(".", "_") if set(segment) <= {"."} else segment


def _label_segments(labels: Iterable[str]) -> dict[str, str]:
    """label -> unique metric segment; labels that sanitise alike get "_2", "_3", ... in label order."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for label in labels:
        base = segment = _metric_segment(label) or "_"
        n = 1
        while segment in taken:
            n += 1
            segment = f"{base}_{n}"
        out[label] = segment
        taken.add(segment)
    return out


def metric_items(report: Mapping[str, Any], split: str) -> dict[str, float]:
    """Flat ``{name: value}`` for MLflow: ``<split>/<axis>/<metric>`` and ``<split>/<axis>/f1/<label>``.

    Axis and label names are made safe for MLflow metric keys (alphanumerics, ``_ - .`` and spaces; anything
    else, including "/", becomes "_"), so "money-fx" stays and "a&b" becomes "a_b".
    """
    items: dict[str, float] = {}
    for axis, metrics in report["axes"].items():
        prefix = f"{split}/{_metric_segment(axis)}"
        items.update({f"{prefix}/{name}": float(metrics[name]) for name in SUMMARY_METRICS})
        per_label = metrics["per_label"]
        for label, segment in _label_segments(per_label).items():
            items[f"{prefix}/f1/{segment}"] = float(per_label[label]["f1"])
    return items


# --------------------------------------------------------------------------- text reports


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, line breaks flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[Any]]) -> list[str]:
    """Markdown table lines; ``align`` has one "l" or "r" per column."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|",
    ]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _by_support(per_label: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, stats) pairs, most gold documents first, then by label."""
    return sorted(per_label.items(), key=lambda item: (-item[1]["support"], str(item[0])))


def _macro_note(axis: str, metrics: Mapping[str, Any]) -> str:
    n_labels = metrics.get("n_labels", len(metrics["per_label"]))
    return f"{axis}: {metrics.get('macro_labels', n_labels)} of {n_labels} labels"


def _axis_section(axis: str, metrics: Mapping[str, Any]) -> list[str]:
    extras = [
        f"samples-F1 {metrics['samples_f1']:.3f}" if "samples_f1" in metrics else "",
        f"subset accuracy {metrics['subset_accuracy']:.3f}" if "subset_accuracy" in metrics else "",
        f"macro-P {metrics['macro_precision']:.3f}" if "macro_precision" in metrics else "",
        f"macro-R {metrics['macro_recall']:.3f}" if "macro_recall" in metrics else "",
        f"ignored label occurrences {metrics['ignored_labels']}" if metrics.get("ignored_labels") else "",
    ]
    rows = [
        (label, s["support"], f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}")
        for label, s in _by_support(metrics["per_label"])
    ]
    lines = [f"## {axis}", ""]
    if any(extras):
        lines += [" · ".join(e for e in extras if e), ""]
    return [*lines, *_table(("label", "support", "P", "R", "F1"), "lrrrr", rows), ""]


def report_markdown(report: Mapping[str, Any], title: str, extra: Mapping[str, str] | None = None) -> str:
    """A markdown report: title, optional key/value facts, a summary table per axis, then per-label tables."""
    axes = report["axes"]
    lines = [f"# {title}", ""]
    if extra:
        lines += [f"- **{_cell(key)}**: {_cell(value)}" for key, value in extra.items()] + [""]
    summary = [
        (
            axis,
            f"{m['micro_f1']:.3f}",
            f"{m['macro_f1']:.3f}",
            f"{m['micro_precision']:.3f}",
            f"{m['micro_recall']:.3f}",
            m.get("n_docs", report.get("n_docs", "")),
        )
        for axis, m in axes.items()
    ]
    lines += _table(("axis", "micro-F1", "macro-F1", "micro-P", "micro-R", "docs"), "lrrrrr", summary)
    notes = "; ".join(_macro_note(axis, m) for axis, m in axes.items())
    lines += ["", f"Macro averages cover the labels with at least one gold document ({notes}).", ""]
    for axis, metrics in axes.items():
        lines += _axis_section(axis, metrics)
    return "\n".join(lines)


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """One short line per axis (micro/macro F1, micro P/R, documents); other top-level keys are ignored."""
    lines = []
    for axis, m in report.get("axes", {}).items():
        n_labels = m.get("n_labels", len(m.get("per_label", {})))
        lines.append(
            f"{axis}: micro-F1 {m['micro_f1']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
            f"P {m['micro_precision']:.3f}  R {m['micro_recall']:.3f}  "
            f"({m.get('n_docs', report.get('n_docs', '?'))} docs, {m.get('macro_labels', n_labels)}/{n_labels} labels)"
        )
    return lines


def top_terms_markdown(top_terms: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]]) -> str:
    """One markdown table per axis: each label with its top positive terms and their weights."""
    lines: list[str] = []
    for axis, per_label in top_terms.items():
        rows = [
            (label, ", ".join(f"{term} ({weight:.3g})" for term, weight in terms))
            for label, terms in per_label.items()
        ]
        lines += [f"## Top terms: {axis}", "", *_table(("label", "top positive terms"), "ll", rows), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def _new_figure(height_in: float) -> Figure:
    """A 1200 px wide figure drawn by Agg, never registered with pyplot (no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIG_WIDTH_IN, min(height_in, MAX_FIG_HEIGHT_IN)), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as PNG at ``path`` (parents created) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()
    return path


def _say_empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=14)
    ax.set_axis_off()


def plot_per_label_f1(report: Mapping[str, Any], axis: str, path: PathLike) -> Path:
    """Horizontal bars of each label's F1 (most gold documents on top, support written at each bar)."""
    if axis not in report["axes"]:
        raise ValueError(f"axis {axis!r} is not in the report (axes: {sorted(report['axes'])})")
    metrics = report["axes"][axis]
    rows = _by_support(metrics["per_label"])
    fig = _new_figure(max(4.0, 0.26 * len(rows) + 1.8))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    f1 = [s["f1"] for _, s in rows]
    ax.barh(y, f1, color=["tab:blue" if s["support"] > 0 else "lightgrey" for _, s in rows])
    for yi, (_, s) in zip(y, rows, strict=True):
        ax.text(s["f1"] + 0.01, yi, f"n={s['support']}", va="center", fontsize=8)
    ax.axvline(metrics["micro_f1"], color="black", ls="--", lw=1, label=f"micro-F1 {metrics['micro_f1']:.3f}")
    ax.axvline(
        metrics["macro_f1"], color="tab:red", ls=":", lw=1.5, label=f"macro-F1 {metrics['macro_f1']:.3f}"
    )
    ax.set_yticks(y, [str(label) for label, _ in rows], fontsize=8 if len(rows) > 30 else 10)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1")
    ax.set_ylabel("label (most gold documents first; n = support)")
    ax.set_title(f"Per-label F1: {axis} ({metrics.get('n_docs', report.get('n_docs', '?'))} documents)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def _operating_point(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of a 0/1 prediction; 0 where undefined."""
    tp = float((y.astype(bool) & predicted).sum())
    return tp / max(int(y.sum()), 1), tp / max(int(predicted.sum()), 1)


def _palette() -> list[Any]:
    """Twenty distinguishable colours: tab20's dark shades first, then its light ones."""
    import matplotlib

    colors = list(matplotlib.colormaps["tab20"].colors)
    return colors[::2] + colors[1::2]


def _draw_pr(
    ax: Axes, y: np.ndarray, s: np.ndarray, name: str, point: tuple[float, float] | None, **style: Any
) -> None:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, s)
    line = ax.plot(
        recall,
        precision,
        drawstyle="steps-post",
        label=f"{name}  AP {average_precision_score(y, s):.2f}",
        **style,
    )
    if point is not None:
        ax.plot(*point, "o", color=line[0].get_color(), markeredgecolor="black", markersize=8)


def plot_pr_curves(
    gold: Sequence[Sequence[str]],
    scores: np.ndarray,
    labels: Sequence[str],
    path: PathLike,
    thresholds: Mapping[str, float] | None = None,
    max_labels: int = 12,
) -> Path:
    """Precision-recall curves of the ``max_labels`` most frequent gold labels and of the micro-average.

    ``scores`` is (documents x labels) in the order of ``labels``. With ``thresholds``, each curve marks its
    operating point (score >= threshold); the micro-average is marked when every label has a threshold.
    """
    labels = _checked_labels(labels)
    y_true = _gold_matrix(gold, labels)
    scores = np.asarray(scores, dtype=float)
    if scores.shape != y_true.shape:
        raise ValueError(f"scores has shape {scores.shape}, expected {y_true.shape} (documents x labels)")
    thresholds = thresholds or {}
    top = _most_frequent(y_true, max_labels)
    fig = _new_figure(8.0)
    ax = fig.add_subplot()
    if not top:
        _say_empty(ax, "no gold labels: nothing to draw")
        return _save(fig, path)
    palette = _palette()
    for k, i in enumerate(top):
        color = palette[k % len(palette)]
        t = thresholds.get(labels[i])
        point = None if t is None else _operating_point(y_true[:, i], scores[:, i] >= t)
        name = f"{labels[i]} (n={int(y_true[:, i].sum())})"
        _draw_pr(ax, y_true[:, i], scores[:, i], name, point, color=color, lw=1.2, alpha=0.85)
    all_set = all(label in thresholds for label in labels)
    cut = np.array([thresholds.get(label, 0.0) for label in labels])
    point = _operating_point(y_true.ravel(), (scores >= cut).ravel()) if all_set else None
    _draw_pr(ax, y_true.ravel(), scores.ravel(), "micro-average", point, color="black", lw=2.5)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    marked = "; dots = tuned thresholds" if thresholds else ""
    ax.set_title(f"Precision-recall: {len(top)} most frequent labels and micro-average{marked}")
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def _heatmap(ax: Axes, counts: np.ndarray, rows: list[str], columns: list[str], shown: np.ndarray):
    """Draw ``shown`` (NaN cells grey) with ``counts`` written in the cells when there are few labels."""
    import matplotlib

    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="lightgrey")
    finite = shown[np.isfinite(shown)]
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=max(float(finite.max()) if finite.size else 0.0, 1.0))
    size = 8 if len(columns) > 15 else 10
    ax.set_xticks(np.arange(len(columns)), columns, rotation=90, fontsize=size)
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=size)
    if len(columns) <= MAX_ANNOTATED:
        limit = image.norm.vmax / 2
        for (r, c), value in np.ndenumerate(counts):
            dark = np.isfinite(shown[r, c]) and shown[r, c] > limit
            ax.text(
                c,
                r,
                str(int(value)),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    return image


def plot_cooccurrence(
    gold: Sequence[Sequence[str]], labels: Sequence[str], path: PathLike, max_labels: int = 30
) -> Path:
    """Heatmap of how many gold documents share each pair of the ``max_labels`` most frequent labels.

    The diagonal (grey) holds each label's own document count; counts are written in the cells when at most
    20 labels are shown.
    """
    labels = _checked_labels(labels)
    y_true = _gold_matrix(gold, labels)
    top = _most_frequent(y_true, max_labels)
    fig = _new_figure(10.0)
    ax = fig.add_subplot()
    if not top:
        _say_empty(ax, "no gold labels: nothing to draw")
        return _save(fig, path)
    counts = y_true[:, top].T @ y_true[:, top]
    shown = counts.astype(float)
    np.fill_diagonal(shown, np.nan)
    names = [labels[i] for i in top]
    image = _heatmap(ax, counts, names, names, shown)
    fig.colorbar(image, ax=ax, label="documents with both labels")
    ax.set_xlabel("label")
    ax.set_ylabel("label")
    ax.set_title(f"Gold label co-occurrence: {len(top)} most frequent labels (diagonal: documents per label)")
    return _save(fig, path)


def _first_known(rows: list[list[str]], labels: list[str]) -> list[str]:
    """Each row's first label of ``labels``, or NO_LABEL."""
    kept, _ = _drop_unknown(rows, labels)
    return [row[0] if row else NO_LABEL for row in kept]


def plot_confusion_single(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    labels: Sequence[str],
    path: PathLike,
    scores: np.ndarray | None = None,
) -> Path:
    """Confusion matrix for a single-label axis: gold label (rows) against predicted label (columns).

    Each document counts with its first gold label (documents without one are left out) and its top
    prediction: the highest score when ``scores`` is given, else the first predicted label, else "(none)".
    """
    from sklearn.metrics import confusion_matrix

    labels = _checked_labels(labels)
    gold_rows, pred_rows = _label_lists(gold, "gold"), _label_lists(pred, "pred")
    if len(gold_rows) != len(pred_rows):
        raise ValueError(f"gold has {len(gold_rows)} documents but pred has {len(pred_rows)}")
    if scores is not None:
        pred_rows = [[labels[int(i)]] for i in np.asarray(scores).argmax(axis=1)]
    gold_top, pred_top = _first_known(gold_rows, labels), _first_known(pred_rows, labels)
    pairs = [(g, p) for g, p in zip(gold_top, pred_top, strict=True) if g != NO_LABEL]
    fig = _new_figure(10.0)
    ax = fig.add_subplot()
    if not pairs:
        _say_empty(ax, "no gold labels: nothing to draw")
        return _save(fig, path)
    columns = [*labels, NO_LABEL]
    counts = confusion_matrix([g for g, _ in pairs], [p for _, p in pairs], labels=columns)[: len(labels)]
    image = _heatmap(ax, counts, labels, columns, counts.astype(float))
    fig.colorbar(image, ax=ax, label="documents")
    accuracy = sum(g == p for g, p in pairs) / len(pairs)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("gold label")
    ax.set_title(f"Confusion matrix: {len(pairs)} documents, accuracy {accuracy:.3f}")
    return _save(fig, path)


# --------------------------------------------------------------------------- the evaluate command


def _gold_from_file(
    path: str, axes: Sequence[str], id_field: str, title_field: str, text_field: str
) -> tuple[Any, dict[str, list[list[str]]], list[Any]]:
    """(documents, gold labels per axis present in the file, read issues) of a labelled file."""
    import pandas as pd

    from pipeline.config import CorpusConfig
    from pipeline.corpora import CorpusError, iter_rows, row_to_record

    cfg = CorpusConfig(
        format="jsonl",
        id_field=id_field,
        title_field=title_field,
        text_field=text_field,
        label_fields={a: a for a in axes},
    )
    issues: list[Any] = []
    records, present = [], set()
    for line, row in iter_rows(path):
        if not isinstance(row, dict):
            issues.append(row)
            continue
        present.update(a for a in axes if a in row)
        rec = row_to_record(row, line, str(path), cfg, issues)
        if rec is not None:
            records.append(rec)
    if not records:
        raise CorpusError(f"{path}: no readable labelled documents")
    found = [a for a in axes if a in present]
    if not found:
        raise CorpusError(f"{path}: no gold label column; expected one of {', '.join(axes)}")
    frame = pd.DataFrame(
        {
            "id": [r.id for r in records],
            "title": [r.title for r in records],
            "text": [r.text for r in records],
        }
    )
    gold = {a: [r.labels.get(a, []) for r in records] for a in found}
    return frame, gold, issues


def scored_labels(
    model_labels: Mapping[str, Sequence[str]], gold: Mapping[str, Sequence[Sequence[str]]]
) -> dict[str, list[str]]:
    """Per gold axis, the model's labels plus gold labels it cannot predict (they score 0, not vanish)."""
    out = {}
    for axis, rows in gold.items():
        known = list(model_labels.get(axis, []))
        extra = sorted({label for row in rows for label in row} - set(known))
        out[axis] = known + extra
    return out


def evaluate_command(
    model_uri: str,
    input_path: str | None = None,
    config_path: str | None = None,
    overrides: list[str] | None = None,
    split: str | None = None,
    tracking_uri: str | None = None,
    id_field: str = "id",
    title_field: str = "title",
    text_field: str = "text",
    say: Any = print,
) -> dict[str, Any]:
    """The DESIGN §3 report of a model on a labelled file or on a split of a prepared config."""
    from pipeline.loading import load_tagger

    tagger, _ = load_tagger(model_uri, tracking_uri)
    issues: list[Any] = []
    if input_path:
        frame, gold, issues = _gold_from_file(input_path, tagger.axes, id_field, title_field, text_field)
        source = {"input": str(input_path)}
    else:
        from pipeline.config import load_config
        from pipeline.prepare import load_prepared, prepare
        from pipeline.train import split_frame

        cfg = load_config(config_path, overrides)
        prepared = prepare(cfg, say=say)
        frame, gold_all = split_frame(load_prepared(prepared.path)[split])
        gold = {a: gold_all[a] for a in tagger.axes if a in gold_all}
        if not gold:
            raise ValueError(
                f"{config_path}: none of the model's axes ({', '.join(tagger.axes)}) is in this corpus"
            )
        source = {"config": str(config_path), "split": split}
    pred = tagger.predict_labels(frame)
    report = evaluation_report(gold, {a: pred[a] for a in gold}, scored_labels(tagger.labels_, gold))
    report.update({"model": model_uri, **source})
    if issues:
        report["rejected"] = [i.to_dict() for i in issues]
    return report
