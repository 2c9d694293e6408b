"""Hyper-parameter search over ``tune.space``: each trial a nested MLflow run under one parent run.

The search is logged through ``tracking.log_search`` (a ``tracking.SearchOutcome``); nothing here calls MLflow.

Trials fit in parallel worker processes (joblib); the parent process alone writes to the tracking store,
so SQLite sees one writer. Each trial tunes its thresholds on the validation split and is scored on it;
the test split is not looked at.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline import tracking
from pipeline.config import Config, ConfigError, apply_overrides, check_tracking_uri, load_config
from pipeline.evaluate import evaluate_split
from pipeline.metrics import Coverage, metric_items
from pipeline.model import tagger_from_config
from pipeline.prepare import load_prepared, prepare, split_frame
from pipeline.tracking import SearchOutcome


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)


def trial_overrides(cfg: Config, n_trials: int | None = None) -> list[list[str]]:
    """The ``--set`` lists of every trial: the whole grid, or a seeded random sample of it."""
    space = cfg.tune.space
    if not space:
        raise ConfigError(
            f"{cfg.name}: tune.space is empty; declare e.g. tune.space: {{model.C: [0.5, 1.0]}}"
        )
    keys = sorted(space)
    grid = [
        [f"{k}={_fmt(v)}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(space[k] for k in keys))
    ]
    if cfg.tune.strategy == "random":
        n = min(n_trials or cfg.tune.n_trials, len(grid))
        grid = random.Random(cfg.tune.seed).sample(grid, n)
    return grid


def _run_trial(
    cfg_dict: dict[str, Any],
    sets: list[str],
    frames: dict[str, Any],
    metric: str,
    coverage: Coverage | None = None,
) -> dict[str, Any]:
    """Fit one trial and score it on validation (runs in a worker process)."""
    cfg = Config.model_validate(apply_overrides(cfg_dict, sets))
    start = time.perf_counter()
    tagger = tagger_from_config(cfg)
    (xt, yt), (xv, yv) = frames["train"], frames["validation"]
    tagger.fit(xt, yt, xv, yv, coverage=coverage)
    report, _ = evaluate_split(tagger, xv, yv, coverage)
    metrics = metric_items(report, "validation")
    metrics["time/train_seconds"] = time.perf_counter() - start
    return {
        "sets": sets,
        "metrics": metrics,
        "score": metrics.get(metric),
        "config": cfg.model_dump(mode="json"),
    }


def tune(
    cfg: Config,
    config_path: str = "",
    overrides: list[str] | None = None,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    n_jobs: int | None = None,
    output: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the search; log a parent run with one nested run per trial; write the best trial's config."""
    from joblib import Parallel, delayed

    check_tracking_uri(tracking.tracking_uri(tracking_uri))  # a bad store is found before any trial
    trials = trial_overrides(cfg, n_trials)
    metric = cfg.tune.metric
    # a relative processed_dir lies beside a store outside the current folder, as train's does
    beside = tracking.beside_store(cfg.processed_dir, tracking.tracking_uri(tracking_uri))
    prepared = prepare(cfg.model_copy(update={"processed_dir": str(beside)}), say=say)
    data = load_prepared(prepared.path)
    frames = {s: split_frame(data[s]) for s in ("train", "validation")}
    say(f"tune {cfg.name}: {len(trials)} trials ({cfg.tune.strategy}), metric {metric}")
    start = time.perf_counter()
    base = cfg.model_dump(mode="json")
    jobs = n_jobs or cfg.tune.n_jobs
    coverage = prepared.report.get("coverage")
    results = Parallel(n_jobs=jobs)(
        delayed(_run_trial)(base, sets, frames, metric, coverage) for sets in trials
    )
    missing = [r for r in results if r["score"] is None]
    if missing:
        raise ConfigError(f"tune.metric {metric!r} is not a validation metric of this config")
    best = max(results, key=lambda r: r["score"])
    out_path = Path(output or f"configs/{cfg.name}-best.yaml")
    best_cfg = dict(best["config"], name=cfg.name)
    search = SearchOutcome(cfg, config_path, results, best, best_cfg, _note(cfg, results, best, metric))
    logged = tracking.log_search(search, tracking_uri)
    write_best_config(
        out_path, best_cfg, f"best of {len(trials)} trials by {metric} (parent run {logged['parent_run_id']})"
    )
    return {
        **logged,
        "metric": metric,
        "trials": [{"sets": r["sets"], "score": r["score"]} for r in results],
        "best": {"sets": best["sets"], "score": best["score"]},
        "best_config": str(out_path),
        "seconds": round(time.perf_counter() - start, 1),
    }


def write_best_config(path: Path, config: Mapping[str, Any], comment: str) -> None:
    """Write ``config`` as YAML under a ``# comment`` line, and check that it loads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {comment}\n" + yaml.safe_dump(dict(config), sort_keys=False))
    load_config(path)  # what we wrote must load


def _note(cfg: Config, results: list[dict[str, Any]], best: Mapping[str, Any], metric: str) -> str:
    lines = [
        f"Search over `tune.space` of **{cfg.name}** by `{metric}`.",
        "",
        "| trial | settings | score |",
        "|---|---|---|",
    ]
    for i, r in enumerate(sorted(results, key=lambda r: -r["score"])):
        lines.append(f"| {i} | {' '.join(r['sets'])} | {r['score']:.4f} |")
    lines += ["", f"Best: `{' '.join(best['sets'])}`."]
    return "\n".join(lines)


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """Human lines for the CLI."""
    lines = [f"parent run {result['parent_run_id']} ({result['tracking_uri']}), {result['seconds']} s"]
    for t in sorted(result["trials"], key=lambda t: -t["score"]):
        lines.append(f"  {t['score']:.4f}  {' '.join(t['sets'])}")
    lines.append(f"best: {' '.join(result['best']['sets'])} -> {result['best_config']}")
    return lines
