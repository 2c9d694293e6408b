"""``newstag ui`` end to end: a real run in a temporary store, the real CLI, a real headless browser.

The browser is Debian's ``chromium`` (``.ci/run`` installs it with apt); every host name but 127.0.0.1 resolves
to NOTFOUND and background services are off, so no request leaves the machine (ECOSYSTEM.md §9). Set
``NEWSTAG_UI_SCREENSHOTS=docs`` to refresh the README pictures (runs table, a run, a model version) from this
test.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import cli, ui

ROOT = Path(__file__).resolve().parents[2]
BBC_CONFIG = ROOT / "configs" / "bbc.yaml"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1600,1000",
]

ASSISTANT_EDGE = 0.745  # where MLflow's Assistant panel starts, as a share of the window width
SCREENSHOTS = {"runs": "ui-runs.png", "run": "ui-run.png", "version": "ui-model-version.png"}

pytestmark = pytest.mark.e2e


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_chromium() -> str | None:
    """$NEWSTAG_CHROMIUM, else chromium (Debian), chromium-browser or google-chrome on PATH."""
    for cand in (os.environ.get("NEWSTAG_CHROMIUM"), "chromium", "/usr/bin/chromium", "chromium-browser"):
        if cand and (path := shutil.which(cand)):
            return path
    return shutil.which("google-chrome")


def page_text(dom: str) -> str:
    """The visible-ish text of a rendered DOM: no scripts or styles, tags removed, entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


def js_number(value: float) -> str:
    """A float as JavaScript prints it (shortest round-trip, like repr, but 1 not 1.0)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class Browser:
    """Headless Chromium with a throw-away profile, one process per page."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary, self.profile = binary, profile

    def _run(self, url: str, *extra: str, budget_ms: int = 15000) -> subprocess.CompletedProcess:
        sized = any(flag.startswith("--window-size=") for flag in extra)
        cmd = [
            self.binary,
            *(f for f in CHROMIUM_FLAGS if not (sized and f.startswith("--window-size="))),
            f"--user-data-dir={self.profile}",
            f"--virtual-time-budget={budget_ms}",
            *extra,
            url,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def text(self, url: str, *expected: str, attempts: int = 3, width: int = 1600) -> str:
        """The page's rendered text once every ``expected`` string shows (a few tries, growing budget), in a
        ``width`` px wide window (the runs table renders only the columns in view)."""
        text = ""
        for attempt in range(1, attempts + 1):
            size = f"--window-size={width},1000"
            out = self._run(url, "--dump-dom", size, budget_ms=15000 * attempt)
            text = page_text(out.stdout)
            if all(s in text for s in expected):
                return text
        missing = [s for s in expected if s not in text]
        raise AssertionError(f"{url}: {missing} not on the rendered page; it shows:\n{text[:3000]}")

    def screenshot(self, url: str, path: Path, width: int = 1600) -> Path:
        """A PNG of the page in a ``width`` px wide window, without MLflow's Assistant panel (the right
        quarter of the window, which MLflow opens on a first visit)."""
        from PIL import Image

        self._run(url, f"--screenshot={path}", f"--window-size={width},1000")
        assert path.is_file(), f"no screenshot of {url}"
        with Image.open(path) as image:
            kept = image.crop((0, 0, int(image.width * ASSISTANT_EDGE), image.height))
        kept.save(path, optimize=True)
        return path


def newstag_command() -> list[str]:
    """The installed ``newstag`` script next to this interpreter, else ``python -m pipeline.cli``."""
    script = Path(sys.executable).with_name("newstag")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline.cli"]


def wait_for_url(out: Path, proc: subprocess.Popen, err: Path, timeout: float = 120.0) -> str:
    """The runs-page URL ``newstag ui`` prints, once it does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = ui.RUNS_URL.search(out.read_text())
        if match:
            return match.group(0)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(
        f"newstag ui printed no URL (exit {proc.poll()}):\n{out.read_text()}\n{err.read_text()[-3000:]}"
    )


def processes_with(needle: str) -> list[str]:
    """Command lines of live processes containing ``needle`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            cmd = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if needle in cmd:
                found.append(cmd)
    return found


# --------------------------------------------------------------------------- a small real run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, bbc_dir: Path) -> dict:
    """BBC News (unigrams) trained, logged, registered and exported into a temporary store and folder, then
    trained again with a much smaller C (a second version the registry judges against the first)."""
    from pipeline.config import load_config
    from pipeline.train import train

    tmp = tmp_path_factory.mktemp("ui-store")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    sets = [
        f"corpus.path={bbc_dir}",
        f"processed_dir={tmp / 'processed'}",
        f"tracking.export_dir={tmp / 'models'}",
        "features.word.ngram_range=[1, 1]",
    ]
    t0 = time.perf_counter()
    with contextlib.chdir(tmp):  # run artifacts go to ./mlruns: keep them out of the repository
        result = train(load_config(BBC_CONFIG, sets), str(BBC_CONFIG), sets, store, say=lambda _: None)
        second = train(
            load_config(BBC_CONFIG, [*sets, "model.C=0.05"]),
            str(BBC_CONFIG),
            [*sets, "model.C=0.05"],
            store,
            say=lambda _: None,
        )
    result.update(store=store, tmp=tmp, seconds=time.perf_counter() - t0, second=second)
    return result


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser binary, or skip (before anything is trained)."""
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium not found: apt-get install chromium (.ci/run does), or set NEWSTAG_CHROMIUM")
    return path


@pytest.mark.slow
def test_ui_shows_the_run_in_a_browser(chromium: str, small_run: dict, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(small_run["store"])
    run = client.get_run(small_run["run_id"])
    second = client.get_run(small_run["second"]["run_id"])
    run_name = run.info.run_name
    micro = small_run["metrics"]["test/themes/micro_f1"]
    roles = {r.info.run_name: r.data.tags["newstag.role"] for r in (run, second)}
    assert second.info.run_name.startswith("bbc · model.C=0.05 vs v1 · ")  # the setting that changed

    port = free_port()
    out, err = tmp_path / "ui.out", tmp_path / "ui.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [
                *newstag_command(),
                "ui",
                "--config",
                str(BBC_CONFIG),
                "--tracking-uri",
                small_run["store"],
                "--port",
                str(port),
            ],
            stdout=stdout,
            stderr=stderr,
            cwd=small_run["tmp"],
            start_new_session=True,
        )
    t0 = time.perf_counter()
    try:
        url = wait_for_url(out, proc, err)
        ready = time.perf_counter() - t0
        base = f"http://127.0.0.1:{port}/#/experiments/{run.info.experiment_id}/runs"
        assert url == f"{base}?viewStateShareKey=newstag"  # the stored view: metric and decision columns

        browser = Browser(chromium, tmp_path / "chromium-profile")
        role_texts = list(roles.values())
        runs_page = browser.text(
            url, run_name, "2 matching runs", *role_texts, "validation/themes/micro_f1", width=2400
        )
        assert "newstag experiments for bbc" in runs_page  # the experiment description
        assert second.data.tags["newstag.decision_reason"][:60] in runs_page  # why, in the table

        run_url = f"{base}/{run.info.run_id}"
        run_page = browser.text(run_url, run_name, f"{micro:.4f}", "test/themes/micro_f1")
        assert js_number(micro) in run_page  # the metrics table: test/themes/micro_f1 <value>
        assert "Registry: version 1 -> champion" in run_page  # the description: promoted, and why
        assert "test/themes/f1/" not in run_page  # per-label figures are a table, not metrics

        version_url = f"http://127.0.0.1:{port}/#/models/news-tagger-bbc/versions/1"
        card = "Model card: news-tagger-bbc v1"
        version_page = browser.text(version_url, card, "Known limits", "How well it tags")
        assert run.data.tags["newstag.decision_reason"] in version_page  # the decision, in the card
        second_page = browser.text(version_url[:-1] + "2", "Model card: news-tagger-bbc v2")
        assert second.data.tags["newstag.decision_reason"] in second_page

        shots = {
            "runs": browser.screenshot(url, tmp_path / SCREENSHOTS["runs"], width=2900),
            "run": browser.screenshot(
                f"{base}/{second.info.run_id}", tmp_path / SCREENSHOTS["run"], width=2000
            ),
            "version": browser.screenshot(
                version_url[:-1] + "2", tmp_path / SCREENSHOTS["version"], width=2000
            ),
        }
        for shot in shots.values():
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        if target := os.environ.get("NEWSTAG_UI_SCREENSHOTS"):
            for key, shot in shots.items():
                shutil.copyfile(shot, Path(target) / SCREENSHOTS[key])

        # a human override: v2 made champion by hand, visible on its version page and in the runs table
        reason = "the desk prefers v2 on sports briefs"
        promote = subprocess.run(
            [
                *newstag_command(),
                *("promote", "news-tagger-bbc", "2", "--reason", reason, "--json"),
                *("--tracking-uri", small_run["store"], "--export-dir", str(small_run["tmp"] / "models")),
            ],
            cwd=small_run["tmp"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert promote.returncode == 0, promote.stderr[-2000:]
        assert json.loads(promote.stdout)["champion_before"] == "1"
        overridden = browser.text(version_url[:-1] + "2", "Champion by hand", reason)
        assert "made champion by hand" in overridden
        assert "champion (v2)" in browser.text(url, "2 matching runs", "champion (v2)", width=2400)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    print(
        f"train {small_run['seconds']:.1f} s, newstag ui ready {ready:.1f} s, total {time.perf_counter() - t0:.1f} s"
    )
    assert code == 0, err.read_text()
    assert "stopping (signal SIGINT)" in err.read_text()
    assert not ui.port_in_use("127.0.0.1", port), "the server still holds the port"
    assert not processes_with(f"--port {port} "), "server processes left behind"


def test_ui_port_taken_says_which_option_to_use(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["ui", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert re.search(r"newstag ui --port \d+", err)


def test_ui_without_a_store_says_how_to_make_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "mlflow.db"
    code = cli.main(["ui", "--port", str(free_port()), "--tracking-uri", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"no runs in sqlite:///{db} yet" in err and "make train" in err
    assert not db.exists(), "the UI must not create an empty store"


def test_ui_on_an_empty_store_says_how_to_make_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(store).create_experiment("newstag-bbc")  # a store with an experiment but no run
    port = free_port()
    code = cli.main(["ui", "--config", str(BBC_CONFIG), "--port", str(port), "--tracking-uri", store])
    err = capsys.readouterr().err
    assert code == 1
    assert f"no runs in {store} yet" in err and "make train" in err
    assert not ui.port_in_use("127.0.0.1", port)
