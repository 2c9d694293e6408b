"""Find a registered or logged model in a local SQLite MLflow store by reading its tables, without MLflow.

``newstag predict -m models:/news-tagger@champion`` used to import MLflow (2-4 s) to turn the URI into a
folder. For the project's default store (``sqlite:///path/mlflow.db``) whose artifacts sit on the local disk,
that lookup is three small queries (alias -> version -> artifact location, and the run's ``newstag.*``
tags), and the model folder can be read where it lies: for a local artifact store MLflow's
``download_artifacts`` only copies these same files to a temp folder.

``resolve`` answers ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/MODEL_ID`` and
``runs:/RUN_ID/PATH``. It returns None, so the caller falls back to MLflow, whenever it cannot be sure to
give what MLflow would: a tracking URI that is not a SQLite file, artifacts that are not local paths,
stages, ``latest``, workspaces, a ``runs:/`` path that MLflow would merge from two places, or tables and
columns it does not know (any SQLite error but a missing or damaged file). A URI the store plainly cannot
answer (no such model, alias, version or run; a version not READY; a missing database file) is a ModelError
naming what is missing; an empty (0-byte), truncated or damaged database file is a StoreError naming it
(``check_store_file``), so MLflow never gets to fill it with a new, empty store. The database is opened read-only (``mode=ro``): a lookup never creates, migrates or
locks a store for writing.

Direct query or cache? Measured on the shared 2-core dev machine (medians of 5 fresh processes, warm page
cache, a store with two versions of a small model): this module costs 2.5 ms to import ``sqlite3`` and
2.6 ms for the lookup (alias, version, run tags); the MLflow path costs 3.5 s (``import mlflow`` 1.8 s,
``MlflowClient`` alias + version + run lookup 1.3 s with its engine set-up, ``download_model`` 0.36 s to
copy the files to a temp folder). A cached resolution would still have to prove on every call that the
alias has not moved: by reading the alias row, which is most of this query, or by the database file's mtime,
which moves on every write to the store (every run's metrics), so it would rarely hit and could at best
save those 5 ms, while adding a cache file to keep consistent. We query directly.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from pipeline.artifacts import SHA_TAG
from pipeline.errors import ModelError, StoreError

TAG_PREFIX = "newstag."
DEFAULT_WORKSPACE = "default"  # MLflow's single-tenant workspace
DELETED_STAGE = "Deleted_Internal"  # MLflow marks a deleted model version so
READY = "READY"
ACTIVE = "active"


@dataclass(frozen=True)
class StoreModel:
    """A model found in the store: its local folder (holding MLmodel) and the run that logged it."""

    uri: str
    folder: Path
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)  # the run's ``newstag.*`` tags
    name: str | None = None  # registered model name, for models:/NAME/... URIs
    version: str | None = None

    @property
    def tagger_sha256(self) -> str | None:
        """The tagger sha256 the run recorded when it logged the model, or None."""
        return self.tags.get(SHA_TAG)


class _Unsupported(Exception):
    """This lookup is MLflow's to do (fall back)."""


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: explicit, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db.

    The same rule as ``tracking.tracking_uri`` (which imports MLflow); a test holds the two together.
    """
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` tracking URI (relative to the working directory as
    SQLAlchemy reads it), or None for any other URI, an in-memory database or a spelling we do not parse."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :]
    if not path or "?" in path or "%" in path or path.startswith("file:") or path == ":memory:":
        return None
    return Path(path).absolute()


def resolve(uri: str, tracking: str | None = None) -> StoreModel | None:
    """The local model folder, run and run tags behind ``uri`` in a local SQLite store ``tracking``
    (resolved like ``tracking_uri``); None when MLflow must do this lookup; ModelError when the store
    holds no such model."""
    store = tracking_uri(tracking)
    db = sqlite_path(store)
    if db is None or os.environ.get("MLFLOW_WORKSPACE") or _truthy("MLFLOW_ENABLE_WORKSPACES"):
        return None
    try:
        target = _parse(uri)
    except _Unsupported:
        return None
    if not db.is_file():
        raise _cannot(
            uri,
            f"tracking store {db} not found (no such file); pass --tracking-uri or set "
            "MLFLOW_TRACKING_URI to the store the model was trained into",
        )
    check_store_file(db)
    try:
        with _Reader(db) as reader:
            folder, run_id, name, version = reader.locate(uri, target)
            tags = reader.run_tags(run_id) if run_id else {}
    except sqlite3.Error as exc:
        _raise_if_damaged(db, exc)
        return None
    except _Unsupported:
        return None
    if not (folder / "MLmodel").is_file():
        raise _cannot(uri, f"the store points at {folder}, which holds no MLmodel file")
    return StoreModel(uri, folder, run_id, tags, name, version)


def run_tags(run_id: str, tracking: str | None = None) -> dict[str, str] | None:
    """The ``newstag.*`` tags of run ``run_id`` ({} for an unknown run), or None when the store is not a
    SQLite file this module can read."""
    db = sqlite_path(tracking_uri(tracking))
    if db is None or not db.is_file():
        return None
    check_store_file(db)
    try:
        with _Reader(db) as reader:
            return reader.run_tags(run_id)
    except sqlite3.Error as exc:
        _raise_if_damaged(db, exc)
        return None
    except _Unsupported:
        return None


SQLITE_MAGIC = b"SQLite format 3\x00"
DAMAGE_MARKERS = ("malformed", "not a database", "file is encrypted", "disk image")


def _damaged(db: Path, what: str) -> StoreError:
    return StoreError(
        f"tracking store {db} is {what}; not opening it (and not creating a new store over it): restore "
        "it from a backup, or move it away to start an empty store, or pass --tracking-uri to another store"
    )


def store_folder(uri: str) -> Path | None:
    """The folder holding SQLite store ``uri``'s database file; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(os.path.realpath(uri.removeprefix("sqlite:///").split("?", 1)[0])).parent


def beside_store(path: str | Path, uri: str) -> Path:
    """Where a run's relative output folder (``tracking.export_dir``, ``processed_dir``) goes: beside the
    database of a SQLite store outside the current folder, else as given (absolute paths, the project's
    default store ``./mlflow.db``, server stores)."""
    given = Path(path)
    folder = store_folder(uri)
    if given.is_absolute() or folder is None or folder == Path.cwd().resolve():
        return given
    return folder / given


def check_store_file(db: Path) -> None:
    """StoreError when the SQLite file ``db`` is empty (0 bytes), is not SQLite, or is shorter than its
    header says (truncated); a missing file passes (the caller decides whether one may be created)."""
    try:
        size = db.stat().st_size
        with db.open("rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        return
    if size == 0:
        raise _damaged(db, "empty (0 bytes), not an MLflow store")
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise _damaged(db, "not a SQLite database (damaged)")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # the in-header size is current (SQLite >= 3.7.0 wrote it)
    if valid and pages and size < pages * page_size:
        raise _damaged(db, f"truncated ({size} of {pages * page_size} bytes)")


def _raise_if_damaged(db: Path, exc: sqlite3.Error) -> None:
    """StoreError when SQLite says ``db`` is damaged (rather than only unlike the tables this module knows)."""
    message = str(exc)
    if any(marker in message.lower() for marker in DAMAGE_MARKERS):
        raise _damaged(db, f"damaged ({message})") from None


def _cannot(uri: str, reason: str) -> ModelError:
    """The error for a URI the store cannot answer, worded as the MLflow path words it."""
    return ModelError(f"{uri}: cannot load the model: {reason}")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class _Target:
    kind: str  # "alias", "version", "logged" (models:/MODEL_ID) or "run"
    name: str
    ref: str = ""  # alias, version number, or the path inside the run


def _parse(uri: str) -> _Target:
    """What ``uri`` asks for, as MLflow parses it; _Unsupported for the forms left to MLflow."""
    parts = urlsplit(uri, allow_fragments=False)
    if parts.netloc or parts.query or not parts.path.startswith("/"):
        raise _Unsupported(uri)  # databricks profiles and the like
    path = parts.path[1:]
    if parts.scheme == "runs":
        run_id, _, rel = path.partition("/")
        rel = rel.strip("/")
        if not run_id or not rel:
            raise _Unsupported(uri)
        return _Target("run", run_id, rel)
    if parts.scheme != "models":
        raise _Unsupported(uri)
    pieces = path.split("/")
    if len(pieces) == 2:
        name, suffix = pieces
        if name.strip() and suffix.isdigit():
            return _Target("version", name, str(int(suffix)))
        raise _Unsupported(uri)  # stages, "latest", malformed: MLflow says what it means
    if len(pieces) == 1 and "@" in pieces[0]:
        name, _, alias = pieces[0].rpartition("@")
        if name.strip() and alias.strip() and alias.lower() != "latest":
            return _Target("alias", name, alias)
        raise _Unsupported(uri)
    if len(pieces) == 1 and pieces[0].strip():
        return _Target("logged", pieces[0])
    raise _Unsupported(uri)


def local_path(location: str | None) -> Path | None:
    """The local folder of an artifact location (``file://`` URI or absolute path), else None."""
    if not location:
        return None
    parts = urlsplit(location)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    if not parts.scheme and os.path.isabs(location):
        return Path(location)
    return None


class _Reader:
    """A read-only connection to the store, reading in one transaction (a consistent snapshot)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.con = sqlite3.connect(
            f"file:{quote(str(db))}?mode=ro", uri=True, timeout=10.0, isolation_level=None
        )
        try:
            self.con.execute("BEGIN")
            self.ws = self._workspace_filter()
        except BaseException:
            self.con.close()
            raise

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def _workspace_filter(self) -> str:
        """`` AND workspace = 'default'`` when the registry tables have workspaces (MLflow >= 3.5)."""
        columns = {row[1] for row in self.con.execute("PRAGMA table_info(model_versions)")}
        if not columns:
            raise _Unsupported("no model_versions table")
        return f" AND workspace = '{DEFAULT_WORKSPACE}'" if "workspace" in columns else ""

    def rows(self, sql: str, *args: object) -> list[tuple]:
        return self.con.execute(sql, args).fetchall()

    def locate(self, uri: str, target: _Target) -> tuple[Path, str | None, str | None, str | None]:
        """(folder, run id, registered name, version) of ``target``."""
        if target.kind == "logged":
            folder, run_id = self._logged_model(uri, target.name)
            return folder, run_id, None, None
        if target.kind == "run":
            folder, run_id = self._run_model(uri, target.name, target.ref)
            return folder, run_id, None, None
        self._registered(uri, target.name)
        version = target.ref
        if target.kind == "alias":
            version = self._alias(uri, target.name, target.ref)
        folder, run_id = self._version(uri, target.name, version)
        return folder, run_id, target.name, version

    def _registered(self, uri: str, name: str) -> None:
        if self.rows(f"SELECT 1 FROM registered_models WHERE name = ?{self.ws}", name):
            return
        known = [
            r[0] for r in self.rows(f"SELECT name FROM registered_models WHERE 1{self.ws} ORDER BY name")
        ]
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
        raise _cannot(uri, f"no registered model named {name!r} in {self.db} (registered models: {listed})")

    def _alias(self, uri: str, name: str, alias: str) -> str:
        found = self.rows(
            f"SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?{self.ws}", name, alias
        )
        if found:
            return str(found[0][0])
        known = self.rows(
            f"SELECT alias, version FROM registered_model_aliases WHERE name = ?{self.ws} ORDER BY alias",
            name,
        )
        listed = ", ".join(f"@{a} -> version {v}" for a, v in known) or "none"
        raise _cannot(uri, f"registered model {name!r} has no alias {alias!r} (its aliases: {listed})")

    def _version(self, uri: str, name: str, version: str) -> tuple[Path, str | None]:
        found = self.rows(
            "SELECT current_stage, status, status_message, storage_location, source, run_id "
            f"FROM model_versions WHERE name = ? AND version = ?{self.ws}",
            name,
            int(version),
        )
        if not found or found[0][0] == DELETED_STAGE:
            known = self.rows(
                f"SELECT version FROM model_versions WHERE name = ? AND current_stage != ?{self.ws} "
                "ORDER BY version",
                name,
                DELETED_STAGE,
            )
            listed = ", ".join(str(v) for (v,) in known) or "none"
            raise _cannot(uri, f"registered model {name!r} has no version {version} (versions: {listed})")
        _, status, message, storage, source, run_id = found[0]
        if status != READY:
            why = f": {message}" if message else ""
            raise _cannot(uri, f"version {version} of {name!r} is {status}, not READY{why}")
        location = storage or source  # what MLflow's get_model_version_download_uri returns
        if location and location.startswith("models:/"):
            target = _parse(location)
            if target.kind != "logged":
                raise _Unsupported(location)
            return self._logged_model(uri, target.name)[0], run_id
        folder = local_path(location)
        if folder is None:
            raise _Unsupported(location)
        return folder, run_id

    def _logged_model(self, uri: str, model_id: str) -> tuple[Path, str | None]:
        found = self.rows(
            "SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ?", model_id
        )
        if not found:
            raise _cannot(
                uri,
                f"no logged model with id {model_id!r} in {self.db} (for a registered model, "
                "use models:/NAME@ALIAS or models:/NAME/VERSION)",
            )
        location, run_id = found[0]
        folder = local_path(location)
        if folder is None:
            raise _Unsupported(location)
        return folder, run_id

    def _run_model(self, uri: str, run_id: str, rel: str) -> tuple[Path, str]:
        """``runs:/RUN/NAME[/SUB]``: the artifacts of the model NAME the run logged (MLflow 3 keeps them
        with the logged model), or the run's own artifact folder NAME (MLflow 2); never both (MLflow would
        merge them: fall back)."""
        found = self.rows("SELECT experiment_id, artifact_uri FROM runs WHERE run_uuid = ?", run_id)
        if not found:
            raise _cannot(uri, f"no run {run_id!r} in {self.db}")
        experiment_id, artifact_uri = found[0]
        run_root = local_path(artifact_uri)
        if run_root is None:
            raise _Unsupported(artifact_uri)
        in_run = run_root / rel
        name, _, sub = rel.partition("/")
        models = self.rows(
            "SELECT artifact_location, lifecycle_stage FROM logged_models "
            "WHERE experiment_id = ? AND name = ? AND source_run_id = ?",
            experiment_id,
            name,
            run_id,
        )
        if len(models) > 1 or (models and (models[0][1] != ACTIVE or in_run.exists())):
            raise _Unsupported(uri)
        if models:
            folder = local_path(models[0][0])
            if folder is None:
                raise _Unsupported(models[0][0])
            return (folder / sub if sub else folder), run_id
        if in_run.is_dir():
            return in_run, run_id
        raise _cannot(uri, f"run {run_id} logged no model {rel!r}")

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The ``newstag.*`` tags of the run ({} when the run is not in this store)."""
        rows = self.rows('SELECT "key", value FROM tags WHERE run_uuid = ?', run_id)
        return {k: v for k, v in rows if k.startswith(TAG_PREFIX) and v is not None}


def recorded_tags(
    found: StoreModel, mlmodel_run_id: str | None, tracking: str | None = None
) -> dict[str, str]:
    """The ``newstag.*`` tags of the run that logged ``found``: the run the store names, else (a version
    registered without a run) the one its MLmodel names; ModelError when the two name different runs."""
    if found.run_id and mlmodel_run_id and found.run_id != mlmodel_run_id:
        raise ModelError(
            f"{found.uri}: the model's MLmodel names run {mlmodel_run_id} but the store says run "
            f"{found.run_id} logged it; refusing to load it"
        )
    if found.run_id:
        return found.tags
    return (run_tags(mlmodel_run_id, tracking) or {}) if mlmodel_run_id else {}
