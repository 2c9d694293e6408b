"""Fixtures of the reliability tests (helpers live in ``reliability_support.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from reliability_support import BBC, FAKE_SECRETS, NETWORK_GUARD, WEAK, TrainedSandbox, cli_env, make_sandbox


@pytest.fixture(scope="session")
def trained_sandbox(tmp_path_factory, bbc_dir) -> TrainedSandbox:
    """One real ``newstag train`` of the weak BBC model in a sandbox, with fake secrets in its environment and
    an audit hook logging any non-loopback network attempt (shared by the slow tests; ~30 s)."""
    root = make_sandbox(tmp_path_factory.mktemp("trained") / "project", bbc_dir)
    guard = root.parent / "network_guard.py"
    guard.write_text(NETWORK_GUARD)
    env = cli_env({**FAKE_SECRETS, "NEWSTAG_NETWORK_LOG": str(root.parent / "network.json")})
    proc = subprocess.run(
        [sys.executable, str(guard), "train", *BBC, *WEAK, "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return TrainedSandbox(root, json.loads(proc.stdout), proc.stderr, env)
