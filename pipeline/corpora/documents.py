"""The one rule that turns a raw row (a dict read from a file) into a document: id, title and text.

The training readers (``files.row_to_record``) and batch prediction (``predict``) both call ``document_of``,
so a row reads the same at training and at prediction time: the text must be a non-blank string; id, title
and text are stripped; a number or a date in the title becomes text; a lone surrogate in the title or text
becomes U+FFFD. The id is kept as written (``id_text``): a string stripped, an integer as its digits, a float as
Python writes it (``1.0`` stays ``"1.0"``, distinct from ``1``); a row without an id (missing, null, NaN) is
named after its file and line. A row is rejected with a ``ReadIssue`` naming the field when its text is not
usable, when its id is empty, not a string or number (an object, a list), or holds a lone surrogate, or when a
column it must keep unchanged (``Fields.keep``) holds a lone surrogate anywhere.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.corpora.base import ReadIssue


@dataclass(frozen=True, slots=True)
class Fields:
    """The columns of a row that hold the id, the title (None: no title) and the text, and the columns copied
    to the output unchanged (``keep``: a row with a lone surrogate in one of them is rejected)."""

    id: str = "id"
    title: str | None = "title"
    text: str = "text"
    keep: tuple[str, ...] = ()


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
    ident = row.get(fields.id)
    if type(ident) is str and ident and ident.isascii() and not ident.isspace():  # the usual good row
        ident = ident.strip()
    else:
        ident = id_text(ident)
        if isinstance(ident, ReadIssue):
            return ReadIssue(file, line, fields.id, f"{ident.reason}: row skipped")
        ident = ident or _line_id(file, line)
    text = row.get(fields.text)
    if type(text) is not str or not text or text.isspace():  # the usual good row skips the call
        problem = text_problem(text, fields.text in row)
        if problem is not None:
            return ReadIssue(file, line, fields.text, f"text {problem}: row skipped", ident)
    for name in fields.keep:
        if has_surrogates(row.get(name)):
            reason = "not valid Unicode (a lone surrogate), cannot be written as is: row skipped"
            return ReadIssue(file, line, name, reason, ident)
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


def id_of(value: Any, file: str, line: int) -> str | None:
    """The id in ``value`` as text (its file's stem and line when there is none); None when it is unusable."""
    ident = id_text(value)
    if isinstance(ident, ReadIssue):
        return None
    return ident or _line_id(file, line)


def _is_decimal(value: Any) -> bool:
    """Whether ``value`` is a ``decimal.Decimal`` (parquet decimals), without importing ``decimal`` on every
    start: none can exist before that module is imported."""
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal)


def id_text(value: Any) -> str | ReadIssue | None:
    """An id as written: a stripped string, an integer's digits, a float's ``repr`` (``1.0`` stays ``"1.0"``),
    a date in ISO form; None for no id (missing, null, NaN); a ``ReadIssue`` (reason only) for an id that
    cannot name a row: empty, an object or list, a lone surrogate, an infinite number."""
    if isinstance(value, str):
        if has_surrogates(value):
            return ReadIssue("", None, None, "id is not valid Unicode (a lone surrogate)")
        value = value.strip()
        return value if value else ReadIssue("", None, None, "id is empty")
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return ReadIssue("", None, None, "id is not a finite number")
        return repr(value)  # not scalar_text's: 1.0 stays "1.0"
    if _is_decimal(value):
        return str(value)
    text = scalar_text(value)  # a bool, an integer, a date
    if text is None:
        return ReadIssue("", None, None, f"id must be a string or a number, got {type_name(value)}")
    return text


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


def has_surrogates(value: Any) -> bool:
    """True when ``value`` (a string, or a list or object at any depth, keys included) holds a lone
    surrogate, which no UTF-8 writer can write."""
    if isinstance(value, str):
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list | tuple):
        return any(has_surrogates(item) for item in value)
    if isinstance(value, dict):
        return any(has_surrogates(k) or has_surrogates(v) for k, v in value.items())
    return False


def type_name(value: Any) -> str:
    """How a reject message names the JSON type of ``value``."""
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)
