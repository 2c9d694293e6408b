"""Cold-start latency of ``newstag predict`` beside fastText's own file-to-file prediction (issue 13).

Input files: the first 1, 4, 100 and 3,000 Reuters-21578 ModApte test articles of the benchmark's identical
splits (``bench.data``), JSONL with id, title and text. Commands, each a whole process timed from start to exit
(``perf_counter`` around ``Popen`` and ``os.wait4``, which also gives its CPU time):

- ``newstag predict --model <exported folder> --input N.jsonl --output out.jsonl --quiet --json``: the export of
  ``configs/reuters.yaml`` made by ``newstag train`` against the benchmark's own store (``bench.cli_bench``);
- the same with ``--jobs 1``: one process, where the default splits a chunk of 1,000 documents or more
  across the cores (``pipeline.predict.engines.SplitEngine``);
- the same with ``--model models:/<registered name>@champion --tracking-uri <the config's benchmark store>``
  (``sqlite:///bench/out/stores/reuters/mlflow.db``), whose champion is that export;
- ``python -m bench.ft_predict predict <folder> N.jsonl out.jsonl``: fastText's models of the same splits (one
  per axis, the benchmark's grid pick, fitted on train, thresholds on validation) loading and tagging the
  same file;
- model loading alone: a process that only loads the model (``pipeline.loading.load_tagger`` for newstag,
  ``bench.ft_predict load`` for fastText); newstag's in-process ``load_seconds`` is read from ``--json``
  when the summary has it;
- ``newstag --help`` and ``newstag predict --help``.

The ``pipeline`` and ``bench`` packages are byte-compiled first (an installed tool starts from bytecode; with
``PYTHONDONTWRITEBYTECODE`` set the editable checkout would otherwise recompile its modules on every run).
Each model's prediction runs once untimed (files into the page cache), then every command ``repeats`` times,
interleaved within each repeat so that a change of machine load touches all of them alike; medians, minima and
maxima are reported with the 1-minute load average sampled around every run. The 4-article runs are repeated once more
with the process tree sampled by psutil (``bench.common.sample_tree_rss``, every 10 ms) for the peak RSS, and
once more under a small launcher (``HWM_SHIM``) that reports the command's exact high-water mark (``ru_maxrss``
of its children). ``ru_maxrss`` of a command spawned from this process is no use: the child inherits the
high-water mark of this process, which holds the dataset; the launcher's own few MB are the floor instead.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import cli_bench
from bench.common import OUT, ROOT, median, quiet_env, sample_tree_rss, venv_bin

SIZES = (1, 4, 100, 3_000)
RSS_SIZE = 4  # the file whose runs are sampled for peak RSS
DATASET = "reuters"
FT_DIR = cli_bench.MODELS / "fasttext-reuters"
SOURCES = ("export", "one", "registry", "fasttext")  # the rows of the latency table
HELP = {"newstag --help": ("--help",), "newstag predict --help": ("predict", "--help")}

# runs ARGV[2:] and writes the peak RSS (MB) of that command (and its waited-for children) to ARGV[1]
HWM_SHIM = """import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0))
sys.exit(code)
"""

# issue 13's limits (seconds, MB)
LIMIT_EXPORT_4 = 0.8
LIMIT_LOAD = 0.3
LIMIT_REGISTRY_4 = 1.5
LIMIT_RSS_4 = 250.0
LIMIT_HELP = 0.5


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, minimum, maximum and count of the measured values (None entries are failed runs)."""
    vals = [float(v) for v in values if v is not None]
    return {
        "median": median(vals),
        "min": min(vals, default=None),
        "max": max(vals, default=None),
        "n": len(vals),
    }


# --------------------------------------------------------------------------- one timed process


def run_timed(cmd: Sequence[str], log: Path, capture: bool = False) -> dict[str, Any]:
    """Run ``cmd`` from the project root: wall seconds from start to exit, CPU seconds of the process and the
    children it waited for, exit code, the 1-minute load average before and after, and (with ``capture``) the
    last JSON object printed on stdout."""
    load0 = os.getloadavg()[0]
    with log.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=ROOT,
            env=quiet_env(),
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=err,
        )
        out = proc.stdout.read() if proc.stdout is not None else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stdout is not None:
        proc.stdout.close()
    result: dict[str, Any] = {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "exit_code": proc.returncode,
        "loadavg_1min": [load0, os.getloadavg()[0]],
    }
    if capture:
        result["summary"] = _last_json(out.decode("utf-8", "replace"))
    if proc.returncode != 0:
        result["error"] = log.read_text()[-2000:]
    return result


def peak_rss_exact(cmd: Sequence[str], log: Path) -> dict[str, Any]:
    """The high-water RSS (MB) of ``cmd`` run under ``HWM_SHIM`` (a process of a few MB), and its exit code."""
    report = log.with_suffix(".hwm")
    report.unlink(missing_ok=True)
    with log.open("w") as err:
        code = subprocess.call(
            [sys.executable, "-S", "-c", HWM_SHIM, str(report), *cmd],
            cwd=ROOT,
            env=quiet_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    hwm = float(report.read_text()) if report.is_file() else None
    report.unlink(missing_ok=True)
    return {"hwm_mb": hwm if code == 0 else None, "hwm_exit_code": code}


def _last_json(text: str) -> dict[str, Any] | None:
    """The JSON object a command printed on stdout (pretty-printed or one line), or None."""
    text = text.strip()
    start = text.rfind("\n{")
    for chunk in (text, text[start + 1 :] if start >= 0 else ""):
        try:
            value = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


# --------------------------------------------------------------------------- the fastText model


def _data_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fasttext_model(
    data_path: Path, params: Mapping[str, Any] | None, quick: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    """The saved fastText models of the dataset (``FT_DIR``), fitted in a child process when none is cached for
    this data (and these grid picks, when given; without them the child runs the benchmark's grid)."""
    meta_file = FT_DIR / "meta.json"
    sha = _data_sha(data_path)
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        bins = all((FT_DIR / f"{a}.bin").is_file() for a in meta.get("axes", {}))
        same = params is None or {a: v["params"] for a, v in meta["axes"].items()} == dict(params)
        if bins and meta.get("data_sha256") == sha and same:
            say(f"  reusing fastText models {FT_DIR.relative_to(ROOT)}")
            return {**meta, "reused": True}
    FT_DIR.mkdir(parents=True, exist_ok=True)
    job = FT_DIR.parent / "fasttext-reuters.job.json"
    job.write_text(json.dumps({"data": str(data_path), "params": params, "quick": quick, "out": str(FT_DIR)}))
    say(f"  fitting fastText on the {DATASET} train split -> {FT_DIR.relative_to(ROOT)}")
    log = cli_bench.LOGS / "latency-fasttext-fit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        res = subprocess.run(
            [sys.executable, "-m", "bench.latency", "fit-fasttext", str(job)],
            cwd=ROOT,
            env=quiet_env(),
            stdout=err,
            stderr=err,
            check=False,
        )
    if res.returncode != 0 or not meta_file.is_file():
        raise RuntimeError(f"fitting fastText failed (exit {res.returncode}); see {log}")
    return {**json.loads(meta_file.read_text()), "reused": False}


def fit_fasttext(job: Mapping[str, Any]) -> None:
    """Child process: fit ``FastTextSystem`` on the train split (grid on validation when no params are
    given), save one ``<axis>.bin`` per axis and ``meta.json`` (labels, thresholds, params, data hash)."""
    from bench import data as bdata
    from bench.systems import FastTextSystem, tune_fasttext

    data_path = Path(job["data"])
    data = bdata.load(data_path)
    unit = data["units"][0]
    train, val = bdata.subset(data, unit["train"]), bdata.subset(data, unit["validation"])
    params = job.get("params")
    ranked = params
    if params is None:
        tuned = tune_fasttext(train, val, data["axes"], bool(job.get("quick")), data["single_label"])
        ranked = tuned["ranked"]
    system = FastTextSystem(data["axes"], ranked)
    t0 = time.perf_counter()
    system.fit(train, val)
    fit_seconds = time.perf_counter() - t0
    out = Path(job["out"])
    for old in out.glob("*.bin"):
        old.unlink()
    system.save(out)
    meta = {
        "data_sha256": _data_sha(data_path),
        "fit_seconds": fit_seconds,
        "tuned_here": params is None,
        "axes": {
            axis: {
                "labels": data["axes"][axis],
                "threshold": system.thresholds[axis],
                "params": system.info[axis]["params"],
            }
            for axis in system.models
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


# --------------------------------------------------------------------------- measuring


def _folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _commands(export: str, registry: str, tracking: str, inp: Path, outp: Path) -> dict[str, list[str]]:
    newstag = [
        venv_bin("newstag"),
        "predict",
        "--input",
        str(inp),
        "--output",
        str(outp),
        "--quiet",
        "--json",
    ]
    return {
        "export": [*newstag, "--model", export],
        "one": [*newstag, "--model", export, "--jobs", "1"],
        "registry": [*newstag, "--model", registry, "--tracking-uri", tracking],
        "fasttext": [sys.executable, "-m", "bench.ft_predict", "predict", str(FT_DIR), str(inp), str(outp)],
    }


def _load_commands(export: str, registry: str, tracking: str) -> dict[str, list[str]]:
    code = (
        "import sys; from pipeline.loading import load_tagger; load_tagger(sys.argv[1], sys.argv[2] or None)"
    )
    return {
        "export": [sys.executable, "-c", code, export, ""],
        "registry": [sys.executable, "-c", code, registry, tracking],
        "fasttext": [sys.executable, "-m", "bench.ft_predict", "load", str(FT_DIR)],
    }


def _output_digest(path: Path) -> str | None:
    """sha256 of an output file with the rows sorted (None when missing)."""
    if not path.is_file():
        return None
    return hashlib.sha256("".join(sorted(path.read_text(encoding="utf-8").splitlines())).encode()).hexdigest()


def measure(
    repeats: int,
    ft_params: Mapping[str, Any] | None,
    quick: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The latency measurements (the ``latency`` entry of results.json)."""
    from bench import data as bdata
    from pipeline.config import load_config

    started = time.perf_counter()
    loadavg_start = list(os.getloadavg())
    # Every command starts from compiled bytecode, as an installed tool does: with PYTHONDONTWRITEBYTECODE
    # set (as here) the package's pycache would never be written and each run would compile its modules.
    for package in ("pipeline", "bench"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    spec_config = bdata.DATASETS[DATASET].config
    cfg = load_config(ROOT / spec_config)
    exported = cli_bench.export_model(spec_config, say)
    export = exported["export_path"]
    registry = f"models:/{cfg.tracking.registered_model}@champion"
    tracking = cli_bench.store_uri(cfg.name)
    data_path = OUT / "data" / f"{DATASET}.pkl"
    ft = fasttext_model(data_path, ft_params, quick, say)

    data = bdata.load(data_path)
    test = data["units"][0]["test"]
    io = cli_bench.IO
    files = {}
    for n in SIZES:
        files[n] = io / f"latency-{n}.jsonl"
        cli_bench.write_jsonl(bdata.subset(data, test[:n]), files[n])
    del data, test
    logs = cli_bench.LOGS
    logs.mkdir(parents=True, exist_ok=True)

    runs: dict[str, dict[int, list[dict[str, Any]]]] = {s: {n: [] for n in SIZES} for s in SOURCES}
    loads: dict[str, list[dict[str, Any]]] = {s: [] for s in SOURCES}
    helps: dict[str, list[dict[str, Any]]] = {h: [] for h in HELP}
    digests: dict[str, dict[int, str | None]] = {s: {} for s in SOURCES}

    def predict_once(source: str, n: int, rep: int) -> dict[str, Any]:
        outp = io / f"latency-{n}-{source}.out.jsonl"
        cli_bench.remove(outp)
        cmd = _commands(export, registry, tracking, files[n], outp)[source]
        res = run_timed(cmd, logs / f"latency-{source}-{n}.log", capture=True)
        res["rows_out"] = cli_bench.count_lines(outp)
        if rep == 0:
            digests[source][n] = _output_digest(outp)
        cli_bench.remove(outp)
        return res

    say("[latency] warm-up: one untimed prediction per model")
    for source in SOURCES:
        predict_once(source, 1, -1)
    for rep in range(repeats):
        say(
            f"[latency] run {rep + 1}/{repeats}: {', '.join(f'{n:,}' for n in SIZES)} articles x {len(SOURCES)}"
        )
        for n in SIZES:
            for source in SOURCES:
                runs[source][n].append(predict_once(source, n, rep))
        for source, cmd in _load_commands(export, registry, tracking).items():
            loads[source].append(run_timed(cmd, logs / f"latency-load-{source}.log", capture=True))
        for name, args in HELP.items():
            helps[name].append(run_timed([venv_bin("newstag"), *args], logs / "latency-help.log"))

    say(f"[latency] peak RSS of the {RSS_SIZE}-article runs (psutil sampling, then the high-water mark)")
    rss: dict[str, dict[str, Any]] = {}
    for source in SOURCES:
        outp = io / f"latency-{RSS_SIZE}-{source}.out.jsonl"
        cli_bench.remove(outp)
        cmd = _commands(export, registry, tracking, files[RSS_SIZE], outp)[source]
        with (logs / f"latency-rss-{source}.log").open("w") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=err)
            stats = sample_tree_rss(proc, 0.01)
        stats["exit_code"] = proc.returncode
        cli_bench.remove(outp)
        rss[source] = stats | peak_rss_exact(cmd, logs / f"latency-hwm-{source}.log")
        cli_bench.remove(outp)
    cli_bench.remove(*files.values())

    every = [r for s in SOURCES for n in SIZES for r in runs[s][n]] + _flat(loads) + _flat(helps)
    samples = [x for r in every for x in r["loadavg_1min"]]
    return {
        "dataset": DATASET,
        "sizes": list(SIZES),
        "rss_size": RSS_SIZE,
        "repeats": repeats,
        "models": {
            "export": {"uri": export, "mb": _folder_mb(ROOT / export), "reused": exported.get("reused")},
            "one": {"uri": export},
            "registry": {"uri": registry, "tracking_uri": tracking.replace(f"{ROOT}/", "")},
            "fasttext": {
                "uri": str(FT_DIR.relative_to(ROOT)),
                "mb": _folder_mb(FT_DIR),
                "params": {a: v["params"] for a, v in ft["axes"].items()},
                "reused": ft.get("reused"),
            },
        },
        "predict": {s: {str(n): summarize(runs[s][n], n) for n in SIZES} for s in SOURCES},
        "load_process": {s: summarize(loads[s]) for s in SOURCES},
        "load_in_process": {s: in_process_load([r for n in SIZES for r in runs[s][n]]) for s in SOURCES},
        "help": {h: summarize(helps[h]) for h in HELP},
        "rss": rss,
        "same_output_export_one": _same_rows(digests["export"], digests["one"]),
        "same_output_export_registry": _same_rows(digests["export"], digests["registry"]),
        "loadavg_1min": spread(samples) | {"samples": samples},
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "seconds": time.perf_counter() - started,
    }


def _same_rows(a: Mapping[int, str | None], b: Mapping[int, str | None]) -> dict[str, bool]:
    """Per input size, whether two commands' outputs (row digests) were written and are the same."""
    return {str(n): a.get(n) is not None and a.get(n) == b.get(n) for n in SIZES}


def _flat(groups: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for runs in groups.values() for r in runs]


def in_process_load(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Spread of the ``load_seconds`` the successful runs reported (n 0 when none reports it)."""
    return spread([(r.get("summary") or {}).get("load_seconds") for r in runs if r["exit_code"] == 0])


def summarize(runs: Sequence[Mapping[str, Any]], n: int | None = None) -> dict[str, Any]:
    """Wall time spread, median CPU seconds, the in-process load/score seconds when the
    command reported them, and (for predictions of ``n`` rows) whether every run wrote every row."""
    ok = [r for r in runs if r["exit_code"] == 0]
    summaries = [r.get("summary") or {} for r in ok]
    out: dict[str, Any] = {
        "wall": spread([r["wall_seconds"] for r in ok]),
        "cpu_seconds": median(r["cpu_seconds"] for r in ok),
        "load_seconds": spread([s.get("load_seconds") for s in summaries]),
        "score_seconds": spread([s.get("score_seconds") for s in summaries]),
        "failed": len(runs) - len(ok),
        "error": next((r["error"] for r in runs if r.get("error")), None),
    }
    if n is not None:
        out["rows_ok"] = bool(ok) and all(r.get("rows_out") == n for r in ok)
    return out


# --------------------------------------------------------------------------- targets


def _target(name: str, value: float | None, limit: float | None, unit: str, note: str = "") -> dict[str, Any]:
    met = None if value is None or limit is None else value < limit
    return {
        "target": name,
        "newstag": value,
        "peer": limit,
        "margin": None if met is None else limit - value,
        "met": met,
        "unit": unit,
        "note": note,
    }


def peak_rss(stats: Mapping[str, Any]) -> tuple[float | None, str]:
    """The larger of the psutil-sampled tree peak and the exact high-water mark of one command (sampling can
    miss a short peak; the high-water mark counts one process, not a tree), and a note naming both."""
    sampled = stats.get("peak_tree_rss_mb") if stats.get("exit_code") == 0 else None
    hwm = stats.get("hwm_mb")
    if sampled is None or hwm is None:
        only = sampled if hwm is None else hwm
        what = "psutil-sampled only" if hwm is None else "high-water mark only"
        return only, "" if only is None else f"; {what}"
    return max(sampled, hwm), f"; the larger of psutil-sampled {sampled:,.0f} MB and high-water {hwm:,.0f} MB"


def latency_targets(lat: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 13's latency targets with the measured figures (all "not measured" without a latency run)."""
    lat = lat or {}
    pred = lat.get("predict", {})

    def wall(source: str, n: int) -> float | None:
        return pred.get(source, {}).get(str(n), {}).get("wall", {}).get("median")

    in_process = lat.get("load_in_process", {}).get("export", {}).get("median")
    load_process = lat.get("load_process", {}).get("export", {}).get("wall", {}).get("median")
    load, load_note = in_process, "; `load_seconds` of `newstag predict --json`"
    if load is None and load_process is not None:
        load, load_note = load_process, "; whole `load_tagger` process (no `load_seconds` in the summary)"
    rss, rss_note = peak_rss(lat.get("rss", {}).get("export", {}))
    nt_3000, ft_3000 = wall("export", 3_000), wall("fasttext", 3_000)
    help_ = lat.get("help", {})
    return [
        _target(
            f"{RSS_SIZE} articles from an exported folder: wall < {LIMIT_EXPORT_4} s",
            wall("export", RSS_SIZE),
            LIMIT_EXPORT_4,
            "s",
        ),
        _target(
            f"model load from an exported folder < {LIMIT_LOAD} s",
            load,
            LIMIT_LOAD,
            "s",
            load_note if load is not None else "",
        ),
        _target(
            f"{RSS_SIZE} articles via `models:/...@champion`: wall < {LIMIT_REGISTRY_4} s",
            wall("registry", RSS_SIZE),
            LIMIT_REGISTRY_4,
            "s",
        ),
        _target(
            "3,000 articles file to file from an exported folder: wall < fastText's file to file",
            nt_3000,
            ft_3000,
            "s",
            f"; newstag / fastText {nt_3000 / ft_3000:.2f}x" if nt_3000 and ft_3000 else "",
        ),
        _target(
            f"peak RSS of the {RSS_SIZE}-article prediction < {LIMIT_RSS_4:.0f} MB",
            rss,
            LIMIT_RSS_4,
            "MB",
            rss_note,
        ),
        *(
            _target(
                f"`{name}` wall < {LIMIT_HELP} s",
                help_.get(name, {}).get("wall", {}).get("median"),
                LIMIT_HELP,
                "s",
            )
            for name in HELP
        ),
    ]


# --------------------------------------------------------------------------- child entry point


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "fit-fasttext":
        print("usage: python -m bench.latency fit-fasttext JOB.json", file=sys.stderr)
        return 2
    from bench.common import apply_quiet_env

    apply_quiet_env()
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    fit_fasttext(json.loads(Path(args[1]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
