"""Two ``newstag train`` at once on one SQLite store, and promotions racing for the ``champion`` alias.

Promise: both runs finish and are recorded whole (params, metrics, model, a registry version each), the
dataset both build at the same moment is stored once, intact; and when runs promote at the same time the
alias ends on the best of them (``pipeline.tracking.promotion_lock`` serialises read-compare-write).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import BBC, WEAK, cli_env, make_sandbox, message_lines, start_cli

pytestmark = pytest.mark.slow

MODEL = "news-tagger-bbc"


def test_two_trains_at_once_both_finish_and_are_recorded_whole(tmp_path: Path, bbc_dir: Path) -> None:
    root = make_sandbox(tmp_path / "project", bbc_dir)
    # weak enough to lose on validation by more than the noise, whichever run registers first
    settings = {"weak": ["--set", "model.C=0.002", *WEAK], "strong": ["--set", "model.C=0.5"]}
    procs = {name: start_cli(["train", *BBC, *extra, "--json"], root) for name, extra in settings.items()}
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, (name, stderr[-3000:])
        assert "database is locked" not in stderr and "Traceback" not in stderr, stderr[-3000:]
        assert not [line for line in message_lines(stderr) if "WARNING" in line and "mlflow.store" in line]
        results[name] = json.loads(stdout)

    from mlflow import MlflowClient

    from pipeline.loading import load_tagger
    from pipeline.tracking import setup_tracking

    uri = f"sqlite:///{root / 'mlflow.db'}"
    setup_tracking(uri)
    client = MlflowClient()
    versions = {}
    for name, result in results.items():
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["model.C"] in ("0.002", "0.5") and len(run.data.params) > 40
        assert run.data.metrics["test/themes/micro_f1"] == pytest.approx(
            result["metrics"]["test/themes/micro_f1"]
        )
        artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "reports", "figures"} <= artifacts, artifacts
        version = run.data.tags["newstag.registered_version"]
        assert client.get_model_version(MODEL, version).run_id == run.info.run_id
        load_tagger(f"models:/{MODEL}/{version}", uri)
        versions[name] = version
    assert sorted(versions.values()) == ["1", "2"]
    scores = {name: results[name]["metrics"]["test/themes/micro_f1"] for name in results}
    assert scores["strong"] > scores["weak"]
    champion = str(client.get_model_version_by_alias(MODEL, "champion").version)
    assert champion == versions["strong"]
    link = root / "models" / MODEL / "champion"
    assert link.resolve().name == f"v{champion}" and (link / "MLmodel").is_file()
    # the dataset both runs built at the same moment is there once, and whole
    processed = root / "data" / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["bbc"]
    report = json.loads((processed / "bbc" / "report.json").read_text())
    assert sum(report["documents"].values()) == report["n_read"] == 2225


RACER = r"""
import json, sys, time
import mlflow, pandas as pd
from mlflow import MlflowClient
from pipeline import tracking
from pipeline.features import Featurizer
from pipeline.model import NewsTagger
from pipeline.promotion import Rule, Sample

from pathlib import Path
uri, score, barrier, n = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
tracking.setup_tracking(uri)
mlflow.set_experiment("race")
docs = [f"In Paris oil rose {i}" for i in range(20)] + [f"In Lagos wheat fell {i}" for i in range(20)]
gold = {"themes": [["energy"]] * 20 + [["agriculture"]] * 20}
tagger = NewsTagger(Featurizer(word_min_df=1), axes=("themes",), min_support=1, n_jobs=1, threshold_strategy="fixed")
tagger.fit(docs, gold)
N = 400  # validation documents: a model of score s finds the first round(s * N) of them


def found(s):
    k = round(s * N)
    return [["energy"]] * k + [[]] * (N - k)


def champion_samples(model_uri):  # the champion "re-scored": its recorded score read back from its run
    client = MlflowClient()
    run_id = client.get_model_version("race", model_uri.rsplit("/", 1)[1]).run_id
    old = client.get_run(run_id).data.metrics["validation/themes/micro_f1"]
    return [Sample("themes", None, [["energy"]] * N, found(score), found(old))]


with mlflow.start_run() as run:
    info = tracking.log_tagger(tagger, pd.DataFrame({"text": docs[:1]}), {})
    mlflow.log_metric("validation/themes/micro_f1", score)
    tracking.ensure_registered_model("race", "racing promotions")
    (barrier / f"ready-{score}").touch()
    while len(list(barrier.glob("ready-*"))) < n:  # all racers go within a few ms of the last one ready
        time.sleep(0.005)
    promo = tracking.register_and_promote(
        "race", info.model_uri, run.info.run_id, champion_samples, Rule(("themes/micro_f1",))
    )
print(json.dumps({"score": score, "version": promo.version, "promoted": promo.promoted, "reason": promo.reason}))
"""


def test_promotions_racing_for_the_alias_end_on_the_best(tmp_path: Path) -> None:
    """Three processes register and promote at the same instant: the champion is the best score."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    create = (
        f"import mlflow; mlflow.set_tracking_uri({uri!r}); "
        f"mlflow.MlflowClient().create_experiment('race', artifact_location={str(tmp_path / 'artifacts')!r})"
    )
    subprocess.run([sys.executable, "-c", create], cwd=tmp_path, env=cli_env(), check=True, timeout=120)
    scores = [0.81, 0.93, 0.87]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), uri, str(s), str(barrier), str(len(scores))],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in scores
    ]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))

    from mlflow import MlflowClient

    from pipeline.tracking import setup_tracking

    setup_tracking(uri)
    champion = str(MlflowClient().get_model_version_by_alias("race", "champion").version)
    best = max(results, key=lambda r: r["score"])
    assert champion == best["version"], results
    # each decision was taken against the champion of its moment: at most one "no champion yet"
    assert sum(r["reason"] == "no champion yet" for r in results) == 1, results
