"""Promotion on real trainings, and the registry commands on the store they leave.

Four trainings (``train.train``, in process, a few seconds each) register four versions of one model in a
temporary SQLite store, on a generated corpus with one axis (four themes, each told by forty cue words, a
cue of another theme in most documents, so a model learns it only from enough examples):

- v1 is trained on a tenth of the training documents: no champion yet, promoted;
- v2 on all of them: clearly better on validation, promoted (the issue's third case);
- v3 reads titles too. Training titles name the theme half of the time, test titles always, validation
  titles never: v3 is better on test and not on validation, and is not promoted (the first case; the old
  rule, the sum of test micro-F1s, would have promoted it);
- v4 is v2 with model.C 0.7: it differs from v2 by less than the noise, and is not promoted (the second
  case), the tag saying why with the interval.

Then ``newstag models --json`` and ``newstag promote`` run on that store as a user runs them.
"""

from __future__ import annotations

import getpass
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from pipeline.cli import QUIET_ENV
from pipeline.config import load_config
from pipeline.tracking import setup_tracking
from pipeline.train import train

MODEL = "promo-model"
THEMES = ("energy", "farming", "trade", "health")
FILLER = [
    "officials",
    "said",
    "on",
    "monday",
    "that",
    "the",
    "plan",
    "would",
    "be",
    "reviewed",
    "again",
    "next",
    "week",
    "by",
    "committee",
    "members",
]


def cue(theme: str, k: int) -> str:
    """The k-th cue word of a theme (a made-up word only that theme's stories use)."""
    return f"{theme[:3]}{'aeiou'[k % 5]}{'nrst'[k // 5 % 4]}{k // 20}x"


def rows(n: int, split: str, seed: int, title_names_theme: float) -> list[dict[str, Any]]:
    """``n`` stories: ten filler words, two cues of its theme, often one cue of another theme; the title
    names the theme with probability ``title_names_theme``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        theme = rng.choice(THEMES)
        words = rng.sample(FILLER, 10) + [cue(theme, rng.randrange(40)) for _ in range(2)]
        if rng.random() < 0.6:
            words.append(cue(rng.choice([t for t in THEMES if t != theme]), rng.randrange(40)))
        rng.shuffle(words)
        title = f"headline {theme if rng.random() < title_names_theme else rng.choice(FILLER)}"
        out.append(
            {"id": f"{split}-{i}", "title": title, "text": " ".join(words), "split": split, "theme": [theme]}
        )
    return out


def write_jsonl(path: Path, parts: list[list[dict[str, Any]]]) -> Path:
    with path.open("w") as f:
        for part in parts:
            for row in part:
                f.write(json.dumps(row) + "\n")
    return path


def write_config(root: Path, name: str, data: Path) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        f"corpus: {{format: jsonl, path: {data}, split_scheme: source, split_field: split, "
        "label_fields: {theme: theme}}\n"
        "axes: {themes: {source: theme, min_support: 2}}\n"
        "features: {gazetteer: {enabled: false}}\n"
        "model: {n_jobs: 1}\n"
        f"processed_dir: {root / 'processed'}\n"
        f"tracking: {{experiment: promo, registered_model: {MODEL}, export_dir: {root / 'models'}}}\n"
    )
    return path


@dataclass
class Registry:
    root: Path
    uri: str
    configs: dict[str, Path]
    runs: dict[str, dict[str, Any]]  # what train returned, by version

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
        return {**env, **QUIET_ENV}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def models(self) -> dict[str, dict[str, Any]]:
        done = self.cli("models", MODEL, "--tracking-uri", self.uri, "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        return {v["version"]: v for v in json.loads(done.stdout)["versions"]}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("promotion")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    validation, test = rows(600, "validation", 2, 0.0), rows(600, "test", 3, 1.0)
    training = rows(1000, "train", 1, 0.5)
    full = write_jsonl(root / "full.jsonl", [training, validation, test])
    tenth = write_jsonl(root / "tenth.jsonl", [training[:100], validation, test])
    configs = {"tenth": write_config(root, "tenth", tenth), "full": write_config(root, "full", full)}
    plan = {
        "1": ("tenth", ["features.include_title=false"]),
        "2": ("full", ["features.include_title=false"]),
        "3": ("full", ["features.include_title=true"]),
        "4": ("full", ["features.include_title=false", "model.C=0.7"]),
    }
    runs = {}
    for version, (name, sets) in plan.items():
        cfg = load_config(configs[name], sets)
        runs[version] = train(cfg, str(configs[name]), sets, tracking_uri=uri, say=lambda _: None)
        assert runs[version]["registry"]["version"] == version
    return Registry(root, uri, configs, runs)


def micro(run: dict[str, Any], split: str) -> float:
    return run["metrics"][f"{split}/themes/micro_f1"]


def version_of(registry: Registry, version: str) -> Any:
    setup_tracking(registry.uri)
    return MlflowClient().get_model_version(MODEL, version)


def test_clearly_better_on_validation_is_promoted(registry: Registry) -> None:
    first, second = registry.runs["1"]["registry"], registry.runs["2"]["registry"]
    assert (first["alias"], first["reason"]) == ("champion", "no champion yet")
    assert second["promoted"] and second["alias"] == "champion" and second["champion_version"] == "1"
    [c] = second["comparisons"]
    assert c["verdict"] == "better" and c["low"] > 0.2 and c["n_docs"] == 600
    assert second["reason"].startswith(f"v2 beats v1 on validation themes micro-F1 by +{c['diff']:.3f} ")
    assert "v1 was trained on other data" in second["reason"]  # a tenth of the training file
    mv = version_of(registry, "2")
    assert mv.tags["newstag.decision_reason"] == second["reason"] + ": champion"
    assert mv.description.startswith("# Model card: promo-model v2")  # the card, with the decision in it
    assert f"**Decision**: {second['reason']}: champion" in mv.description


def test_better_on_test_but_not_on_validation_is_not_promoted(registry: Registry) -> None:
    champion, titles = registry.runs["2"], registry.runs["3"]
    assert micro(titles, "test") > micro(champion, "test") + 0.03  # the old rule would have promoted it
    assert micro(titles, "validation") < micro(champion, "validation")
    promo = titles["registry"]
    assert not promo["promoted"] and promo["alias"] == "challenger" and promo["champion_version"] == "2"
    [c] = promo["comparisons"]
    # both scored on the same validation documents: the champion re-scored scores what its own run logged
    assert c["challenger"] == pytest.approx(micro(titles, "validation"))
    assert c["champion"] == pytest.approx(micro(champion, "validation"))
    assert c["verdict"] != "better"
    assert promo["reason"].startswith("v3 is worse than v2 on validation themes micro-F1 by -")
    assert "test" not in promo["reason"]


def test_within_the_noise_is_not_promoted_and_the_tag_says_why(registry: Registry) -> None:
    promo = registry.runs["4"]["registry"]
    [c] = promo["comparisons"]
    assert c["diff"] != 0 and c["low"] <= 0 <= c["high"] and c["verdict"] == "within noise"
    assert not promo["promoted"] and promo["alias"] == "challenger"
    setup_tracking(registry.uri)
    tags = MlflowClient().get_run(registry.runs["4"]["run_id"]).data.tags
    assert tags["newstag.decision"] == "not promoted"
    reason = tags["newstag.decision_reason"]
    assert reason.startswith("v4 does not beat v2 beyond the noise on validation: themes micro-F1 ")
    digits = 3 if max(abs(c["diff"]), abs(c["low"]), abs(c["high"])) >= 0.01 else 4
    assert f"[{c['low']:.{digits}f}, {c['high']:.{digits}f}]" in reason
    assert reason.endswith("(95% intervals include 0): challenger")


def test_models_lists_the_versions_and_promote_overrides_by_hand(registry: Registry) -> None:
    versions = registry.models()
    assert list(versions) == ["4", "3", "2", "1"]
    assert {v: versions[v]["aliases"] for v in versions} == {
        "4": ["challenger"],
        "3": [],
        "2": ["champion"],
        "1": [],
    }
    assert [versions[v]["decision"] for v in "1234"] == [
        "promoted",
        "promoted",
        "not promoted",
        "not promoted",
    ]
    assert versions["2"]["reason"].startswith("v2 beats v1 on validation themes micro-F1 by +")
    assert versions["2"]["comparisons"][0]["verdict"] == "better"
    fingerprints = [versions[v]["data_fingerprint"] for v in "1234"]
    assert fingerprints[0] and fingerprints[0] != fingerprints[1] == fingerprints[2] == fingerprints[3]
    assert all(versions[v]["created"].endswith("UTC") and versions[v]["override"] is None for v in versions)

    table = registry.cli("models", "-c", str(registry.configs["full"]), "--tracking-uri", registry.uri)
    assert table.returncode == 0, table.stderr[-3000:]
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"{MODEL} in sqlite:///") and lines[0].endswith("4 version(s)")
    assert lines[1].split() == ["version", "aliases", "created", "data", "decision"]
    v2 = next(i for i, line in enumerate(lines) if line.startswith("v2 "))
    assert "champion" in lines[v2] and lines[v2].endswith("promoted")
    assert lines[v2 + 1].strip().startswith("v2 beats v1 on validation")

    why = "the newsroom prefers the smaller C; within the noise on validation"
    export_dir = registry.root / "models"
    done = registry.cli(
        "promote",
        MODEL,
        "v4",
        "--reason",
        why,
        "--tracking-uri",
        registry.uri,
        "--export-dir",
        str(export_dir),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == f"{MODEL}: champion v2 -> v4 (by hand)"
    setup_tracking(registry.uri)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "4"
    assert "challenger" not in client.get_registered_model(MODEL).aliases  # v4 no longer waits
    mv = client.get_model_version(MODEL, "4")
    assert mv.tags["newstag.decision"] == "promoted by hand"
    assert (mv.tags["newstag.override_by"], mv.tags["newstag.override_reason"]) == (getpass.getuser(), why)
    assert mv.tags["newstag.override_replaced"] == "v2"
    assert mv.tags["newstag.previous_decision"].startswith("v4 does not beat v2 beyond the noise")
    assert mv.description.startswith(
        f"**Champion by hand**: v4 made champion by hand by {getpass.getuser()} on "
    )
    assert f": {why} (replacing v2)" in mv.description.splitlines()[0]
    assert "v4 does not beat v2" in mv.description  # the automatic decision stays below
    run_tags = client.get_run(registry.runs["4"]["run_id"]).data.tags
    assert run_tags["newstag.decision"] == "promoted by hand"
    link = export_dir / MODEL / "champion"
    assert link.resolve().name == "v4" and (link / "MLmodel").is_file()

    after = registry.models()
    assert after["4"]["aliases"] == ["champion"] and after["2"]["aliases"] == []
    assert after["4"]["override"]["reason"] == why and after["4"]["decision"] == "promoted by hand"
    again = registry.cli("promote", MODEL, "4", "--reason", why, "--tracking-uri", registry.uri)
    assert again.returncode == 0 and "already is the champion" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["promote", MODEL, "9", "--reason", "x"],
            f"newstag promote: {MODEL} has no version 9 (versions: 1, 2, 3, 4)",
        ),
        (
            ["promote", "nope", "1", "--reason", "x"],
            "newstag promote: no registered model 'nope' in sqlite:///",
        ),
        (["promote", MODEL, "1", "--reason", " "], "newstag promote: --reason must say why"),
        (["models", "nope"], "newstag models: no registered model 'nope' in sqlite:///"),
    ],
)
def test_registry_commands_refuse_unknown_names_and_versions(
    registry: Registry, args: list[str], message: str
) -> None:
    done = registry.cli(*args, "--tracking-uri", registry.uri)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(message), line


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "models", MODEL, "--tracking-uri", uri],
        cwd=tmp_path,
        env={**os.environ, **QUIET_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "no tracking store there" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_bad_promotion_metric_stops_train_before_any_work(tmp_path: Path) -> None:
    config = write_config(tmp_path, "bad", write_jsonl(tmp_path / "d.jsonl", [rows(10, "train", 0, 0.0)]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "train",
            "-c",
            str(config),
            "--set",
            "tracking.promotion.metrics=[regions/micro_f1]",
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
        ],
        cwd=tmp_path,
        env={**os.environ, **QUIET_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tracking.promotion.metrics: 'regions/micro_f1': 'regions' is not an axis" in done.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "processed").exists()


def test_configs_that_train_on_validation_say_their_comparison_is_in_sample() -> None:
    """R90 folds validation into training (thresholds.cv_include_validation) and keeps no out-of-fold
    predictions: its decisions say they stand on in-sample validation documents."""
    from pipeline.promotion import Rule, Sample, decide
    from pipeline.train import comparison_basis

    configs = Path(__file__).resolve().parents[2] / "configs"
    assert comparison_basis(load_config(configs / "reuters-r90.yaml")) == "in-sample validation"
    assert comparison_basis(load_config(configs / "reuters.yaml")) == "validation"
    gold = [["a"]] * 50
    d = decide(
        [Sample("topics", None, gold, gold, [[]] * 50)],
        Rule(("topics/micro_f1",)),
        "v2",
        "v1",
        "in-sample validation",
    )
    assert d.sentence().startswith("v2 beats v1 on in-sample validation topics micro-F1 by +1.000")
    assert d.basis == "in-sample validation"
