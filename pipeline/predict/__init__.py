"""Batch prediction: tag every article of a file, a chunk at a time, atomically and resumably.

``predict_command`` is ``newstag predict``. The input is streamed with ``corpora.files.iter_rows``; each row
becomes a document by ``corpora.documents.document_of`` (the rule training uses; bad rows go to
``<output>.rejects.jsonl``), and each chunk of ``batch_size`` documents is featurized once for all axes,
scored, labelled and encoded by ``score_chunk``, in this process (by default a chunk of 1,000 documents or
more split across the cores by fork), in ``jobs`` worker processes or on a Dask cluster (same function, so
every engine writes the same bytes), and written in input order.

The rooms:

- ``command``: the options, reading chunks, the run loop, the summary;
- ``encode``: ``Encoding``, ``Batch`` and ``Scored``, scoring a batch and the JSONL/CSV/Arrow encoders;
- ``engines``: where chunks are scored (``Engine``, ``SplitEngine``, ``ProcessEngine``, ``DaskEngine``);
- ``sinks``: where the output goes (``FileSink`` with its part, progress and lock files; ``StreamSink``).
"""

from __future__ import annotations

from pipeline.predict.command import (
    OUTPUT_FORMATS,
    STDIO,
    ReadOptions,
    parse_thresholds,
    predict_command,
    read_chunks,
    run_chunks,
    summary_lines,
)
from pipeline.predict.encode import Batch, Encoding, Scored, csv_header, encode_scored, score_chunk
from pipeline.predict.engines import DaskEngine, Engine, ProcessEngine, SplitEngine, make_engine
from pipeline.predict.sinks import Chunk, FileSink, Progress, StreamSink, write_parquet

__all__ = [
    "OUTPUT_FORMATS",
    "STDIO",
    "Batch",
    "Chunk",
    "DaskEngine",
    "Encoding",
    "Engine",
    "FileSink",
    "ProcessEngine",
    "Progress",
    "ReadOptions",
    "Scored",
    "SplitEngine",
    "StreamSink",
    "csv_header",
    "encode_scored",
    "make_engine",
    "parse_thresholds",
    "predict_command",
    "read_chunks",
    "run_chunks",
    "score_chunk",
    "summary_lines",
    "write_parquet",
]
