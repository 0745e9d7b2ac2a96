"""`qa serve` as a real process: start it on a free port, wait until ready, ask over HTTP."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from qa.service import QAService
from tests.helpers import free_port, project_env, qa_command, stop_process, wait_until_ready

QUESTION = "Is the Sino-Russian relationship an alliance?"


@pytest.fixture
def server(
    essay_project: Path, essay_service: QAService, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`qa serve` over the essay index the session already built (rebuilding is off)."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*qa_command(), "serve", "--port", str(port)],
            env=project_env(essay_project, QA_AUTO_REBUILD="false"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", process, log_path
        finally:
            stop_process(process)


@pytest.mark.slow
def test_qa_serve_answers_over_http(
    server: tuple[str, subprocess.Popen[bytes], Path], essay_settings: Settings
) -> None:
    base, process, log = server
    wait_until_ready(base, process, log)
    with httpx.Client(base_url=base, timeout=30) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["stale"] is False
        response = client.post(
            "/ask", json={"question": QUESTION, "k": 2}, headers={"X-Request-ID": "serve-test-1"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "serve-test-1"
        body = response.json()
        assert body["answered"] is True and len(body["passages"]) == 2
        doc_id = body["passages"][0]["citation"]["doc_id"]
        quote = body["passages"][0]["quote"]
        span = client.get(
            f"/documents/{doc_id}", params={"start": quote["start"], "end": quote["end"]}
        )
        assert span.json()["span"]["text"] == quote["text"]
        bad = client.post("/ask", json={"question": "  "})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert "qa_passages_served_total 2.0" in client.get("/metrics").text
        assert client.get("/").headers["content-security-policy"]
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    text = log.read_text(errors="replace")
    assert "Application shutdown complete" in text
    assert "serve-test-1 POST /ask 200" in text
    assert "Uvicorn running on http://127.0.0.1:" in text  # the default bind is loopback


def test_qa_serve_refuses_a_stale_index_when_rebuilding_is_off(project: Path) -> None:
    """No index and QA_AUTO_REBUILD=false: a clear one-line error, exit 2, no server."""
    result = subprocess.run(
        [*qa_command(), "serve", "--port", str(free_port())],
        env=project_env(project, QA_AUTO_REBUILD="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: the index cannot be served")
    assert "qa index" in result.stderr
    assert "Traceback" not in result.stderr


def test_qa_serve_rejects_a_bad_port() -> None:
    result = subprocess.run(
        [*qa_command(), "serve", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "65535" in result.stderr
