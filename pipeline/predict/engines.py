"""Where chunks are scored: in this process, in worker processes, or on a Dask cluster.

Every engine runs the same ``score_chunk`` and hands back futures; the command writes their results in
input order, so the output does not depend on the engine.
"""

from __future__ import annotations

import os
import time
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
    return score_chunk(_WORKER["tagger"], _WORKER["enc"], batch)


class _Done:
    """A finished result with the interface of a future."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def result(self) -> bytes:
        return self.value


class Engine:
    """Where chunks are scored: ``submit(batch)`` returns a future; ``in_flight`` bounds memory."""

    in_flight = 1

    def __init__(self, tagger: Any, enc: Encoding) -> None:
        self.tagger, self.enc = tagger, enc

    def submit(self, batch: Batch) -> Any:
        """A future of the encoded output of ``batch``."""
        return _Done(score_chunk(self.tagger, self.enc, batch))

    def close(self) -> None:
        """Stop the workers (nothing to stop in this process)."""


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

    def submit(self, batch: Batch) -> Any:
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

    def submit(self, batch: Batch) -> Any:
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
    engine: str, tagger: Any, enc: Encoding, jobs: int, info: Any, scheduler: str | None
) -> Engine:
    """The engine ``--engine``, ``--jobs`` and ``--scheduler`` ask for; UsageError for a wrong combination."""
    if engine == "dask":
        return DaskEngine(tagger, enc, jobs, scheduler)
    if engine != "local":
        raise UsageError(f"--engine {engine!r}: use local or dask")
    if scheduler:
        raise UsageError("--scheduler needs --engine dask")
    if jobs > 1:
        return ProcessEngine(tagger, enc, jobs, info)
    return Engine(tagger, enc)
