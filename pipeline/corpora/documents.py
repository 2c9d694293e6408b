"""The one rule that turns a raw row (a dict read from a file) into a document: id, title and text.

The training readers (``files.row_to_record``) and batch prediction (``predict``) both call ``document_of``,
so a row reads the same at training and at prediction time: the text must be a non-blank string; id, title
and text are stripped; a number or a date in the id or title becomes text; a lone surrogate becomes U+FFFD;
a row without an id is named after its file and line. A row without a usable text is rejected with a
``ReadIssue`` that names the text field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.corpora.base import ReadIssue


@dataclass(frozen=True, slots=True)
class Fields:
    """The columns of a row that hold the id, the title (None: no title) and the text."""

    id: str = "id"
    title: str | None = "title"
    text: str = "text"


class Document(NamedTuple):
    """A row as a document: the three strings every stage reads."""

    id: str
    title: str
    text: str


def document_of(
    row: Mapping[str, Any], fields: Fields, file: str = "", line: int = 0
) -> Document | ReadIssue:
    """The document in ``row`` (columns named by ``fields``), or the issue that rejects it.

    ``file`` and ``line`` say where the row was read: they name a row without an id (``<file stem>:<line>``)
    and locate the issue.
    """
    ident = _stripped(row.get(fields.id)) or _line_id(file, line)
    text = row.get(fields.text)
    if type(text) is not str or not text or text.isspace():  # the usual good row skips the call
        problem = text_problem(text, fields.text in row)
        if problem is not None:
            return ReadIssue(file, line, fields.text, f"text {problem}: row skipped", ident)
    title = (_stripped(row.get(fields.title)) or "") if fields.title else ""
    return _document((ident, title, text.strip() if text.isascii() else no_surrogates(text).strip()))


_document = partial(tuple.__new__, Document)  # Document(...) without the Python-level __new__: once per row


def _stripped(value: Any) -> str | None:
    """``scalar_text`` of ``value`` with lone surrogates replaced (quick for the usual ASCII string)."""
    if type(value) is str and value.isascii():
        return value.strip()
    return scalar_text(no_surrogates(value))


def text_problem(value: Any, present: bool = True) -> str | None:
    """What makes ``value`` unusable as a text (``"is empty"``, ...), or None when it is a non-blank string."""
    if isinstance(value, str):
        return None if value and not value.isspace() else "is empty"
    if value is None:
        return "is null" if present else "is missing"
    return f"is not a string (got {type_name(value)})"


def id_of(value: Any, file: str, line: int) -> str:
    """The id in ``value`` as text; for a row without one, its file's stem and its line."""
    return _stripped(value) or _line_id(file, line)


def _line_id(file: str, line: int) -> str:
    return f"{Path(file).stem}:{line}"


def scalar_text(value: Any) -> str | None:
    """A string, number or date as stripped text; None for null, NaN and anything else."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None


def no_surrogates(value: Any) -> Any:
    """``value`` itself when it holds no lone surrogate, else a copy with U+FFFD in their place."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        items = [no_surrogates(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def type_name(value: Any) -> str:
    """How a reject message names the JSON type of ``value``."""
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)
