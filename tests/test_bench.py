"""The benchmark harness stays alive: load generator, scaling at 10^4, report and CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import Response
from typer.testing import CliRunner

from qa.bench import report
from qa.bench.loadgen import drive, server_timing_ms
from qa.bench.scaling import measure, recall_at, synthetic
from qa.cli.app import app
from qa.embedding import Embedder
from qa.store.vectors import choose_index_spec, ivf_spec
from tests.helpers import live_server


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A tiny loopback server that answers /ask like the service does."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.post("/ask")
    async def ask(body: dict[str, Any], response: Response) -> dict[str, Any]:
        response.headers["Server-Timing"] = "db;dur=9, app;dur=2.25;desc=whole"
        return {"question": body["question"], "took_ms": 0.5, "passages": []}

    with live_server(api) as (base, _):
        yield f"{base}/ask"


def test_load_generator_counts_every_request(echo_server: str) -> None:
    result = asyncio.run(drive(echo_server, ["a?", "b?"], concurrency=4, requests=30))
    assert result["ok"] == 30
    assert result["errors"] == 0
    assert len(result["latencies_ms"]) == 30
    assert result["server_ms"] == [0.5] * 30
    assert result["server_total_ms"] == [2.25] * 30  # the "app" entry, not "db"
    assert result["throughput_qps"] > 0


def test_floor_times_encoding_plus_search(tmp_path: Path) -> None:
    from qa.bench.floor import WARM_UP, measure
    from qa.store.vectors import FaissVectorStore

    rng = np.random.default_rng(0)
    vectors = synthetic(50, rng)
    FaissVectorStore.build(vectors, "Flat").save(tmp_path)
    asked: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray[Any, Any]:
        asked.append(texts)
        return vectors[: len(texts)]

    latencies = measure(tmp_path, ["a?", "b?", "c?"], 7, encode)
    assert len(latencies) == 7
    assert all(ms > 0 for ms in latencies)
    assert len(asked) == 3 + 7  # the warm-up (at most WARM_UP questions), then one per sample
    assert WARM_UP >= 3
    assert asked[3:] == [["a?"], ["b?"], ["c?"], ["a?"], ["b?"], ["c?"], ["a?"]]


def test_server_timing_parser() -> None:
    assert server_timing_ms("app;dur=12.5") == 12.5
    assert server_timing_ms('cache;desc="hit", app;dur=0.004') == 0.004
    assert server_timing_ms("app") is None  # no duration
    assert server_timing_ms("app;dur=soon") is None
    assert server_timing_ms("") is None


def test_load_generator_refuses_non_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(drive("http://example.com/ask", ["a"], 1, 1))


def test_scaling_path_at_ten_thousand() -> None:
    rng = np.random.default_rng(3)
    real = synthetic(50, rng)
    asked = real[:5] + 0.01 * synthetic(5, rng)
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    row = measure(10_000, real, asked, queries=50, log=lambda _: None)
    assert row.spec == choose_index_spec(10_000)
    assert row.recall_at_10 == pytest.approx(1.0)  # exact at this size
    assert row.memory_mb == pytest.approx(10_000 * 384 * 4 / 2**20, rel=0.01)
    hnsw = measure(2_000, real, asked, queries=50, spec="HNSW16|efSearch=64", log=lambda _: None)
    assert hnsw.recall_at_10 > 0.8
    assert hnsw.real_recall_at_10 > 0.8
    ivf = measure(
        5_000, real, asked, queries=50, spec=ivf_spec(5_000), log=lambda _: None, sweep=True
    )
    assert ivf.spec == "IVF256,SQ8,RFlat|nprobe=16,k_factor_rf=4"
    assert [s["params"] for s in ivf.sweep] == [
        "nprobe=4,k_factor_rf=4",
        "nprobe=8,k_factor_rf=4",
        "nprobe=16,k_factor_rf=4",
        "nprobe=32,k_factor_rf=4",
    ]
    recalls = [s["recall_at_10"] for s in ivf.sweep]
    assert recalls == sorted(recalls)  # probing more lists never loses neighbours
    assert recalls[-1] > 0.9


def test_recall() -> None:
    truth = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    found = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 11, 12]])
    assert recall_at(found, truth) == pytest.approx(0.8)


def _http_results() -> dict[str, Any]:
    def level(c: int, qps: float) -> dict[str, Any]:
        return {
            "concurrency": c,
            "throughput_qps": qps,
            "p50_ms": 10.0 * c,
            "p95_ms": 12.0 * c,
            "p99_ms": 13.0 * c,
            "ok": 10,
            "errors": 0,
            "mean_ms": 10.0,
            "server_p50_ms": 1.0,
        }

    pct = {"p50": 10.0, "p95": 11.0, "p99": 12.0, "mean": 10.0, "n": 10}
    return {
        "floor": pct,
        "single": {
            "naive": pct,
            "service": pct,
            "service_server_ms": pct,
            "service_server_total_ms": {**pct, "p50": 8.0},
        },
        "concurrency": {
            "naive": [level(1, 80.0), level(8, 90.0)],
            "service": [level(1, 85.0), level(8, 250.0)],
        },
        "cold_start": {"service_s": 6.0, "model_load_s": 5.0, "ratio": 1.2},
        "cache": {"hit_server": pct, "miss_server": pct, "hit_client": pct, "miss_client": pct},
        "cache_in_process": pct,
        "index_build_s": 3.0,
        "index": {"passages": 99, "vector_store": "faiss:Flat"},
        "peak_rss_mb": {"naive": 500.0, "service": 600.0, "bench_process": 700.0},
    }


def test_report_writes_json_markdown_and_charts(tmp_path: Path) -> None:
    scaling = [
        {
            "passages": n,
            "spec": "Flat",
            "build_s": 0.01,
            "memory_mb": n * 1.5e-3,
            "bytes_per_vector": 1536.0,
            "search_p50_ms": n * 1e-4,
            "search_p99_ms": n * 2e-4,
            "flat_p50_ms": n * 1e-4,
            "recall_at_10": 1.0,
            "real_recall_at_10": 1.0,
        }
        for n in (1_000, 10_000)
    ]
    written = report.write({"http": _http_results(), "scaling": scaling}, tmp_path)
    assert {p.name for p in written} == {"bench.json", "bench.md", "concurrency.png", "scaling.png"}
    table = (tmp_path / "bench.md").read_text()
    assert "| service | 8 | 250.0 |" in table
    assert "| service, server side only (`Server-Timing`) | 1 | — | 8.0 |" in table
    assert "| 0.80 | — |" in table  # 8.0 / 10.0: server side as a ratio to the floor
    assert "2.78 |" in table  # 250 / 90: throughput as a ratio to the naive peer
    assert "| 10,000 | `Flat` |" in table
    assert json.loads((tmp_path / "bench.json").read_text())["scaling"][1]["passages"] == 10_000


@pytest.mark.slow
def test_bench_cli_scaling_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """`qa bench --no-http` end to end on the essay (real model) at 10^3 passages."""
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("qa.service.load_embedder", lambda settings: embedder)
    result = CliRunner().invoke(
        app, ["bench", "--no-http", "--scaling", "1e3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [r["passages"] for r in data["scaling"]] == [1_000]
    assert all(r["real_recall_at_10"] == pytest.approx(1.0) for r in data["scaling"])
    assert (tmp_path / "scaling.png").stat().st_size > 1000
