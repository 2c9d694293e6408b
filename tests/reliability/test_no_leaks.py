"""No secrets, tokens or machine paths in what a real ``newstag train`` records, and no traffic off loopback.

The run (``trained_sandbox``) ran from a project folder under the temp directory with fake secrets in its
environment. We walk everything the store holds about it: run params, tags, dataset inputs, the logged
model's tags and params, the registry's versions, and every byte of every artifact of the run, of the
logged model, and of the exported model folder. None may contain the home directory, the repository's
path, the project folder's path, ``/tmp/`` or a secret's value.

MLflow writes three absolute paths into the MLmodel file itself, which we allow and pin down precisely:

- ``artifact_path``: where the store keeps this model's artifacts (the store's own location, under
  ``./mlruns`` of the project; it is the store describing itself, like the experiment's artifact location);
- ``flavors.python_function.model_code_path``: MLflow resolves the code file to an absolute path
  (``mlflow.models.utils._validate_and_get_model_code_path``) and, when loading, uses only its file name;
- ``flavors.python_function.artifacts.tagger.uri``: the path the tagger file was logged from.

For the last two newstag logs from a throw-away ``<tempdir>/newstag-tagger-<pid>.<start>-XXXX/`` folder, so they name
neither the project nor the user; the test checks exactly that.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from reliability_support import FAKE_SECRETS, ROOT, TrainedSandbox

pytestmark = pytest.mark.slow

TEMP_COPY = re.compile(
    re.escape(tempfile.gettempdir())
    + r"/newstag-tagger-\d+\.\d+-[A-Za-z0-9_]+/(pyfunc\.py|tagger\.joblib|scorer\.npz)"
)


def forbidden(sandbox: TrainedSandbox) -> list[str]:
    return [str(Path.home()), str(ROOT), str(sandbox.root), "/tmp/", *FAKE_SECRETS.values()]


def leaks(text: str, needles: list[str]) -> list[str]:
    return [n for n in needles if n in text]


def walk_bytes(folder: Path, needles: list[str], store: Path | None = None) -> dict[str, list[str]]:
    """File -> forbidden strings found in it. With ``store`` (the project folder whose ``mlruns`` holds the
    model), the three MLflow path fields of an MLmodel file are checked on their own, the rest as text."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "MLmodel" and store is not None:
            spec = yaml.safe_load(data)
            check_mlmodel_paths(spec, store)
            pyfunc = spec["flavors"]["python_function"]
            del spec["artifact_path"], pyfunc["model_code_path"]
            for artifact in pyfunc["artifacts"].values():  # the tagger and its compiled scorer
                del artifact["uri"]
            data = yaml.safe_dump(spec).encode()
        hits = [n for n in needles if n.encode() in data]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def check_mlmodel_paths(spec: dict, store: Path) -> None:
    """The MLflow-written paths are the store's own location and newstag's throw-away temp copies."""
    pyfunc = spec["flavors"]["python_function"]
    assert set(pyfunc["artifacts"]) == {"tagger", "scorer"}
    for value in (pyfunc["model_code_path"], *(a["uri"] for a in pyfunc["artifacts"].values())):
        assert TEMP_COPY.fullmatch(value), value
    location = spec["artifact_path"].removeprefix("file://")
    assert location.startswith(f"{store}/mlruns/"), location
    assert location.endswith(f"/models/{spec['model_id']}/artifacts"), location


def test_nothing_tried_to_reach_a_non_loopback_address(trained_sandbox: TrainedSandbox) -> None:
    seen = json.loads((trained_sandbox.root.parent / "network.json").read_text())
    assert seen == [], seen


def test_no_secret_or_machine_path_in_params_tags_datasets_or_registry(
    trained_sandbox: TrainedSandbox,
) -> None:
    from mlflow import MlflowClient

    from pipeline.tracking import setup_tracking

    setup_tracking(trained_sandbox.uri)
    client = MlflowClient()
    needles = forbidden(trained_sandbox)
    run = client.get_run(trained_sandbox.result["run_id"])
    assert run.data.tags["mlflow.source.name"] == "newstag train"
    assert run.data.tags["newstag.config_file"] == "configs/bbc.yaml"
    assert (
        run.data.params["corpus.path"] == "data/raw/bbc_news"
        and run.data.params["processed_dir"] == "data/processed"
    )
    records = {f"param {k}": v for k, v in run.data.params.items()}
    records.update({f"tag {k}": v for k, v in run.data.tags.items()})
    for item in run.inputs.dataset_inputs:
        d = item.dataset
        records[f"dataset {d.name}"] = json.dumps([d.source, d.source_type, d.schema, d.profile, d.digest])
    model_id = trained_sandbox.result["model_uri"].removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    records.update({f"model tag {k}": v for k, v in logged.tags.items()})
    records.update({f"model param {k}": v for k, v in logged.params.items()})
    for version in client.search_model_versions("name='news-tagger-bbc'"):
        records[f"version {version.version}"] = json.dumps(
            [version.source, version.description, version.tags]
        )
    registered = client.get_registered_model("news-tagger-bbc")
    records["registered model"] = json.dumps([registered.description, registered.tags])
    experiment = client.get_experiment(run.info.experiment_id)
    records["experiment tags"] = json.dumps(experiment.tags)
    found = {k: leaks(v, needles) for k, v in records.items() if leaks(v, needles)}
    assert not found, found


def test_no_secret_or_machine_path_in_any_artifact(trained_sandbox: TrainedSandbox, tmp_path: Path) -> None:
    import mlflow

    from pipeline.tracking import setup_tracking

    setup_tracking(trained_sandbox.uri)
    needles = forbidden(trained_sandbox)
    run_files = Path(
        mlflow.artifacts.download_artifacts(
            run_id=trained_sandbox.result["run_id"], dst_path=str(tmp_path / "run")
        )
    )
    model_files = Path(
        mlflow.artifacts.download_artifacts(
            trained_sandbox.result["model_uri"], dst_path=str(tmp_path / "model")
        )
    )
    assert (run_files / "reports" / "data_report.json").is_file() and (
        model_files / "artifacts" / "tagger.joblib"
    ).is_file()
    found = {
        "run": walk_bytes(run_files, needles),
        "logged model": walk_bytes(model_files, needles, trained_sandbox.root),
        "exported model": walk_bytes(trained_sandbox.export_root / "v1", needles, trained_sandbox.root),
    }
    assert not any(found.values()), found


def test_the_secrets_were_really_in_the_run_environment(trained_sandbox: TrainedSandbox) -> None:
    """Guard against a vacuous pass: the run saw the fake secrets (and its own absolute paths)."""
    for key, value in FAKE_SECRETS.items():
        assert trained_sandbox.env[key] == value
    assert str(trained_sandbox.root).startswith(tempfile.gettempdir() + os.sep)
    assert trained_sandbox.result["export_path"] == "models/news-tagger-bbc/v1"
