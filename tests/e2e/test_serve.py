"""The registered model behind MLflow's REST server: ``mlflow models serve`` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fixtures_model import TrainedModel, small_model

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
__all__ = ["small_model"]  # the fixture, imported for pytest

ARTICLES = [
    [
        "Japan's industrial output rose 2.1 pct in March from February, the Ministry of International Trade "
        "and Industry in Tokyo said, led by machinery and car production in Japanese factories.",
        "JAPAN INDUSTRIAL OUTPUT RISES IN MARCH",
    ],
    [
        "Saudi Arabia will keep its crude oil output at 4.1 mln barrels per day, the oil minister said in "
        "Riyadh, as OPEC members met to discuss production quotas and prices.",
        "SAUDI ARABIA HOLDS CRUDE OIL OUTPUT",
    ],
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"mlflow models serve did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}"
    )


def start_serve(model: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int, Path]:
    """``mlflow models serve -m MODEL`` on a free loopback port, in its own process group (the server's
    workers end with it): (process, port, log file in ``cwd``). The venv's bin folder leads PATH: the server
    execs uvicorn from PATH, as when the venv is activated."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", model, "--env-manager", "local"]
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "-p", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, port, log


def stop(proc: subprocess.Popen) -> None:
    """End the server's whole process group (uvicorn and its workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=30)


def test_serve_two_articles(small_model: TrainedModel, tmp_path: Path):
    proc, port, log = start_serve(small_model.uri, tmp_path, small_model.env())
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", proc, log)
        body = json.dumps({"dataframe_split": {"columns": ["text", "title"], "data": ARTICLES}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.status == 200
            answer = json.loads(resp.read())
    finally:
        stop(proc)

    predictions = answer["predictions"]
    assert len(predictions) == 2
    for pred in predictions:
        assert set(pred) == {"regions", "primary_region", "themes", "scores"}
        assert isinstance(pred["regions"], list) and isinstance(pred["themes"], list)
        assert pred["primary_region"] in pred["regions"] or (
            pred["primary_region"] is None and not pred["regions"]
        )
        scores = json.loads(pred["scores"])
        assert set(scores) == {"regions", "themes"}
        assert all(0.0 <= p <= 1.0 for axis in scores.values() for p in axis.values())
    tokyo, riyadh = (json.loads(p["scores"]) for p in predictions)
    assert max(tokyo["regions"], key=tokyo["regions"].get) == "Asia-Pacific"
    assert "Asia-Pacific" in predictions[0]["regions"] and "Middle East" in predictions[1]["regions"]
    assert [p["primary_region"] for p in predictions] == ["Asia-Pacific", "Middle East"]
    assert max(riyadh["regions"], key=riyadh["regions"].get) == "Middle East"
    assert max(riyadh["themes"], key=riyadh["themes"].get) == "energy"
