"""Write a run's results: bench.json, bench.md (the tables) and PNG charts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _f(value: float, digits: int = 1) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = [f"Run {results.get('started', '')} on {results.get('machine', '')}.", ""]
    http = results.get("http")
    if http:
        floor = http["floor"]["p50"]
        lines += [
            "| path | clients | throughput (q/s) | p50 ms | p95 ms | p99 ms | p50 / floor p50 | "
            "throughput / naive |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            f"| floor (bare model + FAISS, own process) | 1 | {_f(1000 / floor)} | {_f(floor)} | "
            f"{_f(http['floor']['p95'])} | {_f(http['floor']['p99'])} | 1.00 | — |",
        ]
        for name in ("naive", "service"):
            s = http["single"][name]
            lines.append(
                f"| {name} (single client, {s['n']} req) | 1 | {_f(1000 / s['mean'])} | "
                f"{_f(s['p50'])} | {_f(s['p95'])} | {_f(s['p99'])} | {s['p50'] / floor:.2f} | — |"
            )
        inside = http["single"].get("service_server_total_ms")
        if inside and inside.get("n"):
            lines.append(
                f"| service, server side only (`Server-Timing`) | 1 | — | {_f(inside['p50'])} | "
                f"{_f(inside['p95'])} | {_f(inside['p99'])} | {inside['p50'] / floor:.2f} | — |"
            )
        naive = {row["concurrency"]: row for row in http["concurrency"]["naive"]}
        for name in ("naive", "service"):
            for row in http["concurrency"][name]:
                base = naive[row["concurrency"]]["throughput_qps"]
                lines.append(
                    f"| {name} | {row['concurrency']} | {_f(row['throughput_qps'])} | "
                    f"{_f(row['p50_ms'])} | {_f(row['p95_ms'])} | {_f(row['p99_ms'])} | "
                    f"{row['p50_ms'] / floor:.2f} | {row['throughput_qps'] / base:.2f} |"
                )
        cold = http["cold_start"]
        cache = http["cache"]
        inproc = http["cache_in_process"]
        rss = http["peak_rss_mb"]
        lines += [
            "",
            "| measure | value | reference (same run) | ratio |",
            "|---|---:|---:|---:|",
            f"| cold start, process start → first answer | {_f(cold['service_s'], 2)} s | "
            f"import + load model alone {_f(cold['model_load_s'], 2)} s | {cold['ratio']:.2f} |",
            f"| cache hit, server time (`took_ms`) p50 | {_f(cache['hit_server']['p50'], 3)} ms | "
            f"miss {_f(cache['miss_server']['p50'], 2)} ms | "
            f"{cache['hit_server']['p50'] / cache['miss_server']['p50']:.3f} |",
            f"| cache hit, in-process fast path p50 / p99 | {_f(inproc['p50'], 3)} / "
            f"{_f(inproc['p99'], 3)} ms | floor {_f(floor, 2)} ms | {inproc['p50'] / floor:.3f} |",
            f"| cache hit over HTTP, client-side p50 | {_f(cache['hit_client']['p50'], 2)} ms | "
            f"miss {_f(cache['miss_client']['p50'], 2)} ms | "
            f"{cache['hit_client']['p50'] / cache['miss_client']['p50']:.2f} |",
            f"| index build, essay ({http['index']['passages']} passages) | "
            f"{_f(http['index_build_s'], 1)} s | model load {_f(cold['model_load_s'], 2)} s | "
            f"{http['index_build_s'] / cold['model_load_s']:.2f} |",
            f"| peak RSS, service | {_f(rss['service'], 0)} MiB | "
            f"naive {_f(rss['naive'], 0)} MiB | "
            f"{rss['service'] / rss['naive']:.2f} |",
        ]
    scaling = results.get("scaling")
    if scaling:
        lines += ["", scaling_markdown(scaling)]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Escape the pipe of specs such as ``HNSW32|efSearch=128`` inside a table cell."""
    return text.replace("|", "\\|")


def scaling_markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "| passages | index (manifest spec) | build s | memory MiB | search p50 ms | "
        "search p99 ms | p50 / exact p50 | recall@10 synthetic | recall@10 real sample |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['passages']:,} | `{_cell(r['spec'])}` | {_f(r['build_s'], 2)} | "
            f"{_f(r['memory_mb'], 1)} | "
            f"{_f(r['search_p50_ms'], 3)} | {_f(r['search_p99_ms'], 3)} | "
            f"{r['search_p50_ms'] / r['flat_p50_ms']:.3f} | {_f(r['recall_at_10'], 3)} | "
            f"{_f(r['real_recall_at_10'], 3)} |"
        )
    sweeps = [(r["passages"], s) for r in rows for s in r.get("sweep", [])]
    if sweeps:
        out += [
            "",
            "| passages | search setting | search p50 ms | search p99 ms | recall@10 synthetic | "
            "recall@10 real sample |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for n, s in sweeps:
            out.append(
                f"| {n:,} | `{s['params']}` | {_f(s['search_p50_ms'], 3)} | "
                f"{_f(s['search_p99_ms'], 3)} | {_f(s['recall_at_10'], 3)} | "
                f"{_f(s.get('real_recall_at_10', float('nan')), 3)} |"
            )
    return "\n".join(out)


def _save(fig: Any, axes: tuple[Any, ...], path: Path, grid: str) -> str:
    """Legends and grid on every panel, then the PNG; returns its file name."""
    import matplotlib.pyplot as plt

    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3, which=grid)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def charts(results: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    http = results.get("http")
    if http:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        floor = http["floor"]["p50"]
        for name, style in (("naive", "s--"), ("service", "o-")):
            rows = http["concurrency"][name]
            clients = [r["concurrency"] for r in rows]
            left.plot(clients, [r["throughput_qps"] for r in rows], style, label=name)
            right.plot(clients, [r["p50_ms"] / floor for r in rows], style, label=f"{name} p50")
        left.axhline(1000 / floor, color="grey", ls=":", label="floor, 1 client")
        left.set(
            xscale="log", xlabel="concurrent clients", ylabel="questions / s", title="Throughput"
        )
        right.set(
            xscale="log",
            yscale="log",
            xlabel="concurrent clients",
            ylabel="latency p50 / floor p50",
            title="Latency (ratio to floor)",
        )
        written.append(_save(fig, (left, right), folder / "concurrency.png", grid="major"))
    scaling = results.get("scaling")
    if scaling:
        n = [r["passages"] for r in scaling]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        left.plot(n, [r["search_p50_ms"] for r in scaling], "o-", label="chosen index p50")
        left.plot(n, [r["search_p99_ms"] for r in scaling], "o:", label="chosen index p99")
        left.plot(n, [r["flat_p50_ms"] for r in scaling], "s--", label="exact (Flat) p50")
        left.axhline(5, color="red", ls=":", label="target 5 ms at 10^6")
        left.set(
            xscale="log",
            yscale="log",
            xlabel="passages",
            ylabel="ms per query",
            title="Search latency",
        )
        right.plot(n, [r["memory_mb"] for r in scaling], "o-", label="index memory")
        right.plot(n, [r["build_s"] for r in scaling], "s--", label="build time (s)")
        right.set(
            xscale="log",
            yscale="log",
            xlabel="passages",
            ylabel="MiB / s",
            title="Memory and build time",
        )
        written.append(_save(fig, (left, right), folder / "scaling.png", grid="both"))
    return written


def write(results: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (folder / "bench.md").write_text(markdown(results), encoding="utf-8")
    names = ["bench.json", "bench.md", *charts(results, folder)]
    return [folder / name for name in names]
