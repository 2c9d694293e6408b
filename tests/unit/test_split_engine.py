"""The default predict engine (pipeline/predict/engines.py ``SplitEngine``): a large chunk is scored in forked
processes and joined in order, with the bytes one process writes; a child's failure is raised in the parent,
and no child outlives its chunk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from fixtures_model import tiny_model_folder, tiny_rows

from pipeline import predict as P
from pipeline.corpora.documents import Fields
from pipeline.corpora.files import iter_rows
from pipeline.loading import load_tagger
from pipeline.predict import engines
from pipeline.predict.command import _encoding

N = 57  # three parts with SPLIT_PART 5 and three processes: 19 each, or 11, 23, 23 for a first chunk


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def batch() -> P.Batch:
    rows = tiny_rows(N, 3)[0]
    return P.Batch(
        [r["id"] for r in rows],
        [r.get("title") or "" for r in rows],
        [r["text"] for r in rows],
        [i % 7 == 0 for i in range(N)],
        {},
    )


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "SPLIT_PART", 5)


def loaded(model_dir: Path, fmt: str) -> tuple[Any, Any, P.Encoding]:
    tagger, info = load_tagger(str(model_dir))
    return tagger, info, _encoding(tagger, fmt, "in.jsonl", "jsonl", "", None, False, None)


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_split_chunk_gives_the_bytes_of_one_process(model_dir, batch, small_parts, fmt) -> None:
    tagger, _, enc = loaded(model_dir, fmt)
    want = P.Engine(tagger, enc).submit(batch).result()
    before = children()
    for parts in (2, 3, 100):
        engine = P.SplitEngine(tagger, enc, parts)
        assert engine.submit(batch).result() == want
        assert engine.forked == min(parts, N // 5) - 1
    assert children() == before  # every child reaped
    small = P.SplitEngine(tagger, enc, 3)
    assert small.submit(P.Batch(batch.ids[:9], batch.titles[:9], batch.texts[:9], [False] * 9, {})).result()
    assert small.forked == 0  # under 2 * SPLIT_PART documents: this process alone


def test_the_default_engine_splits_and_writes_what_jobs_one_writes(
    model_dir, small_parts, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(engines, "available_cores", lambda: 3)
    tagger, info, enc = loaded(model_dir, "jsonl")
    assert isinstance(P.make_engine("local", tagger, enc, None, info, None), P.SplitEngine)
    assert type(P.make_engine("local", tagger, enc, 1, info, None)) is P.Engine
    parquet = loaded(model_dir, "parquet")[2]
    assert type(P.make_engine("local", tagger, parquet, None, info, None)) is P.Engine  # parquet: not split
    rows = tiny_rows(N, 4)[0]
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        "".join(json.dumps(r) + "\n" for r in rows[:30])
        + "not JSON\n"
        + "".join(json.dumps(r) + "\n" for r in rows[30:])
    )
    for name, jobs in (("one.jsonl", 1), ("default.jsonl", None)):
        P.predict_command(
            str(model_dir), str(inp), str(tmp_path / name), quiet=True, jobs=jobs, batch_size=40
        )
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "default.jsonl").read_bytes()
    assert len((tmp_path / "one.jsonl").read_text().splitlines()) == N


class _InChild:
    """The loaded tagger, except that scoring in a forked child does ``act`` (the parent scores as usual)."""

    def __init__(self, tagger: Any, act: Any) -> None:
        self.tagger, self.act, self.parent = tagger, act, os.getpid()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tagger, name)

    def transform_docs(self, docs: Any) -> Any:
        if os.getpid() != self.parent:
            self.act(docs)
        return self.tagger.transform_docs(docs)


def test_a_childs_error_is_raised_here_and_it_holds_none_of_our_files(
    model_dir, batch, small_parts, tmp_path
) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")
    with open(tmp_path / "locked", "w") as held:  # stands for the output's locked part file
        fd = held.fileno()

        def check(_docs: Any) -> None:
            try:
                os.fstat(fd)
                open_in_child = True
            except OSError:
                open_in_child = False
            raise ValueError(f"scored in a child; the parent's file open there: {open_in_child}")

        before = children()
        with pytest.raises(ValueError, match="open there: False"):
            P.SplitEngine(_InChild(tagger, check), enc, 3).submit(batch).result()
    assert children() == before


def test_a_child_that_dies_is_named_and_the_others_are_stopped(model_dir, batch, small_parts) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")

    def die(docs: Any) -> None:
        # this process keeps documents 1-11 (half a child's part), the first child scores 12-34
        if docs["text"][0] == batch.texts[11]:
            os.kill(os.getpid(), signal.SIGKILL)

    before = children()
    with pytest.raises(RuntimeError, match=r"documents 12-34 of the chunk ended with signal 9"):
        P.SplitEngine(_InChild(tagger, die), enc, 3).submit(batch).result()
    assert children() == before


def test_when_this_process_fails_its_children_are_stopped(model_dir, batch, small_parts) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")

    class FailsHere(_InChild):
        def transform_docs(self, docs: Any) -> Any:
            if os.getpid() == self.parent:
                raise KeyboardInterrupt  # what Ctrl-C raises in this process
            return self.tagger.transform_docs(docs)

    before = children()
    with pytest.raises(KeyboardInterrupt):
        P.SplitEngine(FailsHere(tagger, None), enc, 3).submit(batch).result()
    assert children() == before


def test_a_split_from_another_thread_than_the_main_one(model_dir, batch, small_parts) -> None:
    """A library caller may predict from a worker thread: the children still score and answer."""
    import threading

    tagger, _, enc = loaded(model_dir, "jsonl")
    want = P.Engine(tagger, enc).submit(batch).result()
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(P.SplitEngine(tagger, enc, 3).submit(batch).result()))
    thread.start()
    thread.join(60)
    assert got == [want]


def test_two_chunks_in_flight_and_close_stops_the_uncollected(model_dir, batch, small_parts) -> None:
    """The next chunk's children start before this process scores its part of the previous one, and score
    all of that chunk (this process has the previous one to finish); a run that stops before taking a
    chunk's result leaves no child behind."""
    tagger, _, enc = loaded(model_dir, "jsonl")
    want = P.Engine(tagger, enc).submit(batch).result()
    before = children()
    engine = P.SplitEngine(tagger, enc, 3)
    assert engine.in_flight == 2
    first, second = engine.submit(batch), engine.submit(batch)
    assert len(children() - before) == 2 + 3  # both chunks' children run at once; the second's all 3 parts
    assert first.result() == want and second.result() == want
    assert children() == before and engine.running == []
    engine.submit(batch)  # never collected
    assert len(children() - before) == 2
    engine.close()
    assert children() == before


def test_the_first_chunk_is_one_part_per_process(model_dir, small_parts, tmp_path) -> None:
    """The split engine asks for a first chunk of one part per process, so the other cores start after fewer
    rows are read; later chunks are ``--batch-size`` long."""
    tagger, _, enc = loaded(model_dir, "jsonl")
    engine = P.SplitEngine(tagger, enc, 3)
    assert engine.first_size == 3 * 5 and P.Engine(tagger, enc).first_size is None
    rows = [{"id": str(i), "text": f"Oil output in Paris rose {i}."} for i in range(40)]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = P.ReadOptions(Fields(), (), 100)
    read = P.read_chunks(iter_rows(str(inp), "jsonl"), options, 20, str(inp), 0, 0, None, engine.first_size)
    assert [len(c.batch.ids) for c in read] == [15, 20, 5]


# a chunk's pattern: a few arrays of some MB alive together, then freed; the page faults of repeating it
CHURN = """import resource, sys
import numpy as np
from pipeline.predict import engines
def faults_of_churn():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        live = [np.ones(500_000) for _ in range(6)]  # 4 MB each
        del live
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_churn()
print(faults_of_churn(), end=" ")
engines.reuse_freed_memory()
faults_of_churn()
print(faults_of_churn())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    done = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before > 5 * 6 * 900  # by default each 4 MB array is new memory, about 1,000 pages faulted in
    assert after < 100


def test_malloc_is_tuned_for_large_chunks_only_and_before_a_fork(
    model_dir, batch, small_parts, monkeypatch
) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")
    calls: list[str] = []
    engine = engines.SplitEngine(tagger, enc, 3)
    monkeypatch.setattr(engines, "reuse_freed_memory", lambda: calls.append(f"forked {engine.forked}"))
    one = engines.Engine(tagger, enc)
    one.submit(engines._part(batch, 0, 4)).result()  # fewer than SPLIT_PART documents: as is
    assert calls == []
    one.submit(batch).result()
    assert calls == ["forked 0"]
    engine.submit(batch).result()
    assert calls == ["forked 0", "forked 0"]  # before the first child is forked


def test_the_children_inherit_tables_built_for_their_documents(
    model_dir, batch, small_parts, monkeypatch
) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(tagger, "expect", lambda titles, texts: seen.append((len(titles), len(texts))), False)
    engine = engines.SplitEngine(tagger, enc, 3)
    first = engine.submit(batch)  # the first chunk: this process keeps 11 of the 57 documents
    later = engine.submit(batch)  # later chunks go to the children whole
    first.result(), later.result()
    assert seen == [(N - 11, N - 11), (N, N)]


def test_chunks_read_one_row_ahead_know_the_last_and_errors_come_when_they_did(tmp_path) -> None:
    rows = [{"id": str(i), "text": f"Oil output in Paris rose {i}."} for i in range(40)]
    inp = tmp_path / "in.jsonl"
    options = P.ReadOptions(Fields(), (), 100)
    for n, sizes, last in [(40, [15, 20, 5], [False, False, True]), (35, [15, 20], [False, True])]:
        inp.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]))
        ahead = list(P.read_chunks(iter_rows(str(inp), "jsonl"), options, 20, str(inp), 0, 0, None, 15, True))
        assert [len(c.batch.ids) for c in ahead] == sizes and [c.last for c in ahead] == last
        plain = list(P.read_chunks(iter_rows(str(inp), "jsonl"), options, 20, str(inp), 0, 0, None, 15))
        assert [c.batch.ids for c in plain] == [c.batch.ids for c in ahead]
        assert not any(c.last for c in plain[:-1])

    def breaks_after(k: int):
        for i in range(k):
            yield i + 1, rows[i]
        raise OSError("the disk went away")

    got = P.read_chunks(breaks_after(15), options, 20, "in.jsonl", 0, 0, None, 15, True)
    first = next(got)  # the 15 rows read before the failing one: yielded before the error, as without ahead
    assert len(first.batch.ids) == 15 and not first.last
    with pytest.raises(OSError, match="went away"):
        next(got)


def test_the_last_chunk_is_shared_with_this_process_in_equal_parts(model_dir, batch, small_parts) -> None:
    tagger, _, enc = loaded(model_dir, "jsonl")
    want = P.Engine(tagger, enc).submit(batch).result()
    assert P.SplitEngine.wants_last and not P.Engine.wants_last
    engine = P.SplitEngine(tagger, enc, 3)
    assert engine.submit(batch, last=True).result() == want
    assert engine.forked == 2  # this process scored one of the three parts: nothing is left for it to read
    first, later = engine.submit(batch), engine.submit(batch, last=True)
    assert first.result() == want and later.result() == want
    assert engine.forked == 2 + 2 + 2
