"""The MLflow pyfunc adapter around the tagger (logged as "models from code").

MLflow executes this file when it loads the model. It scores with the compiled tagger (``scorer.npz``,
arrays read without unpickling) when the model has one, else with the joblib tagger; either file is
checked against the model's signature (``pipeline.signing``) and the sha256 recorded at training time
before it is read.

What MLflow executes, and where the check sits. ``mlflow.pyfunc.load_model`` (and ``mlflow models serve``,
which calls it) reads MLmodel, puts the model's ``code/`` folder first on ``sys.path`` and executes the model
code file this file was logged as (``pyfunc.py`` at the model folder's root) before calling ``load_context``.
That file is the one piece of the model that runs unchecked: MLflow runs whatever file MLmodel names, so a
model whose MLmodel or code file was replaced by someone able to write the store runs their code, and no check
of ours can come first. Its first statements are the earliest point we control: they verify the whole folder
(MLmodel, this file, every ``code/`` file; nothing unlisted; the tagger and scorer listed and present, their
bytes checked by ``load_context``'s loader as it reads them) with the newstag installed in the
environment, the model's own ``code/`` taken off ``sys.path`` while the verifier is imported, so a changed
``code/`` module, pickle or array file is refused before it is imported or read. The installed newstag then
also runs the model (``code/`` is not imported). Where newstag is not installed (an ``--env-manager
virtualenv`` or docker image built from the model's requirements) the signature cannot be checked and the
model is not loaded. ``load_context`` verifies the folder again, for any other way of loading this class.

Input: a DataFrame with a ``text`` column and an optional ``title`` column (a list of strings is accepted
too). Output: one row per input row, one list column per axis, ``primary_region`` (the one region the story
is mostly about, or None; models with a regions axis), and ``scores`` as a JSON object
``{axis: {label: probability}}`` encoded as a string (a fixed, schema-stable column for REST and Spark).

The publication's home country is the model's own (``features.gazetteer.home``) unless the model config
says otherwise at load time: ``mlflow.pyfunc.load_model(uri, model_config={"home": "US"})`` (or "none").
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE


def _inside(path: str, folder: Path) -> bool:
    try:
        return Path(path or ".").resolve().is_relative_to(folder)
    except OSError:
        return False


def _verify_model_folder() -> None:
    """When MLflow executes this file from a model folder: check the folder's signature with the installed
    newstag (the model's ``code/`` off ``sys.path`` meanwhile) before any other file of the model is read."""
    here = Path(__file__).resolve().parent
    if __name__ == "pipeline.pyfunc" or not (here / "MLmodel").is_file():
        return  # imported as a module of the installed package
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if not _inside(p, here)]
    try:
        from pipeline import signing
        from pipeline.artifacts import SCORER_FILE, TAGGER_FILE
    except ImportError:
        raise ImportError(
            f"{here}: newstag is not installed in this Python environment, so the model's signature cannot "
            "be checked; refusing to load it (serve it from newstag's venv: --env-manager local)"
        ) from None
    finally:
        sys.path[:] = saved
    if _inside(signing.__file__, here):
        raise ImportError(f"{here}: newstag was imported from the model's own code/; refusing to load it")
    # the tagger and scorer: listed and present here, hashed by load_context's loader as it reads them
    artifacts = [here / "artifacts" / name for name in (TAGGER_FILE, SCORER_FILE)]
    signing.verify_model(here, deferred=[path for path in artifacts if path.is_file()])


_verify_model_folder()

from pipeline.corpora.base import ReadIssue  # noqa: E402
from pipeline.corpora.documents import Fields, document_of  # noqa: E402
from pipeline.loading import load_scorer, load_verified  # noqa: E402  (after the signature check)
from pipeline.scoring import MODEL_HOME, REGION_AXIS  # noqa: E402
from pipeline.signing import model_root, verify_model  # noqa: E402

# The input is a DataFrame checked against the logged signature; MLflow's type-hint validation does not apply.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")


class NewsTaggerModel(mlflow.pyfunc.PythonModel):
    """Thin adapter: DataFrame in, labels and scores out."""

    def load_context(self, context: Any) -> None:
        """Load the scorer (or, without one, the tagger) after checking the model folder's signature and
        the file's sha256."""
        config = context.model_config or {}
        files = [context.artifacts[name] for name in ("scorer", "tagger") if name in context.artifacts]
        verify_model(model_root(files[0]), deferred=files)  # each file checked again when read
        if "scorer" in context.artifacts:
            self.tagger = load_scorer(context.artifacts["scorer"], config.get("scorer_sha256"))
        else:
            self.tagger = load_verified(context.artifacts["tagger"], config.get("tagger_sha256"))
        self.primary = REGION_AXIS in self.tagger.axes and hasattr(self.tagger, "tag")
        home = config.get("home")
        self.home = self.tagger.resolve_home(MODEL_HOME if home is None else home) if self.primary else None

    def predict(self, context, model_input, params=None):
        """Labels per axis and scores for every input row (same row count and order); MlflowException
        (HTTP 400 from ``mlflow models serve``) for a batch over ``max_request_chars`` or with a row the batch
        CLI would reject, naming the rows and fields."""
        frame = _documents(_as_frame(model_input))
        if self.primary:
            M, scores, labels = self.tagger.tag(frame, home=self.home)
        else:
            scores = self.tagger.predict_scores(frame)
            labels = self.tagger.labels_from_scores(scores)
        out = pd.DataFrame({axis: labels[axis] for axis in self.tagger.axes}, index=frame.index)
        if self.primary:
            primary = self.tagger.primary_regions(scores, labels, M)
            out["primary_region"] = pd.Series(primary, index=frame.index, dtype=object)  # None stays None
        names = self.tagger.labels_
        out["scores"] = [
            json.dumps(
                {
                    a: {lab: round(float(p), 6) for lab, p in zip(names[a], scores[a][i], strict=True)}
                    for a in names
                }
            )
            for i in range(len(frame))
        ]
        return out.reset_index(drop=True)


def _as_frame(model_input: Any) -> pd.DataFrame:
    """The input as a DataFrame with a ``text`` column, its values as they came (checked by ``_documents``)."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            if model_input.shape[1] == 1:
                return pd.DataFrame({"text": model_input.iloc[:, 0]})
            raise _bad_request("the input DataFrame needs a 'text' column")
        return model_input
    if isinstance(model_input, pd.Series):
        return pd.DataFrame({"text": model_input})
    if isinstance(model_input, dict):
        return pd.DataFrame(model_input)
    return pd.DataFrame({"text": list(model_input)})


MAX_CHARS_ENV = "NEWSTAG_SERVE_MAX_CHARS"
MAX_REQUEST_CHARS = 10_000_000  # characters of text and title in one batch (about 10 MB of ASCII)
_FIELDS = Fields()  # id, title, text: the columns the batch CLI reads by default
_SHOWN = 10  # rejected rows named in one message


def max_request_chars() -> int:
    """The most characters of text and title one batch may hold: $NEWSTAG_SERVE_MAX_CHARS, else 10,000,000."""
    raw = os.environ.get(MAX_CHARS_ENV, "").strip()
    if not raw:
        return MAX_REQUEST_CHARS
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise _bad_request(f"{MAX_CHARS_ENV}={raw!r}: expected a positive number of characters")
    return limit


def _documents(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows read as the batch CLI reads them (``document_of``: the text a non-blank string, id,
    title and text stripped), as ``text`` and ``title`` columns; MlflowException (INVALID_PARAMETER_VALUE)
    when the batch holds more than ``max_request_chars`` characters, or naming every row that is rejected
    (row 0 is the first) with its field and why. Nothing is scored then."""
    limit = max_request_chars()
    columns = [c for c in (_FIELDS.id, _FIELDS.title, _FIELDS.text) if c in frame.columns]
    sized = [c for c in (_FIELDS.title, _FIELDS.text) if c in frame.columns]
    size = sum(len(v) for c in sized for v in frame[c] if isinstance(v, str))  # before any other work
    if size > limit:
        raise _bad_request(
            f"request too large: {size:,} characters of text and title in {len(frame):,} rows, the limit is "
            f"{limit:,} ({MAX_CHARS_ENV}); send smaller batches"
        )
    texts, titles, rejected = [], [], []
    for i, values in enumerate(zip(*(frame[c] for c in columns), strict=True)):
        doc = document_of({c: _null(v) for c, v in zip(columns, values, strict=True)}, _FIELDS, "request", i)
        if isinstance(doc, ReadIssue):
            rejected.append(f"row {i}, field {doc.field!r}: {doc.reason.removesuffix(': row skipped')}")
        else:
            texts.append(doc.text)
            titles.append(doc.title)
    if rejected:
        more = f"; and {len(rejected) - _SHOWN:,} more" if len(rejected) > _SHOWN else ""
        raise _bad_request(
            f"{len(rejected):,} of {len(frame):,} rows rejected, nothing scored (as newstag predict would "
            f"reject them): {'; '.join(rejected[:_SHOWN])}{more}"
        )
    return pd.DataFrame({"text": texts, "title": titles}, index=frame.index)


def _null(value: Any) -> Any:
    """None for the markers pandas puts where a value is null (NaN, NA, NaT); anything else as it is."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _bad_request(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


set_model(NewsTaggerModel())
