"""Where chunks are scored: in this process (a large chunk split across the cores), in worker processes, or
on a Dask cluster.

Every engine runs the same ``score_chunk`` and hands back futures; the command writes their results in
input order, so the output does not depend on the engine.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import struct
import sys
import time
from itertools import pairwise
from typing import Any

from pipeline.errors import UsageError
from pipeline.loading import ModelInfo, load_model_files
from pipeline.predict.encode import Batch, Encoding, score_chunk

_WORKER: dict[str, Any] = {}


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog: a parent killed outright (SIGKILL) cannot stop its pool, so workers stop alone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(info: ModelInfo, enc: Encoding) -> None:
    """Process pool initializer: the verified model, once per worker (inherited as is when forked)."""
    import threading

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if _WORKER.get("path") != str(info.path):
        _WORKER.update(path=str(info.path), tagger=load_model_files(info))
    _WORKER["enc"] = enc


def _score_in_worker(batch: Batch) -> bytes:
    if len(batch.ids) >= SPLIT_PART:
        reuse_freed_memory()
    return score_chunk(_WORKER["tagger"], _WORKER["enc"], batch)


class _Done:
    """A finished result with the interface of a future."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def result(self) -> bytes:
        return self.value


def reuse_freed_memory() -> None:
    """Make glibc's ``malloc`` serve large arrays (up to ``FREED_MEMORY_KEPT``) from memory this process freed
    before, instead of mapping fresh pages for each and unmapping them when it is freed (once per process and
    its forked children; nothing elsewhere than Linux).

    Scoring a chunk allocates and frees arrays of a few MB many times over; by default glibc keeps returning
    them to the system, so they are page-faulted in and zeroed again and again: about 8,000 faults for each
    1,000 Reuters articles, none once freed memory is reused; 3,000 articles, default engine: 84 ms less CPU.
    """
    if _WORKER.get("malloc_tuned") or not sys.platform.startswith("linux"):
        return
    _WORKER["malloc_tuned"] = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # a C library without mallopt (musl)
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, FREED_MEMORY_KEPT)
    mallopt(m_trim_threshold, 2 * FREED_MEMORY_KEPT)


class Engine:
    """Where chunks are scored: ``submit(batch)`` returns a future; ``in_flight`` bounds memory."""

    in_flight = 1
    first_size: int | None = None  # the largest first chunk it wants (None: any)
    wants_last = False  # whether ``submit`` is told which chunk is the input's last (read one row ahead)

    def __init__(self, tagger: Any, enc: Encoding) -> None:
        self.tagger, self.enc = tagger, enc

    def submit(self, batch: Batch, last: bool = False) -> Any:
        """A future of the encoded output of ``batch`` (``last``: no chunk follows it)."""
        if len(batch.ids) >= SPLIT_PART:
            reuse_freed_memory()
        return _Done(score_chunk(self.tagger, self.enc, batch))

    def close(self) -> None:
        """Stop the workers (nothing to stop in this process)."""


SPLIT_PART = 500
"""Fewest documents of a chunk that ``SplitEngine`` gives a forked process: forking a loaded model and piping
its output back cost a few ms here, scoring 500 Reuters-length documents about 80 ms."""

FREED_MEMORY_KEPT = 32 << 20
"""Largest allocation that ``reuse_freed_memory`` keeps on the heap (glibc's own ceiling for its moving
threshold on 64-bit systems); the heap's free top is returned to the system beyond twice that."""

_PART_HEADER = struct.Struct("<BQ")  # a forked part's answer: 0 and its output's length, or 1 and an error's


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SplitEngine(Engine):
    """This process, with a chunk of ``2 * SPLIT_PART`` documents or more split across up to ``parts`` processes.

    Forked children score the parts, inheriting the loaded model and the tables it built (built before the
    fork when the children's share of the chunk calls for them: ``Scorer.expect``), and send their
    encoded output back through a pipe. Two chunks are in flight: while children score one, this process
    reads the next. The first chunk (submitted while none is in flight) is one part per process
    (``first_size``), so the other cores start after fewer rows are read; it leaves its first part, half a
    child's since this process also reads the next chunk, to this process, which scores it before it starts
    the next chunk's children (they inherit the tables and caches that scoring built) or when the result is
    asked for; later chunks go to children whole, so that no core waits for this process, except the input's
    last (``submit(..., last=True)``: the command reads one row ahead), of which this process, with nothing
    left to read, scores a part as large as a child's (1,000 Reuters articles: 432 -> 392 ms).

    The parts are joined in order: the bytes one process writes (JSON Lines and CSV output, whose chunks are
    rows). A child shares nothing writable with the run: it closes every inherited file but its pipe (so it
    never holds the output's lock), dies on Ctrl-C and ends with ``os._exit``, never running the parent's
    clean-up; children whose chunk is not collected are killed by ``close``.
    """

    in_flight = 2
    wants_last = True

    def __init__(self, tagger: Any, enc: Encoding, parts: int) -> None:
        super().__init__(tagger, enc)
        self.parts = parts
        self.first_size = parts * SPLIT_PART  # one part each: the other cores start after fewer rows read
        self.forked = 0  # processes forked so far
        self.running: list[_Split] = []  # submitted chunks whose result has not been taken yet

    def submit(self, batch: Batch, last: bool = False) -> Any:
        n = len(batch.ids)
        k = min(self.parts, n // SPLIT_PART)
        if k < 2:
            return super().submit(batch)
        reuse_freed_memory()  # before the fork: the children inherit it
        for split in self.running:  # this process's share of the chunk in flight first
            split.score_mine()
        mine = last or not self.running  # last: nothing left to read, its part is as large as a child's
        if mine and not last:  # this process reads the next chunk before it scores its part: half a child's
            bounds = [0, *(n * (2 * i - 1) // (2 * k - 1) for i in range(1, k + 1))]
        else:
            bounds = [n * i // k for i in range(k + 1)]
        split = _Split(self, _part(batch, 0, bounds[1]) if mine else None)
        self.running.append(split)
        children = bounds[1:] if mine else bounds
        expect = getattr(self.tagger, "expect", None)  # a scorer's tables, built once for all the children
        if expect is not None:
            expect(batch.titles[children[0] :], batch.texts[children[0] :])
        for lo, hi in pairwise(children):
            pid, fd = _fork_scoring(self.tagger, self.enc, _part(batch, lo, hi))
            self.forked += 1
            split.children.append((pid, fd, f"documents {lo + 1}-{hi} of the chunk"))
        return split

    def close(self) -> None:
        """Stop the children of chunks whose result was never taken (the run failed or was interrupted)."""
        while self.running:
            self.running.pop().stop()


class _Split:
    """A future of a split chunk: the part this process scores (if any) and the children scoring the rest."""

    def __init__(self, engine: SplitEngine, first: Batch | None) -> None:
        self.engine, self.first = engine, first
        self.children: list[tuple[int, int, str]] = []
        self.value: bytes | None = None
        self.mine = b""  # the output of ``first``, once scored

    def score_mine(self) -> None:
        """Score this process's part (once)."""
        if self.first is not None:
            first, self.first = self.first, None
            self.mine = score_chunk(self.engine.tagger, self.engine.enc, first)

    def result(self) -> bytes:
        if self.value is None:
            try:
                self.score_mine()
                out = [self.mine]
                while self.children:
                    out.append(_answer(*self.children.pop(0)))
                self.value = b"".join(out)
            finally:
                self.stop()
        return self.value

    def stop(self) -> None:
        """Kill and reap the children still running (none once the result is taken)."""
        while self.children:
            pid, fd, _ = self.children.pop()
            os.close(fd)
            _kill(pid)
        if self in self.engine.running:
            self.engine.running.remove(self)


def _part(batch: Batch, lo: int, hi: int) -> Batch:
    return Batch(
        batch.ids[lo:hi],
        batch.titles[lo:hi],
        batch.texts[lo:hi],
        batch.truncated[lo:hi],
        {name: values[lo:hi] for name, values in batch.keep.items()},
    )


def _fork_scoring(tagger: Any, enc: Encoding, batch: Batch) -> tuple[int, int]:
    """(pid, read end of its pipe) of a child scoring ``batch``; it writes ``_PART_HEADER`` and the bytes."""
    read_end, write_end = os.pipe()
    signals = {signal.SIGINT, signal.SIGTERM}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # none is handled between fork and try
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child
        status = 1
        try:
            gc.disable()  # a collection would touch (and so copy) every page of the parent's objects
            for sig in signals:
                signal.signal(sig, signal.SIG_DFL)  # (the forking thread is the child's main thread)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, _max_fd())
            try:
                data = score_chunk(tagger, enc, batch)
                status = 0
            except Exception as exc:  # sent to the parent, which raises it
                data = _pickled(exc)
            view = memoryview(_PART_HEADER.pack(status, len(data)) + data)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(status)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_end)
    return pid, read_end


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _pickled(exc: Exception) -> bytes:
    try:
        return pickle.dumps(exc)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _answer(pid: int, fd: int, what: str) -> bytes:
    """The output a child sent through ``fd``; its error raised here; RuntimeError when it died first."""
    try:
        with os.fdopen(fd, "rb") as pipe:
            data = pipe.read()
        _, wait = os.waitpid(pid, 0)
    except BaseException:  # interrupted while waiting: the child goes too
        _kill(pid)
        raise
    if len(data) >= _PART_HEADER.size:
        status, length = _PART_HEADER.unpack_from(data)
        body = data[_PART_HEADER.size :]
        if len(body) == length:
            if status == 0:
                return body
            raise pickle.loads(body)
    how = f"signal {-os.waitstatus_to_exitcode(wait)}" if os.WIFSIGNALED(wait) else "an incomplete answer"
    raise RuntimeError(f"the process forked to score {what} ended with {how}")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


class ProcessEngine(Engine):
    """``jobs`` worker processes, each loading the tagger once; at most 2 chunks per worker in flight."""

    def __init__(self, tagger: Any, enc: Encoding, jobs: int, info: ModelInfo) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().__init__(tagger, enc)
        methods = multiprocessing.get_all_start_methods()
        fork = "fork" in methods
        context = multiprocessing.get_context("fork" if fork else "spawn")
        # The parent only reads and writes: it does not build the scoring tables (gazetteer index, word ids).
        # Each worker builds its own on its first chunk; copy-on-write pages shared after a warm-up are
        # counted again in every process's RSS, so this keeps the process tree's summed RSS lower.
        # forked workers inherit the verified tagger; spawned ones load and verify it again
        _WORKER.update(path=str(info.path), tagger=tagger)
        self.pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(info, enc)
        )
        self.pool.submit(len, ()).result()  # start the workers now (all at once when forking)
        self.in_flight = 2 * jobs

    def submit(self, batch: Batch, last: bool = False) -> Any:
        return self.pool.submit(_score_in_worker, batch)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine(Engine):
    """Chunks scored on a Dask cluster: ``scheduler`` or a loopback LocalCluster of ``jobs`` workers."""

    def __init__(self, tagger: Any, enc: Encoding, jobs: int, scheduler: str | None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--engine dask needs the dask extra: pip install 'newstag[dask]'") from None
        super().__init__(tagger, enc)
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise UsageError(
                    f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})"
                ) from None
        else:
            self.cluster = _local_cluster(jobs)
            self.client = Client(self.cluster)
        n_workers = max(1, len(self.client.scheduler_info().get("workers", {})) or jobs)
        self.in_flight = 2 * n_workers
        # the tagger travels once to every worker and stays there
        self.tagger_future = self.client.scatter(tagger, broadcast=True)

    def submit(self, batch: Batch, last: bool = False) -> Any:
        return self.client.submit(score_chunk, self.tagger_future, self.enc, batch, pure=False)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _local_cluster(jobs: int) -> Any:
    """A Dask LocalCluster of ``jobs`` single-threaded workers, bound to loopback, without a dashboard."""
    import logging

    from distributed import LocalCluster

    return LocalCluster(
        n_workers=jobs,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


def make_engine(
    engine: str, tagger: Any, enc: Encoding, jobs: int | None, info: Any, scheduler: str | None
) -> Engine:
    """The engine ``--engine``, ``--jobs`` and ``--scheduler`` ask for; UsageError for a wrong combination.

    ``jobs`` None (the default): this process, large chunks split across the cores when the output is JSON
    Lines or CSV and the system is Linux; 1: this process alone; more: that many worker processes."""
    if engine == "dask":
        return DaskEngine(tagger, enc, jobs or 1, scheduler)
    if engine != "local":
        raise UsageError(f"--engine {engine!r}: use local or dask")
    if scheduler:
        raise UsageError("--scheduler needs --engine dask")
    if jobs is not None and jobs > 1:
        return ProcessEngine(tagger, enc, jobs, info)
    cores = available_cores()
    # Linux only: macOS's system libraries (Accelerate's BLAS among them) are not safe to use after a fork
    if jobs is None and cores > 1 and enc.fmt in ("jsonl", "csv") and sys.platform.startswith("linux"):
        return SplitEngine(tagger, enc, cores)
    return Engine(tagger, enc)
