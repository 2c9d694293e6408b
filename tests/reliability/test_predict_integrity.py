"""``newstag predict`` never destroys its input, never lets two runs share an output, resumes only the input it
read, fails without leaving a finished-looking output, and tells a crash from a refusal (issues 10 and 12).

Every run is the real CLI in a subprocess, on a tiny tagger trained in a second on synthetic articles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures_model import tiny_model_folder, tiny_rows
from reliability_support import assert_clean_failure, cli_env, message_lines, run_cli, start_cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model"))


def write_rows(path: Path, n: int, seed: int = 2) -> Path:
    """``n`` synthetic articles as JSON Lines at ``path``."""
    rows = tiny_rows(n, seed)[0]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def predict(model_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(["predict", "-m", str(model_dir), "-q", *args], cwd=cwd)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- the input is never a run's own file

OWN_FILES = [
    "out.jsonl.part",
    "out.jsonl.rejects.jsonl",
    "out.jsonl.rejects.jsonl.part",
    "out.jsonl.progress.json",
]


@pytest.mark.parametrize("own", OWN_FILES)
@pytest.mark.parametrize("how", ["itself", "symlink", "hardlink"])
def test_an_input_that_is_one_of_the_runs_own_files_is_refused_and_left_untouched(
    model_dir: Path, tmp_path: Path, own: str, how: str
) -> None:
    """``-i out.jsonl.part -o out.jsonl`` used to truncate the input and report success, and
    ``-i out.jsonl.rejects.jsonl -o out.jsonl`` deleted it: refused, by name, through a link or a hard link."""
    write_rows(tmp_path / own, 30)
    inp = tmp_path / own
    if how == "symlink":
        inp = tmp_path / "in.jsonl"
        inp.symlink_to(tmp_path / own)
    elif how == "hardlink":
        inp = tmp_path / "in.jsonl"
        os.link(tmp_path / own, inp)
    before = snapshot(tmp_path)
    proc = predict(
        model_dir, "-i", str(inp), "--format", "jsonl", "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path
    )
    assert_clean_failure(proc, "predict", own, "this run's own")
    assert snapshot(tmp_path) == before, "the input and its folder are untouched"


def test_an_output_linked_to_the_input_is_refused(model_dir: Path, tmp_path: Path) -> None:
    inp = write_rows(tmp_path / "in.jsonl", 30)
    os.link(inp, tmp_path / "out.jsonl")
    before = snapshot(tmp_path)
    proc = predict(model_dir, "-i", str(inp), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path)
    assert_clean_failure(proc, "predict", "overwrite the input")
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- one run per output, until it is in place

SECOND_RUN = r"""
import json, sys, time
from pathlib import Path
from pipeline.errors import UsageError
from pipeline.predict.sinks import FileSink

out = Path(sys.argv[1])
progress = Path(f"{out}.progress.json")
while not progress.exists():  # the first run holds the lock once it has written its progress
    time.sleep(0.001)
refused = 0
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:  # what a second `newstag predict -o OUT` does first: open and lock the part file, cut it back
        sink = FileSink(str(out), "parquet", None, "a second run", False, lambda message: None)
    except UsageError:
        refused += 1
        continue
    done = out.exists()
    sink.abort()
    for suffix in (".part", ".rejects.jsonl.part", ".progress.json"):  # this process's own files
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    print(json.dumps({"refused": refused, "output_was_in_place": done}))
    break
"""


def test_a_second_run_waits_until_the_first_has_put_its_parquet_output_in_place(
    model_dir: Path, tmp_path: Path
) -> None:
    """The parquet output used to be assembled after the part file's lock was released: a second run on the
    same output then cut the part file back while the first was turning it into parquet (rows lost,
    ArrowInvalid). A second process tries to take the output as fast as it can for the whole run; it may
    only get it once the first run's output is complete and in place."""
    n = 6000
    inp = write_rows(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.parquet"
    script = tmp_path / "second_run.py"
    script.write_text(SECOND_RUN)
    second = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = predict(model_dir, "-i", str(inp), "-o", str(out), "--batch-size", "10", cwd=tmp_path)
        got, errors = second.communicate(timeout=300)
    finally:
        second.kill()
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, errors[-3000:]
    report = json.loads(got)
    assert report["refused"] > 0, "the second process tried while the first was writing"
    assert report["output_was_in_place"], "the second process got the output before the first had finished"
    ids = [json.loads(line)["id"] for line in inp.read_text().splitlines()]
    assert pq.read_table(out).column("id").to_pylist() == ids
    assert pq.ParquetFile(out).metadata.num_row_groups == n // 10


# --------------------------------------------------------------------------- --resume checks what it read


def kill_when_some_chunks_are_written(proc: subprocess.Popen[str], progress: Path, chunks: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if json.loads(progress.read_text())["chunks"] >= chunks:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
        except (FileNotFoundError, ValueError, KeyError):
            pass
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.002)
    raise AssertionError("no progress")


def test_resume_refuses_an_input_rewritten_with_the_same_size_and_mtime(
    model_dir: Path, tmp_path: Path
) -> None:
    """``--resume`` trusted path, size and mtime: an input rewritten in place (same size, mtime restored)
    resumed into duplicate and missing rows. The consumed rows' content is fingerprinted and checked."""
    inp = write_rows(tmp_path / "in.jsonl", 20_000)
    out = tmp_path / "out.jsonl"
    progress = Path(f"{out}.progress.json")
    args = ["predict", "-m", str(model_dir), "-q", "-i", str(inp), "-o", str(out), "--batch-size", "10"]
    kill_when_some_chunks_are_written(start_cli(args, cwd=tmp_path), progress, 3)
    stat = inp.stat()
    lines = inp.read_text().splitlines(keepends=True)
    inp.write_text("".join(reversed(lines)))  # the same bytes in another order: same size
    os.utime(inp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (inp.stat().st_size, inp.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    # the rows the progress file records (a chunk written but not yet recorded when the kill came is cut by
    # any resume: it is not part of the interrupted run)
    part = Path(f"{out}.part").read_bytes()[: json.loads(progress.read_text())["out_bytes"]]
    resumed = run_cli([*args, "--resume"], cwd=tmp_path)
    assert_clean_failure(resumed, "predict", "--resume", str(inp), "run without --resume")
    assert Path(f"{out}.part").read_bytes()[: len(part)] == part and not out.exists(), (
        "the interrupted run is kept"
    )
    assert json.loads(progress.read_text())["out_bytes"] == len(part)
    # the input put back as it was: the same resume goes on, and the output is whole
    inp.write_text("".join(lines))
    os.utime(inp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    done = run_cli([*args, "--resume"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [json.loads(line)["id"] for line in lines]


# --------------------------------------------------------------------------- a failed run leaves no output


def test_a_run_over_the_reject_limit_leaves_no_output_and_names_the_columns_and_the_fix(
    model_dir: Path, tmp_path: Path
) -> None:
    """With wrong column names every row was rejected and the run exited 1, yet a 0-byte output was renamed
    into place as if finished, and the message did not list the columns found."""
    rows = tiny_rows(40, 3)[0]
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        "".join(json.dumps({"key": r["id"], "headline": r["title"], "body": r["text"]}) + "\n" for r in rows)
    )
    for name in ("out.jsonl", "out.csv", "out.parquet"):
        out = tmp_path / name
        proc = predict(model_dir, "-i", str(inp), "-o", str(out), cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        [line] = [ln for ln in message_lines(proc.stderr) if "rejected (" in ln]
        assert "40 of 40 rows rejected" in line and f"{out} not written" in line
        assert "columns found: key, headline, body" in line and "use --text-field body" in line
        assert not out.exists(), "no finished-looking output"
        assert sorted(p.name for p in tmp_path.glob(f"{name}*")) == [f"{name}.rejects.jsonl"]
        assert len(Path(f"{out}.rejects.jsonl").read_text().splitlines()) == 40
        # the fix the message names works
        fixed = predict(model_dir, "-i", str(inp), "-o", str(out), "--text-field", "body", cwd=tmp_path)
        assert fixed.returncode == 0, fixed.stderr[-3000:]
        assert out.exists() and not Path(f"{out}.rejects.jsonl").exists()


# --------------------------------------------------------------------------- exit codes


CRASH = r"""
import sys
from pipeline import cli

class Broken(Exception):
    pass

def crash(args):  # a command with a bug: the kind of error no message was written for
    raise Broken("something newstag did not expect\nsecond line")

parser = cli.build_parser
def build_parser(command=None):
    p = parser(command)
    sub = next(a for a in p._actions if a.dest == "command")
    sub.add_parser("crash").set_defaults(func=crash)
    return p

cli.build_parser = build_parser
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_exits_4_with_one_line_and_a_report_hint(tmp_path: Path, debug: bool) -> None:
    """A crash exited 1, the same as "too many rejects". It now exits 4 with one line asking for a report;
    the traceback only with NEWSTAG_DEBUG=1."""
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    env = cli_env({"NEWSTAG_DEBUG": "1"} if debug else {"NEWSTAG_DEBUG": ""})
    proc = subprocess.run(
        [sys.executable, str(script), "crash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stderr
    lines = message_lines(proc.stderr)
    last = lines[-1]
    assert last.startswith(
        "newstag crash: unexpected error: Broken: something newstag did not expect second line"
    )
    assert "please report it" in last and "NEWSTAG_DEBUG=1" in last
    if debug:
        assert "Traceback" in proc.stderr and "raise Broken" in proc.stderr
    else:
        assert len(lines) == 1


def test_exit_codes_are_documented_in_the_help_and_the_readme() -> None:
    from reliability_support import ROOT

    from pipeline.cli import build_parser

    help_text = " ".join(build_parser().format_help().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    for text in (help_text, readme):
        assert "4 unexpected error" in text and "1 predict rejected more rows than --max-reject-rate" in text


# --------------------------------------------------------------------------- outside a project


def test_predict_outside_a_project_says_how_to_name_a_model_and_creates_nothing(tmp_path: Path) -> None:
    """Run outside a project with no -m and no tracking store, predict created ./mlflow.db and failed with
    "Registered Model with name=news-tagger not found"."""
    inp = write_rows(tmp_path / "in.jsonl", 5)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli(["predict", "-i", str(inp), "-o", str(tmp_path / "out.jsonl")], cwd=tmp_path)
    assert_clean_failure(proc, "predict", "-m models/news-tagger/champion", "--tracking-uri")
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing created in the current folder"


def test_repeated_ids_are_tagged_and_reported(model_dir: Path, tmp_path: Path) -> None:
    """Two documents with one id are both tagged and written; the summary counts the repeat and names it."""
    rows = tiny_rows(5, 4)[0]
    ids = ["a", "b", "a", "1", "1.0"]  # "1" and "1.0" are two ids (kept as written)
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({**row, "id": i}) + "\n" for row, i in zip(rows, ids, strict=True))
    )
    proc = predict(model_dir, "-i", "in.jsonl", "-o", "out.jsonl", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["duplicate_ids"], summary["first_duplicate_id"]) == (1, "a")
    written = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written == ids
    proc = run_cli(["predict", "-m", str(model_dir), "-i", "in.jsonl", "-o", "out2.jsonl"], cwd=tmp_path)
    assert "1 documents repeat an earlier id (first: 'a')" in proc.stdout + proc.stderr


def test_a_header_less_csv_is_read_with_columns(model_dir: Path, tmp_path: Path) -> None:
    """`--columns id,title,text` names a header-less CSV's columns: every row is tagged, none is eaten as a
    header; --columns on a JSONL input is refused in one line."""
    import csv

    rows = tiny_rows(6, 5)[0]
    with (tmp_path / "in.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([[f"r{i}", row["title"], row["text"]] for i, row in enumerate(rows)])
    proc = predict(model_dir, "-i", "in.csv", "-o", "out.jsonl", "--columns", "id,title,text", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written == [f"r{i}" for i in range(6)]
    write_rows(tmp_path / "in.jsonl", 3)
    proc = predict(model_dir, "-i", "in.jsonl", "-o", "out2.jsonl", "--columns", "id,text", cwd=tmp_path)
    assert proc.returncode == 2 and "--columns" in proc.stderr and not (tmp_path / "out2.jsonl").exists()
