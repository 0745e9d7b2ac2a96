"""The HTTP API over the essay index: every endpoint, every bad input, one error shape.

The contract does not depend on the model, so the essay is indexed with the fake
embedder; only abstention, which is about the real model's scores, loads it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.api.middleware import BodyLimitMiddleware
from qa.api.models import NOT_BLANK
from qa.config import Settings
from qa.errors import StaleIndexError
from qa.schemas import AskResponse
from qa.service import QAService
from qa.types import Answer
from tests.helpers import assert_error

QUESTION = "Is the Sino-Russian relationship an alliance?"
UNANSWERABLE = "What is the boiling point of water at sea level?"


@pytest.fixture(scope="module")
def client(fake_essay_settings: Settings, fake_essay_service: QAService) -> Iterator[TestClient]:
    with TestClient(create_app(fake_essay_settings, service=fake_essay_service)) as test_client:
        yield test_client


def without_timing(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "took_ms"}


# -- /ask -------------------------------------------------------------------------------


def test_post_ask_returns_the_shared_answer_model(
    client: TestClient, fake_essay_service: QAService
) -> None:
    response = client.post("/ask", json={"question": QUESTION, "k": 3})
    assert response.status_code == 200
    body = response.json()
    expected = AskResponse.of(fake_essay_service.ask(QUESTION, 3)).model_dump(mode="json")
    assert without_timing(body) == without_timing(expected)
    assert body["answered"] is True
    assert [p["rank"] for p in body["passages"]] == [1, 2, 3]
    top = body["passages"][0]
    assert top["quote"]["text"] in top["text"]
    assert top["citation"]["start"] <= top["quote"]["start"] < top["quote"]["end"]
    assert top["quote"]["end"] <= top["citation"]["end"]


def test_get_ask_matches_post(client: TestClient) -> None:
    got = client.get("/ask", params={"q": QUESTION, "k": 2, "retriever": "bm25"})
    posted = client.post("/ask", json={"question": QUESTION, "k": 2, "retriever": "bm25"})
    assert got.status_code == posted.status_code == 200
    assert without_timing(got.json()) == without_timing(posted.json())
    assert len(got.json()["passages"]) == 2


def test_default_k_is_five(client: TestClient) -> None:
    assert len(client.post("/ask", json={"question": QUESTION}).json()["passages"]) == 5
    assert len(client.get("/ask", params={"q": QUESTION}).json()["passages"]) == 5


def test_unanswerable_question_abstains(essay_settings: Settings, essay_service: QAService) -> None:
    with TestClient(create_app(essay_settings, service=essay_service)) as client:
        _abstains(client)


def _abstains(client: TestClient) -> None:
    body = client.post("/ask", json={"question": UNANSWERABLE}).json()
    assert body["answered"] is False
    assert body["passages"] == []
    weak = client.post("/ask", json={"question": UNANSWERABLE, "include_low_confidence": True})
    assert weak.json()["answered"] is False
    assert weak.json()["passages"]


BAD_BODIES: list[tuple[str, object, str]] = [
    ("missing question", {"k": 3}, "question: field required"),
    ("empty question", {"question": ""}, "question: must not be empty"),
    ("whitespace question", {"question": " \t\n "}, "question: must not be empty"),
    ("question too long", {"question": "x" * 1001}, "question: must be at most 1000 characters"),
    ("k zero", {"question": QUESTION, "k": 0}, "k:"),
    ("k negative", {"question": QUESTION, "k": -3}, "k:"),
    ("k too large", {"question": QUESTION, "k": 51}, "k: must be between 1 and 50"),
    ("k as string", {"question": QUESTION, "k": "5"}, "k: must be an integer"),
    ("k as boolean", {"question": QUESTION, "k": True}, "k: must be an integer"),
    ("k as float", {"question": QUESTION, "k": 2.5}, "k:"),
    ("question as number", {"question": 42}, "question:"),
    ("question as null", {"question": None}, "question:"),
    ("unknown field", {"question": QUESTION, "top_k": 3}, "top_k: unknown field"),
    ("bad retriever", {"question": QUESTION, "retriever": "magic"}, "retriever:"),
    ("flag as string", {"question": QUESTION, "include_low_confidence": "yes"}, "include_low"),
    ("array body", [QUESTION], "body:"),
    ("string body", QUESTION, "body:"),
]


@pytest.mark.parametrize(
    ("body", "fragment"), [(b, f) for _, b, f in BAD_BODIES], ids=[i for i, _, _ in BAD_BODIES]
)
def test_post_ask_rejects_bad_bodies(client: TestClient, body: object, fragment: str) -> None:
    assert_error(client.post("/ask", json=body), 422, "invalid_request", fragment)


def test_integral_float_k_is_an_integer(client: TestClient) -> None:
    """JSON Schema counts 2.0 as an integer, so schema-driven clients may send it."""
    response = client.post("/ask", json={"question": QUESTION, "k": 2.0})
    assert response.status_code == 200 and len(response.json()["passages"]) == 2


def test_question_at_the_limit_is_accepted(client: TestClient) -> None:
    question = ("alliance " * 200)[:1000]
    assert client.post("/ask", json={"question": question, "k": 1}).status_code == 200


BAD_QUERIES: list[tuple[str, dict[str, object], str]] = [
    ("missing q", {"k": 2}, "q: field required"),
    ("empty q", {"q": ""}, "q: must not be empty"),
    ("whitespace q", {"q": "   "}, "q: must not be empty"),
    ("q too long", {"q": "x" * 1001}, "q: must be at most 1000 characters"),
    ("k zero", {"q": QUESTION, "k": 0}, "k:"),
    ("k too large", {"q": QUESTION, "k": 51}, "k: must be between 1 and 50"),
    ("k not a number", {"q": QUESTION, "k": "five"}, "k:"),
    ("bad retriever", {"q": QUESTION, "retriever": "magic"}, "retriever:"),
    ("bad flag", {"q": QUESTION, "include_low_confidence": "perhaps"}, "include_low_confidence"),
]


@pytest.mark.parametrize(
    ("params", "fragment"), [(p, f) for _, p, f in BAD_QUERIES], ids=[i for i, _, _ in BAD_QUERIES]
)
def test_get_ask_rejects_bad_queries(
    client: TestClient, params: dict[str, object], fragment: str
) -> None:
    assert_error(client.get("/ask", params=params), 422, "invalid_request", fragment)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw", [b'{"question": ', b"{'question': 'single quotes'}", b"\xff\xfe not json", b"[1,]"]
)
def test_malformed_json_is_a_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/ask", content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json", "malformed JSON")


def test_non_json_content_type_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/ask", content=b'{"question": "x"}', headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 422, "invalid_request", "body:")


def test_body_over_64_kib_is_a_413(client: TestClient) -> None:
    padding = "x" * (64 * 1024)
    response = client.post("/ask", json={"question": "hi", "padding": padding})
    assert_error(response, 413, "payload_too_large", "65536 bytes")


def test_chunked_body_over_the_limit_is_a_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    response = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_body_limit_counts_streamed_bytes_without_content_length() -> None:
    """Drive the middleware directly with many small ASGI messages and no Content-Length."""
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append((await receive())["body"])

    async def call(total: int) -> list[dict[str, Any]]:
        messages = [
            {"type": "http.request", "body": b"a" * 1000, "more_body": i < total // 1000 - 1}
            for i in range(total // 1000)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": "POST", "path": "/ask", "headers": []}
        await BodyLimitMiddleware(app, limit=5000)(scope, receive, send)
        return sent

    assert asyncio.run(call(5000)) == [] and reached == [b"a" * 5000]
    sent = asyncio.run(call(6000))
    assert sent[0]["status"] == 413 and len(reached) == 1


# -- passages and documents -----------------------------------------------------------------


def test_passage_by_id(client: TestClient, fake_essay_service: QAService) -> None:
    passage = fake_essay_service.snapshot.passages[3]
    response = client.get(f"/passages/{passage.passage_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == passage.passage_id
    assert body["text"] == passage.text
    assert body["citation"]["label"] == passage.label
    assert body["citation"]["start"] == passage.start


def test_unknown_passage_is_a_404(client: TestClient) -> None:
    assert_error(client.get("/passages/0000000000000000"), 404, "not_found", "0000000000000000")


def test_documents_list(client: TestClient, fake_essay_service: QAService) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    [doc] = response.json()["documents"]
    info = fake_essay_service.documents()[0]
    assert doc == {
        "id": info.doc_id,
        "title": info.title,
        "path": "seeds/china-russia-relations-in-the-age-of-trump.txt",
        "sha256": info.sha256,
        "length": len(info.text),
    }


def test_document_metadata_and_span(client: TestClient, fake_essay_service: QAService) -> None:
    info = fake_essay_service.documents()[0]
    meta = client.get(f"/documents/{info.doc_id}").json()
    assert meta["span"] is None and meta["text"] is None and meta["length"] == info.length
    answer = client.post("/ask", json={"question": QUESTION, "k": 1}).json()
    quote = answer["passages"][0]["quote"]
    span = client.get(
        f"/documents/{info.doc_id}", params={"start": quote["start"], "end": quote["end"]}
    ).json()["span"]
    assert span == {"start": quote["start"], "end": quote["end"], "text": quote["text"]}
    full = client.get(f"/documents/{info.doc_id}", params={"full": "true"}).json()
    assert full["text"] == info.text
    whole = client.get(f"/documents/{info.doc_id}", params={"start": 0, "end": info.length})
    assert whole.json()["span"]["text"] == info.text
    empty = client.get(f"/documents/{info.doc_id}", params={"start": 10, "end": 10})
    assert empty.json()["span"]["text"] == ""


@pytest.mark.parametrize(
    ("params", "code", "fragment"),
    [
        ({"start": 10, "end": 5}, "invalid_span", "outside document"),
        ({"start": 0, "end": 10**7}, "invalid_span", "of length"),
        ({"start": 10**7}, "invalid_span", "outside document"),
        ({"start": -1, "end": 5}, "invalid_request", "start:"),
        ({"start": 0, "end": -5}, "invalid_request", "end:"),
        ({"start": "abc", "end": 5}, "invalid_request", "start:"),
    ],
)
def test_span_outside_the_document_is_a_422(
    client: TestClient,
    fake_essay_service: QAService,
    params: dict[str, object],
    code: str,
    fragment: str,
) -> None:
    doc_id = fake_essay_service.documents()[0].doc_id
    response = client.get(f"/documents/{doc_id}", params=params)  # type: ignore[arg-type]
    assert_error(response, 422, code, fragment)


@pytest.mark.parametrize(
    "path",
    [
        "/documents/no-such-document",
        "/documents/..%2F..%2Fetc%2Fpasswd",
        "/documents/%2Fetc%2Fpasswd",
        "/documents/C:%5Cwindows%5Cwin.ini",
        "/passages/..%2Fmanifest.json",
    ],
)
def test_unknown_or_path_like_ids_are_404(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


# -- routing errors, ids, headers -----------------------------------------------------------


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    assert_error(client.get("/no/such/route"), 404, "not_found", "/no/such/route")
    assert_error(client.get("/static/missing.js"), 404, "not_found")


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.delete("/ask")
    assert_error(response, 405, "method_not_allowed", "DELETE")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert echoed.headers["x-request-id"] == "abc-123.x"
    for insane in ("has spaces", "x" * 200, "<script>"):
        generated = client.get("/healthz", headers={"X-Request-ID": insane})
        assert generated.headers["x-request-id"] not in ("", insane)
    first = client.get("/healthz").headers["x-request-id"]
    assert first != client.get("/healthz").headers["x-request-id"]


def test_server_timing_reports_the_server_side_time(client: TestClient) -> None:
    """Every response, errors included, says how long the server spent on it."""
    from qa.bench.loadgen import server_timing_ms

    answered = client.post("/ask", json={"question": "Is the relationship an alliance?"})
    refused = client.post("/ask", json={"question": "   "})
    for response in (answered, refused):
        header = response.headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d{3}", header), header
    total = server_timing_ms(answered.headers["server-timing"])
    assert total is not None
    assert total >= answered.json()["took_ms"]  # the whole request contains the search


def test_each_request_is_logged_on_one_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qa.access"):
        response = client.get("/documents", headers={"X-Request-ID": "log-check-1"})
    [line] = [r.getMessage() for r in caplog.records if "log-check-1" in r.getMessage()]
    assert response.status_code == 200
    assert line.startswith("log-check-1 GET /documents 200 ") and line.endswith("ms")


def test_control_characters_in_a_path_cannot_forge_log_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qa.access"):
        client.get("/x%0A2026-01-01 INFO forged", headers={"X-Request-ID": "log-check-2"})
    [line] = [r.getMessage() for r in caplog.records if "log-check-2" in r.getMessage()]
    assert "\n" not in line and "\\n2026-01-01 INFO forged" in line


def test_security_headers_and_no_cors_by_default(client: TestClient) -> None:
    for path in ("/", "/ask?q=x", "/healthz", "/static/app.js"):
        response = client.get(path, headers={"Origin": "https://evil.example"})
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in response.headers
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    preflight = client.options(
        "/ask",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_configured_origins(
    fake_essay_settings: Settings, fake_essay_service: QAService
) -> None:
    settings = fake_essay_settings.with_overrides(cors_origins=["https://ok.example"])
    with TestClient(create_app(settings, service=fake_essay_service)) as cors_client:
        ok = cors_client.get("/healthz", headers={"Origin": "https://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()
        other = cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = cors_client.options(
            "/ask",
            headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://ok.example"


# -- operations -------------------------------------------------------------------------------


def test_healthz_and_readyz_when_ready(client: TestClient, fake_essay_service: QAService) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["status"] == "ready"
    assert body["stale"] is False and body["reasons"] == []
    assert body["documents"] == 1 and body["passages"] == len(fake_essay_service.snapshot.passages)


def test_metrics_count_requests_latency_and_passages(
    fake_essay_settings: Settings, fake_essay_service: QAService
) -> None:
    with TestClient(create_app(fake_essay_settings, service=fake_essay_service)) as fresh:
        fresh.post("/ask", json={"question": QUESTION, "k": 2})
        fresh.get("/documents/nope")
        text = fresh.get("/metrics").text
        other = TestClient(create_app(fake_essay_settings, service=fake_essay_service))
        assert "qa_passages_served_total 0.0" in other.get("/metrics").text
    assert 'qa_http_requests_total{method="POST",path="/ask",status="200"} 1.0' in text
    assert 'path="/documents/{doc_id}",status="404"' in text
    assert (
        'qa_http_request_duration_seconds_bucket{le="+Inf",method="POST",path="/ask"} 1.0' in text
    )
    assert "qa_passages_served_total 2.0" in text
    assert 'qa_questions_total{answered="true"} 1.0' in text
    assert "qa_ready 1.0" in text


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/ask", "/passages/{passage_id}", "/documents", "/documents/{doc_id}",
        "/healthz", "/readyz", "/metrics", "/admin/reload",
    }  # fmt: skip
    components = schema["components"]["schemas"]
    assert components["AskResponse"]["examples"]
    assert components["AskRequest"]["properties"]["question"]["maxLength"] == 1000
    assert components["AskRequest"]["additionalProperties"] is False
    post = schema["paths"]["/ask"]["post"]["responses"]
    assert {"200", "400", "413", "422", "500", "503", "504"} <= set(post)
    assert post["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_page_and_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<script src="/static/app.js" defer></script>' in html
    assert html.count("<script") == 1, "no inline scripts: the CSP forbids them"
    assert 'for="question"' in html and 'for="k"' in html
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


# -- faults -------------------------------------------------------------------------------------


class _Broken(QAService):
    """A service whose answers fail in a chosen way."""

    fault: BaseException = RuntimeError("boom: secret detail")
    delay_s = 0.0

    def ask(self, *args: Any, **kwargs: Any) -> Answer:
        if self.delay_s:
            time.sleep(self.delay_s)
            return super().ask(*args, **kwargs)
        raise self.fault


def broken(fake_essay_service: QAService, settings: Settings, **attrs: Any) -> _Broken:
    service = _Broken(settings, fake_essay_service.embedder, fake_essay_service.snapshot)
    for key, value in attrs.items():
        setattr(service, key, value)
    return service


def test_unexpected_fault_is_a_generic_500_with_the_trace_logged(
    fake_essay_settings: Settings, fake_essay_service: QAService, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(fake_essay_settings, service=broken(fake_essay_service, fake_essay_settings))
    with TestClient(app) as faulty, caplog.at_level(logging.ERROR, logger="qa.api"):
        response = faulty.post("/ask", json={"question": QUESTION})
    message = assert_error(response, 500, "internal_error", response.headers["x-request-id"])
    assert "boom" not in message
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "boom: secret detail" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_domain_fault_is_a_503(
    fake_essay_settings: Settings, fake_essay_service: QAService
) -> None:
    service = broken(
        fake_essay_service, fake_essay_settings, fault=StaleIndexError(["seeds changed"])
    )
    with TestClient(create_app(fake_essay_settings, service=service)) as faulty:
        response = faulty.post("/ask", json={"question": QUESTION})
    assert_error(response, 503, "index_unavailable", "seeds changed")
    assert response.headers["retry-after"]


def test_slow_query_times_out_with_504(
    fake_essay_settings: Settings, fake_essay_service: QAService
) -> None:
    settings = fake_essay_settings.with_overrides(request_timeout_s=0.2)
    service = broken(fake_essay_service, settings, delay_s=1.0)
    with TestClient(create_app(settings, service=service)) as slow:
        assert_error(slow.post("/ask", json={"question": QUESTION}), 504, "timeout")


def test_slow_query_does_not_block_healthz(
    fake_essay_settings: Settings, fake_essay_service: QAService
) -> None:
    service = broken(fake_essay_service, fake_essay_settings, delay_s=1.5)
    with TestClient(create_app(fake_essay_settings, service=service)) as slow:
        results: list[int] = []
        worker = threading.Thread(
            target=lambda: results.append(
                slow.post("/ask", json={"question": QUESTION}).status_code
            )
        )
        worker.start()
        time.sleep(0.2)
        started = time.perf_counter()
        assert slow.get("/healthz").status_code == 200
        assert time.perf_counter() - started < 0.5
        worker.join()
    assert results == [200]


def test_the_schema_pattern_for_a_question_matches_what_the_server_calls_blank() -> None:
    """A client that trusts the schema's ``pattern`` is never refused as "empty", and a
    question the server calls blank never matches it: the same set, code point by code point."""
    pattern = re.compile(NOT_BLANK)
    differs = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if (pattern.search(chr(code)) is None) != (not chr(code).strip())
    ]
    assert differs == []
    # Python and ECMAScript (JSON Schema's dialect) read \s, \S, \w, \d differently:
    # ECMAScript's \S accepts U+001C-U+001F and U+0085, which str.strip removes.
    assert not re.search(r"\\[sSwWdD]", NOT_BLANK), NOT_BLANK
