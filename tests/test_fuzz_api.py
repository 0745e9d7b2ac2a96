"""Schemathesis: every operation of ``/openapi.json`` fuzzed through the ASGI app.

Valid and invalid inputs alike must never get a 5xx, and every response must pass
all of schemathesis' checks (status code, content type, headers, body schema, valid
data accepted, invalid data rejected, auth). The examples are bounded so the whole
run stays under a minute.

Schemathesis is driven from a plain test, through its public ``as_strategy`` and
``validate_response``, and not through its pytest plugin: the plugin reaches into
pytest internals (``Function._nodeid``), which pytest 9.2 removed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.schemas import APIOperation, BaseSchema

from qa.api import create_app
from qa.config import Settings
from qa.service import QAService

ADMIN_TOKEN = "fuzz-admin-token-not-guessable-9f2c"
# FUZZ_EXAMPLES=500 pytest tests/test_fuzz_api.py -s: a deeper run, by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SPAN_OPERATION = "GET /documents/{doc_id}"


@dataclass(frozen=True)
class Collection:
    """Real ids, so that half the lookups find something instead of answering 404."""

    doc_lengths: dict[str, int]
    passage_ids: list[str]

    def fixed_path_parameters(self, operation: APIOperation) -> list[dict[str, str]]:
        names = {param.name for param in operation.path_parameters}
        if "doc_id" in names:
            return [{"doc_id": doc_id} for doc_id in self.doc_lengths]
        if "passage_id" in names:
            return [{"passage_id": passage_id} for passage_id in self.passage_ids[:5]]
        return []


@pytest.fixture(scope="module")
def api(
    essay_settings: Settings, essay_service: QAService
) -> Iterator[tuple[BaseSchema, Collection]]:
    """The app's own schema, with an admin token set so the auth paths are fuzzed too."""
    fuzz_settings = essay_settings.with_overrides(admin_token=ADMIN_TOKEN)
    app = create_app(fuzz_settings, service=essay_service)
    collection = Collection(
        doc_lengths={d.doc_id: d.length for d in essay_service.documents()},
        passage_ids=[p.passage_id for p in essay_service.snapshot.passages[:20]],
    )
    with TestClient(app):  # runs the lifespan, as a server would
        yield schemathesis.openapi.from_asgi("/openapi.json", app), collection


def within_documented_rules(case: Case, collection: Collection) -> Case:
    """Keep valid requests inside the rules the schema states in words.

    Two rules tie a request to the collection, which OpenAPI cannot express: a span
    needs ``start <= end <= length``, and ``documents`` must name existing documents
    (an unknown id is a 422 that names it). Valid cases are moved inside them; invalid
    cases are left alone, and ``test_api.py`` / ``test_scope.py`` check those 422s.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if case.operation.label == SPAN_OPERATION and isinstance(case.query, dict):
        _inside_the_document(case.query, collection, case.path_parameters or {})
    for carrier in (case.query, case.body):
        if isinstance(carrier, dict) and isinstance(carrier.get("documents"), list):
            ids = list(collection.doc_lengths)
            carrier["documents"] = [ids[i % len(ids)] for i in range(len(carrier["documents"]))]
    return case


def _inside_the_document(
    query: dict[str, Any], collection: Collection, path: dict[str, Any]
) -> None:
    length = collection.doc_lengths.get(path.get("doc_id", ""))
    if length is None:
        return  # an unknown document is a 404 whatever the span
    start = query.get("start")
    if isinstance(start, int):
        start = query["start"] = min(start, length)
    end = query.get("end")
    if isinstance(end, int):
        query["end"] = max(start if isinstance(start, int) else 0, min(end, length))


def cases(operation: APIOperation, collection: Collection) -> st.SearchStrategy[Case]:
    strategies = [
        operation.as_strategy(mode, path_parameters=fixed)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for fixed in [None, *collection.fixed_path_parameters(operation)]
    ]
    return st.one_of(strategies).map(lambda case: within_documented_rules(case, collection))


def fuzz(operation: APIOperation, collection: Collection, statuses: Counter[int]) -> None:
    @given(case=cases(operation, collection))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.operation.label, response.text[:500])
        case.validate_response(response, checks=CHECKS.get_all())

    run()


def test_every_operation_against_its_schema(
    api: tuple[BaseSchema, Collection], subtests: Any
) -> None:
    schema, collection = api
    statuses: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        statuses[operation.label] = Counter()
        with subtests.test(operation=operation.label):
            fuzz(operation, collection, statuses[operation.label])
    assert len(statuses) >= 9, sorted(statuses)
    unfuzzed = [label for label, counts in statuses.items() if not counts]
    assert not unfuzzed, unfuzzed
    print(f"\nschemathesis: {sum(c.total() for c in statuses.values())} cases, all checks")
    for label, counts in sorted(statuses.items()):
        print(f"  {label:32} {dict(sorted(counts.items()))}")
