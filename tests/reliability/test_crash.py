"""SIGKILL during ``newstag train`` at every stage: the registry and the exported models stay whole.

``NEWSTAG_TEST_KILL_AT=<point>`` makes the run kill itself at that point (``pipeline.train.crash_point``):
the start of each of the 7 stages, and three points inside stages where the store changes. After every
kill: the ``champion`` alias points at a complete version (the previous one, unless the killed run had
already won and moved it after its model was fully logged), every registry version loads with its sha256
checked, every exported ``v<N>`` folder is complete, the ``champion`` link resolves to a complete folder;
and the next run succeeds and leaves the link on the registry's champion.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from reliability_support import BBC, TrainedSandbox, start_cli

from pipeline.train import CRASH_POINTS, KILL_ENV, STAGES

pytestmark = pytest.mark.slow

MODEL = "news-tagger-bbc"
# Points after which nothing in the registry may have changed; the others move it (after a complete log).
BEFORE_REGISTRY = ("prepare", "fit", "thresholds", "evaluate", "log", "log.model", "register")


def registry_state(sandbox: TrainedSandbox) -> tuple[str | None, dict[str, object]]:
    """(champion version, version -> ModelVersion) of the sandbox's store."""
    from mlflow import MlflowClient

    from pipeline.tracking import champion, setup_tracking

    setup_tracking(sandbox.uri)
    current = champion(MODEL)
    versions = {str(v.version): v for v in MlflowClient().search_model_versions(f"name='{MODEL}'")}
    return (None if current is None else str(current.version)), versions


def check_whole(sandbox: TrainedSandbox) -> str:
    """Every version and export loads (sha256 checked); returns the folder the champion link points at."""
    from pipeline.loading import load_tagger

    _, versions = registry_state(sandbox)
    for version in versions:
        tagger, info = load_tagger(f"models:/{MODEL}/{version}", sandbox.uri)
        assert tagger.labels_["themes"] and info.sha256
    for folder in sandbox.export_root.iterdir():
        if folder.name.startswith("v"):
            load_tagger(str(folder))
        else:  # the link, and temp folders of interrupted copies: hidden, never mistaken for a version
            assert folder.name == "champion" or folder.name.startswith("."), folder
    link = sandbox.export_root / "champion"
    assert link.is_symlink() and (link.resolve() / "MLmodel").is_file()
    load_tagger(str(link))
    return link.resolve().name


def test_sigkill_at_every_stage_keeps_champion_and_exports_whole(trained_sandbox: TrainedSandbox) -> None:
    sandbox = trained_sandbox
    first, _ = registry_state(sandbox)
    assert first is not None and check_whole(sandbox) == f"v{first}"
    assert set(STAGES) <= set(CRASH_POINTS)
    timings: dict[str, float] = {}

    # Kills before the registry is touched are independent: run them side by side.
    started = {
        point: (
            time.perf_counter(),
            start_cli(["train", *BBC], sandbox.root, {**sandbox.env, KILL_ENV: point}),
        )
        for point in BEFORE_REGISTRY
    }
    for point, (t0, proc) in started.items():
        _, stderr = proc.communicate(timeout=600)
        timings[point] = time.perf_counter() - t0
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, stderr[-2000:])
        assert "Traceback" not in stderr, stderr[-2000:]
    champion, versions = registry_state(sandbox)
    assert champion == first and set(versions) == {first}, (champion, sorted(versions))
    assert check_whole(sandbox) == f"v{first}"

    # Kills inside register and export, one at a time (the default config beats the weak base model).
    for point in ("register.alias", "export", "export.link"):
        before, known = registry_state(sandbox)
        t0 = time.perf_counter()
        proc = start_cli(["train", *BBC], sandbox.root, {**sandbox.env, KILL_ENV: point})
        _, stderr = proc.communicate(timeout=600)
        timings[point] = time.perf_counter() - t0
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, stderr[-2000:])
        champion, versions = registry_state(sandbox)
        [new] = set(versions) - set(known)  # the killed run registered its (complete) version
        if point == "register.alias":
            assert champion == before  # killed before the alias moved
        else:  # killed after the alias moved: only to a version that beat the champion
            assert champion in (before, new)
            if champion == new:
                assert versions[new].tags["newstag.decision"] == "promoted"
        linked = check_whole(sandbox)
        assert linked in (f"v{first}", f"v{champion}", f"v{before}"), linked

    # The next run succeeds, and afterwards the exported link follows the registry again.
    t0 = time.perf_counter()
    proc = start_cli(["train", *BBC, "--json"], sandbox.root, sandbox.env)
    stdout, stderr = proc.communicate(timeout=900)
    timings["next run"] = time.perf_counter() - t0
    assert proc.returncode == 0, stderr[-3000:]
    champion, versions = registry_state(sandbox)
    assert check_whole(sandbox) == f"v{champion}"
    assert len(versions) == 5  # base, register.alias, export, export.link, next run
    assert json.loads(stdout)["registry"]["version"] == max(versions, key=int)
    print("kill-run wall times (s):", {k: round(v, 1) for k, v in timings.items()})


def test_killed_runs_leave_no_registered_model_behind_a_missing_artifact(
    trained_sandbox: TrainedSandbox,
) -> None:
    """Every registry version's source is a LoggedModel whose artifacts are all there (MLmodel + tagger)."""
    from mlflow import MlflowClient

    _, versions = registry_state(trained_sandbox)
    client = MlflowClient()
    for version in versions.values():
        assert version.source.startswith("models:/m-"), version.source
        logged = client.get_logged_model(version.source.removeprefix("models:/"))
        names = {f.path for f in client.list_logged_model_artifacts(logged.model_id)}
        assert {"MLmodel", "artifacts"} <= names, names
