"""What a training run shows a reader in MLflow: summary metrics only, one per-label table per split, the
model card (artifact and version description), a name that says which setting changed, each version's role,
the runs-table view, and the error of a run that failed. Real trainings on two small corpora we write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline import tracking
from pipeline.config import load_config
from pipeline.train import train

ROOT = Path(__file__).resolve().parents[2]
WIRE = {
    "war": "Troops shelled the border town and drone strikes hit a depot near {place}.",
    "vote": "Voters queued to elect a parliament and a president in {place}.",
}
QUAKE = "An earthquake and its aftershocks flattened houses around Lima."
BLOG = {
    "vote": "The campaign enters its last week as candidates court undecided voters.",
    "migration": "Asylum seekers wait at the border crossing as deportation flights resume.",
}
PLACES = ["Kyiv", "Lagos", "Lima", "Manila"]


def _rows(templates: dict[str, str], n: int, prefix: str) -> str:
    rows = []
    for i in range(n):
        kind = list(templates)[i % len(templates)]
        split = "test" if i % 5 == 0 else "validation" if i % 5 == 1 else "train"
        text = templates[kind].format(place=PLACES[i % 4]) + f" Item {i}."
        date = f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}"
        rows.append({"id": f"{prefix}{i}", "text": text, "topic": kind, "split": split, "date": date})
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two corpora: ``wire`` (war, vote, quake) and ``blog`` (vote, migration); quake is too rare to keep."""
    quakes = [
        {"id": f"q{i}", "text": QUAKE, "topic": "quake", "split": "train", "date": "2025-06-01"}
        for i in (1, 2)
    ]
    (tmp_path / "wire.jsonl").write_text(
        _rows(WIRE, 100, "w") + "".join(json.dumps(r) + "\n" for r in quakes)
    )
    (tmp_path / "blog.jsonl").write_text(_rows(BLOG, 60, "b"))
    (tmp_path / "themes.yaml").write_text(
        "themes:\n  conflict: [war]\n  politics: [vote]\n  disasters: [quake]\n  migration: [migration]\n"
    )
    path = tmp_path / "two.yaml"
    path.write_text(
        f"""
name: two
description: Two small corpora.
processed_dir: {tmp_path / "processed"}
corpora:
  - {{name: wire, format: jsonl, path: {tmp_path / "wire.jsonl"}, split_field: split, date_field: date,
      label_fields: {{topic: topic}}, axes: {{themes: {{source: topic}}}}}}
  - {{name: blog, format: jsonl, path: {tmp_path / "blog.jsonl"}, split_field: split, date_field: date,
      label_fields: {{topic: topic}}, axes: {{themes: {{source: topic}}}}}}
axes:
  themes: {{taxonomy: {tmp_path / "themes.yaml"}, min_support: 3}}
features: {{word: {{min_df: 1}}, gazetteer: {{enabled: false}}}}
tracking: {{experiment: two, registered_model: two-tagger, export_dir: {tmp_path / "models"}}}
"""
    )
    return path


def _train(config: Path, uri: str, sets: list[str] | None = None) -> dict:
    cfg = load_config(config, sets or [])
    return train(cfg, config_path=str(config), overrides=sets or [], tracking_uri=uri, say=lambda _: None)


def test_a_run_logs_summary_metrics_label_tables_and_a_model_card(
    config: Path, tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = _train(config, tracking_uri)
    client = MlflowClient(tracking_uri)
    run = client.get_run(first["run_id"])

    metrics = run.data.metrics
    assert not [k for k in metrics if "/f1/" in k]  # no per-label metric
    assert "validation/themes/micro_f1" in metrics and "test/wire/themes/micro_f1" in metrics
    assert "test/blog/themes/top1_accuracy" in metrics
    assert "test/wire/themes/micro_precision" not in metrics  # per corpus: F1 and top-1 only
    # per split: 8 summary + 2 top-1 metrics, then 4 per corpus; data/, time/ and model/ metrics: 6
    assert len(metrics) == 2 * 10 + 2 * 2 * 4 + 6

    files = {f.path for f in client.list_artifacts(run.info.run_id, "tables")}
    assert files == {"tables/validation_labels.json", "tables/test_labels.json"}
    table = json.loads(
        Path(client.download_artifacts(run.info.run_id, "tables/test_labels.json")).read_text()
    )
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert {r["corpus"] for r in rows} == {"all", "wire", "blog"}
    politics = next(r for r in rows if (r["corpus"], r["label"]) == ("all", "politics"))
    assert politics["support"] > 0 and 0 < politics["threshold"] < 1
    assert politics["f1"] == pytest.approx(
        first["reports"]["test"]["axes"]["themes"]["per_label"]["politics"]["f1"]
    )

    card = Path(client.download_artifacts(run.info.run_id, "model_card.md")).read_text()
    version = client.get_model_version("two-tagger", first["registry"]["version"])
    assert version.description == card
    assert card.startswith("# Model card: two-tagger v1")
    assert "**Decision**: no champion yet: champion" in card
    assert "| wire | 62 | 20 | 20 | 2025-" in card
    assert "disasters (2)" in card and "fewer than 3 training documents" in card
    assert "**blog** cannot say themes conflict" in card  # the blog never writes about war
    whole = first["reports"]["test"]["axes"]["themes"]["micro_f1"]
    assert "| themes | all | " in card and f"{whole:.3f} [" in card

    assert run.info.run_name.startswith("two · ")  # nothing set, nothing differs from the file
    assert run.data.tags["newstag.config_diff"] == "none"
    assert run.data.tags["newstag.role"] == "champion (v1)"
    view = json.loads(client.get_experiment(run.info.experiment_id).tags["mlflow.sharedViewState.newstag"])
    assert "metrics.`validation/themes/micro_f1`" in view["selectedColumns"]
    assert "tags.`newstag.role`" in view["selectedColumns"]
    found = tracking.latest_runs(tracking_uri, "two", "two-tagger")
    assert found.runs_view == "newstag"


def test_run_names_say_what_changed_and_roles_follow_the_champion(
    config: Path, tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = _train(config, tracking_uri, ["model.C=0.01"])
    client = MlflowClient(tracking_uri)
    name = client.get_run(first["run_id"]).info.run_name
    assert name.startswith("two · model.C=0.01 · ") and len(name) < 80  # against the config file
    second = _train(config, tracking_uri, ["model.C=2"])
    run = client.get_run(second["run_id"])
    assert run.info.run_name.startswith("two · model.C=2.0 vs v1 · ")  # against the champion's params
    assert run.data.tags["newstag.config_diff"] == "model.C: 0.01 -> 2.0"
    assert run.data.tags["newstag.config_diff_against"] == "champion v1"
    champion = tracking.champion("two-tagger")
    c = client.get_run(champion.run_id).data.params["model.C"]
    same = _train(config, tracking_uri, [f"model.C={c}"])
    again = client.get_run(same["run_id"]).info.run_name
    assert (
        again
        == f"two · same config as v{champion.version} · {load_config(config, [f'model.C={c}']).fingerprint()[:6]}"
    )
    champion = tracking.champion("two-tagger").version
    roles = {
        str(v.version): client.get_run(v.run_id).data.tags["newstag.role"]
        for v in client.search_model_versions("name = 'two-tagger'")
    }
    assert sum(r.startswith("champion") for r in roles.values()) == 1
    assert roles[str(champion)] == f"champion (v{champion})"


def test_a_failed_run_carries_its_error(
    config: Path, tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should go")
    with pytest.raises(OSError):
        _train(config, tracking_uri, [f"tracking.export_dir={blocker}"])
    client = MlflowClient(tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("two").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["newstag.failed_stage"] == "export"
    assert run.data.tags["newstag.error"].startswith("NotADirectoryError: ")
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**Failed** at stage `export`: `NotADirectoryError:") and "Traceback" in note
