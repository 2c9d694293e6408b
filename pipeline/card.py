"""The model card of a trained version: what it was trained on, how well it does with confidence intervals,
what it cannot do, and why the registry gave it its alias. Markdown, from plain facts.

``card_facts`` gathers the facts at the end of training (corpora, their sizes and date ranges, per-axis and
per-corpus figures with bootstrap intervals, dropped and uncovered labels); ``render_card`` writes them as
markdown once the registry decision is known. Nothing here talks to MLflow: ``tracking`` logs the card as
the run's ``model_card.md`` and makes it the registered version's description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.metrics import ALL_CORPORA

SPLITS = ("train", "validation", "test")
DESCRIPTION_LIMIT = 5000  # characters MLflow's SQL store keeps of a model version description


# --------------------------------------------------------------------------- facts


def _date_range(dates: Sequence[Any]) -> list[str] | None:
    """[first, last] day of the non-empty ``dates`` (ISO strings), or None when there are none."""
    days = sorted(str(d)[:10] for d in dates if d)
    return [days[0], days[-1]] if days else None


def data_facts(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per corpus of a prepared DatasetDict (``corpus`` and ``date`` columns): documents and date range per
    split, in corpus order of first appearance."""
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        if split not in data:
            continue
        columns = data[split].column_names
        n = len(data[split])
        corpora = list(data[split]["corpus"]) if "corpus" in columns else [""] * n
        dates = list(data[split]["date"]) if "date" in columns else [None] * n
        by_corpus: dict[str, list[Any]] = {}
        for corpus, date in zip(corpora, dates, strict=True):
            by_corpus.setdefault(corpus or "", []).append(date)
        for corpus, ds in by_corpus.items():
            entry = out.setdefault(corpus, {"name": corpus, "documents": {}, "dates": {}})
            entry["documents"][split] = len(ds)
            entry["dates"][split] = _date_range(ds)
    return list(out.values())


def figure_facts(
    reports: Mapping[str, Mapping[str, Any]], intervals: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{split: {axis: {corpus: figures}}}``: micro-F1 with its interval (``metrics.interval_report``),
    macro-F1, top-1 accuracy where the report has it, documents; corpus ``all`` is the whole split."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for split, report in reports.items():
        sections = [(ALL_CORPORA, report), *sorted(report.get("corpora", {}).items())]
        for corpus, sub in sections:
            for axis, m in sub.get("axes", {}).items():
                ci = intervals.get(split, {}).get(axis, {}).get(corpus, {})
                row = {
                    "micro_f1": m["micro_f1"],
                    "low": ci.get("low"),
                    "high": ci.get("high"),
                    "macro_f1": m["macro_f1"],
                    "n_docs": m.get("n_docs", sub.get("n_docs")),
                }
                if "top1_accuracy" in m:
                    row["top1_accuracy"] = m["top1_accuracy"]
                out.setdefault(split, {}).setdefault(axis, {})[corpus] = row
    return out


def uncovered_labels(
    labels: Mapping[str, Sequence[str]], coverage: Mapping[str, Mapping[str, Sequence[str]]] | None
) -> dict[str, dict[str, list[str]]]:
    """``{corpus: {axis: [labels]}}``: the model's labels a corpus that feeds the axis cannot express (its
    documents never train or score them); empty with one corpus or no coverage."""
    if not coverage or len(coverage) < 2:
        return {}
    out: dict[str, dict[str, list[str]]] = {}
    for corpus, axes in sorted(coverage.items()):
        for axis, covered in axes.items():
            missing = [x for x in labels.get(axis, []) if x not in set(covered)]
            if missing:
                out.setdefault(corpus, {})[axis] = missing
    return out


def card_facts(
    cfg: Any,
    data: Mapping[str, Any],
    tagger: Any,
    reports: Mapping[str, Mapping[str, Any]],
    intervals: Mapping[str, Mapping[str, Mapping[str, Any]]],
    coverage: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    config_file: str = "",
) -> dict[str, Any]:
    """Everything the card says except the version and the decision (``render_card`` takes those)."""
    notes = []
    if cfg.thresholds.strategy == "cv" and cfg.thresholds.cv_include_validation:
        notes.append(
            "Validation documents were used for training (thresholds.cv_include_validation): "
            "validation figures are in-sample; test figures are the honest ones."
        )
    if cfg.model.refit_axes:
        notes.append(
            f"The heads of {', '.join(cfg.model.refit_axes)} were refit on train + validation after their "
            "sigmoids and thresholds were fitted on validation (model.refit_axes): their validation figures "
            "are in-sample (the promotion compared their labels from before the refit); test figures are the "
            "honest ones."
        )
    return {
        "config": cfg.name,
        "description": cfg.description,
        "config_file": config_file,
        "fingerprint": cfg.fingerprint(),
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "axes": {axis: list(tagger.labels_.get(axis, [])) for axis in cfg.axes},
        "min_support": {axis: a.min_support for axis, a in cfg.axes.items()},
        "corpora": data_facts(data),
        "figures": figure_facts(reports, intervals),
        "dropped_labels": {a: dict(v) for a, v in getattr(tagger, "dropped_labels_", {}).items() if v},
        "uncovered": uncovered_labels(tagger.labels_, coverage),
        "notes": notes,
    }


# --------------------------------------------------------------------------- markdown


def _interval(row: Mapping[str, Any]) -> str:
    if row.get("low") is None:
        return f"{row['micro_f1']:.3f}"
    return f"{row['micro_f1']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def _figures_table(figures: Mapping[str, Any], axes: Sequence[str]) -> list[str]:
    """One row per axis and corpus: validation and test micro-F1 with intervals, macro-F1, top-1."""
    lines = [
        "| axis | corpus | validation micro-F1 [95% CI] | test micro-F1 [95% CI] | test macro-F1 | test top-1 acc | test docs |",
        "|---|---|---|---|---|---|---:|",
    ]
    validation, test = figures.get("validation", {}), figures.get("test", {})
    for axis in axes:
        corpora = list(dict.fromkeys([*test.get(axis, {}), *validation.get(axis, {})]))
        for corpus in corpora:
            v, t = validation.get(axis, {}).get(corpus), test.get(axis, {}).get(corpus)
            top1 = f"{t['top1_accuracy']:.3f}" if t and "top1_accuracy" in t else "-"
            lines.append(
                f"| {axis} | {corpus} | {_interval(v) if v else '-'} | {_interval(t) if t else '-'} | "
                f"{t['macro_f1']:.3f} | {top1} | {t['n_docs']:,} |"
                if t
                else f"| {axis} | {corpus} | {_interval(v) if v else '-'} | - | - | - | - |"
            )
    return lines


def _data_lines(corpora: Sequence[Mapping[str, Any]]) -> list[str]:
    """A table of documents per corpus and split, with the date range of train and test when known."""
    dated = any(d for c in corpora for d in c["dates"].values())
    header = "| corpus | train | validation | test |" + (" dates (train) | dates (test) |" if dated else "")
    lines = [header, "|---|---:|---:|---:|" + ("---|---|" if dated else "")]
    for c in corpora:
        docs, dates = c["documents"], c["dates"]
        counts = " | ".join(f"{docs.get(s, 0):,}" for s in SPLITS)
        spans = ""
        if dated:
            spans = "".join(
                f" {dates[s][0]} to {dates[s][1]} |" if dates.get(s) else " - |" for s in ("train", "test")
            )
        lines.append(f"| {c['name'] or '-'} | {counts} |{spans}")
    return lines


def _limits(facts: Mapping[str, Any]) -> list[str]:
    lines = []
    for axis, dropped in facts.get("dropped_labels", {}).items():
        floor = facts.get("min_support", {}).get(axis)
        shown = ", ".join(f"{label} ({n})" for label, n in list(dropped.items())[:20])
        more = f" and {len(dropped) - 20} more" if len(dropped) > 20 else ""
        lines.append(
            f"- **{axis}**: {len(dropped)} label(s) dropped for having fewer than {floor} training documents, "
            f"never predicted: {shown}{more}."
        )
    for corpus, axes in facts.get("uncovered", {}).items():
        for axis, labels in axes.items():
            lines.append(
                f"- **{corpus}** cannot say {axis} {', '.join(labels)}: its documents neither train nor score "
                "these labels, so its figures say nothing about them."
            )
    lines += [f"- {note}" for note in facts.get("notes", [])]
    return lines or [
        "- None recorded: every label met its minimum support and every corpus covers every label."
    ]


def render_card(
    facts: Mapping[str, Any], decision: str, model: str | None = None, version: str | None = None
) -> str:
    """The card as markdown: heading, decision, data, figures with intervals, known limits."""
    title = f"{model} v{version}" if model and version else facts["config"]
    corpora = facts.get("corpora", [])
    total = {s: sum(c["documents"].get(s, 0) for c in corpora) for s in SPLITS}
    axes = list(facts.get("axes", {}))
    lines = [
        f"# Model card: {title}",
        "",
        f"**Decision**: {decision}",
        "",
        f"Trained {facts['trained_at']} with config `{facts['config']}`"
        + (f" (`{facts['config_file']}`)" if facts.get("config_file") else "")
        + f", config hash {facts['fingerprint'][:12]}. {facts.get('description', '')}".rstrip(),
        "",
        "## Trained on",
        "",
        f"{total['train']:,} training, {total['validation']:,} validation and {total['test']:,} test documents"
        + (f" from {len(corpora)} corpora." if len(corpora) > 1 else "."),
        "",
        *_data_lines(corpora),
        "",
        "Labels: "
        + "; ".join(f"{axis} {len(labels)}" for axis, labels in facts.get("axes", {}).items())
        + ".",
        "",
        "## How well it tags",
        "",
        "Micro-F1 with a 95% bootstrap interval over documents (1,000 resamples); corpus `all` is the whole split. "
        "Validation tuned the thresholds; test figures are reported, never tuned on.",
        "",
        *_figures_table(facts.get("figures", {}), axes),
        "",
        "## Known limits",
        "",
        *_limits(facts),
        "",
    ]
    return "\n".join(lines)


def description_of(card: str, run_hint: str = "", limit: int = DESCRIPTION_LIMIT) -> str:
    """The card cut to ``limit`` characters at a line break, saying where the whole card is."""
    if len(card) <= limit:
        return card
    tail = f"\n\n… cut here; the whole card is `model_card.md` of {run_hint or 'the run'}."
    head = card[: limit - len(tail)]
    return head[: head.rfind("\n")] + tail
