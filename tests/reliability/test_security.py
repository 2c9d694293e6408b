"""Tampered models are refused; servers bind loopback; nothing calls out.

The model tests use a tiny tagger trained here in a second on made-up sentences, logged to a temporary
SQLite store and exported, so every load path is covered: an exported folder, ``models:/NAME/VERSION``,
``mlflow.pyfunc.load_model`` and ``newstag evaluate``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from reliability_support import assert_clean_failure, run_cli

from pipeline import cli, signing, tracking
from pipeline.artifacts import SCORER_FILE, TAGGER_FILE
from pipeline.errors import ModelError
from pipeline.features import Featurizer
from pipeline.loading import load_tagger
from pipeline.model import NewsTagger

PLACES = {"Europe": ["Paris", "Berlin", "Madrid"], "Africa": ["Nairobi", "Lagos", "Accra"]}
THEMES = {"energy": ["oil output", "crude prices"], "agriculture": ["wheat harvest", "coffee growers"]}


def corpus(n: int, seed: int) -> tuple[list[str], dict[str, list[list[str]]]]:
    rng = random.Random(seed)
    docs, regions, themes = [], [], []
    for _ in range(n):
        region, theme = rng.choice(sorted(PLACES)), rng.choice(sorted(THEMES))
        docs.append(
            f"In {rng.choice(PLACES[region])}, {rng.choice(THEMES[theme])} rose on {rng.random():.3f}."
        )
        regions.append([region])
        themes.append([theme])
    return docs, {"regions": regions, "themes": themes}


@contextlib.contextmanager
def logged_store(root: Path, experiment: str) -> Iterator[dict]:
    """A tiny tagger logged and registered as ``m`` v1 in a temp SQLite store under ``root`` (the current
    MLFLOW_TRACKING_URI while inside), and exported to ``root/models``."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        (xt, yt), (xv, yv) = corpus(120, 1), corpus(40, 2)
        tagger = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=3, n_jobs=1)
        tagger.fit(xt, yt, xv, yv)
        tracking.setup_tracking(uri)
        exp = mlflow.MlflowClient().create_experiment(experiment, artifact_location=str(root / "artifacts"))
        mlflow.set_experiment(experiment_id=exp)
        with mlflow.start_run() as run:
            info = tracking.log_tagger(
                tagger, pd.DataFrame({"text": xt[:2], "title": ["a", "b"]}), tagger.describe()
            )
        version = mlflow.register_model(info.model_uri, "m").version
        export = tracking.export_model(info.model_uri, "m", str(version), True, str(root / "models"))
        yield {"uri": uri, "root": root, "info": info, "run_id": run.info.run_id, "export": export}
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[dict]:
    """``logged_store``, plus a labelled file of 20 documents for ``newstag evaluate``."""
    root = tmp_path_factory.mktemp("store")
    with logged_store(root, "security") as found:
        docs, gold = corpus(20, 3)
        labelled = root / "labelled.jsonl"
        labelled.write_text(
            "".join(
                json.dumps({"id": str(i), "text": d, **{a: gold[a][i] for a in gold}}) + "\n"
                for i, d in enumerate(docs)
            )
        )
        yield {**found, "labelled": labelled}


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def without_scorer(folder: Path) -> None:
    """Make an exported model folder look like one trained before scorers existed (joblib tagger only),
    re-signed as its owner would (``newstag trust``)."""
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = spec["flavors"]["python_function"]
    del pyfunc["config"]["scorer_sha256"], pyfunc["artifacts"]["scorer"]
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    (folder / "artifacts" / SCORER_FILE).unlink()
    signing.sign_folder(folder)


@pytest.fixture(params=["scorer", "joblib tagger"])
def tampered(store, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the exported model folder with one bit flipped in the file a loader reads: the scorer, or the
    joblib tagger of a model without a scorer."""
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(store["export"], folder)
    if request.param == "scorer":
        flip_byte(folder / "artifacts" / SCORER_FILE)
    else:
        without_scorer(folder)
        flip_byte(folder / "artifacts" / TAGGER_FILE)
    return folder


def test_an_intact_model_loads_everywhere(store) -> None:
    tagger, info = load_tagger(str(store["export"]))
    assert tagger.predict_labels(["In Paris, oil output rose."])["regions"] == [["Europe"]]
    assert info.sha256 == store["info"].sha256
    assert load_tagger("models:/m/1", store["uri"])[1].sha256 == store["info"].sha256
    assert (
        len(
            mlflow.pyfunc.load_model(str(store["export"])).predict(pd.DataFrame({"text": ["In Paris, oil."]}))
        )
        == 1
    )


def test_load_tagger_refuses_a_flipped_byte(tampered: Path) -> None:
    with pytest.raises(
        ModelError, match=r"sha256 mismatch .* the model file changed after training; refusing to load it"
    ):
        load_tagger(str(tampered))


def test_pyfunc_load_model_refuses_a_flipped_byte(tampered: Path) -> None:
    with pytest.raises(Exception, match="sha256 mismatch") as info:
        mlflow.pyfunc.load_model(str(tampered))
    assert "refusing to load it" in str(info.value)


@pytest.mark.parametrize("file, key", [(TAGGER_FILE, "tagger_sha256"), (SCORER_FILE, "scorer_sha256")])
def test_a_forged_mlmodel_hash_is_caught_by_the_run_record(store, file: str, key: str) -> None:
    """Changing a model file AND its hash in MLmodel, and re-signing the folder (``newstag trust`` by someone
    who holds the key): a store model still disagrees with its run's tag."""
    artifacts = Path(store["root"]) / "artifacts" / "models" / store["info"].model_id / "artifacts"
    blob, mlmodel, sig = artifacts / "artifacts" / file, artifacts / "MLmodel", artifacts / "newstag.sig"
    original_blob, original_spec, original_sig = blob.read_bytes(), mlmodel.read_text(), sig.read_bytes()
    try:
        flip_byte(blob)
        from pipeline import signing
        from pipeline.artifacts import sha256_file

        spec = yaml.safe_load(original_spec)
        spec["flavors"]["python_function"]["config"][key] = sha256_file(blob)
        mlmodel.write_text(yaml.safe_dump(spec))
        signing.sign_folder(artifacts)
        with pytest.raises(
            ModelError,
            match=rf"MLmodel records sha256 .* but its run recorded .*\(newstag\.{key}\); refusing to load it",
        ):
            load_tagger("models:/m/1", store["uri"])
    finally:
        blob.write_bytes(original_blob)
        mlmodel.write_text(original_spec)
        sig.write_bytes(original_sig)


@pytest.mark.parametrize("kind", ["scorer", "joblib tagger"])
def test_a_model_without_a_recorded_hash_is_refused(store, tmp_path: Path, kind: str) -> None:
    import shutil

    folder = tmp_path / "nohash"
    shutil.copytree(store["export"], folder)
    if kind == "joblib tagger":
        without_scorer(folder)
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    del spec["flavors"]["python_function"]["config"][f"{kind.split()[-1]}_sha256"]
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    signing.sign_folder(folder)  # signed by its owner: the recorded-hash check still applies
    with pytest.raises(
        ModelError, match=r"no sha256 recorded for this model; refusing to .* unverified file"
    ):
        load_tagger(str(folder))


def test_a_model_without_a_scorer_loads_its_verified_joblib_tagger(store, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(store["export"], folder)
    without_scorer(folder)
    tagger, info = load_tagger(str(folder))
    assert info.scorer_path is None and type(tagger).__name__ == "NewsTagger"
    scorer, _ = load_tagger(str(store["export"]))
    assert type(scorer).__name__ == "Scorer"
    docs = ["In Paris, oil output rose.", "Talks in Nairobi and Tokyo on tariffs."]
    assert tagger.predict_labels(docs) == scorer.predict_labels(docs)


def test_cli_evaluate_refuses_a_tampered_model_in_one_line(store, tampered: Path) -> None:
    proc = run_cli(
        ["evaluate", "--model", str(tampered), "--input", str(store["labelled"]), "--json"], tampered.parent
    )
    assert_clean_failure(proc, "evaluate", "sha256 mismatch", "refusing to load it")
    ok = run_cli(
        ["evaluate", "--model", str(store["export"]), "--input", str(store["labelled"]), "--json"],
        tampered.parent,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["n_docs"] == 20


# ------------------------------------------------------------------------------------------------ loopback


def test_cli_ui_binds_loopback_unless_told() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["ui"]).host == "127.0.0.1"
    assert parser.parse_args(["ui", "--host", "0.0.0.0"]).host == "0.0.0.0"  # only when the user says so


def test_no_other_command_has_a_host_option_defaulting_off_loopback() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest in ("host", "bind", "listen"):
                assert action.default in ("127.0.0.1", "localhost", "::1"), (
                    name,
                    action.dest,
                    action.default,
                )


def test_ui_server_is_started_on_the_given_host_only() -> None:
    ui = pytest.importorskip("pipeline.ui")
    assert inspect.signature(ui.run_ui).parameters["host"].default == "127.0.0.1"
    command = ui.server_command("sqlite:///mlflow.db", "127.0.0.1", 5999)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "0.0.0.0" not in command


def test_dask_local_cluster_binds_loopback(monkeypatch) -> None:
    predict = pytest.importorskip("pipeline.predict")
    distributed = pytest.importorskip("distributed")
    seen = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("stop here")

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    with pytest.raises(RuntimeError, match="stop here"):
        predict.DaskEngine(None, None, 2, None)
    assert seen["host"] == "127.0.0.1" and seen.get("dashboard_address") is None


def test_the_cli_turns_telemetry_off_and_hugging_face_offline(monkeypatch) -> None:
    for key in cli.QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true" and os.environ["DO_NOT_TRACK"] == "true"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


# ------------------------------------------------------------------------------------------------ what is logged


def test_paths_are_logged_relative_to_the_project_and_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    home = str(Path.home())
    text = f"{tmp_path}/configs/x.yaml {home}/corpora/y.jsonl relative/z.csv"
    assert tracking.portable(text) == "configs/x.yaml ~/corpora/y.jsonl relative/z.csv"


def test_a_git_remote_token_is_not_logged(monkeypatch, tmp_path: Path) -> None:
    git = pytest.importorskip("git")
    repo = git.Repo.init(tmp_path / "repo")
    repo.create_remote("origin", "https://someone:ghp_FAKEtoken123@github.com/org/newstag.git")
    script = tmp_path / "repo" / "run.py"
    script.write_text("")
    repo.index.add([str(script)])
    repo.index.commit(
        "init", author=git.Actor("t", "t@example.com"), committer=git.Actor("t", "t@example.com")
    )
    monkeypatch.setattr("sys.argv", [str(script)])
    tags = tracking.source_tags("newstag train")
    assert tags == {
        "mlflow.source.name": "newstag train",
        "mlflow.source.git.repoURL": "https://github.com/org/newstag.git",
    }
