"""The MCP server, through the SDK's own client: over stdio (`qa mcp`) and at `/mcp`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.schemas import AskResponse
from qa.service import QAService
from tests.helpers import ESSAY, live_server, make_settings

ESSAY_ID = "china-russia-relations-in-the-age-of-trump"
QUESTION = "Is the Sino-Russian relationship an alliance?"
TOOLS = ["search", "get_passage", "get_document", "list_documents"]


def qa_mcp_command() -> list[str]:
    """The installed `qa` script, else the entry point through this interpreter."""
    import sys

    script = shutil.which("qa")
    return [script] if script else [sys.executable, "-c", "from qa.cli import main; main()"]


def minimal_env() -> dict[str, str]:
    """What an assistant passes a stdio server: the SDK's safe defaults, no QA_* or HF_*.

    PYTHONPATH is kept only when set, so a checkout under test imports its own code.
    """
    env = get_default_environment()
    assert not any(key.startswith(("QA_", "HF_")) for key in env)
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


def citations(passages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["id"], p["citation"]) for p in passages]


async def exercise(client: Client) -> dict[str, Any]:
    """Every tool and the resources, with the answers the tests check."""
    out: dict[str, Any] = {}
    listed = await client.list_tools()
    out["tools"] = {tool.name: tool for tool in listed.tools}
    out["search"] = await client.call_tool("search", {"question": QUESTION, "k": 3})
    scoped = {"question": QUESTION, "k": 2, "documents": [ESSAY_ID]}
    out["scoped"] = await client.call_tool("search", scoped)
    passage_id = out["search"].structured_content["passages"][0]["id"]
    out["passage"] = await client.call_tool("get_passage", {"id": passage_id})
    out["span"] = await client.call_tool("get_document", {"id": ESSAY_ID, "start": 0, "end": 56})
    out["documents"] = await client.call_tool("list_documents", {})
    out["resources"] = (await client.list_resources()).resources
    out["templates"] = (await client.list_resource_templates()).resource_templates
    out["resource"] = await client.read_resource(f"qa://documents/{ESSAY_ID}")
    errors = {
        "empty": ("search", {"question": "  "}),
        "k0": ("search", {"question": QUESTION, "k": 0}),
        "k51": ("search", {"question": QUESTION, "k": 51}),
        "long": ("search", {"question": "x" * 1001}),
        "unknown_doc": ("search", {"question": QUESTION, "documents": ["nope", ESSAY_ID]}),
        "no_docs": ("search", {"question": QUESTION, "documents": []}),
        "unknown_passage": ("get_passage", {"id": "nope"}),
        "unknown_document": ("get_document", {"id": "nope"}),
        "reversed_span": ("get_document", {"id": ESSAY_ID, "start": 9, "end": 3}),
        "negative_start": ("get_document", {"id": ESSAY_ID, "start": -1}),
    }
    for key, (tool, arguments) in errors.items():
        out[key] = await client.call_tool(tool, arguments)
    try:
        await client.read_resource("qa://documents/nope")
    except MCPError as exc:
        out["unknown_resource"] = str(exc)
    return out


EXPECTED_ERRORS = {
    "empty": "question: must not be empty",
    "k0": "k: must be between 1 and 50, got 0",
    "k51": "k: must be between 1 and 50, got 51",
    "long": "question: must be at most 1000 characters, got 1001",
    "unknown_doc": "documents: unknown document id 'nope'",
    "no_docs": "documents: list should have at least 1 item after validation, not 0",
    "unknown_passage": "no passage with id 'nope'",
    "unknown_document": "no document with id 'nope'",
    "reversed_span": f"span [9, 3) is outside document '{ESSAY_ID}' of length 40881",
    "negative_start": "start: input should be greater than or equal to 0",
}


def check_session(out: dict[str, Any], expected: AskResponse) -> None:
    """What both transports must answer, against the in-process service's answer."""
    tools = out["tools"]
    assert sorted(tools) == sorted(TOOLS)
    search = tools["search"]
    assert search.description.startswith("Find the passages that answer a question")
    assert search.input_schema["required"] == ["question"]
    k_schema = search.input_schema["properties"]["k"]
    assert (k_schema["minimum"], k_schema["maximum"], k_schema["default"]) == (1, 50, 5)
    assert search.output_schema == AskResponse.model_json_schema()
    assert all(tool.annotations.read_only_hint for tool in tools.values())

    result = out["search"]
    assert not result.is_error
    structured = AskResponse.model_validate(result.structured_content)
    assert structured.answered is True
    assert citations(result.structured_content["passages"]) == citations(
        expected.model_dump(mode="json")["passages"]
    )
    assert [p.quote for p in structured.passages] == [p.quote for p in expected.passages]
    text = text_of(result)
    first = structured.passages[0]
    assert text.startswith(f"[1] {first.citation.label} (document {ESSAY_ID}, ")
    assert f"passage {first.id})" in text and text.count("\n[") == 2

    scoped = out["scoped"].structured_content
    assert [p["id"] for p in scoped["passages"]] == [p.id for p in expected.passages[:2]]

    passage = out["passage"].structured_content
    assert passage["id"] == first.id and passage["citation"] == first.citation.model_dump()
    assert passage["text"] == first.text
    essay = ESSAY.read_text(encoding="utf-8")
    span = out["span"].structured_content
    assert (span["start"], span["end"], span["text"]) == (0, 56, essay[:56])
    assert span["length"] == len(essay) == 40881
    documents = out["documents"].structured_content["documents"]
    assert [(d["id"], d["uri"]) for d in documents] == [(ESSAY_ID, f"qa://documents/{ESSAY_ID}")]

    assert [(str(r.uri), r.mime_type) for r in out["resources"]] == [
        (f"qa://documents/{ESSAY_ID}", "text/plain")
    ]
    assert [t.uri_template for t in out["templates"]] == ["qa://documents/{doc_id}"]
    assert out["resource"].contents[0].text == essay
    assert out["unknown_resource"] == "no document with id 'nope'"

    for key, message in EXPECTED_ERRORS.items():
        result = out[key]
        assert result.is_error, key
        assert text_of(result) == f"Error executing tool {result_tool(key)}: {message}", key


def result_tool(key: str) -> str:
    if key in ("unknown_passage",):
        return "get_passage"
    if key in ("unknown_document", "reversed_span", "negative_start"):
        return "get_document"
    return "search"


# -- stdio --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_project(
    essay_project: Path, essay_service: QAService, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the essay project with its index already built (no rebuild in the child)."""
    root = tmp_path_factory.mktemp("mcp-project")
    shutil.copytree(essay_project / "seeds", root / "seeds")
    shutil.copytree(essay_project / "index", root / "index", symlinks=True)
    return root


def stdio_session(cwd: Path, *args: str) -> dict[str, Any]:
    params = StdioServerParameters(
        command=qa_mcp_command()[0],
        args=[*qa_mcp_command()[1:], "mcp", *args],
        env=minimal_env(),
        cwd=cwd,
    )

    async def run() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            return await exercise(client)

    return asyncio.run(run())


def test_stdio_session_from_the_project_folder_with_no_settings(
    built_project: Path, essay_service: QAService
) -> None:
    published = (built_project / "index" / "current").resolve()
    out = stdio_session(built_project)
    check_session(out, AskResponse.of(essay_service.ask(QUESTION, k=3)))
    # It served the project's own index, judged current with only default settings.
    assert (built_project / "index" / "current").resolve() == published


def test_stdio_stdout_carries_only_protocol(built_project: Path) -> None:
    """Raw JSON-RPC, no SDK client: every stdout line is a message; the logs are on stderr."""
    import json

    child = subprocess.Popen(
        [*qa_mcp_command(), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=minimal_env(),
        cwd=built_project,
    )
    assert child.stdin is not None and child.stdout is not None
    hello = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    }
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"question": QUESTION, "k": 1}},
        },
    ]
    try:
        lines = []
        for message in messages:
            child.stdin.write(json.dumps(message) + "\n")
            child.stdin.flush()
            if "id" in message:
                lines.append(child.stdout.readline())
        child.stdin.close()
        lines += child.stdout.readlines()  # until the server exits on end of input
        assert child.wait(timeout=60) == 0
        err = child.stderr.read() if child.stderr else ""
    finally:
        child.kill()
    replies = [json.loads(line) for line in lines]  # any stray print would fail here
    assert [r["id"] for r in replies] == [1, 2]
    assert replies[0]["result"]["serverInfo"]["name"] == "qa-cite"
    answer = replies[1]["result"]["structuredContent"]
    assert answer["answered"] is True and len(answer["passages"]) == 1
    assert "qa.mcp: ready: 1 documents" in err


def test_stdio_reports_a_failed_load_as_not_ready(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    async def run() -> list[str]:
        params = StdioServerParameters(
            command=qa_mcp_command()[0],
            args=[*qa_mcp_command()[1:], "mcp", "--project", str(tmp_path / "empty")],
            env=minimal_env(),
            cwd=tmp_path,
        )
        async with Client(params, read_timeout_seconds=120) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            search = await client.call_tool("search", {"question": QUESTION})
            listed = await client.call_tool("list_documents", {})
            return [*tools, text_of(search), text_of(listed), str(search.is_error)]

    *tools, search, listed, is_error = asyncio.run(run())
    assert sorted(tools) == sorted(TOOLS) and is_error == "True"
    missing = f"seeds folder {tmp_path / 'empty' / 'seeds'} does not exist"
    assert (
        search
        == f"Error executing tool search: not ready: the index could not be loaded: {missing}"
    )
    assert listed.endswith(f"not ready: the index could not be loaded: {missing}")


def test_qa_mcp_refuses_a_missing_project_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [*qa_mcp_command(), "mcp", "--project", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=minimal_env(),
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: project folder {tmp_path / 'nowhere'} does not exist"


# -- streamable HTTP ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mcp_server(essay_settings: Settings, essay_service: QAService) -> Iterator[str]:
    settings = essay_settings.model_copy(update={"mcp": True})
    with live_server(create_app(settings, service=essay_service)) as (url, _):
        yield url


def test_http_session_matches_post_ask(mcp_server: str, essay_service: QAService) -> None:
    async def run() -> dict[str, Any]:
        async with Client(f"{mcp_server}/mcp") as client:
            return await exercise(client)

    out = asyncio.run(run())
    asked = httpx.post(f"{mcp_server}/ask", json={"question": QUESTION, "k": 3}, timeout=30)
    assert asked.status_code == 200
    check_session(out, AskResponse.model_validate(asked.json()))
    assert citations(out["search"].structured_content["passages"]) == citations(
        asked.json()["passages"]
    )


def test_mcp_is_off_unless_enabled(essay_settings: Settings, essay_service: QAService) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(essay_settings, service=essay_service)) as client:
        response = client.post("/mcp", json={})
        assert response.status_code == 404
        assert client.get("/redoc").status_code == 404  # dropped: ReDoc needs a CDN
        assert client.get("/docs").status_code == 200


def test_http_mcp_before_the_index_is_ready(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(settings: Settings, embedder: Embedder | None) -> QAService:
        release.wait(30)
        raise RuntimeError("released")

    settings = make_settings(tmp_path, mcp=True)
    app = create_app(settings, service_factory=slow)

    async def run(url: str) -> list[Any]:
        async with Client(f"{url}/mcp") as client:
            search = await client.call_tool("search", {"question": QUESTION})
            passage = await client.call_tool("get_passage", {"id": "x"})
            resources = (await client.list_resources()).resources
            return [search, passage, resources]

    try:
        with live_server(app) as (url, _):
            search, passage, resources = asyncio.run(run(url))
    finally:
        release.set()
    loading = "not ready: the index and model are still loading; retry shortly"
    assert search.is_error and text_of(search) == f"Error executing tool search: {loading}"
    assert text_of(passage) == f"Error executing tool get_passage: {loading}"
    assert resources == []


def test_http_mcp_requires_the_admin_token_when_set(
    essay_settings: Settings, essay_service: QAService
) -> None:
    settings = essay_settings.model_copy(update={"mcp": True, "admin_token": "s3cret"})

    async def run(url: str, token: str | None) -> list[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            return [t.name for t in (await client.list_tools()).tools]

    with live_server(create_app(settings, service=essay_service)) as (url, _):
        assert sorted(asyncio.run(run(url, "s3cret"))) == sorted(TOOLS)
        for token in (None, "wrong"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = httpx.post(
                f"{url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={**headers, "Accept": "application/json, text/event-stream"},
            )
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {
                "error": {
                    "code": "unauthorized",
                    "message": "MCP needs Authorization: Bearer <QA_ADMIN_TOKEN>",
                }
            }
