"""Hugging Face datasets: a hub name, a builder with data files (``json`` + ``corpus.files``), or a folder
written by ``save_to_disk``. ``datasets`` is imported only when such a corpus is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.corpora.base import CorpusError, ReadIssue, Record
from pipeline.corpora.files import normalise_split, row_to_record

if TYPE_CHECKING:  # annotations only: reading rows does not need the config schema (pydantic)
    from pipeline.config import CorpusConfig

_BATCH = 1000
_SAVED_MARKERS = ("dataset_dict.json", "state.json")


def read_huggingface(cfg: CorpusConfig, issues: list[ReadIssue]) -> Iterator[Record]:
    """Records from every split of the dataset, rows mapped as for files; the split is the split's name.

    ``cfg.split_field``, when set, takes the split from a column instead. The dataset is loaded before
    the first record is asked for; CorpusError when it cannot be.
    """
    splits = load_splits(cfg)
    return _read_splits(splits, cfg, issues)


def load_splits(cfg: CorpusConfig) -> dict[str, Any]:
    """Split name -> ``datasets.Dataset`` for the configured dataset."""
    name = cfg.hf_name
    if not name:
        raise CorpusError(
            "corpus: format huggingface needs corpus.hf_name (a dataset name or a local folder)"
        )
    loaded = _load(name, cfg)
    if hasattr(loaded, "items"):
        return dict(loaded.items())
    return {str(loaded.split or ""): loaded}


def _load(name: str, cfg: CorpusConfig) -> Any:
    import datasets

    local = Path(name)
    try:
        if local.is_dir() and any((local / marker).is_file() for marker in _SAVED_MARKERS):
            return datasets.load_from_disk(str(local))
        return datasets.load_dataset(name, cfg.hf_config, data_files=cfg.files or None)
    except CorpusError:
        raise
    except Exception as exc:  # datasets raises many kinds (connection, not found, bad files)
        raise CorpusError(_load_failure(name, local, exc)) from exc


def _load_failure(name: str, local: Path, exc: Exception) -> str:
    if local.exists() or _is_builder(name):
        return f"{name}: cannot load the Hugging Face dataset: {exc}"
    return (
        f"{name}: cannot load the Hugging Face dataset ({type(exc).__name__}: {exc}). A hub dataset needs "
        "internet (and HF_DATASETS_OFFLINE/HF_HUB_OFFLINE unset); without it, set corpus.hf_name to a local "
        "folder written by save_to_disk, or to json/csv/parquet with corpus.files"
    )


def _is_builder(name: str) -> bool:
    return name in {"json", "csv", "parquet", "text", "arrow"}


def _read_splits(splits: dict[str, Any], cfg: CorpusConfig, issues: list[ReadIssue]) -> Iterator[Record]:
    for split_name, dataset in splits.items():
        split = _record_split(split_name, cfg, issues)
        file = f"{cfg.hf_name}[{split_name}]" if split_name else str(cfg.hf_name)
        for line, row in enumerate(_rows(dataset), 1):
            record = row_to_record(row, line, file, cfg, issues)
            if record is None:
                continue
            if not cfg.split_field:
                record.split = split
            yield record


def _record_split(split_name: str, cfg: CorpusConfig, issues: list[ReadIssue]) -> str:
    """The record split for a dataset split; an unknown name gives ``unused`` and one issue."""
    if cfg.split_scheme == "none":
        return ""
    split = normalise_split(split_name)
    if split is None:
        reason = f"split {split_name!r} is not train, test or validation: its rows are marked unused"
        issues.append(ReadIssue(str(cfg.hf_name), None, None, reason, kept=True))
        return "unused"
    return split


def _rows(dataset: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows as dicts, read in batches."""
    for batch in dataset.iter(batch_size=_BATCH):
        columns = list(batch)
        for values in zip(*batch.values(), strict=True):
            yield dict(zip(columns, values, strict=True))
