"""Bad configs and taxonomies: a clear error naming the file and the key, before any work starts.

"Before any work" is checked by what is left behind: no MLflow store, no prepared data, no model.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reliability_support import ROOT, assert_clean_failure, message_lines, run_cli

from pipeline.config import Config, ConfigError, load_config, read_yaml
from pipeline.prepare import check_taxonomies, prepare
from pipeline.taxonomy import LabelMap, load_taxonomy

REGIONS = str(ROOT / "configs" / "taxonomy" / "regions.yaml")
THEMES = str(ROOT / "configs" / "taxonomy" / "themes.yaml")


def base_config() -> dict[str, Any]:
    """configs/reuters.yaml with absolute taxonomy paths (the tests do not depend on the working directory)."""
    raw = read_yaml(ROOT / "configs" / "reuters.yaml")
    raw["axes"]["regions"]["taxonomy"] = REGIONS
    raw["axes"]["themes"]["taxonomy"] = THEMES
    raw["features"]["gazetteer"]["taxonomy"] = REGIONS
    return raw


def write_config(folder: Path, raw: dict[str, Any], name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return path


def set_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


# ------------------------------------------------------------------------------------------------ config files


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("model.C", "high", "model.C: Input should be a valid number"),
        ("model.C", -1, "model.C: Input should be greater than 0"),
        ("model.kernel", "rbf", "model.kernel: unknown key"),
        ("features.word.ngrams", 2, "features.word.ngrams: unknown key"),
        ("features.word.ngram_range", "1-2", "features.word.ngram_range: Input should be a valid"),
        ("trainer", {"epochs": 3}, "trainer: unknown key"),
        ("axes", [], "axes: Input should be a valid dictionary"),
        ("axes", {}, "axes: at least one label axis is needed"),
        (
            "axes.regions.min_support",
            0,
            "axes.regions.min_support: Input should be greater than or equal to 1",
        ),
        ("corpus.format", "xml", "corpus.format: Input should be"),
        ("corpus.encoding", "utf-42", "corpus.encoding: Value error, unknown text encoding 'utf-42'"),
        ("split.validation_fraction", 0.9, "split.validation_fraction: Input should be less than 0.5"),
        ("name", "no spaces allowed", "name: String should match pattern"),
        ("tune.space", {"model.C": []}, "tune.space: Value error, tune.space.model.C has no values"),
    ],
)
def test_a_bad_value_or_key_is_named_with_its_file(
    key: str, value: Any, expected: str, tmp_path: Path
) -> None:
    raw = base_config()
    set_key(raw, key, value)
    path = write_config(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid config"), message
    assert expected in message, message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.C=abc", "(after --set overrides)"),
        ("model.nope=1", "model.nope: unknown key"),
        ("model=3", "model: Input should be a valid dictionary"),
        ("model.C", "expected dotted.key=value"),
        ("=3", "empty key"),
        ("features.word.ngram_range=[1,", "value is not valid YAML"),
        ("model.C.x=1", "'C' is not a section"),
    ],
)
def test_a_bad_override_is_named(override: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_config(ROOT / "configs" / "bbc.yaml", [override])
    assert expected in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "config file not found"),
        (b"name: [unclosed\n", "not valid YAML"),
        (b"\xff\xfe\x00garbage", "not valid YAML"),
        (b"- a\n- b\n", "the top level must be a mapping, got list"),
        (b"name: x\n" + b"corpus: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b"x: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    ],
)
def test_an_unreadable_config_file_is_named(content: bytes | None, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value), str(info.value)


def test_a_billion_laughs_config_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: x\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="too large: its aliases expand to more than 1,000,000 values"):
        load_config(path)
    assert time.perf_counter() - start < 10


JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KNOWN_KEYS = [
    *sorted(k for k in Config.model_validate(base_config()).flat() if not k.startswith("tune.space")),
    *["axes.regions", "axes.themes", "corpus", "features", "model", "name", "axes"],
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(KNOWN_KEYS),
                st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6).map(
                    lambda k: f"model.{k}"
                ),
            ),
            JSON_LIKE,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_mutated_config_is_valid_or_a_config_error_naming_file_and_key(
    changes: list[tuple[str, Any]],
) -> None:
    raw = base_config()
    for key, value in changes:
        set_key(raw, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), raw)
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            message = str(exc)
            event("ConfigError")
            assert message.startswith(f"{path}: "), message
            assert any(key.split(".")[0] in message for key, _ in changes), (changes, message)
            return
    event("valid")
    try:
        check_taxonomies(cfg)
    except ConfigError as exc:
        event("taxonomy ConfigError")
        assert "taxonomy: " in str(exc)


# ------------------------------------------------------------------------------------------------ taxonomies


def taxonomy(folder: Path, data: dict[str, Any], name: str = "tax.yaml") -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return str(path)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"regions": {"Europe": ["FR", "DE"], "Africa": ["KE", "FR"]}},
            "regions.Africa: country FR is in two regions: Europe and Africa",
        ),
        ({"regions": {}}, "regions: no labels"),
        ({"regions": {"Europe": []}}, "regions.Europe has no countries"),
        (
            {"regions": {"Europe": [False]}},
            "regions.Europe: False is not a code (expected a string) (YAML reads a bare NO",
        ),
        (
            {"regions": {"Europe": ["FR"]}, "places": {"paris": {"country": "XX"}}},
            "places.paris: country XX is in no region",
        ),
        ({"regions": {"Europe": ["FR"]}, "places": {"paris": "FR"}}, "places.paris needs a 'country' key"),
        ({"themes": {}}, "themes: no labels"),
        ({"themes": {"energy": None}}, "themes.energy has no source labels"),
        (
            {"themes": {"energy": ["crude"], "markets": ["crude"]}},
            "crude is in two themes: energy and markets",
        ),
        ({"themes": {"energy": [["crude"]]}}, "themes.energy: ['crude'] is not a code"),
        ({"topics": {"a": ["b"]}}, "a taxonomy needs a 'regions' or a 'themes' section"),
    ],
)
def test_a_bad_taxonomy_is_named_with_its_file_and_key(
    data: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    path = taxonomy(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value), str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["regions", "themes"]),
    st.dictionaries(st.text(max_size=6), JSON_LIKE, max_size=4),
    JSON_LIKE,
)
def test_any_taxonomy_loads_or_is_a_config_error(section: str, mapping: dict[str, Any], places: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = taxonomy(Path(tmp), {section: mapping, "places": places, "unmapped": places})
        try:
            result = load_taxonomy(path)
        except ConfigError as exc:
            event("ConfigError")
            assert str(exc).startswith(f"{path}: ")
            return
    event("loaded")
    assert isinstance(result, LabelMap) and result.labels


def test_taxonomies_are_checked_before_the_corpus_is_read(tmp_path: Path) -> None:
    """A bad taxonomy is reported even though the corpus does not exist: nothing was read first."""
    bad = taxonomy(tmp_path, {"regions": {"Europe": ["FR"], "Africa": ["FR"]}})
    raw = base_config()
    raw["corpus"] = {"format": "jsonl", "path": str(tmp_path / "missing.jsonl")}
    raw["processed_dir"] = str(tmp_path / "processed")
    for key in ("axes.regions.taxonomy", "features.gazetteer.taxonomy"):
        this = json.loads(json.dumps(raw))
        set_key(this, key, bad)
        cfg = load_config(write_config(tmp_path, this))
        with pytest.raises(
            ConfigError, match=rf"^{key}: {bad}: regions.Africa: country FR is in two regions"
        ):
            prepare(cfg, say=lambda _: None)
        set_key(this, key, str(tmp_path / "nope.yaml"))
        cfg = load_config(write_config(tmp_path, this))
        with pytest.raises(ConfigError, match=rf"^{key}: {tmp_path}/nope.yaml: config file not found"):
            prepare(cfg, say=lambda _: None)
    assert not (tmp_path / "processed").exists()


# ------------------------------------------------------------------------------------------------ the CLI

TINY = """\
name: tiny
corpus: {format: jsonl, path: rows.jsonl, label_fields: {topic: themes}}
axes:
  themes: {source: topic, taxonomy: themes.yaml, min_support: 1}
features: {gazetteer: {enabled: false}}
"""


def tiny_project(folder: Path, themes: dict[str, Any] | None = None, rows: int = 30) -> None:
    (folder / "config.yaml").write_text(TINY)
    taxonomy(folder, themes or {"themes": {"energy": ["crude", "gas"], "food": ["grain"]}}, "themes.yaml")
    codes = ["crude", "gas", "grain"]
    lines = [
        json.dumps({"id": str(i), "text": f"article {i} on {codes[i % 3]}", "themes": [codes[i % 3]]})
        for i in range(rows)
    ]
    (folder / "rows.jsonl").write_text("\n".join(lines) + "\n")


def two_regions(folder: Path) -> None:
    gazetteer = "gazetteer: {enabled: true, taxonomy: regions.yaml}"
    (folder / "config.yaml").write_text(TINY.replace("gazetteer: {enabled: false}", gazetteer))
    taxonomy(folder, {"regions": {"Europe": ["FR"], "Africa": ["FR"]}}, "regions.yaml")


def nothing_done(folder: Path) -> bool:
    return not any((folder / name).exists() for name in ("mlflow.db", "mlruns", "data", "models"))


@pytest.mark.parametrize(
    ("case", "edit", "first_line"),
    [
        (
            "unknown key",
            lambda f: (f / "config.yaml").write_text(TINY + "epochs: 3\n"),
            "config.yaml: invalid config",
        ),
        (
            "wrong type",
            lambda f: (f / "config.yaml").write_text(TINY + "model: {C: lots}\n"),
            "config.yaml: invalid config",
        ),
        ("missing config", lambda f: (f / "config.yaml").unlink(), "config.yaml: config file not found"),
        (
            "country in two regions",
            lambda f: two_regions(f),
            "features.gazetteer.taxonomy: regions.yaml: regions.Africa: country FR is in two regions",
        ),
        (
            "axis with no labels",
            lambda f: taxonomy(f, {"themes": {}}, "themes.yaml"),
            "axes.themes.taxonomy: themes.yaml: themes: no labels",
        ),
        (
            "missing taxonomy",
            lambda f: (f / "themes.yaml").unlink(),
            "axes.themes.taxonomy: themes.yaml: config file not found",
        ),
    ],
)
def test_cli_train_stops_on_a_bad_config_with_exit_2_before_any_work(
    case: str, edit, first_line: str, tmp_path: Path
) -> None:
    tiny_project(tmp_path)
    edit(tmp_path)
    start = time.perf_counter()
    proc = run_cli(["train", "--config", "config.yaml", "--tracking-uri", "sqlite:///mlflow.db"], tmp_path)
    seconds = time.perf_counter() - start
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr
    lines = message_lines(proc.stderr)
    assert lines[0] == f"newstag train: {first_line}" or lines[0].startswith(
        f"newstag train: {first_line}"
    ), lines
    if case == "unknown key":
        assert lines[1:] == ["  epochs: unknown key"]
    if case == "wrong type":
        assert lines[1:] == ["  model.C: Input should be a valid number, unable to parse string as a number"]
    assert nothing_done(tmp_path), sorted(p.name for p in tmp_path.iterdir())
    assert seconds < 30, seconds  # no corpus read, no model fitted: the import of the CLI is most of it


def test_cli_stops_when_no_document_has_a_label_on_an_axis(tmp_path: Path) -> None:
    tiny_project(tmp_path)
    (tmp_path / "config.yaml").write_text(TINY.replace("source: topic", "source: toppic"))
    proc = run_cli(["prepare", "--config", "config.yaml"], tmp_path)
    assert_clean_failure(
        proc, "prepare", "axes.themes: no training document has a label on this axis (source 'toppic')"
    )
    assert not (tmp_path / "data").exists()


def test_cli_train_stops_before_fitting_when_min_support_leaves_no_label(tmp_path: Path) -> None:
    tiny_project(tmp_path)
    proc = run_cli(
        [
            "train",
            "--config",
            "config.yaml",
            "--set",
            "axes.themes.min_support=1000",
            "--tracking-uri",
            "sqlite:///mlflow.db",
        ],
        tmp_path,
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr
    *progress, last = message_lines(proc.stderr)
    assert [line.split()[0] for line in progress] == ["[1/7]"]  # the data was prepared, nothing fitted
    assert last.startswith(
        "newstag train: axes.themes.min_support: no themes label has 1000 or more training documents"
    ), last
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "models").exists()


def test_nan_and_infinity_in_a_config_are_refused(tmp_path: Path) -> None:
    raw = base_config()
    for value in (math.nan, math.inf):
        set_key(raw, "model.C", value)
        with pytest.raises(ConfigError, match=r"model\.C"):
            load_config(write_config(tmp_path, raw))
