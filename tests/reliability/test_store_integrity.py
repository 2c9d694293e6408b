"""The tracking store's files: owner-only when created, never opened when damaged, never re-created when
empty; runs left RUNNING by a dead training marked FAILED; no temp folder left behind (issue 12).

The slow tests use the real CLI on a copy of the session's trained sandbox (``trained_sandbox``) or in a
sandbox of their own; ``TMPDIR`` points at a folder of the test, so what a command leaves in its temp
folder can be seen.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import BBC, WEAK, TrainedSandbox, make_sandbox, message_lines, run_cli

from pipeline import store_sql, tracking
from pipeline.errors import StoreError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(proc.stdout)
    assert not tracking.pid_alive(pid)
    return pid


def store_copy(sandbox: TrainedSandbox, dest: Path) -> Path:
    """A copy of the sandbox's database in ``dest`` (its runs' artifacts stay where the sandbox has them)."""
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(sandbox.root / "mlflow.db", dest / "mlflow.db"))


def one_line(
    proc: subprocess.CompletedProcess[str], command: str, *needles: str, progress: bool = False
) -> str:
    """Exit 2, no traceback, one stderr line naming the command and holding ``needles`` (after the stage
    lines of ``train`` when ``progress``)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = message_lines(proc.stderr)
    if progress:
        lines = [line for line in lines if not line.startswith("[")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"newstag {command}: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- fast: the store's own functions


def test_a_new_store_and_its_artifact_root_are_owner_only(tmp_path: Path) -> None:
    import mlflow

    old = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless the code says otherwise
    try:
        uri = tracking.setup_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
        exp_id = tracking.ensure_experiment("newstag-modes", "modes")
        with mlflow.start_run(experiment_id=exp_id):
            mlflow.log_text("hello", "notes/hello.txt")
    finally:
        os.umask(old)
    assert uri.endswith("mlflow.db")
    assert mode(tmp_path / "mlflow.db") == 0o600
    assert mode(tmp_path / "mlruns") == 0o700  # every artifact and logged model lies under it
    assert list((tmp_path / "mlruns").rglob("hello.txt"))


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_store_is_refused_in_one_line_and_left_as_it_is(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "mlflow.db"
    tracking.setup_tracking(f"sqlite:///{db}")
    tracking.ensure_experiment("newstag-damage", "damage")
    tracking._INITIALISED.clear()  # a new process would open it again
    data = db.read_bytes()
    db.write_bytes(
        {"empty": b"", "truncated": data[: len(data) // 3], "garbage": b"\x00not sqlite\x00" * 1000}[damage]
    )
    before = db.read_bytes()
    with pytest.raises(StoreError) as info:
        tracking.setup_tracking(f"sqlite:///{db}")
    message = str(info.value)
    assert str(db) in message and "\n" not in message
    assert "restore it from a backup" in message
    assert db.read_bytes() == before  # an empty file stays empty: no new store over it
    with pytest.raises(StoreError):
        store_sql.resolve("models:/news-tagger@champion", f"sqlite:///{db}")


def test_a_page_damaged_in_the_middle_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    tracking.setup_tracking(f"sqlite:///{db}")
    tracking.ensure_experiment("newstag-damage", "damage")
    tracking._INITIALISED.clear()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data), page):  # every page but the first (the schema's root) garbled
        data[start : start + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        tracking.setup_tracking(f"sqlite:///{db}")


def test_runs_left_running_by_a_dead_process_are_marked_failed(tracking_uri: str) -> None:
    from mlflow import MlflowClient

    tracking.setup_tracking(tracking_uri)
    exp_id = tracking.ensure_experiment("newstag-stale", "stale")
    client = MlflowClient()
    host = socket.gethostname()
    dead = client.create_run(exp_id, tags={"newstag.pid": str(dead_pid()), "newstag.host": host}).info.run_id
    alive = client.create_run(exp_id, tags=tracking.owner_tags()).info.run_id  # this process: alive
    elsewhere = client.create_run(
        exp_id, tags={"newstag.pid": "1", "newstag.host": f"not-{host}"}
    ).info.run_id
    untagged = client.create_run(exp_id).info.run_id  # no owner known: left alone

    assert tracking.fail_stale_runs(exp_id) == [dead]
    status = {rid: client.get_run(rid).info.status for rid in (dead, alive, elsewhere, untagged)}
    assert status == {dead: "FAILED", alive: "RUNNING", elsewhere: "RUNNING", untagged: "RUNNING"}
    assert "died" in client.get_run(dead).data.tags[tracking.ERROR_TAG]


def test_a_reused_pid_is_not_the_owner(tracking_uri: str) -> None:
    """The pid alone could name a later process: the recorded start time tells them apart."""
    me = tracking.owner_tags()
    if "newstag.pid_start" not in me:
        pytest.skip("no /proc: process start times unknown")
    assert tracking.pid_alive(os.getpid(), me["newstag.pid_start"])
    assert not tracking.pid_alive(os.getpid(), str(int(me["newstag.pid_start"]) + 1))


def test_owned_tempdir_removes_the_folders_of_dead_processes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    stale = tmp_path / f"newstag-tagger-{dead_pid()}.12345-abc"
    live = tmp_path / f"newstag-tagger-{os.getpid()}.{tracking._pid_start(os.getpid()) or 0}-def"
    foreign = tmp_path / "newstag-tagger-unrelated"
    for folder in (stale, live, foreign):
        (folder / "sub").mkdir(parents=True)
    made = tracking.owned_tempdir("newstag-tagger-")
    assert made.parent == tmp_path and made.name.startswith(f"newstag-tagger-{os.getpid()}.")
    assert not stale.exists() and live.exists() and foreign.exists()


# --------------------------------------------------------------------------- slow: the real CLI


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_predict_models_promote_and_ui_say_one_line_on_a_damaged_store(
    trained_sandbox: TrainedSandbox, tmp_path: Path, damage: str
) -> None:
    db = store_copy(trained_sandbox, tmp_path / "store")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x13" * len(data))
    before = db.read_bytes()
    uri = f"sqlite:///{db}"
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "1", "text": "Markets fell in London."}) + "\n")
    predict = ["predict", "-m", "models:/news-tagger-bbc@champion", "-i", "in.jsonl", "-o", "out.jsonl"]
    for command, args in (
        ("predict", [*predict, "--tracking-uri", uri]),
        ("predict", [*predict[:2], "models:/news-tagger-bbc/latest", *predict[3:], "--tracking-uri", uri]),
        ("models", ["models", "news-tagger-bbc", "--tracking-uri", uri]),
        ("promote", ["promote", "news-tagger-bbc", "1", "--reason", "test", "--tracking-uri", uri]),
        ("ui", ["ui", "--tracking-uri", uri, "--port", "0"]),
    ):
        proc = run_cli(args, tmp_path, timeout=300)
        one_line(proc, command, str(db))
    assert db.read_bytes() == before
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
def test_train_refuses_an_empty_store_and_leaves_it_empty(tmp_path: Path, bbc_dir: Path) -> None:
    root = make_sandbox(tmp_path / "project", bbc_dir)
    (root / "mlflow.db").write_bytes(b"")
    proc = run_cli(["train", *BBC, *WEAK], root, timeout=900)
    one_line(proc, "train", str(root / "mlflow.db"), "empty")  # before any stage: no progress line
    assert (root / "mlflow.db").read_bytes() == b""


@pytest.mark.slow
def test_train_fails_stale_runs_and_leaves_no_temp_folder(tmp_path: Path, bbc_dir: Path) -> None:
    """A training killed earlier left a RUNNING run and its temp folder: the next one cleans up both, and
    its own store files are owner-only."""
    from mlflow import MlflowClient

    root = make_sandbox(tmp_path / "project", bbc_dir)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracking.setup_tracking(uri)  # the store as training makes it (owner-only files)
    exp_id = tracking.ensure_experiment("newstag-bbc", "bbc")
    client = MlflowClient(uri)
    pid = dead_pid()
    killed = client.create_run(exp_id, tags={"newstag.pid": str(pid), "newstag.host": socket.gethostname()})
    left = tmp / f"newstag-tagger-{pid}.4242-xyz"  # what a SIGKILLed log_tagger leaves
    (left / "tagger.joblib").parent.mkdir()
    (left / "tagger.joblib").write_bytes(b"x")

    proc = run_cli(["train", *BBC, *WEAK, "--json"], root, env={"TMPDIR": str(tmp)}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert client.get_run(killed.info.run_id).info.status == "FAILED"
    tags = client.get_run(result["run_id"]).data.tags
    assert tags["newstag.host"] == socket.gethostname() and tags["newstag.pid"].isdigit()
    assert not list(tmp.glob("newstag-tagger-*")), list(tmp.iterdir())
    assert mode(root / "mlflow.db") == 0o600 and mode(root / "mlruns") == 0o700


@pytest.mark.slow
def test_predict_through_mlflow_leaves_no_model_copy(trained_sandbox: TrainedSandbox, tmp_path: Path) -> None:
    """``models:/NAME/latest`` is MLflow's to resolve (store_sql leaves it): the copy it downloads goes."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = tmp / f"newstag-model-{dead_pid()}.777-old"  # left by a SIGKILLed predict
    stale.mkdir()
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "1", "text": "Markets fell in London."}) + "\n")
    args = ["predict", "-m", "models:/news-tagger-bbc/latest", "-i", "in.jsonl", "-o", "out.jsonl"]
    proc = run_cli([*args, "--tracking-uri", trained_sandbox.uri], tmp_path, env={"TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out.jsonl").read_text().strip()
    assert not list(tmp.glob("newstag-model-*")), list(tmp.iterdir())
