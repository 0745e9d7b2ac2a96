"""The load generator: a separate process that drives an HTTP endpoint with N clients.

Run as ``python -m qa.bench.loadgen URL QUESTIONS_JSON CONCURRENCY REQUESTS``; it
prints one JSON object. Each client is an asyncio task on one shared httpx
connection pool; the run is bounded by a request count and a time limit, and
only loopback URLs are accepted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def server_timing_ms(header: str, metric: str = "app") -> float | None:
    """The ``dur`` of ``metric`` in a ``Server-Timing`` header, in milliseconds."""
    for entry in header.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        if name != metric:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "dur":
                try:
                    return float(value)
                except ValueError:
                    return None
    return None


async def drive(
    url: str, questions: list[str], concurrency: int, requests: int, time_limit_s: float = 120.0
) -> dict[str, Any]:
    """Send ``requests`` POSTs (questions cycled) from ``concurrency`` clients; time each."""
    import httpx

    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")
    latencies: list[float] = []
    server_ms: list[float] = []
    server_total_ms: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.perf_counter() + time_limit_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for number in counter:
            if time.perf_counter() > deadline:
                return
            body = {"question": questions[number % len(questions)]}
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                latencies.append(elapsed)
                took = response.json().get("took_ms")
                if isinstance(took, int | float):
                    server_ms.append(float(took))
                total = server_timing_ms(response.headers.get("server-timing", ""))
                if total is not None:
                    server_total_ms.append(total)
            else:
                errors += 1

    async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "throughput_qps": len(latencies) / wall if wall > 0 else 0.0,
        "latencies_ms": latencies,
        "server_ms": server_ms,
        "server_total_ms": server_total_ms,
    }


def main(argv: list[str]) -> None:
    url, questions_path, concurrency, requests = argv[:4]
    questions = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    result = asyncio.run(drive(url, questions, int(concurrency), int(requests)))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
