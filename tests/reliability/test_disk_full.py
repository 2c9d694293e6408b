"""A full disk during ``newstag predict``: a clear error, a non-zero exit, and no file that looks complete.

The output goes to a 1 MiB tmpfs (needs root; skipped when ``mount`` fails) or, always available, to a
process whose file size limit is 1 MiB (``RLIMIT_FSIZE``: writes past it fail with EFBIG, as Python
ignores SIGXFSZ). Either way the output cannot be written whole.
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest
from reliability_support import TrainedSandbox, cli_env, message_lines, newstag_command

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024
TEMP_SUFFIXES = (".part", ".progress.json", ".tmp")


def write_input(path: Path, n: int) -> None:
    words = "shares of the oil company rose after the election while the football club signed a new striker"
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps({"id": f"doc-{i:06d}", "title": f"Story {i}", "text": f"{words} number {i}"})
                + "\n"
            )


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.fixture
def tmpfs(tmp_path: Path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def predict(
    sandbox: TrainedSandbox, input_path: Path, output: Path, **popen
) -> subprocess.CompletedProcess[str]:
    model = sandbox.export_root / "v1"
    return subprocess.run(
        [
            *newstag_command(),
            "predict",
            "--model",
            str(model),
            "--input",
            str(input_path),
            "--output",
            str(output),
            "--quiet",
        ],
        cwd=sandbox.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **popen,
    )


def check_no_complete_file(proc: subprocess.CompletedProcess[str], output: Path, *reasons: str) -> None:
    assert proc.returncode != 0, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = message_lines(proc.stderr)
    assert lines and lines[-1].startswith("newstag predict: ") and any(r in lines[-1] for r in reasons), (
        lines[-3:]
    )
    assert not output.exists(), "the output file exists although the disk filled up"
    left = [p.name for p in output.parent.iterdir()]
    assert all(name.endswith(TEMP_SUFFIXES) for name in left), left


def test_predict_onto_a_full_tmpfs_fails_cleanly(
    trained_sandbox: TrainedSandbox, tmpfs: Path, tmp_path: Path
) -> None:
    source = tmp_path / "articles.jsonl"
    write_input(source, 20_000)
    output = tmpfs / "tagged.jsonl"
    proc = predict(trained_sandbox, source, output)
    check_no_complete_file(proc, output, "No space left on device", "disk is full", "no space")


def test_predict_past_the_file_size_limit_fails_cleanly(
    trained_sandbox: TrainedSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "articles.jsonl"
    write_input(source, 20_000)  # written here, before the limit applies (about 2.5 MB)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "tagged.jsonl"
    proc = predict(trained_sandbox, source, output, preexec_fn=limit_file_size)
    check_no_complete_file(proc, output, "File too large", "file size limit", "too large")
