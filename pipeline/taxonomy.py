"""Raw source labels -> axis labels (regions, themes), from the YAML files in ``configs/taxonomy/``.

Two file shapes are understood:

- a **regions** file: ``regions`` (region -> ISO 3166-1 alpha-2 codes), ``no_region`` (codes in no region,
  with the reason) and ``places`` (raw place code -> ``{country: ISO | null, note | reason}``);
- a **themes** file: ``themes`` (theme -> raw topic codes) and ``unmapped`` (raw codes in no theme, with
  the reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.config import ConfigError, read_yaml


@dataclass(frozen=True)
class LabelMap:
    """How one axis turns raw labels into its own labels."""

    labels: tuple[str, ...]
    table: dict[str, tuple[str, ...]]
    excluded: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def map(self, raw: Iterable[str]) -> tuple[list[str], list[str]]:
        """The sorted axis labels for ``raw``, and the raw labels the table does not know."""
        out: set[str] = set()
        unknown: list[str] = []
        for code in raw:
            if code in self.table:
                out.update(self.table[code])
            elif code not in self.excluded:
                unknown.append(code)
        return sorted(out), unknown


def _mapping(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping")
    return value


def _codes(path: Path, key: str, values: Any, what: str) -> list[str]:
    """The codes listed at ``key`` as strings (numbers are read as text); ConfigError naming file and key
    unless it is a non-empty list of strings or numbers."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{path}: {key} has no {what}")
    codes = []
    for code in values:
        if isinstance(code, bool) or not isinstance(code, str | int) or not str(code).strip():
            hint = (
                " (YAML reads a bare NO, YES, ON or OFF as a boolean: quote it)"
                if isinstance(code, bool)
                else ""
            )
            raise ConfigError(f"{path}: {key}: {code!r} is not a code (expected a string){hint}")
        codes.append(str(code))
    return codes


def _names(path: Path, section: str, mapping: dict[Any, Any]) -> None:
    for name in mapping:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: {section}: label {name!r} is not a name (expected a string)")


def _region_of_country(path: Path, regions: dict[str, Any]) -> dict[str, str]:
    owner: dict[str, str] = {}
    _names(path, "regions", regions)
    for region, countries in regions.items():
        for code in _codes(path, f"regions.{region}", countries, "countries"):
            if code in owner:
                raise ConfigError(
                    f"{path}: regions.{region}: country {code} is in two regions: {owner[code]} and {region}"
                )
            owner[code] = region
    return owner


def _load_regions(path: Path, data: dict[str, Any]) -> LabelMap:
    regions = _mapping(data, "regions", path)
    if not regions:
        raise ConfigError(f"{path}: regions: no labels")
    owner = _region_of_country(path, regions)
    table: dict[str, tuple[str, ...]] = {}
    excluded: dict[str, str] = {}
    for code, entry in _mapping(data, "places", path).items():
        if not isinstance(entry, dict) or "country" not in entry:
            raise ConfigError(f"{path}: places.{code} needs a 'country' key (ISO code or null)")
        country = entry["country"]
        if country is not None and not isinstance(country, str):
            raise ConfigError(f"{path}: places.{code}.country: {country!r} is not an ISO code or null")
        if country is None:
            excluded[str(code)] = str(entry.get("reason") or "no country")
        elif country in owner:
            table[str(code)] = (owner[country],)
        else:
            raise ConfigError(f"{path}: places.{code}: country {country} is in no region")
    for country, region in owner.items():  # ISO alpha-2 codes map too (upper case: no place code is)
        table.setdefault(country, (region,))
    for country, reason in _mapping(data, "no_region", path).items():
        excluded.setdefault(str(country), str(reason))
    return LabelMap(tuple(sorted(regions)), table, excluded, str(path))


def _load_themes(path: Path, data: dict[str, Any]) -> LabelMap:
    themes = _mapping(data, "themes", path)
    if not themes:
        raise ConfigError(f"{path}: themes: no labels")
    table: dict[str, tuple[str, ...]] = {}
    _names(path, "themes", themes)
    for theme, codes in themes.items():
        for code in _codes(path, f"themes.{theme}", codes, "source labels"):
            if str(code) in table:
                raise ConfigError(f"{path}: {code} is in two themes: {table[str(code)][0]} and {theme}")
            table[str(code)] = (str(theme),)
    excluded = {str(k): str(v) for k, v in _mapping(data, "unmapped", path).items()}
    return LabelMap(tuple(sorted(themes)), table, excluded, str(path))


@lru_cache(maxsize=16)
def _load(path: str) -> LabelMap:
    p = Path(path)
    data = read_yaml(p)
    if "regions" in data:
        return _load_regions(p, data)
    if "themes" in data:
        return _load_themes(p, data)
    raise ConfigError(f"{p}: a taxonomy needs a 'regions' or a 'themes' section")


def load_taxonomy(path: str | Path) -> LabelMap:
    """The label map in ``path`` (validated; cached per path)."""
    return _load(str(path))


@lru_cache(maxsize=4)
def _country_regions(path: str) -> dict[str, str]:
    p = Path(path)
    data = read_yaml(p)
    return _region_of_country(p, _mapping(data, "regions", p))


def country_regions(path: str | Path) -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> region, from a regions taxonomy file."""
    return dict(_country_regions(str(path)))


def identity_map(labels: Iterable[str]) -> LabelMap:
    """A map that keeps raw labels as they are (for axes without a taxonomy)."""
    kept = tuple(sorted(set(labels)))
    return LabelMap(kept, {label: (label,) for label in kept}, {}, "identity")
