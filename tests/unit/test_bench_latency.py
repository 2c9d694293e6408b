"""The pure parts of the latency benchmark (bench.latency, bench.ft_predict, bench.report): spreads, run
summaries, issue 13's targets and the results.md section, from fixed results; one real tiny process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from bench import latency
from bench.common import ft_line
from bench.ft_predict import ft_line as ft_predict_line
from bench.report import _latency, _targets


def _cell(
    median: float, lo: float, hi: float, n: int = 5, rows_ok: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "wall": {"median": median, "min": lo, "max": hi, "n": n},
        "cpu_seconds": median * 0.9,
        "load_seconds": {"median": None, "min": None, "max": None, "n": 0},
        "score_seconds": {"median": None, "min": None, "max": None, "n": 0},
        "failed": 0,
        "error": None,
        "rows_ok": rows_ok,
        **extra,
    }


def _results(load_in_process: float | None = 0.21) -> dict[str, Any]:
    sizes = [1, 4, 100, 3000]
    walls = {
        "export": [0.61, 0.62, 0.70, 2.40],
        "one": [0.60, 0.63, 0.71, 3.10],
        "registry": [1.30, 1.62, 1.70, 3.50],
        "fasttext": [0.40, 0.41, 0.45, 2.90],
    }
    lat = {
        "dataset": "reuters",
        "sizes": sizes,
        "rss_size": 4,
        "repeats": 5,
        "models": {
            "export": {"uri": "bench/out/models/news-tagger-reuters/v1", "mb": 64.2},
            "registry": {
                "uri": "models:/news-tagger-reuters@champion",
                "tracking_uri": "sqlite:///bench/out/stores/reuters/mlflow.db",
            },
            "fasttext": {
                "uri": "bench/out/models/fasttext-reuters",
                "mb": 21.9,
                "params": {"regions": {"epoch": 25, "lr": 0.5, "wordNgrams": 1}},
            },
        },
        "predict": {
            s: {str(n): _cell(w, w - 0.01, w + 0.05) for n, w in zip(sizes, ws, strict=True)}
            for s, ws in walls.items()
        },
        "load_process": {
            "export": _cell(0.35, 0.33, 0.40),
            "registry": _cell(1.10, 1.05, 1.30),
            "fasttext": _cell(0.20, 0.19, 0.22),
        },
        "load_in_process": {
            "export": {"median": load_in_process, "min": None, "max": None, "n": 5 if load_in_process else 0},
            "registry": {"median": None, "min": None, "max": None, "n": 0},
            "fasttext": {"median": 0.05, "min": 0.04, "max": 0.06, "n": 5},
        },
        "help": {"newstag --help": _cell(0.12, 0.11, 0.13), "newstag predict --help": _cell(0.55, 0.5, 0.6)},
        "rss": {
            "export": {"peak_tree_rss_mb": 212.0, "exit_code": 0, "hwm_mb": 230.0, "hwm_exit_code": 0},
            "registry": {"peak_tree_rss_mb": 400.0, "exit_code": 0, "hwm_mb": 380.0, "hwm_exit_code": 0},
            "fasttext": {"peak_tree_rss_mb": 90.0, "exit_code": 1, "hwm_mb": None, "hwm_exit_code": 1},
        },
        "same_output_export_one": {"1": True, "4": True, "100": True, "3000": True},
        "same_output_export_registry": {"1": True, "4": True, "100": True, "3000": False},
        "loadavg_1min": {"median": 0.8, "min": 0.5, "max": 1.4, "n": 10},
        "loadavg_start": [0.5, 0.6, 0.7],
        "loadavg_end": [1.4, 0.9, 0.8],
        "seconds": 42.0,
    }
    return {"latency": lat, "machine": {"logical_cores": 2}, "targets": latency.latency_targets(lat)}


def test_spread_ignores_failed_runs() -> None:
    assert latency.spread([0.5, None, 0.3, 0.9]) == {"median": 0.5, "min": 0.3, "max": 0.9, "n": 3}
    assert latency.spread([None]) == {"median": None, "min": None, "max": None, "n": 0}


def test_summarize_counts_failures_rows_and_reported_load() -> None:
    ok = {"exit_code": 0, "cpu_seconds": 1.0, "loadavg_1min": [0, 0]}
    runs = [
        {**ok, "wall_seconds": 1.0, "rows_out": 4, "summary": {"load_seconds": 0.2}},
        {**ok, "wall_seconds": 3.0, "rows_out": 4, "summary": {"load_seconds": 0.4}},
        {**ok, "exit_code": 1, "wall_seconds": 0.1, "rows_out": 0, "error": "boom"},
    ]
    s = latency.summarize(runs, 4)
    assert s["wall"] == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 2}
    assert s["load_seconds"]["median"] == pytest.approx(0.3)
    assert (s["failed"], s["error"], s["rows_ok"]) == (1, "boom", True)
    assert latency.summarize(runs[:2], 5)["rows_ok"] is False
    assert latency.in_process_load(runs)["n"] == 2


def test_targets_met_missed_and_not_measured() -> None:
    by_name = {t["target"]: t for t in _results()["targets"]}
    assert len(by_name) == 7
    four = by_name["4 articles from an exported folder: wall < 0.8 s"]
    assert (four["newstag"], four["met"], four["margin"]) == (0.62, True, pytest.approx(0.18))
    assert by_name["model load from an exported folder < 0.3 s"]["newstag"] == 0.21
    assert by_name["4 articles via `models:/...@champion`: wall < 1.5 s"]["met"] is False
    f2f = by_name["3,000 articles file to file from an exported folder: wall < fastText's file to file"]
    assert (f2f["newstag"], f2f["peer"], f2f["met"]) == (2.40, 2.90, True)
    rss = by_name["peak RSS of the 4-article prediction < 250 MB"]
    assert (rss["newstag"], rss["met"]) == (230.0, True)  # the high-water mark, above the sampled peak
    assert rss["note"] == "; the larger of psutil-sampled 212 MB and high-water 230 MB"
    assert by_name["`newstag predict --help` wall < 0.5 s"]["met"] is False
    assert all(t["met"] is None for t in latency.latency_targets(None))
    assert all(t["met"] is None for t in latency.latency_targets({"error": "export failed"}))


def test_load_target_falls_back_to_the_load_only_process() -> None:
    load = next(t for t in _results(None)["targets"] if t["target"].startswith("model load"))
    assert (load["newstag"], load["met"]) == (0.35, False)
    assert "load_tagger" in load["note"]


def test_report_renders_the_latency_section_and_second_targets() -> None:
    r = _results()
    md = "\n".join(_latency(r))
    assert "| newstag, exported folder | 0.61 (0.60-0.66) | 0.62 (0.61-0.67) | 0.70 (0.69-0.75) | 2.40" in md
    assert "| *newstag exported / fastText* | 1.52x | 1.51x | 1.56x | 0.83x |" in md
    assert "| newstag, exported folder, `--jobs 1` | 0.60 (0.59-0.65) | 0.63 (0.62-0.68) |" in md
    assert "The default and `--jobs 1` wrote the same rows for every file." in md
    del r["latency"]["predict"]["one"]  # results written before the row: the table goes without it
    assert "`--jobs 1` |" not in "\n".join(_latency(r))
    assert "| newstag, exported folder | 212 | 230 | 0.56 |" in md
    assert "| fastText (`bench.ft_predict`) | failed | failed | 0.37 |" in md  # its RSS runs exited 1
    assert "| `newstag predict --help` | 0.55 (0.50-0.60) |" in md
    assert "median 0.80 (min 0.50, max 1.40)" in md and "0.50/0.60/0.70 at the start" in md
    assert "different rows for 3000 articles" in md
    table = "\n".join(_targets(r))
    assert (
        "| 4 articles from an exported folder: wall < 0.8 s | 0.62 s | 0.80 s | **yes** (-0.18 s) |" in table
    )
    assert (
        "| 230 MB | 250 MB | **yes** (-20 MB; the larger of psutil-sampled 212 MB and high-water 230 MB) |"
        in table
    )
    assert "newstag / fastText 0.83x" in table


def test_report_says_why_latency_was_not_measured() -> None:
    md = "\n".join(_latency({"latency": {"error": "newstag train failed"}}))
    assert "Not measured in this run: newstag train failed." in md
    assert _latency({}) == []


def test_fasttext_script_tokenises_like_the_benchmark() -> None:
    for title, text in [("Oil prices", "OPEC's output\nrose 3.5%"), (None, "Ümlaut-case; ok"), ("", None)]:
        assert ft_predict_line(title, text) == ft_line(title, text)


def test_run_timed_reads_the_json_summary_and_exit_code(tmp_path: Path) -> None:
    code = "import json; print('noise'); print(json.dumps({'load_seconds': 0.25}, indent=2))"
    res = latency.run_timed([sys.executable, "-c", code], tmp_path / "ok.log", capture=True)
    assert res["exit_code"] == 0 and res["summary"] == {"load_seconds": 0.25}
    assert 0 < res["wall_seconds"] < 30 and res["cpu_seconds"] > 0
    bad = latency.run_timed([sys.executable, "-c", "import sys; sys.exit('no model')"], tmp_path / "bad.log")
    assert bad["exit_code"] == 1 and "no model" in bad["error"]


def test_peak_rss_exact_is_the_commands_own_high_water_mark(tmp_path: Path) -> None:
    """Not this (larger) process's: the launcher stands between them."""
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: this process holds 300+ MB
    grow = "x = bytearray(80 * 2**20); x[::4096] = b'x' * len(x[::4096])"
    res = latency.peak_rss_exact([sys.executable, "-c", grow], tmp_path / "hwm.log")
    assert res["hwm_exit_code"] == 0 and 80 < res["hwm_mb"] < 200
    failed = latency.peak_rss_exact([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "bad.log")
    assert failed == {"hwm_mb": None, "hwm_exit_code": 3}
    assert latency.peak_rss({"exit_code": 1, "hwm_mb": None}) == (None, "")
    assert latency.peak_rss({"exit_code": 0, "peak_tree_rss_mb": 99.0}) == (99.0, "; psutil-sampled only")
    del ballast
