"""Bad configs and taxonomies: a clear error naming the file and the key, before any work starts.

"Before any work" is checked by what is left behind: no MLflow store, no prepared data, no model.
"""

from __future__ import annotations

import json
import math
import re
import resource
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reliability_support import (
    ROOT,
    assert_clean_failure,
    cli_env,
    message_lines,
    newstag_command,
    run_cli,
)

from pipeline.config import Config, ConfigError, load_config, read_yaml
from pipeline.prepare import check_taxonomies, prepare
from pipeline.taxonomy import LabelMap, country_regions, load_taxonomy

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


# ------------------------------------------------------------------- issue 12: --set values, file rules, names

SAME_RULES = [
    ("features.word.ngram_range", [3, 1], "features.word.ngram_range: Value error, [3, 1]: write [min, max]"),
    ("features.word.ngram_range", [0, 0], "features.word.ngram_range: Value error, [0, 0]: the shortest"),
    ("features.char.ngram_range", [0, 4], "features.char.ngram_range: Value error, [0, 4]: the shortest"),
    (
        "features.word.max_features",
        1,
        "features.word.max_features: Input should be greater than or equal to 10",
    ),
    (
        "features.char.max_features",
        9,
        "features.char.max_features: Input should be greater than or equal to 10",
    ),
    ("tracking.registered_model", "", "tracking.registered_model: Value error, empty; give a name"),
    ("tracking.experiment", " ", "tracking.experiment: Value error, empty; give a name"),
    ("tracking.registered_model", "../../x", "tracking.registered_model: Value error, '../../x': it names a"),
    ("tracking.experiment", "a/b", "tracking.experiment: Value error, 'a/b': it names a folder"),
    (
        "tracking.promotion.metrics",
        ["regions/micro_f1", "themes/nope"],
        "tracking.promotion.metrics: 'themes/nope': no metric 'nope'",
    ),
    (
        "tune.metric",
        "validation/topics/micro_f1",
        "tune.metric: 'validation/topics/micro_f1': write validation/",
    ),
    ("tune.metric", "test/regions/micro_f1", "tune.metric: 'test/regions/micro_f1': write validation/<axis>"),
    ("tune.space", {"model.C": [1, -1]}, "tune.space.model.C: -1: model.C: Input should be greater than 0"),
    ("tune.space", {"features.word.ngram_range": [[3, 1]]}, "tune.space.features.word.ngram_range: [3, 1]: "),
    ("tune.space", {"model.kernel": ["rbf"]}, 'tune.space.model.kernel: "rbf": model.kernel: unknown key'),
]


@pytest.mark.parametrize(("key", "value", "expected"), SAME_RULES)
def test_a_set_value_meets_the_rules_of_a_file_value(
    key: str, value: Any, expected: str, tmp_path: Path
) -> None:
    """The same mistake, in the file or in ``--set``, is refused with the same line."""
    raw = base_config()
    path = write_config(tmp_path, raw, "good.yaml")
    set_key(raw, key, value)
    bad = write_config(tmp_path, raw, "bad.yaml")
    with pytest.raises(ConfigError) as in_file:
        load_config(bad)
    with pytest.raises(ConfigError) as in_set:
        load_config(path, [f"{key}={json.dumps(value)}"])
    file_lines, set_lines = str(in_file.value).splitlines(), str(in_set.value).splitlines()
    assert (
        file_lines[0] == f"{bad}: invalid config"
        and set_lines[0] == f"{path} (after --set overrides): invalid config"
    )
    assert file_lines[1:] == set_lines[1:] and len(file_lines) == 2, (file_lines, set_lines)
    assert file_lines[1].startswith(f"  {expected}"), file_lines


def test_sane_values_still_load() -> None:
    sets = [
        "features.word.ngram_range=[1,1]",
        "features.word.max_features=10",
        "tracking.experiment=My runs 2",
    ]
    cfg = load_config(
        ROOT / "configs" / "bbc.yaml", [*sets, "tune.space={model.C: [0.5, 2], features.word.min_df: [1]}"]
    )
    assert cfg.features.word.ngram_range == (1, 1) and cfg.tracking.experiment == "My runs 2"


def alias_bomb(levels: int = 9) -> str:
    """A YAML flow value of ``levels`` nested anchors, each ten aliases of the one before: 10**levels leaves."""
    parts = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "{model.C: [" + ", ".join(parts) + "]}"


def test_an_alias_bomb_in_set_is_refused_quickly_with_bounded_memory() -> None:
    """A few hundred bytes of aliases would expand to 10**9 values when the config is copied (old code:
    memory exhausted); the --set reader refuses aliases before anything expands."""
    bomb = alias_bomb()
    assert len(bomb) < 1000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match=r"^--set 'tune\.space=.*': aliases \(\*name\) are not allowed"):
            load_config(ROOT / "configs" / "bbc.yaml", [f"tune.space={bomb}"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2 and peak < 20 * 2**20, (time.perf_counter() - start, peak)


def _memory_capped() -> None:  # in the child process: 2 GB of address space at most
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def test_cli_refuses_an_alias_bomb_in_set_with_exit_2(tmp_path: Path) -> None:
    """The whole CLI, memory capped (the old code dies of MemoryError or the timeout)."""
    tiny_project(tmp_path)
    proc = subprocess.run(
        [*newstag_command(), "tune", "--config", "config.yaml", "--set", f"tune.space={alias_bomb()}"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_memory_capped,
        check=False,
    )
    assert_clean_failure(proc, "tune", "aliases (*name) are not allowed in a --set value")
    assert nothing_done(tmp_path)


def test_a_long_set_value_is_refused_without_echoing_it() -> None:
    value = "[" + ", ".join(["0.5"] * 3000) + "]"
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "configs" / "bbc.yaml", [f"tune.space={{model.C: {value}}}"])
    message = str(info.value)
    assert "the value is 15,011 characters long; at most 10,000" in message and len(message) < 200, message


# ---------------------------------------------------------------------------- duplicate keys (issue 12, Low)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: a\nmodel: {C: 1}\nname: b\n",
            "line 3: key 'name' appears twice in one mapping (first on line 1)",
        ),
        (
            "name: a\nfeatures:\n  word:\n    min_df: 2\n    min_df: 3\n",
            "line 5: key 'min_df' appears twice in one mapping (first on line 4)",
        ),
    ],
)
def test_a_repeated_key_in_a_config_is_refused_with_file_line_and_key(
    text: str, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_a_region_listed_twice_is_refused_not_merged(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: Europe's first list would vanish without a word."""
    path = tmp_path / "regions.yaml"
    path.write_text("regions:\n  Europe: [FR, DE]\n  Africa: [KE]\n  Europe: [IT]\n")
    with pytest.raises(ConfigError) as info:
        load_taxonomy(str(path))
    assert str(info.value) == f"{path}: line 4: key 'Europe' appears twice in one mapping (first on line 2)"
    with pytest.raises(ConfigError, match="appears twice"):
        country_regions(path)


def test_a_repeated_key_in_a_set_value_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"^--set 'model=\{C: 1, C: 2\}': key 'C' appears twice in one mapping$"
    ):
        load_config(ROOT / "configs" / "bbc.yaml", ["model={C: 1, C: 2}"])


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    """``<<: *base`` then a key of its own is YAML's way to override a merged key, not a repeat."""
    raw = base_config()
    del raw["axes"]
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(raw, sort_keys=False)
        + f"axes:\n  regions: &axis {{source: places, taxonomy: {REGIONS}, min_support: 3}}\n"
        + f"  themes:\n    <<: *axis\n    source: topics\n    taxonomy: {THEMES}\n"
    )
    cfg = load_config(path)
    assert (cfg.axes["themes"].source, cfg.axes["themes"].min_support) == ("topics", 3)
    assert cfg.axes["themes"].taxonomy == THEMES and cfg.axes["regions"].source == "places"


def test_shipped_yaml_files_have_no_repeated_keys() -> None:
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        read_yaml(path)  # raises on a repeated key


# ----------------------------------------------------------------------------- the tracking URI (issue 12)


@pytest.mark.parametrize(
    ("command", "given", "uri", "why"),
    [
        ("train", "--tracking-uri", "mlflow.db", "a plain path is not a store"),
        ("train", "--tracking-uri", "file:./mlruns", "file stores are not supported (MLflow 3 refuses them)"),
        ("train", "--tracking-uri", "ftp://example.org/x", "unsupported scheme 'ftp'"),
        ("train", "MLFLOW_TRACKING_URI", "sqlite://", "no database file"),
        ("train", "MLFLOW_TRACKING_URI", "/srv/mlflow.db", "a plain path is not a store"),
        (
            "tune",
            "MLFLOW_TRACKING_URI",
            "sqlite:///no-such-folder/m.db",
            "folder no-such-folder does not exist",
        ),
        ("tune", "--tracking-uri", "mlflow.db", "a plain path is not a store"),
    ],
)
def test_cli_train_refuses_a_bad_tracking_uri_before_any_work(
    command: str, given: str, uri: str, why: str, tmp_path: Path
) -> None:
    """Old code: train fitted the model, then stopped with a traceback when it opened the store."""
    tiny_project(tmp_path)
    args, env = [command, "--config", "config.yaml", "--set", "tune.space={model.C: [1.0]}"], {}
    if given == "--tracking-uri":
        args += ["--tracking-uri", uri]
    else:
        env["MLFLOW_TRACKING_URI"] = uri
    proc = run_cli(args, tmp_path, env)
    line = assert_clean_failure(
        proc, command, f"tracking URI {uri!r}: {why}; use sqlite:///path/to/mlflow.db"
    )
    assert "http(s)://host:port" in line
    assert nothing_done(tmp_path) and not (tmp_path / "mlflow.db").exists(), sorted(
        p.name for p in tmp_path.iterdir()
    )


# ----------------------------------------------------------- mistakes found before any MLflow run (12 and 10)


def store_contents(uri: str) -> tuple[list[str], list[str]]:
    """(run ids, registered model names) in the store at ``uri``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = [r.info.run_id for r in client.search_runs(experiments)] if experiments else []
    return runs, [m.name for m in client.search_registered_models()]


@pytest.fixture
def empty_store(tracking_uri: str) -> str:
    """The temporary SQLite store of ``tracking_uri``, its tables created, with nothing in it."""
    from pipeline.tracking import setup_tracking

    setup_tracking(tracking_uri)
    assert store_contents(tracking_uri) == ([], [])
    return tracking_uri


def test_cli_train_stops_when_min_df_exceeds_the_training_documents(tmp_path: Path, empty_store: str) -> None:
    """Old code: scikit-learn's ValueError and a traceback after the data was read (exit 1)."""
    tiny_project(tmp_path)
    proc = run_cli(
        [
            "train",
            "--config",
            "config.yaml",
            "--set",
            "features.word.min_df=500",
            "--tracking-uri",
            empty_store,
        ],
        tmp_path,
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr[-3000:]
    *progress, last = message_lines(proc.stderr)
    assert [line.split()[0] for line in progress] == ["[1/7]"]  # the data was prepared, nothing fitted
    assert re.fullmatch(
        r"newstag train: features\.word\.min_df: 500 is more than the documents the vocabulary is fitted on "
        r"\(\d+\); lower it",
        last,
    ), last
    assert store_contents(empty_store) == ([], [])


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ["tracking.promotion.metrics=[regions/micro_f1]"],
            "'regions' is not an axis of this config (themes)",
        ),
        (
            ["tracking.promotion.metrics=[themes/f1]"],
            "tracking.promotion.metrics: 'themes/f1': no metric 'f1'; known: ",
        ),
        (["features.word.ngram_range=[3,1]"], "features.word.ngram_range: Value error, [3, 1]"),
        (["tracking.registered_model="], "tracking.registered_model: Value error, empty"),
        (["tune.space={model.C: [-1]}"], "tune.space.model.C: -1: model.C: Input should be greater than 0"),
    ],
)
def test_cli_config_mistakes_exit_2_with_no_run_and_no_registered_model(
    sets: list[str], expected: str, tmp_path: Path, empty_store: str
) -> None:
    project = tmp_path / "project"  # the store is tmp_path/mlflow.db
    project.mkdir()
    tiny_project(project)
    args = [f"--set={s}" for s in sets]
    for command in ("train", "tune"):
        proc = run_cli([command, "--config", "config.yaml", *args, "--tracking-uri", empty_store], project)
        assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr[-3000:]
        lines = message_lines(proc.stderr)
        assert lines[0] == f"newstag {command}: config.yaml (after --set overrides): invalid config", lines
        assert len(lines) == 2 and expected in lines[1], lines
        assert nothing_done(project) and store_contents(empty_store) == ([], [])


@pytest.mark.slow  # two real training runs (~30 s each on a busy machine; MLflow's logging is most of it)
def test_a_themes_only_config_with_default_promotion_trains_and_promotes(
    tmp_path: Path, empty_store: str
) -> None:
    """Issue 10: a config with no regions axis and no promotion settings compares on themes/micro_f1."""
    tiny_project(tmp_path)
    assert "promotion" not in (tmp_path / "config.yaml").read_text()
    assert load_config(tmp_path / "config.yaml").promotion_metrics() == ["themes/micro_f1"]
    for _ in range(2):  # the second run is compared with the first, the champion
        proc = run_cli(
            ["train", "--config", "config.yaml", "--tracking-uri", empty_store, "--json"], tmp_path
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    runs, models = store_contents(empty_store)
    assert len(runs) == 2 and models == ["news-tagger"]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=empty_store, registry_uri=empty_store)
    assert str(client.get_model_version_by_alias("news-tagger", "champion").version) in ("1", "2")
    assert {
        r.info.status for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
    } == {"FINISHED"}
