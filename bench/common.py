"""Paths, environment, machine description and small measuring helpers shared by the benchmark modules.

Only the standard library (and psutil, lazily) is imported here: child processes import this module before
they import the system they measure, so it must not add to their memory.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.cli import QUIET_ENV as CLI_QUIET_ENV
from pipeline.predict.engines import available_cores

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"

# Nothing the benchmark starts may call out (the same switches the Makefile and the CLI set).
QUIET_ENV = {**CLI_QUIET_ENV, "TOKENIZERS_PARALLELISM": "false"}

LIBRARIES = (
    "newstag",
    "scikit-learn",
    "numpy",
    "scipy",
    "fasttext-numpy2",
    "joblib",
    "pandas",
    "datasets",
    "mlflow",
    "psutil",
    "matplotlib",
)

_TOKEN = re.compile(r"\w+")


def quiet_env() -> dict[str, str]:
    """The current environment with the no-network switches set."""
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))
    return env


def apply_quiet_env() -> None:
    """Set the no-network switches in this process (inherited by every child)."""
    os.environ.update(QUIET_ENV)
    os.environ.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))


def venv_bin(name: str) -> str:
    """The path of a console script next to the running interpreter (the project's venv)."""
    return str(Path(sys.executable).parent / name)


# --------------------------------------------------------------------------- text


def doc_text(title: str | None, text: str | None) -> str:
    """Title and body as one string, the way newstag's word block reads them."""
    title = title or ""
    return f"{title}\n{text or ''}" if title else (text or "")


def ft_line(title: str | None, text: str | None) -> str:
    """One fastText input line: lower-cased word tokens of title and body, separated by single spaces."""
    return " ".join(_TOKEN.findall(doc_text(title, text).lower()))


# --------------------------------------------------------------------------- measuring


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def median(values: Iterable[float]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


def mean(values: Iterable[float]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def stdev(values: Iterable[float]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def sample_tree_rss(proc: Any, interval: float = 0.1) -> dict[str, float]:
    """Poll a running ``subprocess.Popen`` and its descendants every ``interval`` seconds until it exits.

    Returns the peak of the summed RSS of the tree (what the benchmark reports), the peak of the summed PSS
    (proportional set size: pages shared by forked workers counted once), the peak RSS of any single
    process, the largest number of processes seen at once, the wall time, and the CPU time of the command
    and the children it waited for (from ``os.wait4``, so workers are included) (MB and seconds).
    ``proc.returncode`` is set.
    """
    import psutil

    start = time.perf_counter()
    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        root = None
    peak_tree = peak_pss = peak_single = 0
    most = samples = 0
    while root is not None:
        try:
            if root.status() == psutil.STATUS_ZOMBIE:
                break
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = pss = 0
        for p in procs:
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            total += info.rss
            pss += getattr(info, "pss", info.rss)
            peak_single = max(peak_single, info.rss)
        peak_tree, peak_pss = max(peak_tree, total), max(peak_pss, pss)
        most = max(most, len(procs))
        samples += 1
        time.sleep(interval)
    cpu = None
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
    except ChildProcessError:  # already reaped
        proc.wait()
    wall = time.perf_counter() - start
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_tree_rss_mb": peak_tree / 2**20,
        "peak_tree_pss_mb": peak_pss / 2**20,
        "peak_process_rss_mb": peak_single / 2**20,
        "max_processes": most,
        "samples": samples,
    }


# --------------------------------------------------------------------------- description of the run


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and Python of this machine."""
    import psutil

    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": available_cores(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> dict[str, Any]:
    """The commit and whether the tree has local changes (read-only git commands)."""

    def run(*args: str) -> str:
        try:
            res = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return res.stdout.strip() if res.returncode == 0 else ""

    commit = run("rev-parse", "--short", "HEAD")
    dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit or "unknown", "dirty": dirty}


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
