"""How reliable the Wikipedia Current Events categories are, year by year: the measurement behind
``date_from: "2016-01-01"`` on the ``wcep`` corpus of ``configs/world.yaml``.

    python -m bench.label_noise [--data data/raw/wikipedia_current_events] [--out bench/label-noise]

Three figures, none of them using a model of ours:

- **Agreement with the other days**: a TF-IDF (1,2)-gram LinearSVC fitted on the items of the other days (5
  folds grouped by day, items up to September 2025) names each item's category; the share of items it agrees
  with, per year. Where the source misfiled items, it disagrees more.
- **Called a category absent that day, later in the portal's order**: the share of items whose predicted
  category is missing from their day and comes after their given one in the portal's alphabetical order: the
  trace of a day whose category heading the source missed, its items left under the category before it.
- **Near-duplicates**: pairs of items whose texts are nearly the same (TF-IDF cosine >= 0.8, nearest
  neighbour), and how often their categories agree, 2010-2020 and 2025 apart.

Writes ``results.md`` in ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

ORDER = [
    "Armed conflicts and attacks",
    "Arts and culture",
    "Business and economy",
    "Disasters and accidents",
    "Health and environment",
    "International relations",
    "Law and crime",
    "Politics and elections",
    "Science and technology",
    "Sports",
]
FILES = ("wcep-2010-2020.jsonl.gz", "wcep-2025.jsonl.gz")


def read_items(folder: Path, until: str = "2025-10-01") -> list[dict]:
    """The portal items of both files dated before ``until`` (the 2025 test quarter is never read)."""
    rows = []
    for name in FILES:
        with gzip.open(folder / name, "rt", encoding="utf-8") as fh:
            rows += [r for r in map(json.loads, fh) if r["date"] < until]
    return rows


def measure(rows: list[dict]) -> str:
    """The report, as Markdown."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import GroupKFold
    from sklearn.neighbors import NearestNeighbors
    from sklearn.svm import LinearSVC

    texts = [(f"{r['title']}\n" if r["title"] else "") + r["text"] for r in rows]
    y = np.array([ORDER.index(r["category"]) for r in rows])
    days = np.array([r["date"] for r in rows])
    X = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(texts)
    scores = np.zeros((len(rows), len(ORDER)))
    for fit, held in GroupKFold(5).split(X, y, days):
        scores[held] = LinearSVC(C=0.5).fit(X[fit], y[fit]).decision_function(X[held])
    pred = scores.argmax(1)
    present = defaultdict(set)
    for day, c in zip(days, y, strict=True):
        present[day].add(int(c))
    shifted = np.array(
        [p != c and p > c and p not in present[d] for p, c, d in zip(pred, y, days, strict=True)]
    )
    years = np.array([d[:4] for d in days])
    lines = [
        "# Wikipedia Current Events: how reliable the categories are, by year",
        "",
        "`python -m bench.label_noise` (items up to September 2025; the October-December test quarter is not read)",
        "",
        "| year | items | agrees with a classifier fitted on the other days | called a category absent that day, later in the order |",
        "|---|---:|---:|---:|",
    ]
    for year in sorted(set(years)):
        m = years == year
        lines.append(f"| {year} | {m.sum():,} | {np.mean(pred[m] == y[m]):.3f} | {np.mean(shifted[m]):.3f} |")
    text = [r["text"] for r in rows]
    T = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(text)
    dist, idx = NearestNeighbors(n_neighbors=2, metric="cosine").fit(T).kneighbors(T)
    sim, other = 1 - dist[:, 1], idx[:, 1]
    recent = np.array([r["id"].startswith("wcep25") for r in rows])
    lines += ["", "| near-duplicate items (cosine >= 0.8) | items | same category |", "|---|---:|---:|"]
    for name, keep in (("2010-2020", ~recent & ~recent[other]), ("2025", recent & recent[other])):
        m = (sim >= 0.8) & keep
        lines.append(f"| {name} | {m.sum():,} | {np.mean(y[m] == y[other[m]]):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/raw/wikipedia_current_events"))
    parser.add_argument("--out", type=Path, default=Path("bench/label-noise"))
    args = parser.parse_args(argv)
    report = measure(read_items(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report)
    print(report, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
