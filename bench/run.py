"""``make bench`` / ``make bench-quick``: newstag side by side with fastText, a plain TF-IDF + linear SVM and a
gazetteer-only region baseline, on identical splits, on this machine, in one run.

    python -m bench.run [--quick] [--only r90|reuters|bbc|world|scale|latency ...] [--repeats N]
                        [--latency-repeats N] [--no-cli]

Protocol (also written at the top of ``bench/results.md``):

- Datasets (``bench.data``): Reuters-21578 ApteMod R90 topics, Reuters-21578 ModApte regions and themes (the
  prepared splits of ``configs/reuters-r90.yaml`` and ``configs/reuters.yaml``), BBC News themes (stratified,
  seeded 5-fold CV over all 2,225 articles, validation carved out of each training fold), and the world
  model (``configs/world.yaml``'s prepared train and validation splits, scored on the WCEP 2025
  October-December test items: themes top-1 among the ten themes the portal covers; regions as label sets on
  the items that link a country, with the Reuters ModApte test split as the long-article side of a "long vs
  short" split of the region figures, ``bench.regions``).
- Systems (``bench.systems``): train on train (+ validation when the system has no use for it), tune on
  validation, score on test; every F1 computed by ``pipeline.metrics.axis_metrics``.
- Each system is fitted and measured in its own child process (``bench.worker``): fit wall time, in-memory
  prediction throughput over the test documents (median of repeats), peak RSS (the child's ``ru_maxrss``),
  model size on disk. Full runs repeat every child 3 times and report medians; ``--quick`` runs each once.
- File to file: ``newstag predict --jobs 2`` on an exported model (``bench.cli_bench``), and the scale curve
  over 10k, 100k and 1M replicated Reuters test articles (``--quick``: up to 100k).
- Latency (``bench.latency``): whole-process wall time of ``newstag predict`` on the first 1, 4, 100 and 3,000
  Reuters test articles, from the exported folder and from ``models:/...@champion``, beside fastText's own
  file-to-file prediction, model loading alone and ``--help``; medians of 5 runs (``--quick``: 3).

Outputs: ``bench/results.md``, ``bench/results.json``, ``bench/scale.png``, ``bench/f1.png`` (``--only`` writes to
``bench/out/only/`` instead, so a partial run never replaces the full results). Scratch: ``bench/out/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH,
    OUT,
    ROOT,
    apply_quiet_env,
    git_state,
    machine,
    mean,
    median,
    now_utc,
    quiet_env,
    stdev,
    versions,
    write_json,
)
from bench.data import DATASETS
from bench.regions import CEILINGS, FIGURE_NAMES, median_segments
from pipeline.metrics import SUMMARY_METRICS, axis_metrics

SYSTEMS = ("newstag", "fasttext", "tfidf-svm", "gazetteer")
SCALE_FULL = (10_000, 100_000, 1_000_000)
SCALE_QUICK = (10_000, 100_000)
SCALE_DATASET = "reuters"  # the scale curve replicates this dataset's test articles through its model
CHILD_TIMEOUT = 3 * 3600
LOADAVG: list[float] = []  # 1-min load average before and after every child and CLI run
METRIC_KEYS = (*SUMMARY_METRICS, "macro_labels", "n_labels", "n_docs")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- children


def run_child(job: dict[str, Any], tag: str) -> dict[str, Any]:
    """Run one ``bench.worker`` job in a fresh interpreter; its result, or ``{"error": ...}``."""
    jobs = OUT / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    job_file, out_file, log = jobs / f"{tag}.json", jobs / f"{tag}.result.json", OUT / "logs" / f"{tag}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    job["out"] = str(out_file)
    job_file.write_text(json.dumps(job))
    out_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    LOADAVG.append(os.getloadavg()[0])
    with log.open("w") as err:
        try:
            res = subprocess.run(
                [sys.executable, "-m", "bench.worker", str(job_file)],
                cwd=ROOT,
                env=quiet_env(),
                stdout=err,
                stderr=err,
                timeout=CHILD_TIMEOUT,
                check=False,
            )
            code = res.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    LOADAVG.append(os.getloadavg()[0])
    if code != 0 or not out_file.is_file():
        tail = log.read_text()[-1500:]
        say(f"    {tag}: FAILED ({code}); see {log}")
        return {"error": f"exit {code}", "log_tail": tail}
    result = json.loads(out_file.read_text())
    result["child_wall_seconds"] = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- scoring


def _metrics(gold: list[list[str]], pred: list[list[str]], labels: list[str]) -> dict[str, Any]:
    m = axis_metrics(gold, pred, labels)
    return {k: m[k] for k in METRIC_KEYS}


def _scored_metrics(gold: list[list[str] | None], pred: list[list[str]], labels: list[str]) -> dict[str, Any]:
    """``_metrics`` over the documents whose gold is known (None: the corpus does not feed the axis)."""
    keep = [k for k, g in enumerate(gold) if g is not None]
    return _metrics([gold[k] for k in keep], [pred[k] for k in keep], labels)


def single_label_axis(data: dict[str, Any], axis: str) -> bool:
    """Whether ``axis`` is scored by its top label (a single-label dataset's axes, but those it scores as
    label sets, ``multi_label``)."""
    return bool(data["single_label"]) and axis not in (data.get("multi_label") or ())


def _segment_scores(
    data: dict[str, Any], axis: str, labels: list[str], unit: dict[str, Any], res: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """``bench.regions.segment_figures`` of one run on each segment of ``axis``."""
    from bench.regions import segment_figures

    pos = {i: k for k, i in enumerate(unit["test"])}
    pred, primary = res["pred"][axis], (res.get("primary") or {}).get(axis)
    out = {}
    for seg in data["segments"][axis]:
        idx = [i for i in seg["test"] if i in pos]
        ks = [pos[i] for i in idx]
        out[seg["name"]] = segment_figures(
            [data["docs"][axis][i] for i in idx],
            [pred[k] for k in ks],
            None if primary is None else [primary[k] for k in ks],
            labels,
        )
    return out


def score_run(run: dict[str, Any], data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per axis, metrics of one child run (CV: the mean over folds, with the per-fold values), over the
    scored labels of the axis (``data["scored"]``, default all) and the test documents of its test corpora
    (``data["test_corpora"]``, default all) known on it; and the figures of its segments, if it has any."""
    out: dict[str, dict[str, Any]] = {}
    scored = data.get("scored") or {}
    test_corpora = data.get("test_corpora") or {}
    segments = data.get("segments") or {}
    for axis, all_labels in data["axes"].items():
        labels = scored.get(axis, all_labels)
        corpora = test_corpora.get(axis)
        per_unit, seg_scores = [], None
        for unit, res in zip(data["units"], run["units"], strict=True):
            if axis not in (res["pred"] or {}):
                continue
            keep = [
                k
                for k, i in enumerate(unit["test"])
                if corpora is None or data["docs"]["corpus"][i] in corpora
            ]
            gold = [data["docs"][axis][unit["test"][k]] for k in keep]
            entry = {"thresholded": _scored_metrics(gold, [res["pred"][axis][k] for k in keep], labels)}
            if res.get("top1") and axis in res["top1"]:
                entry["top1"] = _scored_metrics(gold, [res["top1"][axis][k] for k in keep], labels)
            per_unit.append(entry)
            if axis in segments and seg_scores is None:  # segments are defined on one-unit datasets
                seg_scores = _segment_scores(data, axis, labels, unit, res)
        if not per_unit:
            continue
        single = single_label_axis(data, axis)
        kind = "top1" if single else "thresholded"
        summary = {}
        for key in ("micro_f1", "macro_f1", "subset_accuracy"):
            vals = [u[kind][key] for u in per_unit]
            summary[key] = mean(vals)
            if len(vals) > 1:
                summary[f"{key}_sd"] = stdev(vals)
                summary[f"{key}_folds"] = vals
        if single:
            summary["accuracy"] = summary["subset_accuracy"]
            summary["thresholded_micro_f1"] = mean(u["thresholded"]["micro_f1"] for u in per_unit)
            summary["thresholded_macro_f1"] = mean(u["thresholded"]["macro_f1"] for u in per_unit)
        summary["detail"] = per_unit if len(per_unit) > 1 else per_unit[0]
        if seg_scores is not None:
            summary["segments"] = seg_scores
        out[axis] = summary
    return out


def summarize_system(runs: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """Medians over the repeated child runs of one system on one dataset."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0].get("error") if runs else "not run", "log_tail": runs[0].get("log_tail", "")}
    fit = [u["fit_seconds"] for r in ok for u in r["units"]]
    fit_cpu = [u["fit_cpu_seconds"] for r in ok for u in r["units"]]
    dps = [u["n_test"] / s for r in ok for u in r["units"] for s in u["predict_seconds"] if s > 0]
    cpu_dps = [u["n_test"] / s for r in ok for u in r["units"] for s in u["predict_cpu_seconds"] if s > 0]
    scores = [score_run(r, data) for r in ok]
    axes = {}
    for axis in scores[0]:
        keys = [k for k, v in scores[0][axis].items() if isinstance(v, float)]
        axes[axis] = {k: median(s[axis][k] for s in scores) for k in keys}
        axes[axis]["repeats"] = [{k: s[axis][k] for k in keys} for s in scores]
        axes[axis]["detail_first_run"] = scores[0][axis]["detail"]
        if "segments" in scores[0][axis]:
            axes[axis]["segments"] = median_segments([s[axis]["segments"] for s in scores])
    return {
        "runs": len(ok),
        "fit_seconds": median(fit),
        "fit_seconds_all": fit,
        "fit_cpu_seconds": median(fit_cpu),
        "predict_docs_per_s": median(dps),
        "predict_docs_per_s_all": dps,
        "predict_docs_per_cpu_s": median(cpu_dps),
        "loadavg_1min": [x for r in ok for x in r.get("loadavg_1min", [])],
        "n_test": [u["n_test"] for u in ok[0]["units"]],
        "peak_rss_mb": median(r["peak_rss_mb"] for r in ok),
        "data_rss_mb": median(r["data_rss_mb"] for r in ok),
        "model_mb": median(u["model_bytes"] / 1e6 for r in ok for u in r["units"]),
        "info": ok[0]["units"][0]["info"],
        "axes": axes,
    }


# --------------------------------------------------------------------------- one dataset


def bench_dataset(name: str, quick: bool, repeats: int, predict_repeats: int) -> dict[str, Any]:
    from bench import data as bdata

    spec = DATASETS[name]
    t0 = time.perf_counter()
    say(f"[{name}] preparing {spec.config}")
    path = bdata.build(spec)
    data = bdata.load(path)
    result: dict[str, Any] = {
        "title": spec.title,
        "config": spec.config,
        "single_label": spec.single_label,
        "cv_folds": spec.cv_folds,
        "units": data["sizes"],
        "n_docs": data["n_docs"],
        "labels": {a: len(v) for a, v in data["axes"].items()},
        "goals": dict(spec.goals),
    }
    if "scored" in data:
        result["scored"] = data["scored"]
        result["test_corpora"] = data["test_corpora"]
        result["known"] = _known_counts(data)
        result["multi_label"] = list(data.get("multi_label") or [])
    if data.get("segments"):
        result["segments"] = {
            axis: [
                {**{k: v for k, v in seg.items() if k != "test"}, "n_docs": len(seg["test"])} for seg in segs
            ]
            for axis, segs in data["segments"].items()
        }
    say(f"[{name}] fastText grid on validation ({'quick' if quick else 'full'} grid)")
    tune = run_child({"system": "fasttext-tune", "data": str(path), "quick": quick}, f"{name}-fasttext-tune")
    if "error" in tune:
        result["fasttext_tuning"] = tune
        params = None
    else:
        params = [u.get("ranked", u["best"]) for u in tune["units"]]
        result["fasttext_tuning"] = {
            "metric": tune["units"][0]["metric"],
            "metrics": tune["units"][0].get("metrics", {}),
            "seconds_per_unit": [u["seconds"] for u in tune["units"]],
            "seconds": median(u["seconds"] for u in tune["units"]),
            "best": [u["best"] for u in tune["units"]],
            "grid": [u["grid"] for u in tune["units"]],
            "peak_rss_mb": tune["peak_rss_mb"],
        }
    systems = [s for s in SYSTEMS if s != "gazetteer" or "regions" in data["axes"]]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    for rep in range(repeats):
        for system in systems:
            if system == "fasttext" and params is None:
                runs[system].append({"error": "fastText tuning failed"})
                continue
            job = {"system": system, "data": str(path), "repeats": predict_repeats, "params": params}
            say(f"[{name}] {system} (run {rep + 1}/{repeats})")
            runs[system].append(run_child(job, f"{name}-{system}-{rep}"))
    result["systems"] = {s: summarize_system(r, data) for s, r in runs.items()}
    result["seconds"] = time.perf_counter() - t0
    return result


def _known_counts(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per benchmarked axis and split, how many documents have a known gold entry (test: in the axis's test
    corpora)."""
    unit, docs = data["units"][0], data["docs"]
    out = {}
    for axis in data["axes"]:
        corpora = (data.get("test_corpora") or {}).get(axis)
        out[axis] = {
            s: sum(
                docs[axis][i] is not None and (s != "test" or corpora is None or docs["corpus"][i] in corpora)
                for i in unit[s]
            )
            for s in unit
        }
    return out


# --------------------------------------------------------------------------- file to file


def bench_cli_rows(names: list[str], results: dict[str, Any], cli_repeats: int) -> dict[str, Any]:
    """Per dataset: export a model with ``newstag train`` and time ``newstag predict --jobs 2`` on its test
    articles (all articles for the CV dataset)."""
    from bench import cli_bench
    from bench import data as bdata

    out: dict[str, Any] = {}
    for name in names:
        spec = DATASETS[name]
        say(f"[cli] {name}: exported model")
        try:
            exported = cli_bench.export_model(spec.config, say)
        except Exception as exc:  # report it, keep benchmarking
            out[name] = {"error": str(exc)}
            say(f"  {exc}")
            continue
        data = bdata.load(OUT / "data" / f"{name}.pkl")
        idx = list(range(data["n_docs"])) if spec.cv_folds else data["units"][0]["test"]
        docs = bdata.subset(data, idx)
        inp, outp = cli_bench.IO / f"{name}-test.jsonl", cli_bench.IO / f"{name}-test.out.jsonl"
        n = cli_bench.write_jsonl(docs, inp)
        runs = []
        for rep in range(cli_repeats):
            say(f"[cli] {name}: newstag predict --jobs 2 on {n:,} articles ({rep + 1}/{cli_repeats})")
            cli_bench.remove(outp)
            LOADAVG.append(os.getloadavg()[0])
            stats = cli_bench.run_predict(exported["export_path"], inp, outp, jobs=2)
            LOADAVG.append(os.getloadavg()[0])
            stats["rows_out"] = cli_bench.count_lines(outp)
            if rep == 0 and stats["exit_code"] == 0:
                stats["check"] = _check_cli_output(outp, data, idx)
            runs.append(stats)
        cli_bench.remove(inp, outp)
        ok = [r for r in runs if r["exit_code"] == 0]
        out[name] = {
            "model": exported,
            "n_docs": n,
            "runs": runs,
            "docs_per_s": median(n / r["wall_seconds"] for r in ok) if ok else None,
            "peak_tree_rss_mb": median(r["peak_tree_rss_mb"] for r in ok) if ok else None,
            "peak_tree_pss_mb": median(r.get("peak_tree_pss_mb") for r in ok) if ok else None,
            "error": None if ok else (runs[0].get("error") if runs else "not run"),
        }
    return out


def _check_cli_output(path: Path, data: dict[str, Any], idx: list[int]) -> dict[str, Any]:
    """Micro-F1 of the CLI's labels against gold, as a sanity check that the file path predicts the same task."""
    from bench.cli_bench import read_output_labels

    parsed = read_output_labels(path, list(data["axes"]))
    if parsed is None or len(parsed["ids"]) != len(idx):
        return {"parsed": False}
    by_id = {data["docs"]["id"][i]: i for i in idx}
    order = [by_id.get(i) for i in parsed["ids"]]
    if any(o is None for o in order):
        order = idx  # ids not echoed: assume input order
    check = {"parsed": True}
    for axis, labels in data["axes"].items():
        gold = [data["docs"][axis][i] for i in order]
        check[f"{axis}_micro_f1"] = _metrics(gold, parsed["labels"][axis], labels)["micro_f1"]
    return check


def bench_scale(sizes: tuple[int, ...], cli_repeats: int, model: str) -> dict[str, Any]:
    """newstag predict --jobs 2 over replicated Reuters test articles: docs/s and peak RSS of the tree."""
    from bench import cli_bench
    from bench import data as bdata

    data = bdata.load(OUT / "data" / f"{SCALE_DATASET}.pkl")
    docs = bdata.subset(data, data["units"][0]["test"])
    points = []
    for n in sizes:
        inp, outp = cli_bench.IO / f"scale-{n}.jsonl", cli_bench.IO / f"scale-{n}.out.jsonl"
        say(f"[scale] writing {n:,} articles")
        t0 = time.perf_counter()
        cli_bench.write_jsonl(docs, inp, n)
        gen = time.perf_counter() - t0
        size_mb = inp.stat().st_size / 1e6
        reps = cli_repeats if n < 1_000_000 else 1
        runs = []
        for rep in range(reps):
            say(f"[scale] newstag predict --jobs 2 on {n:,} articles ({size_mb:,.0f} MB) ({rep + 1}/{reps})")
            cli_bench.remove(outp)
            LOADAVG.append(os.getloadavg()[0])
            stats = cli_bench.run_predict(model, inp, outp, jobs=2)
            LOADAVG.append(os.getloadavg()[0])
            stats["rows_out"] = cli_bench.count_lines(outp)
            stats["output_mb"] = outp.stat().st_size / 1e6 if outp.is_file() else 0.0
            runs.append(stats)
            cli_bench.remove(outp)
            if stats["exit_code"] != 0:
                say(f"  failed: {stats.get('error', '')[-300:]}")
                break
        cli_bench.remove(inp)
        ok = [r for r in runs if r["exit_code"] == 0]
        points.append(
            {
                "docs": n,
                "input_mb": size_mb,
                "generate_seconds": gen,
                "runs": runs,
                "wall_seconds": median(r["wall_seconds"] for r in ok) if ok else None,
                "docs_per_s": median(n / r["wall_seconds"] for r in ok) if ok else None,
                "cpu_seconds": median(r.get("cpu_seconds") for r in ok) if ok else None,
                "peak_tree_rss_mb": median(r["peak_tree_rss_mb"] for r in ok) if ok else None,
                "peak_tree_pss_mb": median(r.get("peak_tree_pss_mb") for r in ok) if ok else None,
                "peak_process_rss_mb": median(r["peak_process_rss_mb"] for r in ok) if ok else None,
                "max_processes": max((r["max_processes"] for r in ok), default=None),
                "rows_ok": all(r["rows_out"] == n for r in ok) if ok else False,
                "error": None if ok else runs[0].get("error", "failed"),
            }
        )
    ok = [p for p in points if p["wall_seconds"]]
    for prev, cur in itertools.pairwise(ok):
        extra = cur["wall_seconds"] - prev["wall_seconds"]
        cur["marginal_docs_per_s"] = (cur["docs"] - prev["docs"]) / extra if extra > 0 else None
    startup = None
    if len(ok) > 1 and ok[1].get("marginal_docs_per_s"):
        startup = ok[0]["wall_seconds"] - ok[0]["docs"] / ok[1]["marginal_docs_per_s"]
    return {
        "dataset": SCALE_DATASET,
        "model": model,
        "jobs": 2,
        "points": points,
        "fixed_seconds_estimate": startup,
    }


def bench_latency(results: dict[str, Any], quick: bool, repeats: int) -> dict[str, Any]:
    """``bench.latency.measure`` with the fastText grid pick of this run's Reuters table when there is one."""
    from bench import latency

    tuning = results["datasets"].get(latency.DATASET, {}).get("fasttext_tuning", {})
    params = (tuning.get("best") or [None])[0]
    try:
        lat = latency.measure(repeats, params, quick, say)
    except Exception as exc:  # report it, keep the rest of the run
        say(f"[latency] failed: {exc}")
        return {"error": str(exc)}
    LOADAVG.extend(lat["loadavg_1min"]["samples"])
    return lat


# --------------------------------------------------------------------------- targets


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 5 with the measured numbers and whether it is met (None: not measured)."""
    out = []
    for name, ds in results["datasets"].items():
        sys_ = ds.get("systems", {})
        nt = sys_.get("newstag", {}).get("axes", {})
        for axis in nt:
            single = single_label_axis(ds, axis)
            for metric in ("micro_f1", "macro_f1"):
                label = "accuracy" if single and metric == "micro_f1" else metric.replace("_", "-")
                key = "accuracy" if label == "accuracy" else metric
                mine = nt[axis].get(key)
                for peer in ("fasttext", "tfidf-svm"):
                    theirs = sys_.get(peer, {}).get("axes", {}).get(axis, {}).get(key)
                    met = None if mine is None or theirs is None else mine > theirs
                    out.append(
                        {
                            "target": f"{name} {axis} {label}: newstag > {peer}",
                            "newstag": mine,
                            "peer": theirs,
                            "margin": None if met is None else mine - theirs,
                            "met": met,
                        }
                    )
    out += goal_targets(results)
    ft = results["datasets"].get(SCALE_DATASET, {}).get("systems", {}).get("fasttext", {})
    ft_dps, ft_cpu = ft.get("predict_docs_per_s"), ft.get("predict_docs_per_cpu_s")
    scale = results.get("scale") or {}
    points = [p for p in scale.get("points", []) if p.get("docs_per_s")]
    largest = max(points, key=lambda p: p["docs"], default=None)  # start-up amortised best
    file_dps = largest["docs_per_s"] if largest else None
    met = None if file_dps is None or ft_dps is None else file_dps >= ft_dps
    cpu_note = ""
    if largest and largest.get("cpu_seconds") and ft_cpu:
        cpu_note = (
            f"; per CPU-second (less sensitive to other load): newstag CLI "
            f"{largest['docs'] / largest['cpu_seconds']:,.0f}, fastText {ft_cpu:,.0f} docs"
        )
    out.append(
        {
            "target": f"newstag file-to-file docs/s (CLI --jobs 2, "
            f"{largest['docs'] if largest else 0:,} {SCALE_DATASET} articles) >= "
            f"fastText in-memory docs/s ({SCALE_DATASET} test)",
            "newstag": file_dps,
            "peer": ft_dps,
            "margin": None if met is None else file_dps / ft_dps,
            "met": met,
            "note": cpu_note,
        }
    )
    big = next((p for p in scale.get("points", []) if p["docs"] == 1_000_000), None)
    rss = big.get("peak_tree_rss_mb") if big else None
    note = ""
    if big and big.get("peak_tree_pss_mb"):
        note = (
            f"; PSS of the tree, shared pages counted once: {big['peak_tree_pss_mb']:,.0f} MB; "
            f"largest process {big['peak_process_rss_mb']:,.0f} MB"
        )
    out.append(
        {
            "target": "peak RSS of the 1M-document prediction (CLI process tree) < 1 GB",
            "newstag": rss,
            "peer": 1024.0,
            "margin": None if rss is None else 1024.0 - rss,
            "met": None if rss is None else rss < 1024.0,
            "note": note,
        }
    )
    if "latency" in results:
        from bench.latency import latency_targets

        out += latency_targets(results["latency"])
    return out


def goal_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each dataset's absolute goals (``DatasetSpec.goals``) with newstag's figure: "axis metric" -> floor of
    the axis's main figure, "axis@segment figure" -> floor of a segment's figure (``bench.regions``; a
    ceiling for the figures in ``CEILINGS``)."""
    out = []
    for name, ds in results["datasets"].items():
        nt = ds.get("systems", {}).get("newstag", {}).get("axes", {})
        for goal, limit in ds.get("goals", {}).items():
            where, metric = goal.split()
            axis, _, segment = where.partition("@")
            if segment:
                mine = nt.get(axis, {}).get("segments", {}).get(segment, {}).get(metric)
                title = next(
                    (s["title"] for s in ds.get("segments", {}).get(axis, []) if s["name"] == segment),
                    segment,
                )
                what = f"{name} {axis} {FIGURE_NAMES.get(metric, metric)}, {title}"
            else:
                mine = nt.get(axis, {}).get(metric)
                what = f"{name} {axis} {metric.replace('_', '-')}"
            ceiling = metric in CEILINGS
            margin = None if mine is None else (limit - mine if ceiling else mine - limit)
            out.append(
                {
                    "target": f"{what}: newstag {'<=' if ceiling else '>='} {limit:.2f} (goal)",
                    "newstag": mine,
                    "peer": limit,
                    "margin": margin,
                    "met": None if margin is None else margin >= 0,
                }
            )
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="one run per system, smaller fastText grid, scale to 100k"
    )
    p.add_argument(
        "--only",
        action="append",
        choices=[*DATASETS, "scale", "latency"],
        default=None,
        help="run only this part (repeatable); results go to bench/out/only/",
    )
    p.add_argument("--repeats", type=int, default=None, help="child runs per system (default 3, quick 1)")
    p.add_argument(
        "--latency-repeats",
        type=int,
        default=None,
        help="whole-process runs of each latency command (default 5, quick 3; the table gives their median)",
    )
    p.add_argument("--no-cli", action="store_true", help="skip the file-to-file measurements and scale curve")
    p.add_argument(
        "--scale-sizes",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=None,
        help="comma-separated document counts for the scale curve",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for results.md/json and plots")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite results.md and the plots from a results.json (into its folder or --out)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_quiet_env()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        results["targets"] = targets(results)
        write_outputs(results, (args.out or args.from_json.parent).resolve(), say)
        return 0
    started = time.perf_counter()
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    predict_repeats = 3 if quick else 5
    cli_repeats = 1 if quick else 3
    only = set(args.only or [])
    names = [n for n in DATASETS if not only or n in only]
    do_scale = not args.no_cli and (not only or "scale" in only)
    do_latency = not args.no_cli and (not only or "latency" in only)
    latency_repeats = args.latency_repeats or (3 if quick else 5)
    dest = args.out.resolve() if args.out else (OUT / "only" if only else BENCH)
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "generated": now_utc(),
        "mode": "quick" if quick else "full",
        "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "repeats": {
            "child_runs": repeats,
            "predict_in_memory": predict_repeats,
            "cli": cli_repeats,
            "latency": latency_repeats,
        },
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "datasets": {},
        "stage_seconds": {},
    }
    say(f"bench: {results['mode']} run, {repeats} run(s) per system; scratch in {OUT.relative_to(ROOT)}")
    if (do_scale or do_latency) and SCALE_DATASET not in names:
        from bench import data as bdata

        bdata.build(DATASETS[SCALE_DATASET])

    for name in names:
        results["datasets"][name] = bench_dataset(name, quick, repeats, predict_repeats)
        results["stage_seconds"][name] = results["datasets"][name]["seconds"]

    from bench.cli_bench import cli_status

    results["cli"] = cli_status() if not args.no_cli else {"available": False, "reason": "--no-cli"}
    if results["cli"]["available"]:
        t0 = time.perf_counter()
        cli_names = [n for n in names if DATASETS[n].cli and (not quick or n == SCALE_DATASET)]
        rows = bench_cli_rows(cli_names, results, cli_repeats)
        for name, row in rows.items():
            results["datasets"][name]["cli"] = row
        results["stage_seconds"]["cli_rows"] = time.perf_counter() - t0
        if do_scale:
            t0 = time.perf_counter()
            model = rows.get(SCALE_DATASET, {}).get("model", {}).get("export_path")
            if model is None:
                from bench import cli_bench

                model = cli_bench.export_model(DATASETS[SCALE_DATASET].config, say)["export_path"]
            sizes = args.scale_sizes or (SCALE_QUICK if quick else SCALE_FULL)
            results["scale"] = bench_scale(sizes, cli_repeats, model)
            results["stage_seconds"]["scale"] = time.perf_counter() - t0
        if do_latency:
            results["latency"] = bench_latency(results, quick, latency_repeats)
            results["stage_seconds"]["latency"] = results["latency"].get("seconds", 0.0)
    else:
        say(f"[cli] skipped: {results['cli']['reason']}")
        results["scale"] = None
        if do_latency:
            results["latency"] = None

    results["loadavg_1min"] = {
        "median": median(LOADAVG),
        "max": max(LOADAVG, default=None),
        "min": min(LOADAVG, default=None),
        "samples": LOADAVG,
    }
    results["targets"] = targets(results)
    results["total_seconds"] = time.perf_counter() - started
    write_outputs(results, dest, say)
    say(f"bench: done in {results['total_seconds'] / 60:.1f} min -> {dest / 'results.md'}")
    return 0


def write_outputs(results: dict[str, Any], dest: Path, log: Callable[[str], None]) -> None:
    from bench.report import f1_plot, markdown, scale_plot

    dest.mkdir(parents=True, exist_ok=True)
    plots = {}
    if results.get("scale") and any(p.get("docs_per_s") for p in results["scale"]["points"]):
        plots["scale"] = scale_plot(results["scale"], dest / "scale.png")
    if results["datasets"]:
        plots["f1"] = f1_plot(results, dest / "f1.png")
    results["plots"] = {k: str(v.relative_to(dest)) for k, v in plots.items() if v}
    write_json(dest / "results.json", _slim(results))
    (dest / "results.md").write_text(markdown(results))
    log(f"wrote {dest / 'results.md'}, {dest / 'results.json'}")


def _last_line(text: str) -> str:
    """The last non-empty line of an error text, shortened (results hold no log excerpts)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:200]


def _slim(results: dict[str, Any]) -> dict[str, Any]:
    """results.json: floats rounded, log excerpts dropped, error texts cut to their last line."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: _last_line(v) if k == "error" and isinstance(v, str) else walk(v)
                for k, v in node.items()
                if k not in ("log_tail",)
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, float):
            return round(node, 6)
        return node

    return walk(results)


if __name__ == "__main__":
    sys.exit(main())
