"""Signed models: a model folder is loaded only when it carries a signature made with this machine's key.

A sha256 recorded in MLmodel or in a run tag sits next to what it protects: whoever can write the model (through
the tracking server's REST API, or an exported folder) can write the hash too. The trust root is a secret key
instead, one the owner alone can read: ``~/.config/newstag/signing.key`` (``$NEWSTAG_SIGNING_KEY`` names another
file; a team may share one key file deliberately), 32 random bytes in hex, created on first use with mode 0600 in
a folder of mode 0700, outside any store. A key file that group or others may read, or that another user owns,
is refused.

**What is signed.** ``newstag.sig`` (JSON) lists the sha256 of every file of the model folder (MLmodel, the
artifacts ``scorer.npz`` and ``tagger.joblib``, the model code file ``pyfunc.py`` and the ``code/`` files MLflow
imports, the environment files, the input examples), what loaders read from MLmodel (the run, the artifact
paths and their recorded sha256s: ``artifacts.mlmodel_fields``, so that loading an exported model parses no
YAML) and an HMAC-SHA256 over both with the key (format ``newstag-signature/2``; ``/1`` signatures, without the
MLmodel fields, are still read). Two kinds
of file are left out because someone else writes them and no loader reads them as model content: Python's
byte-code caches (``__pycache__/``) and the ``registered_model_meta`` file MLflow adds to a registered model
it downloads. newstag never executes a model's byte-code; MLflow's execution of the model code file may use a
cache planted beside it, which is the same exposure as a replaced MLmodel or code file (``pipeline.pyfunc``).

**When.** MLflow writes MLmodel itself inside ``log_model``, so ``tracking.log_tagger`` signs after logging:
it downloads the logged model (the exact files the store holds), signs that copy and logs ``newstag.sig`` into
the logged model's artifacts, before the model is registered. A run killed in between leaves an unsigned model,
which every loader refuses. Exports copy the signature with the rest of the folder. Inside ``log_model`` MLflow
loads its own fresh save (to check the input example) before anything can be signed: ``logging_own_model``
lets a folder with no signature pass in that process, for that call only.

**Verifying.** ``verify_model`` checks the HMAC, then every listed file's sha256, and refuses a file the list
does not name (a planted module or pickle); ``signed_sha256`` checks the HMAC only and returns one file's signed
hash, for a loader that then hashes the bytes it reads. Both happen before anything is unpickled or parsed.
Refusals are ``ModelError`` with one line naming the file and what to do.

**A model from another machine** carries that machine's signature. ``newstag trust MODEL_DIR`` shows what the
folder holds (its run, its files, the code MLflow would execute) and re-signs it with this machine's key: the
person running it vouches for the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.artifacts import MLMODEL_FIELDS, mlmodel_fields
from pipeline.errors import ModelError

SIGNATURE_FILE = "newstag.sig"
KEY_ENV = "NEWSTAG_SIGNING_KEY"
FORMAT = "newstag-signature/2"
BODY_KEYS = {
    "newstag-signature/1": ("format", "algorithm", "key_id", "files"),
    FORMAT: ("format", "algorithm", "key_id", "files", "mlmodel"),  # /1 + what loaders read from MLmodel
}
ALGORITHM = "hmac-sha256"
UNSIGNED_NAMES = frozenset({SIGNATURE_FILE, "registered_model_meta"})  # written by others, read by no loader
UNSIGNED_DIRS = frozenset({"__pycache__"})
_logging = 0  # > 0 while this process is inside logging_own_model()


def key_path() -> Path:
    """Where the signing key lives: ``$NEWSTAG_SIGNING_KEY``, else ``~/.config/newstag/signing.key``."""
    explicit = os.environ.get(KEY_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".config" / "newstag" / "signing.key"


def load_key(create: bool = False) -> bytes:
    """This machine's signing key; created (mode 0600) when missing and ``create``; ModelError when it is
    missing, readable by group or others, owned by another user, or malformed."""
    path = key_path()
    if not path.exists() and create:
        _create_key(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelError(
            f"{path}: no signing key on this machine, so no model here is trusted yet (training creates the "
            f"key; newstag trust MODEL_DIR creates it and signs a model you vouch for; {KEY_ENV} names another)"
        ) from None
    if st.st_mode & 0o077:
        raise ModelError(
            f"{path}: the signing key is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise ModelError(f"{path}: the signing key belongs to another user (uid {st.st_uid}); use your own")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a newstag signing key ({exc})") from None
    if len(key) < 32:
        raise ModelError(f"{path}: not a newstag signing key (shorter than 32 bytes)")
    return key


def _create_key(path: Path) -> None:
    """Write a new random key at ``path`` atomically (never over an existing one), mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process created the key first: theirs wins
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def key_id(key: bytes) -> str:
    """A short public name of a key (an HMAC of a constant: it reveals nothing of the key)."""
    return hmac.new(key, b"newstag key id", hashlib.sha256).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    """The relative paths (POSIX) of the folder's files that a signature covers, sorted."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in UNSIGNED_DIRS)
        # a link to a folder is not walked into: it counts as one entry, which no signature can list
        names = [*names, *(d for d in dirs if os.path.islink(os.path.join(root, d)))]
        for name in names:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if rel not in UNSIGNED_NAMES:
                found.append(rel)
    return sorted(found)


def manifest(folder: str | Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of ``folder`` a signature covers."""
    folder = Path(folder)
    files = _files(folder)
    for rel in files:
        if (folder / rel).is_dir():
            raise ModelError(f"{folder / rel}: a link to a folder inside a model folder; not signing it")
    return {rel: _sha256(folder / rel) for rel in files}


def _mac(key: bytes, body: dict[str, Any]) -> str:
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def sign_folder(folder: str | Path) -> Path:
    """Sign every file of the model folder ``folder`` with this machine's key (created on first use); the
    path of the signature file written."""
    folder = Path(folder)
    if not (folder / "MLmodel").is_file():
        raise ModelError(f"{folder}: not a model folder (no MLmodel file); nothing signed")
    key = load_key(create=True)
    body = {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
        "files": manifest(folder),
        "mlmodel": read_mlmodel_fields(folder),
    }
    out = folder / SIGNATURE_FILE
    tmp = folder / f".{SIGNATURE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({**body, "hmac": _mac(key, body)}, indent=1, sort_keys=True) + "\n")
    tmp.replace(out)
    return out


def read_mlmodel_fields(folder: Path) -> dict[str, str | None]:
    """What loaders read from the MLmodel of ``folder`` (``artifacts.mlmodel_fields``), parsed from the YAML;
    ModelError when it is unreadable."""
    import yaml

    mlmodel = folder / "MLmodel"
    try:
        # libyaml's safe loader when PyYAML has it: the same data, a tenth of the time of the Python one
        spec = yaml.load(mlmodel.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ModelError(f"{mlmodel}: unreadable: {exc}") from None
    if not isinstance(spec, dict):
        raise ModelError(f"{mlmodel}: unreadable: not a YAML mapping")
    return mlmodel_fields(spec)


def _refuse(where: Path | str, why: str, folder: Path) -> ModelError:
    return ModelError(
        f"{where}: {why}; refusing to load it (if you trust this model, e.g. one from another machine, "
        f"run: newstag trust {folder})"
    )


@contextlib.contextmanager
def logging_own_model() -> Iterator[None]:
    """While this process logs a model: MLflow's ``log_model`` loads the fresh save it just wrote, not yet
    signed (the signature covers MLmodel, which MLflow writes there), to check the input example. Meanwhile
    a folder with no signature at all passes, in this process only; a signed folder is checked in full."""
    global _logging
    _logging += 1
    try:
        yield
    finally:
        _logging -= 1


def _signed(folder: Path) -> dict[str, Any] | None:
    """The body of ``folder``'s signature, its HMAC checked with this machine's key (None: this process's
    own fresh save, not signed yet; see ``logging_own_model``)."""
    sig = folder / SIGNATURE_FILE
    if not sig.is_file() and _logging:
        return None
    if not sig.is_file():
        raise _refuse(folder, f"the model is not signed (no {SIGNATURE_FILE})", folder)
    try:
        doc = json.loads(sig.read_text())
        keys = BODY_KEYS.get(doc["format"])
        if keys is None:
            raise ValueError(f"unknown format {doc['format']!r}")
        body = {k: doc[k] for k in keys}
        mac, files = str(doc["hmac"]), body["files"]
        if body["algorithm"] != ALGORITHM or not isinstance(files, dict):
            raise ValueError("unknown format")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _refuse(sig, f"unreadable signature ({exc})", folder) from None
    key = load_key()
    if body["key_id"] != key_id(key):
        raise _refuse(
            sig,
            f"signed with another key ({body['key_id']}; this machine's key {key_path()} is {key_id(key)})",
            folder,
        )
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise _refuse(sig, "the signature does not match its file list (forged or damaged)", folder)
    return body


def _signed_files(folder: Path) -> dict[str, str]:
    """The file list of ``folder``'s signature, its HMAC checked with this machine's key."""
    body = _signed(folder)
    if body is None:
        return manifest(folder)  # this process's own fresh save (logging_own_model)
    return {str(k): str(v) for k, v in body["files"].items()}


def signed_mlmodel(folder: str | Path) -> dict[str, str | None] | None:
    """What loaders read from MLmodel (``artifacts.mlmodel_fields``), as the signature of ``folder`` records
    it, its HMAC checked; None when it records none (signed before it did), or the folder is not signed or
    its signature fails (``verify_model`` then says why).

    Signed together with MLmodel's sha256: once ``verify_model`` has checked MLmodel against the signature,
    these are the fields of that very file, read without parsing YAML."""
    try:
        body = _signed(Path(folder))
    except ModelError:
        return None
    fields = None if body is None else body.get("mlmodel")
    if not isinstance(fields, dict) or set(fields) != set(MLMODEL_FIELDS):
        return None
    if not all(v is None or isinstance(v, str) for v in fields.values()):
        return None
    return fields


def _mismatch(path: Path, signed: str, actual: str, folder: Path) -> ModelError:
    # worded like the recorded-hash check: "sha256 mismatch ... the model file changed after training"
    return _refuse(
        path,
        f"sha256 mismatch (signed {signed[:16]}..., file {actual[:16]}...): the model file changed after "
        "training",
        folder,
    )


def verify_model(folder: str | Path, deferred: Iterable[str | Path] = ()) -> dict[str, str]:
    """The verified ``{relative path: sha256}`` of model folder ``folder``: its signature made with this
    machine's key, every listed file present and unchanged, no file it does not list, MLmodel among them.

    The files in ``deferred`` (paths in the folder) must be listed and present, but are not hashed here: the
    caller reads them through ``check_bytes`` (a loader hashes the bytes it parses anyway, and need not hash
    the 50 MB joblib tagger it will not read)."""
    folder = Path(folder)
    files = _signed_files(folder)
    later = {_relative(Path(p), folder) for p in deferred}
    if "MLmodel" not in files:
        raise _refuse(folder / SIGNATURE_FILE, "the signature does not cover MLmodel", folder)
    on_disk = _files(folder)
    extra = sorted(set(on_disk) - set(files))
    if extra:
        raise _refuse(folder / extra[0], "a file the model's signature does not cover", folder)
    for rel, signed in files.items():
        path = folder / rel
        if not path.is_file():
            raise _refuse(path, "listed in the model's signature but missing", folder)
        if rel in later:
            continue
        actual = _sha256(path)
        if not hmac.compare_digest(actual, signed):
            raise _mismatch(path, signed, actual, folder)
    return files


def _relative(path: Path, folder: Path) -> str:
    """``path`` (absolute, or relative to ``folder``) as a relative POSIX path inside ``folder``."""
    path = path if path.is_absolute() else folder / path
    try:
        return path.absolute().relative_to(folder.absolute()).as_posix()
    except ValueError:
        return path.as_posix()  # outside the folder: never matches a listed file


def model_root(path: str | Path) -> Path:
    """The model folder holding file ``path``: the nearest of its two parent folders with a signature or an
    MLmodel file, else its own folder."""
    path = Path(path).absolute()
    for folder in (path.parent, path.parent.parent):
        if (folder / SIGNATURE_FILE).is_file() or (folder / "MLmodel").is_file():
            return folder
    return path.parent


def signed_sha256(path: str | Path) -> str:
    """The sha256 that ``path``'s model folder signature records for it (the HMAC checked, the file not
    hashed): what a loader compares the bytes it reads against."""
    path = Path(path).absolute()
    folder = model_root(path)
    files = _signed_files(folder)
    rel = path.relative_to(folder).as_posix()
    if rel not in files:
        raise _refuse(path, "a file the model's signature does not cover", folder)
    return files[rel]


def check_bytes(path: str | Path, data: bytes, digest: str | None = None) -> None:
    """ModelError unless ``data`` (read from ``path``; ``digest``, its sha256 when already computed) is what
    ``path``'s model signature records."""
    signed = signed_sha256(path)
    actual = digest or hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, signed):
        raise _mismatch(Path(path), signed, actual, model_root(path))


def check_file(path: str | Path) -> None:
    """ModelError unless file ``path`` is what its model signature records."""
    signed = signed_sha256(path)
    actual = _sha256(Path(path))
    if not hmac.compare_digest(actual, signed):
        raise _mismatch(Path(path), signed, actual, model_root(path))


def describe(folder: str | Path) -> list[str]:
    """What a folder holds, in lines for a person deciding to trust it: its run, how it is signed now, and each
    file (the code MLflow executes marked)."""
    import yaml

    folder = Path(folder)
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{folder}: not a model folder (no MLmodel file); nothing to trust")
    try:
        spec = yaml.safe_load(mlmodel.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{mlmodel}: unreadable: {exc}") from None
    try:
        _signed_files(folder)
        status = "signed with this machine's key"
    except ModelError as exc:
        status = str(exc).split("; refusing", 1)[0].split(": ", 1)[-1]
    lines = [
        f"model folder {folder}",
        f"run {spec.get('run_id') or '(none named)'}, model {spec.get('model_id') or '?'}, "
        f"created {spec.get('utc_time_created') or '?'}",
        f"signature now: {status}",
    ]
    for rel, sha in manifest(folder).items():
        runs = " (code: mlflow.pyfunc.load_model executes it)" if rel.endswith(".py") else ""
        size = (folder / rel).stat().st_size
        lines.append(f"  {rel}  {size} bytes  sha256 {sha[:16]}...{runs}")
    return lines


def trust(folder: str | Path) -> list[str]:
    """Re-sign model folder ``folder`` with this machine's key, vouching for every file it holds now; lines
    saying what was trusted."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found (newstag trust takes an exported model folder)")
    lines = describe(folder)
    sig = sign_folder(folder)
    lines.append(
        f"signed {len(_signed_files(folder))} files with key {key_id(load_key())} ({key_path()}): {sig}"
    )
    return lines
