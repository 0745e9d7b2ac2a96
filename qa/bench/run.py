"""One benchmark run: floor, naive peer and service side by side, then scaling.

Every figure is also reported as a ratio to a reference measured in the same
run, because the machine is shared and absolute numbers drift from minute to
minute. Rounds are interleaved (floor, naive, service, floor, ...) for the same
reason.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.bench import servers
from qa.bench.stats import percentiles, self_peak_rss_mb
from qa.config import Settings

Log = Callable[[str], None]


@dataclass
class BenchConfig:
    out: Path
    questions_path: Path
    seeds_dir: Path
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    single_requests: int = 60  # per round, single client
    rounds: int = 3
    requests_per_client: int = 6  # at concurrency c: max(60, c * this)
    cold_starts: int = 2
    scaling: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    http: bool = True
    torch_threads: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


def load_question_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    lat = percentiles(run["latencies_ms"])
    return {
        "concurrency": run["concurrency"],
        "ok": run["ok"],
        "errors": run["errors"],
        "throughput_qps": run["throughput_qps"],
        **{f"{key}_ms": value for key, value in lat.items() if key != "n"},
        "server_p50_ms": percentiles(run.get("server_ms", []))["p50"],
    }


def run_http(config: BenchConfig, settings: Settings, log: Log) -> dict[str, Any]:
    from qa.indexing import build_index
    from qa.service import load_embedder

    questions = load_question_texts(config.questions_path)
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    results: dict[str, Any] = {}
    try:
        qfile = work / "questions.json"
        qfile.write_text(json.dumps(questions), encoding="utf-8")
        index_dir = work / "index"
        bench_settings = settings.with_overrides(
            index_dir=index_dir, torch_threads=config.torch_threads
        )
        embedder = load_embedder(bench_settings)

        started = time.perf_counter()
        built = build_index(bench_settings, embedder)
        results["index_build_s"] = time.perf_counter() - started
        assert built.folder is not None  # the bench builds a FAISS index
        build = built.folder
        results["index"] = {
            "passages": built.manifest.passages,
            "vector_store": built.manifest.vector_store,
        }
        log(f"essay index built in {results['index_build_s']:.1f}s: {results['index']}")
        results["cache_in_process"] = cache_in_process(bench_settings, embedder, questions)

        env = {
            "QA_SEEDS_DIR": str(config.seeds_dir.resolve()),
            "QA_INDEX_DIR": str(index_dir),
            "QA_AUTO_REBUILD": "false",
            "QA_LOG_LEVEL": "WARNING",
            "QA_TORCH_THREADS": str(config.torch_threads),
            # The servers must see the index as current even if the defaults change
            # under us (a shared working tree): pass what the index was built with.
            "QA_CHUNK_TOKENS": str(bench_settings.chunk_tokens),
            "QA_OVERLAP": str(bench_settings.overlap),
            "QA_ENCODING": bench_settings.encoding,
            "QA_MODEL": bench_settings.model,
            "QA_ENCODER_BACKEND": bench_settings.encoder_backend,
            "QA_CACHE_DIR": str(bench_settings.cache_dir.resolve()),
            **config.extra_env,
        }
        logfile = config.out / "servers.log"

        # Cold start: process start -> first answered request, against the model alone.
        refs, colds = [], []
        for attempt in range(config.cold_starts):
            refs.append(servers.model_load_reference())
            server = servers.start_service(env, logfile)
            with servers.running(server):
                colds.append(servers.wait_answered(server, questions[0]))
                if attempt == 0:
                    results["cache"] = _cache_hits(server, questions, qfile)
            log(f"cold start {colds[-1]:.2f}s vs model alone {refs[-1]:.2f}s")
        results["cold_start"] = {
            "service_s": sorted(colds)[len(colds) // 2],
            "model_load_s": sorted(refs)[len(refs) // 2],
            "all_service_s": colds,
            "all_model_load_s": refs,
        }
        results["cold_start"]["ratio"] = (
            results["cold_start"]["service_s"] / results["cold_start"]["model_load_s"]
        )

        # Throughput and latency, cache off so that batching (not memory) is measured.
        naive = servers.start_naive(build, logfile)
        service = servers.start_service({**env, "QA_CACHE_SIZE": "0"}, logfile)
        with servers.running(naive), servers.running(service):
            servers.wait_answered(naive, questions[0])
            servers.wait_answered(service, questions[0])
            for server in (naive, service):  # warm up both
                servers.load(server.url, qfile, 4, 40)
            floor_ms: list[float] = []
            single: dict[str, list[float]] = {"naive": [], "service": []}
            single_server: list[float] = []
            single_server_total: list[float] = []
            for round_ in range(config.rounds):
                floor_ms += servers.floor(
                    build,
                    qfile,
                    config.single_requests,
                    bench_settings.model,
                    bench_settings.encoder_backend,
                    config.torch_threads,
                    bench_settings.cache_dir.resolve(),
                )
                for server in (naive, service):
                    run = servers.load(server.url, qfile, 1, config.single_requests)
                    single[server.name] += run["latencies_ms"]
                    if server is service:
                        single_server += run["server_ms"]
                        single_server_total += run["server_total_ms"]
                log(f"single-client round {round_ + 1}/{config.rounds} done")
            results["floor"] = percentiles(floor_ms)
            results["single"] = {name: percentiles(lat) for name, lat in single.items()}
            results["single"]["service_server_ms"] = percentiles(single_server)
            results["single"]["service_server_total_ms"] = percentiles(single_server_total)
            levels: dict[str, list[dict[str, Any]]] = {"naive": [], "service": []}
            for clients in config.concurrency:
                requests = max(60, clients * config.requests_per_client)
                for server in (naive, service):
                    summary = _summary(servers.load(server.url, qfile, clients, requests))
                    levels[server.name].append(summary)
                    log(
                        f"{server.name} c={clients}: {summary['throughput_qps']:.1f} q/s, "
                        f"p50 {summary['p50_ms']:.1f} ms"
                    )
            results["concurrency"] = levels
            results["peak_rss_mb"] = {
                "naive": naive.peak_rss_mb(),
                "service": service.peak_rss_mb(),
                "bench_process": self_peak_rss_mb(),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _cache_hits(server: servers.Server, questions: list[str], qfile: Path) -> dict[str, Any]:
    """Ask every question twice on a cache-enabled server: misses first, then hits."""
    miss = servers.load(server.url, qfile, 1, len(questions))
    hit = servers.load(server.url, qfile, 1, 3 * len(questions))
    return {
        "miss_client": percentiles(miss["latencies_ms"]),
        "miss_server": percentiles(miss["server_ms"]),
        "hit_client": percentiles(hit["latencies_ms"]),
        "hit_server": percentiles(hit["server_ms"]),
    }


def cache_in_process(settings: Settings, embedder: Any, questions: list[str]) -> dict[str, Any]:
    """Server-side cost of a cache hit without HTTP: validate, key, look up, copy."""
    import asyncio

    from qa.batching import FastAsk
    from qa.cache import AnswerCache
    from qa.service import QAService

    service = QAService.open(settings, embedder, rebuild=False)
    fast = FastAsk(service, AnswerCache(1024))

    async def main() -> list[float]:
        out = []
        for question in questions:
            await fast.ask(question)
        for _ in range(5):
            for question in questions:
                started = time.perf_counter()
                await fast.ask(question)
                out.append((time.perf_counter() - started) * 1000)
        await fast.close()
        return out

    return percentiles(asyncio.run(main()))


def run_scaling(config: BenchConfig, settings: Settings, log: Log) -> list[dict[str, Any]]:
    from qa.bench.scaling import measure, real_sample
    from qa.indexing.seeds import load_documents
    from qa.service import load_embedder

    embedder = load_embedder(settings)
    docs = load_documents(settings.seeds_dir, settings.project_root)
    sentences = [s for d in docs for s in _sentences(d.text)]
    corpus, asked = real_sample(embedder, sentences, load_question_texts(config.questions_path))
    rows = []
    for n in config.scaling:
        rows.append(asdict(measure(n, corpus, asked, log=log, sweep=True)))
        (config.out / "scaling.partial.json").write_text(json.dumps(rows, indent=2))
    return rows


def _sentences(text: str) -> list[str]:
    """Lines and sentences of the essay, as many distinct real texts as it offers."""
    import re

    parts = (p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text))
    return list(dict.fromkeys(p for p in parts if len(p) > 20))
