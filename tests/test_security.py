"""Security: no path traversal, configurable limits, CORS, headers, escaping, loopback bind."""

from __future__ import annotations

import builtins
import json
import pathlib
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.config import Settings
from qa.embedding import Vectors
from qa.errors import NotFoundError
from qa.service import QAService
from tests.helpers import CHROMIUM, FakeEmbedder, assert_error, live_server, make_settings

SCRIPT_TEXT = "<script>window.__pwned = 'script'</script>"
HOSTILE_SEED = "\n\n".join(
    [
        "Lighthouse <img src=x onerror=\"window.__pwned='title'\"> keeper's log",
        f"The lighthouse keeper wrote in the log: {SCRIPT_TEXT} and the lamp stayed lit.",
        "The keeper's log also records <img src=x onerror=\"window.__pwned='img'\"> "
        "a <b>storm</b> at the lighthouse.\n",
    ]
)


def raw_get(port: int, target: str) -> tuple[int, str]:
    """A request line sent byte for byte: no client normalises ``..`` or decodes ``%2e``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def fake_service(tmp_path_factory: pytest.TempPathFactory) -> QAService:
    """The essay (and a hostile document) indexed with the fast fake model."""
    from tests.helpers import ESSAY

    root = tmp_path_factory.mktemp("security")
    (root / "seeds").mkdir()
    (root / "seeds" / ESSAY.name).write_bytes(ESSAY.read_bytes())
    (root / "seeds" / "hostile.txt").write_text(HOSTILE_SEED, encoding="utf-8")
    return QAService.open(make_settings(root), FakeEmbedder(), rebuild=True)


# -- path traversal ---------------------------------------------------------------------------

TRAVERSALS = [
    "/documents/../../../etc/passwd",
    "/documents/..%2F..%2F..%2Fetc%2Fpasswd",
    "/documents/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/documents/%252e%252e%252fetc%252fpasswd",
    "/documents/%2Fetc%2Fpasswd",
    "/documents//etc/passwd",
    "/documents/..%5C..%5Cpyproject.toml",
    "/documents/hostile.txt",  # a seed's file name is not its id
    "/documents/seeds%2Fhostile.txt",
    "/documents/hostile?full=true&x=/../../../etc/passwd",  # ok id, harmless query: checked below
    "/passages/..%2F..%2Findex%2Fcurrent%2Fmanifest.json",
    "/passages/%2e%2e%2fmanifest.json",
    "/static/../../pyproject.toml",
    "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/..%5c..%5cpyproject.toml",
]


def test_path_traversal_ids_are_404_over_the_wire(fake_service: QAService) -> None:
    app = create_app(fake_service.settings, service=fake_service)
    with live_server(app) as (_, port):
        for target in TRAVERSALS:
            status, body = raw_get(port, target)
            if target.startswith("/documents/hostile?"):
                assert status == 200 and "root:" not in body  # the id is a real one
                continue
            assert status == 404, (target, status)
            assert json.loads(body)["error"]["code"] == "not_found", target
            for secret in ("root:x:", "[project]", "sha256", "build-system"):
                assert secret not in body, (target, secret)


def test_document_lookup_never_touches_the_file_system(
    fake_service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are keys into the loaded index: looking one up opens no file at all."""

    def no_files(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a document lookup opened a file: {args!r}")

    with TestClient(create_app(fake_service.settings, service=fake_service)) as client:
        monkeypatch.setattr(builtins, "open", no_files)
        monkeypatch.setattr(pathlib.Path, "open", no_files)
        monkeypatch.setattr(pathlib.Path, "read_text", no_files)
        monkeypatch.setattr(pathlib.Path, "read_bytes", no_files)
        for doc_id in ("../../etc/passwd", "/etc/passwd", "..", "hostile.txt"):
            with pytest.raises(NotFoundError):
                fake_service.document(doc_id)
        assert client.get("/documents/hostile", params={"full": "true"}).status_code == 200
        assert_error(client.get("/documents/..%2F..%2Fetc%2Fpasswd"), 404, "not_found")


# -- limits are settings ----------------------------------------------------------------------


class SlowEmbedder(FakeEmbedder):
    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        if texts and texts[0].startswith("slow"):
            time.sleep(1.0)
        return super().encode(texts, batch_size)


def test_request_limits_follow_the_settings(fake_service: QAService) -> None:
    service = QAService(
        fake_service.settings, SlowEmbedder(), fake_service.snapshot, fake_service.options
    )
    default = fake_service.settings
    strict = default.with_overrides(
        max_body_bytes=2048,
        max_question_chars=20,
        max_k=3,
        request_timeout_s=0.2,
    )
    long_question = {"question": "lighthouse keeper log", "k": 2}  # 21 characters
    padded = json.dumps({"question": "lighthouse"}) + " " * 3000
    with (
        TestClient(create_app(default, service=service)) as loose,
        TestClient(create_app(strict, service=service)) as tight,
    ):
        assert loose.post("/ask", json=long_question).status_code == 200
        assert_error(tight.post("/ask", json=long_question), 422, "invalid_request", "20")
        assert tight.post("/ask", json={"question": "lighthouse keeper", "k": 3}).status_code == 200
        assert_error(
            tight.post("/ask", json={"question": "lighthouse", "k": 4}), 422, "invalid_request", "k"
        )
        assert loose.post("/ask", json={"question": "lighthouse", "k": 4}).status_code == 200
        assert_error(
            tight.get("/ask", params={"q": "x" * 21}), 422, "invalid_request", "20 characters"
        )
        headers = {"Content-Type": "application/json"}
        assert loose.post("/ask", content=padded, headers=headers).status_code == 200
        assert_error(tight.post("/ask", content=padded, headers=headers), 413, "payload_too_large")
        assert_error(tight.post("/ask", json={"question": "slow one"}), 504, "timeout")
        assert loose.post("/ask", json={"question": "slow two"}).status_code == 200
        schema = tight.get("/openapi.json").json()
        ask = schema["components"]["schemas"]["AskRequest"]["properties"]
        assert ask["question"]["maxLength"] == 20
        assert 3 in [o.get("maximum") for o in ask["k"].get("anyOf", [ask["k"]])]


def test_limits_are_read_from_the_environment(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("QA_MAX_QUESTION_CHARS", "200")
    monkeypatch.setenv("QA_MAX_K", "7")
    monkeypatch.setenv("QA_REQUEST_TIMEOUT_S", "2.5")
    monkeypatch.setenv("QA_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    settings = Settings()
    assert (settings.max_body_bytes, settings.max_question_chars, settings.max_k) == (4096, 200, 7)
    assert settings.request_timeout_s == 2.5
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


# -- CORS and headers -------------------------------------------------------------------------


def test_cors_is_off_by_default_and_follows_the_origin_list(
    clean_env: None, fake_service: QAService
) -> None:
    assert Settings().cors_origins == []
    origins = ["https://a.example", "https://b.example"]
    configured = fake_service.settings.with_overrides(cors_origins=origins)
    with (
        TestClient(create_app(fake_service.settings, service=fake_service)) as closed,
        TestClient(create_app(configured, service=fake_service)) as open_,
    ):
        for origin in [*origins, "https://evil.example", "null"]:
            response = closed.get("/documents", headers={"Origin": origin})
            assert "access-control-allow-origin" not in response.headers
            preflight = closed.options(
                "/ask", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
            )
            assert "access-control-allow-origin" not in preflight.headers
        for origin in origins:
            allowed = open_.get("/documents", headers={"Origin": origin})
            assert allowed.headers["access-control-allow-origin"] == origin
        for origin in ("https://evil.example", "https://a.example.evil.example", "null"):
            denied = open_.get("/documents", headers={"Origin": origin})
            assert "access-control-allow-origin" not in denied.headers
        # Credentials are never allowed, and the admin token cannot be sent cross-origin.
        preflight = open_.options(
            "/admin/reload",
            headers={
                "Origin": origins[0],
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert "authorization" not in preflight.headers.get("access-control-allow-headers", "")
        assert "access-control-allow-credentials" not in preflight.headers


def test_security_headers_on_the_page_and_the_api(fake_service: QAService) -> None:
    with TestClient(create_app(fake_service.settings, service=fake_service)) as client:
        page = client.get("/")
        csp = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and "unsafe" not in csp
        assert directives["default-src"] == "'none'" and directives["base-uri"] == "'none'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text.replace(
            '<script src="/static/app.js" defer></script>', ""
        )
        for path in ("/ask?q=lighthouse", "/documents", "/no/such/path", "/static/app.js"):
            response = client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["x-frame-options"] == "DENY", path


# -- escaping ---------------------------------------------------------------------------------


def test_api_returns_markup_in_documents_as_plain_text(fake_service: QAService) -> None:
    with TestClient(create_app(fake_service.settings, service=fake_service)) as client:
        answer = client.post(
            "/ask", json={"question": "What did the lighthouse keeper write in the log?", "k": 3}
        )
        assert answer.headers["content-type"] == "application/json"
        texts = [p["text"] for p in answer.json()["passages"]]
        assert any(SCRIPT_TEXT in text for text in texts)  # raw, not escaped or stripped
        doc = client.get("/documents/hostile", params={"full": "true"}).json()
        assert SCRIPT_TEXT in doc["text"] and "<img src=x" in doc["title"]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_markup_in_a_document_shows_literally_and_never_runs(fake_service: QAService) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.helpers import CHROMIUM_ARGS

    question = "What did the lighthouse keeper write in the log?"
    violations: list[str] = []
    with (
        live_server(create_app(fake_service.settings, service=fake_service)) as (base, _),
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/?{httpx.QueryParams({'q': question, 'k': '3', 'low': '1'})}")
            page.wait_for_selector("#passages li")
            passages = page.locator("#passages")
            assert SCRIPT_TEXT in passages.inner_text()  # shown as text
            assert passages.locator("script, img, b").count() == 0  # never parsed as markup
            assert "<img src=x" in page.locator("#passages .citation").first.inner_text()
            page.locator("#passages li").first.get_by_role("button", name="Show in context").click()
            page.locator("#doc-text mark#cited").wait_for()
            assert SCRIPT_TEXT in page.locator("#doc-text").inner_text()
            assert "<img src=x" in page.locator("#doc-title").inner_text()
            assert page.locator("#document script, #document img, #document b").count() == 0
            page.wait_for_timeout(300)  # give any injected handler a chance to fire
            assert page.evaluate("window.__pwned") is None
            assert page.evaluate("document.scripts.length") == 1  # only /static/app.js
        finally:
            browser.close()
    assert violations == [], violations  # not even a CSP report: nothing tried to run


# -- bind address -----------------------------------------------------------------------------


def test_serve_binds_loopback_unless_told_otherwise(
    clean_env: None, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn as uvicorn_module

    from qa.cli.serve import serve

    assert Settings().host == "127.0.0.1"
    monkeypatch.setenv("QA_SEEDS_DIR", str(project / "seeds"))
    monkeypatch.setenv("QA_INDEX_DIR", str(project / "index"))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn_module, "run", lambda app, **kwargs: calls.append(kwargs))
    serve(host=None, port=None)
    serve(host="0.0.0.0", port=9000)
    assert [(c["host"], c["port"]) for c in calls] == [("127.0.0.1", 8000), ("0.0.0.0", 9000)]
    assert all(c["server_header"] is False for c in calls)
