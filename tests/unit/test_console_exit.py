"""``pipeline.cli.console``, the ``newstag`` script: after ``predict`` the process skips the interpreter's
teardown, but only once every other exit handler has run and the output is complete; exit codes are main's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_model import tiny_model_folder, tiny_rows

# registers an exit handler of its own before the command runs (as the MLflow download does for its temp
# folder), then runs the console entry point on argv
SCRIPT = """import atexit, sys
from pathlib import Path
marker = Path(sys.argv[1])
atexit.register(marker.write_text, "ran")
class TornDown:  # freed by the interpreter's teardown, which a fast exit skips
    def __del__(self, _open=open, _path=str(marker) + ".teardown"):
        _open(_path, "w").close()
torn_down = TornDown()
sys.argv = ["newstag", *sys.argv[2:]]
from pipeline.cli import console
console()
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model"))


def console(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool, bool]:
    """(the finished process, whether the script's exit handler ran, whether the teardown ran)."""
    script, marker = tmp_path / "run.py", tmp_path / "marker"
    teardown = Path(f"{marker}.teardown")
    script.write_text(SCRIPT)
    marker.unlink(missing_ok=True)
    teardown.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, str(script), str(marker), *args], capture_output=True, text=True, timeout=120
    )
    return done, marker.is_file(), teardown.is_file()


def test_predict_exits_fast_after_the_other_exit_handlers_with_its_output_whole(model_dir, tmp_path) -> None:
    rows = tiny_rows(3000, 5)[0]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not JSON\n")
    args = ["predict", "-m", str(model_dir), "-i", str(inp), "--json", "--max-reject-rate", "0.5"]
    done, handled, torn_down = console(tmp_path, *args, "-o", "-")  # stdout: flushed before the exit
    assert done.returncode == 0, done.stderr
    assert handled, "the other exit handlers ran"
    assert not torn_down, "the teardown was skipped"
    lines = done.stdout.splitlines()
    assert len(lines) == 3000 and [json.loads(x)["id"] for x in lines] == [r["id"] for r in rows]
    assert json.loads(done.stderr[done.stderr.index("{") :])["written"] == 3000  # --json summary on stderr
    done, handled, torn_down = console(
        tmp_path, *args, "-o", str(tmp_path / "out.jsonl"), "--max-reject-rate", "0"
    )
    assert done.returncode == 1 and handled and not torn_down  # rejects over the limit: main's exit code 1
    assert not (tmp_path / "out.jsonl").exists() and (tmp_path / "out.jsonl.rejects.jsonl").is_file()


@pytest.mark.parametrize(
    ("args", "code", "fast"),
    [
        (["predict", "--no-such-option"], 2, False),  # argparse's usage error (SystemExit 2): the usual exit
        (["predict", "--help"], 0, False),
        (["predict", "-m", "no/such/model", "-i", "-", "-o", "-"], 2, True),  # main's usage error
        (["--version"], 0, False),  # not predict
    ],
)
def test_exit_codes_are_mains(tmp_path, args, code, fast) -> None:
    done, handled, torn_down = console(tmp_path, *args)
    assert done.returncode == code, done.stderr
    assert handled and torn_down is not fast
    if "--help" in args:
        assert done.stdout.rstrip().endswith("(stdout holds the output)")  # flushed whole


# the threads of this process once the command has run and numpy is imported, and the OpenBLAS setting
THREADS = """import os, sys
from pipeline import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
import numpy
print(len(os.listdir("/proc/self/task")), os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def threads_and_setting(code: str, *args: str, preset: str | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if preset:
        env["OPENBLAS_NUM_THREADS"] = preset
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    threads, setting = done.stdout.split()[-2:]
    return int(threads), setting


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_predict_runs_without_openblas_threads_unless_asked() -> None:
    plain, setting = threads_and_setting(THREADS, "models", "--help")  # other commands (training): as is
    assert setting == "None"
    assert threads_and_setting(THREADS, "predict", "--help") == (1, "1")  # no spinning thread pool
    assert threads_and_setting(THREADS, "predict", "--help", preset="2") == (min(2, plain), "2")  # the user's


def test_predict_runs_with_the_imported_objects_frozen_and_leaves_the_collector_as_it_was(
    model_dir, tmp_path, monkeypatch
) -> None:
    import gc

    from pipeline import cli
    from pipeline import predict as predict_module

    seen: list[tuple[bool, int]] = []
    real = predict_module.predict_command

    def watched(**options):
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return real(**options)

    monkeypatch.setattr(predict_module, "predict_command", watched)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in tiny_rows(20, 5)[0]))
    ok = ["predict", "-m", str(model_dir), "-i", str(inp), "-o", str(tmp_path / "out.jsonl"), "--quiet"]
    missing = ["predict", "-m", str(model_dir), "-i", str(tmp_path / "none.jsonl"), "-o", "-", "--quiet"]
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            assert cli.main(ok) == 0 and cli.main(missing) == 2
            assert gc.isenabled() is enabled and gc.get_freeze_count() == 0  # as it was, nothing left frozen
            assert [e for e, _ in seen] == [enabled, enabled]  # collecting while it scores, when it was
            assert all(frozen > 10_000 for _, frozen in seen)  # not over the imported modules' objects
            seen.clear()
    finally:
        gc.enable()


# records the model predict loads (a weak reference) and, at exit, whether it is still alive
KEPT = """import atexit, sys, weakref
from pathlib import Path
import pipeline.loading as loading
marker, loaded, real = Path(sys.argv[1]), [], loading.load_tagger
def load_tagger(*args, **kwargs):
    tagger, info = real(*args, **kwargs)
    loaded.append(weakref.ref(tagger))
    return tagger, info
loading.load_tagger = load_tagger
atexit.register(lambda: marker.write_text(" ".join("alive" if r() is not None else "freed" for r in loaded)))
sys.argv = ["newstag", *sys.argv[2:]]
if sys.argv[1] == "main":  # main() in process, as a library caller or a test calls it
    from pipeline.cli import main
    main(sys.argv[2:])
    import gc; gc.collect()
else:
    from pipeline.cli import console
    console()
"""


def test_the_script_exits_with_the_model_unfreed_and_main_keeps_nothing(model_dir, tmp_path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in tiny_rows(5, 5)[0]))
    script, marker = tmp_path / "kept.py", tmp_path / "kept"
    script.write_text(KEPT)
    args = ["predict", "-m", str(model_dir), "-i", str(inp), "-o", str(tmp_path / "out.jsonl"), "--quiet"]
    for how, want in (([], "alive"), (["main"], "freed")):
        done = subprocess.run(
            [sys.executable, str(script), str(marker), *how, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert marker.read_text() == want
