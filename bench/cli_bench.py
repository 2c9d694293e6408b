"""File-to-file measurements through the batch CLI: ``newstag predict --model DIR --input X.jsonl --output Y.jsonl``.

The model folders come from ``newstag train`` run once per config against a tracking store of the benchmark's
own, one per config (``bench/out/stores/<config name>/mlflow.db``, artifacts beside it), exporting to
``bench/out/models``; an export is reused while the config, the taxonomies and the model code are unchanged
(``*.stamp.json``). A stale export is retrained into an emptied store, so the new version is the champion
(``models:/<registered name>@champion`` in that store is the exported model): in a store that kept the old
champion, a retrained model scoring the same would lose the tie and stay a challenger.

Every CLI run is a subprocess whose whole process tree (the CLI and its ``--jobs`` workers) is sampled with
psutil every 0.1 s: the peak of the summed RSS is the figure reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT, quiet_env, sample_tree_rss, venv_bin

STORES = OUT / "stores"
MODELS = OUT / "models"
IO = OUT / "io"
LOGS = OUT / "logs"
# the files whose change makes a cached export stale: what the model is, how it is saved and exported
# (the compiled scorer and its place index included), and how it is loaded
MODEL_CODE = (
    "config.py",
    "features.py",
    "model.py",
    "gazetteer.py",
    "places.py",
    "scoring.py",
    "taxonomy.py",
    "artifacts.py",
    "train.py",
    "tracking.py",
    "pyfunc.py",
    "loading.py",
    "signing.py",
)


# --------------------------------------------------------------------------- is the CLI there?


def cli_status() -> dict[str, Any]:
    """Whether ``newstag predict`` can run here (its module exists and ``--help`` exits 0)."""
    module = ROOT / "pipeline" / "predict" / "__init__.py"
    if not module.is_file():
        return {"available": False, "reason": "pipeline/predict/ does not exist yet"}
    try:
        res = subprocess.run(
            [venv_bin("newstag"), "predict", "--help"],
            cwd=ROOT,
            env=quiet_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"available": False, "reason": f"newstag predict --help failed: {exc}"}
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        return {"available": False, "reason": f"newstag predict --help exited {res.returncode}: {tail[0]}"}
    return {"available": True, "reason": ""}


# --------------------------------------------------------------------------- exported models


def _stamp(config: str) -> str:
    from pipeline.config import load_config

    h = hashlib.sha256()
    cfg_path = ROOT / config
    h.update(cfg_path.read_bytes())
    cfg = load_config(cfg_path)
    files = [ROOT / a.taxonomy for a in cfg.axes.values() if a.taxonomy]
    if cfg.features.gazetteer.enabled:
        files.append(ROOT / cfg.features.gazetteer.taxonomy)
    files += [ROOT / "pipeline" / name for name in MODEL_CODE]
    for path in sorted(set(files)):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()[:16]


def store_dir(config_name: str) -> Path:
    """The folder of a config's benchmark store (its SQLite file and artifacts)."""
    return STORES / config_name


def store_uri(config_name: str) -> str:
    """The tracking URI of a config's benchmark store."""
    return f"sqlite:///{store_dir(config_name) / 'mlflow.db'}"


def _ensure_experiment(name: str, config_name: str) -> None:
    """Create the experiment in the config's benchmark store with its artifacts beside it (not ./mlruns)."""
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    uri = store_uri(config_name)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(name) is None:
        artifacts = store_dir(config_name) / "mlartifacts" / name
        client.create_experiment(name, artifact_location=artifacts.resolve().as_uri())


def export_model(config: str, say: Callable[[str], None]) -> dict[str, Any]:
    """The exported model folder of ``config`` (``newstag train`` when no valid cached export exists)."""
    from pipeline.config import load_config

    MODELS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    cfg = load_config(ROOT / config)
    stamp_file = MODELS / f"{cfg.name}.stamp.json"
    stamp = _stamp(config)
    if stamp_file.is_file():
        cached = json.loads(stamp_file.read_text())
        exported = (ROOT / cached["export_path"] / "MLmodel").is_file()
        if cached.get("stamp") == stamp and exported and (store_dir(cfg.name) / "mlflow.db").is_file():
            say(f"  reusing exported model {cached['export_path']}")
            return {**cached, "reused": True}
    # a fresh store and export folder: the retrained model becomes the champion, as version 1
    shutil.rmtree(store_dir(cfg.name), ignore_errors=True)
    shutil.rmtree(MODELS / cfg.tracking.registered_model, ignore_errors=True)
    store_dir(cfg.name).mkdir(parents=True)
    _ensure_experiment(cfg.tracking.experiment, cfg.name)
    cmd = [
        venv_bin("newstag"),
        "train",
        "--config",
        config,
        "--tracking-uri",
        store_uri(cfg.name),
        "--set",  # absolute: a relative one would lie beside the store
        f"tracking.export_dir={MODELS}",
        "--set",  # the project's prepared data, shared with the other bench steps
        f"processed_dir={ROOT / 'data' / 'processed'}",
        "--json",
    ]
    say(f"  newstag train --config {config} (export to {MODELS.relative_to(ROOT)})")
    log = LOGS / f"train-{cfg.name}.log"
    with log.open("w") as err:
        res = subprocess.run(
            cmd, cwd=ROOT, env=quiet_env(), stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    if res.returncode != 0:
        raise RuntimeError(f"newstag train failed for {config} (exit {res.returncode}); see {log}")
    result = json.loads(res.stdout)
    export = result.get("export_path")
    if not export:
        raise RuntimeError(f"newstag train exported nothing for {config}: {result.get('decision')}")
    export_path = Path(export)
    if export_path.is_absolute():
        export_path = export_path.relative_to(ROOT)
    info = {
        "config": config,
        "stamp": stamp,
        "export_path": str(export_path),
        "train_seconds": result.get("train_seconds"),
        "decision": result.get("decision"),
    }
    stamp_file.write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "reused": False}


# --------------------------------------------------------------------------- input files


def write_jsonl(docs: Mapping[str, Sequence[Any]], path: Path, n: int | None = None) -> int:
    """Write ``docs`` (id, title, text) as JSONL, streaming; with ``n``, cycle through them to ``n`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = len(docs["id"])
    total = m if n is None else n

    def rows() -> Iterator[str]:
        for i in range(total):
            j, rep = i % m, i // m
            doc_id = docs["id"][j] if n is None else f"{docs['id'][j]}#{rep}"
            yield json.dumps({"id": doc_id, "title": docs["title"][j], "text": docs["text"][j]}) + "\n"

    with path.open("w", encoding="utf-8", buffering=1 << 20) as fh:
        batch: list[str] = []
        for line in rows():
            batch.append(line)
            if len(batch) >= 10_000:
                fh.write("".join(batch))
                batch.clear()
        fh.write("".join(batch))
    return total


# --------------------------------------------------------------------------- one CLI run


def run_predict(model_dir: str, input_path: Path, output_path: Path, jobs: int = 2) -> dict[str, Any]:
    """``newstag predict --model DIR --input X --output Y --jobs J --quiet``: wall time and peak RSS of the tree."""
    LOGS.mkdir(parents=True, exist_ok=True)
    cmd = [
        venv_bin("newstag"),
        "predict",
        "--model",
        model_dir,
        "--input",
        str(input_path),
        "--output",
        str(output_path),
        "--jobs",
        str(jobs),
        "--quiet",
    ]
    log = LOGS / f"predict-{input_path.stem}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=err)
        stats = sample_tree_rss(proc, 0.1)
    stats["exit_code"] = proc.returncode
    stats["command"] = " ".join(["newstag", *cmd[1:]]).replace(str(input_path.parent) + "/", "")
    if proc.returncode != 0:
        stats["error"] = log.read_text()[-2000:]
    return stats


def read_output_labels(path: Path, axes: Sequence[str]) -> dict[str, Any] | None:
    """Per axis, the label lists of a JSONL output (in row order) and the ids, or None if not JSONL/unparsable."""
    if not path.is_file():
        return None
    ids: list[Any] = []
    labels: dict[str, list[list[str]]] = {a: [] for a in axes}
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                ids.append(row.get("id"))
                for axis in axes:
                    value = row.get(axis)
                    if isinstance(value, str):
                        value = json.loads(value) if value.startswith("[") else [value]
                    labels[axis].append(list(value or []))
    except (ValueError, TypeError, AttributeError):
        return None
    return {"ids": ids, "labels": labels}


def count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    n = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def remove(*paths: Path) -> None:
    """Delete files (and their side files such as ``<output>.rejects.jsonl``)."""
    for path in paths:
        for p in [path, *path.parent.glob(path.name + ".*")]:
            if p.is_file():
                p.unlink()
            elif p.is_dir():
                import shutil

                shutil.rmtree(p, ignore_errors=True)


if __name__ == "__main__":  # python -m bench.cli_bench: tell whether the CLI is there
    print(json.dumps(cli_status()))
    sys.exit(0)
