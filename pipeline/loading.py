"""Find a logged or exported model, check its signature and its run, and load what scores.

A model holds two files: ``scorer.npz``, the compiled tagger (arrays only, read with numpy without
unpickling anything; ``pipeline.scoring``), and ``tagger.joblib``, the scikit-learn estimator for Python
users. newstag loads the scorer; the joblib file only for a model that has no scorer (trained before it
existed, or with feature blocks that cannot be compiled).

The trust root is the model folder's signature (``pipeline.signing``): ``locate_model`` verifies every file
of the folder against it, and ``load_scorer`` / ``load_verified`` check the bytes they read against the
signed hash, before anything is parsed or unpickled. The sha256 recorded in MLmodel and in the run's tags is
still checked (it catches corruption and a model that disagrees with its run) but it is not what makes a
model trusted: whoever can write a model can write those too. ``locate_model`` leaves the scorer and tagger
files to the loader that reads them (listed and present, hashed once, when read), so ``predict`` never hashes
a joblib file it does not unpickle; such a file changed beside an intact scorer is refused only by a loader
that reads it (``mlflow.pyfunc.load_model`` checks every file).

The run record cannot be skipped: an MLmodel naming no run is refused, and a store model whose run the store
does not know (no run, or a run that recorded no newstag model) is refused. An exported folder is checked
against a store only when one is named (``--tracking-uri``, the ``tracking_uri`` argument): exports are
often used where the store is not (another machine, a container), and MLFLOW_TRACKING_URI may name an
unrelated store; there the signature, which covers MLmodel and so its run id, is the whole check.

An exported folder loads without MLflow; a store URI (``models:/...``, ``runs:/...``) is fetched through
``pipeline.tracking``, imported only on that path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import signing
from pipeline.artifacts import SCORER_PATH, SCORER_SHA_TAG, SHA_TAG
from pipeline.errors import ModelError

STORE_SCHEMES = ("models:/", "runs:/")


def _check_sha(path: Path, expected: str | None, digest: Callable[[], str], reading: str = "load") -> None:
    """ModelError unless a sha256 was recorded for ``path`` and ``digest()`` (computed only then) equals it."""
    if not expected:
        raise ModelError(
            f"{path}: no sha256 recorded for this model; refusing to {reading} an unverified file"
        )
    actual = digest()
    if actual != expected:
        raise ModelError(
            f"{path}: sha256 mismatch (recorded {expected[:16]}..., file {actual[:16]}...): "
            "the model file changed after training; refusing to load it"
        )


class _ReadAhead:
    """A file read and hashed in a background thread: its bytes and sha256, or the OSError reading it."""

    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self.result: tuple[bytes, str] | OSError | None = None
        self.thread = threading.Thread(target=self._run, name="newstag-read-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import hashlib

        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.result = exc
            return
        self.result = data, hashlib.sha256(data).hexdigest()

    def take(self) -> tuple[bytes, str]:
        self.thread.join()
        if isinstance(self.result, OSError):
            raise self.result
        assert self.result is not None
        return self.result


_READ_AHEAD: list[_ReadAhead] = []  # at most one: the scorer file of the model named on the command line


def read_ahead(uri: str) -> None:
    """Start reading and hashing the scorer file of model folder ``uri`` (at ``SCORER_PATH``, where models
    keep it) in a background thread, so that ``load_scorer`` finds its bytes and sha256 ready: the read and
    the hash run without the GIL while this process imports numpy (about 15 ms of every start for a 9 MB
    scorer). Nothing for a store URI or a folder without that file. The loader checks the bytes it takes
    exactly as those it reads itself; taken or not, the thread is joined and its bytes dropped when the
    model has been loaded (``load_model_files``)."""
    drop_read_ahead()
    if uri.startswith(STORE_SCHEMES):
        return
    path = Path(uri).resolve() / SCORER_PATH
    if path.is_file():
        _READ_AHEAD.append(_ReadAhead(path))


def drop_read_ahead() -> None:
    """Join the read-ahead thread, if any, and drop its bytes."""
    while _READ_AHEAD:
        _READ_AHEAD.pop().thread.join()


def _read_and_hash(path: Path) -> tuple[bytes, str]:
    """The bytes of ``path`` and their sha256: from the read-ahead when it read this very path."""
    for pending in _READ_AHEAD:
        if pending.path == path:
            _READ_AHEAD.remove(pending)
            return pending.take()
    import hashlib

    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def load_scorer(path: str | Path, expected_sha256: str | None) -> Any:
    """The compiled tagger (``pipeline.scoring.Scorer``) saved at ``path``, refused unless its model folder's
    signature covers exactly these bytes and its sha256 matches ``expected_sha256``.

    The file is read once (perhaps ahead, ``read_ahead``): checked, then parsed from the same bytes (numpy,
    no pickle).
    """
    from pipeline.scoring import Scorer, ScorerError

    path = Path(path)
    try:
        data, digest = _read_and_hash(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the scorer file ({exc.strerror or exc})") from None
    _check_sha(path, expected_sha256, lambda: digest)
    signing.check_bytes(path, data, digest)
    try:
        return Scorer.from_bytes(data, str(path))
    except ScorerError as exc:
        raise ModelError(str(exc)) from None


def load_verified(path: str | Path, expected_sha256: str | None) -> Any:
    """The tagger pickled at ``path``, refused unless its model folder's signature covers exactly these bytes
    and its sha256 equals ``expected_sha256``; unpickled from the bytes checked."""
    import hashlib
    import io

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: tagger file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the tagger file ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    _check_sha(path, expected_sha256, lambda: digest, reading="unpickle")
    signing.check_bytes(path, data, digest)
    import joblib

    return joblib.load(io.BytesIO(data))


@dataclass
class ModelInfo:
    """Where a model was found and what its MLmodel file says."""

    uri: str
    path: Path
    sha256: str | None
    run_id: str | None = None
    scorer_path: Path | None = None  # the compiled tagger, when the model has one
    scorer_sha256: str | None = None
    folder: Path | None = None  # the model folder (its signature verified by locate_model)


def load_model_files(info: ModelInfo) -> Any:
    """What scores for ``info``: its scorer when it has one, else its joblib tagger; either checked against
    the signature and the recorded sha256 before it is read."""
    try:
        if info.scorer_path is not None:
            return load_scorer(info.scorer_path, info.scorer_sha256)
        return load_verified(info.path, info.sha256)
    finally:
        drop_read_ahead()  # no thread left running when predict forks


def read_mlmodel(model_dir: Path) -> ModelInfo:
    """The run, tagger and scorer paths and recorded sha256s of an MLflow model folder: from its signature
    when that records them (``pipeline.signing``, which ``locate_model`` then checks MLmodel against), else
    from MLmodel itself."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{model_dir}: not an MLflow model folder (no MLmodel file)")
    # from MLmodel itself when signed before signatures recorded it, or not signed (refused by the check after)
    fields = signing.signed_mlmodel(model_dir) or signing.read_mlmodel_fields(model_dir)
    scorer = fields["scorer"]
    return ModelInfo(
        uri=str(model_dir),
        path=model_dir / str(fields["tagger"]),
        sha256=fields["tagger_sha256"],
        run_id=fields["run_id"],
        scorer_path=None if scorer is None else model_dir / scorer,
        scorer_sha256=fields["scorer_sha256"],
        folder=model_dir,
    )


def locate_model(uri: str, tracking_uri: str | None = None) -> ModelInfo:
    """A local model folder for ``uri`` (a folder, ``models:/...`` or ``runs:/...``), its signature, run
    record and hashes checked (a folder's run only against a store named by ``tracking_uri``)."""
    local = Path(uri)
    if local.is_dir() or (os.sep in uri and not uri.startswith(STORE_SCHEMES)):
        if not local.is_dir():
            raise ModelError(f"{uri}: model folder not found")
        folder = local.resolve()
        info = read_mlmodel(folder)
        _verify(info)
        _require_run(info, uri)
        if tracking_uri:
            _check_run_record(uri, info, _run_record(info.run_id, tracking_uri), tracking_uri)
        return info
    if not uri.startswith(STORE_SCHEMES):
        raise ModelError(
            f"{uri}: not a model folder, models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN/model"
        )
    return _from_store(uri, tracking_uri)


def _from_store(uri: str, tracking_uri: str | None) -> ModelInfo:
    """The model behind a store URI, its MLmodel hash checked against the one its run recorded.

    A local SQLite store with local artifacts is read directly (``pipeline.store_sql``: a few queries, no
    MLflow) and the model read where the store keeps it. Any other store, or one that module cannot read
    for sure, goes through ``pipeline.tracking``, imported only then: it imports mlflow (some 2 s), which
    neither an exported folder nor the project's own store should pay for.
    """
    from pipeline import store_sql

    if not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlflow.db").exists()):
        # outside a project: say how to name a model, and never let MLflow create ./mlflow.db
        raise ModelError(
            f"{uri}: no tracking store here (no --tracking-uri, no MLFLOW_TRACKING_URI, no ./mlflow.db); "
            "point -m at an exported model folder (-m models/news-tagger/champion) or name the store the "
            f"model was trained into (-m {uri} --tracking-uri sqlite:///PATH/mlflow.db)"
        )
    found = store_sql.resolve(uri, tracking_uri)
    if found is not None:
        info = read_mlmodel(found.folder)
        _require_run(info, uri)
        tags = store_sql.recorded_tags(found, info.run_id, tracking_uri)
    else:
        from pipeline import tracking

        info = read_mlmodel(tracking.download_model(uri, tracking_uri))
        _require_run(info, uri)
        tags = tracking.recorded_tags(info.run_id, tracking_uri)
    _check_run_record(uri, info, tags, tracking_uri)
    _verify(info)
    info.uri = uri
    return info


def _verify(info: ModelInfo) -> None:
    """The model folder's signature, every file checked but the scorer and tagger, which ``load_scorer`` /
    ``load_verified`` check against it when (and only when) they read them."""
    assert info.folder is not None
    deferred = [p for p in (info.path, info.scorer_path) if p is not None]
    signing.verify_model(info.folder, deferred=deferred)


def _require_run(info: ModelInfo, uri: str) -> None:
    """ModelError when the model's MLmodel names no run (training always writes one)."""
    if not info.run_id:
        raise ModelError(
            f"{info.folder}/MLmodel: names no run_id, so no run vouches for {uri}; refusing to load it"
        )


def _run_record(run_id: str | None, tracking_uri: str) -> dict[str, str]:
    """The ``newstag.*`` tags of ``run_id`` in store ``tracking_uri`` ({} when the store has no such run)."""
    from pipeline import store_sql

    tags = store_sql.run_tags(run_id, tracking_uri) if run_id else {}
    if tags is None:
        from pipeline import tracking

        tags = tracking.recorded_tags(run_id, tracking_uri)
    return tags


def _check_run_record(uri: str, info: ModelInfo, tags: dict[str, str], tracking_uri: str | None) -> None:
    """ModelError unless the run named in MLmodel is in the store, recorded a newstag model, and recorded the
    same sha256 for each model file as MLmodel does."""
    if not tags.get(SHA_TAG):
        from pipeline import store_sql

        store = store_sql.tracking_uri(tracking_uri)
        raise ModelError(
            f"{uri}: run {info.run_id} named in its MLmodel is not in the store {store} (or logged no newstag "
            "model there); refusing to load it"
        )
    for tag, in_mlmodel in ((SHA_TAG, info.sha256), (SCORER_SHA_TAG, info.scorer_sha256)):
        recorded = tags.get(tag)
        if in_mlmodel and recorded != in_mlmodel:
            raise ModelError(
                f"{uri}: the model's MLmodel records sha256 {in_mlmodel[:16]}... but its run recorded "
                f"{(recorded or 'nothing')[:16]}... ({tag}); refusing to load it"
            )


def load_tagger(uri: str, tracking_uri: str | None = None) -> tuple[Any, ModelInfo]:
    """The verified model behind ``uri`` (its scorer, or its joblib tagger without one) and where it came from.

    Either object scores the same way: ``axes``, ``labels_``, ``transform_docs``, ``predict_scores``,
    ``scores_from_features``, ``labels_from_scores``, ``explain_features``.
    """
    info = locate_model(uri, tracking_uri)
    return load_model_files(info), info
