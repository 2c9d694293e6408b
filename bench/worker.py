"""One measurement in its own process: ``python -m bench.worker JOB.json``.

A job names a system, a dataset pickle (``bench.data``), how many times to repeat the in-memory prediction,
and where to write the result. For every unit of the dataset (one split, or each cross-validation fold) the
worker fits the system on the unit's train/validation documents, times the fit, predicts the test documents
``repeats`` times (timing each), saves the model to a scratch folder to weigh it, and records the
predictions (and, when the dataset reports segments of an axis, each system's primary region, untimed). Metrics are computed by the parent from those predictions, with ``pipeline.metrics``, the
same way for every system. The peak RSS is this process's ``ru_maxrss``: the interpreter, the libraries
the system needs, the dataset and the model.

The job ``fasttext-tune`` runs the fastText grid instead and records the best point per unit and axis.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, apply_quiet_env, cpu_seconds, peak_rss_mb, rss_mb


def _system(job: dict[str, Any], data: dict[str, Any], unit_index: int) -> Any:
    from bench import systems

    name, scored = job["system"], data.get("scored")
    if name == "newstag":
        return systems.NewstagSystem(data["config"], data["axes"], scored, data.get("coverage"))
    if name == "fasttext":
        return systems.FastTextSystem(data["axes"], job["params"][unit_index], scored)
    if name == "tfidf-svm":
        return systems.PlainSystem(data["axes"], scored, data.get("tfidf"))
    if name == "gazetteer":
        return systems.GazetteerSystem(data["axes"])
    raise ValueError(f"unknown system {name!r}")


def run_system(job: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    from bench.data import subset

    units = []
    for k, unit in enumerate(data["units"]):
        train, val, test = (subset(data, unit[s]) for s in ("train", "validation", "test"))
        system = _system(job, data, k)
        t0, c0 = time.perf_counter(), cpu_seconds()
        system.fit(train, val)
        fit_seconds, fit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        timings, cpu, pred = [], [], None
        for _ in range(job["repeats"]):
            t0, c0 = time.perf_counter(), cpu_seconds()
            out = system.predict(test)
            timings.append(time.perf_counter() - t0)
            cpu.append(cpu_seconds() - c0)
            pred = pred or out
        top1 = system.top1(test) if data["single_label"] else None
        primary = system.primary(test) if data.get("segments") and hasattr(system, "primary") else None
        scratch = Path(tempfile.mkdtemp(prefix=f"{job['system']}-", dir=OUT / "tmp"))
        try:
            model_bytes = system.save(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        units.append(
            {
                "fit_seconds": fit_seconds,
                "fit_cpu_seconds": fit_cpu,
                "predict_seconds": timings,
                "predict_cpu_seconds": cpu,
                "n_test": len(test["id"]),
                "n_train": len(train["id"]),
                "n_validation": len(val["id"]),
                "model_bytes": model_bytes,
                "pred": pred,
                "top1": top1,
                "primary": primary,
                "info": system.info,
                "peak_rss_mb_after_unit": peak_rss_mb(),
            }
        )
        del system
        gc.collect()
    return {"units": units}


def run_tune(job: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    from bench.data import subset
    from bench.systems import tune_fasttext

    units = []
    for unit in data["units"]:
        train, val = subset(data, unit["train"]), subset(data, unit["validation"])
        t0 = time.perf_counter()
        res = tune_fasttext(
            train, val, data["axes"], job["quick"], data["single_label"], data.get("multi_label", ())
        )
        res["seconds"] = time.perf_counter() - t0
        units.append(res)
    return {"units": units}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    apply_quiet_env()
    job = json.loads(Path(argv[0]).read_text())
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    from bench.data import load

    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    data = load(job["data"])
    data_rss = rss_mb()
    result = run_tune(job, data) if job["system"] == "fasttext-tune" else run_system(job, data)
    result.update(
        {
            "system": job["system"],
            "dataset": data["name"],
            "data_rss_mb": data_rss,
            "peak_rss_mb": peak_rss_mb(),
            "wall_seconds": time.perf_counter() - start,
            "cpu_seconds": cpu_seconds(),
            "loadavg_1min": [load_start, os.getloadavg()[0]],
        }
    )
    out = Path(job["out"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
