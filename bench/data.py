"""The benchmark datasets: identical splits for every system, stored once per run under ``bench/out/data``.

Each dataset is a pickle holding the documents (id, title, text, one gold label list per axis), the label
list of each axis (what every system is scored against), and one or more *units*: index lists for train,
validation and test. Reuters (R90 and ModApte) has one unit, the prepared split. BBC News has five, a
stratified, seeded 5-fold cross-validation over all 2,225 articles with a stratified tenth of each training
fold carved out as validation.

These pickles hold corpus text: they live in the git-ignored ``bench/out/`` only.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # key used on the command line (--only) and in results.json
    config: str  # newstag config (relative to the project root)
    title: str  # human name of the table
    cv_folds: int = 0  # >0: k-fold cross-validation over all prepared documents
    single_label: bool = False  # score the top label (accuracy) rather than thresholded label sets


DATASETS: dict[str, DatasetSpec] = {
    "r90": DatasetSpec("r90", "configs/reuters-r90.yaml", "Reuters-21578 ApteMod R90 topics"),
    "reuters": DatasetSpec("reuters", "configs/reuters.yaml", "Reuters-21578 ModApte"),
    "bbc": DatasetSpec(
        "bbc", "configs/bbc.yaml", "BBC News themes (5-fold CV)", cv_folds=5, single_label=True
    ),
}

SEED = 42
VALIDATION_FRACTION = 0.1


def _load_config(path: str):
    from pipeline.config import load_config

    return load_config(ROOT / path)


def _ensure_raw(cfg: Any, config: str) -> None:
    """The raw corpus on disk, linked from ``../shared/data`` the way ``make data`` and ``make test`` do it.

    The benchmark never downloads: a corpus that is neither there nor in the shared folder is an error.
    """
    if not cfg.corpus.path:
        return
    path = ROOT / cfg.corpus.path
    if path.exists():
        return
    shared = ROOT.parent / "shared" / "data" / path.name
    if path.parent == ROOT / "data" / "raw" and shared.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(shared.resolve())
        return
    raise FileNotFoundError(
        f"{cfg.corpus.path}: corpus not found (and not in {shared}); run `make data CONFIG={config}` first"
    )


def _prepared(spec: DatasetSpec) -> tuple[Any, dict[str, Any]]:
    """(DatasetDict, data report) of the dataset's newstag config, preparing it when needed."""
    import os

    from pipeline.prepare import load_prepared, prepare

    cwd = os.getcwd()
    os.chdir(ROOT)  # config paths are relative to the project root
    try:
        cfg = _load_config(spec.config)
        _ensure_raw(cfg, spec.config)
        prepared = prepare(cfg, say=lambda _msg: None)
        return load_prepared(prepared.path), prepared.report
    finally:
        os.chdir(cwd)


def _rows(ds: Any, split: str, axes: list[str]) -> dict[str, list[Any]]:
    part = ds[split]
    cols = {"id": list(part["id"]), "title": list(part["title"]), "text": list(part["text"])}
    for axis in axes:
        cols[axis] = [list(v) for v in part[axis]]
    return cols


def _cv_units(docs: dict[str, list[Any]], axis: str, folds: int) -> list[dict[str, list[int]]]:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, train_test_split

    strata = np.array(["|".join(sorted(labels)) or "<none>" for labels in docs[axis]])
    units = []
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for k, (train_idx, test_idx) in enumerate(skf.split(np.zeros(len(strata)), strata)):
        fit_idx, val_idx = train_test_split(
            train_idx, test_size=VALIDATION_FRACTION, stratify=strata[train_idx], random_state=SEED + k
        )
        units.append(
            {
                "train": sorted(map(int, fit_idx)),
                "validation": sorted(map(int, val_idx)),
                "test": sorted(map(int, test_idx)),
            }
        )
    return units


def build(spec: DatasetSpec, dest_dir: Path = OUT / "data") -> Path:
    """Write the dataset pickle of ``spec`` and return its path."""
    ds, report = _prepared(spec)
    axes = list(report["labels"])
    labels = {axis: list(report["labels"][axis]) for axis in axes}
    if spec.cv_folds:
        parts = [_rows(ds, s, axes) for s in ("train", "validation", "test")]
        docs = {k: [v for p in parts for v in p[k]] for k in parts[0]}
        order = sorted(range(len(docs["id"])), key=lambda i: docs["id"][i])
        docs = {k: [v[i] for i in order] for k, v in docs.items()}
        units = _cv_units(docs, axes[0], spec.cv_folds)
    else:
        parts, offset, index = {}, 0, {}
        for split in ("train", "validation", "test"):
            parts[split] = _rows(ds, split, axes)
            n = len(parts[split]["id"])
            index[split] = list(range(offset, offset + n))
            offset += n
        docs = {k: [v for s in ("train", "validation", "test") for v in parts[s][k]] for k in parts["train"]}
        units = [index]
    payload = {
        "name": spec.name,
        "config": spec.config,
        "title": spec.title,
        "single_label": spec.single_label,
        "axes": labels,
        "docs": docs,
        "units": units,
        "sizes": [{k: len(v) for k, v in u.items()} for u in units],
        "n_docs": len(docs["id"]),
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{spec.name}.pkl"
    with path.open("wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load(path: str | Path) -> dict[str, Any]:
    with Path(path).open("rb") as fh:
        return pickle.load(fh)


def subset(data: dict[str, Any], idx: list[int]) -> dict[str, list[Any]]:
    """The documents at ``idx`` (columns id, title, text and one per axis)."""
    return {k: [v[i] for i in idx] for k, v in data["docs"].items()}


def describe(path: str | Path) -> dict[str, Any]:
    """Sizes and label counts of a stored dataset (numbers only)."""
    data = load(path)
    return {
        "name": data["name"],
        "config": data["config"],
        "n_docs": data["n_docs"],
        "units": data["sizes"],
        "labels": {a: len(v) for a, v in data["axes"].items()},
    }
