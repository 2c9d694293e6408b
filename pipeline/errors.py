"""Errors the CLI turns into exit code 2 with a one-line message."""

from pipeline.corpora.base import CorpusError


class ConfigError(Exception):
    """A config file is missing, is not valid YAML, or does not fit the schema."""


class UsageError(Exception):
    """The command line asks for something impossible."""


class ModelError(Exception):
    """A model cannot be found, loaded or verified."""


class StoreError(Exception):
    """The tracking store's database file is damaged, truncated or empty: it is not opened, not re-created."""


USER_ERRORS = (ConfigError, CorpusError, UsageError, ModelError, StoreError)
