"""Corpus readers: one per source, all yielding the canonical ``Record``.

``read_corpus`` picks the reader for ``cfg.format``. Relative paths resolve against the current working
directory. Readers check their input before the first record is asked for and report rows they skip
or change as ``ReadIssue`` items appended to the ``issues`` list they are given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipeline.corpora.base import CorpusError, ReadIssue, Record
from pipeline.corpora.files import detect_format, iter_rows, read_files, row_to_record

# Readers that pull in heavy modules (urllib/http for the Reuters download, datasets) load on first use:
# `newstag predict` imports this package for the file reader only and must start fast.
_LAZY = {
    "read_folders": "pipeline.corpora.folders",
    "read_huggingface": "pipeline.corpora.hf",
    "REUTERS_FILES": "pipeline.corpora.reuters",
    "check_reuters_dir": "pipeline.corpora.reuters",
    "download_reuters": "pipeline.corpora.reuters",
    "read_reuters": "pipeline.corpora.reuters",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:  # the schema (pydantic) is not needed to read rows: `newstag predict` must start fast
    from pipeline.config import CorpusConfig

__all__ = [
    "REUTERS_FILES",
    "CorpusError",
    "ReadIssue",
    "Record",
    "check_reuters_dir",
    "detect_format",
    "download_reuters",
    "iter_rows",
    "read_corpus",
    "read_files",
    "read_folders",
    "read_huggingface",
    "read_reuters",
    "row_to_record",
]


def read_corpus(cfg: CorpusConfig, issues: list[ReadIssue]) -> Iterator[Record]:
    """The records of the corpus ``cfg`` describes, from the reader for its format.

    Reuters-21578 needs ``cfg.path``; fetching it when absent is the data stage's job (``download_reuters``).
    """
    if cfg.format == "reuters21578":
        if not cfg.path:
            raise CorpusError(
                "corpus.path is not set: Reuters-21578 is read from a folder with the 22 reut2-*.sgm files "
                "(usually data/raw/reuters21578; the data stage can download it)"
            )
        from pipeline.corpora.reuters import read_reuters

        return read_reuters(cfg.path, cfg.split_scheme, issues)
    if cfg.format == "folders":
        if not cfg.path:
            raise CorpusError(
                "corpus.path is not set: format folders needs the folder with one sub-folder per label"
            )
        from pipeline.corpora.folders import read_folders

        return read_folders(cfg.path, issues)
    if cfg.format == "huggingface":
        from pipeline.corpora.hf import read_huggingface

        return read_huggingface(cfg, issues)
    if cfg.format in ("jsonl", "csv", "parquet"):
        return read_files(cfg, issues)
    raise CorpusError(f"corpus.format {cfg.format!r}: no reader for it")
