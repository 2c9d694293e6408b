"""fastText's own file-to-file prediction, the peer of ``newstag predict`` in the latency table.

    python -m bench.ft_predict load MODEL_DIR
    python -m bench.ft_predict predict MODEL_DIR INPUT.jsonl OUTPUT.jsonl

``MODEL_DIR`` holds one fastText model per axis (``<axis>.bin``, saved by ``bench.systems.FastTextSystem``) and
``meta.json`` (each axis's labels and probability threshold). ``predict`` reads JSONL rows (id, title, text),
turns each into the lower-cased word tokens fastText was trained on, predicts every axis for all lines in one
call per axis, and writes one JSONL row per article (id and the labels per axis). ``load`` only loads the
models. Both print a JSON line with the in-process load and scoring seconds.

Only the standard library and ``fasttext`` are imported (not ``bench.common``, which imports newstag's CLI
module), so the process pays for nothing fastText itself does not need.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"\w+")  # the tokens of bench.common.ft_line (a unit test checks they agree)


def ft_line(title: str | None, text: str | None) -> str:
    """One fastText input line: lower-cased word tokens of title and body, separated by single spaces."""
    title = title or ""
    joined = f"{title}\n{text or ''}" if title else (text or "")
    return " ".join(_TOKEN.findall(joined.lower()))


def load(folder: Path) -> dict[str, tuple[Any, float, dict[str, str]]]:
    """Per axis: the fastText model, its probability threshold and fastText label -> axis label."""
    import fasttext

    meta = json.loads((folder / "meta.json").read_text())
    models = {}
    for axis, spec in meta["axes"].items():
        back = {"__label__" + label.replace(" ", "_"): label for label in spec["labels"]}
        models[axis] = (fasttext.load_model(str(folder / f"{axis}.bin")), float(spec["threshold"]), back)
    return models


def predict(folder: Path, input_path: Path, output_path: Path) -> dict[str, Any]:
    """Tag every row of ``input_path`` into ``output_path``; the load and scoring seconds."""
    t0 = time.perf_counter()
    models = load(folder)
    t1 = time.perf_counter()
    ids, lines = [], []
    with input_path.open(encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                row = json.loads(raw)
                ids.append(row.get("id"))
                lines.append(ft_line(row.get("title"), row.get("text")))
    labels: dict[str, list[list[str]]] = {}
    for axis, (model, threshold, back) in models.items():
        got, _ = model.predict(lines, k=-1, threshold=threshold)
        labels[axis] = [[back.get(name, name[9:]) for name in names] for names in got]
    with output_path.open("w", encoding="utf-8") as out:
        for i, doc_id in enumerate(ids):
            out.write(json.dumps({"id": doc_id, **{a: labels[a][i] for a in labels}}) + "\n")
    t2 = time.perf_counter()
    return {"docs": len(ids), "load_seconds": t1 - t0, "score_seconds": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "load":
        t0 = time.perf_counter()
        load(Path(args[1]))
        summary: dict[str, Any] = {"load_seconds": time.perf_counter() - t0}
    elif len(args) == 4 and args[0] == "predict":
        summary = predict(Path(args[1]), Path(args[2]), Path(args[3]))
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
