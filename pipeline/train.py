"""The training stage: prepare -> fit -> thresholds -> evaluate -> log -> register/promote -> export.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Config, ConfigError
from pipeline.evaluate import evaluate_split
from pipeline.metrics import metric_items
from pipeline.prepare import load_prepared, prepare, split_frame
from pipeline.reports import report_markdown, top_terms_markdown, write_figures

STAGES = ("prepare", "fit", "thresholds", "evaluate", "log", "register", "export")
KILL_ENV = "NEWSTAG_TEST_KILL_AT"
CRASH_POINTS = (*STAGES, "log.model", "register.alias", "export.link")


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
    """Stop before fitting when a split is empty or an axis has no label with ``min_support`` documents."""
    from pipeline.corpora import CorpusError

    if not all(sizes.values()):
        raise CorpusError(
            "too few documents to train: "
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
            + " (each split needs some)"
        )
    for axis, acfg in cfg.axes.items():
        counts = Counter(label for row in gold[axis] for label in row)
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


def run_name(cfg: Config) -> str:
    """A readable run name: config, key settings, short config hash."""
    w = cfg.features.word
    parts = [cfg.name, cfg.model.classifier, f"C{cfg.model.C:g}", f"ng{w.ngram_range[0]}{w.ngram_range[1]}"]
    if w.max_features:
        parts.append(f"mf{w.max_features // 1000}k" if w.max_features >= 1000 else f"mf{w.max_features}")
    if cfg.features.gazetteer.enabled:
        parts.append("gaz")
    return "-".join(parts) + f"-{cfg.fingerprint()[:6]}"


def run_note(
    cfg: Config, reports: Mapping[str, dict], sizes: Mapping[str, int], seconds: float, decision: str
) -> str:
    """The run's markdown description: scores per axis and split, data sizes, time, registry decision."""
    lines = [
        f"**{cfg.name}**: {cfg.description}".rstrip(),
        "",
        "| axis | validation micro-F1 | validation macro-F1 | test micro-F1 | test macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for axis in cfg.axes:
        v, t = reports["validation"]["axes"][axis], reports["test"]["axes"][axis]
        lines.append(
            f"| {axis} | {v['micro_f1']:.4f} | {v['macro_f1']:.4f} | {t['micro_f1']:.4f} | {t['macro_f1']:.4f} |"
        )
    lines += [
        "",
        f"Documents: train {sizes['train']:,}, validation {sizes['validation']:,}, test {sizes['test']:,}. "
        f"Training time {seconds:.1f} s.",
        "",
        f"Registry: {decision}",
    ]
    if cfg.thresholds.strategy == "cv" and cfg.thresholds.cv_include_validation:
        lines += ["", "Note: validation documents were used for training (thresholds.cv_include_validation)."]
    return "\n".join(lines)


def train(
    cfg: Config,
    config_path: str = "",
    overrides: list[str] | None = None,
    tracking_uri: str | None = None,
    register: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole training stage for ``cfg``; returns run id, metrics, registry decision and export path."""
    stages = Stages(say)
    crash_point("prepare")
    # prepare checks the taxonomies first: a bad config fails before the slow imports below
    prepared = prepare(cfg, say=say)
    from pipeline.model import tagger_from_config

    data = load_prepared(prepared.path)
    frames = {split: split_frame(data[split]) for split in ("train", "validation", "test")}
    sizes = {split: len(frames[split][0]) for split in frames}
    stages.done(
        "prepare",
        f"{prepared.path} ({'reused' if prepared.reused else 'built'}): "
        + ", ".join(f"{k} {v:,}" for k, v in sizes.items()),
    )

    check_trainable(cfg, sizes, frames["train"][1])
    crash_point("fit")
    tagger = tagger_from_config(cfg)
    (xt, yt), (xv, yv) = frames["train"], frames["validation"]
    tagger.fit(xt, yt, xv, yv)
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

    crash_point("evaluate")
    reports, scores = {}, {}
    for split in ("validation", "test"):
        reports[split], scores[split] = evaluate_split(tagger, *frames[split])
    metrics: dict[str, float] = {}
    for split, rep in reports.items():
        metrics.update(metric_items(rep, split))
    fit_seconds = stages.times["fit"] + stages.times["thresholds"]
    headline = ", ".join(f"{a} micro-F1 {reports['test']['axes'][a]['micro_f1']:.4f}" for a in cfg.axes)
    stages.done("evaluate", f"test: {headline}")

    result = _log_and_register(
        cfg,
        config_path,
        overrides or [],
        tracking_uri,
        register,
        prepared,
        data,
        frames,
        tagger,
        reports,
        scores,
        metrics,
        sizes,
        fit_seconds,
        stages,
        say,
    )
    result.update(
        {"metrics": metrics, "reports": reports, "stage_seconds": stages.times, "train_seconds": fit_seconds}
    )
    return result


def _log_and_register(
    cfg,
    config_path,
    overrides,
    uri,
    register,
    prepared,
    data,
    frames,
    tagger,
    reports,
    scores,
    metrics,
    sizes,
    fit_seconds,
    stages,
    say,
):
    import mlflow

    from pipeline import tracking

    crash_point("log")
    store = tracking.setup_tracking(uri)
    exp_id = tracking.ensure_experiment(cfg.tracking.experiment, _experiment_note(cfg))
    result: dict[str, Any] = {"tracking_uri": store, "experiment_id": exp_id}
    with (
        mlflow.start_run(run_name=run_name(cfg), tags=tracking.source_tags("newstag train")) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out = Path(tmp)
        result["run_id"] = run.info.run_id
        digests = tracking.log_datasets(data, str(prepared.path), cfg.name)
        mlflow.set_tags(tracking.run_tags(config_path, prepared.fingerprint, digests["test"]))
        if overrides:
            mlflow.set_tag("newstag.overrides", tracking.portable(" ".join(overrides)))
        tracking.log_params(cfg.flat())
        mlflow.log_metrics(metrics)
        mlflow.log_metrics(
            {
                "time/train_seconds": round(fit_seconds, 3),
                "data/train_docs": sizes["train"],
                "data/validation_docs": sizes["validation"],
                "data/test_docs": sizes["test"],
                "model/n_features": tagger.coef_.shape[0],
            }
        )
        config_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        (out / "config.yaml").write_text(tracking.portable(config_text))
        for split, rep in reports.items():
            (out / f"{split}_report.json").write_text(json.dumps(rep, indent=2))
            (out / f"{split}_report.md").write_text(report_markdown(rep, f"{cfg.name}: {split}"))
        data_report = json.dumps(prepared.report, indent=2, ensure_ascii=False)
        (out / "data_report.json").write_text(tracking.portable(data_report))
        top = tagger.top_terms(15)
        (out / "top_terms.json").write_text(json.dumps(top, indent=2))
        (out / "top_terms.md").write_text(top_terms_markdown(top))
        (out / "thresholds.json").write_text(json.dumps(tagger.describe(), indent=2))
        figures = write_figures(out / "figures", tagger, reports["test"], frames["test"][1], scores["test"])
        for path in sorted(out.iterdir()):
            if path.is_file():
                mlflow.log_artifact(
                    str(path),
                    artifact_path="reports"
                    if path.suffix in (".json", ".md") and path.name != "config.yaml"
                    else None,
                )
        for fig in figures:
            mlflow.log_artifact(str(fig), artifact_path="figures")
        example = frames["test"][0][["text", "title"]].head(2).reset_index(drop=True)
        crash_point("log.model")
        logged = tracking.log_tagger(tagger, example, tagger.describe()) if cfg.tracking.log_model else None
        stages.done("log", f"run {run.info.run_id} in {store}")
        decision = "not registered (--no-register)"
        if logged and register:
            crash_point("register")
            tracking.ensure_registered_model(cfg.tracking.registered_model, _model_note(cfg))
            promo = tracking.register_and_promote(
                cfg.tracking.registered_model,
                logged.model_uri,
                run.info.run_id,
                metrics,
                cfg.tracking.promotion_metrics,
                digests["test"],
                lambda uri: _rescore(uri, store, frames["test"]),
                checkpoint=crash_point,
            )
            decision = f"version {promo.version} -> {promo.alias}: {promo.reason}"
            result["registry"] = promo.__dict__
            stages.done("register", decision)
            say(f"registry decision: {decision}")
            crash_point("export")
            export = tracking.export_model(
                logged.model_uri,
                promo.name,
                promo.version,
                promo.promoted,
                cfg.tracking.export_dir,
                checkpoint=crash_point,
            )
            result["export_path"] = str(export)
            stages.done("export", str(export))
        mlflow.set_tag("mlflow.note.content", run_note(cfg, reports, sizes, fit_seconds, decision))
        result["decision"] = decision
        if logged:
            result["model_uri"] = logged.model_uri
            result["model_sha256"] = logged.sha256
    return result


def _rescore(model_uri: str, store: str, test: tuple[Any, dict[str, list[list[str]]]]) -> dict[str, float]:
    """The champion's test metrics recomputed on this run's test split."""
    from pipeline.loading import load_tagger

    champion, _ = load_tagger(model_uri, store)
    frame, gold = test
    if set(champion.axes) - set(gold):
        return {}
    report, _ = evaluate_split(champion, frame, {a: gold[a] for a in champion.axes})
    return metric_items(report, "test")


def _experiment_note(cfg: Config) -> str:
    return (
        f"newstag experiments for `{cfg.name}`: {cfg.description}\n\n"
        f"Axes: {', '.join(cfg.axes)}. Each run logs the resolved config, validation and test metrics "
        "(`<split>/<axis>/<metric>`), reports, figures, dataset digests and the model; the registry keeps "
        f"`{cfg.tracking.registered_model}@champion` on the best test {' + '.join(cfg.tracking.promotion_metrics)}."
    )


def _model_note(cfg: Config) -> str:
    return (
        f"newstag tagger ({', '.join(cfg.axes)}) trained with `{cfg.name}`. Input: a DataFrame with `text` and "
        "optional `title`; output: one label list per axis and `scores` (JSON). Alias `champion` is the version "
        f"with the best test {' + '.join(cfg.tracking.promotion_metrics)}; `challenger` is a newer version that "
        "did not beat it."
    )


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """Human lines for the CLI."""
    lines = [f"run {result.get('run_id', '-')} ({result.get('tracking_uri', '')})"]
    for split in ("validation", "test"):
        for axis, m in result["reports"][split]["axes"].items():
            lines.append(
                f"  {split:<10} {axis:<8} micro-F1 {m['micro_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                f"P {m['micro_precision']:.4f}  R {m['micro_recall']:.4f}"
            )
    lines.append(f"  train time {result['train_seconds']:.1f} s")
    lines.append(f"  registry: {result.get('decision', '-')}")
    if result.get("export_path"):
        lines.append(f"  exported to {result['export_path']}")
    return lines
