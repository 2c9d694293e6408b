"""Markdown reports and PNG figures of evaluation results.

Callers pass reports from ``pipeline.metrics`` (and, for curves, gold labels and score matrices) and get
markdown text or PNG files back. Nothing here computes a model's predictions or talks to MLflow. matplotlib
and scikit-learn are imported inside the functions that draw, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.metrics import checked_labels, drop_unknown, gold_matrix, paired_label_lists

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


NO_LABEL = "(none)"
FIG_WIDTH_IN, DPI = 12.0, 100  # 1200 px wide
MAX_FIG_HEIGHT_IN = 300.0  # Agg cannot draw more than 2**16 px
MAX_ANNOTATED = 20  # heatmap cells are annotated up to this many labels

PathLike = str | os.PathLike[str]


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


def summary_lines(report: Mapping[str, Any], prefix: str = "") -> list[str]:
    """One short line per axis (accuracy: a single-label axis's, else exact-match accuracy; micro/macro F1,
    micro P/R, top-1 accuracy where gold is single-label, documents), then the same per corpus when the
    report has several; other top-level keys are ignored."""
    lines = []
    for axis, m in report.get("axes", {}).items():
        n_labels = m.get("n_labels", len(m.get("per_label", {})))
        top1 = f"  top-1 acc {m['top1_accuracy']:.3f}" if "top1_accuracy" in m else ""
        if "accuracy" in m:
            acc = f"accuracy {m['accuracy']:.3f}  "
        elif "subset_accuracy" in m:
            acc = f"exact-match acc {m['subset_accuracy']:.3f}  "
        else:
            acc = ""
        lines.append(
            f"{prefix}{axis}: {acc}micro-F1 {m['micro_f1']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
            f"P {m['micro_precision']:.3f}  R {m['micro_recall']:.3f}{top1}  "
            f"({m.get('n_docs', report.get('n_docs', '?'))} docs, {m.get('macro_labels', n_labels)}/{n_labels} labels)"
        )
    for corpus, sub in report.get("corpora", {}).items():
        lines += summary_lines(sub, f"  {corpus} ")
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


def _most_frequent(y: np.ndarray, limit: int) -> list[int]:
    """Column indices of the ``limit`` labels with most documents (at least one), most frequent first."""
    support = y.sum(axis=0)
    order = sorted(range(y.shape[1]), key=lambda i: (-support[i], i))
    return [i for i in order if support[i] > 0][: max(limit, 0)]


def _new_figure(height_in: float) -> tuple[Figure, Axes]:
    """A 1200 px wide figure drawn by Agg, never registered with pyplot (no global backend switch), and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIG_WIDTH_IN, min(height_in, MAX_FIG_HEIGHT_IN)), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as PNG at ``path`` (parents created) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()
    return path


def _nothing_to_draw(height_in: float, path: PathLike) -> Path:
    """A figure that only says there are no gold labels, saved at ``path``."""
    fig, ax = _new_figure(height_in)
    ax.text(
        0.5,
        0.5,
        "no gold labels: nothing to draw",
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=14,
    )
    ax.set_axis_off()
    return _save(fig, path)


def plot_per_label_f1(
    report: Mapping[str, Any], axis: str, path: PathLike, validation: Mapping[str, Any] | None = None
) -> Path:
    """Horizontal bars of each label's F1 (most gold documents on top, support written at each bar); with
    ``validation``, that split's F1 as a second, thinner bar under each test bar."""
    if axis not in report["axes"]:
        raise ValueError(f"axis {axis!r} is not in the report (axes: {sorted(report['axes'])})")
    metrics = report["axes"][axis]
    rows = _by_support(metrics["per_label"])
    other = (validation or {}).get("axes", {}).get(axis)
    fig, ax = _new_figure(max(4.0, (0.34 if other else 0.26) * len(rows) + 1.8))
    y = np.arange(len(rows))
    f1 = [s["f1"] for _, s in rows]
    height = 0.45 if other else 0.8
    shift = -height / 2 if other else 0.0
    ax.barh(
        y + shift,
        f1,
        height=height,
        color=["tab:blue" if s["support"] > 0 else "lightgrey" for _, s in rows],
        label="test" if other else None,
    )
    for yi, (_, s) in zip(y, rows, strict=True):
        ax.text(s["f1"] + 0.01, yi + shift, f"n={s['support']}", va="center", fontsize=8)
    if other:
        val = [other["per_label"].get(label, {}).get("f1", 0.0) for label, _ in rows]
        ax.barh(y + height / 2, val, height=height, color="tab:orange", alpha=0.8, label="validation")
    ax.axvline(metrics["micro_f1"], color="black", ls="--", lw=1, label=f"micro-F1 {metrics['micro_f1']:.3f}")
    ax.axvline(
        metrics["macro_f1"], color="tab:red", ls=":", lw=1.5, label=f"macro-F1 {metrics['macro_f1']:.3f}"
    )
    ax.set_yticks(y, [str(label) for label, _ in rows], fontsize=8 if len(rows) > 30 else 10)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1" + (" (lines: test)" if other else ""))
    ax.set_ylabel("label (most gold documents first; n = test support)" if other else "label (n = support)")
    docs = metrics.get("n_docs", report.get("n_docs", "?"))
    where = f"test {docs}, validation {other.get('n_docs', '?')} documents" if other else f"{docs} documents"
    ax.set_title(f"Per-label F1: {axis} ({where})")
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
    labels = checked_labels(labels)
    y_true = gold_matrix(gold, labels)
    scores = np.asarray(scores, dtype=float)
    if scores.shape != y_true.shape:
        raise ValueError(f"scores has shape {scores.shape}, expected {y_true.shape} (documents x labels)")
    thresholds = thresholds or {}
    top = _most_frequent(y_true, max_labels)
    if not top:
        return _nothing_to_draw(8.0, path)
    fig, ax = _new_figure(8.0)
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
    labels = checked_labels(labels)
    y_true = gold_matrix(gold, labels)
    top = _most_frequent(y_true, max_labels)
    if not top:
        return _nothing_to_draw(10.0, path)
    fig, ax = _new_figure(10.0)
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
    kept, _ = drop_unknown(rows, labels)
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

    labels = checked_labels(labels)
    gold_rows, pred_rows = paired_label_lists(gold, pred)
    if scores is not None:
        pred_rows = [[labels[int(i)]] for i in np.asarray(scores).argmax(axis=1)]
    gold_top, pred_top = _first_known(gold_rows, labels), _first_known(pred_rows, labels)
    pairs = [(g, p) for g, p in zip(gold_top, pred_top, strict=True) if g != NO_LABEL]
    if not pairs:
        return _nothing_to_draw(10.0, path)
    fig, ax = _new_figure(10.0)
    columns = [*labels, NO_LABEL]
    counts = confusion_matrix([g for g, _ in pairs], [p for _, p in pairs], labels=columns)[: len(labels)]
    image = _heatmap(ax, counts, labels, columns, counts.astype(float))
    fig.colorbar(image, ax=ax, label="documents")
    accuracy = sum(g == p for g, p in pairs) / len(pairs)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("gold label")
    ax.set_title(f"Confusion matrix: {len(pairs)} documents, accuracy {accuracy:.3f}")
    return _save(fig, path)


# --------------------------------------------------------------------------- a trained tagger's figures


def write_figures(
    out: Path,
    tagger: Any,
    report: dict,
    gold: Mapping[str, list[list[str]]],
    scores: Mapping[str, Any],
    validation: Mapping[str, Any] | None = None,
) -> list[Path]:
    """The PNG figures of a test report, per axis: per-label F1 (beside the ``validation`` report's when
    given), PR curves, label co-occurrence (over the documents whose labels are known on each axis)."""
    paths = []
    th = tagger.thresholds()
    for axis in tagger.axes:
        labels = tagger.labels_[axis]
        known = [i for i, row in enumerate(gold[axis]) if row is not None]
        axis_gold = [gold[axis][i] for i in known]
        paths.append(plot_per_label_f1(report, axis, out / f"{axis}_per_label_f1.png", validation))
        paths.append(
            plot_pr_curves(
                axis_gold,
                scores[axis][known],
                labels,
                out / f"{axis}_pr_curves.png",
                dict(zip(labels, th[axis], strict=True)),
            )
        )
        paths.append(plot_cooccurrence(axis_gold, labels, out / f"{axis}_cooccurrence.png"))
    return paths
