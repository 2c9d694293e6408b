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
(MLmodel, this file, every ``code/`` file, the artifacts; nothing unlisted) with the newstag installed in the
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
import sys
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import set_model


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
    except ImportError:
        raise ImportError(
            f"{here}: newstag is not installed in this Python environment, so the model's signature cannot "
            "be checked; refusing to load it (serve it from newstag's venv: --env-manager local)"
        ) from None
    finally:
        sys.path[:] = saved
    if _inside(signing.__file__, here):
        raise ImportError(f"{here}: newstag was imported from the model's own code/; refusing to load it")
    signing.verify_model(here)


_verify_model_folder()

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
        """Labels per axis and scores for every input row (same row count and order)."""
        frame = _as_frame(model_input)
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
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            if model_input.shape[1] == 1:
                return pd.DataFrame({"text": model_input.iloc[:, 0].astype(str)})
            raise ValueError("the input DataFrame needs a 'text' column")
        return model_input
    if isinstance(model_input, pd.Series):
        return pd.DataFrame({"text": model_input.astype(str)})
    if isinstance(model_input, dict):
        return pd.DataFrame(model_input)
    return pd.DataFrame({"text": [str(t) for t in model_input]})


set_model(NewsTaggerModel())
