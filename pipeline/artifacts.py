"""Names and checksums of a model's artifacts, shared by the tracking store and the loader.

A leaf module: it imports nothing from ``pipeline``, so ``loading`` and ``tracking`` can both depend on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

TAGGER_FILE = "tagger.joblib"
SHA_TAG = "newstag.tagger_sha256"
SCORER_FILE = "scorer.npz"
"""The compiled tagger (``pipeline.scoring.Scorer``): arrays only, what newstag loads to score."""
SCORER_SHA_TAG = "newstag.scorer_sha256"


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
