"""The model server checks rows as the batch CLI does, and refuses a batch over its size limit (issue 12, Low).

``mlflow models serve`` of the small Reuters model on a free loopback port (as ``tests/e2e/test_serve.py``
starts it). Before the fix a null or numeric text was tagged like any story (null arrived as NaN, a number
as itself, and the model scored them) and a body of any size was scored; now each is a 400 whose message
names the row and the field, or the limit.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from e2e.test_serve import start_serve, stop, wait_until_up
from fixtures_model import TrainedModel, small_model

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
__all__ = ["small_model"]  # the fixture, imported for pytest

MAX_REQUEST_CHARS = 10_000_000  # the README's figure (pipeline.pyfunc.MAX_REQUEST_CHARS)
STORY = "Saudi Arabia will keep its crude oil output at 4.1 mln barrels per day, the oil minister said."


@pytest.fixture(scope="module")
def server(small_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``mlflow models serve`` of the small model (its default limits)."""
    env = small_model.env()  # names the store as MLFLOW_REGISTRY_URI too
    env.pop("NEWSTAG_SERVE_MAX_CHARS", None)
    proc, port, log = start_serve(small_model.uri, tmp_path_factory.mktemp("serve-limits"), env)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as JSON to /invocations: (status, decoded answer)."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def rows(*texts: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["text", "title"], "data": [[t, "headline"] for t in texts]}}


def test_a_good_batch_is_tagged(server: str) -> None:
    status, answer = post(server, rows(STORY, "  " + STORY + "\n"))
    assert status == 200, answer
    first, second = answer["predictions"]
    assert first["scores"] == second["scores"]  # stripped as the batch CLI strips it


@pytest.mark.parametrize(
    ("bad", "why"),
    [(None, "text is null"), (1234, "text is not a string (got int)"), ("   ", "text is empty")],
    ids=["null", "number", "blank"],
)
def test_a_row_the_cli_rejects_is_a_400_naming_row_and_field(server: str, bad: Any, why: str) -> None:
    status, answer = post(server, rows(STORY, bad, STORY))
    assert status == 400, answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"row 1, field 'text': {why}" in answer["message"], answer["message"][-2000:]
    assert "1 of 3 rows rejected, nothing scored" in answer["message"]


def test_records_with_a_missing_or_null_text_are_refused_too(server: str) -> None:
    status, answer = post(
        server, {"dataframe_records": [{"text": STORY}, {"title": "no text"}, {"text": None}]}
    )
    assert status == 400, answer
    assert "row 1, field 'text': text is null" in answer["message"]
    assert "row 2, field 'text': text is null" in answer["message"]


def test_a_batch_over_the_limit_is_refused_before_scoring(server: str) -> None:
    words = MAX_REQUEST_CHARS // 4 + 1
    status, answer = post(server, rows("oil " * words, STORY))
    assert status == 400, answer
    message = answer["message"]
    assert f"request too large: {4 * words + len(STORY) + 16:,} characters" in message, message[-2000:]
    assert f"the limit is {MAX_REQUEST_CHARS:,} (NEWSTAG_SERVE_MAX_CHARS)" in message
    status, answer = post(server, rows(STORY))  # the server is still up and answering
    assert status == 200, answer
