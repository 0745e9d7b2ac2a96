"""Load (opt-in, ``pytest -m load -s``): the real ``qa serve`` under 64 concurrent clients.

For 60 s every client sends a mix of valid questions and invalid requests. Expected:
no 5xx, no connection errors, each invalid request refused with its documented
status, and every valid answer identical (same passages, same order) to the
answer a single client got for that question before the load, since batching
must never mix up results. The answer cache is off, so every valid question
really goes through the micro-batcher and the model.

``LOAD_SECONDS`` and ``LOAD_CLIENTS`` change the duration and concurrency. The
figures are printed and written to ``test-artifacts/load-report.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.service import QAService
from tests.helpers import (
    free_port,
    project_env,
    qa_command,
    stop_process,
    wait_until_ready,
)

pytestmark = [pytest.mark.load, pytest.mark.model]  # `qa serve` in a subprocess

SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "64"))
VALID_SHARE = 0.75
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@dataclass(frozen=True, slots=True)
class Invalid:
    """A request the server must refuse with ``status``."""

    name: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None


INVALID = [
    Invalid("blank question", "POST", "/ask", 422, json={"question": "   "}),
    Invalid("k zero", "POST", "/ask", 422, json={"question": "alliance", "k": 0}),
    Invalid("k too big", "POST", "/ask", 422, json={"question": "alliance", "k": 999}),
    Invalid("k a string", "POST", "/ask", 422, json={"question": "alliance", "k": "5"}),
    Invalid("unknown field", "POST", "/ask", 422, json={"question": "alliance", "x": 1}),
    Invalid("too long", "POST", "/ask", 422, json={"question": "why " * 300}),
    Invalid("malformed JSON", "POST", "/ask", 400, content=b'{"question": '),
    Invalid("lone surrogate", "POST", "/ask", 422, content=b'{"question": "a \\ud800 b"}'),
    Invalid("GET blank", "GET", "/ask", 422, params={"q": " "}),
    Invalid("body too large", "POST", "/ask", 413, content=b" " * 70_000),
    Invalid("unknown passage", "GET", "/passages/nope", 404),
    Invalid("traversal", "GET", "/documents/..%2F..%2Fetc%2Fpasswd", 404),
    Invalid("bad span", "GET", "/documents/{doc}", 422, params={"start": "5", "end": "1"}),
    Invalid("wrong method", "DELETE", "/ask", 405),
    Invalid("admin off", "POST", "/admin/reload", 404),
]


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    valid: int = 0
    invalid: int = 0
    mismatches: list[str] = field(default_factory=list)
    wrong_status: list[str] = field(default_factory=list)
    connection_errors: list[str] = field(default_factory=list)


@pytest.fixture
def load_server(
    tmp_path: Path, essay_project: Path, essay_service: QAService
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    root = tmp_path / "project"
    shutil.copytree(essay_project / "seeds", root / "seeds")
    shutil.copytree(essay_project / "index", root / "index", symlinks=True)
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = project_env(root, QA_AUTO_REBUILD="false", QA_CACHE_SIZE="0", QA_LOG_LEVEL="WARNING")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*qa_command(), "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            yield f"http://127.0.0.1:{port}", process, log_path
        finally:
            stop_process(process, timeout=30)


def _ids(body: dict[str, Any]) -> list[str]:
    return [p["id"] for p in body["passages"]]


async def _client(
    base: str,
    seed: int,
    deadline: float,
    questions: list[str],
    expected: dict[str, list[str]],
    doc_id: str,
    tally: Tally,
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                if rng.random() < VALID_SHARE:
                    question = rng.choice(questions)
                    response = await client.post("/ask", json={"question": question, "k": 5})
                    tally.valid += 1
                    if response.status_code != 200:
                        tally.wrong_status.append(f"valid {question!r}: {response.status_code}")
                    elif _ids(response.json()) != expected[question]:
                        tally.mismatches.append(question)
                else:
                    bad = rng.choice(INVALID)
                    response = await client.request(
                        bad.method,
                        bad.path.replace("{doc}", doc_id),
                        json=bad.json,
                        content=bad.content,
                        params=bad.params,
                        headers={"Content-Type": "application/json"} if bad.content else None,
                    )
                    tally.invalid += 1
                    if response.status_code != bad.status:
                        tally.wrong_status.append(f"{bad.name}: {response.status_code}")
            except httpx.TransportError as exc:
                tally.connection_errors.append(f"{exc.__class__.__name__}: {exc}")
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[response.status_code] += 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def test_64_clients_for_60_seconds(
    load_server: tuple[str, subprocess.Popen[bytes], Path],
    labelled_questions: list[dict[str, object]],
) -> None:
    base, process, log = load_server
    wait_until_ready(base, process, log)
    questions = [str(q["question"]) for q in labelled_questions][:24]
    with httpx.Client(base_url=base, timeout=60) as single:  # the single-client answers
        expected = {
            q: _ids(single.post("/ask", json={"question": q, "k": 5}).json()) for q in questions
        }
        doc_id = single.get("/documents").json()["documents"][0]["id"]

    tally = Tally()

    async def run() -> float:
        started = time.monotonic()
        deadline = started + SECONDS
        await asyncio.gather(
            *(
                _client(base, n, deadline, questions, expected, doc_id, tally)
                for n in range(CLIENTS)
            )
        )
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    done = len(tally.latencies)
    report = {
        "clients": CLIENTS,
        "seconds": round(elapsed, 1),
        "requests": done,
        "throughput_rps": round(done / elapsed, 1),
        "valid": tally.valid,
        "invalid": tally.invalid,
        "valid_throughput_rps": round(tally.valid / elapsed, 1),
        "p50_ms": round(_percentile(tally.latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(tally.latencies, 0.99) * 1000, 1),
        "max_ms": round(max(tally.latencies, default=0) * 1000, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": sum(n for s, n in tally.statuses.items() if s >= 500),
        "connection_errors": len(tally.connection_errors),
        "mismatched_answers": len(tally.mismatches),
        "wrong_status": len(tally.wrong_status),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\nload test:", json.dumps(report, indent=2))
    assert process.poll() is None, "the server died under load"
    assert report["server_errors"] == 0, tally.statuses
    assert tally.connection_errors == [], Counter(tally.connection_errors).most_common(5)
    assert tally.wrong_status == [], Counter(tally.wrong_status).most_common(5)
    assert tally.mismatches == [], Counter(tally.mismatches).most_common(5)
    assert tally.valid > 0 and tally.invalid > 0
