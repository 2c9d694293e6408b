"""The champion/challenger decision: a paired bootstrap on the same validation documents, no store involved.

The rule. The challenger (the version a training run just registered) and the champion are scored on the
same documents: this run's validation split, the champion re-scored on it (``train.champion_samples``).
For each promotion metric (``<axis>/<metric>``, e.g. ``regions/micro_f1``) and each corpus whose
validation documents have gold labels on that axis, a paired bootstrap draws the documents with
replacement ``resamples`` times (seeded) and computes the difference challenger - champion on each draw.
The central ``confidence`` interval of those differences is the noise band of that comparison:

- *better*: the interval's lower bound is above 0; *worse*: its upper bound is below 0; else *within
  the noise*.
- The challenger is promoted when at least one comparison is better and none is worse.
- A single-label axis (``multi_label: false``) also offers ``accuracy``; ``metrics.default_promotion_metrics``
  names the metrics an axis is compared on when the config names none (single-label: accuracy and macro-F1).
- No champion: promoted. A champion that cannot be scored on these documents (its model cannot be loaded,
  or it lacks an axis of the metrics): promoted, and the reason says why (``not_comparable``).

The p-value is one-sided, in the direction of the observed difference: the share of draws at or beyond 0
(with the +1 correction of a Monte Carlo p-value), so "better at 95 %" means about p < 0.025. Test
figures never enter: training logs them, this module never sees them.

Every metric is computed from per-document counts (true and false positives, false negatives, per label
or summed), so one draw is one matrix product of draw counts with those counts. Labels are compared as
``pipeline.metrics`` scores them: a document whose gold is unknown on an axis is left out of it, and
predictions are limited to the labels its corpus covers (``metrics.covered_report``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline.metrics import axis_metric_names

METRICS = axis_metric_names(multi_label=False)  # a promotion metric is one of an axis's summary metrics
_SHOWN = {
    "accuracy": "accuracy",
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "micro_precision": "micro precision",
    "micro_recall": "micro recall",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "samples_f1": "samples F1",
    "subset_accuracy": "subset accuracy",
}
_MAX_CLAUSES = 3  # a reason names at most this many comparisons; the tags hold them all
_CELLS_PER_BATCH = 4_000_000  # draws x documents held at once


@dataclass(frozen=True)
class Rule:
    """What is compared and how sure the comparison must be: ``metrics`` as ``<axis>/<metric>``."""

    metrics: tuple[str, ...]
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Sample:
    """The documents of one comparison: one axis of one corpus's validation split (``corpus`` None with a
    single corpus), their gold labels and each model's predicted labels."""

    axis: str
    corpus: str | None
    gold: Sequence[Sequence[str]]
    challenger: Sequence[Sequence[str]]
    champion: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Comparison:
    """One metric on one corpus: both scores, the bootstrap interval of their difference, the p-value."""

    metric: str  # <axis>/<metric>
    corpus: str | None
    n_docs: int
    challenger: float
    champion: float
    low: float
    high: float
    p: float  # one-sided, in the direction of the observed difference

    @property
    def diff(self) -> float:
        return self.challenger - self.champion

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``within noise``."""
        if self.low > 0:
            return "better"
        return "worse" if self.high < 0 else "within noise"

    def label(self) -> str:
        """``wcep themes micro-F1`` (no corpus with a single one)."""
        axis, metric = self.metric.split("/", 1)
        return " ".join(x for x in (self.corpus, axis, _SHOWN.get(metric, metric)) if x)

    def clause(self, by: bool = True) -> str:
        """``themes micro-F1 by +0.012 [0.006, 0.019], p < 0.01`` (without ``by``: ``themes micro-F1 +0.012
        ...``); four decimals when every number is below 0.01."""
        digits = 3 if max(abs(self.diff), abs(self.low), abs(self.high)) >= 0.01 else 4
        return (
            f"{self.label()}{' by' if by else ''} {self.diff:+.{digits}f} "
            f"[{self.low:.{digits}f}, {self.high:.{digits}f}], {format_p(self.p)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "diff": self.diff, "verdict": self.verdict}


@dataclass(frozen=True)
class Decision:
    """Whether the challenger becomes champion, the reason in one sentence, and the comparisons behind it."""

    promote: bool
    reason: str
    comparisons: tuple[Comparison, ...] = ()
    champion: str | None = None  # e.g. "v5"; None when there was none
    confidence: float | None = None
    basis: str = "validation"

    def numbers(self) -> list[dict[str, Any]]:
        """Each comparison as a plain dict (scores, interval, p, verdict)."""
        return [c.to_dict() for c in self.comparisons]

    def outcome(self) -> str:
        return "champion" if self.promote else "challenger"

    def sentence(self) -> str:
        """The decision as the registry shows it: ``v7 beats v5 on validation regions micro-F1 by +0.012
        [0.006, 0.019], p < 0.01: champion``."""
        return f"{self.reason}: {self.outcome()}"


def format_p(p: float) -> str:
    """``p < 0.001``, ``p < 0.01`` or ``p = 0.23``."""
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return "p < 0.01"
    return f"p = {p:.2f}"


# --------------------------------------------------------------------------- the documents compared


def _allowed(coverage: Mapping[str, Mapping[str, Sequence[str]]] | None, corpus: str, axis: str) -> Any:
    """The labels ``corpus`` covers on ``axis`` (None: all), as ``metrics.covered_report`` limits them."""
    if not coverage or corpus not in coverage or axis not in coverage[corpus]:
        return None
    return frozenset(coverage[corpus][axis])


def paired_samples(
    gold: Mapping[str, Sequence[Sequence[str] | None]],
    challenger: Mapping[str, Sequence[Sequence[str]]],
    champion: Mapping[str, Sequence[Sequence[str]]],
    corpora: Sequence[str] = (),
    coverage: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> list[Sample]:
    """One ``Sample`` per axis of ``gold`` and corpus (all documents when ``corpora`` names at most one):
    the documents whose gold is known on the axis, both models' predictions limited to the labels each
    document's corpus covers. A corpus with no known gold on an axis gives no sample for it."""
    names = sorted(set(corpora))
    n = len(next(iter(gold.values()), []))
    groups: list[tuple[str | None, list[int]]] = [(None, list(range(n)))]
    if len(names) > 1:
        groups = [(name, [i for i in range(n) if corpora[i] == name]) for name in names]
    out = []
    for axis, rows in gold.items():
        allowed = [_allowed(coverage, c, axis) for c in corpora] if corpora else [None] * n
        for corpus, docs in groups:
            keep = [i for i in docs if rows[i] is not None]
            if not keep:
                continue
            gold_rows = [list(rows[i] or ()) for i in keep]
            new, old = (_limited(pred[axis], keep, allowed) for pred in (challenger, champion))
            out.append(Sample(axis, corpus, gold_rows, new, old))
    return out


def _limited(pred: Sequence[Sequence[str]], keep: Sequence[int], allowed: Sequence[Any]) -> list[list[str]]:
    """The predictions of the documents ``keep``, each limited to its ``allowed`` labels (None: all)."""
    return [[x for x in pred[i] if allowed[i] is None or x in allowed[i]] for i in keep]


# --------------------------------------------------------------------------- metrics from document counts


def _indicators(sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold, challenger and champion as (documents x labels) boolean matrices over the labels any of them
    uses."""
    parts = (sample.gold, sample.challenger, sample.champion)
    if not len({len(rows) for rows in parts}) == 1:
        raise ValueError(
            f"{sample.axis}: gold, challenger and champion cover {[len(r) for r in parts]} documents"
        )
    labels = sorted({x for rows in parts for row in rows for x in row})
    index = {x: j for j, x in enumerate(labels)}
    out = []
    for rows in parts:
        m = np.zeros((len(rows), len(labels)), dtype=bool)
        for i, row in enumerate(rows):
            m[i, [index[x] for x in row]] = True
        out.append(m)
    return out[0], out[1], out[2]


def _document_counts(metric: str, gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per document, the counts whose sums over any draw of documents give ``metric`` (``_from_sums``)."""
    tp, fp, fn = gold & pred, pred & ~gold, gold & ~pred
    if metric.startswith("micro_"):
        return np.stack([tp.sum(1), fp.sum(1), fn.sum(1)], axis=1).astype(np.float64)
    if metric.startswith("macro_"):
        return np.hstack([tp, fp, fn, gold]).astype(np.float64)
    ones = np.ones(len(gold))
    if metric == "samples_f1":
        g, p, t = gold.sum(1), pred.sum(1), tp.sum(1)
        per_doc = np.where(g + p == 0, 1.0, 2 * t / np.maximum(g + p, 1))
        return np.stack([per_doc, ones], axis=1)
    if metric in ("subset_accuracy", "accuracy"):  # accuracy: a single-label axis's (metrics.axis_metrics)
        return np.stack([(gold == pred).all(axis=1).astype(np.float64), ones], axis=1)
    raise ValueError(f"unknown promotion metric {metric!r}; known: {', '.join(METRICS)}")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _from_sums(metric: str, sums: np.ndarray) -> np.ndarray:
    """``metric`` for each row of summed document counts (one row per draw)."""
    if metric.startswith("micro_"):
        tp, fp, fn = sums[:, 0], sums[:, 1], sums[:, 2]
        return {
            "micro_f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
            "micro_precision": lambda: _ratio(tp, tp + fp),
            "micro_recall": lambda: _ratio(tp, tp + fn),
        }[metric]()
    if metric.startswith("macro_"):
        tp, fp, fn, support = np.split(sums, 4, axis=1)
        per_label = {
            "macro_f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
            "macro_precision": lambda: _ratio(tp, tp + fp),
            "macro_recall": lambda: _ratio(tp, tp + fn),
        }[metric]()
        counted = support > 0  # labels with gold documents in the draw (metrics.py's macro convention)
        return _ratio((per_label * counted).sum(axis=1), counted.sum(axis=1).astype(np.float64))
    return _ratio(sums[:, 0], sums[:, 1])


def metric_value(metric: str, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """``metric`` of ``pred`` against ``gold`` on all documents, as the bootstrap computes it."""
    g, p, _ = _indicators(Sample("", None, gold, pred, pred))
    return float(_from_sums(metric, _document_counts(metric, g, p).sum(axis=0, keepdims=True))[0])


# --------------------------------------------------------------------------- the paired bootstrap


def _draw_counts(rng: np.random.Generator, draws: int, n: int) -> np.ndarray:
    """(draws x n) how often each document is drawn, each row a sample of n documents with replacement."""
    picks = rng.integers(0, n, size=(draws, n)) + (np.arange(draws)[:, None] * n)
    return np.bincount(picks.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float64)


def compare(sample: Sample, metric: str, rule: Rule) -> Comparison:
    """Paired bootstrap of ``metric`` (``<axis>/<metric>``, on the axis of ``sample``) over the sample's
    documents: both scores, the ``rule.confidence`` interval of challenger - champion, the one-sided p."""
    name = metric.split("/", 1)[1]
    gold, new, old = _indicators(sample)
    n = len(gold)
    counts_new, counts_old = _document_counts(name, gold, new), _document_counts(name, gold, old)
    score_new = float(_from_sums(name, counts_new.sum(axis=0, keepdims=True))[0])
    score_old = float(_from_sums(name, counts_old.sum(axis=0, keepdims=True))[0])
    rng = np.random.default_rng(rule.seed)
    batch = max(1, min(rule.resamples, _CELLS_PER_BATCH // max(n, 1)))
    diffs = []
    for start in range(0, rule.resamples, batch):
        draws = _draw_counts(rng, min(batch, rule.resamples - start), n)
        diffs.append(_from_sums(name, draws @ counts_new) - _from_sums(name, draws @ counts_old))
    d = np.concatenate(diffs)
    d[np.abs(d) < 1e-12] = 0.0  # equal counts can differ in the last bit after division
    alpha = (1 - rule.confidence) / 2
    low, high = (float(x) for x in np.quantile(d, [alpha, 1 - alpha]))
    observed = score_new - score_old
    if abs(observed) < 1e-12:
        p = 1.0
    else:
        beyond = np.count_nonzero(d <= 0) if observed > 0 else np.count_nonzero(d >= 0)
        p = (1 + beyond) / (1 + len(d))
    return Comparison(metric, sample.corpus, n, score_new, score_old, low, high, float(p))


def decide(
    samples: Sequence[Sample],
    rule: Rule,
    challenger: str = "the challenger",
    champion: str = "the champion",
    basis: str = "validation",
) -> Decision:
    """The decision of ``challenger`` against ``champion`` (names only word the reason, e.g. ``v7``,
    ``v5``) on ``samples``: every metric of ``rule`` on every sample of its axis (see the module
    docstring). ``basis`` names the documents in the reason (``validation``)."""
    comparisons = tuple(
        compare(s, metric, rule) for metric in rule.metrics for s in samples if s.axis == metric.split("/")[0]
    )
    level = f"{rule.confidence * 100:g}%"

    def made(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, comparisons, champion, rule.confidence, basis)

    if not comparisons:
        axes = ", ".join(sorted({m.split("/")[0] for m in rule.metrics}))
        return made(
            False, f"{challenger} cannot be compared with {champion}: no {basis} documents with {axes} labels"
        )
    worse = [c for c in comparisons if c.verdict == "worse"]
    better = [c for c in comparisons if c.verdict == "better"]
    if worse:
        return made(False, f"{challenger} is worse than {champion} on {basis} {_clauses(worse)}")
    if better:
        return made(True, f"{challenger} beats {champion} on {basis} {_clauses(better)}")
    within = sorted(comparisons, key=lambda c: c.p)
    return made(
        False,
        f"{challenger} does not beat {champion} beyond the noise on {basis}: "
        f"{_clauses(within, by=False)} ({level} intervals include 0)",
    )


def _clauses(comparisons: Sequence[Comparison], by: bool = True) -> str:
    shown = [c.clause(by) for c in comparisons[:_MAX_CLAUSES]]
    more = len(comparisons) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more else "")


def no_champion() -> Decision:
    """The decision when the registry has no champion yet: promote."""
    return Decision(True, "no champion yet")


def not_comparable(champion: str, why: str, basis: str = "validation") -> Decision:
    """The decision when the champion cannot be scored on this run's documents: promote, saying why."""
    return Decision(
        True, f"champion {champion} cannot be scored on this {basis} split: {why}", champion=champion
    )
