"""Schemathesis: every operation of ``/openapi.json`` fuzzed through the ASGI app.

Valid and invalid inputs alike must never get a 5xx, every response must match
its declared schema, status code, content type and headers, and the examples
are bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.schemas import BaseSchema

from qa.api import create_app
from qa.config import Settings
from qa.service import QAService

ADMIN_TOKEN = "fuzz-admin-token-not-guessable-9f2c"
# FUZZ_EXAMPLES=500 pytest tests/test_fuzz_api.py -s: a deeper run, by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CALLS: Counter[str] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def api_schema(essay_settings: Settings, essay_service: QAService) -> Iterator[BaseSchema]:
    """The app's own schema, with an admin token set so the auth paths are fuzzed too."""
    fuzz_settings = essay_settings.model_copy(update={"admin_token": ADMIN_TOKEN})
    app = create_app(fuzz_settings, service=essay_service)
    with TestClient(app):  # runs the lifespan, as a server would
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.config.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            max_examples=MAX_EXAMPLES,
            deterministic=False,
        )
        REAL_IDS.update(_real_ids(essay_service))
        yield schema


def _real_ids(service: QAService) -> dict[str, list[str]]:
    return {
        "doc_id": [d.doc_id for d in service.documents()],
        "passage_id": [p.passage_id for p in service.snapshot.passages[:20]],
    }


REAL_IDS: dict[str, list[str]] = {}


@schemathesis.hook
def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Half the time a real id, else the generated one: otherwise every lookup is a 404."""
    for name, ids in REAL_IDS.items():
        if path_parameters and name in path_parameters:
            real = st.sampled_from(ids).map(partial(_with, path_parameters, name))
            return st.one_of(st.just(path_parameters), real)
    return st.just(path_parameters)


def _with(parameters: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    return {**parameters, name: value}


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
def test_every_operation_against_its_schema(case: Case[Any]) -> None:
    response = case.call()
    label = case.operation.label
    CALLS[label] += 1
    STATUSES[(label, response.status_code)] += 1
    assert response.status_code < 500, (label, response.status_code, response.text[:500])
    excluded = []
    if (
        label == "GET /documents/{doc_id}"
        and response.status_code == 422
        and response.json()["error"]["code"] == "invalid_span"
    ):
        # Schema-valid but documented: a span with end < start or end > length is a 422.
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)


def test_every_operation_was_fuzzed(api_schema: BaseSchema) -> None:
    """Runs after the fuzzing above (same module, file order): nothing was skipped."""
    operations = {op.ok().label for op in api_schema.get_all_operations()}  # type: ignore[union-attr]
    assert operations <= set(CALLS), operations - set(CALLS)
    total = sum(CALLS.values())
    print(f"\nschemathesis: {total} cases over {len(operations)} operations")
    for (label, status), count in sorted(STATUSES.items()):
        print(f"  {label:32} {status} x{count}")
