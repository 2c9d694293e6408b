"""Find a logged or exported model, check its sha256, and load the tagger.

Model files are joblib pickles: loading one runs code, so a model must come from a store you trust. We
refuse any tagger file whose sha256 differs from the one recorded when it was trained.

An exported folder loads without MLflow; a store URI (``models:/...``, ``runs:/...``) is fetched through
``pipeline.tracking``, imported only on that path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.artifacts import TAGGER_FILE, sha256_file
from pipeline.errors import ModelError

STORE_SCHEMES = ("models:/", "runs:/")


def load_verified(path: str | Path, expected_sha256: str | None) -> Any:
    """The tagger pickled at ``path``, refused unless its sha256 equals ``expected_sha256``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: tagger file not found")
    if not expected_sha256:
        raise ModelError(
            f"{path}: no sha256 recorded for this model; refusing to unpickle an unverified file"
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelError(
            f"{path}: sha256 mismatch (recorded {expected_sha256[:16]}..., file {actual[:16]}...): "
            "the model file changed after training; refusing to load it"
        )
    import joblib

    return joblib.load(path)


@dataclass
class ModelInfo:
    """Where a model was found and what its MLmodel file says."""

    uri: str
    path: Path
    sha256: str | None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def read_mlmodel(model_dir: Path) -> ModelInfo:
    """The tagger path and recorded sha256 of an MLflow model folder."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{model_dir}: not an MLflow model folder (no MLmodel file)")
    try:
        spec = yaml.safe_load(mlmodel.read_text())
    except yaml.YAMLError as exc:
        raise ModelError(f"{mlmodel}: unreadable: {exc}") from exc
    pyfunc = (spec.get("flavors") or {}).get("python_function") or {}
    config = pyfunc.get("config") or pyfunc.get("model_config") or {}
    artifacts = pyfunc.get("artifacts") or {}
    rel = (artifacts.get("tagger") or {}).get("path") or f"artifacts/{TAGGER_FILE}"
    return ModelInfo(
        uri=str(model_dir),
        path=model_dir / rel,
        sha256=config.get("tagger_sha256"),
        run_id=spec.get("run_id"),
        metadata=spec.get("metadata") or {},
    )


def locate_model(uri: str, tracking_uri: str | None = None) -> ModelInfo:
    """A local model folder for ``uri`` (a folder, ``models:/...`` or ``runs:/...``) with its hashes checked."""
    local = Path(uri)
    if local.is_dir() or (os.sep in uri and not uri.startswith(STORE_SCHEMES)):
        if not local.is_dir():
            raise ModelError(f"{uri}: model folder not found")
        return read_mlmodel(local.resolve())
    if not uri.startswith(STORE_SCHEMES):
        raise ModelError(
            f"{uri}: not a model folder, models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN/model"
        )
    return _from_store(uri, tracking_uri)


def _from_store(uri: str, tracking_uri: str | None) -> ModelInfo:
    """The model behind a store URI, its MLmodel hash checked against the one its run recorded.

    A local SQLite store with local artifacts is read directly (``pipeline.store_sql``: a few queries, no
    MLflow) and the model read where the store keeps it. Any other store, or one that module cannot read
    for sure, goes through ``pipeline.tracking``, imported only then: it imports mlflow (some 2 s), which
    neither an exported folder nor the project's own store should pay for.
    """
    from pipeline import store_sql
    from pipeline.artifacts import SHA_TAG

    found = store_sql.resolve(uri, tracking_uri)
    if found is not None:
        info = read_mlmodel(found.folder)
        recorded = store_sql.recorded_tags(found, info.run_id, tracking_uri).get(SHA_TAG)
        info.run_id = info.run_id or found.run_id
    else:
        from pipeline import tracking

        info = read_mlmodel(tracking.download_model(uri, tracking_uri))
        recorded = tracking.recorded_sha256(info.run_id, tracking_uri)
    if recorded and info.sha256 and recorded != info.sha256:
        raise ModelError(
            f"{uri}: the model's MLmodel records sha256 {info.sha256[:16]}... but its run recorded "
            f"{recorded[:16]}...; refusing to load it"
        )
    info.uri = uri
    return info


def load_tagger(uri: str, tracking_uri: str | None = None) -> tuple[Any, ModelInfo]:
    """The verified tagger behind ``uri`` and where it came from."""
    info = locate_model(uri, tracking_uri)
    return load_verified(info.path, info.sha256), info
