"""``newstag ui``: the MLflow UI on the project's tracking store.

Starts ``mlflow server`` on the same store as training (``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///mlflow.db`` in the working directory), one worker, job execution and telemetry off, bound to
127.0.0.1 unless told otherwise, and prints the URL of the experiment's runs page. Runs of a SQLite store keep
their artifacts where training put them (an absolute ``file`` path per run, ``./mlruns/<experiment>/<run>``);
the server reads them from there, so no artifact option is needed.

Inspect-only by default: the server runs MLflow's auth app (``--app-name basic-auth``) with
``default_permission = READ``, so anyone who reaches the port may browse runs and models, and nobody may
change the store (aliases, versions, runs, artifacts; artifact serving is off) without the owner's
credentials. Its config, its user database and the owner's generated password live in an owner-only folder
beside the store (``auth_folder``). ``--writable`` starts the plain server of old, with a warning.

The server runs in its own process group: Ctrl-C or SIGTERM stops it and its children, and exit code is 0.
The store is read through ``pipeline.tracking`` (which imports mlflow); ``pipeline.cli`` imports this module
inside its ``ui`` command, so ``newstag --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import DEFAULT_CONFIG, store_sql, tracking
from pipeline.config import load_config
from pipeline.errors import StoreError

EXIT_OK, EXIT_NO_RUNS, EXIT_FAILED, EXIT_USAGE = 0, 1, 1, 2
TRAIN_HINT = "make train   (or: newstag train --config configs/world.yaml)"
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no huey job runner: 2 processes instead of 9
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
RUNS_URL = re.compile(
    r"https?://\S+/#/experiments(?:/\d+/runs(?:\?viewStateShareKey=\w+)?)?"
)  # what run_ui prints


class UiError(Exception):
    """The UI cannot start; ``code`` is the exit code, the message says what to do."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class AlreadyServed(UiError):
    """The store is an MLflow server already: nothing to start; ``url`` is its runs page."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message, EXIT_OK)
        self.url = url


@dataclass
class StoreView:
    """Where the UI should land: experiment, its latest run, the registered model."""

    store: str
    experiment_id: str | None = None
    experiment_name: str | None = None
    latest_run: str | None = None
    model_name: str | None = None
    notes: list[str] = field(default_factory=list)
    runs_view: str | None = None  # the stored runs-table view (metric and decision columns) to open


@dataclass
class UiServer:
    """A running ``mlflow server``."""

    proc: subprocess.Popen
    base_url: str
    log_path: Path
    view: StoreView
    writable: bool = False

    @property
    def runs_url(self) -> str:
        """The experiment's runs page (``#/experiments/<id>`` alone lands on the GenAI overview), in the view
        training stored when there is one (``tracking.set_runs_view``: key metric and decision columns)."""
        if self.view.experiment_id is None:
            return f"{self.base_url}/#/experiments"
        query = f"?viewStateShareKey={self.view.runs_view}" if self.view.runs_view else ""
        return f"{self.base_url}/#/experiments/{self.view.experiment_id}/runs{query}"


# --------------------------------------------------------------------------- the store


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None for other stores."""
    if _scheme(uri) != "sqlite":
        return None
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    rest = rest.split("?", 1)[0]
    if not rest or rest == ":memory:":
        raise UiError(f"{uri}: an in-memory SQLite store has nothing to show; give a database file")
    return Path(rest).resolve()


def resolve_store(explicit: str | None) -> str:
    """The store training uses (``tracking.tracking_uri``), with a SQLite path made absolute."""
    uri = tracking.tracking_uri(explicit)
    scheme = _scheme(uri)
    if scheme not in (*DB_SCHEMES, "http", "https"):
        raise UiError(
            f"{uri}: not a store the UI can serve; use sqlite:///path/mlflow.db "
            "(file stores are not supported, see newstag train --help)"
        )
    path = sqlite_path(uri)
    return f"sqlite:///{path}" if path else uri


def _config_names(config_path: str | None) -> tuple[str | None, str | None]:
    """(experiment, registered model) of the config; the default config only when it exists."""
    if config_path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return None, None
        config_path = DEFAULT_CONFIG
    cfg = load_config(config_path)
    return cfg.tracking.experiment, cfg.tracking.registered_model


def inspect_store(store: str, experiment: str | None, model: str | None) -> StoreView:
    """Find the experiment to show; UiError(code 1) when the store holds no run at all."""
    no_runs = f"no runs in {store} yet. Make one with:\n  {TRAIN_HINT}"
    path = sqlite_path(store)
    if path is not None and not path.is_file():
        raise UiError(f"{no_runs}\n(the store {path} does not exist)", EXIT_NO_RUNS)
    if path is not None:
        try:
            store_sql.check_store_file(path)
        except StoreError as exc:
            raise UiError(str(exc)) from None
    try:
        found = tracking.latest_runs(store, experiment, model)
    except tracking.StoreReadError as exc:
        if path is not None and any(m in str(exc).lower() for m in store_sql.DAMAGE_MARKERS):
            raise UiError(
                f"tracking store {path} is damaged ({str(exc).splitlines()[0][:160]}); not opening it: "
                "restore it from a backup, or move it away to start an empty store"
            ) from None
        raise UiError(f"cannot read the store {store}: {exc}") from None
    if found is None:
        raise UiError(no_runs, EXIT_NO_RUNS)
    view = StoreView(store, found.experiment_id, found.experiment_name, found.latest_run, found.model_name)
    view.runs_view = found.runs_view
    if found.fell_back:
        view.notes.append(
            f"experiment '{experiment}' has no runs yet ({TRAIN_HINT}); "
            f"showing '{found.experiment_name}', which has the latest run"
        )
    return view


# --------------------------------------------------------------------------- the port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound because something holds it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise UiError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return False


def free_port(host: str = "127.0.0.1", near: int | None = None) -> int:
    """A free port: ``near`` + 1..10 when one is free, else one the OS picks."""
    for cand in range(near + 1, near + 11) if near else ():
        if cand < 65536 and not port_in_use(host, cand):
            return cand
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _url_host(host: str) -> str:
    if host in WILDCARD_HOSTS:
        host = "::1" if host == "::" else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------- the server


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM when newstag dies, even by SIGKILL (no orphan keeps the port)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_command(store: str, host: str, port: int, writable: bool = False) -> list[str]:
    """The ``mlflow server`` command line: MLflow's auth app without artifact serving, unless ``writable``."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    cmd += ["--host", host, "--port", str(port), "--workers", "1"]
    if not writable:
        cmd += ["--app-name", "basic-auth", "--no-serve-artifacts"]
    return cmd


AUTH_DIR = ".mlflow-auth"
AUTH_INI = "auth.ini"


def auth_folder(store: str) -> Path:
    """The owner-only folder of a store's UI access: ``.mlflow-auth/<db file name>`` beside a SQLite store's
    database (outside ``mlruns``), else ``~/.newstag/mlflow-auth/<hash of the URI>``."""
    path = sqlite_path(store)
    if path is not None:
        return path.parent / AUTH_DIR / path.name
    key = hashlib.sha256(store.encode()).hexdigest()[:16]
    return Path.home() / ".newstag" / "mlflow-auth" / key


def _owner_only_dir(path: Path) -> Path:
    """``path`` and its missing parents made with mode 0700; UiError when ``path`` is open to others."""
    old = os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UiError(
            f"{path}: must be yours and owner-only (chmod 700 {path}); it holds the UI's credentials"
        )
    return path


def auth_config(store: str) -> Path:
    """The MLflow auth config of ``store``'s UI (written once, 0600): read is the default permission,
    users in ``basic_auth.db`` beside it, the owner account ``tracking.UI_ADMIN`` with a generated password,
    and ``tracking.ui_authorization`` (requests without credentials may only read)."""
    folder = _owner_only_dir(auth_folder(store))
    ini = folder / AUTH_INI
    if ini.is_file():
        return ini
    text = (
        "# newstag ui: MLflow's auth app for this store (written by newstag; keep it private)\n"
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
        f"admin_username = {tracking.UI_ADMIN}\n"
        f"admin_password = {secrets.token_urlsafe(24)}\n"
        "authorization_function = pipeline.tracking:ui_authorization\n"
        "grant_default_workspace_access = false\n"
    )
    staged = folder / f".{AUTH_INI}.{os.getpid()}"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(staged, ini)
    return ini


def start_server(view: StoreView, host: str, port: int, writable: bool = False) -> UiServer:
    """Start ``mlflow server`` in its own process group (output to a log file); does not wait."""
    env = dict(os.environ, **SERVER_ENV)
    if not writable:
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config(view.store))
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(32)  # CSRF key, new each start
        env["MLFLOW_BASIC_AUTH_FAIL_CLOSED"] = "true"  # a route without a permission check is refused
    fd, log_name = tempfile.mkstemp(prefix=f"newstag-ui-{port}-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            server_command(view.store, host, port, writable),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            umask=0o077,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    return UiServer(proc, f"http://{_url_host(host)}:{port}", Path(log_name), view, writable)


def _log_tail(server: UiServer, lines: int = 15) -> str:
    try:
        text = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("  | " + line for line in text[-lines:])


def healthy(base_url: str, timeout: float = 2.0) -> bool:
    """True when ``<base_url>/health`` answers 200 (direct connection: proxy variables are ignored)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:  # URLError, HTTPError, timeouts, refused connections
        return False


def wait_ready(server: UiServer, timeout: float = 90.0, stop: Callable[[], bool] = lambda: False) -> bool:
    """Poll ``/health`` until 200; False when ``stop()`` turns true; UiError when the server dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop():
            return False
        code = server.proc.poll()
        if code is not None:
            raise UiError(
                f"mlflow server exited with code {code} before it was ready; its log "
                f"({server.log_path}):\n{_log_tail(server)}"
            )
        if healthy(server.base_url):
            return True
        time.sleep(0.25)
    raise UiError(
        f"mlflow server not ready after {timeout:.0f} s; its log ({server.log_path}):\n{_log_tail(server)}"
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_server(server: UiServer, timeout: float = 15.0) -> int | None:
    """SIGTERM the server's process group, SIGKILL what is left after ``timeout``; returns its exit code."""
    pgid = server.proc.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=timeout)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return server.proc.wait()


def start_ui(
    config_path: str | None,
    tracking_uri: str | None,
    host: str = "127.0.0.1",
    port: int = 5000,
    timeout: float = 90.0,
    stop: Callable[[], bool] = lambda: False,
    writable: bool = False,
) -> UiServer | None:
    """Check the store and the port, start the server (inspect-only unless ``writable``) and wait for it;
    None when ``stop()`` interrupted.

    Raises UiError (exit 2: port taken, bad store; exit 1: no runs yet; AlreadyServed when the store is an
    MLflow server itself). The caller stops the server with ``stop_server``.
    """
    store = resolve_store(tracking_uri)
    experiment, model = _config_names(config_path)
    if _scheme(store) in ("http", "https"):
        view = inspect_store(store, experiment, model)
        url = f"{store.rstrip('/')}/#/experiments/{view.experiment_id}/runs"
        raise AlreadyServed(f"{store} is an MLflow server already; nothing to start", url)
    if port_in_use(host, port):
        alt = free_port(host, port)
        raise UiError(
            f"port {port} on {host} is already in use (another MLflow UI?). Use another port:\n"
            f"  newstag ui --port {alt}    (or: make ui ARGS='--port {alt}')"
        )
    view = inspect_store(store, experiment, model)
    if stop():
        return None
    server = start_server(view, host, port, writable)
    try:
        ready = wait_ready(server, timeout, stop)
    except BaseException:
        stop_server(server)
        raise
    if not ready:
        stop_server(server)
        with contextlib.suppress(OSError):
            server.log_path.unlink()
        return None
    return server


def _summary(server: UiServer, seconds: float, host: str) -> list[str]:
    view = server.view
    lines = [f"MLflow UI on {view.store} (ready in {seconds:.1f} s, log {server.log_path})"]
    lines += [f"note: {note}" for note in view.notes]
    lines.append(f"runs of experiment '{view.experiment_name}' (latest: {view.latest_run}):")
    lines.append(f"  {server.runs_url}")
    if view.model_name:
        lines.append(f"registered model: {server.base_url}/#/models/{view.model_name}")
    if server.writable:
        lines.append(
            "warning: --writable: anyone who can reach this port can change the store (aliases, model "
            "versions, runs, artifacts); without --writable the UI is inspect-only"
        )
    else:
        ini = auth_config(view.store)
        lines.append(
            f"inspect-only: anyone may browse; changes need the owner's login ({tracking.UI_ADMIN}, "
            f"password in {ini}) or newstag ui --writable"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"warning: listening on {host or 'all interfaces'}, not only on this machine's loopback; "
            "MLflow accepts requests whose Host is localhost or a private address"
        )
    lines.append("Ctrl-C stops it.")
    return lines


def run_ui(
    config_path: str | None,
    tracking_uri: str | None,
    host: str = "127.0.0.1",
    port: int = 5000,
    open_url: bool = False,
    writable: bool = False,
) -> int:
    """Serve the MLflow UI (inspect-only unless ``writable``) until Ctrl-C or SIGTERM; returns the exit code
    (0 after a clean stop)."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        t0 = time.perf_counter()
        try:
            server = start_ui(
                config_path, tracking_uri, host, port, stop=lambda: bool(stopping), writable=writable
            )
        except AlreadyServed as exc:
            print(f"newstag ui: {exc}\n  {exc.url}", flush=True)
            return exc.code
        except UiError as exc:
            print(f"newstag ui: {exc}", file=sys.stderr, flush=True)
            return exc.code
        if server is None:
            name = signal.Signals(stopping[0]).name if stopping else "a signal"
            print(f"newstag ui: stopped by {name} before the server was ready", file=sys.stderr, flush=True)
            return EXIT_OK
        print("\n".join(_summary(server, time.perf_counter() - t0, host)), flush=True)
        if open_url:
            import webbrowser

            webbrowser.open(server.runs_url)
        while not stopping and server.proc.poll() is None:
            time.sleep(0.2)
        if not stopping:
            print(
                f"newstag ui: mlflow server exited with code {server.proc.returncode}; its log "
                f"({server.log_path}):\n{_log_tail(server)}",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_FAILED
        print(
            f"newstag ui: stopping (signal {signal.Signals(stopping[0]).name})", file=sys.stderr, flush=True
        )
        return EXIT_OK
    finally:
        if server is not None:
            stop_server(server)
            if server.proc.returncode in (0, -signal.SIGTERM) or stopping:
                with contextlib.suppress(OSError):
                    server.log_path.unlink()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
