"""The regions rows of the benchmark: figures of one segment of test documents (issue 15).

A segment is a slice of an axis's test documents reported on its own (``bench.data.Segment``: one corpus's
test documents, optionally only the long or the short ones). Its figures, for one system:

- ``micro_f1`` / ``macro_f1``: of the predicted region sets against gold (``pipeline.metrics.axis_metrics``,
  macro over the regions with gold support in the segment), over every document whose gold is known;
- ``no_region_share``: of the documents with at least one gold region, the share that get no region;
- ``primary_top1``: of the documents whose gold names exactly one region, the share whose primary region is
  that region (a document with no primary region counts as a miss); None when the system gives none.

Pure functions over label lists: no system, no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import median

FIGURES = ("micro_f1", "macro_f1", "no_region_share", "primary_top1")
FIGURE_NAMES = {
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "no_region_share": "share with no region",
    "primary_top1": "primary-region top-1 (single-region items)",
}
COUNTS = ("n_docs", "n_with_region", "n_single_region")
# Figures where lower is better (a goal on them is a ceiling, not a floor).
CEILINGS = frozenset({"no_region_share"})


def no_region_share(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> tuple[float | None, int]:
    """(share, n): of the ``n`` documents with at least one gold label, the share with no predicted label."""
    rows = [p for g, p in zip(gold, pred, strict=True) if g]
    return (sum(not p for p in rows) / len(rows) if rows else None), len(rows)


def primary_top1(gold: Sequence[Sequence[str]], primary: Sequence[str | None]) -> tuple[float | None, int]:
    """(accuracy, n): of the ``n`` documents whose gold holds exactly one label, the share whose primary
    label is it (None, no primary, is a miss)."""
    rows = [(g[0], p) for g, p in zip(gold, primary, strict=True) if len(set(g)) == 1]
    return (sum(g == p for g, p in rows) / len(rows) if rows else None), len(rows)


def segment_figures(
    gold: Sequence[Sequence[str] | None],
    pred: Sequence[Sequence[str]],
    primary: Sequence[str | None] | None,
    labels: Sequence[str],
) -> dict[str, Any]:
    """The figures (``FIGURES``) and their document counts (``COUNTS``) of one system on one segment.

    Documents whose gold is None (unknown) are left out; ``primary`` None: the system has no primary label.
    """
    from pipeline.metrics import axis_metrics

    keep = [k for k, g in enumerate(gold) if g is not None]
    g = [list(gold[k] or []) for k in keep]
    p = [list(pred[k]) for k in keep]
    out: dict[str, Any] = dict.fromkeys((*FIGURES, *COUNTS))
    out["n_docs"] = len(keep)
    if not keep:
        return out
    m = axis_metrics(g, p, list(labels))
    out["micro_f1"], out["macro_f1"] = m["micro_f1"], m["macro_f1"]
    out["no_region_share"], out["n_with_region"] = no_region_share(g, p)
    single, n_single = primary_top1(g, [primary[k] for k in keep] if primary is not None else [None] * len(g))
    out["n_single_region"] = n_single
    out["primary_top1"] = single if primary is not None else None
    return out


def median_segments(runs: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per segment, the median of each figure over repeated runs (counts from the first run)."""
    if not runs:
        return {}
    out = {}
    for name, first in runs[0].items():
        row = {k: first.get(k) for k in COUNTS}
        for key in FIGURES:
            row[key] = median(r.get(name, {}).get(key) for r in runs)
        out[name] = row
    return out
