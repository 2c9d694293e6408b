"""Scoring without scikit-learn: a trained tagger compiled to plain arrays, saved as one ``.npz`` file.

A ``Scorer`` holds what scoring needs and nothing else: the word vocabulary and its idf weights, the
gazetteer index built at training time, the head weights, Platt scaling and thresholds. It is saved as an
uncompressed ``.npz`` with every array aligned (``save_aligned_npz``) and read back as views into the checked
bytes (``npz_views``; object arrays refused, no pickle), so loading a model runs no code from the file, and
it imports numpy only (not scipy, scikit-learn, pandas or the gazetteer packages; pyarrow only to tokenize
large batches). Its feature matrices are ``pipeline.csr.Csr``, a numpy CSR matrix.

Scores are bit for bit those of the ``NewsTagger`` it was compiled from: the counting is exact, and the
TF-IDF weighting, the row normalisation, the sparse product and the sigmoid are the same floating-point
operations in the same order as scikit-learn's and the tagger's (``tests/model/test_scorer_real.py`` checks
equality on the Reuters test split).

``ScoringMixin`` is the part shared with ``NewsTagger``: from raw head scores to probabilities,
thresholds, labels and evidence.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipeline.csr import Csr, hstack, indptr_of, k_major
from pipeline.places import _Index, find_mentions, index_from_parts, index_parts, mention_rows

SCORER_FORMAT = 1
"""Version of the array layout; a loader refuses a file of another version."""

REGION_AXIS = "regions"
"""The axis whose labels are the gazetteer's regions: it gets a primary region, ``home`` and place evidence."""

MODEL_HOME = "model"
"""``home`` argument meaning "the model's own home" (``features.gazetteer.home`` when it was trained)."""

PLACE_PREFIX = "mentions "
"""Evidence naming a place mention: ``mentions Caracas (Venezuela)``."""

TERMS_PREFIX = "terms: "
"""Evidence naming the words that pushed a label: ``terms: ceasefire, airstrike``."""

WORD_PREFIX = "word:"
"""Feature names of the word block (``word:ceasefire``)."""

NEAR_MISS = 0.15
"""A label whose score is this close under its threshold is explained too, with why it fell short."""

STOP_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also although always
    am among amongst amoungst an and another any anyhow anyone anything anyway anywhere are around as at
    back be became because become becomes becoming been before beforehand behind being below beside besides
    between beyond both but by can cannot cant could couldnt do done down due during each eg eight either
    eleven else elsewhere enough etc even ever every everyone everything everywhere except few fifteen fifty
    first five for former formerly forty four from further get give go had has hasnt have he hence her here
    hereafter hereby herein hereupon hers herself him himself his how however hundred i ie if in indeed into
    is it its itself keep last latter latterly least less made many may me meanwhile might mine more
    moreover most mostly mr mrs ms much must my myself namely neither never nevertheless next nine no nobody
    none noone nor not nothing now nowhere of off often on once one only onto or other others otherwise our
    ours ourselves out over own per perhaps please put rather re said same say says see seem seemed seeming
    seems several she should since six sixty so some somehow someone something sometime sometimes somewhere
    still such take ten than that the their them themselves then thence there thereafter thereby therefore
    therein thereupon these they third this those though three through throughout thru thus to together told
    too toward towards twelve twenty two under until up upon us very via was we well were what whatever when
    whence whenever where whereafter whereas whereby wherein whereupon wherever whether which while whither
    who whoever whole whom whose why will with within without would yet you your yours yourself yourselves
    """.split()  # noqa: SIM905 - one line of words, not 300 lines of a list
)
"""Words never shown as evidence: scikit-learn's ``ENGLISH_STOP_WORDS`` (copied: this module does not import
scikit-learn) without its news words (fire, bill, interest, system, ...), plus said, says, told, mr, mrs, ms."""

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
"""scikit-learn's default word token pattern, the only one a compiled model supports."""

ARROW_FROM = 200_000
"""Batches with fewer characters are always tokenized in Python."""

ARROW_IMPORT_AFTER = 8_000_000
"""Characters a counter tokenizes in Python before it imports pyarrow for the larger batches that follow.

Importing pyarrow and its compute module takes about 0.2 s; pyarrow then saves about 27 ns per character
(48 against 21 on this machine). Paying the import only once that much time has been spent in Python (the
ski-rental rule) keeps a short run free of it and costs a long run at most twice the import."""

PAIR_TABLE_AFTER = 1.0
"""A counter builds its hash table of bigrams (``PairTable``) once it has looked up this many bigrams per
bigram of its vocabulary by binary search over the sorted keys, and uses the table from then on.

A binary search costs about 0.2 us a look-up here, a look-up in the table about a third of that, and building
the table 0.1-0.3 us per bigram of the vocabulary: building once the searches have cost about as much (the
ski-rental rule) keeps a short run free of the build and costs a long run at most about twice it."""

_DOC_BREAK = "\x01"  # the separator token between documents tokenized as one string
_BREAK_ID, _SKIP_ID = -3, -2
_WORD_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789_"
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, clipped so that ``exp`` never overflows."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


# --------------------------------------------------------------------------- word n-gram counts


class PairTable:
    """Distinct non-negative int64 keys -> values, as an open-addressing hash table (linear probing) built and
    probed with vectorised numpy: each pass handles every key still looking for its slot."""

    _FIB = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the key times 2**64 / phi, its top bits

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        bits = max(4, int(2.5 * len(keys)).bit_length())  # at most 40 % full
        self.mask = (1 << bits) - 1
        self.shift = np.uint64(64 - bits)
        self.keys = np.full(self.mask + 1, -1, dtype=np.int64)  # -1: an empty slot
        self.values = np.zeros(self.mask + 1, dtype=np.asarray(values).dtype)
        pending, slot = np.arange(len(keys)), self._home(keys)
        while pending.size:
            free = np.flatnonzero(self.keys[slot] == -1)
            mine, at = pending[free], slot[free]
            self.keys[at] = keys[mine]  # keys claiming the same free slot: one of them gets it
            won = self.keys[at] == keys[mine]
            self.values[at[won]] = values[mine[won]]
            left = np.ones(len(pending), dtype=bool)
            left[free[won]] = False
            pending, slot = pending[left], (slot[left] + 1) & self.mask

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * self._FIB) >> self.shift).astype(np.int64)

    def get(self, query: np.ndarray, default: int = -1) -> np.ndarray:
        """The value of each key of ``query`` (non-negative int64), ``default`` for a key not in the table."""
        query = np.asarray(query, dtype=np.int64)
        out = np.full(len(query), default, dtype=np.int64)
        todo, slot = np.arange(len(query)), self._home(query)
        while todo.size:
            found = self.keys[slot]
            hit = found == query[todo]
            out[todo[hit]] = self.values[slot[hit]]
            on = (found != -1) & ~hit
            todo, slot = todo[on], (slot[on] + 1) & self.mask
        return out


BIGRAMS_PER_CHAR = 1 / 8
"""Bigram look-ups per character that ``WordCounter.expect`` assumes before a counter has counted any
(Reuters articles: about 1 per 6.5 characters)."""

TOKEN_TABLE_AFTER = 12
"""A counter builds its ``TokenTable`` once the characters it has tokenized in Python, counting the batch at
hand, reach this many per word of its vocabulary, and looks its ASCII tokens up in it from then on.

The table saves about 20 ns a character against a dict look-up per token; building it costs about 0.15-0.3 us
a word (2.5 ms for Reuters' 15,836 words, 12 ms for the world model's 43,405): the ski-rental rule again,
with the batch at hand counted, so a run's first large batch already uses it and a short run never builds it."""


def _spans(codes: np.ndarray, separator: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each maximal run of bytes other than ``separator`` in ``codes``."""
    inside = codes != separator
    if not inside.size:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    before = np.empty_like(inside)  # inside at the previous position
    before[0] = False
    before[1:] = inside[:-1]
    after = np.empty_like(inside)
    after[-1:] = False
    after[:-1] = inside[1:]
    return np.flatnonzero(inside & ~before), np.flatnonzero(inside & ~after) + 1


def _keys16(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first 16 bytes of each span as two little-endian uint64, zero past the span's end (a span of at most
    16 bytes without zero bytes is its key exactly)."""
    padded = np.zeros(len(codes) + 16, dtype=np.uint8)
    padded[: len(codes)] = codes
    # the 8 bytes from each offset, read unaligned
    eights = np.ndarray((len(codes) + 9,), dtype="<u8", buffer=padded, strides=(1,))
    out = []
    for shift in (0, 8):
        kept = np.clip(lengths - shift, 0, 8).astype(np.uint64)
        mask = np.where(
            kept == 8, np.uint64(0xFFFFFFFFFFFFFFFF), (np.uint64(1) << (kept * np.uint64(8))) - np.uint64(1)
        )
        out.append(eights[starts + shift] & mask)
    return out[0], out[1]


class TokenTable:
    """Word ids of the ASCII tokens of a translated batch (``WordCounter._batch_table``), found with vectorised
    numpy instead of a dict look-up per token: a token of at most 16 bytes is its own key (two uint64), looked
    up in an open-addressing table (linear probing, as ``PairTable``); longer tokens go through ``word_id``.
    The ids are the dict's (``tests/unit/test_scorer.py``)."""

    _FIB = np.uint64(0x9E3779B97F4A7C15)
    _MIX = np.uint64(0xC2B2AE3D27D4EB4F)

    def __init__(self, words_blob: bytes, word_id: Mapping[str, int]) -> None:
        """``words_blob``: the words NUL-joined (UTF-8), a word's id its position."""
        self.word_id = word_id
        codes = np.frombuffer(words_blob, dtype=np.uint8)
        starts, ends = _spans(codes, 0)
        ids = np.arange(len(starts))
        if len(starts) != codes.size - np.count_nonzero(codes) + 1:  # an empty word: count the NULs before
            ids = np.cumsum(codes == 0)[starts - 1] if len(starts) else ids
            ids[starts == 0] = 0
        lengths = ends - starts
        short = lengths <= 16
        k0, k1 = _keys16(codes, starts[short], lengths[short])
        ids = ids[short]
        bits = max(4, int(2.5 * max(1, len(ids))).bit_length())  # at most 40 % full
        self.mask = (1 << bits) - 1
        self.shift = np.uint64(64 - bits)
        self.k0 = np.zeros(self.mask + 1, dtype=np.uint64)  # 0: an empty slot (no token starts with a NUL)
        self.k1 = np.zeros(self.mask + 1, dtype=np.uint64)
        self.ids = np.full(self.mask + 1, -1, dtype=np.int64)
        pending, slot = np.arange(len(ids)), self._home(k0, k1)
        while pending.size:
            free = np.flatnonzero(self.k0[slot] == 0)
            mine, at = pending[free], slot[free]
            self.ids[at] = mine  # words claiming the same free slot: one of them gets it
            won = self.ids[at] == mine
            self.k0[at[won]], self.k1[at[won]] = k0[mine[won]], k1[mine[won]]
            self.ids[at[won]] = ids[mine[won]]
            left = np.ones(len(pending), dtype=bool)
            left[free[won]] = False
            pending, slot = pending[left], (slot[left] + 1) & self.mask

    def _home(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        return (((k0 * self._FIB) ^ (k1 * self._MIX)) >> self.shift).astype(np.int64)

    def ids_of(self, text: bytes) -> np.ndarray:
        """The id of every token of ``text`` (tokens separated by spaces), as ``word_id.get(token, -1)``."""
        codes = np.frombuffer(text, dtype=np.uint8)
        starts, ends = _spans(codes, 32)
        lengths = ends - starts
        out = np.full(len(starts), -1, dtype=np.int64)
        k0, k1 = _keys16(codes, starts, lengths)  # a longer token's first 16 bytes: set right below
        todo, slot = np.arange(len(starts)), self._home(k0, k1)
        while todo.size:
            f0 = self.k0[slot]
            hit = (f0 == k0[todo]) & (self.k1[slot] == k1[todo])
            out[todo[hit]] = self.ids[slot[hit]]
            on = (f0 != 0) & ~hit
            todo, slot = todo[on], (slot[on] + 1) & self.mask
        one = np.flatnonzero(lengths == 1)  # not words: the separator or a skipped character
        out[one] = np.where(codes[starts[one]] == ord(_DOC_BREAK), _BREAK_ID, _SKIP_ID)
        get = self.word_id.get
        for i in np.flatnonzero(lengths > 16).tolist():
            out[i] = get(text[starts[i] : ends[i]].decode("ascii"), -1)
        return out


class WordCounter:
    """Word 1- and 2-gram counts over a fitted vocabulary: ``CountVectorizer.transform``'s matrix, exactly.

    Tokens are what scikit-learn's default pattern ``(?u)\\b\\w\\w+\\b`` finds (after lower-casing when
    ``lowercase``). ASCII documents are tokenized with one ``bytes.translate`` (every character outside
    ``[A-Za-z0-9_]`` becomes a space), which finds the same tokens; other documents use the regex. Words
    become ids with one dict lookup, or, once a run has tokenized enough (``TOKEN_TABLE_AFTER``), through a
    ``TokenTable``; bigrams are looked up as integer pairs in a sorted array, then a ``PairTable``.
    """

    def __init__(
        self,
        words: Sequence[str],
        unigram_col: np.ndarray,
        bigram_keys: np.ndarray,
        bigram_cols: np.ndarray,
        n_features: int,
        ngram_range: tuple[int, int] = (1, 2),
        lowercase: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        if tuple(ngram_range) not in ((1, 1), (1, 2), (2, 2)):
            raise ValueError(f"ngram_range {tuple(ngram_range)}: only 1- and 2-grams can be counted here")
        self.words = list(words)
        self.n_words = len(self.words)
        self.unigram_col = np.asarray(unigram_col, dtype=np.int64)  # word id -> column or -1; [-1] stays -1
        self.bigram_keys = np.asarray(bigram_keys, dtype=np.int64)  # sorted first * n_words + second
        self.bigram_cols = np.asarray(bigram_cols, dtype=np.int64)
        self.n_features = int(n_features)
        self.min_n, self.max_n = (int(n) for n in ngram_range)
        self.lowercase = bool(lowercase)
        self.dtype = np.dtype(dtype)
        self.pattern = re.compile(DEFAULT_TOKEN_PATTERN)
        self._arrow: Any = None  # the words as an Arrow array, built on first use
        self._pairs: PairTable | None = None  # the bigrams as a hash table (see PAIR_TABLE_AFTER)
        self._tokens: TokenTable | None = None  # the words as a table for large batches (TOKEN_TABLE_AFTER)
        self.searched = 0  # bigrams looked up by binary search so far
        self.python_chars = 0  # characters tokenized in Python so far (see ARROW_IMPORT_AFTER)
        self.bigrams_per_char = BIGRAMS_PER_CHAR  # as last counted here (``expect``)
        self.vocabulary: Mapping[str, int] | None = None  # the vocabulary it was built from, when known
        table = bytearray(b" " * 256)
        for c in _WORD_CHARS + _UPPER:
            table[c] = c + 32 if self.lowercase and c in _UPPER else c
        self.table = bytes(table)
        table[ord(_DOC_BREAK)] = ord(_DOC_BREAK)
        self._batch_table = bytes(table)  # the same, keeping the document separator
        # word -> id; also -2 for the one-character tokens the split makes (never words) and -3 for the
        # separator, so that one lookup serves every token
        self.word_id = {chr(c): _SKIP_ID for c in set(self._batch_table) - {ord(" ")}}
        self.word_id.update(zip(self.words, range(self.n_words), strict=True))
        self.word_id[_DOC_BREAK] = _BREAK_ID

    @classmethod
    def from_vocabulary(
        cls,
        vocabulary: Mapping[str, int],
        ngram_range: tuple[int, int] = (1, 2),
        lowercase: bool = True,
        dtype: Any = np.float32,
    ) -> WordCounter:
        """The counter of a fitted ``vocabulary_`` (term -> column; a bigram is "first second")."""
        words: dict[str, int] = {}
        uni: list[tuple[int, int]] = []
        bi: list[tuple[int, int, int]] = []
        for term, col in vocabulary.items():
            first, sep, second = term.partition(" ")
            a = words.setdefault(first, len(words))
            if sep:
                bi.append((a, words.setdefault(second, len(words)), col))
            else:
                uni.append((a, col))
        n_words = len(words)
        unigram_col = np.full(n_words + 1, -1, dtype=np.int64)
        for a, col in uni:
            unigram_col[a] = col
        pairs = np.asarray(bi, dtype=np.int64).reshape(-1, 3)
        keys = pairs[:, 0] * n_words + pairs[:, 1]
        order = np.argsort(keys, kind="stable")
        counter = cls(
            list(words),
            unigram_col,
            keys[order],
            pairs[order, 2],
            len(vocabulary),
            ngram_range,
            lowercase,
            dtype,
        )
        counter.vocabulary = vocabulary
        return counter

    def token_ids(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document position, word id or -1) of every token of ``docs``, in order.

        Batches of at least ``ARROW_FROM`` characters are tokenized with pyarrow (about twice as fast per
        character) once pyarrow is imported or ``ARROW_IMPORT_AFTER`` characters have gone through Python;
        the others in Python, so a short run never pays for importing pyarrow. Both give the same ids
        (``tests/unit/test_scorer.py``).
        """
        chars = sum(map(len, docs))
        if chars >= ARROW_FROM and (
            self.python_chars >= ARROW_IMPORT_AFTER or "pyarrow.compute" in sys.modules
        ):
            plain = [i for i, d in enumerate(docs) if d.isascii()]
            return self._partitioned_ids(docs, plain, self._arrow_ascii)
        self.python_chars += chars
        plain = [i for i, d in enumerate(docs) if d.isascii() and _DOC_BREAK not in d]
        return self._partitioned_ids(docs, plain, self._python_ascii)

    def _partitioned_ids(
        self,
        docs: Sequence[str],
        plain: list[int],
        tokenize_plain: Callable[[list[str]], tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """``token_ids``: the documents at ``plain`` (ASCII) through ``tokenize_plain``, the others through
        the regex; each tokenizer gives (position among the documents it was given, word id)."""
        other: list[int] = []
        if len(plain) < len(docs):
            is_plain = set(plain)
            other = [i for i in range(len(docs)) if i not in is_plain]
        doc_parts, id_parts = [], []
        for rows, tokenize in ((plain, tokenize_plain), (other, self._regex_ids)):
            if rows:
                local, ids = tokenize([docs[i] for i in rows])
                doc_parts.append(np.asarray(rows, dtype=np.int64)[local])
                id_parts.append(ids)
        if not doc_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(doc_parts), np.concatenate(id_parts)

    def _python_ascii(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """ASCII documents (without the separator) translated as one string, a separator token between
        documents, every token looked up in the ``TokenTable`` (``TOKEN_TABLE_AFTER``) or, before it is worth
        building, split and looked up by a C-level ``map``."""
        joined_text = f" {_DOC_BREAK} ".join(docs)
        text = joined_text.encode("ascii").translate(self._batch_table)
        if self._tokens is None and self.python_chars >= TOKEN_TABLE_AFTER * self.n_words:
            self._build_token_table()
        if self._tokens is not None:
            ids = self._tokens.ids_of(text)
        else:
            tokens = text.decode("ascii").split()
            ids = np.fromiter(map(self.word_id.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        local = np.cumsum(ids == _BREAK_ID)
        keep = ids >= -1  # drops the breaks and the one-character tokens
        return local[keep], ids[keep]

    def _build_token_table(self) -> None:
        self._tokens = TokenTable("\x00".join(self.words).encode("utf-8"), self.word_id)

    def expect(self, chars: int) -> None:
        """Build now the tables (``TokenTable``, ``PairTable``) that the rules (``TOKEN_TABLE_AFTER``,
        ``PAIR_TABLE_AFTER``) call for once the ``chars`` characters that processes about to be forked from
        this one will tokenize are counted with this process's own work: each such process then inherits
        them instead of building its own. Their bigram look-ups are estimated from this counter's last batch.
        Nothing is recorded: each process's later choices count its own work only."""
        if self._tokens is None and self.python_chars + chars >= TOKEN_TABLE_AFTER * self.n_words:
            self._build_token_table()
        self._bigram_table(int(chars * self.bigrams_per_char))

    def _regex_ids(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Documents tokenized with scikit-learn's pattern (after lower-casing when ``lowercase``)."""
        findall, lower = self.pattern.findall, self.lowercase
        found = [findall(d.lower() if lower else d) for d in docs]
        lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
        tokens = list(chain.from_iterable(found))
        ids = np.fromiter(map(self.word_id.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        return np.repeat(np.arange(len(docs), dtype=np.int64), lengths), ids

    def _arrow_words(self) -> Any:
        """The words as ASCII bytes in an Arrow array (position = id; non-ASCII words empty)."""
        if self._arrow is None:
            self._arrow = _arrow_strings([w.encode("ascii") if w.isascii() else b"" for w in self.words])
        return self._arrow

    def _arrow_ascii(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import pyarrow.compute as pc

        table = self.table
        translated = _arrow_strings([d.encode("ascii").translate(table) for d in docs])
        runs = pc.split_pattern(translated, pattern=b" ")
        flat = runs.flatten()
        token = pc.greater_equal(pc.binary_length(flat), _arrow_int(2))
        parent = pc.list_parent_indices(runs).filter(token)
        ids = pc.index_in(flat.filter(token), value_set=self._arrow_words())
        return _numpy(parent), _numpy(pc.fill_null(ids, _arrow_int(-1)))

    def counts(self, docs: Sequence[str]) -> Csr:
        """The (n_docs, n_features) count matrix (CSR, sorted indices) of ``docs``."""
        n = len(docs)
        doc, ids = self.token_ids(docs)
        keys = []
        if self.min_n == 1:
            col = self.unigram_col[ids]
            found = col >= 0
            keys.append(doc[found] * self.n_features + col[found])
        if self.max_n == 2 and len(ids) > 1 and len(self.bigram_keys):
            pair = (doc[1:] == doc[:-1]) & (ids[:-1] >= 0) & (ids[1:] >= 0)
            query = ids[:-1][pair] * self.n_words + ids[1:][pair]
            self.bigrams_per_char = len(query) / max(1, sum(map(len, docs)))
            cols = self._bigram_cols(query)
            found = cols >= 0
            keys.append(doc[:-1][pair][found] * self.n_features + cols[found])
        key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        if n * self.n_features < np.iinfo(np.int32).max:
            key = key.astype(np.int32)  # sorts twice as fast
        key.sort()
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        counts = np.diff(np.r_[first, len(key)])
        unique = key[first]
        rows, cols = np.divmod(unique, self.n_features)
        index_dtype = np.int32 if max(len(unique), self.n_features) < np.iinfo(np.int32).max else np.int64
        return Csr(
            counts.astype(self.dtype),
            cols.astype(index_dtype),
            indptr_of(rows, n, index_dtype),
            (n, self.n_features),
        )

    def _bigram_table(self, queries: int) -> None:
        """Build the ``PairTable`` once the look-ups searched so far and ``queries`` more call for it."""
        looked_up = self.searched + queries
        if (
            self._pairs is None
            and len(self.bigram_keys)
            and looked_up >= PAIR_TABLE_AFTER * len(self.bigram_keys)
        ):
            self._pairs = PairTable(self.bigram_keys, self.bigram_cols)

    def _bigram_cols(self, query: np.ndarray) -> np.ndarray:
        """The column of each bigram key of ``query``, -1 for a bigram outside the vocabulary."""
        self._bigram_table(len(query))
        if self._pairs is not None:
            return self._pairs.get(query)
        self.searched += len(query)
        pos = np.minimum(np.searchsorted(self.bigram_keys, query), len(self.bigram_keys) - 1)
        return np.where(self.bigram_keys[pos] == query, self.bigram_cols[pos], -1)

    def terms(self) -> list[str]:
        """The vocabulary's terms in column order."""
        out = [""] * self.n_features
        for a in np.flatnonzero(self.unigram_col[:-1] >= 0):
            out[self.unigram_col[a]] = self.words[a]
        firsts, seconds = np.divmod(self.bigram_keys, self.n_words)
        for a, b, col in zip(firsts.tolist(), seconds.tolist(), self.bigram_cols.tolist(), strict=True):
            out[col] = f"{self.words[a]} {self.words[b]}"
        return out


def _numpy(array: Any) -> np.ndarray:
    """An Arrow int32/int64 array without nulls as an int64 numpy array, read from its buffer
    (pyarrow's own conversions import pandas: 0.3-0.4 s on a cold start)."""
    if array.null_count:
        raise ValueError("an Arrow array with nulls")
    dtype = np.int32 if array.type.bit_width == 32 else np.int64
    values = np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset : array.offset + len(array)]
    return values.astype(np.int64)


def _arrow_int(value: int) -> Any:
    """An Arrow int32 scalar (``pa.scalar`` on a Python int imports pandas)."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int32(), 1, [None, pa.py_buffer(np.array([value], np.int32))])[0]


def _arrow_strings(items: Sequence[bytes]) -> Any:
    """A pyarrow binary array of ``items``, built from its buffers: ``pa.array`` on a list looks for pandas
    and imports it."""
    import pyarrow as pa

    kind = pa.binary()
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)), out=offsets[1:])
    if offsets[-1] >= np.iinfo(np.int32).max:
        kind = pa.large_binary()
    else:
        offsets = offsets.astype(np.int32)
    return pa.Array.from_buffers(
        kind, len(items), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(items))]
    )


def tfidf(counts: Any, idf: np.ndarray | None, sublinear: bool) -> Any:
    """``TfidfTransformer.transform`` with ``norm="l2"``, in place on a CSR count matrix, bit for bit."""
    if sublinear:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if idf is not None:
        counts.data *= idf[counts.indices]
    normalize_rows(counts)
    return counts


def normalize_rows(m: Any) -> None:
    """Scale each CSR row to unit L2 norm in place, as scikit-learn's ``_inplace_csr_row_normalize_l2``.

    That loop adds each row's squares (products in the data's precision) one after the other in double
    precision; the position-by-position sweep below (``csr.k_major``) adds them in the same order, so the norms
    are identical.
    """
    lengths = np.diff(m.indptr).astype(np.int64)
    if not len(lengths) or not lengths.max(initial=0):
        return
    rank, active, offsets, source = k_major(m.indptr)
    squares = (m.data * m.data).astype(np.float64)[source]
    sums = np.zeros(len(lengths), dtype=np.float64)
    for k in range(len(active)):
        sums[: active[k]] += squares[offsets[k] : offsets[k + 1]]
    sums = sums[rank]
    norms = np.sqrt(sums)
    norms[sums == 0.0] = 1.0  # empty rows stay as they are
    m.data[:] = m.data / np.repeat(norms, lengths)


# --------------------------------------------------------------------------- shared with NewsTagger


class ScoringMixin:
    """From a feature matrix to probabilities, thresholds, labels and evidence.

    Needs ``axes``, ``labels_`` (axis -> labels), ``coef_`` (n_features, n_labels), ``intercept_``,
    ``platt_`` (n_labels, 2), ``thresholds_``, ``transform_docs``, ``feature_names``, ``_at_least_one`` and
    ``_multi_label`` (false for a single-label axis: one label per document, its most probable one; its
    scores are the Platt probabilities divided by their sum, so they sum to 1; no thresholds apply).
    """

    axes: Sequence[str]
    labels_: Mapping[str, Sequence[str]]
    coef_: np.ndarray
    intercept_: np.ndarray
    platt_: np.ndarray
    thresholds_: np.ndarray

    def transform_docs(self, X: Any) -> Any:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def feature_names(self) -> np.ndarray:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def _at_least_one(self, axis: str) -> bool:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def _multi_label(self, axis: str) -> bool:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def single_label_axes(self) -> list[str]:
        """The axes that give each document exactly one label (``multi_label: false``)."""
        return [axis for axis in self.axes if not self._multi_label(axis)]

    def _raw(self, M: Any) -> np.ndarray:
        return np.asarray(M @ self.coef_) + self.intercept_

    def _slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for axis in self.axes:
            out[axis] = slice(start, start + len(self.labels_[axis]))
            start += len(self.labels_[axis])
        return out

    def scores_from_features(self, M: Any) -> dict[str, np.ndarray]:
        """Per axis, probabilities of shape (n_docs, n_labels) from a feature matrix; on a single-label
        axis the Platt probabilities divided by their sum (each row sums to 1)."""
        raw = self._raw(M)
        probs = sigmoid(raw * self.platt_[:, 0] + self.platt_[:, 1])
        out = {}
        for axis, s in self._slices().items():
            p = probs[:, s]
            if not self._multi_label(axis) and p.shape[1]:
                p = p / p.sum(axis=1, keepdims=True)
            out[axis] = p
        return out

    def predict_scores(self, X: Any) -> dict[str, np.ndarray]:
        """Per axis, label probabilities of shape (n_docs, n_labels), columns in ``labels_[axis]`` order."""
        return self.scores_from_features(self.transform_docs(X))

    def thresholds(self, overrides: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """Per axis, the threshold of each label; ``overrides`` maps an axis or a label to a value."""
        overrides = overrides or {}
        out = {}
        for axis, s in self._slices().items():
            t = self.thresholds_[s].copy()
            if axis in overrides:
                t[:] = overrides[axis]
            for j, label in enumerate(self.labels_[axis]):
                if label in overrides:
                    t[j] = overrides[label]
            out[axis] = t
        return out

    def hits_from_scores(
        self, scores: Mapping[str, np.ndarray], overrides: Mapping[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """Per axis, a boolean (n_docs, n_labels) matrix: which labels each document gets (on a single-label
        axis exactly one, the most probable; threshold overrides do not apply to it)."""
        out: dict[str, np.ndarray] = {}
        for axis, t in self.thresholds(overrides).items():
            probs = scores[axis]
            if not self._multi_label(axis):
                hit = np.zeros(probs.shape, dtype=bool)
                if probs.shape[1]:
                    hit[np.arange(len(probs)), probs.argmax(axis=1)] = True
                out[axis] = hit
                continue
            hit = probs >= t
            if self._at_least_one(axis) and probs.shape[1]:
                empty = ~hit.any(axis=1)
                hit[empty, probs[empty].argmax(axis=1)] = True
            out[axis] = hit
        return out

    def labels_from_scores(
        self, scores: Mapping[str, np.ndarray], overrides: Mapping[str, float] | None = None
    ) -> dict[str, list[list[str]]]:
        """Per axis, the predicted label list of each document."""
        return self._label_lists(self.hits_from_scores(scores, overrides))

    def _label_lists(self, hits: Mapping[str, np.ndarray]) -> dict[str, list[list[str]]]:
        """Per axis, each document's label names from a boolean hit matrix."""
        return {
            axis: [list(compress(self.labels_[axis], row)) for row in hit.tolist()]
            for axis, hit in hits.items()
        }

    def predict_labels(
        self, X: Any, overrides: Mapping[str, float] | None = None
    ) -> dict[str, list[list[str]]]:
        """Per axis, the predicted label list of each document."""
        return self.labels_from_scores(self.predict_scores(X), overrides)

    def predict(self, X: Any) -> dict[str, np.ndarray]:
        """Per axis (a dict even for one axis), the int8 indicator matrix (n_docs, n_labels) of the labels
        each document gets; columns in ``labels_[axis]`` order (``predict_labels`` gives names instead)."""
        return {
            axis: hit.astype(np.int8) for axis, hit in self.hits_from_scores(self.predict_scores(X)).items()
        }

    def predict_proba(self, X: Any) -> dict[str, np.ndarray]:
        """Per axis, label probabilities of shape (n_docs, n_labels): the same as ``predict_scores``."""
        return self.predict_scores(X)

    def explain_features(
        self,
        M: Any,
        labels: Mapping[str, Sequence[Sequence[str]]],
        n: int = 5,
        overrides: Mapping[str, float] | None = None,
    ) -> list[dict[str, dict[str, list[tuple[str, float]]]]]:
        """Per document, per axis, per given label: the evidence that pushed it, in words, strongest first.

        Evidence reads ``("terms: ceasefire, airstrike", 0.41)`` (the word features with the largest positive
        weight x value, stop words left out, their weights summed) and, for a region, ``("mentions Venezuela",
        0.8)`` for the gazetteer columns of the countries of that region only (``explain_places`` names the
        mentions themselves). A label of an axis that was not given but came close (``near_misses``) is added
        with why it fell short first: ``("Latin America 0.31, needs 0.45", 0.31)``; ``overrides`` are the
        threshold overrides the labels were made with.
        """
        return self._evidence(M, labels, n, overrides, None)

    def explain(self, X: Any, n: int = 5) -> list[dict[str, dict[str, list[tuple[str, float]]]]]:
        """Per document, the evidence in words behind each predicted label and each near miss (see
        ``explain_features``; with a gazetteer and a regions axis, the place mentions: ``explain_places``)."""
        M = self.transform_docs(X)
        labels = self.labels_from_scores(self.scores_from_features(M))
        if REGION_AXIS in self.axes and self._gaz_layout() is not None:
            titles, texts = split_docs(X)
            return self.explain_places(M, labels, titles, texts, n)
        return self.explain_features(M, labels, n)

    def near_misses(
        self,
        scores: Mapping[str, np.ndarray],
        labels: Mapping[str, Sequence[Sequence[str]]],
        overrides: Mapping[str, float] | None = None,
    ) -> list[dict[str, tuple[str, float, float]]]:
        """Per document, per axis: the label that came closest to its threshold without being given, as
        (label, score, threshold), when its score is within ``NEAR_MISS`` of the threshold. A single-label
        axis has none: it gives its most probable label, no threshold applies."""
        out: list[dict[str, tuple[str, float, float]]] = []
        thresholds = self.thresholds(overrides)
        multi = [axis for axis in self.axes if self._multi_label(axis)]
        for i in range(len(next(iter(labels.values()), []))):
            doc: dict[str, tuple[str, float, float]] = {}
            for axis in multi:
                given = set(labels[axis][i])
                best: tuple[str, float, float] | None = None
                for j, label in enumerate(self.labels_[axis]):
                    p, t = float(scores[axis][i, j]), float(thresholds[axis][j])
                    if label in given or p >= t or p < t - NEAR_MISS:
                        continue
                    if best is None or t - p < best[2] - best[1]:
                        best = (label, p, t)
                if best is not None:
                    doc[axis] = best
            out.append(doc)
        return out

    def _evidence(
        self,
        M: Any,
        labels: Mapping[str, Sequence[Sequence[str]]],
        n: int,
        overrides: Mapping[str, float] | None,
        mentions: Sequence[Sequence[tuple[str, str, str]]] | None,
    ) -> list[dict[str, dict[str, list[tuple[str, float]]]]]:
        """``explain_features`` / ``explain_places``: ``mentions`` (per document) names the places."""
        names = self.feature_names()
        slices = self._slices()
        layout = self._gaz_layout() if REGION_AXIS in self.axes else None
        M = M.tocsr()
        misses = self.near_misses(self.scores_from_features(M), labels, overrides)
        out = []
        for i in range(M.shape[0]):
            row = M.getrow(i)
            doc: dict[str, dict[str, list[tuple[str, float]]]] = {}
            for axis in self.axes:
                doc[axis] = {}
                wanted = list(labels[axis][i])
                miss = misses[i].get(axis)
                if miss is not None:
                    wanted.append(miss[0])
                for label in wanted:
                    col = slices[axis].start + list(self.labels_[axis]).index(label)
                    contrib = row.data * self.coef_[row.indices, col]
                    found = mentions[i] if mentions is not None else None
                    places = (
                        _place_evidence(row.indices, row.data, contrib, layout, label, found)
                        if axis == REGION_AXIS and layout is not None
                        else []
                    )
                    terms = _word_evidence(row.indices, contrib, names, n)
                    entries = sorted(places + terms, key=lambda t: -t[1])[:n]
                    entries = [(t, round(float(w), 4)) for t, w in entries if w > 0]
                    if label not in labels[axis][i] and miss is not None:
                        _, p, t = miss
                        entries.insert(0, (f"{label} {p:.2f}, needs {t:.2f}", round(p, 4)))
                    doc[axis][label] = entries
            out.append(doc)
        return out

    # -- regions: home, primary region, place evidence (added for issue 15; the methods above are unchanged)

    def _gaz_layout(self) -> GazLayout | None:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def _place_index(self) -> _Index:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def default_home(self) -> str | None:
        """The home country this model was trained with (``features.gazetteer.home``), or None."""
        layout = self._gaz_layout()
        return layout.home if layout is not None else None

    def resolve_home(self, home: str | None = MODEL_HOME) -> str | None:
        """``home`` as an upper-case ISO code or None: ``MODEL_HOME`` is the model's own, "" and "none" none.

        ValueError when a home is asked of a model that cannot apply it (no regions axis, no gazetteer
        country columns, or a gazetteer mode other than log counts).
        """
        code = self.default_home() if home == MODEL_HOME else home
        if code is None or not str(code).strip() or str(code).strip().lower() == "none":
            return None
        code = str(code).strip().upper()
        layout = self._gaz_layout()
        if (
            REGION_AXIS not in self.axes
            or layout is None
            or not layout.country_index
            or not layout.log_counts
        ):
            raise ValueError(
                f"home {code}: this model cannot apply a home country (it needs a {REGION_AXIS!r} axis and the "
                "gazetteer block with country columns in log mode)"
            )
        if code not in layout.country_index:
            raise ValueError(
                f"home {code!r}: not a country code the model's gazetteer knows (e.g. US, GB, FR)"
            )
        return code

    def without_home(self, M: Any, home: str) -> tuple[Any, np.ndarray]:
        """(features, allowed): ``M`` with the home country's gazetteer evidence removed, and per document
        whether the home's region may be predicted.

        A document keeps its home evidence, and may get the home's region, when it also names another
        country of that region or a land neighbour of the home (a US-Canada or US-Mexico story for a US
        site); otherwise the home's country column and its part of its region's count are removed (the
        region share keeps its denominator, so a passing foreign mention stays passing) and the home's
        region is not predicted. ``M`` is not changed.
        """
        layout = self._gaz_layout()
        assert layout is not None
        M = M.tocsr(copy=True)
        n = M.shape[0]
        home_col = layout.start + layout.country_index[home]
        home_region = layout.region_of.get(home)
        friends = {
            layout.start + j
            for iso, j in layout.country_index.items()
            if iso != home
            and (
                (home_region is not None and layout.region_of.get(iso) == home_region)
                or iso in layout.neighbours.get(home, ())
            )
        }
        allowed = np.zeros(n, dtype=bool)
        region_col = layout.start + home_region if home_region is not None else -1
        share_col = (
            layout.start + layout.n_names + home_region if layout.shares and home_region is not None else -1
        )
        w = layout.weight
        for i in range(n):
            lo, hi = M.indptr[i], M.indptr[i + 1]
            cols = M.indices[lo:hi]
            if any(int(c) in friends for c in cols):
                allowed[i] = True
                continue
            at = np.flatnonzero(cols == home_col)
            if not len(at) or not w:
                continue
            vals = M.data[lo:hi]
            home_count = float(np.expm1(np.float64(vals[at[0]]) / w))
            vals[at[0]] = 0.0
            r = np.flatnonzero(cols == region_col)
            if len(r):
                before = float(np.expm1(np.float64(vals[r[0]]) / w))
                after = max(before - home_count, 0.0)
                vals[r[0]] = np.float32(np.log1p(after) * w) if after > 1e-6 else 0.0
                s_at = np.flatnonzero(cols == share_col)
                if len(s_at):
                    vals[s_at[0]] = (
                        np.float32(vals[s_at[0]] * (after / before)) if before > 0 and after > 1e-6 else 0.0
                    )
        M.eliminate_zeros()
        if home_region is None:
            allowed[:] = True
        return M, allowed

    def tag(
        self, X: Any, overrides: Mapping[str, float] | None = None, home: str | None = MODEL_HOME
    ) -> tuple[Any, dict[str, np.ndarray], dict[str, list[list[str]]]]:
        """(features, probabilities, labels) of ``X``: what every output scores with.

        Without a home the same as ``transform_docs`` + ``scores_from_features`` + ``labels_from_scores``.
        With one (``home``; by default the model's own, ``default_home``) its mentions alone make no region:
        see ``without_home``.
        """
        return self.tag_features(self.transform_docs(X), overrides, home)

    def tag_features(
        self, M: Any, overrides: Mapping[str, float] | None = None, home: str | None = MODEL_HOME
    ) -> tuple[Any, dict[str, np.ndarray], dict[str, list[list[str]]]]:
        """``tag`` of documents already turned into features ``M`` (``transform_docs``)."""
        code = self.resolve_home(home)
        if code is None:
            scores = self.scores_from_features(M)
            return M, scores, self.labels_from_scores(scores, overrides)
        M, allowed = self.without_home(M, code)
        scores = self.scores_from_features(M)
        hits = self.hits_from_scores(scores, overrides)
        layout = self._gaz_layout()
        assert layout is not None
        region = layout.regions[layout.region_of[code]] if code in layout.region_of else None
        labels = self.labels_[REGION_AXIS]
        if region in labels:
            hits[REGION_AXIS][~allowed, labels.index(region)] = False
        return M, scores, self._label_lists(hits)

    def primary_regions(
        self, scores: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[Sequence[str]]], M: Any = None
    ) -> list[str | None]:
        """Per document, the one region it is mostly about: of its predicted regions, the most probable one,
        ties broken by the region's gazetteer mentions in ``M`` (then label order); None without a region.

        Empty when the model has no regions axis.
        """
        if REGION_AXIS not in self.axes:
            return []
        names = list(self.labels_[REGION_AXIS])
        probs = np.asarray(scores[REGION_AXIS], dtype=np.float64)
        layout = self._gaz_layout() if M is not None else None
        mentions = None
        if layout is not None:
            cols = [layout.start + layout.regions.index(r) if r in layout.regions else -1 for r in names]
            dense = Csr.of(M).columns([c for c in cols if c >= 0]) if any(c >= 0 for c in cols) else None
            if dense is not None:
                mentions = np.zeros((M.shape[0], len(names)))
                mentions[:, [j for j, c in enumerate(cols) if c >= 0]] = dense
        out: list[str | None] = []
        for i, row in enumerate(labels[REGION_AXIS]):
            if not row:
                out.append(None)
                continue
            key = [
                (
                    probs[i, names.index(r)],
                    mentions[i, names.index(r)] if mentions is not None else 0.0,
                    -names.index(r),
                )
                for r in row
            ]
            out.append(row[max(range(len(row)), key=key.__getitem__)])
        return out

    def region_mentions(
        self, titles: Sequence[str], texts: Sequence[str]
    ) -> list[list[tuple[str, str, str]]]:
        """Per document, its place mentions (surface, ISO alpha-2, kind), title first, in text order."""
        idx = self._place_index()
        return [find_mentions(idx, ti) + find_mentions(idx, te) for ti, te in zip(titles, texts, strict=True)]

    def explain_places(
        self,
        M: Any,
        labels: Mapping[str, Sequence[Sequence[str]]],
        titles: Sequence[str],
        texts: Sequence[str],
        n: int = 5,
        overrides: Mapping[str, float] | None = None,
    ) -> list[dict[str, dict[str, list[tuple[str, float]]]]]:
        """``explain_features``, with a region's gazetteer evidence named by the mentions behind it.

        For each region, the weight of the gazetteer columns of that region (its count and share, and the
        columns of its countries) is given to its countries in proportion to their mentions, and each
        country's weight to its surfaces: ``("mentions Caracas (Venezuela)", 0.81)``. Mentions of countries
        of other regions are never evidence for it. Other axes: ``explain_features``'s.
        """
        mentions = self.region_mentions(titles, texts) if self._gaz_layout() is not None else None
        return self._evidence(M, labels, n, overrides, mentions)


class GazLayout(NamedTuple):
    """Where the gazetteer block sits in a feature matrix, and what its columns mean."""

    start: int  # first column of the block
    regions: list[str]  # region names, in column order
    region_of: dict[str, int]  # ISO -> region position
    country_index: dict[str, int]  # ISO -> column within the block
    n_names: int  # region and country columns (the share columns follow)
    shares: bool  # region-share columns present
    log_counts: bool  # columns are log1p counts (mode log or log+share)
    weight: float
    home: str | None
    neighbours: Mapping[str, Sequence[str]]
    country_names: Mapping[str, str]


# --------------------------------------------------------------------------- evidence in words


def _stop_phrase(term: str) -> bool:
    """Whether a word n-gram says nothing to a reader: a stop word, or an n-gram starting or ending with one
    (its content word is evidence of its own), or a number."""
    words = term.split()
    return not words or words[0] in STOP_WORDS or words[-1] in STOP_WORDS or term.replace(" ", "").isdigit()


def _word_evidence(
    indices: np.ndarray, contrib: np.ndarray, names: np.ndarray, n: int
) -> list[tuple[str, float]]:
    """``[("terms: a, b, c", summed weight)]`` of the ``n`` word features that pushed most (no stop words,
    no hashed or character features), or []."""
    best: list[tuple[str, float]] = []
    for k in np.argsort(-contrib).tolist():
        if contrib[k] <= 0 or len(best) == n:
            break
        name = str(names[indices[k]])
        if not name.startswith(WORD_PREFIX) or name.startswith(WORD_PREFIX + "#"):
            continue
        term = name[len(WORD_PREFIX) :]
        if not _stop_phrase(term):
            best.append((term, float(contrib[k])))
    if not best:
        return []
    return [(TERMS_PREFIX + ", ".join(t for t, _ in best), sum(w for _, w in best))]


def _place_evidence(
    indices: np.ndarray,
    values: np.ndarray,
    contrib: np.ndarray,
    layout: GazLayout,
    region: str,
    mentions: Sequence[tuple[str, str, str]] | None,
) -> list[tuple[str, float]]:
    """The gazetteer's weight for ``region`` by the countries of that region behind it (their mentions when
    given): ``[("mentions Caracas (Venezuela)", 0.81), ...]``; [] when ``region`` is no gazetteer region."""
    if region not in layout.regions:
        return []
    r = layout.regions.index(region)
    own = {layout.start + j: iso for iso, j in layout.country_index.items() if layout.region_of.get(iso) == r}
    region_cols = {layout.start + r}
    if layout.shares:
        region_cols.add(layout.start + layout.n_names + r)
    counts: dict[str, float] = {}
    per_country: dict[str, float] = {}
    region_weight = 0.0
    for c, value in zip(indices.tolist(), contrib.tolist(), strict=True):
        if c in own:
            per_country[own[c]] = per_country.get(own[c], 0.0) + value
        elif c in region_cols:
            region_weight += value
    for c, v in zip(indices.tolist(), values.tolist(), strict=True):
        if c in own:  # the country's mention count, as the column holds it
            counts[own[c]] = float(np.expm1(v / layout.weight)) if layout.weight else 0.0
    total = sum(counts.values())
    for iso, k in counts.items():  # the region's count and share: shared by its countries by mentions
        per_country[iso] = per_country.get(iso, 0.0) + (region_weight * k / total if total else 0.0)
    out: list[tuple[str, float]] = []
    if not total and region_weight > 0:  # no country columns: the region's own
        out.append((f"{PLACE_PREFIX}places in {region}", region_weight))
    surfaces: dict[str, dict[str, int]] = {}
    for surface, iso, _kind in mentions or ():
        if iso in per_country:
            surfaces.setdefault(iso, {})
            surfaces[iso][surface] = surfaces[iso].get(surface, 0) + 1
    for iso, weight in per_country.items():
        country = layout.country_names.get(iso, iso)
        found = surfaces.get(iso) or {country: 1}
        count = sum(found.values())
        for surface, k in found.items():
            text = surface if surface == country else f"{surface} ({country})"
            out.append((f"{PLACE_PREFIX}{text}", weight * k / count))
    return out


# --------------------------------------------------------------------------- the compiled model


def split_docs(docs: Any) -> tuple[list[str], list[str]]:
    """(titles, texts) from strings or a table with ``text`` and optional ``title`` columns."""
    if isinstance(docs, str):
        raise TypeError("expected a sequence of documents, got a single string")
    if hasattr(docs, "columns") or isinstance(docs, Mapping):
        if "text" not in docs:
            raise ValueError("the input table needs a 'text' column")
        texts = [t if isinstance(t, str) else "" for t in docs["text"]]
        raw_titles = docs["title"] if "title" in docs else [""] * len(texts)
        titles = [t if isinstance(t, str) else "" for t in raw_titles]
        return titles, texts
    texts = [t if isinstance(t, str) else "" for t in docs]
    return [""] * len(texts), texts


def joined(titles: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Title and text as one string per document (what the n-gram blocks read)."""
    return [f"{ti}\n{te}" if ti else te for ti, te in zip(titles, texts, strict=True)]


def region_shares(mat: Any, n_regions: int) -> Csr:
    """Each document's share of region mentions (from log1p counts): length-invariant region evidence."""
    counts = np.expm1(Csr.of(mat).columns(range(n_regions)).astype(np.float64))
    total = counts.sum(axis=1, keepdims=True)
    return Csr.from_dense(np.divide(counts, total, out=np.zeros_like(counts), where=total > 0))


def gazetteer_block(mat: Any, shares: bool, n_regions: int, weight: float) -> Csr:
    """The gazetteer block as the featurizer hands it on: region shares appended when asked, weighted."""
    if shares:
        mat = hstack([mat, region_shares(mat, n_regions)])
    return Csr.of(mat).scaled(weight).astype(np.float32)


def _blob(strings: Iterable[str]) -> np.ndarray:
    return np.frombuffer("\x00".join(strings).encode("utf-8"), dtype=np.uint8)


def _strings(blob: np.ndarray) -> list[str]:
    return blob.tobytes().decode("utf-8").split("\x00") if blob.size else []


class ScorerError(ValueError):
    """A scorer file that cannot be read (wrong format, missing arrays, inconsistent shapes)."""


class Scorer(ScoringMixin):
    """A tagger compiled for scoring: word TF-IDF + gazetteer blocks and linear heads, as arrays.

    Build one with ``NewsTagger.compile()``; ``save``/``load`` write and read one ``.npz`` file.
    """

    def __init__(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.meta = dict(meta)
        self.arrays = dict(arrays)
        self.axes = list(meta["axes"])
        self.labels_ = {a: list(v) for a, v in meta["labels"].items()}
        self.coef_ = arrays["coef"]
        self.intercept_ = arrays["intercept"]
        self.platt_ = arrays["platt"]
        self.thresholds_ = arrays["thresholds"]
        self.at_least_one_ = dict(meta["at_least_one"])
        self.multi_label_ = {a: bool(v) for a, v in meta.get("multi_label", {}).items()}
        self.include_title = bool(meta["include_title"])
        self.blocks = list(meta["blocks"])  # [(name, n_columns)], in column order
        self._words: WordCounter | None = None
        self._places: _Index | None = None
        self._names: np.ndarray | None = None
        n = sum(width for _, width in self.blocks)
        if self.coef_.shape != (n, sum(len(v) for v in self.labels_.values())):
            raise ScorerError(f"coef has shape {self.coef_.shape}, expected ({n}, number of labels)")

    def _at_least_one(self, axis: str) -> bool:
        return bool(self.at_least_one_.get(axis, False))

    def _multi_label(self, axis: str) -> bool:
        return self.multi_label_.get(axis, True)  # scorers written before the setting: multi-label

    # -- the blocks

    def _word_counter(self) -> WordCounter:
        if self._words is None:
            w, a = self.meta["word"], self.arrays
            self._words = WordCounter(
                _strings(a["word_words"]),
                a["word_unigram_col"],
                a["word_bigram_keys"],
                a["word_bigram_cols"],
                w["n_features"],
                tuple(w["ngram_range"]),
                w["lowercase"],
                np.dtype(w["dtype"]),
            )
        return self._words

    def _place_index(self) -> _Index:
        if self._places is None:
            a = self.arrays
            self._places = index_from_parts(
                a["gaz_codes"].tobytes(),
                a["gaz_exact_keys"].tobytes(),
                a["gaz_exact_entries"].tolist(),
                a["gaz_upper_keys"].tobytes(),
                a["gaz_upper_entries"].tolist(),
                a["gaz_prefixes"].tobytes(),
                self.meta["gaz"]["stats"],
                a["gaz_firsts"].tobytes() if "gaz_firsts" in a else None,  # scorers compiled before: None
            )
        return self._places

    def expect(self, titles: Sequence[str], texts: Sequence[str]) -> None:
        """Prepare for documents that processes about to be forked from this one will score
        (``WordCounter.expect``)."""
        if any(name == "word" for name, _ in self.blocks):
            chars = sum(map(len, texts)) + (sum(map(len, titles)) if self.include_title else 0)
            self._word_counter().expect(chars)

    def _word_block(self, docs: Sequence[str]) -> Any:
        w = self.meta["word"]
        idf = self.arrays.get("word_idf")
        return tfidf(self._word_counter().counts(docs), idf, bool(w["sublinear_tf"]))

    def _gaz_block(self, titles: Sequence[str], texts: Sequence[str]) -> Csr:
        g = self.meta["gaz"]
        indptr, indices, data = mention_rows(
            self._place_index(),
            zip(titles, texts, strict=True),
            g["title_weight"],
            g["region_index"],
            g["country_index"],
            g["n_regions"],
            g["mode"],
            int(g.get("lede_chars", 0)),
        )
        mat = Csr(
            np.asarray(data, dtype=g["dtype"]),
            np.asarray(indices, dtype=np.int32),
            np.asarray(indptr),
            (len(indptr) - 1, len(g["names"])),
        )
        return gazetteer_block(mat, bool(g["shares"]), g["n_regions"], g["weight"])

    def transform_docs(self, X: Any) -> Csr:
        """The feature matrix of ``X`` (strings, or a table with ``text`` and optional ``title``), as a
        numpy-only ``Csr`` (``to_scipy()`` gives the scipy matrix)."""
        titles, texts = split_docs(X)
        text_in = joined(titles, texts) if self.include_title else texts
        mats = []
        for name, _ in self.blocks:
            if name == "word":
                mats.append(self._word_block(text_in))
            elif name == "gaz":
                mats.append(self._gaz_block(titles, texts))
            else:
                raise ScorerError(f"unknown feature block {name!r}")
        return hstack(mats, dtype=np.float32)

    def _gaz_layout(self) -> GazLayout | None:
        start = 0
        for name, width in self.blocks:
            if name == "gaz":
                g = self.meta["gaz"]
                n_regions = int(g["n_regions"])
                regions = [str(f).split("=", 1)[1] for f in g["names"][:n_regions]]
                return GazLayout(
                    start=start,
                    regions=regions,
                    region_of={iso: int(r) for iso, r in g["region_index"].items()},
                    country_index={iso: int(j) for iso, j in g["country_index"].items()},
                    n_names=len(g["names"]),
                    shares=bool(g["shares"]),
                    log_counts=g["mode"] == "log",
                    weight=float(g["weight"]),
                    home=g.get("home"),
                    neighbours=g.get("neighbours", {}),
                    country_names=g.get("country_names", {}),
                )
            start += int(width)
        return None

    def feature_names(self) -> np.ndarray:
        """Names of the features, prefixed by block (``word:``, ``gaz:``)."""
        if self._names is None:
            names: list[str] = []
            for name, _ in self.blocks:
                if name == "word":
                    names += [f"word:{t}" for t in self._word_counter().terms()]
                else:
                    g = self.meta["gaz"]
                    names += [f"gaz:{f}" for f in g["names"]]
                    if g["shares"]:
                        names += [f"gaz:share:{f}" for f in g["names"][: g["n_regions"]]]
            self._names = np.asarray(names, dtype=object)
        return self._names

    def describe(self) -> dict[str, Any]:
        """Labels and thresholds (the same keys as ``NewsTagger.describe``, from the compiled model)."""
        th = self.thresholds()
        return {
            "axes": list(self.axes),
            "labels": {a: list(v) for a, v in self.labels_.items()},
            "thresholds": {a: dict(zip(self.labels_[a], map(float, th[a]), strict=True)) for a in self.axes},
            "n_features": int(self.coef_.shape[0]),
            **{k: self.meta[k] for k in ("dropped_labels", "trained_on", "recent_corpora") if k in self.meta},
            "multi_label": {a: self._multi_label(a) for a in self.axes},
        }

    # -- files

    def save(self, path: str | Path) -> None:
        """Write the scorer to ``path`` (one uncompressed ``.npz``; no pickled objects)."""
        meta = json.dumps({**self.meta, "format": SCORER_FORMAT}, sort_keys=True)
        arrays = {**self.arrays, "meta": np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)}
        with open(path, "wb") as fh:
            save_aligned_npz(fh, arrays)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "scorer") -> Scorer:
        """The scorer in ``data`` (the bytes of a file ``save`` wrote); ScorerError when unreadable."""
        try:
            arrays = npz_views(data)
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise ScorerError(f"{name}: not a newstag scorer file ({exc})") from None
        if meta.get("format") != SCORER_FORMAT:
            raise ScorerError(
                f"{name}: scorer format {meta.get('format')!r}; this newstag reads format {SCORER_FORMAT}"
            )
        try:
            return cls(meta, arrays)
        except KeyError as exc:
            raise ScorerError(f"{name}: the scorer file lacks {exc}") from None


NPZ_ALIGN = 64
"""Where ``save_aligned_npz`` starts each array's data: a multiple of this many bytes into the file."""

_PADDING_FIELD = 0xD935  # the zip extra field id of Android's zipalign padding (readers skip unknown fields)


def save_aligned_npz(fh: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """``arrays`` as an uncompressed ``.npz`` (what ``np.savez`` writes, readable by ``np.load``) whose every
    array's data starts ``NPZ_ALIGN`` bytes aligned in the file, so that ``npz_views`` can use it in place:
    each entry's local header is padded with an extra field."""
    from numpy.lib import format as npy

    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            body = io.BytesIO()
            npy.write_array(body, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            start = fh.tell() + 30 + len(info.filename.encode("utf-8"))  # the .npy's start, without padding
            pad = -(start + 4) % NPZ_ALIGN  # the .npy header is itself a multiple of 64 bytes long
            info.extra = _PADDING_FIELD.to_bytes(2, "little") + pad.to_bytes(2, "little") + b"\0" * pad
            archive.writestr(info, body.getvalue())


def npz_views(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file held in ``data``, as read-only views into it (no CRC pass); an array
    not aligned for its type in the file is copied out, a compressed one is read by ``np.load``.

    ``np.load`` reads every array out of the zip through its CRC check: 12 ms for the Reuters model's 9 MB,
    40 ms for the world model's 36 MB. The views take a few ms; the bytes are the ones whose sha256 and
    signature the loader has just checked. Object arrays are refused, as ``np.load(allow_pickle=False)``
    refuses them. ValueError or ``zipfile.BadZipFile`` for bytes that are not such a file.
    """
    from numpy.lib import format as npy

    out: dict[str, np.ndarray] = {}
    view = memoryview(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        slow = []
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            at = info.header_offset
            if info.compress_type != zipfile.ZIP_STORED or data[at : at + 4] != b"PK\x03\x04":
                slow.append(name)
                continue
            name_end = at + 30 + int.from_bytes(data[at + 26 : at + 28], "little")
            encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
            if data[at + 30 : name_end] != info.orig_filename.encode(encoding):  # as zipfile checks it
                raise zipfile.BadZipFile(f"file name in directory {info.orig_filename!r} and header differ")
            start = name_end + int.from_bytes(data[at + 28 : at + 30], "little")
            head = io.BytesIO(view[start : start + min(info.file_size, 1 << 16)])
            version = npy.read_magic(head)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(head)
            if dtype.hasobject:
                raise ValueError(f"{info.filename}: object arrays cannot be loaded without pickle")
            count = int(np.prod(shape, dtype=np.int64))
            if head.tell() + count * dtype.itemsize > info.file_size:
                raise ValueError(f"{info.filename}: the array runs past its entry")
            array = np.frombuffer(view, dtype=dtype, count=count, offset=start + head.tell())
            array = array.reshape(shape, order="F" if fortran else "C")
            out[name] = array if array.flags.aligned else array.copy()
    if slow:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            out.update((name, npz[name]) for name in slow)
    return out


def compile_parts(
    word: Any | None,
    gaz: Any | None,
    include_title: bool,
    gazetteer_weight: float,
    shares: bool,
    blocks: Sequence[str],
    home: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the feature blocks: ``word`` a fitted word ``TfidfVectorizer``, ``gaz`` a fitted
    ``GazetteerVectorizer`` (its index built now, from the gazetteer packages, and stored, with the
    countries' names and land neighbours); ``shares`` adds the region-share columns (the featurizer's
    ``log+share`` mode); ``home`` is the model's home country (applied when scoring, ``ScoringMixin.tag``)."""
    meta: dict[str, Any] = {"include_title": bool(include_title)}
    arrays: dict[str, np.ndarray] = {}
    widths: list[tuple[str, int]] = []
    for name in blocks:
        if name == "word":
            counter = WordCounter.from_vocabulary(
                word.vocabulary_, tuple(word.ngram_range), bool(word.lowercase), word.dtype
            )
            idf = getattr(word, "idf_", None) if word.use_idf else None
            meta["word"] = {
                "n_features": counter.n_features,
                "ngram_range": [counter.min_n, counter.max_n],
                "lowercase": counter.lowercase,
                "dtype": counter.dtype.name,
                "sublinear_tf": bool(word.sublinear_tf),
            }
            arrays.update(
                word_words=_blob(counter.words),
                word_unigram_col=counter.unigram_col,
                word_bigram_keys=counter.bigram_keys,
                word_bigram_cols=counter.bigram_cols,
            )
            if idf is not None:
                arrays["word_idf"] = np.asarray(idf)
            widths.append(("word", counter.n_features))
        elif name == "gaz":
            parts = index_parts(gaz._gazetteer()._index)
            names = [str(n) for n in gaz.get_feature_names_out()]
            meta["gaz"] = {
                "title_weight": float(gaz.title_weight),
                "region_index": dict(gaz.region_index_),
                "country_index": dict(gaz.country_index_),
                "n_regions": int(gaz.n_regions_),
                "mode": gaz.mode,
                "dtype": np.dtype(gaz.dtype).name,
                "weight": gazetteer_weight,
                "shares": bool(shares),
                "names": names,
                "stats": parts["stats"],
                "lede_chars": int(getattr(gaz, "lede_chars", 0)),
                "home": home,
                "neighbours": gaz._gazetteer().neighbours(),
                "country_names": gaz._gazetteer().country_names(),
            }
            arrays.update(
                gaz_codes=np.frombuffer(parts["codes"], dtype=np.uint8),
                gaz_exact_keys=np.frombuffer(parts["exact_keys"], dtype=np.uint8),
                gaz_exact_entries=np.asarray(parts["exact_entries"], dtype=np.int32),
                gaz_upper_keys=np.frombuffer(parts["upper_keys"], dtype=np.uint8),
                gaz_upper_entries=np.asarray(parts["upper_entries"], dtype=np.int32),
                gaz_prefixes=np.frombuffer(parts["prefixes"], dtype=np.uint8),
                gaz_firsts=np.frombuffer(parts["firsts"], dtype=np.uint8),
            )
            widths.append(("gaz", len(names) + (int(gaz.n_regions_) if shares else 0)))
        else:
            raise ScorerError(f"feature block {name!r} cannot be compiled")
    meta["blocks"] = widths
    return meta, arrays
