"""Shared test set-up: nothing calls out, corpora are found, MLflow stores are temporary SQLite files."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from pipeline.cli import QUIET_ENV

ROOT = Path(__file__).resolve().parents[1]

# Before anything imports mlflow or datasets: the switches the CLI sets (telemetry off, Hugging Face offline).
os.environ.update(QUIET_ENV)
os.environ.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface-tests"))
# Models are signed with a key made for this test session (pipeline.signing), never the user's
# ~/.config/newstag/signing.key; every process the tests start inherits it.
_KEY_DIR = tempfile.mkdtemp(prefix="newstag-test-key-")
atexit.register(shutil.rmtree, _KEY_DIR, True)
os.environ["NEWSTAG_SIGNING_KEY"] = str(Path(_KEY_DIR) / "signing.key")

# Property-based tests explore new inputs on a developer's machine; CI replays a fixed set, so a red CI is
# always reproducible (a failing example found locally is kept in .hypothesis/ and replayed first).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def corpus_dir(name: str, env: str) -> Path | None:
    """The folder of a shared corpus: $env, data/raw/<name>, or ../shared/data/<name>."""
    candidates = [os.environ.get(env), ROOT / "data" / "raw" / name, ROOT.parent / "shared" / "data" / name]
    for cand in candidates:
        if cand and Path(cand).is_dir():
            return Path(cand).resolve()
    return None


@pytest.fixture(scope="session")
def reuters_dir() -> Path:
    """The Reuters-21578 folder, or skip."""
    path = corpus_dir("reuters21578", "NEWSTAG_REUTERS_DIR")
    if path is None:
        pytest.skip("Reuters-21578 not found (data/raw/reuters21578 or ../shared/data/reuters21578)")
    return path


@pytest.fixture(scope="session")
def bbc_dir() -> Path:
    """The BBC News folder, or skip."""
    path = corpus_dir("bbc_news", "NEWSTAG_BBC_DIR")
    if path is None:
        pytest.skip("BBC News not found (data/raw/bbc_news or ../shared/data/bbc_news)")
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh temporary SQLite MLflow store, set for this test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
