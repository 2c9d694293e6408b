"""Folder-per-label corpora (the BBC News layout): ``<root>/<label>/<article>.txt``.

The first non-empty line of a file is the title, the rest the body; the folder name is the label.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.corpora.base import CorpusError, ReadIssue, Record

LABEL_SOURCE = "label"
LATIN1_FALLBACK = "decoded as latin-1"


def read_folders(path: str | Path, issues: list[ReadIssue]) -> Iterator[Record]:
    """One record per ``.txt`` file, labelled with its folder's name, in sorted order.

    The folder is checked before the first record is asked for. A file that is not UTF-8 is read as
    latin-1 and kept (with an issue); an empty file is skipped (with an issue).
    """
    root = Path(path)
    folders = label_folders(root)
    return _read_label_folders(folders, issues)


def label_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root`` that hold ``.txt`` files, sorted; CorpusError when there are none."""
    if not root.is_dir():
        raise CorpusError(f"{root}: folder not found (expected one sub-folder per label with .txt files)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _texts(p))
    if not folders:
        raise CorpusError(f"{root}: no label sub-folders with .txt files")
    return folders


def _texts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))


def _read_label_folders(folders: list[Path], issues: list[ReadIssue]) -> Iterator[Record]:
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            if file.name.startswith("."):
                continue
            if not file.is_file():
                where = printable_name(str(file))
                issues.append(ReadIssue(where, None, None, "not a regular file (a folder?): skipped"))
                continue
            record = read_article(file, folder.name, issues)
            if record is not None:
                yield record


def read_article(file: Path, label: str, issues: list[ReadIssue]) -> Record | None:
    """The record for one article file, or None (with an issue) when it is empty or unreadable.

    A file or folder name that is not valid UTF-8 is kept with its bad bytes written as ``\\xNN`` in the
    id and label (with a note), since no dataset or report can hold undecodable names.
    """
    label, where = printable_name(label), printable_name(str(file))
    ident = f"{label}/{printable_name(file.stem)}"
    if where != str(file):
        issues.append(
            ReadIssue(
                where, None, None, "file name is not valid UTF-8: bad bytes shown as \\xNN", ident, kept=True
            )
        )
    try:
        raw = file.read_bytes()
    except OSError as exc:
        issues.append(ReadIssue(where, None, None, f"cannot read: {exc.strerror or exc}", ident))
        return None
    content = decode_text(raw, where, ident, issues)
    lines = [line.strip() for line in content.splitlines()]
    paragraphs = [line for line in lines if line]
    if not paragraphs:
        issues.append(ReadIssue(where, None, None, "empty file: skipped", ident))
        return None
    title, body = paragraphs[0], paragraphs[1:]
    return Record(id=ident, title=title, text="\n".join(body) or title, labels={LABEL_SOURCE: [label]})


def printable_name(name: str) -> str:
    """A file name as valid Unicode: undecodable bytes (surrogate escapes) written as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def decode_text(raw: bytes, file: str, ident: str, issues: list[ReadIssue]) -> str:
    """UTF-8 text (a BOM is dropped), else latin-1 with an issue saying so."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        issues.append(ReadIssue(file, None, None, LATIN1_FALLBACK, ident, kept=True))
        return raw.decode("latin-1")
