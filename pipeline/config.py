"""The experiment configuration: the schema of ``configs/*.yaml``, loading, and dotted overrides.

Relative paths in a config (corpus, taxonomy, output folders) resolve against the current working
directory, which is the project root for ``make`` and the documented commands.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline import DEFAULT_CONFIG  # noqa: F401 - re-exported


class ConfigError(Exception):
    """A config file is missing, is not valid YAML, or does not fit the schema."""


class Strict(BaseModel):
    """A model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class CorpusConfig(Strict):
    """Where the articles come from and how their fields are named."""

    format: Literal["reuters21578", "jsonl", "csv", "parquet", "folders", "huggingface"] = Field(
        description="reader to use"
    )
    path: str | None = Field(None, description="folder (reuters21578, folders) or single file")
    files: dict[str, str] | None = Field(
        None, description="split name -> file, for jsonl/csv/parquet/huggingface data_files"
    )
    hf_name: str | None = Field(None, description="Hugging Face dataset name or local path (huggingface)")
    hf_config: str | None = None
    split_scheme: Literal["modapte", "apte_mod", "source", "none"] = Field(
        "source",
        description="reuters: modapte or apte_mod; others: 'source' keeps a split column/file, 'none' ignores it",
    )
    id_field: str = "id"
    title_field: str | None = "title"
    text_field: str = "text"
    date_field: str | None = None
    split_field: str | None = Field(None, description="column holding train/test in a single file")
    label_fields: dict[str, str] = Field(
        default_factory=dict, description="raw label source name -> column holding it"
    )
    label_delimiter: str = Field("|", description="separator when a label column is a string")
    encoding: str = "utf-8"
    download_url: str | None = None
    download_sha256: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown text encoding {encoding!r}") from None
        return encoding


class SplitConfig(Strict):
    """How validation (and, when the source has none, test) documents are carved out."""

    validation_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9, description="used only when the source has no test")
    seed: int = 42
    min_chars: int = Field(20, ge=0, description="texts shorter than this are reported as very short")


class AxisConfig(Strict):
    """One label axis (regions, themes, topics...): where its raw labels come from and how they map."""

    source: str = Field(description="raw label source name, a key of the record's labels")
    taxonomy: str | None = Field(None, description="YAML mapping raw labels to axis labels; none = as is")
    keep: Literal["all", "in_train_and_test"] = Field(
        "all", description="in_train_and_test keeps labels seen in both train and test (ApteMod)"
    )
    drop_unlabelled: bool = Field(False, description="drop documents with no label on this axis")
    min_support: int = Field(5, ge=1, description="labels with fewer training documents are dropped")
    at_least_one: bool = Field(False, description="always predict the top label when none passes")


class WordFeatures(Strict):
    enabled: bool = True
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = Field(2, ge=1)
    max_df: float = Field(1.0, gt=0.0, le=1.0)
    max_features: int | None = Field(None, ge=1)
    sublinear_tf: bool = True
    hashing: bool = Field(False, description="HashingVectorizer + TF-IDF instead of a vocabulary")
    n_features: int = Field(2**20, ge=16, description="hashing only")


class CharFeatures(Strict):
    enabled: bool = False
    ngram_range: tuple[int, int] = (3, 5)
    min_df: int = Field(3, ge=1)
    max_features: int | None = Field(200_000, ge=1)
    sublinear_tf: bool = True


class GazetteerFeatures(Strict):
    enabled: bool = True
    taxonomy: str = "configs/taxonomy/regions.yaml"
    mode: Literal["log", "binary", "share", "log+share"] = Field(
        "log+share", description="log1p counts, 0/1, share of mentions, or log counts plus region shares"
    )
    include_countries: bool = True
    title_weight: float = Field(2.0, ge=0.0)
    min_city_population: int = Field(100_000, ge=0)
    weight: float = Field(1.0, ge=0.0, description="scale of the gazetteer block against the text blocks")
    axes: list[str] = Field(["regions"], description="axes whose heads see the gazetteer block")
    mask_place_words: bool = Field(
        False, description="those heads do not see word terms naming a place: places come from the gazetteer"
    )


class FeaturesConfig(Strict):
    include_title: bool = True
    lowercase: bool = True
    word: WordFeatures = WordFeatures()
    char: CharFeatures = CharFeatures()
    gazetteer: GazetteerFeatures = GazetteerFeatures()


class ModelConfig(Strict):
    classifier: Literal["logreg", "linear_svc"] = "linear_svc"
    C: float = Field(1.0, gt=0.0)
    class_weight: Literal["balanced"] | None = "balanced"
    max_iter: int = Field(2000, ge=10)
    n_jobs: int = Field(2, ge=1, description="threads fitting the per-label heads")


class ThresholdConfig(Strict):
    strategy: Literal["validation", "cv", "fixed"] = "validation"
    cv_folds: int = Field(3, ge=2)
    default: float = Field(0.5, gt=0.0, lt=1.0, description="threshold for labels too rare to tune")
    floor: float = Field(0.05, ge=0.0, lt=1.0, description="no tuned threshold goes below this")
    min_positives: int = Field(3, ge=1, description="held-out positives needed to tune a label")
    cv_include_validation: bool = Field(
        False,
        description="cv: fold the validation split into training (more data; validation metrics then optimistic)",
    )


class TrackingConfig(Strict):
    experiment: str = "newstag"
    registered_model: str = "news-tagger"
    promotion_metrics: list[str] = ["test/regions/micro_f1", "test/themes/micro_f1"]
    export_dir: str = "models"
    log_model: bool = True


class TuneConfig(Strict):
    strategy: Literal["grid", "random"] = "grid"
    n_trials: int = Field(8, ge=1, description="random search only")
    metric: str = "validation/themes/micro_f1"
    n_jobs: int = Field(2, ge=1)
    seed: int = 0
    space: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values")

    @field_validator("space")
    @classmethod
    def _space_not_empty_lists(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in space.items():
            if not values:
                raise ValueError(f"tune.space.{key} has no values")
        return space


class Config(Strict):
    """A whole experiment."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    corpus: CorpusConfig
    split: SplitConfig = SplitConfig()
    axes: dict[str, AxisConfig]
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    thresholds: ThresholdConfig = ThresholdConfig()
    tracking: TrackingConfig = TrackingConfig()
    tune: TuneConfig = TuneConfig()
    processed_dir: str = "data/processed"

    @model_validator(mode="after")
    def _axes_present(self) -> Config:
        if not self.axes:
            raise ValueError("axes: at least one label axis is needed")
        return self

    def fingerprint(self) -> str:
        """A short hash of the resolved config."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def flat(self) -> dict[str, Any]:
        """The config flattened to dotted keys (for MLflow params)."""
        return flatten(self.model_dump(mode="json"))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` as (["a", "b", "c"], parsed value); the value is read as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (intermediate dicts are created)."""
    data = json.loads(json.dumps(raw))
    for item in overrides:
        parts, value = parse_override(item)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        msg = "unknown key" if kind == "extra_forbidden" else err["msg"]
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not readable YAML: nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_size(data, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


MAX_YAML_VALUES = 1_000_000


def _check_size(data: Any, path: Path) -> None:
    """ConfigError when YAML aliases expand ``data`` to more than ``MAX_YAML_VALUES`` values (a "billion
    laughs" file would otherwise exhaust memory when the config is copied)."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise ConfigError(
                f"{path}: too large: its aliases expand to more than {MAX_YAML_VALUES:,} values"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """The validated config from ``path`` with ``--set`` overrides applied."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        suffix = " (after --set overrides)" if overrides else ""
        raise ConfigError(_describe(exc, f"{path}{suffix}")) from None
