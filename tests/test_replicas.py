"""Stateless replicas: two `qa serve` processes over one Milvus, nothing local but seeds/.

Milvus Lite takes an exclusive lock on its data folder, so two processes cannot open
the same ``.db`` file. Replicas therefore share one Milvus Lite *server* process
(``milvus-lite server``), reached as ``milvus://127.0.0.1:PORT`` — the same URI form
as a Milvus standalone or cluster in production.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import VectorStoreUnavailableError
from qa.indexing import build_index, published_manifest
from qa.service import QAService
from tests.helpers import (
    ESSAY,
    ReplayEmbedder,
    free_port,
    known_vectors,
    make_settings,
    project_env,
    qa_command,
    stop_process,
    wait_until_ready,
)

QUESTIONS = [
    "Is the Sino-Russian relationship an alliance?",
    "What are the drivers of Sino-Russian cooperation?",
    "Did relations with China improve while Yeltsin was president?",
]
NEW_DOC = "Arctic shipping\n\nThe Northern Sea Route lets Chinese cargo ships reach Europe.\n"


def test_a_milvus_lite_file_is_locked_to_one_process(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, vector_store=f"milvus://{tmp_path / 'lite.db'}")
    from qa.store.milvus.store import connect

    holder = connect(settings.vector_store)  # this process now holds the data folder
    try:
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from qa.store.milvus.store import connect; connect(sys.argv[1])",
                settings.vector_store,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert probe.returncode != 0
    assert VectorStoreUnavailableError.__name__ in probe.stderr
    assert "milvus-lite server" in probe.stderr  # the message says what to do instead


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """A Milvus Lite server process: what replicas share instead of a locked file."""
    port = free_port()
    log = (tmp_path / "milvus.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(tmp_path / "shared.db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "milvus.log").read_text()
            try:
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()


def start_replica(root: Path, name: str, store: str) -> tuple[str, subprocess.Popen[bytes], Path]:
    """`qa serve` with its own, empty index folder: everything comes from Milvus."""
    port = free_port()
    log = root / f"{name}.log"
    env = project_env(root, QA_AUTO_REBUILD="false", QA_VECTOR_STORE=store)
    # No seeds and an index folder that is never created: all state is in Milvus.
    env["QA_INDEX_DIR"] = str(root / f"{name}-index")
    env["QA_SEEDS_DIR"] = str(root / f"{name}-no-seeds")
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*qa_command(), "serve", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return f"http://127.0.0.1:{port}", process, log


def answers(base: str) -> list[dict[str, Any]]:
    out = []
    for question in QUESTIONS:
        response = httpx.post(f"{base}/ask", json={"question": question, "k": 5}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        body.pop("took_ms")
        out.append(body)
    return out


@pytest.mark.slow
def test_two_replicas_answer_identically_and_survive_each_others_reload(
    tmp_path: Path, milvus_server: str, essay_service: QAService, embedder: Embedder
) -> None:
    (tmp_path / "seeds").mkdir()
    shutil.copy(ESSAY, tmp_path / "seeds" / ESSAY.name)
    settings: Settings = make_settings(tmp_path, vector_store=milvus_server)
    replay = ReplayEmbedder(embedder, known_vectors(essay_service, embedder))
    build_index(settings, replay)

    a = start_replica(tmp_path, "a", milvus_server)
    b = start_replica(tmp_path, "b", milvus_server)
    try:
        for base, process, log in (a, b):
            wait_until_ready(base, process, log)
        first = answers(a[0])
        assert first == answers(b[0])  # any replica answers any question identically
        assert all(body["answered"] for body in first)
        for base, _, _ in (a, b):
            ready = httpx.get(f"{base}/readyz", timeout=30).json()
            assert ready["stale"] is False, ready
        assert not any(tmp_path.glob("a-*")) and not any(tmp_path.glob("b-*"))

        # Add a document to the shared index while both serve, then reload replica A only.
        (tmp_path / "seeds" / "arctic.txt").write_text(NEW_DOC, encoding="utf-8")
        summary = build_index(settings, replay)
        assert (summary.added, summary.embedded) == (1, 1)
        stop_process(a[1])
        a = start_replica(tmp_path, "a2", milvus_server)
        wait_until_ready(a[0], a[1], a[2])
        # B keeps answering from the view it loaded, and knows a newer index exists.
        assert answers(b[0]) == first
        stale = httpx.get(f"{b[0]}/readyz", timeout=30).json()
        assert stale["stale"] is True and stale["documents"] == 1
        fresh = httpx.get(f"{a[0]}/readyz", timeout=30).json()
        assert fresh["documents"] == 2 and fresh["stale"] is False
        question = {"question": "Which sea route do Chinese cargo ships take to Europe?"}
        cited = httpx.post(f"{a[0]}/ask", json=question, timeout=60).json()
        assert cited["passages"][0]["citation"]["doc_id"] == "arctic"
        old_view = httpx.post(f"{b[0]}/ask", json=question, timeout=60)
        assert old_view.status_code == 200
        assert all(p["citation"]["doc_id"] != "arctic" for p in old_view.json()["passages"])
        # After its own reload, B agrees with A again.
        stop_process(b[1])
        b = start_replica(tmp_path, "b2", milvus_server)
        wait_until_ready(b[0], b[1], b[2])
        assert answers(a[0]) == answers(b[0])
        assert published_manifest(settings).documents.keys() == {"arctic", ESSAY.stem.lower()}
    finally:
        stop_process(a[1])
        stop_process(b[1])
