"""Config loading: the shipped configs validate, errors name the file and the key, --set overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import (
    TRACKING_URI_FORMS,
    ConfigError,
    apply_overrides,
    check_tracking_uri,
    load_config,
    parse_override,
    read_yaml,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["reuters.yaml", "reuters-r90.yaml", "bbc.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.axes and cfg.name == name.removesuffix(".yaml")


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text((ROOT / "configs/bbc.yaml").read_text() + "\nmodel_typo: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid config\n  model_typo: unknown key"):
        load_config(path)


def test_wrong_type_names_the_dotted_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text((ROOT / "configs/bbc.yaml").read_text())
    with pytest.raises(ConfigError, match=r"model\.C: Input should be a valid number"):
        load_config(path, ["model.C=lots"])


def test_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config("nope.yaml")


def test_overrides_parse_yaml_values_and_create_sections() -> None:
    assert parse_override("model.C=0.25") == (["model", "C"], 0.25)
    assert parse_override("features.word.ngram_range=[1, 3]") == (["features", "word", "ngram_range"], [1, 3])
    data = apply_overrides({"a": {"b": 1}}, ["a.b=2", "x.y=z"])
    assert data == {"a": {"b": 2}, "x": {"y": "z"}}
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        parse_override("model.C")
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_override_reaches_the_model(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs/reuters.yaml", ["model.C=2", "features.word.max_features=10"])
    assert cfg.model.C == 2.0 and cfg.features.word.max_features == 10
    assert cfg.flat()["model.C"] == 2.0


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from pipeline.cli import build_parser; build_parser().format_help();"
        "heavy = [m for m in ('mlflow', 'sklearn', 'datasets', 'pandas', 'scipy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_cli_reports_config_errors_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncorpus: {format: jsonl}\naxes: {}\n")
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "prepare", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "axes: at least one label axis is needed" in out.stderr or "axes" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///mlflow.db",
        "sqlite:////tmp/store.db",
        "http://127.0.0.1:5000",
        "https://mlflow.example.org",
        "postgresql+psycopg2://user@host/db",
        "databricks",
    ],
)
def test_tracking_uris_newstag_can_use_pass(uri: str) -> None:
    assert check_tracking_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("mlflow.db", "a plain path is not a store"),
        ("/srv/mlflow.db", "a plain path is not a store"),
        ("file:///srv/mlruns", "file stores are not supported (MLflow 3 refuses them)"),
        ("s3://bucket/x", "unsupported scheme 's3'"),
        ("http:/host", "no host"),
        ("sqlite:///:memory:", "no database file"),
        ("sqlite:////tmp", "/tmp is a folder, not a database file"),
        ("sqlite:////no/such/folder/m.db", "folder /no/such/folder does not exist"),
    ],
)
def test_a_tracking_uri_newstag_cannot_use_is_refused_with_the_forms_allowed(uri: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_tracking_uri(uri)
    assert str(info.value) == f"tracking URI {uri!r}: {why}; use {TRACKING_URI_FORMS}"


def test_files_may_use_aliases_set_values_may_not(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: &x [1, 2]\nb: *x\n")
    assert read_yaml(path) == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) are not allowed"):
        parse_override("model.C=[&x 1, *x]")
    assert parse_override("a=" + "[" * 100 + "]" * 100)  # nested, not too deeply: read
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_override("a=" + "[" * 4990 + "]" * 4990)


def test_the_default_tune_metric_follows_the_axes(tmp_path: Path) -> None:
    """A config without a themes axis and no tune.metric tunes on its first axis; one it names is kept."""
    path = tmp_path / "c.yaml"
    path.write_text("name: t\ncorpus: {format: jsonl, path: x.jsonl}\naxes: {regions: {source: r}}\n")
    assert load_config(path).tune.metric == "validation/regions/micro_f1"
    assert load_config(ROOT / "configs" / "bbc.yaml").tune.metric == "validation/themes/accuracy"
    with pytest.raises(ConfigError, match=r"tune\.metric: 'validation/themes/micro_f1': write validation/"):
        load_config(path, ["tune.metric=validation/themes/micro_f1"])


def test_promotion_defaults_follow_each_axis_kind(tmp_path: Path) -> None:
    """Unset, promotion compares micro-F1 on a multi-label axis and accuracy + macro-F1 on a single-label one;
    accuracy named on a multi-label axis is refused (it is exact-match there, not what promotion should use)."""
    base = load_config(ROOT / "configs/bbc.yaml", ["tracking.promotion.metrics=null"])
    assert base.promotion_metrics() == ["themes/accuracy", "themes/macro_f1"]
    multi = load_config(
        ROOT / "configs/bbc.yaml", ["tracking.promotion.metrics=null", "axes.themes.multi_label=false"]
    )
    assert multi.promotion_metrics() == base.promotion_metrics()
    multi = load_config(
        ROOT / "configs/bbc.yaml",
        [
            "tracking.promotion.metrics=null",
            "axes.themes.multi_label=true",
            "tune.metric=validation/themes/micro_f1",
        ],
    )
    assert multi.promotion_metrics() == ["themes/micro_f1"]
    with pytest.raises(ConfigError, match=r"no metric 'accuracy'.*multi-label axis 'themes'"):
        load_config(
            ROOT / "configs/bbc.yaml",
            ["tracking.promotion.metrics=[themes/accuracy]", "axes.themes.multi_label=true"],
        )
