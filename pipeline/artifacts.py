"""Names and checksums of a model's artifacts, shared by the tracking store and the loader.

A leaf module: it imports nothing from ``pipeline``, so ``loading`` and ``tracking`` can both depend on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TAGGER_FILE = "tagger.joblib"
SHA_TAG = "newstag.tagger_sha256"
SCORER_FILE = "scorer.npz"
"""The compiled tagger (``pipeline.scoring.Scorer``): arrays only, what newstag loads to score."""
SCORER_SHA_TAG = "newstag.scorer_sha256"
TAGGER_PATH = f"artifacts/{TAGGER_FILE}"
SCORER_PATH = f"artifacts/{SCORER_FILE}"
"""Where a logged model folder keeps them unless its MLmodel names other paths."""


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


MLMODEL_FIELDS = ("run_id", "tagger", "tagger_sha256", "scorer", "scorer_sha256")
"""The keys of ``mlmodel_fields``."""


def mlmodel_fields(spec: Mapping[str, Any]) -> dict[str, str | None]:
    """What newstag reads from a parsed MLmodel: the run that logged the model, the paths of its tagger and
    scorer artifacts (relative to the model folder; scorer None when it has none) and their recorded sha256s.

    ``pipeline.signing`` stores these in a model's signature, so a loader need not parse the YAML again."""
    pyfunc = (spec.get("flavors") or {}).get("python_function") or {}
    config = pyfunc.get("config") or pyfunc.get("model_config") or {}
    artifacts = pyfunc.get("artifacts") or {}
    scorer = (artifacts.get("scorer") or {}).get("path")
    if scorer is None and "scorer_sha256" in config:
        scorer = SCORER_PATH
    return {
        "run_id": spec.get("run_id"),
        "tagger": (artifacts.get("tagger") or {}).get("path") or TAGGER_PATH,
        "tagger_sha256": config.get("tagger_sha256"),
        "scorer": scorer,
        "scorer_sha256": config.get("scorer_sha256"),
    }
