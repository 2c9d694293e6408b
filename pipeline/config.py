"""The experiment configuration: the schema of ``configs/*.yaml``, loading, and dotted overrides.

Relative paths in a config (corpus, taxonomy, output folders) resolve against the current working
directory, which is the project root for ``make`` and the documented commands; ``newstag train`` puts a
relative ``processed_dir`` and ``tracking.export_dir`` beside a SQLite store outside that folder
(``store_sql.beside_store``).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline import DEFAULT_CONFIG  # noqa: F401 - re-exported
from pipeline.errors import ConfigError
from pipeline.metrics import axis_metric_names, default_promotion_metrics
from pipeline.promotion import METRICS as PROMOTION_METRICS
from pipeline.yamlio import read_file, read_value


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
    split_scheme: Literal["modapte", "apte_mod", "source", "date", "none"] = Field(
        "source",
        description="reuters: modapte or apte_mod; others: 'source' keeps a split column/file, 'date' splits "
        "on date_field at validation_from and test_from, 'none' ignores any split the source has",
    )
    validation_from: str | None = Field(
        None, description="date split: documents from this date (YYYY-MM-DD) on are validation"
    )
    test_from: str | None = Field(None, description="date split: documents from this date on are test")
    date_from: str | None = Field(
        None,
        description="date split: documents before this date are left out (e.g. years whose labels are "
        "unreliable)",
    )
    date_until: str | None = Field(
        None, description="date split: documents after this date are left out (e.g. the end of a quarter)"
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
    max_chars: int | None = Field(
        None, ge=100, description="keep the first this many characters of each text (long articles: the lede)"
    )
    encoding: str = "utf-8"
    header: bool = Field(
        True, description="csv: the first line names the columns; false: name them in columns"
    )
    columns: list[str] | None = Field(
        None, description="csv with header: false: the names of the columns, in order"
    )
    label_map: dict[str, str] | str | None = Field(
        None,
        description="raw labels that are class indices -> names: a mapping ({1: World, 2: Sports}) or a "
        "classes.txt-style file (one name per line); a label not in it rejects the row",
    )
    label_map_start: int = Field(
        1, ge=0, le=1, description="a label_map file: the index of its first line (1 or 0)"
    )
    max_line_bytes: int = Field(
        64 * 2**20,
        ge=1024,
        description="longest line read (JSON Lines: bytes; CSV: characters); a longer one is a reject",
    )
    download_url: str | None = None
    download_sha256: str | None = None

    @field_validator("validation_from", "test_from", "date_from", "date_until", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> str | None:
        if isinstance(value, date):  # YAML reads an unquoted 2019-01-01 as a date
            return value.isoformat()
        if value is not None:
            try:
                date.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        return value

    @model_validator(mode="after")
    def _date_split_complete(self) -> CorpusConfig:
        if self.split_scheme == "date":
            if not (self.date_field and self.test_from):
                raise ValueError("split_scheme 'date' needs date_field and test_from")
            if self.validation_from and self.validation_from >= self.test_from:
                raise ValueError("validation_from must come before test_from")
            if self.date_from and self.date_from >= (self.validation_from or self.test_from):
                raise ValueError("date_from must come before validation_from and test_from")
        elif self.date_from or self.date_until:
            raise ValueError("date_from and date_until apply to split_scheme 'date' only")
        return self

    @field_validator("label_map", mode="before")
    @classmethod
    def _label_map_text(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML reads {1: World} with integer keys
            bad = [k for k, v in value.items() if not isinstance(v, str | int) or isinstance(k, bool)]
            if bad:
                raise ValueError(f"label_map {bad[0]!r}: map each class index to a label name")
            return {str(k).strip(): str(v).strip() for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _columns_without_header(self) -> CorpusConfig:
        if not self.header and self.format != "csv":
            raise ValueError(f"header: false is for csv files, not {self.format}")
        if not self.header and not self.columns:
            raise ValueError("header: false needs columns: [...] (the names of the columns, in order)")
        if self.header and self.columns:
            raise ValueError("columns names the columns of a csv without a header line: add header: false")
        if self.columns:
            names = [c.strip() for c in self.columns]
            repeated = sorted({c for c in names if names.count(c) > 1})
            if repeated or not all(names):
                raise ValueError(f"columns: names must be distinct and non-empty ({', '.join(repeated)})")
        return self

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


class CorpusAxis(Strict):
    """How one corpus of several feeds one axis."""

    source: str = Field(description="raw label source name, a key of the corpus's label_fields")
    taxonomy: str | None = Field(
        None, description="YAML mapping its raw labels; default: the axis's taxonomy"
    )
    empty_is_unknown: bool = Field(
        False,
        description="a document whose raw labels map to no axis label is unknown on this axis (not a negative)",
    )


class NamedCorpus(CorpusConfig):
    """One corpus of several: its reader settings, its own split rule, and which raw labels feed which axis.

    A corpus that does not feed an axis is unknown on it: its documents train and score none of that axis's
    heads. A corpus covers the axis labels its raw labels map to; a head trains only on documents whose corpus
    covers its label.
    """

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="the corpus's name in records and reports"
    )
    axes: dict[str, CorpusAxis] = Field(description="axis -> the raw label source that feeds it")
    split: SplitConfig | None = Field(None, description="validation carving; default: the top-level split")


class AxisConfig(Strict):
    """One label axis (regions, themes, topics...): where its raw labels come from and how they map."""

    source: str | None = Field(
        None, description="raw label source name (one corpus); with corpora: each corpus says its own"
    )
    taxonomy: str | None = Field(None, description="YAML mapping raw labels to axis labels; none = as is")
    keep: Literal["all", "in_train_and_test"] = Field(
        "all", description="in_train_and_test keeps labels seen in both train and test (ApteMod)"
    )
    drop_unlabelled: bool = Field(False, description="drop documents with no label on this axis")
    min_support: int = Field(5, ge=1, description="labels with fewer training documents are dropped")
    at_least_one: bool = Field(False, description="always predict the top label when none passes")
    multi_label: bool = Field(
        True,
        description="false: single-label data (one label per document): exactly one label each, the most "
        "probable, no thresholds; scores sum to 1; accuracy and macro-F1 reported and used for promotion",
    )
    C: float | None = Field(
        None, gt=0.0, description="regularisation of this axis's heads (default: model.C)"
    )


MIN_FEATURES = 10  # a vocabulary smaller than this cannot tell labels apart: it trains a useless model


def _check_ngram_range(value: tuple[int, int]) -> tuple[int, int]:
    low, high = value
    if low < 1:
        raise ValueError(f"[{low}, {high}]: the shortest n-gram must be 1 or more")
    if low > high:
        raise ValueError(f"[{low}, {high}]: write [min, max] with min <= max")
    return value


class WordFeatures(Strict):
    enabled: bool = True
    ngram_range: tuple[int, int] = Field((1, 2), description="[min, max] words per term, 1 <= min <= max")
    min_df: int = Field(
        2, ge=1, description="documents a term must occur in (at most the training documents)"
    )
    max_df: float = Field(1.0, gt=0.0, le=1.0)
    max_features: int | None = Field(
        None, ge=MIN_FEATURES, description=f"largest vocabulary, or null; at least {MIN_FEATURES}"
    )
    sublinear_tf: bool = True
    hashing: bool = Field(False, description="HashingVectorizer + TF-IDF instead of a vocabulary")
    n_features: int = Field(2**20, ge=16, description="hashing only")

    _ngram_range = field_validator("ngram_range")(_check_ngram_range)


class CharFeatures(Strict):
    enabled: bool = False
    ngram_range: tuple[int, int] = Field(
        (3, 5), description="[min, max] characters per term, 1 <= min <= max"
    )
    min_df: int = Field(
        3, ge=1, description="documents a term must occur in (at most the training documents)"
    )
    max_features: int | None = Field(
        200_000, ge=MIN_FEATURES, description=f"largest vocabulary, or null; at least {MIN_FEATURES}"
    )
    sublinear_tf: bool = True

    _ngram_range = field_validator("ngram_range")(_check_ngram_range)


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
    lede_chars: int = Field(
        0,
        ge=0,
        description="0, or a length: past the first lede_chars characters of a longer body a place mention "
        "counts lede_chars/len(body) (a passing mention deep in a long article hardly counts)",
    )
    home: str | None = Field(
        None,
        description="the publication's own country (ISO alpha-2, e.g. US), or null: applied when scoring, "
        "never in training; its mentions alone make no region (README, Regions)",
    )

    @field_validator("home")
    @classmethod
    def _iso_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if len(code) != 2 or not code.isalpha():
            raise ValueError(f"home: {value!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, GB)")
        return code


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
    n_jobs: int = Field(
        2,
        ge=1,
        description="threads fitting the per-label heads; liblinear's threads share one random generator, so "
        "only 1 gives bit-identical refits (README, 'Reproducing a model')",
    )
    recent_corpora: list[str] = Field(
        default_factory=list,
        description="corpora closest to the text the model will tag: their documents get their own extra "
        "weights, added to the shared ones (a head leans towards how recent text uses a word)",
    )
    recent_weight: float = Field(2.0, ge=0.0, description="scale of the recent corpora's extra weights")
    recent_axes: list[str] | None = Field(
        None, description="axes whose heads use recent_corpora (default: all)"
    )
    refit_axes: list[str] = Field(
        default_factory=list,
        description="axes whose heads, once calibrated on validation, are fitted again on train + validation "
        "(sigmoids and thresholds kept; their validation metrics are then in-sample). Needs "
        "thresholds.strategy validation",
    )


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
    shared_sigmoid_axes: list[str] = Field(
        default_factory=list,
        description="axes whose labels share one Platt sigmoid, so their most probable label is the head with "
        "the highest raw score (thresholds are still tuned per label)",
    )


class PromotionConfig(Strict):
    """How a new version is judged against the champion: on validation, never test (README, "Promotion")."""

    metrics: list[str] | None = Field(
        None,
        description="validation metrics compared, as <axis>/<metric> (e.g. regions/micro_f1); "
        "default: micro_f1 of every multi-label axis, accuracy and macro_f1 of a single-label one",
    )
    confidence: float = Field(
        0.95, ge=0.5, lt=1.0, description="level of the bootstrap interval a difference must clear"
    )
    resamples: int = Field(1000, ge=100, le=100_000, description="bootstrap draws of the documents")
    seed: int = 0


class TrackingConfig(Strict):
    experiment: str = Field(
        "newstag",
        description="MLflow experiment (also the folder of its artifacts): letters, digits, space, _ . -",
    )
    registered_model: str = Field(
        "news-tagger",
        description="registered model (also the folder of its exports): letters, digits, _ . -",
    )
    promotion: PromotionConfig = PromotionConfig()
    export_dir: str = "models"
    log_model: bool = True

    @field_validator("experiment", "registered_model")
    @classmethod
    def _folder_name(cls, value: str, info: ValidationInfo) -> str:
        space = " " if info.field_name == "experiment" else ""
        if not value.strip():
            raise ValueError("empty; give a name")
        if len(value) > 200 or not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9{space}_.-]*", value):
            allowed = "letters, digits, " + ("space, " if space else "") + "_ . - (not first), at most 200"
            raise ValueError(f"{value[:60]!r}: it names a folder and a URI part: use {allowed}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "promotion_metrics" in data:
            raise ValueError(
                "tracking.promotion_metrics: replaced by tracking.promotion.metrics, validation metrics "
                "named <axis>/<metric> (e.g. regions/micro_f1); promotion no longer looks at test"
            )
        return data


class TuneConfig(Strict):
    strategy: Literal["grid", "random"] = "grid"
    n_trials: int = Field(8, ge=1, description="random search only")
    metric: str = Field(
        "validation/themes/micro_f1",
        description="validation/<axis>/<metric> the search maximises; a config without a themes axis and "
        "no metric of its own: its first axis's micro_f1",
    )
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
    corpus: CorpusConfig | None = Field(None, description="the corpus, when there is one")
    corpora: list[NamedCorpus] | None = Field(None, description="several corpora in one model")
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
        for key, axes in (
            ("model.recent_axes", self.model.recent_axes or []),
            ("model.refit_axes", self.model.refit_axes),
            ("thresholds.shared_sigmoid_axes", self.thresholds.shared_sigmoid_axes),
        ):
            for axis in axes:
                if axis not in self.axes:
                    raise ValueError(f"{key}: {axis!r} is not an axis of this config")
        self._check_promotion()
        self._check_tune_metric()
        if (self.corpus is None) == (self.corpora is None):
            raise ValueError("give either corpus: (one corpus) or corpora: (a list of named corpora)")
        if self.corpus is not None:
            for axis, acfg in self.axes.items():
                if not acfg.source:
                    raise ValueError(f"axes.{axis}.source: needed with a single corpus")
        else:
            self._check_corpora(self.corpora or [])
        return self

    @model_validator(mode="after")
    def _tune_space_valid(self) -> Config:
        """Each value of ``tune.space``, set alone on this config, gives a valid config: a bad value is
        found at load, not when its trial runs."""
        if not self.tune.space:
            return self
        base = self.model_dump(mode="json")
        base["tune"]["space"] = {}
        for key, values in self.tune.space.items():
            parts = [p for p in key.split(".") if p]
            where = f"tune.space.{key}"
            if not parts or (parts[0] == "tune" and parts[1:2] in ([], ["space"])):
                raise ValueError(f"{where}: not a key a trial can set")
            for value in values:
                data = json.loads(json.dumps(base))
                try:
                    _set_dotted(data, parts, value, where)
                    Config.model_validate(data)
                except ConfigError as exc:
                    raise ValueError(str(exc).replace("--set ", "", 1)) from None
                except ValidationError as exc:
                    err = exc.errors()[0]
                    raise ValueError(f"{where}: {json.dumps(value)}: {_error_line(err)}") from None
        return self

    def _check_tune_metric(self) -> None:
        split, _, rest = self.tune.metric.partition("/")
        axis = rest.partition("/")[0]
        if split == "validation" and axis in self.axes:
            return
        if "metric" not in self.tune.model_fields_set:  # the default names an axis this config lacks
            self.tune.metric = f"validation/{next(iter(self.axes))}/micro_f1"
            return
        raise ValueError(
            f"tune.metric: {self.tune.metric!r}: write validation/<axis>/<metric> with an axis of this config "
            f"({', '.join(self.axes)}), e.g. validation/{next(iter(self.axes))}/micro_f1 (trials never look at test)"
        )

    def _check_promotion(self) -> None:
        for metric in self.tracking.promotion.metrics or []:
            axis, _, name = metric.partition("/")
            if axis not in self.axes:
                raise ValueError(
                    f"tracking.promotion.metrics: {metric!r}: {axis!r} is not an axis of this config "
                    f"({', '.join(self.axes)}); write <axis>/<metric>, e.g. {next(iter(self.axes))}/micro_f1"
                )
            known = [m for m in axis_metric_names(self.axes[axis].multi_label) if m in PROMOTION_METRICS]
            if name not in known:
                raise ValueError(
                    f"tracking.promotion.metrics: {metric!r}: no metric {name!r}; known: {', '.join(known)} "
                    f"(on the {'multi' if self.axes[axis].multi_label else 'single'}-label axis {axis!r})"
                )

    def promotion_metrics(self) -> list[str]:
        """The validation metrics promotion compares (``tracking.promotion.metrics``, else micro-F1 of every
        multi-label axis, accuracy and macro-F1 of every single-label one)."""
        return list(
            self.tracking.promotion.metrics
            or [f"{a}/{m}" for a, ax in self.axes.items() for m in default_promotion_metrics(ax.multi_label)]
        )

    def _check_corpora(self, corpora: list[NamedCorpus]) -> None:
        if not corpora:
            raise ValueError("corpora: the list is empty")
        names = [c.name for c in corpora]
        if len(set(names)) != len(names):
            raise ValueError(f"corpora: two corpora share a name: {sorted(names)}")
        for i, corpus in enumerate(corpora):
            for axis in corpus.axes:
                if axis not in self.axes:
                    raise ValueError(
                        f"corpora.{i}.axes.{axis}: not an axis of this config ({sorted(self.axes)})"
                    )
        for name in self.model.recent_corpora:
            if name not in names:
                raise ValueError(f"model.recent_corpora: {name!r} is not a corpus of this config ({names})")
        for axis in self.axes:
            if not any(axis in c.axes for c in corpora):
                raise ValueError(f"axes.{axis}: no corpus feeds it (corpora.N.axes.{axis})")

    def corpus_list(self) -> list[NamedCorpus]:
        """The corpora of this config; a single ``corpus:`` is named after the config."""
        if self.corpora is not None:
            return list(self.corpora)
        assert self.corpus is not None
        feeds = {a: CorpusAxis(source=ax.source or "", taxonomy=ax.taxonomy) for a, ax in self.axes.items()}
        return [NamedCorpus(name=self.name, axes=feeds, **self.corpus.model_dump())]

    def split_of(self, corpus: NamedCorpus) -> SplitConfig:
        """The split settings that apply to ``corpus``."""
        return corpus.split or self.split

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
    """``a.b.c=value`` as (["a", "b", "c"], parsed value); the value is read as YAML without aliases or
    repeated keys, at most ``yamlio.MAX_VALUE_CHARS`` characters (ConfigError otherwise)."""
    if "=" not in item:
        raise ConfigError(f"--set {_shown(item)!r}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {_shown(item)!r}: empty key")
    value = read_value(raw, f"--set {_shown(item)!r}") if raw.strip() else ""
    return parts, value


def _shown(item: str, limit: int = 80) -> str:
    """``item`` cut to ``limit`` characters for a message."""
    return item if len(item) <= limit else item[: limit - 3] + "..."


def _step(node: Any, part: str, item: str) -> tuple[Any, str | int]:
    """(the container ``part`` names in ``node``, its key): a list takes an index (``corpora.0.path``)."""
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(f"--set {item!r}: {part!r} is not an index of a list of {len(node)}")
        return node, int(part)
    return node, part


def _set_dotted(data: dict[str, Any], parts: list[str], value: Any, item: str) -> None:
    """Set ``value`` at the dotted key ``parts`` of ``data`` (intermediate dicts are created)."""
    node: Any = data
    for part in parts[:-1]:
        node, key = _step(node, part, item)
        child = node[key] if isinstance(node, list) else node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict | list):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node = child
    node, key = _step(node, parts[-1], item)
    node[key] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (intermediate dicts are created; a list item is
    named by its index, as in ``corpora.0.path``)."""
    data = json.loads(json.dumps(raw))
    for item in overrides:
        parts, value = parse_override(item)
        _set_dotted(data, parts, value, _shown(item))
    return data


def _error_line(err: Any) -> str:
    """One pydantic error as ``key: message`` (a whole-config rule's message names its key itself)."""
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    key = ".".join(str(p) for p in err["loc"])
    if not key and err["type"] == "value_error":
        return msg.removeprefix("Value error, ")
    return f"{key or '(top level)'}: {msg}"


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    lines += [f"  {_error_line(err)}" for err in exc.errors()]
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file (``yamlio.read_file``: repeated keys refused), or ConfigError naming the
    file."""
    path = Path(path)
    data = read_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


TRACKING_URI_FORMS = (
    "sqlite:///path/to/mlflow.db, http(s)://host:port (an MLflow server), "
    "postgresql://, mysql:// or mssql:// (a database), databricks"
)
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def check_tracking_uri(uri: str) -> str:
    """``uri`` when it names a store newstag can track to; ConfigError naming it and the forms allowed
    otherwise (a plain path, a ``file:`` store, an unknown scheme, a SQLite file whose folder is missing)."""
    why = _tracking_uri_problem(uri)
    if why:
        raise ConfigError(f"tracking URI {uri!r}: {why}; use {TRACKING_URI_FORMS}")
    db = _sqlite_file(uri)
    if db is not None:
        from pipeline.store_sql import check_store_file  # standard library only

        check_store_file(db.absolute())  # an empty, damaged or truncated store: StoreError before any work
    return uri


def _sqlite_file(uri: str) -> Path | None:
    match = _URI_SCHEME.match(uri)
    if not match or match.group(1).lower().split("+", 1)[0] != "sqlite":
        return None
    rest = uri[match.end() :]
    return Path(rest.removeprefix("///").split("?", 1)[0]) if rest.startswith("///") else None


def _tracking_uri_problem(uri: str) -> str:
    if uri == "databricks" or uri.startswith("databricks"):
        return ""
    match = _URI_SCHEME.match(uri)
    if not match or len(match.group(1)) == 1:  # no scheme, or a Windows drive letter
        return "a plain path is not a store"
    scheme = match.group(1).lower().split("+", 1)[0]
    rest = uri[match.end() :]
    if scheme == "file":
        return "file stores are not supported (MLflow 3 refuses them)"
    if scheme in ("http", "https"):
        return "" if rest.startswith("//") and rest[2:].split("/", 1)[0] else "no host"
    if scheme in ("postgresql", "mysql", "mssql"):
        return ""
    if scheme != "sqlite":
        return f"unsupported scheme {scheme!r}"
    db = rest.removeprefix("///").split("?", 1)[0] if rest.startswith("///") else ""
    if not db or db == ":memory:":
        return "no database file"
    if Path(db).is_dir():
        return f"{db} is a folder, not a database file"
    if not Path(db).parent.is_dir():
        return f"folder {Path(db).parent} does not exist"
    return ""


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """The validated config from ``path`` with ``--set`` overrides applied."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        suffix = " (after --set overrides)" if overrides else ""
        raise ConfigError(_describe(exc, f"{path}{suffix}")) from None
