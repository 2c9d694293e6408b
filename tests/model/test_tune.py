"""Hyper-parameter search: the trial list, and a real search whose trials are nested MLflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.tune import trial_overrides


def test_grid_lists_every_combination_in_a_stable_order() -> None:
    cfg = load_config(
        "configs/reuters.yaml", ["tune.space={model.C: [0.5, 1], features.word.min_df: [1, 2, 3]}"]
    )
    trials = trial_overrides(cfg)
    assert len(trials) == 6
    assert trials[0] == ["features.word.min_df=1", "model.C=0.5"]


def test_random_search_samples_the_grid_with_its_seed() -> None:
    sets = ["tune.strategy=random", "tune.n_trials=3", "tune.space={model.C: [0.1, 0.2, 0.5, 1, 2]}"]
    cfg = load_config("configs/reuters.yaml", sets)
    first, again = trial_overrides(cfg), trial_overrides(cfg)
    assert len(first) == 3 and first == again
    assert len(trial_overrides(cfg, n_trials=10)) == 5  # never more than the grid


def test_an_empty_space_is_a_config_error() -> None:
    cfg = load_config("configs/reuters.yaml", ["tune.space={}"])
    with pytest.raises(ConfigError, match=r"tune\.space is empty"):
        trial_overrides(cfg)


@pytest.mark.slow
def test_trials_are_nested_runs_and_the_best_config_is_written(
    bbc_dir, tmp_path: Path, tracking_uri: str
) -> None:
    from mlflow import MlflowClient

    from pipeline.tune import tune

    sets = [
        f"processed_dir={tmp_path}",
        f"corpus.path={bbc_dir}",
        "tune.space={model.C: [0.05, 1.0]}",
        "tune.n_jobs=2",
    ]
    cfg = load_config("configs/bbc.yaml", sets)
    out = tmp_path / "best.yaml"
    result = tune(cfg, tracking_uri=tracking_uri, output=str(out), say=lambda _: None)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([result["experiment_id"]])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result["parent_run_id"]]
    assert len(children) == 2
    assert all("validation/themes/micro_f1" in r.data.metrics for r in children)
    best = max(children, key=lambda r: r.data.metrics["validation/themes/micro_f1"])
    assert result["best"]["score"] == pytest.approx(best.data.metrics["validation/themes/micro_f1"])
    written = load_config(out)
    best_c = float(result["best"]["sets"][0].split("=")[1])
    assert best_c == written.model.C
