"""The evaluation stage: load a model, read a labelled file or a split of a prepared config, and score it.

The scoring itself is ``pipeline.metrics``; this module only finds the documents, their gold labels and the
model's predictions. ``newstag evaluate`` calls ``evaluate_command``; training and tuning call
``evaluate_split`` on splits they already hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline import store_sql
from pipeline.config import CorpusConfig, load_config
from pipeline.corpora import CorpusError, iter_rows, row_to_record
from pipeline.loading import load_tagger
from pipeline.metrics import Coverage, covered_report, evaluation_report, scored_labels
from pipeline.prepare import load_prepared, prepare, split_frame
from pipeline.store_sql import beside_store


def evaluate_split(
    tagger: Any, frame: Any, gold: Mapping[str, list[list[str] | None]], coverage: Coverage | None = None
) -> tuple[dict, dict]:
    """(report, probabilities per axis) of the tagger on one split.

    With a ``corpus`` column naming several corpora (or gold ``None`` for unknown), each document is scored
    on the labels its corpus covers and the report gains one section per corpus (``covered_report``). A
    model with a home country (``features.gazetteer.home``) is scored with it, as predict scores it. A
    single-label axis of the model (``multi_label: false``) reports accuracy too.
    """
    if hasattr(tagger, "tag"):
        _, scores, pred = tagger.tag(frame)
    else:  # a stand-in with the plain scoring methods only
        scores = tagger.predict_scores(frame)
        pred = tagger.labels_from_scores(scores)
    corpora = list(frame["corpus"]) if "corpus" in frame else []
    single = tagger.single_label_axes() if hasattr(tagger, "single_label_axes") else []
    labels = scored_labels(tagger.labels_, gold)
    if len(set(corpora)) > 1 or any(row is None for rows in gold.values() for row in rows):
        return covered_report(gold, pred, scores, labels, corpora, coverage, single), scores
    return evaluation_report(gold, pred, labels, single), scores


def _gold_from_file(
    path: str, axes: Sequence[str], id_field: str, title_field: str, text_field: str
) -> tuple[Any, dict[str, list[list[str]]], list[Any]]:
    """(documents, gold labels per axis present in the file, read issues) of a labelled file."""
    import pandas as pd

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


def _gold_from_split(
    config_path: str | None,
    overrides: list[str] | None,
    split: str | None,
    axes: Sequence[str],
    say: Callable[[str], None],
    tracking_uri: str | None = None,
) -> tuple[Any, dict[str, list[list[str] | None]], Coverage | None]:
    """(documents, gold labels per model axis, labels each corpus covers) of one split of a prepared config;
    a relative ``processed_dir`` lies beside a SQLite store outside the current folder, where training put it."""
    cfg = load_config(config_path, overrides)
    beside = beside_store(cfg.processed_dir, store_sql.tracking_uri(tracking_uri))
    prepared = prepare(cfg.model_copy(update={"processed_dir": str(beside)}), say=say)
    frame, gold_all = split_frame(load_prepared(prepared.path)[split])
    gold = {a: gold_all[a] for a in axes if a in gold_all}
    if not gold:
        raise ValueError(f"{config_path}: none of the model's axes ({', '.join(axes)}) is in this corpus")
    return frame, gold, prepared.report.get("coverage")


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
    tagger, _ = load_tagger(model_uri, tracking_uri)
    issues: list[Any] = []
    coverage = None
    if input_path:
        frame, gold, issues = _gold_from_file(input_path, tagger.axes, id_field, title_field, text_field)
        source = {"input": str(input_path)}
    else:
        frame, gold, coverage = _gold_from_split(
            config_path, overrides, split, tagger.axes, say, tracking_uri
        )
        source = {"config": str(config_path), "split": split}
    report, _ = evaluate_split(tagger, frame, gold, coverage)
    report.update({"model": model_uri, **source})
    if issues:
        report["rejected"] = [i.to_dict() for i in issues]
    return report
