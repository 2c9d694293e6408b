"""The training stage: prepare -> fit -> thresholds -> evaluate -> log -> register/promote -> export.

This module prepares the data, fits and evaluates the tagger, and writes the run's artifacts into a folder;
it hands all of that as a ``tracking.TrainOutcome`` to ``tracking.log_training_run``, which logs, registers,
promotes and exports (MLflow is only ever called there).

Test hook: with ``NEWSTAG_TEST_KILL_AT=<point>`` in its environment, ``newstag train`` sends SIGKILL to
itself at that point (see ``crash_point``); the crash tests in ``tests/reliability/`` use it to stop a
run deterministically at the start of each stage. It is read nowhere else and does nothing when unset.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline import card, tracking
from pipeline.config import Config, ConfigError, check_tracking_uri
from pipeline.corpora import CorpusError
from pipeline.errors import ModelError
from pipeline.evaluate import evaluate_split
from pipeline.loading import load_tagger
from pipeline.metrics import Coverage, interval_report, metric_items
from pipeline.model import tagger_from_config
from pipeline.prepare import Prepared, load_prepared, prepare, split_frame
from pipeline.promotion import Sample, paired_samples
from pipeline.reports import report_markdown, top_terms_markdown, write_figures
from pipeline.tracking import TrainOutcome

STAGES = ("prepare", "fit", "thresholds", "evaluate", "log", "register", "export")
KILL_ENV = "NEWSTAG_TEST_KILL_AT"
CRASH_POINTS = (*STAGES, "log.model", "register.alias", "export.link")

Split = tuple[Any, dict[str, list[list[str]]]]  # (documents with id/title/text, gold labels per axis)


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process here when ``$NEWSTAG_TEST_KILL_AT`` is ``name``.

    Points (``CRASH_POINTS``): each stage name, fired when the stage starts, and three inside stages
    where the store changes: ``log.model`` (run open with params, metrics and reports, model not yet
    logged), ``register.alias`` (version registered, alias not yet moved), ``export.link`` (folder
    exported, ``champion`` link not yet moved). Thresholds are tuned inside ``NewsTagger.fit``, so the
    ``thresholds`` point fires when fit returns, before anything is evaluated or written. SIGKILL runs no
    cleanup (no ``finally``, no atexit), like a power cut or the OOM killer.
    """
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def check_trainable(cfg: Config, sizes: Mapping[str, int], gold: Mapping[str, list[list[str]]]) -> None:
    """Stop before fitting when a split is empty, a vocabulary's ``min_df`` asks for more documents than
    the vocabulary is fitted on, or an axis has no label with ``min_support`` documents."""
    if not all(sizes.values()):
        raise CorpusError(
            "too few documents to train: "
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
            + " (each split needs some)"
        )
    t = cfg.thresholds
    docs = sizes["train"] + (sizes["validation"] if t.strategy == "cv" and t.cv_include_validation else 0)
    word, char = cfg.features.word, cfg.features.char
    for key, block, max_df in (("word", word, word.max_df), ("char", char, 1.0)):
        usable = int(max_df * docs)  # scikit-learn keeps terms in at most max_df * documents
        if block.enabled and not (key == "word" and word.hashing) and block.min_df > usable:
            limit = f"max_df {max_df} of {docs:,} = {usable:,}" if max_df < 1.0 else f"{docs:,}"
            raise ConfigError(
                f"features.{key}.min_df: {block.min_df} is more than the documents the vocabulary is "
                f"fitted on ({limit}); lower it"
            )
    for axis, acfg in cfg.axes.items():
        counts = Counter(label for row in gold[axis] for label in row or ())
        if not counts or max(counts.values()) < acfg.min_support:
            best = f"the most frequent has {max(counts.values())}" if counts else "none has any"
            raise ConfigError(
                f"axes.{axis}.min_support: no {axis} label has {acfg.min_support} or more training documents ({best})"
            )


class Stages:
    """Prints one progress line per stage with its wall time."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def restart(self) -> None:
        """Start timing the next stage now."""
        self._t = time.perf_counter()

    def done(self, stage: str, detail: str = "") -> None:
        now = time.perf_counter()
        self.times[stage] = round(now - self._t, 3)
        self._t = now
        n = STAGES.index(stage) + 1 if stage in STAGES else 0
        self.say(f"[{n}/{len(STAGES)}] {stage:<10} {self.times[stage]:6.1f}s  {detail}".rstrip())


def train(
    cfg: Config,
    config_path: str = "",
    overrides: list[str] | None = None,
    tracking_uri: str | None = None,
    register: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole training stage for ``cfg``; returns run id, metrics, registry decision and export path."""
    check_tracking_uri(tracking.tracking_uri(tracking_uri))  # a bad store is found before any work
    stages = Stages(say)
    # a relative processed_dir lies beside a store outside the current folder, as the exports do
    beside = tracking.beside_store(cfg.processed_dir, tracking.tracking_uri(tracking_uri))
    prepared, data, frames = _prepare(cfg.model_copy(update={"processed_dir": str(beside)}), stages, say)
    coverage = prepared.report.get("coverage")
    tagger = _fit(cfg, frames, stages, coverage)
    reports, scores, metrics = _evaluate(cfg, tagger, frames, stages, coverage)
    fit_seconds = stages.times["fit"] + stages.times["thresholds"]
    validation_pred = tagger.labels_from_scores(scores["validation"])
    # refit heads saw validation: the promotion judges them by what they said before (not kept in the model)
    heldout = tagger.__dict__.pop("heldout_validation_labels_", None)
    if heldout is not None:
        heldout = {a: heldout[a] for a in cfg.model.refit_axes}
        validation_pred = {**validation_pred, **heldout}
    crash_point("log")
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_run_artifacts(
            Path(tmp), cfg, prepared.report, tagger, reports, frames["test"][1], scores["test"]
        )
        if heldout is not None:  # judged by these when this model is the champion a later run meets
            kept = {"ids": [str(i) for i in frames["validation"][0]["id"]], "labels": heldout}
            (folder / tracking.HELDOUT_ARTIFACT).write_text(json.dumps(kept, ensure_ascii=False))
        outcome = TrainOutcome(
            cfg=cfg,
            config_path=config_path,
            overrides=overrides or [],
            dataset_path=str(prepared.path),
            data=data,
            data_fingerprint=prepared.fingerprint,
            sizes={split: len(frame) for split, (frame, _) in frames.items()},
            tagger=tagger,
            reports=reports,
            metrics=metrics,
            fit_seconds=fit_seconds,
            artifact_dir=folder,
            example=frames["test"][0][["text", "title"]].head(2).reset_index(drop=True),
            champion_samples=lambda uri: champion_samples(
                uri, tracking_uri, *frames["validation"], validation_pred, cfg.promotion_metrics(), coverage
            ),
            comparison_basis=comparison_basis(cfg),
            card=card_facts(cfg, config_path, data, tagger, reports, scores, frames, coverage),
        )
        result = tracking.log_training_run(outcome, tracking_uri, register, say, crash_point, stages.done)
    result.update(
        {"metrics": metrics, "reports": reports, "stage_seconds": stages.times, "train_seconds": fit_seconds}
    )
    return result


def _prepare(
    cfg: Config, stages: Stages, say: Callable[[str], None]
) -> tuple[Prepared, Any, dict[str, Split]]:
    """(prepare's result, the stored DatasetDict, documents and gold labels per split)."""
    crash_point("prepare")
    prepared = prepare(cfg, say=say)
    data = load_prepared(prepared.path)
    frames = {split: split_frame(data[split]) for split in ("train", "validation", "test")}
    sizes = {split: len(frames[split][0]) for split in frames}
    stages.done(
        "prepare",
        f"{prepared.path} ({'reused' if prepared.reused else 'built'}): "
        + ", ".join(f"{k} {v:,}" for k, v in sizes.items()),
    )
    check_trainable(cfg, sizes, frames["train"][1])
    return prepared, data, frames


def _fit(cfg: Config, frames: Mapping[str, Split], stages: Stages, coverage: Coverage | None = None) -> Any:
    """The tagger fitted on train, its thresholds tuned (``cfg.thresholds``); reports the fit and thresholds
    stages with the times the tagger measured."""
    crash_point("fit")
    tagger = tagger_from_config(cfg)
    (xt, yt), (xv, yv) = frames["train"], frames["validation"]
    tagger.fit(xt, yt, xv, yv, coverage=coverage)
    crash_point("thresholds")
    labels = ", ".join(f"{a} {len(v)} labels" for a, v in tagger.labels_.items())
    stages.say(
        f"[2/{len(STAGES)}] fit        {tagger.timings_['featurize'] + tagger.timings_['heads']:6.1f}s  {tagger.coef_.shape[0]:,} features, {labels}"
    )
    tuned = sum(s == "tuned" for s in tagger.threshold_source_)
    stages.say(
        f"[3/{len(STAGES)}] thresholds {tagger.timings_['thresholds']:6.1f}s  {tuned}/{len(tagger.threshold_source_)} labels tuned ({cfg.thresholds.strategy})"
    )
    stages.times["fit"] = round(tagger.timings_["featurize"] + tagger.timings_["heads"], 3)
    stages.times["thresholds"] = round(tagger.timings_["thresholds"], 3)
    stages.restart()
    return tagger


def _evaluate(
    cfg: Config, tagger: Any, frames: Mapping[str, Split], stages: Stages, coverage: Coverage | None = None
) -> tuple[dict[str, dict], dict[str, Any], dict[str, float]]:
    """(report, scores per axis) of validation and test, and their metrics as ``<split>/<axis>/<metric>``."""
    crash_point("evaluate")
    reports, scores = {}, {}
    for split in ("validation", "test"):
        reports[split], scores[split] = evaluate_split(tagger, *frames[split], coverage)
    metrics: dict[str, float] = {}
    for split, rep in reports.items():
        metrics.update(metric_items(rep, split))
    headline = ", ".join(f"{a} micro-F1 {reports['test']['axes'][a]['micro_f1']:.4f}" for a in cfg.axes)
    stages.done("evaluate", f"test: {headline}")
    return reports, scores, metrics


def champion_samples(
    model_uri: str,
    tracking_uri: str | None,
    frame: Any,
    gold: Mapping[str, list[list[str] | None]],
    challenger_pred: Mapping[str, list[list[str]]],
    metrics: Sequence[str],
    coverage: Coverage | None = None,
) -> list[Sample]:
    """The documents of this run's validation split the new model and the model at ``model_uri`` (the
    champion, re-scored here) are compared on, per axis of ``metrics`` and corpus, with both models'
    predictions; ModelError when that model cannot be loaded, lacks one of those axes, or had heads of them
    refit on its validation split without keeping what they said there before. On the documents such heads
    were refit on, the champion is judged by those kept labels, as a new model is (never in-sample)."""
    champion, info = load_tagger(model_uri, tracking_uri)
    axes = list(dict.fromkeys(m.split("/", 1)[0] for m in metrics))
    missing = [a for a in axes if a not in champion.axes]
    if missing:
        raise ModelError(f"it has no {', '.join(missing)} axis (its axes: {', '.join(champion.axes)})")
    pred = champion.labels_from_scores(champion.predict_scores(frame))
    refit, heldout = tracking.refit_heldout(info.run_id)
    refit = [a for a in refit if a in axes]
    unkept = [a for a in refit if a not in heldout]
    if unkept:
        raise ModelError(
            f"its {', '.join(unkept)} heads were refit on its validation split and its run kept no labels "
            "from before the refit: here it would be judged on documents it was fitted on"
        )
    if refit:  # only then are documents matched by id (a frame need not have ids)
        ids = [str(i) for i in frame["id"]]
        for a in refit:
            pred[a] = [heldout[a].get(d, own) for d, own in zip(ids, pred[a], strict=True)]
    corpora = [str(c) for c in frame["corpus"]] if "corpus" in frame else []
    return paired_samples(
        {a: gold[a] for a in axes}, {a: challenger_pred[a] for a in axes}, pred, corpora, coverage
    )


def comparison_basis(cfg: Config) -> str:
    """What the validation comparison stands on: ``validation``, or ``in-sample validation`` when the
    config folds validation into training (thresholds.cv_include_validation; the tagger keeps no
    out-of-fold predictions, so both models are compared on documents they were fitted on), or
    ``validation (<axes> before the refit)`` when the heads of ``model.refit_axes`` were refit on it: the
    new model's labels there are those its heads gave before the refit, which had not seen validation."""
    if cfg.thresholds.strategy == "cv" and cfg.thresholds.cv_include_validation:
        return "in-sample validation"
    if cfg.model.refit_axes:
        return f"validation ({', '.join(cfg.model.refit_axes)} before the refit)"
    return "validation"


# --------------------------------------------------------------------------- the run's artifacts


def write_run_artifacts(
    folder: Path,
    cfg: Config,
    data_report: Mapping[str, Any],
    tagger: Any,
    reports: Mapping[str, dict],
    test_gold: Mapping[str, list[list[str]]],
    test_scores: Mapping[str, Any],
) -> Path:
    """Write the run's artifacts into ``folder`` laid out as they are logged: ``config.yaml``, ``reports/``
    (evaluation reports, data report, top terms, thresholds) and ``figures/`` (of the test split)."""
    config_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    (folder / "config.yaml").write_text(tracking.portable(config_text))
    write_reports(folder / "reports", cfg.name, reports, data_report, tagger)
    write_figures(
        folder / "figures", tagger, reports["test"], test_gold, test_scores, reports.get("validation")
    )
    return folder


def write_reports(
    folder: Path, name: str, reports: Mapping[str, dict], data_report: Mapping[str, Any], tagger: Any
) -> None:
    """JSON and markdown reports per split, the data report, the top terms and the thresholds."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rep in reports.items():
        (folder / f"{split}_report.json").write_text(json.dumps(rep, indent=2))
        (folder / f"{split}_report.md").write_text(report_markdown(rep, f"{name}: {split}"))
    data_text = json.dumps(data_report, indent=2, ensure_ascii=False)
    (folder / "data_report.json").write_text(tracking.portable(data_text))
    top = tagger.top_terms(15)
    (folder / "top_terms.json").write_text(json.dumps(top, indent=2))
    (folder / "top_terms.md").write_text(top_terms_markdown(top))
    (folder / "thresholds.json").write_text(json.dumps(tagger.describe(), indent=2))


def card_facts(
    cfg: Config,
    config_path: str,
    data: Any,
    tagger: Any,
    reports: Mapping[str, dict],
    scores: Mapping[str, Any],
    frames: Mapping[str, Split],
    coverage: Coverage | None = None,
) -> dict[str, Any]:
    """The model card's facts (``card.card_facts``), with bootstrap intervals of micro-F1 on validation and
    test over the documents each report scores."""
    intervals = {}
    for split in ("validation", "test"):
        frame, gold = frames[split]
        pred = tagger.labels_from_scores(scores[split])
        corpora = [str(c) for c in frame["corpus"]] if "corpus" in frame else []
        intervals[split] = interval_report(gold, pred, corpora, coverage)
    return card.card_facts(
        cfg, data, tagger, reports, intervals, coverage, tracking.portable(str(config_path))
    )


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """Human lines for the CLI."""
    lines = [f"run {result.get('run_id', '-')} ({result.get('tracking_uri', '')})"]
    for split in ("validation", "test"):
        for axis, m in result["reports"][split]["axes"].items():
            acc = f"accuracy {m['accuracy']:.4f}  " if "accuracy" in m else ""  # a single-label axis
            lines.append(
                f"  {split:<10} {axis:<8} {acc}micro-F1 {m['micro_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                f"P {m['micro_precision']:.4f}  R {m['micro_recall']:.4f}"
            )
    lines.append(f"  train time {result['train_seconds']:.1f} s")
    lines.append(f"  registry: {result.get('decision', '-')}")
    if result.get("export_path"):
        lines.append(f"  exported to {result['export_path']}")
    return lines
