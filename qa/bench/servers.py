"""Start, probe and stop the servers under test, each in its own process on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.bench.stats import peak_rss_mb

HOST = "127.0.0.1"
SERVE = "from qa.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    started_at: float
    ready_s: float = float("nan")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/ask"

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    )
    env.update(extra)
    return env


def start_service(env: dict[str, str], log: Path) -> Server:
    """``qa serve`` as a user would run it, with ``QA_*`` settings from ``env``."""
    port = free_port()
    started = time.perf_counter()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--host", HOST, "--port", str(port)],
            env=_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server("service", process, port, started)


def start_naive(build: Path, log: Path) -> Server:
    port = free_port()
    started = time.perf_counter()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.bench.naive", str(build), str(port)],
            env=_env({}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server("naive", process, port, started)


def wait_answered(server: Server, question: str, timeout_s: float = 300.0) -> float:
    """Poll until the first 200 from ``/ask``; seconds since the process started."""
    import httpx

    deadline = time.perf_counter() + timeout_s
    with httpx.Client(timeout=30.0) as http:
        while time.perf_counter() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if http.post(server.url, json={"question": question}).status_code == 200:
                    server.ready_s = time.perf_counter() - server.started_at
                    return server.ready_s
            time.sleep(0.02)
    raise TimeoutError(f"{server.name} did not answer within {timeout_s:.0f}s")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop(server)


def _run_module(module: str, *args: object) -> Any:
    """``python -m module args...`` in a process of its own; its stdout, parsed as JSON."""
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        env=_env({}),
        capture_output=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def load(url: str, questions_file: Path, concurrency: int, requests: int) -> dict[str, Any]:
    """One load-generator run in its own process (so it does not share our GIL)."""
    result: dict[str, Any] = _run_module(
        "qa.bench.loadgen", url, questions_file, concurrency, requests
    )
    return result


def floor(
    build: Path,
    questions_file: Path,
    count: int,
    model: str,
    backend: str,
    threads: int,
    cache_dir: Path,
) -> list[float]:
    """The floor's latencies, measured in a fresh process (see ``qa.bench.floor``)."""
    latencies: list[float] = _run_module(
        "qa.bench.floor", build, questions_file, count, model, backend, threads, cache_dir
    )
    return latencies


def model_load_reference() -> float:
    """Seconds for a fresh process to import the libraries and load the model, nothing else."""
    code = "from qa.embedding import SentenceTransformerEmbedder; SentenceTransformerEmbedder()"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=_env({}), check=True, capture_output=True)
    return time.perf_counter() - started
