"""The benchmark datasets: identical splits for every system, stored once per run under ``bench/out/data``.

Each dataset is a pickle holding the documents (id, title, text, one gold label list per axis), the label
list of each axis (what every system is scored against), and one or more *units*: index lists for train,
validation and test. Reuters (R90 and ModApte) has one unit, the prepared split. BBC News has five, a
stratified, seeded 5-fold cross-validation over all 2,225 articles with a stratified tenth of each training
fold carved out as validation.

The world dataset (``configs/world.yaml``, several corpora) has one unit too: its prepared train and
validation splits whole (what ``newstag train`` fits on), and as test the test documents of the corpora its
benchmarked axes are scored on (themes and regions: WCEP 2025 October-December; regions also the Reuters
ModApte test split, for its long articles). A gold entry is None where the document's corpus does not feed
the axis (unknown): no system trains on it and no score counts it. Each benchmarked axis has a function
(``WORLD_AXES``) saying which corpora test it, which labels are scored, whether it is scored as label sets in
a single-label dataset, and which segments of its test documents are reported on their own (``Segment``).

These pickles hold corpus text: they live in the git-ignored ``bench/out/`` only.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT

LONG_CHARS = 1_500  # a "long" article: a body over this many characters (the regions' long-vs-short split)


@dataclass(frozen=True)
class Segment:
    """A slice of an axis's test documents reported on its own: the test documents of ``corpus``, only those
    whose body (``text``, title not counted) is longer than ``longer_than`` / at most ``at_most`` characters
    when given."""

    name: str  # key in results.json
    title: str  # row label in results.md
    corpus: str
    longer_than: int | None = None
    at_most: int | None = None

    def holds(self, corpus: str, text: str) -> bool:
        """Whether a test document of ``corpus`` with body ``text`` belongs to the segment."""
        n = len(text or "")
        return (
            corpus == self.corpus
            and (self.longer_than is None or n > self.longer_than)
            and (self.at_most is None or n <= self.at_most)
        )


@dataclass(frozen=True)
class AxisView:
    """How one axis of a several-corpora dataset is benchmarked: the corpora whose test documents score its
    main row, the labels scored (top-1 picks among these), whether it is scored as thresholded label sets
    although the dataset is single-label, and the segments reported on their own (their corpora's test
    documents are predicted too)."""

    test_corpora: tuple[str, ...]
    scored: tuple[str, ...]
    multi_label: bool = False
    segments: tuple[Segment, ...] = ()


def world_themes(report: Mapping[str, Any]) -> AxisView:
    """Themes on WCEP 2025 October-December, top-1 among the themes the portal's categories cover (every
    theme but ``migration``, which only AllSides feeds)."""
    return AxisView(("wcep2025",), tuple(report["corpora"]["wcep2025"]["coverage"]["themes"]))


def world_regions(report: Mapping[str, Any]) -> AxisView:
    """Regions (label sets) on the WCEP 2025 October-December items that link a country (the others are
    unknown for regions), every region scored. Segments: those items, all short; and, for long texts, the
    Reuters ModApte test split (the world config's Reuters corpus, regions from PLACES), whole and split at
    ``LONG_CHARS`` of body: the only region-labelled articles of any length the world dataset has."""
    k = f"{LONG_CHARS:,}"
    return AxisView(
        ("wcep2025",),
        tuple(report["labels"]["regions"]),
        multi_label=True,
        segments=(
            Segment("wcep2025", "WCEP 2025 Q4, items linking a country (all short)", "wcep2025"),
            Segment("reuters", "Reuters ModApte test, all", "reuters"),
            Segment("reuters-long", f"Reuters ModApte test, body over {k} characters", "reuters", LONG_CHARS),
            Segment(
                "reuters-short",
                f"Reuters ModApte test, body {k} characters or fewer",
                "reuters",
                None,
                LONG_CHARS,
            ),
        ),
    )


# Per benchmarked axis of the world dataset, its view.
WORLD_AXES: dict[str, Callable[[Mapping[str, Any]], AxisView]] = {
    "themes": world_themes,
    "regions": world_regions,
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # key used on the command line (--only) and in results.json
    config: str  # newstag config (relative to the project root)
    title: str  # human name of the table
    cv_folds: int = 0  # >0: k-fold cross-validation over all prepared documents
    single_label: bool = False  # score the top label (accuracy) rather than thresholded label sets
    # several corpora: the benchmarked axes and how each is scored (empty: every axis, every test document)
    views: Mapping[str, Callable[[Mapping[str, Any]], AxisView]] = field(
        default_factory=dict, hash=False, compare=False
    )
    tfidf: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)  # TfidfVectorizer args
    goals: Mapping[str, float] = field(
        default_factory=dict, hash=False, compare=False
    )  # "axis metric" -> floor
    cli: bool = True  # measure ``newstag predict`` on an exported model of the config


DATASETS: dict[str, DatasetSpec] = {
    "r90": DatasetSpec("r90", "configs/reuters-r90.yaml", "Reuters-21578 ApteMod R90 topics"),
    "reuters": DatasetSpec("reuters", "configs/reuters.yaml", "Reuters-21578 ModApte"),
    "bbc": DatasetSpec(
        "bbc", "configs/bbc.yaml", "BBC News themes (5-fold CV)", cv_folds=5, single_label=True
    ),
    "world": DatasetSpec(
        "world",
        "configs/world.yaml",
        "World model on WCEP 2025 October-December",
        single_label=True,  # themes; regions are scored as label sets (world_regions)
        views=WORLD_AXES,
        tfidf={"ngram_range": (1, 2), "min_df": 2},
        goals={
            "themes accuracy": 0.88,  # issue 14
            "themes macro_f1": 0.83,
            "regions@wcep2025 micro_f1": 0.93,  # issue 15; "axis@segment figure" (bench.regions)
            "regions@wcep2025 no_region_share": 0.05,  # a ceiling (bench.regions.CEILINGS)
            "regions@wcep2025 primary_top1": 0.92,
            "regions@reuters micro_f1": 0.94,
        },
        cli=False,
    ),
}

SEED = 42
VALIDATION_FRACTION = 0.1


def _load_config(path: str):
    from pipeline.config import load_config

    return load_config(ROOT / path)


def _ensure_raw(cfg: Any, config: str) -> None:
    """Every raw corpus of the config on disk, its ``data/raw/<name>`` folder linked from ``../shared/data``
    the way ``make data`` and ``make test`` do it.

    The benchmark never downloads: a corpus that is neither there nor in the shared folder is an error.
    """
    for corpus in cfg.corpus_list():
        path = ROOT / corpus.path if corpus.path else None
        if path is None or path.exists():
            continue
        parts = Path(corpus.path).parts  # data/raw/<folder>[/<file>]
        shared = ROOT.parent / "shared" / "data" / parts[-1]
        if parts[:2] == ("data", "raw") and len(parts) > 2:
            shared = ROOT.parent / "shared" / "data" / parts[2]
            top = ROOT / "data" / "raw" / parts[2]
            if shared.is_dir() and not (top.exists() or top.is_symlink()):
                top.parent.mkdir(parents=True, exist_ok=True)
                top.symlink_to(shared.resolve())
        if not path.exists():
            raise FileNotFoundError(
                f"{corpus.path}: corpus not found (nor in {shared}); run `make data CONFIG={config}` first"
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
    """Columns id, title, text (and corpus, when the dataset has it) and one gold list per axis (None:
    unknown) of one split."""
    part = ds[split]
    cols = {"id": list(part["id"]), "title": list(part["title"]), "text": list(part["text"])}
    if "corpus" in part.column_names:
        cols["corpus"] = list(part["corpus"])
    for axis in axes:
        cols[axis] = [None if v is None else list(v) for v in part[axis]]
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


def _cv_docs_units(ds: Any, axes: list[str], folds: int) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """All prepared documents, sorted by id, and a stratified k-fold split of them."""
    parts = [_rows(ds, s, axes) for s in ("train", "validation", "test")]
    docs = {k: [v for p in parts for v in p[k]] for k in parts[0]}
    order = sorted(range(len(docs["id"])), key=lambda i: docs["id"][i])
    docs = {k: [v[i] for i in order] for k, v in docs.items()}
    return docs, _cv_units(docs, axes[0], folds)


def _split_docs_units(
    ds: Any, axes: list[str], test_corpora: set[str] | None = None
) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """The prepared splits one after the other and their index lists (test: only the documents of
    ``test_corpora`` when given)."""
    parts, offset, index = {}, 0, {}
    for split in ("train", "validation", "test"):
        parts[split] = _rows(ds, split, axes)
        n = len(parts[split]["id"])
        index[split] = list(range(offset, offset + n))
        offset += n
    docs = {k: [v for s in ("train", "validation", "test") for v in parts[s][k]] for k in parts["train"]}
    if test_corpora is not None:
        index["test"] = [i for i in index["test"] if docs["corpus"][i] in test_corpora]
    return docs, [index]


def build(spec: DatasetSpec, dest_dir: Path = OUT / "data") -> Path:
    """Write the dataset pickle of ``spec`` and return its path."""
    ds, report = _prepared(spec)
    axes = list(report["labels"])
    labels = {axis: list(report["labels"][axis]) for axis in axes}
    extra: dict[str, Any] = {}
    if spec.cv_folds:
        docs, units = _cv_docs_units(ds, axes, spec.cv_folds)
    elif spec.views:
        views = {axis: view(report) for axis, view in spec.views.items()}
        test_corpora = {c for v in views.values() for c in (*v.test_corpora, *(s.corpus for s in v.segments))}
        docs, units = _split_docs_units(ds, axes, test_corpora)
        labels = {axis: labels[axis] for axis in views}  # the benchmarked axes; docs keep every axis
        extra = {
            "scored": {axis: list(v.scored) for axis, v in views.items()},
            "test_corpora": {axis: list(v.test_corpora) for axis, v in views.items()},
            "multi_label": [axis for axis, v in views.items() if v.multi_label],
            "segments": {
                axis: segment_rows(v.segments, docs, units[0]["test"], axis)
                for axis, v in views.items()
                if v.segments
            },
        }
    else:
        docs, units = _split_docs_units(ds, axes)
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
        "tfidf": dict(spec.tfidf),
        "coverage": report.get("coverage"),  # corpus -> axis -> labels, what `newstag train` gives fit
        **extra,
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{spec.name}.pkl"
    with path.open("wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def segment_rows(
    segments: Sequence[Segment], docs: Mapping[str, list[Any]], test: list[int], axis: str
) -> list[dict[str, Any]]:
    """Each segment as stored in the dataset: its fields, the test documents in it whose gold on ``axis`` is
    known (``test``: indices into ``docs``, in ``test``'s order) and their median body length."""
    import statistics

    out = []
    for seg in segments:
        idx = [i for i in test if docs[axis][i] is not None and seg.holds(docs["corpus"][i], docs["text"][i])]
        chars = [len(docs["text"][i] or "") for i in idx]
        out.append(
            {
                **asdict(seg),
                "test": idx,
                "median_chars": statistics.median(chars) if chars else None,
            }
        )
    return out


def known(docs: Mapping[str, list[Any]], axes: list[str]) -> dict[str, list[Any]]:
    """The documents with a known gold entry (not None) on at least one of ``axes``."""
    keep = [i for i in range(len(docs["id"])) if any(docs[a][i] is not None for a in axes)]
    if len(keep) == len(docs["id"]):
        return dict(docs)
    return {k: [v[i] for i in keep] for k, v in docs.items()}


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
