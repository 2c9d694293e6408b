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

from pipeline.config import Config, ConfigError, NamedCorpus, SplitConfig
from pipeline.corpora import CorpusError, ReadIssue, Record, read_corpus
from pipeline.corpora.files import DUPLICATE_ID
from pipeline.corpora.reuters import check_reuters_dir, download_reuters
from pipeline.taxonomy import LabelMap, country_regions, identity_map, load_taxonomy

SPLITS = ("train", "validation", "test")
FORMAT_VERSION = 2
FIXED_COLUMNS = ("id", "title", "text", "date", "split", "corpus")
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
    if cfg.corpora:
        named += [
            (f"corpora.{i}.axes.{axis}.taxonomy", feed.taxonomy, load_taxonomy)
            for i, c in enumerate(cfg.corpora)
            for axis, feed in c.axes.items()
            if feed.taxonomy
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
    for axis in cfg.axes:
        if not any(row[axis] for row in splits["train"]):
            sources = sorted({c.axes[axis].source for c in cfg.corpus_list() if axis in c.axes})
            raise ConfigError(
                f"axes.{axis}: no training document has a label on this axis (source {', '.join(map(repr, sources))}); "
                "check the axis's source, the corpus's label_fields and the taxonomy"
            )


# --------------------------------------------------------------------------- corpus availability


def ensure_corpus(corpus: NamedCorpus, say: Callable[[str], None] = print) -> None:
    """Make sure a raw corpus is on disk; download Reuters-21578 when it is missing and a URL is set."""
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


def _raw_files(corpus: NamedCorpus) -> list[Path]:
    paths: list[Path] = []
    if corpus.files:
        paths += [Path(p) for p in corpus.files.values()]
    if corpus.path:
        root = Path(corpus.path)
        paths += sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    return paths


def _taxonomy_files(cfg: Config) -> list[Path]:
    named = {a.taxonomy for a in cfg.axes.values()} | {
        feed.taxonomy for c in cfg.corpus_list() for feed in c.axes.values()
    }
    return sorted(Path(t) for t in named if t)


def compute_fingerprint(cfg: Config) -> str:
    """A hash of the raw files' contents, the taxonomy files and the data-shaping parts of ``cfg``."""
    h = hashlib.sha256()
    shaping = {
        "v": FORMAT_VERSION,
        "corpus": cfg.corpus.model_dump(mode="json") if cfg.corpus else None,
        "corpora": [c.model_dump(mode="json") for c in cfg.corpora or []],
        "split": cfg.split.model_dump(mode="json"),
        "axes": {k: v.model_dump(mode="json") for k, v in cfg.axes.items()},
    }
    h.update(json.dumps(shaping, sort_keys=True).encode())
    raw = [p for c in cfg.corpus_list() for p in _raw_files(c)]
    for path in raw + _taxonomy_files(cfg):
        h.update(os.fsencode(path))
        if path.is_file():
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- label mapping


def _label_maps(cfg: Config, corpus: NamedCorpus, records: list[Record]) -> dict[str, LabelMap]:
    """The label map of each axis ``corpus`` feeds: its own taxonomy, else the axis's, else identity."""
    maps: dict[str, LabelMap] = {}
    for axis, feed in corpus.axes.items():
        taxonomy = feed.taxonomy or cfg.axes[axis].taxonomy
        if taxonomy:
            maps[axis] = load_taxonomy(taxonomy)
        else:
            maps[axis] = identity_map(code for r in records for code in r.labels.get(feed.source, []))
    return maps


def _kept_in_train_and_test(records: list[Record], source: str) -> set[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    for r in records:
        for code in r.labels.get(source, []):
            seen[r.split].add(code)
    return seen["train"] & seen["test"]


def _row_labels(
    cfg: Config, corpus: NamedCorpus, record: Record, maps: dict[str, LabelMap], keep: dict[str, set[str]]
) -> tuple[dict[str, list[str] | None], list[tuple[str, list[str]]], str | None]:
    """(labels per axis, None where unknown; raw labels no map knew; why the row is dropped, or None)."""
    out: dict[str, list[str] | None] = {}
    missing: list[tuple[str, list[str]]] = []
    reason = None
    for axis, acfg in cfg.axes.items():
        feed = corpus.axes.get(axis)
        if feed is None:
            out[axis] = None
            continue
        raw = record.labels.get(feed.source, [])
        if axis in keep:
            raw = [c for c in raw if c in keep[axis]]
        labels, unknown = maps[axis].map(raw)
        missing.append((axis, unknown))
        out[axis] = None if feed.empty_is_unknown and not labels else labels
        if acfg.drop_unlabelled and not labels and reason is None:
            reason = f"no {axis} label among the kept ones"
    return out, missing, reason


def map_labels(
    cfg: Config, corpus: NamedCorpus, records: list[Record]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Canonical rows of one corpus (one label list per axis, None where the corpus cannot say), the labels
    it covers per axis, and what the mapping dropped or did not know."""
    maps = _label_maps(cfg, corpus, records)
    keep = {
        axis: _kept_in_train_and_test(records, corpus.axes[axis].source)
        for axis, a in cfg.axes.items()
        if a.keep == "in_train_and_test" and axis in corpus.axes
    }
    unknown: dict[str, Counter[str]] = {axis: Counter() for axis in cfg.axes}
    covered: dict[str, set[str]] = {axis: set() for axis in corpus.axes}
    dropped: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for r in records:
        labels, missing, reason = _row_labels(cfg, corpus, r, maps, keep)
        for axis, codes in missing:
            unknown[axis].update(codes)
        if reason:
            dropped.append({"id": r.id, "reason": reason})
            continue
        for axis in corpus.axes:
            covered[axis].update(labels[axis] or ())
        row = {"id": r.id, "title": r.title, "text": r.text, "date": r.date or "", "split": r.split}
        rows.append({**row, "corpus": corpus.name, **labels})
    info = {
        "unknown_raw_labels": {a: dict(c.most_common()) for a, c in unknown.items() if c},
        "kept_labels": {a: sorted(k) for a, k in keep.items()},
        "coverage": {a: sorted(c) for a, c in covered.items()},
    }
    return rows, {"dropped": dropped, **info}


# --------------------------------------------------------------------------- splitting


def _stratum(row: dict[str, Any], axis: str) -> str:
    return "|".join(row[axis] or ()) or "<none>"


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


def date_splits(corpus: NamedCorpus, records: list[Record]) -> None:
    """Set each record's split from its date (``split_scheme: date``): test from ``test_from``, validation
    from ``validation_from``, train before; ``unused`` without a date, before ``date_from`` or after
    ``date_until``."""
    for r in records:
        day = (r.date or "")[:10]
        if _outside_dates(corpus, day):
            r.split = "unused"
        elif corpus.test_from and day >= corpus.test_from:
            r.split = "test"
        elif corpus.validation_from and day >= corpus.validation_from:
            r.split = "validation"
        else:
            r.split = "train"


def _outside_dates(corpus: NamedCorpus, day: str) -> str | None:
    """Why a record dated ``day`` (YYYY-MM-DD) is in no split of ``corpus``'s date split; None when it is in one."""
    if len(day) != 10 or not day[:4].isdigit():
        return f"outside the date split ({corpus.name})"
    if corpus.date_from and day < corpus.date_from:
        return f"dated before date_from {corpus.date_from} ({corpus.name})"
    if corpus.date_until and day > corpus.date_until:
        return f"dated after date_until {corpus.date_until} ({corpus.name})"
    return None


def _left_out(corpus: NamedCorpus, record: Record) -> str:
    """Why ``record`` is in no split of ``corpus``."""
    if corpus.split_scheme == "date":
        return _outside_dates(corpus, (record.date or "")[:10]) or f"outside the date split ({corpus.name})"
    return f"outside the {corpus.split_scheme} split ({corpus.name})"


def cut_text(text: str, max_chars: int) -> str:
    """The first ``max_chars`` characters of ``text``, cut at the last space before the limit."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space] if space > max_chars // 2 else head


def assign_splits(
    corpus: NamedCorpus, split: SplitConfig, rows: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Rows of one corpus per split: the source's (or the dates') train/test kept, test and validation
    carved where missing (stratified on the first axis the corpus feeds)."""
    axis = next(iter(corpus.axes))
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    use_source = corpus.split_scheme != "none"
    for row in rows:
        name = row["split"] if use_source and row["split"] in SPLITS else ""
        by_split[name].append(row)
    pool = by_split.pop("", [])
    if not by_split.get("test"):
        pool += by_split.pop("train", [])
        pool, by_split["test"] = stratified_split(pool, split.test_fraction, split.seed, axis)
        by_split["train"] = pool
    else:
        by_split["train"] = by_split.get("train", []) + pool
    if not by_split.get("validation"):
        train, validation = stratified_split(
            by_split["train"], split.validation_fraction, split.seed + 1, axis
        )
        by_split["train"], by_split["validation"] = train, validation
    for name in SPLITS:
        for row in by_split.setdefault(name, []):
            row["split"] = name
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
    unknown: dict[str, dict[str, int]] = {}
    for axis in cfg.axes:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
        empty, unknown[axis] = dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0)
        for split, rows in splits.items():
            for row in rows:
                for label in row[axis] or ():
                    counts[label][split] += 1
                empty[split] += row[axis] is not None and not row[axis]
                unknown[axis][split] += row[axis] is None
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
        "corpus": "+".join(c.format for c in cfg.corpus_list()),
        "n_read": n_read,
        "n_rejected": sum(not i.kept for i in issues),
        "n_notes": sum(i.kept for i in issues),
        "duplicate_ids": sum(i.kept and i.reason.startswith(DUPLICATE_ID) for i in issues),
        "documents": {s: len(rows) for s, rows in splits.items()},
        "labels": {axis: sorted(per_label[axis]) for axis in cfg.axes},
        "per_label": per_label,
        "no_label": no_label,
        "unknown_label": unknown,
        "corpora": mapping.get("corpora", {}),
        "coverage": {name: c["coverage"] for name, c in mapping.get("corpora", {}).items()},
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

    cols = {name: Value("string") for name in FIXED_COLUMNS}
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


def _read_corpus(
    cfg: Config, corpus: NamedCorpus, issues: list[ReadIssue], say: Callable[[str], None]
) -> tuple[int, dict[str, list[dict[str, Any]]], list[dict[str, str]], dict[str, Any]]:
    """(records read, rows per split, dropped rows, label info) of one corpus."""
    before = len(issues)
    records = list(read_corpus(corpus, issues))
    if not records:
        where = corpus.path or ", ".join((corpus.files or {}).values()) or corpus.hf_name
        rejected = [i for i in issues[before:] if not i.kept]
        why = f"; {len(rejected):,} rows rejected, the first: {rejected[0]}" if rejected else ""
        raise CorpusError(f"{where}: no documents read (corpus {corpus.name!r}){why}")
    if corpus.split_scheme == "date":
        date_splits(corpus, records)
    if corpus.max_chars:
        for r in records:
            r.text = cut_text(r.text, corpus.max_chars)
    dropped = [{"id": r.id, "reason": _left_out(corpus, r)} for r in records if r.split == "unused"]
    rows, mapping = map_labels(cfg, corpus, [r for r in records if r.split != "unused"])
    splits = assign_splits(corpus, cfg.split_of(corpus), rows)
    mapping["documents"] = {s: len(v) for s, v in splits.items()}
    return len(records), splits, dropped + mapping.pop("dropped"), mapping


def _merge_mappings(infos: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The label info of several corpora as one: unknown raw labels summed, coverage per corpus."""
    unknown: dict[str, Counter[str]] = defaultdict(Counter)
    kept: dict[str, list[str]] = {}
    for info in infos.values():
        for axis, counts in info["unknown_raw_labels"].items():
            unknown[axis].update(counts)
        kept.update(info["kept_labels"])
    corpora = {name: {"documents": i["documents"], "coverage": i["coverage"]} for name, i in infos.items()}
    return {
        "unknown_raw_labels": {a: dict(c.most_common()) for a, c in unknown.items()},
        "kept_labels": kept,
        "corpora": corpora,
    }


def prepare(cfg: Config, force: bool = False, say: Callable[[str], None] = print) -> Prepared:
    """Read, map, split, validate and store the corpora of ``cfg`` (reusing a stored identical dataset)."""
    check_taxonomies(cfg)
    for corpus in cfg.corpus_list():
        ensure_corpus(corpus, say)
    fingerprint = compute_fingerprint(cfg)
    dest = processed_path(cfg)
    report = None if force else _stored(dest, fingerprint)
    if report is not None:
        return Prepared(dest, report, True, fingerprint, report.get("labels", {}))
    issues: list[ReadIssue] = []
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    dropped: list[dict[str, str]] = []
    infos: dict[str, dict[str, Any]] = {}
    n_read = 0
    for corpus in cfg.corpus_list():
        n, parts, gone, infos[corpus.name] = _read_corpus(cfg, corpus, issues, say)
        n_read += n
        dropped += gone
        for name in SPLITS:
            splits[name] += parts[name]
    check_axes_labelled(cfg, splits)
    report = build_report(cfg, n_read, splits, issues, dropped, _merge_mappings(infos))
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


def split_frame(ds: Any) -> tuple[Any, dict[str, list[list[str] | None]]]:
    """(documents DataFrame with id/title/text/corpus, gold labels per axis) of one stored split; a gold
    entry is None where the document's corpus cannot say (unknown, never "no label")."""
    frame = ds.to_pandas()
    axes = [c for c in frame.columns if c not in FIXED_COLUMNS]
    gold = {axis: [None if v is None else list(v) for v in frame[axis]] for axis in axes}
    if "corpus" not in frame.columns:  # a dataset prepared before corpora had names
        frame["corpus"] = ""
    return frame[["id", "title", "text", "corpus"]], gold


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
    for name, info in report.get("corpora", {}).items():
        counts = ", ".join(f"{s} {info['documents'][s]:,}" for s in SPLITS)
        covers = "; ".join(f"{a} {len(v)} labels" for a, v in info["coverage"].items())
        lines.append(f"  corpus {name}: {counts}; covers {covers}")
    for axis, labels in report["labels"].items():
        empty = report["no_label"][axis]
        unknown = report.get("unknown_label", {}).get(axis, {})
        line = f"{axis}: {len(labels)} labels; without a label: " + ", ".join(
            f"{s} {empty[s]:,}" for s in SPLITS
        )
        if any(unknown.values()):
            line += "; unknown: " + ", ".join(f"{s} {unknown[s]:,}" for s in SPLITS)
        lines.append(line)
    dup = report["duplicates"]["across_splits"]
    if dup:
        lines.append("duplicate texts across splits: " + ", ".join(f"{k} {v}" for k, v in dup.items()))
    if report.get("duplicate_ids"):
        lines.append(f"repeated ids (kept, noted below): {report['duplicate_ids']:,}")
    if report["short_texts"]["count"]:
        lines.append(
            f"very short texts (< {report['short_texts']['min_chars']} chars): {report['short_texts']['count']}"
        )
    for issue in report["issues"][:MAX_LISTED]:
        lines.append(f"  {'note' if issue.get('kept') else 'rejected'} {ReadIssue(**issue)}")
    if len(report["issues"]) > MAX_LISTED:
        lines.append(f"  ... and {len(report['issues']) - MAX_LISTED} more (see report.json)")
    return lines
