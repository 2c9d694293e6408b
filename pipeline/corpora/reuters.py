"""Reuters-21578 (Distribution 1.0): the 22 ``reut2-*.sgm`` files as canonical records, and their download.

The SGML is not valid XML, so it is read with regular expressions: bytes as latin-1, entities unescaped,
control characters and the closing "Reuter" sign-off dropped, hard-wrapped lines joined into paragraphs.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from pipeline.corpora.base import CorpusError, ReadIssue, Record

REUTERS_FILES: tuple[str, ...] = tuple(f"reut2-{i:03d}.sgm" for i in range(22))
LABEL_TAGS = {
    "places": "PLACES",
    "topics": "TOPICS",
    "people": "PEOPLE",
    "orgs": "ORGS",
    "exchanges": "EXCHANGES",
}
SCHEMES = ("modapte", "apte_mod", "source", "none")
LOCAL_HINT = (
    "put the 22 reut2-*.sgm files in data/raw/reuters21578/ "
    '(or link the shared copy: ln -s "$(realpath ../shared/data/reuters21578)" data/raw/reuters21578)'
)

_ATTR = re.compile(r'([A-Za-z]+)="([^"]*)"')
_ITEM = re.compile(r"<D>(.*?)</D>", re.S)
_TAG = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CR_MARK = re.compile(r"\^M(?=\n|\Z)")
_SIGN_OFF = re.compile(r"reuters?(?:\.\.\.)?", re.I)
_CHUNK = 1 << 16


def check_reuters_dir(path: str | Path) -> None:
    """Raise CorpusError naming the folder and the missing files unless all 22 .sgm files are there."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusError(f"{path}: Reuters-21578 folder not found; {LOCAL_HINT}")
    missing = [name for name in REUTERS_FILES if not (path / name).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise CorpusError(
            f"{path}: {len(missing)} of the 22 Reuters-21578 files are missing ({shown}); {LOCAL_HINT}"
        )


def read_reuters(path: str | Path, scheme: str, issues: list[ReadIssue]) -> Iterator[Record]:
    """Every article of the collection, in file order, with its split under ``scheme``.

    ``modapte``/``apte_mod``: LEWISSPLIT TRAIN or TEST with TOPICS="YES" gives train or test, anything else
    ``unused``; ``source``: LEWISSPLIT as is (NOT-USED -> ``unused``); ``none``: no split. The folder is
    checked before the first record is asked for.
    """
    if scheme not in SCHEMES:
        raise CorpusError(f"Reuters-21578: unknown split scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    check_reuters_dir(path)
    return _read_files(Path(path), scheme, issues)


def _read_files(folder: Path, scheme: str, issues: list[ReadIssue]) -> Iterator[Record]:
    for name in REUTERS_FILES:
        file = folder / name
        yield from parse_sgml(file.read_bytes().decode("latin-1"), str(file), scheme, issues)


def parse_sgml(sgml: str, file: str, scheme: str, issues: list[ReadIssue]) -> Iterator[Record]:
    """The records of one .sgm file's text; ``file`` names it in issues.

    An article that is never closed (a truncated file, or a ``<REUTERS`` opened again before
    ``</REUTERS>``) is reported on its line and skipped; the articles after it are still read.
    """
    line, counted, found = 1, 0, False
    for start, attributes, content in _articles(sgml):
        found = True
        line += sgml.count("\n", counted, start)
        counted = start
        record = parse_article(attributes, content, scheme) if content is not None else attributes
        if isinstance(record, str):
            issues.append(ReadIssue(file, line, None, record))
            continue
        if not record.text:
            issues.append(
                ReadIssue(file, line, "TEXT", "empty story (no title, no text): kept", record.id, kept=True)
            )
        yield record
    if not found:
        issues.append(ReadIssue(file, None, None, "no <REUTERS> article in this file", kept=True))


def _articles(sgml: str) -> Iterator[tuple[int, str, str | None]]:
    """(offset, attribute text, content) of each ``<REUTERS ...>...</REUTERS>`` element, or (offset, reason,
    None) for one that is not closed before the next ``<REUTERS`` or the end of the text."""
    start = sgml.find("<REUTERS")
    while start >= 0:
        following = sgml.find("<REUTERS", start + 8)
        limit = following if following >= 0 else len(sgml)
        head_end = sgml.find(">", start, limit)
        end = sgml.find("</REUTERS>", head_end, limit) if head_end >= 0 else -1
        if end < 0:
            head = sgml[start + 8 : head_end if head_end >= 0 else limit]
            ident = dict(_ATTR.findall(head)).get("NEWID")
            before = "the next article" if following >= 0 else "the end of the file"
            yield (
                start,
                f"article{f' NEWID {ident}' if ident else ''} not closed before {before}: skipped",
                None,
            )
            start = following
            continue
        yield start, sgml[start + 8 : head_end], sgml[head_end + 1 : end]
        start = sgml.find("<REUTERS", end)


def parse_article(attributes: str, content: str, scheme: str) -> Record | str:
    """One ``<REUTERS>`` element as a record, or the reason it cannot be one."""
    attrs = dict(_ATTR.findall(attributes))
    ident = attrs.get("NEWID", "").strip()
    if not ident:
        return "article without NEWID: skipped"
    title, text, kind, dateline = _text_parts(content)
    return Record(
        id=ident,
        title=title,
        text=text,
        date=_clean_inline(_element(content, "DATE")) or None,
        split=split_of(attrs.get("LEWISSPLIT", ""), attrs.get("TOPICS", ""), scheme),
        labels={source: _items(content, tag) for source, tag in LABEL_TAGS.items()},
        meta={
            "lewissplit": attrs.get("LEWISSPLIT", ""),
            "topics_attr": attrs.get("TOPICS", ""),
            "cgisplit": attrs.get("CGISPLIT", ""),
            "oldid": attrs.get("OLDID", ""),
            "text_type": kind,
            "dateline": dateline,
        },
    )


def split_of(lewissplit: str, topics_attr: str, scheme: str) -> str:
    """The record split for an article's LEWISSPLIT and TOPICS attributes under ``scheme``."""
    if scheme == "none":
        return ""
    if scheme == "source":
        return {"TRAIN": "train", "TEST": "test"}.get(lewissplit, "unused")
    if topics_attr != "YES":
        return "unused"
    return {"TRAIN": "train", "TEST": "test"}.get(lewissplit, "unused")


def _text_parts(content: str) -> tuple[str, str, str, str]:
    """(title, text, text type, dateline) of an article; a story without BODY is its title."""
    attributes, inner = _text_element(content)
    kind = dict(_ATTR.findall(attributes)).get("TYPE", "NORM")
    title = strip_sign_off(_clean_inline(_element(inner, "TITLE")))
    dateline = _clean_inline(_element(inner, "DATELINE")).rstrip(" -")
    body = _element(inner, "BODY")
    if body is not None:
        text = clean_text(body)
    elif title:
        text = ""
    else:  # UNPROC: the story sits directly in TEXT, its first line is the headline
        title, _, text = clean_text(_TAG.sub(" ", inner)).partition("\n")
    if text and dateline:  # the dateline names a place: keep it where an article has it, up front
        text = f"{dateline} - {text}"
    return title, text or title, kind, dateline


def _text_element(content: str) -> tuple[str, str]:
    """(attribute text, inside) of the ``<TEXT ...>`` element; to the end when it is not closed."""
    start = content.find("<TEXT")
    head_end = content.find(">", start)
    if start < 0 or head_end < 0:
        return "", ""
    end = content.find("</TEXT>", head_end)
    return content[start + 5 : head_end], content[head_end + 1 : end if end >= 0 else len(content)]


def _element(content: str, tag: str) -> str | None:
    """The raw inside of the first ``<tag>...</tag>``, or None when there is none."""
    start = content.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = content.find(f"</{tag}>", start)
    return content[start:] if end < 0 else content[start:end]


def _items(content: str, tag: str) -> list[str]:
    block = _element(content, tag) or ""
    return [item for item in (_clean_inline(raw) for raw in _ITEM.findall(block)) if item]


def _clean_inline(raw: str | None) -> str:
    """Unescaped text on one line."""
    if not raw:
        return ""
    return " ".join(_CONTROL.sub("", html.unescape(raw)).split())


def clean_text(raw: str) -> str:
    """Article text: entities unescaped, control marks and the "Reuter" sign-off dropped, one paragraph a line.

    A paragraph starts at an indented or blank line; the hard-wrapped lines inside one are joined.
    """
    text = _CONTROL.sub("", html.unescape(raw.replace("\r", "")))
    text = strip_sign_off(_CR_MARK.sub("", text))
    paragraphs: list[list[str]] = []
    fresh = True
    for line in text.split("\n"):
        if not line.strip():
            fresh = True
            continue
        if fresh or line[:1].isspace():
            paragraphs.append([])
        paragraphs[-1].append(line)
        fresh = False
    return "\n".join(" ".join(" ".join(lines).split()) for lines in paragraphs)


def strip_sign_off(text: str) -> str:
    """``text`` without the trailing "Reuter"/"REUTER..." words that close a wire story."""
    text = text.rstrip()
    while text:
        words = text.rsplit(None, 1)
        if not _SIGN_OFF.fullmatch(words[-1]):
            return text
        text = words[0] if len(words) == 2 else ""
    return text


def download_reuters(dest: Path, url: str, sha256: str | None, timeout: float = 10) -> None:
    """Fetch the Reuters-21578 archive from ``url`` and unpack its .sgm files into ``dest``.

    Takes the UCI zip (which holds ``reuters21578.tar.gz``) or a plain tar.gz. Raises CorpusError when the
    download fails (saying where to put the files instead), the checksum differs (the download is deleted),
    or the archive is unsafe or incomplete. Does nothing when ``dest`` already holds the 22 files.
    """
    dest = Path(dest)
    try:
        check_reuters_dir(dest)
        return
    except CorpusError:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=dest.parent) as tmp:
        archive = Path(tmp) / "download"
        fetch(url, archive, timeout, dest)
        verify_sha256(archive, sha256)
        staging = Path(tmp) / "unpacked"
        unpack_archive(archive, staging)
        archive.unlink()
        _move_corpus(staging, dest)
    check_reuters_dir(dest)


def fetch(url: str, target: Path, timeout: float, dest: Path) -> None:
    """Save ``url`` to ``target``; CorpusError (naming ``dest`` as the place for local files) on failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise CorpusError(
            f"could not download Reuters-21578 from {url}: {reason}. Without internet, put the 22 "
            f'reut2-*.sgm files in {dest}/ (e.g. ln -s "$(realpath ../shared/data/reuters21578)" {dest})'
        ) from exc


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise CorpusError and delete ``path`` when its sha256 is not ``expected`` (no check without one)."""
    if not expected:
        return
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected.strip().lower():
        path.unlink(missing_ok=True)
        raise CorpusError(
            f"{path.name}: sha256 mismatch: expected {expected}, got {actual}; the download was deleted"
        )


def unpack_archive(archive: Path, target: Path) -> None:
    """Unpack a zip (possibly holding a tar.gz) or a tar archive into ``target``, refusing unsafe paths."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_members(archive, zf.namelist())
            zf.extractall(target)
        for inner in sorted(target.rglob("*.tar.gz")) + sorted(target.rglob("*.tgz")):
            _untar(inner, target / inner.name.split(".")[0])
            inner.unlink()
    elif tarfile.is_tarfile(archive):
        _untar(archive, target)
    else:
        raise CorpusError(f"{archive}: not a zip or tar archive")


def _untar(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        _check_members(archive, [m.name for m in members])
        links = [m.name for m in members if not (m.isfile() or m.isdir())]
        if links:
            raise CorpusError(
                f"{archive}: refusing links or special files in the archive: {', '.join(links[:3])}"
            )
        tf.extractall(target, filter="data")


def _check_members(archive: Path, names: list[str]) -> None:
    """Raise CorpusError when a member name is absolute or climbs out of the target folder."""
    for name in names:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise CorpusError(f"{archive}: refusing unsafe path {name!r} in the archive")


def _move_corpus(staging: Path, dest: Path) -> None:
    """Move the files of the unpacked folder that holds the .sgm files into ``dest``."""
    found = sorted(staging.rglob(REUTERS_FILES[0]))
    if not found:
        raise CorpusError(f"the downloaded archive has no {REUTERS_FILES[0]}; {LOCAL_HINT}")
    dest.mkdir(parents=True, exist_ok=True)
    for item in found[0].parent.iterdir():
        if item.is_file():
            shutil.move(str(item), dest / item.name)
