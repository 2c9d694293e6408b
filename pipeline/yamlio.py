"""The one YAML reader of the project: safe, refusing repeated keys, and bounded.

Configs, taxonomies (``regions.yaml``, the gazetteer's region table) and ``--set`` values are all read
here. Plain YAML keeps the last of two equal keys in a mapping, so a region listed twice would be merged
silently; this reader refuses it, naming the line of each. ``--set`` values are read without aliases and
limited in length (``read_value``), so a value cannot expand into a "billion laughs" structure; files may
use anchors and aliases, and their expanded size is bounded by ``MAX_YAML_VALUES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from pipeline.errors import ConfigError

MAX_YAML_VALUES = 1_000_000  # values a file may expand to through its aliases
MAX_VALUE_CHARS = 10_000  # length of one --set value
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(None, None, f"duplicate key {key!r}")
        self.key, self.line, self.first = key, line, first

    def __str__(self) -> str:
        return f"line {self.line}: key {self.key!r} appears twice in one mapping (first on line {self.first})"


class AliasError(yaml.YAMLError):
    """An alias (``*name``) where none is allowed."""

    def __str__(self) -> str:
        return "aliases (*name) are not allowed in a --set value"


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises DuplicateKeyError on a repeated mapping key (merged ``<<`` keys may
    still be overridden, as YAML intends)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first_line.get(key)
                except TypeError:  # an unhashable key: SafeLoader itself refuses it
                    continue
                line = key_node.start_mark.line + 1
                if seen is not None:
                    raise DuplicateKeyError(key, line, seen)
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


class ValueLoader(UniqueKeyLoader):
    """UniqueKeyLoader that also refuses aliases (for ``--set`` values)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            raise AliasError()
        return super().compose_node(parent, index)


def _message(exc: Exception) -> str:
    if isinstance(exc, DuplicateKeyError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "not readable YAML: nested too deeply"
    return f"not valid YAML: {exc}"


def read_file(path: str | Path) -> Any:
    """The YAML document in ``path``, or ConfigError naming the file (and the line of a repeated key)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: {_message(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    check_size(data, str(path))
    return data


def read_value(text: str, what: str) -> Any:
    """One ``--set`` value read as YAML: at most ``MAX_VALUE_CHARS`` characters, no aliases, no repeated
    keys; ConfigError starting with ``what`` otherwise."""
    if len(text) > MAX_VALUE_CHARS:
        raise ConfigError(f"{what}: the value is {len(text):,} characters long; at most {MAX_VALUE_CHARS:,}")
    try:
        return yaml.load(text, Loader=ValueLoader)  # a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ConfigError(f"{what}: key {exc.key!r} appears twice in one mapping") from None
    except AliasError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{what}: value is {_message(exc)}") from None


def check_size(data: Any, source: str) -> None:
    """ConfigError when YAML aliases expand ``data`` to more than ``MAX_YAML_VALUES`` values (a "billion
    laughs" file would otherwise exhaust memory when the config is copied)."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise ConfigError(
                f"{source}: too large: its aliases expand to more than {MAX_YAML_VALUES:,} values"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
