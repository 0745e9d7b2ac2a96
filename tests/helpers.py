"""Helpers shared by the test modules (which never import from each other).

Paths to the bundled seeds, a settings factory, a tiny fake embedder for tests that
are not about the model, and helpers for running `qa` as a process or a server.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from qa.config import Settings
from qa.embedding import Embedder, Vectors
from qa.service import QAService
from qa.store.faiss.checkpoints import CheckpointStore
from qa.store.manifest import ChunkingEntry

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
ESSAY = SEEDS / "china-russia-relations-in-the-age-of-trump.txt"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_WORD = re.compile(r"\w+")


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings rooted in a temporary project folder, ignoring the caller's QA_* env."""
    values: dict[str, object] = {
        "seeds_dir": root / "seeds",
        "index_dir": root / "index",
        "cache_dir": root / ".cache",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class FakeEmbedder:
    """Hashed bag of words: texts sharing words get similar unit vectors."""

    def __init__(self, dim: int = 64, max_seq_length: int = 256, model_id: str = "fake") -> None:
        self._dim = dim
        self._max = max_seq_length
        self._id = model_id

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def weights_hash(self) -> str:
        return hashlib.sha256(self._id.encode()).hexdigest()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return self._max

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


class ReplayEmbedder:
    """The real model, answering texts already embedded for the FAISS index from its
    checkpoints: the Milvus build then costs no model time and gets the very same
    vectors, so the comparison is about the backends, not about embedding twice."""

    def __init__(self, real: Embedder, known: dict[str, Vectors]) -> None:
        self._real = real
        self._known = known
        self.model_id, self.weights_hash = real.model_id, real.weights_hash
        self.dim, self.max_seq_length = real.dim, real.max_seq_length
        self.count_tokens = real.count_tokens

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        if all(t in self._known for t in texts):
            return np.stack([self._known[t] for t in texts]).astype(np.float32)
        return self._real.encode(texts, batch_size)


def known_vectors(faiss_service: QAService, embedder: Embedder) -> dict[str, Vectors]:
    """Text -> vector for everything the FAISS index embedded, from its checkpoints."""
    from qa.indexing.pipeline import model_entry
    from qa.indexing.seeds import scan_seeds

    settings = faiss_service.settings
    chunking = ChunkingEntry.of(settings.chunking)
    store = CheckpointStore(settings.index_dir, model_entry(embedder), chunking)
    known: dict[str, Vectors] = {}
    for seed in scan_seeds(settings.seeds_dir, settings.project_root):
        doc = store.read(faiss_service.document(seed.doc_id))
        for p, v in zip(doc.passages, doc.passage_vectors, strict=True):
            known[p.embedding_text] = v
        for s, v in zip(doc.sentences, doc.sentence_vectors, strict=True):
            known[doc.info.text[s.start : s.end]] = v
    return known


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def qa_command() -> list[str]:
    """The installed `qa` script, or the same entry point through this interpreter."""
    script = shutil.which("qa")
    return [script] if script else [sys.executable, "-c", "from qa.cli import main; main()"]


def project_env(root: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QA_")}
    env.update(
        QA_SEEDS_DIR=str(root / "seeds"),
        QA_INDEX_DIR=str(root / "index"),
        QA_CACHE_DIR=str(root / ".cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **extra,
    )
    return env


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it is not gone within ``timeout`` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until /readyz says 200; /healthz must answer as soon as the port is open."""
    started = time.monotonic()
    while time.monotonic() - started < 120:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            ready = httpx.get(f"{base}/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if ready.status_code == 200:
            return time.monotonic() - started
        assert ready.status_code == 503 and ready.headers["retry-after"]
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        time.sleep(0.2)
    raise AssertionError("qa serve did not become ready in 120 s:\n" + log.read_text())


@contextmanager
def live_server(app: Any) -> Iterator[tuple[str, int]]:
    """uvicorn in a thread on a free loopback port: requests really go over HTTP."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Response(Protocol):
    """What the tests read from a response (TestClient's and httpx's alike)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Any: ...

    def json(self) -> Any: ...


def assert_error(response: Response, status: int, code: str, *in_message: str) -> str:
    """The one error shape: status, code, a message naming the problem, no trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    for part in in_message:
        assert part in message, message
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert response.headers.get("x-request-id")
    return message
