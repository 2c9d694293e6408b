"""Signed models (issue 12, critical): a model is loaded only when this machine's key signed every file of it,
and its MLmodel names a run the store knows.

A tiny tagger is trained here in a second, logged to a temporary SQLite store, registered and exported. Each
attack is a copy of the exported folder (or the store's own copy) with a harmless payload planted in it: a
pickle whose ``__reduce__`` creates a file, or a line in a ``code/`` module that creates one. Every loader
(``newstag predict``, ``mlflow.pyfunc.load_model``, ``mlflow models serve``) must refuse it, and the file must
never appear.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import joblib
import mlflow
import pandas as pd
import pytest
import yaml
from e2e.test_serve import start_serve, stop
from reliability_support import assert_clean_failure, cli_env, run_cli
from test_security import logged_store

from pipeline import cli, loading, signing
from pipeline.artifacts import SCORER_FILE, TAGGER_FILE, sha256_file
from pipeline.errors import ModelError
from pipeline.loading import load_tagger

ATTACKS = ["signed with another key", "forged MLmodel", "changed code file"]


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[dict]:
    """A tiny tagger logged, registered as ``m`` v1 in a temp store, and exported; an input file."""
    root = tmp_path_factory.mktemp("signing")
    with logged_store(root, "signing") as found:
        (root / "in.jsonl").write_text(json.dumps({"id": "1", "text": "In Paris, oil output rose."}) + "\n")
        yield found


def store_folder(store: dict) -> Path:
    """The store's own copy of the logged model (what models:/m/1 loads in place)."""
    return Path(store["root"]) / "artifacts" / "models" / store["info"].model_id / "artifacts"


def plant_pickle(folder: Path, marker: Path, drop_run: bool) -> None:
    """The joblib tagger replaced by a payload, the scorer removed so a loader would unpickle it, MLmodel's
    hash rewritten to match the payload (and its run id removed when ``drop_run``)."""
    joblib.dump(Payload(str(marker)), folder / "artifacts" / TAGGER_FILE)
    (folder / "artifacts" / SCORER_FILE).unlink()
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = spec["flavors"]["python_function"]
    del pyfunc["config"]["scorer_sha256"], pyfunc["artifacts"]["scorer"]
    pyfunc["config"]["tagger_sha256"] = sha256_file(folder / "artifacts" / TAGGER_FILE)
    if drop_run:
        del spec["run_id"]
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))


def sign_with_another_key(folder: Path, key_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setenv(signing.KEY_ENV, str(key_dir / "attacker.key"))
        signing.sign_folder(folder)


def attack(kind: str, folder: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Apply attack ``kind`` to the model folder ``folder``; the words the refusal must contain."""
    if kind == "signed with another key":
        plant_pickle(folder, marker, drop_run=False)
        sign_with_another_key(folder, marker.parent, monkeypatch)
        return "signed with another key"
    if kind == "forged MLmodel":
        plant_pickle(folder, marker, drop_run=True)
        return "sha256 mismatch"
    code = folder / "code" / "pipeline" / "scoring.py"
    code.write_text(code.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    return "sha256 mismatch"


@pytest.fixture
def attacked(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> tuple[Path, Path, str]:
    folder = tmp_path / "model"
    shutil.copytree(store["export"], folder)
    marker = tmp_path / "PAYLOAD-RAN"
    needle = attack(request.param, folder, marker, monkeypatch)
    return folder, marker, needle


# ------------------------------------------------------------------------------------------------ the key


def test_the_key_is_created_owner_only_outside_the_store(tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "config" / "newstag" / "signing.key"
    monkeypatch.setenv(signing.KEY_ENV, str(key))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("run_id: x\n")
    signing.sign_folder(tmp_path / "m")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    first = key.read_text()
    signing.sign_folder(tmp_path / "m")  # the same key is used again, never replaced
    assert key.read_text() == first and len(bytes.fromhex(first.strip())) == 32
    assert first.strip() not in (tmp_path / "m" / signing.SIGNATURE_FILE).read_text()


def test_the_tests_never_touch_the_users_key() -> None:
    assert Path(os.environ[signing.KEY_ENV]) != Path.home() / ".config" / "newstag" / "signing.key"
    assert signing.key_path() == Path(os.environ[signing.KEY_ENV])


def test_a_group_readable_key_is_refused_in_one_line(store, tmp_path: Path) -> None:
    key = tmp_path / "shared.key"
    shutil.copy(signing.key_path(), key)
    key.chmod(0o640)
    proc = run_cli(
        ["predict", "-m", str(store["export"]), "-i", str(store["root"] / "in.jsonl"), "-o", "out.jsonl"],
        tmp_path,
        env={signing.KEY_ENV: str(key)},
    )
    assert_clean_failure(proc, "predict", str(key), "readable by others", f"chmod 600 {key}")
    assert not (tmp_path / "out.jsonl").exists()
    key.chmod(0o600)  # the fix the message names works
    ok = run_cli(
        ["predict", "-m", str(store["export"]), "-i", str(store["root"] / "in.jsonl"), "-o", "out.jsonl"],
        tmp_path,
        env={signing.KEY_ENV: str(key)},
    )
    assert ok.returncode == 0, ok.stderr[-2000:]


# ------------------------------------------------------------------------------------------------ attacks


def test_an_intact_signed_model_loads_everywhere(store, tmp_path: Path) -> None:
    files = signing.verify_model(store["export"])
    assert {"MLmodel", "pyfunc.py", f"artifacts/{SCORER_FILE}", "code/pipeline/scoring.py"} <= set(files)
    assert load_tagger(str(store["export"]))[1].run_id == store["run_id"]
    assert load_tagger("models:/m/1", store["uri"])[1].run_id == store["run_id"]
    model = mlflow.pyfunc.load_model(str(store["export"]))
    assert len(model.predict(pd.DataFrame({"text": ["In Paris, oil output rose."]}))) == 1
    proc = run_cli(
        ["predict", "-m", str(store["export"]), "-i", str(store["root"] / "in.jsonl"), "-o", "out.jsonl"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("attacked", ATTACKS, indirect=True)
def test_the_cli_refuses_an_attacked_model_and_the_payload_never_runs(attacked, tmp_path: Path) -> None:
    folder, marker, needle = attacked
    out = tmp_path / "out.jsonl"
    (folder.parent / "in.jsonl").write_text(json.dumps({"id": "1", "text": "In Paris, oil."}) + "\n")
    proc = run_cli(
        ["predict", "-m", str(folder), "-i", str(folder.parent / "in.jsonl"), "-o", str(out)], tmp_path
    )
    line = assert_clean_failure(proc, "predict", needle, "refusing to load it", f"newstag trust {folder}")
    assert str(folder) in line
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("attacked", ATTACKS, indirect=True)
def test_pyfunc_load_model_refuses_an_attacked_model_and_the_payload_never_runs(attacked) -> None:
    folder, marker, needle = attacked
    with pytest.raises(Exception, match=needle) as info:
        mlflow.pyfunc.load_model(str(folder))
    assert "refusing to load it" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("attacked", ATTACKS, indirect=True)
def test_pyfunc_load_model_in_a_fresh_process_refuses_before_importing_code(attacked) -> None:
    """A fresh process has no newstag imported yet: the one MLflow would import first is the model's code/."""
    folder, marker, needle = attacked
    code = f"import mlflow.pyfunc; mlflow.pyfunc.load_model({str(folder)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder.parent,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and needle in done.stderr and "refusing to load it" in done.stderr
    assert not marker.exists()


def test_a_store_model_with_a_forged_mlmodel_is_refused_and_the_payload_never_runs(
    store, tmp_path: Path
) -> None:
    folder = store_folder(store)
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    marker = tmp_path / "PAYLOAD-RAN"
    try:
        plant_pickle(folder, marker, drop_run=True)
        # the store's lookup takes the run and the paths from the signature, and the signature check then
        # finds MLmodel changed
        with pytest.raises(ModelError, match=r"MLmodel: sha256 mismatch .* refusing to load it"):
            load_tagger("models:/m/1", store["uri"])
        proc = run_cli(
            [
                "predict",
                "-m",
                "models:/m/1",
                "--tracking-uri",
                store["uri"],
                "-i",
                str(store["root"] / "in.jsonl"),
                "-o",
                "out.jsonl",
            ],
            tmp_path,
        )
        assert_clean_failure(proc, "predict", "MLmodel: sha256 mismatch", "refusing to load it")
        with pytest.raises(Exception, match="refusing to load it"):
            mlflow.pyfunc.load_model("models:/m/1")
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    assert not marker.exists()
    assert load_tagger("models:/m/1", store["uri"])[1].run_id == store["run_id"]


# ------------------------------------------------------------------------------------------------ run record


def test_a_run_the_store_does_not_know_is_refused(store, tmp_path: Path) -> None:
    """A version registered without a run, whose MLmodel names a run absent from the store, is refused even
    when its owner signed it: the run record is not waved through."""
    folder = tmp_path / "runless"
    shutil.copytree(store["export"], folder)
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    spec["run_id"] = "f" * 32
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    signing.sign_folder(folder)
    version = mlflow.MlflowClient().create_model_version("m", source=str(folder), run_id=None).version
    with pytest.raises(ModelError, match=r"run f{32} named in its MLmodel is not in the store"):
        load_tagger(f"models:/m/{version}", store["uri"])


def test_an_exported_folder_is_checked_against_a_store_only_when_one_is_named(store, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.MlflowClient(other).search_experiments()  # an empty store that knows no run
    assert load_tagger(str(store["export"]))[1].run_id == store["run_id"]  # offline: the signature decides
    assert load_tagger(str(store["export"]), store["uri"])[1].run_id == store["run_id"]
    with pytest.raises(ModelError, match=r"is not in the store"):
        load_tagger(str(store["export"]), other)


def test_an_exported_folder_without_run_id_is_refused_even_when_re_signed(store, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(store["export"], folder)
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    del spec["run_id"]
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    signing.sign_folder(folder)
    with pytest.raises(ModelError, match="names no run_id"):
        load_tagger(str(folder))


# ------------------------------------------------------------------------------------------------ trust


def test_an_unsigned_model_is_refused_and_newstag_trust_signs_it(store, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "from-elsewhere"
    shutil.copytree(store["export"], folder)
    sign_with_another_key(folder, tmp_path, monkeypatch)  # as another machine signed it
    with pytest.raises(ModelError, match=rf"signed with another key.*newstag trust {folder}"):
        load_tagger(str(folder))
    (folder / signing.SIGNATURE_FILE).unlink()
    with pytest.raises(ModelError, match=rf"not signed.*newstag trust {folder}"):
        load_tagger(str(folder))
    proc = run_cli(["trust", str(folder)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"run {store['run_id']}" in proc.stdout and "code/pipeline/scoring.py" in proc.stdout
    assert "mlflow.pyfunc.load_model executes it" in proc.stdout and "signed" in proc.stdout.splitlines()[-1]
    assert load_tagger(str(folder))[1].run_id == store["run_id"]


def test_a_file_the_signature_does_not_list_is_refused(store, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(store["export"], folder)
    (folder / "code" / "pipeline" / "sitecustomize.py").write_text("print('planted')\n")
    with pytest.raises(ModelError, match=r"sitecustomize\.py: a file the model's signature does not cover"):
        load_tagger(str(folder))
    (folder / "code" / "pipeline" / "sitecustomize.py").unlink()
    load_tagger(str(folder))
    (tmp_path / "elsewhere").mkdir()
    (folder / "code" / "pipeline" / "extra").symlink_to(tmp_path / "elsewhere")  # a package linked in
    with pytest.raises(ModelError, match=r"extra: a file the model's signature does not cover"):
        load_tagger(str(folder))
    with pytest.raises(ModelError, match=r"a link to a folder inside a model folder; not signing it"):
        signing.sign_folder(folder)


# ------------------------------------------------------------------------------------------------ MLmodel fields


def test_the_signature_records_what_loaders_read_from_mlmodel_and_predict_parses_no_yaml(
    store, tmp_path: Path
) -> None:
    sig = json.loads((store["export"] / signing.SIGNATURE_FILE).read_text())
    assert sig["format"] == "newstag-signature/2"
    spec = yaml.safe_load((store["export"] / "MLmodel").read_text())
    assert sig["mlmodel"]["run_id"] == spec["run_id"] == store["run_id"]
    assert sig["mlmodel"]["scorer"] == f"artifacts/{SCORER_FILE}"
    assert sig["mlmodel"]["tagger_sha256"] == sha256_file(store["export"] / "artifacts" / TAGGER_FILE)
    code = (
        "import sys; from pipeline.loading import load_tagger; "
        f"tagger, info = load_tagger({str(store['export'])!r}); "
        "print(info.run_id, info.scorer_path.name, 'yaml' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60, check=True
    ).stdout.split()
    assert out == [store["run_id"], SCORER_FILE, "False"]


def test_a_signature_without_the_mlmodel_fields_still_loads_through_mlmodel(store, tmp_path: Path) -> None:
    folder = tmp_path / "older"
    shutil.copytree(store["export"], folder)
    sig_path = folder / signing.SIGNATURE_FILE
    sig = json.loads(sig_path.read_text())
    body = {"format": "newstag-signature/1", **{k: sig[k] for k in ("algorithm", "key_id", "files")}}
    # signed as newstag wrote signatures before they carried the MLmodel fields
    sig_path.write_text(json.dumps({**body, "hmac": signing._mac(signing.load_key(), body)}))
    assert signing.signed_mlmodel(folder) is None
    assert load_tagger(str(folder))[1].run_id == store["run_id"]


def test_mlmodel_fields_changed_in_the_signature_are_refused(store, tmp_path: Path) -> None:
    folder = tmp_path / "forged-signature"
    shutil.copytree(store["export"], folder)
    sig_path = folder / signing.SIGNATURE_FILE
    sig = json.loads(sig_path.read_text())
    sig["mlmodel"]["scorer"] = None  # would make a loader fall back to the joblib tagger
    sig_path.write_text(json.dumps(sig))
    assert signing.signed_mlmodel(folder) is None
    with pytest.raises(ModelError, match="the signature does not match its file list"):
        load_tagger(str(folder))


# ------------------------------------------------------------------------------------------------ read ahead


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "newstag-read-ahead"]


def test_a_scorer_read_ahead_is_checked_like_one_read_at_load_and_never_outlives_it(store, tmp_path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(store["export"], folder)
    scorer = folder / "artifacts" / SCORER_FILE
    intact = scorer.read_bytes()
    changed = intact[:-1] + bytes([intact[-1] ^ 1])
    scorer.write_bytes(changed)  # changed before it is read ahead: refused as if read at load
    loading.read_ahead(str(folder))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_tagger(str(folder))
    assert not loading._READ_AHEAD and not read_ahead_threads()
    scorer.write_bytes(intact)
    loading.read_ahead(str(folder))
    loading._READ_AHEAD[0].thread.join()
    scorer.write_bytes(changed)  # changed after: the loader parses the intact bytes it checked, read ahead
    assert load_tagger(str(folder))[1].run_id == store["run_id"]
    assert not loading._READ_AHEAD and not read_ahead_threads()
    with pytest.raises(ModelError, match="sha256 mismatch"):  # read at load: the changed bytes
        load_tagger(str(folder))
    scorer.write_bytes(intact)


def test_predict_drops_its_read_ahead_when_it_fails_before_the_load(store, tmp_path: Path) -> None:
    args = [
        "predict",
        "-m",
        str(store["export"]),
        "-i",
        str(tmp_path / "missing.jsonl"),
        "-o",
        "-",
        "--quiet",
    ]
    assert cli.main(args) == 2  # the input is checked before the model is loaded
    assert not loading._READ_AHEAD and not read_ahead_threads()


# ------------------------------------------------------------------------------------------------ serve


def serve(folder: Path, cwd: Path, timeout: float = 240.0) -> tuple[int | None, str, dict | None]:
    """``mlflow models serve`` on ``folder``: (exit code or None if it came up, its log, the answer to one
    request when it came up). The server is always stopped."""
    proc, port, log = start_serve(str(folder), cwd, cli_env())
    answer = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [["In Paris."]]}})
                        request = urllib.request.Request(
                            f"http://127.0.0.1:{port}/invocations",
                            data=body.encode(),
                            headers={"Content-Type": "application/json"},
                        )
                        with urllib.request.urlopen(request, timeout=60) as got:
                            answer = json.loads(got.read())
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
    finally:
        code = proc.poll()
        stop(proc)
    return code, log.read_text(errors="replace"), answer


@pytest.mark.slow
def test_mlflow_models_serve_refuses_every_attack_and_serves_the_intact_model(
    store, tmp_path: Path, monkeypatch
) -> None:
    code, log, answer = serve(store["export"], tmp_path)
    assert answer is not None and len(answer["predictions"]) == 1, log[-3000:]
    for kind in ATTACKS:
        folder, marker = tmp_path / kind.replace(" ", "-"), tmp_path / f"PAYLOAD-RAN-{kind.replace(' ', '-')}"
        shutil.copytree(store["export"], folder)
        needle = attack(kind, folder, marker, monkeypatch)
        code, log, answer = serve(folder, tmp_path)
        assert answer is None and code not in (None, 0), (kind, log[-3000:])
        assert needle in log and "refusing to load it" in log, (kind, log[-3000:])
        assert not marker.exists(), kind
