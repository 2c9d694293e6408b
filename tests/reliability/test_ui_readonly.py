"""``newstag ui`` is inspect-only: anyone on the machine may browse, nobody without the owner's login may
change the store through MLflow's REST API (issue 12). ``--writable`` is the old, open server.

Each test starts the real ``newstag ui`` on a copy of the session's trained store (``trained_sandbox``: the
weak BBC model, registered as ``news-tagger-bbc`` with alias ``champion``) and talks to it as a plain HTTP
client without credentials, the way any local user could.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from reliability_support import ROOT, TrainedSandbox, cli_env, newstag_command

from pipeline import ui

pytestmark = pytest.mark.slow
MODEL = "news-tagger-bbc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(
    base: str, method: str, path: str, body: Any = None, data: bytes | None = None, login: str = ""
) -> int:
    """The HTTP status of ``method path`` (JSON ``body`` or raw ``data``), with basic ``login`` when given."""
    payload = json.dumps(body).encode() if body is not None else data
    request = urllib.request.Request(f"{base}{path}", data=payload, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def snapshot(uri: str) -> dict[str, Any]:
    """What the store holds that the attacks aim at: experiments, runs (state and tags), versions, aliases."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(uri, registry_uri=uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    model = client.get_registered_model(MODEL)
    return {
        "experiments": sorted((e.experiment_id, e.name, e.lifecycle_stage) for e in experiments),
        "runs": sorted(
            (r.info.run_id, r.info.lifecycle_stage, r.info.status, sorted(r.data.tags.items())) for r in runs
        ),
        "versions": sorted(v.version for v in client.search_model_versions(f"name = '{MODEL}'")),
        "aliases": dict(model.aliases),
    }


@contextlib.contextmanager
def running_ui(uri: str, cwd: Path, *extra: str):
    """``newstag ui`` on ``uri`` until the block ends (then Ctrl-C); yields (base URL, stdout so far)."""
    port = free_port()
    out, err = cwd / f"ui-{port}.out", cwd / f"ui-{port}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*newstag_command(), "ui", "--config", str(ROOT / "configs" / "bbc.yaml"), "--tracking-uri", uri,
             "--port", str(port), *extra],
            stdout=stdout, stderr=stderr, cwd=cwd, env=cli_env(), start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not ui.RUNS_URL.search(out.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, (out.read_text(), err.read_text())
            time.sleep(0.5)
        time.sleep(0.5)  # the rest of the summary
        yield f"http://127.0.0.1:{port}", out.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 0, err.read_text()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


@pytest.fixture
def store(trained_sandbox: TrainedSandbox, tmp_path: Path) -> str:
    """A copy of the trained store (its runs' artifacts stay in the sandbox)."""
    (tmp_path / "store").mkdir()
    shutil.copy2(trained_sandbox.root / "mlflow.db", tmp_path / "store" / "mlflow.db")
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


def test_an_unauthenticated_client_cannot_change_the_store(store: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(store, registry_uri=store)
    version = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(version.run_id)
    exp = run.info.experiment_id
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    before = snapshot(store)
    files_before = sorted(p for p in artifacts.rglob("*"))

    with running_ui(store, tmp_path) as (base, summary):
        assert "inspect-only" in summary
        # anyone may read: what the UI's pages ask for
        assert call(base, "GET", f"/api/2.0/mlflow/registered-models/get?name={MODEL}") == 200
        assert call(base, "POST", "/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [exp]}) == 200
        assert call(base, "GET", f"/api/2.0/mlflow/runs/get?run_id={run.info.run_id}") == 200
        # nobody without the owner's login may write
        attacks = {
            "alias": ("POST", "/api/2.0/mlflow/registered-models/alias",
                      {"name": MODEL, "alias": "champion", "version": str(version.version)}),
            "new alias": ("POST", "/api/2.0/mlflow/registered-models/alias",
                          {"name": MODEL, "alias": "hijack", "version": str(version.version)}),
            "version": ("POST", "/api/2.0/mlflow/model-versions/create",
                        {"name": MODEL, "source": version.source, "run_id": run.info.run_id}),
            "delete run": ("POST", "/api/2.0/mlflow/runs/delete", {"run_id": run.info.run_id}),
            "forge tag": ("POST", "/api/2.0/mlflow/runs/set-tag",
                          {"run_id": run.info.run_id, "key": "newstag.tagger_sha256", "value": "0" * 64}),
            "experiment": ("POST", "/api/2.0/mlflow/experiments/create",
                           {"name": "evil", "artifact_location": str(tmp_path)}),
            "model": ("POST", "/api/2.0/mlflow/registered-models/create", {"name": "evil"}),
            "delete alias": ("DELETE", f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion",
                             None),
        }  # fmt: skip
        for what, (method, path, body) in attacks.items():
            assert call(base, method, path, body) in (401, 403), what
        for prefix in ("/api", "/ajax-api"):
            upload = f"{prefix}/2.0/mlflow-artifacts/artifacts/{exp}/{run.info.run_id}/artifacts/evil.txt"
            assert call(base, "PUT", upload, data=b"payload") in (401, 403), upload
        after = snapshot(store)

        # the owner's login (generated, owner-only, beside the store) may: the refusals are not a broken server
        folder = ui.auth_folder(store)
        ini = configparser.ConfigParser()
        ini.read(folder / ui.AUTH_INI)
        login = f"{ini['mlflow']['admin_username']}:{ini['mlflow']['admin_password']}"
        owner = {"name": MODEL, "alias": "reviewed", "version": str(version.version)}
        assert call(base, "POST", "/api/2.0/mlflow/registered-models/alias", owner, login=login) == 200
        assert (
            call(base, "POST", "/api/2.0/mlflow/registered-models/alias", owner, login="x:" + "y" * 16) == 401
        )

    assert after == before
    assert sorted(p for p in artifacts.rglob("*")) == files_before
    assert not list(tmp_path.rglob("evil.txt"))
    assert client.get_registered_model(MODEL).aliases["reviewed"] == version.version
    for path, expected in ((folder.parent, 0o700), (folder, 0o700), (folder / ui.AUTH_INI, 0o600)):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert stat.S_IMODE((folder / "basic_auth.db").stat().st_mode) & 0o077 == 0


def test_writable_opens_the_store_with_a_warning(store: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    version = MlflowClient(store, registry_uri=store).get_model_version_by_alias(MODEL, "champion")
    with running_ui(store, tmp_path, "--writable") as (base, summary):
        assert "warning: --writable" in summary
        body = {"name": MODEL, "alias": "opened", "version": str(version.version)}
        assert call(base, "POST", "/api/2.0/mlflow/registered-models/alias", body) == 200
    assert snapshot(store)["aliases"]["opened"] == version.version
