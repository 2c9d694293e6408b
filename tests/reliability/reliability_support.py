"""Helpers for the reliability tests: the real CLI in a subprocess, and throw-away project folders.

A *sandbox* is a temporary project root: ``configs/`` links to the repository's configs and
``data/raw/bbc_news`` to the BBC corpus, so the documented relative paths work, while the MLflow store
(``sqlite:///mlflow.db``), its artifacts (``./mlruns``), ``data/processed/`` and ``models/`` all land in the
sandbox, never in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.cli import QUIET_ENV

ROOT = Path(__file__).resolve().parents[2]
QUIET = QUIET_ENV  # the switches the CLI sets
# A train run small enough for crash and concurrency tests (BBC, ~2.2k documents).
BBC = ["--config", "configs/bbc.yaml", "--tracking-uri", "sqlite:///mlflow.db"]
# A deliberately weak model: the default BBC config beats it, so a later run would be promoted.
WEAK = ["--set", "features.word.max_features=40", "--set", "features.word.ngram_range=[1,1]"]


def newstag_command() -> list[str]:
    """The installed ``newstag`` console script of this interpreter, else ``python -m pipeline.cli``."""
    script = Path(sys.executable).parent / "newstag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline.cli"]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: ours, without pytest's marker (MLflow changes behaviour under it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
    env.update(QUIET)
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``newstag ARGS`` in ``cwd``; the completed process with text stdout/stderr."""
    return subprocess.run(
        [*newstag_command(), *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``newstag ARGS`` started in ``cwd`` (not waited for)."""
    return subprocess.Popen(
        [*newstag_command(), *args],
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def message_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr."""
    return [line for line in stderr.splitlines() if line.strip()]


def assert_clean_failure(proc: subprocess.CompletedProcess[str], command: str, *needles: str) -> str:
    """Exit code 2, no traceback, exactly one stderr line naming the command and containing ``needles``."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = message_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"newstag {command}: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def make_sandbox(path: Path, bbc_dir: Path | None = None) -> Path:
    """A throw-away project root at ``path`` (see the module docstring)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
    if bbc_dir is not None:
        (path / "data" / "raw").mkdir(parents=True)
        (path / "data" / "raw" / "bbc_news").symlink_to(bbc_dir, target_is_directory=True)
    return path


@dataclass
class TrainedSandbox:
    """A sandbox with one finished ``newstag train`` (the weak BBC model) and what that run printed."""

    root: Path
    result: dict
    stderr: str
    env: dict[str, str]

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def export_root(self) -> Path:
        return self.root / "models" / "news-tagger-bbc"


# Set in the environment of the trained sandbox's run: none of it may end up in the store.
FAKE_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-7Hq3ZpX9",
    "NEWSTAG_TEST_API_TOKEN": "fake-token-Jw52LmQa",
    "DATABRICKS_TOKEN": "dapi-fake-token-0000",
}

# Runs the CLI with an audit hook that records every attempt to reach a non-loopback address.
NETWORK_GUARD = r"""
import ipaddress, json, os, sys
seen = []
def _loopback(host):
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) in ("localhost", "")
def _hook(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _loopback(address[0]):
            seen.append([event, repr(address)])
    elif event == "socket.getaddrinfo" and not _loopback(args[0]):
        seen.append([event, repr(args[0])])
sys.addaudithook(_hook)
import atexit
atexit.register(lambda: open(os.environ["NEWSTAG_NETWORK_LOG"], "w").write(json.dumps(seen)))
from pipeline.cli import main
code = main(sys.argv[1:])
sys.exit(code)
"""
