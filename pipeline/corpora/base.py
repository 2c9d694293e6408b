"""The canonical record every corpus reader yields, and the report of what a reader could not read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class CorpusError(Exception):
    """A corpus cannot be read at all (missing path, wrong format, unreadable schema)."""


@dataclass(slots=True)
class Record:
    """One article as every reader yields it.

    ``labels`` holds the raw label lists keyed by source name (``places``, ``topics``, or the
    user's label fields); the taxonomy maps them onto the axes later. ``split`` is ``train``,
    ``test``, ``unused`` (outside the source's split scheme) or ``""`` when the source does not say.
    ``meta`` keeps source-specific attributes (e.g. Reuters' LEWISSPLIT) as strings.
    """

    id: str
    title: str
    text: str
    date: str | None = None
    split: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return asdict(self)


@dataclass(slots=True, frozen=True)
class ReadIssue:
    """A row a reader skipped (``kept=False``) or kept with a change or a doubt (``kept=True``), and why."""

    file: str
    line: int | None
    field: str | None
    reason: str
    id: str | None = None
    kept: bool = False

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        what = f", field {self.field!r}" if self.field else ""
        ident = f" (id {self.id})" if self.id else ""
        return f"{where}{what}{ident}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """The issue as a plain dict (for JSON reports and rejects files)."""
        return asdict(self)
