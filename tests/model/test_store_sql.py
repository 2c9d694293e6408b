"""``models:/`` and ``runs:/`` read straight from a local SQLite store (pipeline.store_sql), without MLflow.

A tiny tagger is logged twice and registered as ``news-tagger`` v1 and v2 in a temporary store written by
MLflow itself; ``champion`` points at v1. What the direct lookup finds is compared with what MLflow's own
path (``tracking.download_model``) gives for the same URI.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline import signing, store_sql, tracking
from pipeline.artifacts import SHA_TAG, TAGGER_FILE, sha256_file
from pipeline.cli import QUIET_ENV
from pipeline.errors import ModelError, StoreError
from pipeline.loading import load_tagger

ROOT = Path(__file__).resolve().parents[2]
NAME = "news-tagger"
DOCS = ["In Nairobi, coffee growers rose.", "In Tokyo, oil output rose.", "In Paris, wheat harvest rose."]


@pytest.fixture(scope="module")
def store(tiny_tagger, tmp_path_factory) -> dict:
    """Two runs, each logging the tiny tagger; registered as v1 and v2; ``champion`` -> v1."""
    root = tmp_path_factory.mktemp("sqlstore")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    tracking.setup_tracking(uri)
    client = MlflowClient(uri, uri)
    exp = client.create_experiment("sql", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    runs = []
    for i in range(2):
        with mlflow.start_run() as run:
            info = tracking.log_tagger(tiny_tagger, pd.DataFrame({"text": DOCS[:2]}), tiny_tagger.describe())
            mlflow.set_tag("newstag.test_digest", f"digest-{i}")
            mlflow.set_tag("other.tag", "not ours")
        mlflow.register_model(info.model_uri, NAME)
        runs.append(run.info.run_id)
    client.set_registered_model_alias(NAME, "champion", "1")
    yield {"uri": uri, "root": root, "runs": runs, "client": client}
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_store(store: dict, dest: Path) -> str:
    """A copy of the store's database (its artifact locations still point at the original files)."""
    shutil.copy2(store["root"] / "mlflow.db", dest / "mlflow.db")
    return f"sqlite:///{dest / 'mlflow.db'}"


def sql(uri: str, statement: str, *args: object) -> None:
    con = sqlite3.connect(uri.removeprefix("sqlite:///"))
    with con:
        con.execute(statement, args)
    con.close()


@pytest.mark.parametrize(
    "uri", [f"models:/{NAME}@champion", f"models:/{NAME}/1", f"models:/{NAME}/2", "runs"]
)
def test_the_folder_found_is_the_one_mlflow_downloads(store, uri: str) -> None:
    if uri == "runs":
        uri = f"runs:/{store['runs'][1]}/model"
    found = store_sql.resolve(uri, store["uri"])
    assert found is not None
    mine, theirs = files(found.folder), files(tracking.download_model(uri, store["uri"]))
    # MLflow adds a note naming the registered model when it downloads models:/NAME/...; nothing else differs
    assert set(theirs) - set(mine) <= {"registered_model_meta"}
    assert {k: theirs[k] for k in mine} == mine
    assert "MLmodel" in mine and f"artifacts/{TAGGER_FILE}" in mine

    client = store["client"]
    version = client.get_model_version_by_alias(NAME, "champion") if "@" in uri else None
    if uri.startswith("models:/"):
        version = version or client.get_model_version(NAME, uri.rsplit("/", 1)[1])
        assert (found.name, found.version, found.run_id) == (NAME, str(version.version), version.run_id)
    else:
        assert (found.name, found.version, found.run_id) == (None, None, store["runs"][1])
    run_tags = client.get_run(found.run_id).data.tags
    assert found.tags == {k: v for k, v in run_tags.items() if k.startswith("newstag.")}
    assert "other.tag" not in found.tags and found.tags["newstag.test_digest"].startswith("digest-")
    assert found.tagger_sha256 == run_tags[SHA_TAG] == sha256_file(found.folder / "artifacts" / TAGGER_FILE)


def test_load_tagger_through_the_store_gives_the_logged_model(store) -> None:
    tagger, info = load_tagger(f"models:/{NAME}@champion", store["uri"])
    assert tagger.predict_labels(["In Paris, oil output rose."])["regions"] == [["Europe"]]
    assert info.uri == f"models:/{NAME}@champion" and info.run_id == store["runs"][0]
    assert info.sha256 == store["client"].get_run(store["runs"][0]).data.tags[SHA_TAG]


def test_moving_the_alias_finds_the_new_version(store) -> None:
    client = store["client"]
    before = store_sql.resolve(f"models:/{NAME}@champion", store["uri"])
    client.set_registered_model_alias(NAME, "champion", "2")
    try:
        after = store_sql.resolve(f"models:/{NAME}@champion", store["uri"])
    finally:
        client.set_registered_model_alias(NAME, "champion", "1")
    assert (before.version, before.run_id) == ("1", store["runs"][0])
    assert (after.version, after.run_id) == ("2", store["runs"][1])
    assert after.folder != before.folder
    assert str(after.folder) == client.get_model_version_download_uri(NAME, "2").removeprefix("file://")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            f"models:/{NAME}@champoin",
            r"'news-tagger' has no alias 'champoin' \(its aliases: @champion -> version 1\)",
        ),
        (f"models:/{NAME}/7", r"'news-tagger' has no version 7 \(versions: 1, 2\)"),
        (
            "models:/news-taggr@champion",
            r"no registered model named 'news-taggr' .*registered models: news-tagger\)",
        ),
        ("models:/news-taggr/1", r"no registered model named 'news-taggr'"),
        (f"models:/{NAME}", r"no logged model with id 'news-tagger' .*models:/NAME@ALIAS"),
        ("runs:/0123456789abcdef/model", r"no run '0123456789abcdef'"),
    ],
)
def test_what_the_store_lacks_is_named(store, uri: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as err:
        store_sql.resolve(uri, store["uri"])
    assert str(err.value).startswith(f"{uri}: cannot load the model: ")  # as through MLflow
    with pytest.raises(ModelError, match=message):  # the loader says the same
        load_tagger(uri, store["uri"])


def test_a_logged_run_without_that_model_is_named(store) -> None:
    with pytest.raises(ModelError, match=r"run \w+ logged no model 'nomodel'"):
        store_sql.resolve(f"runs:/{store['runs'][0]}/nomodel", store["uri"])


def test_a_deleted_version_is_not_found(store, tmp_path: Path) -> None:
    uri = copy_store(store, tmp_path)
    MlflowClient(uri, uri).delete_model_version(NAME, "2")
    with pytest.raises(ModelError, match=r"has no version 2 \(versions: 1\)"):
        store_sql.resolve(f"models:/{NAME}/2", uri)
    assert store_sql.resolve(f"models:/{NAME}/1", uri).version == "1"


def test_a_version_that_is_not_ready_is_refused(store, tmp_path: Path) -> None:
    uri = copy_store(store, tmp_path)
    sql(
        uri,
        "UPDATE model_versions SET status = 'FAILED_REGISTRATION', status_message = 'disk full' "
        "WHERE version = 1",
    )
    with pytest.raises(
        ModelError, match=r"version 1 of 'news-tagger' is FAILED_REGISTRATION, not READY: disk full"
    ):
        store_sql.resolve(f"models:/{NAME}@champion", uri)


def test_a_missing_database_is_an_error_and_no_file_is_created(
    store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ModelError, match=r"tracking store .*mlflow\.db not found"):
        store_sql.resolve(f"models:/{NAME}@champion")  # the default store: ./mlflow.db
    elsewhere = tmp_path / "sub" / "mlflow.db"
    with pytest.raises(ModelError, match="not found"):
        load_tagger(f"models:/{NAME}@champion", f"sqlite:///{elsewhere}")
    assert list(tmp_path.iterdir()) == []


def test_a_lookup_writes_nothing(store) -> None:
    db = store["root"] / "mlflow.db"
    before = (db.read_bytes(), sorted(p.name for p in db.parent.iterdir()))
    store_sql.resolve(f"models:/{NAME}@champion", store["uri"])
    with pytest.raises(ModelError):
        store_sql.resolve(f"models:/{NAME}@nope", store["uri"])
    assert (db.read_bytes(), sorted(p.name for p in db.parent.iterdir())) == before


@pytest.mark.parametrize(
    "tracking_uri",
    ["http://127.0.0.1:5000", "databricks", "file:///tmp/mlruns", "sqlite://", "postgresql://u@localhost/db"],
)
def test_a_store_that_is_not_a_sqlite_file_is_left_to_mlflow(tracking_uri: str) -> None:
    assert store_sql.resolve(f"models:/{NAME}@champion", tracking_uri) is None


@pytest.mark.parametrize(
    "uri", [f"models:/{NAME}/Production", f"models:/{NAME}/latest", f"models:/{NAME}@latest"]
)
def test_stages_and_latest_are_left_to_mlflow(store, uri: str) -> None:
    assert store_sql.resolve(uri, store["uri"]) is None


def test_workspaces_are_left_to_mlflow(store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
    assert store_sql.resolve(f"models:/{NAME}@champion", store["uri"]) is None


def test_remote_artifacts_are_left_to_mlflow(store, tmp_path: Path) -> None:
    uri = copy_store(store, tmp_path)
    sql(
        uri,
        "UPDATE model_versions SET storage_location = 's3://bucket/models/m-1/artifacts' WHERE version = 1",
    )
    assert store_sql.resolve(f"models:/{NAME}@champion", uri) is None
    assert store_sql.resolve(f"models:/{NAME}/2", uri) is not None


def test_a_schema_it_does_not_know_is_left_to_mlflow(store, tmp_path: Path) -> None:
    renamed = copy_store(store, tmp_path)
    sql(renamed, "ALTER TABLE model_versions RENAME COLUMN storage_location TO artifact_place")
    assert store_sql.resolve(f"models:/{NAME}@champion", renamed) is None
    other = tmp_path / "other.db"
    sql(f"sqlite:///{other}", "CREATE TABLE notes (body TEXT)")
    assert store_sql.resolve(f"models:/{NAME}@champion", f"sqlite:///{other}") is None
    garbage = tmp_path / "garbage.db"  # not an unknown schema but a damaged store: one line, no fallback
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db is not a SQLite database"):
        store_sql.resolve(f"models:/{NAME}@champion", f"sqlite:///{garbage}")


def test_an_mlmodel_naming_another_run_is_refused(store) -> None:
    """Both runs recorded the same hash, so only the run id tells a swapped MLmodel apart (the folder re-signed,
    as ``newstag trust`` would: the signature alone then passes)."""
    found = store_sql.resolve(f"models:/{NAME}/1", store["uri"])
    mlmodel, sig = found.folder / "MLmodel", found.folder / signing.SIGNATURE_FILE
    original, original_sig = mlmodel.read_text(), sig.read_bytes()
    try:
        mlmodel.write_text(original.replace(store["runs"][0], store["runs"][1]))
        signing.sign_folder(found.folder)
        with pytest.raises(ModelError, match=r"MLmodel names run \w+ but the store says run \w+ logged it"):
            load_tagger(f"models:/{NAME}/1", store["uri"])
    finally:
        mlmodel.write_text(original)
        sig.write_bytes(original_sig)


def test_the_default_store_is_the_one_tracking_uses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store_sql.tracking_uri() == tracking.tracking_uri()
    assert store_sql.tracking_uri("sqlite:///x.db") == tracking.tracking_uri("sqlite:///x.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////srv/m.db")
    assert store_sql.tracking_uri() == tracking.tracking_uri() == "sqlite:////srv/m.db"
    assert store_sql.sqlite_path("sqlite:///rel/m.db") == tmp_path / "rel" / "m.db"


def _run(args: list[str], store: dict, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    full.update(QUIET_ENV, MLFLOW_TRACKING_URI=store["uri"], **env)
    return subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=300, check=False)


def test_loading_from_the_store_does_not_import_mlflow(store, tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from pipeline.loading import load_tagger\n"
        f"tagger, info = load_tagger('models:/{NAME}@champion')\n"
        "print(json.dumps({'mlflow': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'sqlalchemy', 'alembic')), 'run': info.run_id}))\n"
    )
    done = _run([sys.executable, "-c", code], store, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"mlflow": [], "run": store["runs"][0]}


def test_newstag_predict_from_the_store_does_not_import_mlflow(store, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(DOCS)))
    out = tmp_path / "out.jsonl"
    newstag = str(Path(sys.executable).with_name("newstag"))
    args = [newstag, "predict", "-m", f"models:/{NAME}@champion", "-i", str(docs), "-o", str(out), "-q"]
    done = _run(args, store, tmp_path, PYTHONPROFILEIMPORTTIME="1")
    assert done.returncode == 0, done.stderr[-3000:]
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "pipeline.store_sql" in imported  # the profile is there, and the store was read directly
    assert not [m for m in imported if m.split(".")[0] in ("mlflow", "sqlalchemy", "alembic")]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert rows[2]["regions"] == ["Europe"]
