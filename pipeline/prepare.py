"""The data stage: read a corpus, map its labels onto the axes, split, validate, and store a DatasetDict.

The stored dataset lives in ``<processed_dir>/<config name>/`` with ``report.json`` (what the stage saw)
and ``fingerprint.json`` (raw files + the parts of the config that shape the data). A second run with the
same fingerprint reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config, ConfigError
from pipeline.corpora import CorpusError, ReadIssue, Record, read_corpus
from pipeline.corpora.reuters import check_reuters_dir, download_reuters
from pipeline.taxonomy import LabelMap, country_regions, identity_map, load_taxonomy

SPLITS = ("train", "validation", "test")
FORMAT_VERSION = 1
MAX_LISTED = 20


@dataclass
class Prepared:
    """What ``prepare`` produced: where the dataset is, its report, and whether it was reused."""

    path: Path
    report: dict[str, Any]
    reused: bool
    fingerprint: str
    label_sets: dict[str, list[str]] = field(default_factory=dict)


def processed_path(cfg: Config) -> Path:
    """Where the prepared dataset of ``cfg`` is stored."""
    return Path(cfg.processed_dir) / cfg.name


# --------------------------------------------------------------------------- checks before any work


def check_taxonomies(cfg: Config) -> None:
    """Load every taxonomy the config names (axes and gazetteer), so a missing or inconsistent one stops
    the command before any data is read; ConfigError naming the config key, the file and its key."""
    named = [
        (f"axes.{axis}.taxonomy", a.taxonomy, load_taxonomy) for axis, a in cfg.axes.items() if a.taxonomy
    ]
    gazetteer = cfg.features.gazetteer
    if gazetteer.enabled:
        named.append(("features.gazetteer.taxonomy", gazetteer.taxonomy, country_regions))
    for key, path, load in named:
        try:
            load(path)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def check_axes_labelled(cfg: Config, splits: dict[str, list[dict[str, Any]]]) -> None:
    """ConfigError naming the axis when no training document has a label on it (wrong source name,
    wrong label column, or a taxonomy that maps nothing)."""
    for axis, acfg in cfg.axes.items():
        if not any(row[axis] for row in splits["train"]):
            raise ConfigError(
                f"axes.{axis}: no training document has a label on this axis (source {acfg.source!r}); "
                "check axes.<axis>.source, corpus.label_fields and the taxonomy"
            )


# --------------------------------------------------------------------------- corpus availability


def ensure_corpus(cfg: Config, say: Callable[[str], None] = print) -> None:
    """Make sure the raw corpus is on disk; download Reuters-21578 when it is missing and a URL is set."""
    corpus = cfg.corpus
    if corpus.format != "reuters21578":
        return
    path = Path(corpus.path or "data/raw/reuters21578")
    if path.is_dir() and any(path.glob("reut2-*.sgm")):
        check_reuters_dir(path)
        return
    if not corpus.download_url:
        raise CorpusError(
            f"{path}: Reuters-21578 not found. Put the reut2-*.sgm files there, or link a copy "
            f'(ln -s "$(realpath ../shared/data/reuters21578)" {path}), or set corpus.download_url.'
        )
    say(f"Reuters-21578 not found in {path}: downloading {corpus.download_url}")
    download_reuters(path, corpus.download_url, corpus.download_sha256 or "")


# --------------------------------------------------------------------------- fingerprint


def _raw_files(cfg: Config) -> list[Path]:
    corpus = cfg.corpus
    paths: list[Path] = []
    if corpus.files:
        paths += [Path(p) for p in corpus.files.values()]
    if corpus.path:
        root = Path(corpus.path)
        paths += sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    return paths


def _taxonomy_files(cfg: Config) -> list[Path]:
    return sorted({Path(a.taxonomy) for a in cfg.axes.values() if a.taxonomy})


def compute_fingerprint(cfg: Config) -> str:
    """A hash of the raw files' contents, the taxonomy files and the data-shaping parts of ``cfg``."""
    h = hashlib.sha256()
    shaping = {
        "v": FORMAT_VERSION,
        "corpus": cfg.corpus.model_dump(mode="json"),
        "split": cfg.split.model_dump(mode="json"),
        "axes": {k: v.model_dump(mode="json") for k, v in cfg.axes.items()},
    }
    h.update(json.dumps(shaping, sort_keys=True).encode())
    for path in _raw_files(cfg) + _taxonomy_files(cfg):
        h.update(os.fsencode(path))
        if path.is_file():
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- label mapping


def _label_maps(cfg: Config, records: list[Record]) -> dict[str, LabelMap]:
    maps: dict[str, LabelMap] = {}
    for axis, acfg in cfg.axes.items():
        if acfg.taxonomy:
            maps[axis] = load_taxonomy(acfg.taxonomy)
        else:
            maps[axis] = identity_map(code for r in records for code in r.labels.get(acfg.source, []))
    return maps


def _kept_in_train_and_test(records: list[Record], source: str) -> set[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    for r in records:
        for code in r.labels.get(source, []):
            seen[r.split].add(code)
    return seen["train"] & seen["test"]


def map_labels(cfg: Config, records: list[Record]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Canonical rows (one label list per axis) and what the mapping dropped or did not know."""
    maps = _label_maps(cfg, records)
    keep = {
        axis: _kept_in_train_and_test(records, a.source)
        for axis, a in cfg.axes.items()
        if a.keep == "in_train_and_test"
    }
    unknown: dict[str, Counter[str]] = {axis: Counter() for axis in cfg.axes}
    dropped: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for r in records:
        row = {"id": r.id, "title": r.title, "text": r.text, "date": r.date or "", "split": r.split}
        reason = None
        for axis, acfg in cfg.axes.items():
            raw = r.labels.get(acfg.source, [])
            if axis in keep:
                raw = [c for c in raw if c in keep[axis]]
            labels, missing = maps[axis].map(raw)
            unknown[axis].update(missing)
            row[axis] = labels
            if acfg.drop_unlabelled and not labels and reason is None:
                reason = f"no {axis} label among the kept ones"
        if reason:
            dropped.append({"id": r.id, "reason": reason})
        else:
            rows.append(row)
    info = {
        "unknown_raw_labels": {a: dict(c.most_common()) for a, c in unknown.items() if c},
        "kept_labels": {a: sorted(k) for a, k in keep.items()},
    }
    return rows, {"dropped": dropped, **info}


# --------------------------------------------------------------------------- splitting


def _stratum(row: dict[str, Any], axis: str) -> str:
    return "|".join(row[axis]) or "<none>"


def stratified_split(
    rows: list[dict[str, Any]], fraction: float, seed: int, axis: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, carved): about ``fraction`` of each label combination of ``axis`` goes to ``carved``.

    Combinations too rare to split are pooled, so carving is stratified where possible and
    deterministic for a given order of rows and seed.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[_stratum(row, axis)].append(i)
    pooled: list[int] = []
    for key in [k for k, idx in groups.items() if len(idx) * fraction < 1]:
        pooled += groups.pop(key)
    if pooled:
        groups["<pooled>"] = pooled
    rng = random.Random(seed)
    carved: set[int] = set()
    for key in sorted(groups):
        idx = sorted(groups[key])
        rng.shuffle(idx)
        carved.update(idx[: round(len(idx) * fraction)])
    kept = [r for i, r in enumerate(rows) if i not in carved]
    return kept, [r for i, r in enumerate(rows) if i in carved]


def assign_splits(cfg: Config, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per split: the source's train/test kept, test and validation carved where missing."""
    axis = next(iter(cfg.axes))
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    use_source = cfg.corpus.split_scheme != "none"
    for row in rows:
        split = row["split"] if use_source and row["split"] in SPLITS else ""
        by_split[split].append(row)
    pool = by_split.pop("", [])
    if not by_split.get("test"):
        pool += by_split.pop("train", [])
        pool, by_split["test"] = stratified_split(pool, cfg.split.test_fraction, cfg.split.seed, axis)
        by_split["train"] = pool
    else:
        by_split["train"] = by_split.get("train", []) + pool
    if not by_split.get("validation"):
        train, validation = stratified_split(
            by_split["train"], cfg.split.validation_fraction, cfg.split.seed + 1, axis
        )
        by_split["train"], by_split["validation"] = train, validation
    for split in SPLITS:
        for row in by_split.setdefault(split, []):
            row["split"] = split
    return {s: by_split[s] for s in SPLITS}


# --------------------------------------------------------------------------- report


def _norm_text(text: str) -> str:
    return " ".join(text.lower().split())


def duplicate_report(splits: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Exact duplicate texts (after case and space folding) within and across splits."""
    where: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split, rows in splits.items():
        for row in rows:
            if row["text"].strip():
                key = hashlib.sha1(_norm_text(row["text"]).encode()).hexdigest()
                where[key].append((split, row["id"]))
    cross: Counter[str] = Counter()
    examples: list[list[str]] = []
    within = 0
    for hits in where.values():
        if len(hits) < 2:
            continue
        names = sorted({s for s, _ in hits})
        if len(names) == 1:
            within += len(hits) - 1
            continue
        for a_i, a in enumerate(names):
            for b in names[a_i + 1 :]:
                cross[f"{a}/{b}"] += 1
        if len(examples) < MAX_LISTED:
            examples.append([f"{s}:{i}" for s, i in hits])
    return {"within_split": within, "across_splits": dict(cross), "examples": examples}


def build_report(
    cfg: Config,
    n_read: int,
    splits: dict[str, list[dict[str, Any]]],
    issues: list[ReadIssue],
    dropped: list[dict[str, str]],
    mapping: dict[str, Any],
) -> dict[str, Any]:
    """The data report: counts per split and label, gaps, drops, short texts, leakage, read issues."""
    per_label: dict[str, dict[str, dict[str, int]]] = {}
    no_label: dict[str, dict[str, int]] = {}
    for axis in cfg.axes:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
        empty = dict.fromkeys(SPLITS, 0)
        for split, rows in splits.items():
            for row in rows:
                for label in row[axis]:
                    counts[label][split] += 1
                empty[split] += not row[axis]
        per_label[axis] = dict(sorted(counts.items()))
        no_label[axis] = empty
    short = [
        {"split": s, "id": r["id"], "chars": len(r["text"].strip())}
        for s, rows in splits.items()
        for r in rows
        if len(r["text"].strip()) < cfg.split.min_chars
    ]
    reasons = Counter(d["reason"] for d in dropped)
    return {
        "config": cfg.name,
        "corpus": cfg.corpus.format,
        "n_read": n_read,
        "n_rejected": sum(not i.kept for i in issues),
        "n_notes": sum(i.kept for i in issues),
        "documents": {s: len(rows) for s, rows in splits.items()},
        "labels": {axis: sorted(per_label[axis]) for axis in cfg.axes},
        "per_label": per_label,
        "no_label": no_label,
        "dropped": {"total": len(dropped), "by_reason": dict(reasons), "examples": dropped[:MAX_LISTED]},
        "unknown_raw_labels": mapping.get("unknown_raw_labels", {}),
        "kept_labels": mapping.get("kept_labels", {}),
        "short_texts": {
            "count": len(short),
            "min_chars": cfg.split.min_chars,
            "examples": short[:MAX_LISTED],
        },
        "duplicates": duplicate_report(splits),
        "issues": [i.to_dict() for i in issues],
    }


# --------------------------------------------------------------------------- storage


def _features(axes: Iterable[str]):
    from datasets import Features, List, Value

    cols = {name: Value("string") for name in ("id", "title", "text", "date", "split")}
    cols.update({axis: List(Value("string")) for axis in axes})
    return Features(cols)


def save_dataset(
    splits: dict[str, list[dict[str, Any]]], axes: list[str], dest: Path, extra: dict[str, Any]
) -> None:
    """Write the DatasetDict and its JSON side files to ``dest`` atomically (temp folder + rename)."""
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    features = _features(axes)
    empty = {name: [] for name in features}  # from_list([]) loses the columns of an empty split
    dd = DatasetDict(
        {
            s: Dataset.from_list(rows, features=features)
            if rows
            else Dataset.from_dict(empty, features=features)
            for s, rows in splits.items()
        }
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        dd.save_to_disk(str(tmp / "dataset"))
        for name, payload in extra.items():
            (tmp / name).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        _swap_in(tmp, dest, extra.get("fingerprint.json", {}).get("fingerprint"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, dest: Path, fingerprint: str | None) -> None:
    """Put the finished folder ``tmp`` at ``dest``. When a concurrent run has already stored the same
    dataset there, keep theirs (it may be being read) and drop ours; otherwise replace ``dest``."""
    for _ in range(3):
        if dest.exists() and fingerprint and _stored(dest, fingerprint) is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        try:
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
                dest.rename(old / dest.name)
                tmp.rename(dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(dest)
            return
        except OSError:  # a concurrent run moved dest away or put one there meanwhile: look again
            continue
    tmp.rename(dest)


def _stored(dest: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        meta = json.loads((dest / "fingerprint.json").read_text())
        report = json.loads((dest / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fingerprint or not (dest / "dataset").is_dir():
        return None
    return report


# --------------------------------------------------------------------------- the stage


def prepare(cfg: Config, force: bool = False, say: Callable[[str], None] = print) -> Prepared:
    """Read, map, split, validate and store the corpus of ``cfg`` (reusing a stored identical one)."""
    check_taxonomies(cfg)
    ensure_corpus(cfg, say)
    fingerprint = compute_fingerprint(cfg)
    dest = processed_path(cfg)
    report = None if force else _stored(dest, fingerprint)
    if report is not None:
        return Prepared(dest, report, True, fingerprint, report.get("labels", {}))
    issues: list[ReadIssue] = []
    records = list(read_corpus(cfg.corpus, issues))
    if not records:
        raise CorpusError(f"{cfg.corpus.path or cfg.corpus.files or cfg.corpus.hf_name}: no documents read")
    dropped = [
        {"id": r.id, "reason": f"outside the {cfg.corpus.split_scheme} split"}
        for r in records
        if r.split == "unused"
    ]
    used = [r for r in records if r.split != "unused"]
    rows, mapping = map_labels(cfg, used)
    dropped += mapping["dropped"]
    splits = assign_splits(cfg, rows)
    check_axes_labelled(cfg, splits)
    report = build_report(cfg, len(records), splits, issues, dropped, mapping)
    report["fingerprint"] = fingerprint
    save_dataset(
        splits,
        list(cfg.axes),
        dest,
        {"report.json": report, "fingerprint.json": {"fingerprint": fingerprint}},
    )
    return Prepared(dest, report, False, fingerprint, report["labels"])


def load_prepared(path: str | Path):
    """The stored ``datasets.DatasetDict`` of a prepared corpus."""
    from datasets import load_from_disk

    return load_from_disk(str(Path(path) / "dataset"))


def split_frame(ds: Any) -> tuple[Any, dict[str, list[list[str]]]]:
    """(documents DataFrame with id/title/text, gold labels per axis) of one stored split."""
    frame = ds.to_pandas()
    axes = [c for c in frame.columns if c not in ("id", "title", "text", "date", "split")]
    gold = {axis: [list(v) for v in frame[axis]] for axis in axes}
    return frame[["id", "title", "text"]], gold


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human summary of a data report."""
    docs = report["documents"]
    lines = [
        f"read {report['n_read']:,} documents; rejected {report['n_rejected']:,}; "
        f"dropped {report['dropped']['total']:,}",
        "splits: " + ", ".join(f"{s} {docs[s]:,}" for s in SPLITS),
    ]
    for reason, n in report["dropped"]["by_reason"].items():
        lines.append(f"  dropped {n:,}: {reason}")
    for axis, labels in report["labels"].items():
        empty = report["no_label"][axis]
        lines.append(
            f"{axis}: {len(labels)} labels; without a label: "
            + ", ".join(f"{s} {empty[s]:,}" for s in SPLITS)
        )
    dup = report["duplicates"]["across_splits"]
    if dup:
        lines.append("duplicate texts across splits: " + ", ".join(f"{k} {v}" for k, v in dup.items()))
    if report["short_texts"]["count"]:
        lines.append(
            f"very short texts (< {report['short_texts']['min_chars']} chars): {report['short_texts']['count']}"
        )
    for issue in report["issues"][:MAX_LISTED]:
        lines.append(f"  {'note' if issue.get('kept') else 'rejected'} {ReadIssue(**issue)}")
    if len(report["issues"]) > MAX_LISTED:
        lines.append(f"  ... and {len(report['issues']) - MAX_LISTED} more (see report.json)")
    return lines
