"""Several corpora in one config, on small files we write: names, per-corpus label sources, date splits,
unknown labels, coverage, heads trained only on the corpora that cover their label, per-corpus reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.evaluate import evaluate_split
from pipeline.features import Featurizer
from pipeline.metrics import metric_items
from pipeline.model import NewsTagger
from pipeline.prepare import load_prepared, prepare, processed_path, split_frame
from pipeline.reports import summary_lines

PORTAL = {
    "conflict": "Armed clashes and drone strikes hit the border villages near {place}.",
    "vote": "Voters queue to elect a new parliament and a president in {place}.",
    "quake": "A strong earthquake and aftershocks flatten houses around {place}.",
}
ARTICLES = {
    "immigration": "Asylum seekers and migrants wait at the border crossing as deportation flights resume.",
    "elections": "The campaign enters its last week as candidates court undecided voters in swing states.",
    "media_bias": "Critics accuse the network of slanted coverage in its evening broadcast.",
}
PLACES = ["Kyiv", "Lagos", "Lima", "Manila"]
COUNTRIES = {"Kyiv": ["UA"], "Lagos": ["NG"], "Lima": ["PE"], "Manila": ["PH"]}


def _portal(folder: Path) -> Path:
    rows = []
    for i in range(120):
        kind = list(PORTAL)[i % 3]
        place = PLACES[i % 4]
        month = 1 + i % 12
        rows.append(
            {
                "id": f"p{i}",
                "date": f"2025-{month:02d}-{1 + i % 27:02d}",
                "title": "",
                "text": PORTAL[kind].format(place=place) + f" Item {i}.",
                "category": kind,
                "countries": COUNTRIES[place] if i % 5 else [],  # every fifth links no country: unknown
            }
        )
    path = folder / "portal.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _articles(folder: Path) -> Path:
    rows = []
    for i in range(90):
        topic = list(ARTICLES)[i % 3]
        split = "test" if i % 10 == 0 else "validation" if i % 10 == 1 else "train"
        rows.append(
            {"id": f"a{i}", "title": f"Piece {i}", "text": ARTICLES[topic], "topic": topic, "split": split}
        )
    path = folder / "articles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _taxonomy(folder: Path) -> Path:
    path = folder / "themes.yaml"
    path.write_text(
        "themes:\n"
        "  conflict-and-security: [conflict]\n"
        "  politics-and-elections: [vote, elections]\n"
        "  disasters: [quake]\n"
        "  migration: [immigration]\n"
        "unmapped:\n"
        "  media_bias: media criticism\n"
    )
    return path


def _config(tmp_path: Path, extra: str = "") -> Path:
    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "several.yaml"
    path.write_text(
        f"""
name: several
processed_dir: {tmp_path / "processed"}
corpora:
  - name: portal
    format: jsonl
    path: {_portal(tmp_path)}
    date_field: date
    label_fields: {{category: category, countries: countries}}
    split_scheme: date
    validation_from: "2025-08-01"
    test_from: "2025-10-01"
    axes:
      themes: {{source: category}}
      regions: {{source: countries, empty_is_unknown: true}}
  - name: articles
    format: jsonl
    path: {_articles(tmp_path)}
    split_field: split
    label_fields: {{topic: topic}}
    axes:
      themes: {{source: topic, empty_is_unknown: true}}
axes:
  regions: {{taxonomy: {root / "configs/taxonomy/regions.yaml"}, min_support: 2}}
  themes: {{taxonomy: {_taxonomy(tmp_path)}, min_support: 2}}
features: {{word: {{min_df: 1}}, gazetteer: {{enabled: false}}}}
{extra}
"""
    )
    return path


def test_several_corpora_prepare_with_their_own_splits_labels_and_coverage(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    prepared = prepare(cfg, say=lambda _: None)
    report = prepared.report
    assert report["corpora"]["portal"]["documents"] == {"train": 70, "validation": 20, "test": 30}
    assert report["corpora"]["articles"]["documents"] == {"train": 72, "validation": 9, "test": 9}
    assert report["coverage"] == {
        "portal": {
            "themes": ["conflict-and-security", "disasters", "politics-and-elections"],
            "regions": ["Africa", "Asia-Pacific", "Europe", "Latin America"],
        },
        "articles": {"themes": ["migration", "politics-and-elections"]},
    }
    frame, gold = split_frame(load_prepared(prepared.path)["train"])
    by_id = dict(zip(frame["id"], range(len(frame)), strict=True))
    assert gold["regions"][by_id["a2"]] is None  # articles do not feed regions: unknown, not "no region"
    assert gold["regions"][by_id["p0"]] is None  # a portal item that links no country: unknown
    assert gold["regions"][by_id["p1"]] == ["Africa"]
    assert gold["themes"][by_id["a2"]] is None  # a topic left out of the taxonomy says nothing
    assert gold["themes"][by_id["a3"]] == ["migration"]
    assert set(frame["corpus"]) == {"portal", "articles"}
    test_dates = load_prepared(prepared.path)["test"].to_pandas()
    assert (test_dates.loc[test_dates["corpus"] == "portal", "date"] >= "2025-10-01").all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("corpus: {format: jsonl, path: x.jsonl}", "either corpus"),
        ("model: {recent_corpora: [nowhere]}", "model.recent_corpora"),
        ("model: {recent_axes: [topics]}", "model.recent_axes"),
    ],
)
def test_config_mistakes_with_several_corpora_fail_at_load(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, extra))


def test_an_axis_no_corpus_feeds_and_a_date_split_without_test_from_fail_at_load(tmp_path: Path) -> None:
    path = _config(tmp_path)
    text = path.read_text()
    with pytest.raises(ConfigError, match="no corpus feeds it"):
        load_config(path, ["axes.topics={source: x}"])
    path.write_text(text.replace('    test_from: "2025-10-01"\n', ""))
    with pytest.raises(ConfigError, match="test_from"):
        load_config(path)


def _fitted(tmp_path: Path) -> tuple[NewsTagger, dict, dict]:
    cfg = load_config(_config(tmp_path))
    prepared = prepare(cfg, say=lambda _: None)
    data = load_prepared(prepared.path)
    frames = {s: split_frame(data[s]) for s in ("train", "validation", "test")}
    tagger = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=2)
    tagger.fit(*frames["train"], *frames["validation"], coverage=prepared.report["coverage"])
    return tagger, frames, prepared.report["coverage"]


def test_heads_train_only_on_the_corpora_that_cover_their_label(tmp_path: Path) -> None:
    tagger, _, _ = _fitted(tmp_path)
    assert tagger.trained_on_["themes"]["migration"] == ["articles"]
    assert tagger.trained_on_["themes"]["disasters"] == ["portal"]
    assert tagger.trained_on_["themes"]["politics-and-elections"] == ["articles", "portal"]
    assert tagger.trained_on_["regions"]["Africa"] == ["portal"]
    # words only portal items use never reach the migration head: the portal is not its negative
    names = list(tagger.feature_names())
    column = tagger._slices()["themes"].start + tagger.labels_["themes"].index("migration")
    portal_only = [names.index(f"word:{w}") for w in ("earthquake", "drone", "parliament")]
    assert np.all(tagger.coef_[portal_only, column] == 0)
    disasters = tagger._slices()["themes"].start + tagger.labels_["themes"].index("disasters")
    assert tagger.coef_[names.index("word:earthquake"), disasters] > 0


def test_each_corpus_is_scored_on_the_labels_it_covers_with_a_report_per_corpus(tmp_path: Path) -> None:
    tagger, frames, coverage = _fitted(tmp_path)
    report, _ = evaluate_split(tagger, *frames["test"], coverage)
    assert set(report["corpora"]) == {"portal", "articles"}
    portal = report["corpora"]["portal"]["axes"]
    assert "migration" not in portal["themes"]["per_label"]  # the portal cannot say migration
    assert portal["themes"]["top1_accuracy"] == pytest.approx(1.0)
    assert "regions" not in report["corpora"]["articles"]["axes"]
    known = sum(
        r is not None
        for r, c in zip(frames["test"][1]["regions"], frames["test"][0]["corpus"], strict=True)
        if c == "portal"
    )
    assert portal["regions"]["n_docs"] == known
    lines = summary_lines(report)
    assert any(line.startswith("  portal themes:") and "top-1 acc 1.000" in line for line in lines)
    items = metric_items(report, "test")
    assert "test/portal/themes/top1_accuracy" in items and "test/articles/themes/micro_f1" in items


def test_recent_corpora_weights_fold_into_one_matrix(tmp_path: Path) -> None:
    cfg_path = _config(tmp_path)
    cfg = load_config(cfg_path)
    prepared = prepare(cfg, say=lambda _: None)
    data = load_prepared(prepared.path)
    (xt, yt), (xv, yv) = split_frame(data["train"]), split_frame(data["validation"])
    base = NewsTagger(Featurizer(word_min_df=1), axes=("regions", "themes"), min_support=2)
    plain = base.fit(xt, yt, xv, yv, coverage=prepared.report["coverage"])
    plain_coef = plain.coef_.copy()
    recent = NewsTagger(
        Featurizer(word_min_df=1),
        axes=("regions", "themes"),
        min_support=2,
        recent_corpora=("portal",),
        recent_weight=2.0,
        recent_axes=("themes",),
    ).fit(xt, yt, xv, yv, coverage=prepared.report["coverage"])
    assert recent.coef_.shape == plain_coef.shape  # scoring stays one sparse product
    themes, regions = recent._slices()["themes"], recent._slices()["regions"]
    # liblinear draws from one C random generator that threads share: refits differ by about 1e-5
    assert not np.allclose(recent.coef_[:, themes], plain_coef[:, themes], atol=1e-2)
    np.testing.assert_allclose(recent.coef_[:, regions], plain_coef[:, regions], atol=1e-3)
    one = pd.DataFrame({"title": [""], "text": ["Asylum seekers and migrants await deportation flights."]})
    assert recent.predict_labels(one)["themes"] == [["migration"]]


def test_set_reaches_a_corpus_by_its_index_and_takes_unquoted_dates(tmp_path: Path) -> None:
    path = _config(tmp_path)
    cfg = load_config(path, ["corpora.0.validation_from=2025-09-01", "corpora.1.max_chars=500"])
    assert (cfg.corpora[0].validation_from, cfg.corpora[1].max_chars) == ("2025-09-01", 500)
    with pytest.raises(ConfigError, match="not an index of a list of 2"):
        load_config(path, ["corpora.2.path=x"])
    with pytest.raises(ConfigError, match=r"corpora\.0\.test_from"):
        load_config(path, ["corpora.0.test_from=October"])


def test_date_from_and_date_until_leave_documents_out_and_say_so(tmp_path: Path) -> None:
    """Items dated before ``date_from`` or after ``date_until`` are in no split and counted among the
    dropped with their reason, per corpus."""
    sets = ["corpora.0.date_from=2025-03-01", "corpora.0.date_until=2025-11-30"]
    cfg = load_config(_config(tmp_path), sets)
    report = prepare(cfg, say=lambda _: None).report
    # of 120 portal items, 10 each are dated January, February and December: 70 -> 50 train, 30 -> 20 test
    assert report["corpora"]["portal"]["documents"] == {"train": 50, "validation": 20, "test": 20}
    assert report["dropped"]["by_reason"] == {
        "dated before date_from 2025-03-01 (portal)": 20,
        "dated after date_until 2025-11-30 (portal)": 10,
    }
    train = load_prepared(processed_path(cfg))["train"].to_pandas()
    portal = train.loc[train["corpus"] == "portal", "date"]
    assert len(portal) == 50 and (portal >= "2025-03-01").all()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["corpora.0.date_from=2025-08-01"], "date_from must come before"),
        (["corpora.0.date_from=2025-12-01"], "date_from must come before"),
        (["corpora.1.date_from=2025-01-01"], "apply to split_scheme 'date' only"),
        (["corpora.0.date_from=March"], r"corpora\.0\.date_from"),
    ],
)
def test_a_date_from_that_cannot_work_fails_at_load(tmp_path: Path, sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path), sets)


@pytest.mark.e2e
def test_cli_trains_several_corpora_and_evaluate_json_reports_each(tmp_path: Path) -> None:
    """`newstag train` then `newstag evaluate --json` on a config with two corpora: one report per corpus."""
    import subprocess
    import sys

    from pipeline.cli import QUIET_ENV

    config = _config(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, **QUIET_ENV}
    newstag = [sys.executable, "-m", "pipeline.cli"]
    sets = [
        "--set",
        f"tracking.export_dir={tmp_path / 'models'}",
        "--set",
        "tracking.registered_model=several",
    ]
    train = subprocess.run(
        [*newstag, "train", "-c", str(config), "--tracking-uri", store, *sets, "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert "test/portal/themes/top1_accuracy" in json.loads(train.stdout)["metrics"]
    evaluate = subprocess.run(
        [*newstag, "evaluate", "-m", "models:/several@champion", "--tracking-uri", store, "-c", str(config),
         "--split", "test", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    report = json.loads(evaluate.stdout)
    assert set(report["corpora"]) == {"portal", "articles"}
    assert report["corpora"]["portal"]["axes"]["themes"]["top1_accuracy"] == pytest.approx(1.0)
    assert set(report["corpora"]["articles"]["axes"]) == {"themes"}
