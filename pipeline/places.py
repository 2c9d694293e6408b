"""Place mentions in text with a ready-made index: the scanning half of the gazetteer, without its builders.

``pipeline.gazetteer`` builds the index from the gazetteer packages (seconds) and re-exports what is here;
a compiled model (``pipeline.scoring``) carries the index as arrays and scans with these same functions,
so a model loaded for scoring never imports the packages, scikit-learn or scipy. Standard library only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

TITLE_SEP = "\n\x1e\n"
"""Separator ``combine`` puts between a title and a body (ASCII record separator on its own line)."""

_UP = "A-ZÀ-ÖØ-ÞĀ-ſ"  # capitals incl. Latin-1 and Latin Extended-A (the latter mixes cases; harmless)
_WORD = rf"[{_UP}]\w*(?:[.\-]\w+|['’](?![sS]\b)\w+){{0,8}}\.?"
_CONN = r"(?:of|the|and|de|del|da|das|do|dos|du|des|di|la|las|le|les|los|el|al|es|y|upon|am)(?!\w)"
# A run of capitalised words, joined by single whitespace, possibly through lower-case connectors
# ("Bosnia and Herzegovina", "Rio de Janeiro", "Côte d'Ivoire"). Bounded so that pathological input cannot
# build huge matches; a name never spans more than a handful of words.
_RUN_RE = re.compile(rf"{_WORD}(?:\s(?:{_WORD}|{_CONN}|d['’]{_WORD})){{0,24}}")


_Entry = tuple[str, str] | None  # (ISO alpha-2, kind), or None for a span that yields nothing


@dataclass(frozen=True, slots=True)
class _Index:
    exact: dict[str, _Entry]
    upper: dict[str, _Entry]
    prefixes: frozenset[str]  # proper word prefixes of multi-word keys (exact and upper): "United Arab"
    codes: frozenset[str]
    stats: dict[str, int]
    # run of capitalised words -> (its hits, their ISO codes): a run's hits depend on the run alone, and
    # news repeats the same runs ("The U.S.", "Tokyo") endlessly. Bounded by _RUN_CACHE_SIZE.
    runs: dict[str, tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # the first piece (split at whitespace, "." and "-") of every key and prefix, filled on first use: a
    # run none of whose pieces is one of them cannot hold a hit (see _run_hits)
    firsts: set[str] = field(default_factory=set, compare=False, repr=False)


_MISS: Any = object()
_FIRST_PIECE = re.compile(r"^[^\S\n]*([^\s]+)", re.MULTILINE)  # the first piece of each line
_NO_HITS: tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]] = ((), ())
_STREAM_FROM = 1_000_000  # texts at least this long are scanned lazily instead of via findall


_RUN_CACHE_SIZE = 200_000


def _runs(text: str) -> Iterable[str]:
    """The runs of capitalised words in text, in order."""
    return _RUN_RE.findall(text) if len(text) < _STREAM_FROM else (m.group() for m in _RUN_RE.finditer(text))


def _run_hits(idx: _Index, run: str) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """(hits, their ISO codes) of one run, computed once per process and run."""
    cached = idx.runs.get(run)
    if cached is not None:
        return cached
    if not idx.firsts:
        _fill_firsts(idx)
    if idx.firsts.isdisjoint(run.replace(".", " ").replace("-", " ").split()):
        # Every hit of the scan below is a key (or a prefix) found at some token, some token's part before
        # a trailing "." or some hyphenated part: the key's first piece is then one of the run's pieces.
        cached = _NO_HITS
    else:
        out = _hits_of_run(idx, run)
        cached = (tuple(out), tuple(hit[1] for hit in out))
    if len(idx.runs) >= _RUN_CACHE_SIZE:
        idx.runs.clear()
    idx.runs[run] = cached
    return cached


def _hits_of_run(idx: _Index, run: str) -> list[tuple[str, str, str]]:
    """The (surface, ISO, kind) hits of one run of capitalised words, in order."""
    out: list[tuple[str, str, str]] = []
    # Fast path: the whole run is a key, or a single plain word (most runs are one of these).
    e = idx.exact.get(run, _MISS)
    if e is not _MISS:
        if e is not None:
            out.append((run, *e))
    elif run.isalpha():
        if run.isupper():
            e = idx.upper.get(run)
            if e is not None:
                out.append((run, *e))
    else:
        _scan_run(idx, run, out)
    return out


def _first_pieces(idx: _Index) -> set[str]:
    """The first piece of every key and prefix of the index."""
    keys = "\n".join(chain(idx.exact, idx.upper, idx.prefixes)).replace(".", " ").replace("-", " ")
    return set(_FIRST_PIECE.findall(keys))


def _fill_firsts(idx: _Index, pieces: Iterable[str] | None = None) -> None:
    """Fill ``idx.firsts`` with ``pieces`` (computed when None: ``_first_pieces``), and a placeholder."""
    idx.firsts.update(_first_pieces(idx) if pieces is None else pieces)
    idx.firsts.add("\x00")  # never a piece of a run: marks the set as filled


def _scan(idx: _Index, text: str) -> list[tuple[str, str, str]]:
    """All (surface, ISO, kind) hits in text, in order."""
    cache_get = idx.runs.get
    out: list[tuple[str, str, str]] = []
    for run in _runs(text):
        cached = cache_get(run) or _run_hits(idx, run)
        if cached[0]:
            out.extend(cached[0])
    return out


def _country_counts(idx: _Index, text: str) -> dict[str, int]:
    """Mentions per ISO code in text (the ISO codes of ``_scan``, counted in order)."""
    cache_get = idx.runs.get
    counts: dict[str, int] = {}
    for run in _runs(text):
        cached = cache_get(run) or _run_hits(idx, run)
        for iso in cached[1]:
            counts[iso] = counts.get(iso, 0) + 1
    return counts


def _lookup(idx: _Index, key: str) -> tuple[str, _Entry] | None:
    """(surface, entry) for one candidate span, trying it without a trailing full stop and in upper case."""
    e = idx.exact.get(key, _MISS)
    if e is not _MISS:
        return key, e
    if key[-1] == ".":
        key = key[:-1]
        if not key:
            return None
        e = idx.exact.get(key, _MISS)
        if e is not _MISS:
            return key, e
    if key.isupper():
        e = idx.upper.get(key, _MISS)
        if e is not _MISS:
            return key, e
    return None


def _scan_run(idx: _Index, run: str, out: list[tuple[str, str, str]]) -> None:
    """Hits in one run of capitalised words: longest sub-span first, then hyphenated parts."""
    exact_get = idx.exact.get
    upper_get = idx.upper.get
    prefixes = idx.prefixes
    tokens = run.split()
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        if i + 1 < n and tok in prefixes:
            # Extend word by word while the span is still the start of some key; keep the longest key.
            best, best_end, span, j = None, i, tok, i + 1
            while j < n:
                span = f"{span} {tokens[j]}"
                hit = _lookup(idx, span)
                if hit is not None:
                    best, best_end = hit, j
                if span not in prefixes:
                    break
                j += 1
            if best is not None:
                if best[1] is not None:
                    out.append((best[0], *best[1]))
                i = best_end + 1
                continue
        i += 1
        e = exact_get(tok, _MISS)
        if e is not _MISS:
            if e is not None:
                out.append((tok, *e))
            continue
        if tok.isalpha():
            if tok.isupper():
                e = upper_get(tok)
                if e is not None:
                    out.append((tok, *e))
            continue
        hit = _lookup(idx, tok)
        if hit is not None:
            if hit[1] is not None:
                out.append((hit[0], *hit[1]))
        elif "-" in tok:
            for part in tok.split("-"):
                if part and part[0].isupper():
                    hit = _lookup(idx, part)
                    if hit is not None and hit[1] is not None:
                        out.append((hit[0], *hit[1]))


def find_mentions(idx: _Index, text: str) -> list[tuple[str, str, str]]:
    """Every (surface, ISO alpha-2, kind) mention in text, in order (empty text: none)."""
    return _scan(idx, text) if text else []


def _split_doc(doc: Any) -> tuple[str, str]:
    """(title, body) of one input document."""
    if isinstance(doc, str):
        head, sep, tail = doc.partition(TITLE_SEP)
        return (head, tail) if sep else ("", doc)
    if isinstance(doc, tuple | list) and len(doc) == 2:
        return str(doc[0] or ""), str(doc[1] or "")
    if doc is None or (isinstance(doc, float) and math.isnan(doc)):
        return "", ""
    raise TypeError(
        f"GazetteerVectorizer: a document must be a str or a (title, text) pair, not {type(doc)!r}"
    )


def _lede_counts(idx: _Index, body: str, lede_chars: int) -> dict[str, float]:
    """Mentions per ISO code in a body longer than ``lede_chars``: a run of capitalised words starting in
    the first ``lede_chars`` characters counts 1, one further on ``lede_chars / len(body)``."""
    scale = lede_chars / len(body)
    cache_get = idx.runs.get
    counts: dict[str, float] = {}
    far: list[str] = []  # the runs starting past the lede, in order
    matches = _RUN_RE.finditer(body)
    for m in matches:
        run = m.group()
        if m.start() >= lede_chars:
            # the rest as strings: findall from where finditer would go on finds the same runs, faster
            far.append(run)
            far += (
                _RUN_RE.findall(body, m.end()) if len(body) < _STREAM_FROM else [x.group() for x in matches]
            )
            break
        for iso in (cache_get(run) or _run_hits(idx, run))[1]:
            counts[iso] = counts.get(iso, 0.0) + 1.0
    for run in far:
        for iso in (cache_get(run) or _run_hits(idx, run))[1]:
            counts[iso] = counts.get(iso, 0.0) + scale
    return counts


def doc_counts(idx: _Index, doc: Any, title_weight: float, lede_chars: int = 0) -> dict[str, float]:
    """Mentions per ISO code in one document; a title's mentions count ``title_weight`` times.

    With ``lede_chars`` > 0 and a longer body, mentions past its first ``lede_chars`` characters count
    ``lede_chars / len(body)`` each (their density per lede-length of text): one clear mention in a short
    item counts in full, a passing one deep in a long article hardly at all, a place named throughout does.
    """
    title, body = _split_doc(doc)
    if lede_chars and len(body) > lede_chars:
        counts: dict[str, float] = _lede_counts(idx, body, lede_chars)
    else:
        counts = dict(_country_counts(idx, body)) if body else {}
    if title and title_weight:
        for iso, c in _country_counts(idx, title).items():
            counts[iso] = counts.get(iso, 0.0) + c * float(title_weight)
    return counts


def mention_rows(
    idx: _Index,
    docs: Iterable[Any],
    title_weight: float,
    region_of: Mapping[str, int],
    country_index: Mapping[str, int],
    n_regions: int,
    mode: str,
    lede_chars: int = 0,
) -> tuple[list[int], list[int], list[float]]:
    """CSR parts (indptr, indices, data) of the region/country mention block of ``docs``.

    Columns: ``n_regions`` region columns (``region_of`` maps an ISO code to one), then the country columns
    of ``country_index``. ``mode`` is ``log`` (log1p of counts), ``binary`` or ``share`` (share of the
    document's mentions within the region or the country block). ``lede_chars``: see ``doc_counts``.
    """
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for doc in docs:
        counts = doc_counts(idx, doc, title_weight, lede_chars)
        row: dict[int, float] = {}
        if n_regions:
            for iso, c in counts.items():
                r = region_of.get(iso)
                if r is not None:
                    row[r] = row.get(r, 0.0) + c
        if country_index:
            for iso, c in counts.items():
                j = country_index.get(iso)
                if j is not None:
                    row[j] = row.get(j, 0.0) + c
        if row:
            cols = sorted(row)
            if mode == "log":
                vals = [math.log1p(row[j]) for j in cols]
            elif mode == "binary":
                vals = [1.0] * len(cols)
            else:
                region_total = sum(row[j] for j in cols if j < n_regions)
                country_total = sum(row[j] for j in cols if j >= n_regions)
                vals = [row[j] / (region_total if j < n_regions else country_total) for j in cols]
            indices.extend(cols)
            data.extend(vals)
        indptr.append(len(indices))
    return indptr, indices, data


# ---------------------------------------------------------------------------------------------------------
# The index as plain arrays (for a compiled model): keys as NUL-joined UTF-8, entries as small integers
# ---------------------------------------------------------------------------------------------------------

KINDS = ("country", "demonym", "capital", "city", "other")
"""The ``kind`` values a mention reports."""


def _join(keys: Iterable[str]) -> bytes:
    return "\x00".join(keys).encode("utf-8")


def _split(blob: bytes) -> list[str]:
    return blob.decode("utf-8").split("\x00") if blob else []


def index_parts(idx: _Index) -> dict[str, Any]:
    """The index as bytes and integer lists: what ``index_from_parts`` rebuilds it from."""
    codes = sorted(idx.codes)
    code_of = {c: i for i, c in enumerate(codes)}

    def entry_ids(d: Mapping[str, _Entry]) -> list[int]:  # -1 for None, else code * len(KINDS) + kind
        return [-1 if e is None else code_of[e[0]] * len(KINDS) + KINDS.index(e[1]) for e in d.values()]

    return {
        "codes": _join(codes),
        "exact_keys": _join(idx.exact),
        "exact_entries": entry_ids(idx.exact),
        "upper_keys": _join(idx.upper),
        "upper_entries": entry_ids(idx.upper),
        "prefixes": _join(sorted(idx.prefixes)),
        "firsts": _join(sorted(_first_pieces(idx))),
        "stats": dict(idx.stats),
    }


def index_from_parts(
    codes: bytes,
    exact_keys: bytes,
    exact_entries: Sequence[int],
    upper_keys: bytes,
    upper_entries: Sequence[int],
    prefixes: bytes,
    stats: Mapping[str, int],
    firsts: bytes | None = None,
) -> _Index:
    """The index ``index_parts`` took apart (equal to the original: same keys, entries, prefixes, codes).

    ``firsts``: the keys' first pieces as ``index_parts`` saved them (parts saved before it: computed on the
    first scan, about 15 ms)."""
    code_list = _split(codes)
    table: list[_Entry] = [(c, k) for c in code_list for k in KINDS]

    def entries(keys: bytes, ids: Sequence[int]) -> dict[str, _Entry]:
        names = _split(keys)
        if len(names) != len(ids):
            raise ValueError(f"gazetteer index: {len(names)} keys but {len(ids)} entries")
        return dict(zip(names, [None if i < 0 else table[i] for i in ids], strict=True))

    idx = _Index(
        entries(exact_keys, exact_entries),
        entries(upper_keys, upper_entries),
        frozenset(_split(prefixes)),
        frozenset(code_list),
        dict(stats),
    )
    if firsts is not None:
        _fill_firsts(idx, _split(firsts))
    return idx
